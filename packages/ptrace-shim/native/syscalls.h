/* syscalls.h - the architecture-neutral syscall table.
 *
 * Every syscall the tracer may intercept has an SC_* id here and a descriptor saying which
 * arguments are paths (and which dirfd goes with them) and which handler family applies.
 * The numbers for a given architecture live in arch_<arch>.h (arch_sysno[]); a syscall the
 * architecture does not have (e.g. open on aarch64) gets -1 there and is simply never trapped. */
#ifndef SHIM_SYSCALLS_H
#define SHIM_SYSCALLS_H

enum sc {
	SC_NONE = 0,
	SC_open, SC_creat, SC_openat, SC_openat2,
	SC_stat, SC_lstat, SC_newfstatat, SC_statx,
	SC_access, SC_faccessat, SC_faccessat2,
	SC_readlink, SC_readlinkat,
	SC_mkdir, SC_mkdirat, SC_unlink, SC_unlinkat, SC_rmdir,
	SC_rename, SC_renameat, SC_renameat2,
	SC_link, SC_linkat, SC_symlink, SC_symlinkat,
	SC_chdir, SC_execve, SC_execveat, SC_truncate,
	SC_chmod, SC_fchmodat, SC_chown, SC_lchown, SC_fchownat, SC_utimensat,
	SC_mknod, SC_mknodat,
	SC_getxattr, SC_lgetxattr, SC_setxattr, SC_lsetxattr,
	SC_listxattr, SC_llistxattr, SC_removexattr, SC_lremovexattr,
	SC_inotify_add_watch,
	SC_statfs, SC_fstatfs, SC_uname, SC_bpf, SC_mount,
	SC_COUNT
};

/* handler families */
#define SCF_PATH   0x01 /* takes one or two paths: redirect / shadow */
#define SCF_OPEN   0x02 /* open family: also synthesized files and shadow write-open */
#define SCF_STATFS 0x04 /* statfs(path, buf): f_type rewrite at exit */
#define SCF_FSTATFS 0x08 /* fstatfs(fd, buf) */
#define SCF_UNAME  0x10 /* uname(buf): release rewrite at exit */
#define SCF_BPF    0x20 /* bpf(cmd, attr, size): cgroup device program emulation */
#define SCF_MOUNT  0x40 /* mount(src, target, type, flags, data): propagation-only changes */

struct scdesc {
	const char *name;
	signed char path[2];   /* argument index of each path, -1 = none */
	signed char oflags;    /* argument index of open(2) flags, -1 = none (openat2: in struct open_how) */
	signed char dirfd[2];  /* argument index of the dirfd each path is relative to, -1 = none */
	unsigned char family;
};

extern const struct scdesc sc_table[SC_COUNT];
#endif
