/* rules.h - the tracer's rules (the JSON schema is documented in ../README.md). */
#ifndef SHIM_RULES_H
#define SHIM_RULES_H
#include <stddef.h>

struct statfs_rule {
	char *path_prefix;   /* match: the path (as given, or the fd's path) lies under this prefix */
	char *mount;         /* match: the file lies on the filesystem mounted at this directory */
	long long from_type; /* match: the real f_type equals this (when has_from) */
	int has_from;
	long long ftype;     /* the f_type to report */
};

struct redirect { char *from, *to; size_t from_len; };

struct mi_entry {        /* mountinfo rewrite (only if present) or add (replace or append) */
	char *mount_point, *fstype, *source, *options, *super_options, *like;
};

struct rules {
	struct statfs_rule *statfs; size_t n_statfs;
	struct redirect *redirects; size_t n_redirects; /* sorted, longest `from` first */
	char *proc_sys_dir; int proc_sys_create;         /* /proc/sys shadow store */
	int mountinfo_on;
	struct mi_entry *mi_rewrite; size_t n_mi_rewrite;
	struct mi_entry *mi_add; size_t n_mi_add;
	char **mi_hide; size_t n_mi_hide;
	char *cgroup_procs_dir; int cgroup_on;
	char *uname_release, *uname_if_below;
	char *runtime_dir;
	int check_dirfd_paths;                          /* also stop *at syscalls with a real dirfd */
	int mount_propagation;                          /* 1: propagation-only mount() refused with EINVAL succeeds */
	int bpf_cgroup_device;                          /* 1: emulate BPF_PROG_TYPE_CGROUP_DEVICE load/attach/detach/query */
};

/* Loads and validates the rules file; on error prints "hybrid-shim: rules FILE: ..." and returns -1. */
int rules_load(const char *file, struct rules *out);
void rules_free(struct rules *r);
/* A known filesystem name ("ext4", "cgroup2", ...) to its magic; -1 if unknown. */
long long fs_magic_by_name(const char *name);
#endif
