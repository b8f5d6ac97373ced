/* tracer.h - shared state of the tracer: per-thread records, cached registers, tracee memory. */
#ifndef SHIM_TRACER_H
#define SHIM_TRACER_H
#include "arch.h"
#include "rules.h"
#include <stdio.h>
#include <sys/types.h>

#define SCRATCH_SIZE 16384 /* per-thread scratch mapping in the tracee: two PATH_MAX paths + open_how */

/* What the thread must do at its next syscall-exit stop. */
struct exit_work {
	unsigned restore_mask;            /* bit i: put saved_arg[i] back into argument register i */
	unsigned long long saved_arg[6];
	int inject;                       /* the syscall was replaced by our mmap: restart the original */
	arch_regs_t inj_saved;
	int statfs;                       /* statfs/fstatfs: maybe rewrite f_type */
	char *statfs_path;                /* path as the tracee gave it (absolute) */
	char *statfs_real;                /* path actually used (after redirection) */
	int uname;
	int readlink_buf;                 /* readlink of /proc/<pid>/{fd/N,cwd}: argument index of buf, 0 = none */
	char *unlink_path;                /* synthesized file to remove once opened */
	int mount_prop;                   /* propagation-only mount: EINVAL -> 0 at exit */
	int set_result;                   /* emulated syscall: put `result` into the result register */
	long long result;
};

struct thread {
	pid_t tid;
	struct thread *next;              /* hash chain */
	arch_regs_t regs;                 /* cached registers of the current stop */
	int regs_valid, regs_dirty;
	int in_syscall;                   /* PTRACE_SYSCALL fallback: entry/exit toggle */
	int want_exit;                    /* exit_work pending: resume with PTRACE_SYSCALL */
	int skip_entry;                   /* seccomp-before-entry ordering: next syscall stop is the entry */
	enum sc sc;                       /* syscall being handled */
	struct exit_work w;
	unsigned long long scratch;       /* 0: none yet; ~0: mmap failed */
	pid_t tgid;                       /* 0 until looked up */
};

struct tracer {
	struct rules rules;
	int seccomp;                      /* 1: PTRACE_O_TRACESECCOMP, 0: PTRACE_SYSCALL stepping */
	FILE *log;                        /* --trace-log, or NULL */
	char *runtime_dir;                /* holds synthesized files while they are being opened */
	unsigned long counter;
	int sc_by_nr_size;
	enum sc sc_by_nr[1024];           /* architecture number -> SC_* */
	int path_rules;                   /* any rule that needs path syscalls */
	int debug;                        /* HYBRID_SHIM_DEBUG set: log every stop and path */
	int seccomp_first;                /* kernel < 4.8 (and gVisor, which reports 4.4): the seccomp stop
	                                     comes before syscall-enter-stop, not between enter and exit */
};

extern struct tracer T;

/* registers (cached per stop) */
arch_regs_t *regs_get(struct thread *t);
void regs_dirty(struct thread *t);

/* tracee memory; return 0 on success, -1 on failure */
int mem_read(pid_t tid, unsigned long long addr, void *buf, size_t len);
int mem_write(pid_t tid, unsigned long long addr, const void *buf, size_t len);
/* reads a NUL-terminated string of at most cap-1 bytes; -1 if unreadable or too long */
int mem_read_str(pid_t tid, unsigned long long addr, char *buf, size_t cap);

/* handlers.c */
/* Called at syscall entry (seccomp stop or entry stop) of a trapped syscall. */
void handle_entry(struct thread *t);
/* Called at the syscall-exit stop when t->want_exit. */
void handle_exit(struct thread *t);
void exit_work_clear(struct exit_work *w);
pid_t thread_tgid(struct thread *t);
/* A new process child of parent starts in parent's emulated cgroup (cgroupfs via procsDir). */
void cgroup_inherit(struct thread *parent, pid_t child, int is_clone);

/* synth.c: builds a synthesized file's content (malloc'd) or NULL if path is not synthesized */
char *synth_content(struct thread *t, const char *path, size_t *len);

void make_runtime_dir(void);
/* release "MAJOR.MINOR..." is below limit "MAJOR.MINOR" */
int version_below(const char *release, const char *limit);
void trace_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#endif
