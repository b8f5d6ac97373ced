/* syscalls.c - descriptors of the intercepted syscalls (architecture-neutral). */
#include "syscalls.h"

#define P1(a) { a, -1 }
#define P2(a, b) { a, b }
#define NOP { -1, -1 }
#define D1(a) { a, -1 }
#define D2(a, b) { a, b }

const struct scdesc sc_table[SC_COUNT] = {
	[SC_NONE]        = { "none", NOP, -1, NOP, 0 },
	[SC_open]        = { "open", P1(0), 1, NOP, SCF_PATH | SCF_OPEN },
	[SC_creat]       = { "creat", P1(0), -1, NOP, SCF_PATH },
	[SC_openat]      = { "openat", P1(1), 2, D1(0), SCF_PATH | SCF_OPEN },
	[SC_openat2]     = { "openat2", P1(1), -1, D1(0), SCF_PATH | SCF_OPEN },
	[SC_stat]        = { "stat", P1(0), -1, NOP, SCF_PATH },
	[SC_lstat]       = { "lstat", P1(0), -1, NOP, SCF_PATH },
	[SC_newfstatat]  = { "newfstatat", P1(1), -1, D1(0), SCF_PATH },
	[SC_statx]       = { "statx", P1(1), -1, D1(0), SCF_PATH },
	[SC_access]      = { "access", P1(0), -1, NOP, SCF_PATH },
	[SC_faccessat]   = { "faccessat", P1(1), -1, D1(0), SCF_PATH },
	[SC_faccessat2]  = { "faccessat2", P1(1), -1, D1(0), SCF_PATH },
	[SC_readlink]    = { "readlink", P1(0), -1, NOP, SCF_PATH },
	[SC_readlinkat]  = { "readlinkat", P1(1), -1, D1(0), SCF_PATH },
	[SC_mkdir]       = { "mkdir", P1(0), -1, NOP, SCF_PATH },
	[SC_mkdirat]     = { "mkdirat", P1(1), -1, D1(0), SCF_PATH },
	[SC_unlink]      = { "unlink", P1(0), -1, NOP, SCF_PATH },
	[SC_unlinkat]    = { "unlinkat", P1(1), -1, D1(0), SCF_PATH },
	[SC_rmdir]       = { "rmdir", P1(0), -1, NOP, SCF_PATH },
	[SC_rename]      = { "rename", P2(0, 1), -1, NOP, SCF_PATH },
	[SC_renameat]    = { "renameat", P2(1, 3), -1, D2(0, 2), SCF_PATH },
	[SC_renameat2]   = { "renameat2", P2(1, 3), -1, D2(0, 2), SCF_PATH },
	[SC_link]        = { "link", P2(0, 1), -1, NOP, SCF_PATH },
	[SC_linkat]      = { "linkat", P2(1, 3), -1, D2(0, 2), SCF_PATH },
	[SC_symlink]     = { "symlink", P1(1), -1, NOP, SCF_PATH },      /* arg 0 is link content, not resolved */
	[SC_symlinkat]   = { "symlinkat", P1(2), -1, D1(1), SCF_PATH },
	[SC_chdir]       = { "chdir", P1(0), -1, NOP, SCF_PATH },
	[SC_execve]      = { "execve", P1(0), -1, NOP, SCF_PATH },
	[SC_execveat]    = { "execveat", P1(1), -1, D1(0), SCF_PATH },
	[SC_truncate]    = { "truncate", P1(0), -1, NOP, SCF_PATH },
	[SC_chmod]       = { "chmod", P1(0), -1, NOP, SCF_PATH },
	[SC_fchmodat]    = { "fchmodat", P1(1), -1, D1(0), SCF_PATH },
	[SC_chown]       = { "chown", P1(0), -1, NOP, SCF_PATH },
	[SC_lchown]      = { "lchown", P1(0), -1, NOP, SCF_PATH },
	[SC_fchownat]    = { "fchownat", P1(1), -1, D1(0), SCF_PATH },
	[SC_utimensat]   = { "utimensat", P1(1), -1, D1(0), SCF_PATH },
	[SC_mknod]       = { "mknod", P1(0), -1, NOP, SCF_PATH },
	[SC_mknodat]     = { "mknodat", P1(1), -1, D1(0), SCF_PATH },
	[SC_getxattr]    = { "getxattr", P1(0), -1, NOP, SCF_PATH },
	[SC_lgetxattr]   = { "lgetxattr", P1(0), -1, NOP, SCF_PATH },
	[SC_setxattr]    = { "setxattr", P1(0), -1, NOP, SCF_PATH },
	[SC_lsetxattr]   = { "lsetxattr", P1(0), -1, NOP, SCF_PATH },
	[SC_listxattr]   = { "listxattr", P1(0), -1, NOP, SCF_PATH },
	[SC_llistxattr]  = { "llistxattr", P1(0), -1, NOP, SCF_PATH },
	[SC_removexattr] = { "removexattr", P1(0), -1, NOP, SCF_PATH },
	[SC_lremovexattr] = { "lremovexattr", P1(0), -1, NOP, SCF_PATH },
	[SC_inotify_add_watch] = { "inotify_add_watch", P1(1), -1, NOP, SCF_PATH },
	[SC_statfs]      = { "statfs", P1(0), -1, NOP, SCF_PATH | SCF_STATFS },
	[SC_fstatfs]     = { "fstatfs", NOP, -1, NOP, SCF_FSTATFS },
	[SC_uname]       = { "uname", NOP, -1, NOP, SCF_UNAME },
	[SC_bpf]         = { "bpf", NOP, -1, NOP, SCF_BPF },
	[SC_mount]       = { "mount", NOP, -1, NOP, SCF_MOUNT },
};
