/* arch.h - selects the architecture file. Each arch file provides:
 *   arch_regs_t, arch_get_regs(tid, regs), arch_set_regs(tid, regs),
 *   REG_SYSNO / REG_RESULT / REG_SP / REG_IP / REG_ARG(i) lvalues on an arch_regs_t,
 *   ARCH_SYSCALL_INSN_LEN, ARCH_NR_MMAP, ARCH_NAME, and arch_sysno[SC_COUNT]
 *   (the architecture's number for each SC_* id, -1 when it has none). */
#ifndef SHIM_ARCH_H
#define SHIM_ARCH_H
#include "syscalls.h"
#if defined(__x86_64__)
#include "arch_x86_64.h"
#else
#error "ptrace-shim: only x86_64 is implemented; add arch_<arch>.h (see arch_x86_64.h)"
#endif
#endif
