/* arch_x86_64.h - x86_64 register access and syscall numbers.
 * To add aarch64: write arch_aarch64.h with the same names (regs via PTRACE_GETREGSET
 * NT_PRSTATUS, syscall number changes via NT_ARM_SYSTEM_CALL, -1 for the legacy syscalls
 * such as open/stat/access that aarch64 lacks) and select it in arch.h. */
#ifndef SHIM_ARCH_X86_64_H
#define SHIM_ARCH_X86_64_H
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/user.h>

#define ARCH_NAME "x86_64"
typedef struct user_regs_struct arch_regs_t;

static inline int arch_get_regs(pid_t tid, arch_regs_t *r) { return (int)ptrace(PTRACE_GETREGS, tid, 0, r); }
static inline int arch_set_regs(pid_t tid, const arch_regs_t *r) { return (int)ptrace(PTRACE_SETREGS, tid, 0, r); }

#define REG_SYSNO(r)  ((r).orig_rax)
#define REG_RESULT(r) ((r).rax)
#define REG_SP(r)     ((r).rsp)
#define REG_IP(r)     ((r).rip)
static inline unsigned long long *arch_arg_ptr(arch_regs_t *r, int i)
{
	switch (i) {
	case 0: return &r->rdi;
	case 1: return &r->rsi;
	case 2: return &r->rdx;
	case 3: return &r->r10;
	case 4: return &r->r8;
	default: return &r->r9;
	}
}
#define REG_ARG(r, i) (*arch_arg_ptr(&(r), (i)))

/* `syscall` is 0f 05: rewinding the ip by this much re-executes the syscall. */
#define ARCH_SYSCALL_INSN_LEN 2
#define ARCH_NR_MMAP __NR_mmap
#define ARCH_NR_GETPID __NR_getpid
#define ARCH_NR_CLONE3 435
#define ARCH_NR_MEMFD_CREATE __NR_memfd_create
/* utsname.release offset: struct utsname is six char[65] arrays */
#define ARCH_UTS_RELEASE_OFF 130

static const int arch_sysno[SC_COUNT] = {
	[SC_NONE] = -1,
	[SC_open] = __NR_open, [SC_creat] = __NR_creat, [SC_openat] = __NR_openat, [SC_openat2] = 437,
	[SC_stat] = __NR_stat, [SC_lstat] = __NR_lstat, [SC_newfstatat] = __NR_newfstatat, [SC_statx] = __NR_statx,
	[SC_access] = __NR_access, [SC_faccessat] = __NR_faccessat, [SC_faccessat2] = 439,
	[SC_readlink] = __NR_readlink, [SC_readlinkat] = __NR_readlinkat,
	[SC_mkdir] = __NR_mkdir, [SC_mkdirat] = __NR_mkdirat, [SC_unlink] = __NR_unlink,
	[SC_unlinkat] = __NR_unlinkat, [SC_rmdir] = __NR_rmdir,
	[SC_rename] = __NR_rename, [SC_renameat] = __NR_renameat, [SC_renameat2] = __NR_renameat2,
	[SC_link] = __NR_link, [SC_linkat] = __NR_linkat, [SC_symlink] = __NR_symlink, [SC_symlinkat] = __NR_symlinkat,
	[SC_chdir] = __NR_chdir, [SC_execve] = __NR_execve, [SC_execveat] = __NR_execveat, [SC_truncate] = __NR_truncate,
	[SC_chmod] = __NR_chmod, [SC_fchmodat] = __NR_fchmodat, [SC_chown] = __NR_chown, [SC_lchown] = __NR_lchown,
	[SC_fchownat] = __NR_fchownat, [SC_utimensat] = __NR_utimensat,
	[SC_mknod] = __NR_mknod, [SC_mknodat] = __NR_mknodat,
	[SC_getxattr] = __NR_getxattr, [SC_lgetxattr] = __NR_lgetxattr, [SC_setxattr] = __NR_setxattr,
	[SC_lsetxattr] = __NR_lsetxattr, [SC_listxattr] = __NR_listxattr, [SC_llistxattr] = __NR_llistxattr,
	[SC_removexattr] = __NR_removexattr, [SC_lremovexattr] = __NR_lremovexattr,
	[SC_inotify_add_watch] = __NR_inotify_add_watch,
	[SC_statfs] = __NR_statfs, [SC_fstatfs] = __NR_fstatfs, [SC_uname] = __NR_uname,
	[SC_bpf] = __NR_bpf, [SC_mount] = __NR_mount,
};
#endif
