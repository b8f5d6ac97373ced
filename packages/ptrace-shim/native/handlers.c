/* handlers.c - per-syscall handlers: path redirection, /proc/sys shadow, synthesized files,
 * statfs/fstatfs type rewrite, uname release override.
 *
 * Entry: read each path argument with one process_vm_readv, decide with prefix tests, and, only
 * when something changes, write the new strings into a per-thread scratch mapping in the tracee
 * (never over the caller's buffer) and point the argument registers there. The original register
 * values are put back at syscall exit, so the caller sees its own pointers afterwards.
 * The scratch mapping is made by injecting mmap into the stopped syscall and then re-executing
 * the original syscall (ip rewound over the syscall instruction). */
#define _GNU_SOURCE
#include "tracer.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

void exit_work_clear(struct exit_work *w)
{
	free(w->statfs_path);
	free(w->statfs_real);
	free(w->unlink_path);
	memset(w, 0, sizeof *w);
}

pid_t thread_tgid(struct thread *t)
{
	if (t->tgid) return t->tgid;
	char p[64], line[256];
	snprintf(p, sizeof p, "/proc/%d/status", t->tid);
	FILE *f = fopen(p, "re");
	t->tgid = t->tid;
	if (!f) return t->tgid;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, "Tgid:", 5)) { t->tgid = atoi(line + 5); break; }
	fclose(f);
	return t->tgid;
}

/* Lexical cleanup of an absolute path: "//" -> "/", drops "." and resolves ".." (like Go's
 * filepath.Clean). Only used for matching; the kernel still resolves the real path. */
static void path_clean(const char *in, char *out, size_t cap)
{
	size_t o = 0;
	const char *p = in;
	out[o++] = '/';
	while (*p) {
		while (*p == '/') p++;
		const char *s = p;
		while (*p && *p != '/') p++;
		size_t n = (size_t)(p - s);
		if (n == 0 || (n == 1 && s[0] == '.')) continue;
		if (n == 2 && s[0] == '.' && s[1] == '.') {
			while (o > 1 && out[o - 1] != '/') o--;
			if (o > 1) o--;
			continue;
		}
		if (o > 1) { if (o + 1 >= cap) break; out[o++] = '/'; }
		if (o + n >= cap) break;
		memcpy(out + o, s, n);
		o += n;
	}
	out[o] = 0;
}

static int needs_clean(const char *p)
{
	return strstr(p, "//") || strstr(p, "/./") || strstr(p, "/../") ||
	       (strlen(p) >= 2 && (!strcmp(p + strlen(p) - 2, "/.") || (strlen(p) >= 3 && !strcmp(p + strlen(p) - 3, "/.."))));
}

static int under(const char *path, const char *prefix, size_t plen)
{
	if (plen == 1 && prefix[0] == '/') return 1;
	return !strncmp(path, prefix, plen) && (path[plen] == 0 || path[plen] == '/');
}

static void mkdir_parents(char *path)
{
	for (char *s = path + 1; *s; s++) {
		if (*s != '/') continue;
		*s = 0;
		mkdir(path, 0755);
		*s = '/';
	}
}

enum decision { D_NONE, D_REDIRECT, D_SYNTH, D_SHADOW_WRITE };

/* Decides what to do with one absolute, cleaned path. Writes the replacement into out. */
static enum decision decide(struct thread *t, const char *path, int is_open, int writing, char *out, size_t cap)
{
	const struct rules *r = &T.rules;
	if (is_open && !writing && (r->mountinfo_on || r->cgroup_on) && !strncmp(path, "/proc/", 6)) {
		size_t len;
		char *content = synth_content(t, path, &len);
		if (content) make_runtime_dir();
		if (content && !T.runtime_dir) { free(content); content = NULL; }
		if (content) {
			snprintf(out, cap, "%s/%d-%lu", T.runtime_dir, t->tid, ++T.counter);
			int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
			int ok = fd >= 0 && write(fd, content, len) == (ssize_t)len;
			if (fd >= 0) close(fd);
			free(content);
			if (ok) return D_SYNTH;
			unlink(out);
		}
	}
	if (r->proc_sys_dir && !strncmp(path, "/proc/sys/", 10) && path[10]) {
		if ((size_t)snprintf(out, cap, "%s/%s", r->proc_sys_dir, path + 10) >= cap) return D_NONE;
		struct stat st;
		if (lstat(out, &st) == 0) return is_open && writing && S_ISREG(st.st_mode) ? D_SHADOW_WRITE : D_REDIRECT;
		if (is_open && writing && r->proc_sys_create) {
			mkdir_parents(out);
			int fd = open(out, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
			if (fd >= 0) { close(fd); return D_SHADOW_WRITE; }
		}
	}
	for (size_t i = 0; i < r->n_redirects; i++) {
		const struct redirect *d = &r->redirects[i];
		if (under(path, d->from, d->from_len)) {
			if ((size_t)snprintf(out, cap, "%s%s", d->to, path + d->from_len) >= cap) return D_NONE;
			return D_REDIRECT;
		}
	}
	return D_NONE;
}

static void inject_mmap(struct thread *t)
{
	arch_regs_t *r = regs_get(t);
	t->w.inj_saved = *r;
	t->w.inject = 1;
	REG_SYSNO(*r) = ARCH_NR_MMAP;
	REG_ARG(*r, 0) = 0;
	REG_ARG(*r, 1) = SCRATCH_SIZE;
	REG_ARG(*r, 2) = PROT_READ | PROT_WRITE;
	REG_ARG(*r, 3) = MAP_PRIVATE | MAP_ANONYMOUS;
	REG_ARG(*r, 4) = (unsigned long long)-1;
	REG_ARG(*r, 5) = 0;
	regs_dirty(t);
	t->want_exit = 1;
}

static void set_arg(struct thread *t, int i, unsigned long long v)
{
	arch_regs_t *r = regs_get(t);
	if (!(t->w.restore_mask & (1u << i))) {
		t->w.saved_arg[i] = REG_ARG(*r, i);
		t->w.restore_mask |= 1u << i;
	}
	REG_ARG(*r, i) = v;
	regs_dirty(t);
}

/* absolute form of a tracee path: relative ones are joined to the tracee's cwd */
static void absolute(struct thread *t, const char *path, char *out, size_t cap)
{
	if (path[0] == '/') { snprintf(out, cap, "%s", path); return; }
	char link[64], cwd[PATH_MAX];
	snprintf(link, sizeof link, "/proc/%d/cwd", t->tid);
	ssize_t n = readlink(link, cwd, sizeof cwd - 1);
	if (n <= 0) { snprintf(out, cap, "%s", path); return; }
	cwd[n] = 0;
	snprintf(out, cap, "%s/%s", cwd, path);
}

static void handle_bpf(struct thread *t);

void handle_entry(struct thread *t)
{
	const struct scdesc *d = &sc_table[t->sc];
	if (d->family & SCF_UNAME) { t->w.uname = 1; t->want_exit = 1; return; }
	if (d->family & SCF_FSTATFS) { t->w.statfs = 1; t->want_exit = 1; return; }
	if (d->family & SCF_BPF) { handle_bpf(t); return; }
	if (d->family & SCF_MOUNT) {
		/* propagation-only: one of MS_SHARED/PRIVATE/SLAVE/UNBINDABLE, optionally MS_REC/MS_SILENT,
		 * nothing else (mount(2): "changing the propagation type of an existing mount") */
		unsigned long long fl = REG_ARG(*regs_get(t), 3);
		unsigned long long prop = MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE;
		if ((fl & prop) && !(fl & ~(prop | MS_REC | MS_SILENT | 0xC0ED0000ULL | 0xFFFFFFFF00000000ULL))) { t->w.mount_prop = 1; t->want_exit = 1; }
		return;
	}

	arch_regs_t *r = regs_get(t);
	static char path[2][PATH_MAX], clean[PATH_MAX], repl[2][PATH_MAX];
	enum decision dec[2] = { D_NONE, D_NONE };
	int is_open = (d->family & SCF_OPEN) != 0, writing = 0;
	unsigned long long oflags = 0;
	struct { unsigned long long flags, mode, resolve; } how = { 0, 0, 0 };
	size_t how_size = 0;
	if (is_open) {
		if (d->oflags >= 0) {
			oflags = REG_ARG(*r, d->oflags);
		} else { /* openat2(dirfd, path, struct open_how *how, size) */
			how_size = REG_ARG(*r, 3);
			if (how_size > sizeof how) how_size = sizeof how;
			if (how_size < 8 || mem_read(t->tid, REG_ARG(*r, 2), &how, how_size) < 0) how_size = 0;
			oflags = how.flags;
		}
		writing = (oflags & O_ACCMODE) != O_RDONLY;
	}
	int any = 0, have0 = 0;
	for (int i = 0; i < 2 && d->path[i] >= 0; i++) {
		path[i][0] = 0;
		if (mem_read_str(t->tid, REG_ARG(*r, d->path[i]), path[i], PATH_MAX) < 0) {
			path[i][0] = 0;
			if (T.debug) trace_log("%d %s: unreadable path at 0x%llx: %s", t->tid, d->name, REG_ARG(*r, d->path[i]), strerror(errno));
			continue;
		}
		if (T.debug) trace_log("%d %s: %s", t->tid, d->name, path[i]);
		if (i == 0) have0 = 1;
		if (path[i][0] != '/') continue; /* relative: see README limits */
		const char *p = path[i];
		if (needs_clean(p)) { path_clean(p, clean, sizeof clean); p = clean; }
		dec[i] = decide(t, p, is_open, writing, repl[i], PATH_MAX);
		any |= dec[i] != D_NONE;
	}
	if (have0 && (t->sc == SC_readlink || t->sc == SC_readlinkat) && T.rules.n_redirects && dec[0] == D_NONE &&
	    !strncmp(path[0], "/proc/", 6) && (strstr(path[0], "/fd/") || strstr(path[0], "/cwd"))) {
		/* map a redirected target back to what the program asked for (runc compares
		 * readlink(/proc/self/fd/N) with the path it opened) */
		t->w.readlink_buf = t->sc == SC_readlink ? 1 : 2;
		t->want_exit = 1;
	}
	if ((d->family & SCF_STATFS) && have0) {
		char abs[PATH_MAX];
		path[0][PATH_MAX - 1] = 0;
		absolute(t, path[0], abs, sizeof abs);
		if (needs_clean(abs)) { path_clean(abs, clean, sizeof clean); snprintf(abs, sizeof abs, "%s", clean); }
		free(t->w.statfs_path);
		free(t->w.statfs_real);
		t->w.statfs_path = strdup(abs);
		t->w.statfs_real = strdup(dec[0] != D_NONE ? repl[0] : abs);
		t->w.statfs = 1;
		t->want_exit = 1;
	}
	if (!any) return;
	if (t->scratch == 0) {
		/* no scratch memory yet: synthesized file no longer needed, the syscall comes back */
		for (int i = 0; i < 2; i++) if (dec[i] == D_SYNTH) unlink(repl[i]);
		exit_work_clear(&t->w);
		inject_mmap(t);
		return;
	}
	if (t->scratch == ~0ULL) {
		for (int i = 0; i < 2; i++) if (dec[i] == D_SYNTH) unlink(repl[i]);
		trace_log("%d %s: no scratch memory in tracee, not rewritten: %s", t->tid, d->name, path[0]);
		return;
	}
	for (int i = 0; i < 2; i++) {
		if (dec[i] == D_NONE) continue;
		unsigned long long addr = t->scratch + (unsigned long long)i * PATH_MAX;
		if (mem_write(t->tid, addr, repl[i], strlen(repl[i]) + 1) < 0) {
			trace_log("%d %s: cannot write tracee memory: %s", t->tid, d->name, strerror(errno));
			if (dec[i] == D_SYNTH) unlink(repl[i]);
			continue;
		}
		set_arg(t, d->path[i], addr);
		if (dec[i] == D_SYNTH) {
			free(t->w.unlink_path);
			t->w.unlink_path = strdup(repl[i]);
		}
		if (dec[i] == D_SHADOW_WRITE) { /* truncate so a shorter value leaves no stale bytes */
			if (d->oflags >= 0) {
				set_arg(t, d->oflags, oflags | O_TRUNC);
			} else if (how_size) {
				how.flags |= O_TRUNC;
				unsigned long long haddr = t->scratch + 2ULL * PATH_MAX;
				if (mem_write(t->tid, haddr, &how, how_size) == 0) set_arg(t, 2, haddr);
			}
		}
		static const char *kinds[] = { "", "redirect", "synthesize", "shadow-write" };
		trace_log("%d %s %s: %s -> %s", t->tid, d->name, kinds[dec[i]], path[i], repl[i]);
	}
	t->want_exit = 1;
}

/* st_dev of the filesystem mounted at dir; -1 when dir is not a mount point (same device
 * as its parent), so an unmounted directory never matches. */
static int mount_dev_uncached(const char *dir, dev_t *dev)
{
	struct stat a, b;
	if (stat(dir, &a) < 0) return -1;
	if (strcmp(dir, "/")) {
		char parent[PATH_MAX];
		snprintf(parent, sizeof parent, "%s/..", dir);
		if (stat(parent, &b) == 0 && b.st_dev == a.st_dev && b.st_ino != a.st_ino) return -1;
	}
	*dev = a.st_dev;
	return 0;
}

/* mount_dev with a 1 s cache per directory (statfs loops would otherwise pay two stat calls per
 * call; a FUSE mount appearing later is seen within a second). */
static int mount_dev(const char *dir, dev_t *dev)
{
	static struct { const char *dir; dev_t dev; int rc; struct timespec until; } cache[16];
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
	for (int i = 0; i < 16; i++) {
		if (cache[i].dir != dir) continue;
		if (now.tv_sec < cache[i].until.tv_sec || (now.tv_sec == cache[i].until.tv_sec && now.tv_nsec < cache[i].until.tv_nsec)) {
			*dev = cache[i].dev;
			return cache[i].rc;
		}
		break;
	}
	int rc = mount_dev_uncached(dir, dev);
	int slot = 0;
	for (int i = 0; i < 16; i++) if (cache[i].dir == dir || !cache[i].dir) { slot = i; break; }
	cache[slot].dir = dir;
	cache[slot].dev = rc == 0 ? *dev : 0;
	cache[slot].rc = rc;
	cache[slot].until = now;
	cache[slot].until.tv_sec += 1;
	return rc;
}

/* Index of the first statfs rule that applies to a file, or -1. orig/real: its path as the tracee
 * named it and the path really used; devpath: a path whose stat gives the file's st_dev; cur: the
 * real f_type. */
static int statfs_rule_for(const char *orig, const char *real, const char *devpath, long long cur)
{
	int have_dev = 0;
	dev_t dev = 0;
	for (size_t i = 0; i < T.rules.n_statfs; i++) {
		const struct statfs_rule *s = &T.rules.statfs[i];
		if (s->has_from && s->from_type != (cur & 0xFFFFFFFFLL)) continue;
		if (s->path_prefix) {
			size_t n = strlen(s->path_prefix);
			if (!under(orig, s->path_prefix, n) && !under(real, s->path_prefix, n)) continue;
		}
		if (s->mount) {
			dev_t mdev;
			if (!have_dev) {
				struct stat st;
				if (stat(devpath, &st) < 0) continue;
				dev = st.st_dev;
				have_dev = 1;
			}
			if (mount_dev(s->mount, &mdev) < 0 || mdev != dev) continue;
		}
		return (int)i;
	}
	return -1;
}

static void fix_statfs(struct thread *t)
{
	arch_regs_t *r = regs_get(t);
	unsigned long long buf = REG_ARG(*r, 1);
	char fdpath[64], linkbuf[PATH_MAX];
	const char *orig, *real, *devpath;
	if (t->sc == SC_fstatfs) {
		snprintf(fdpath, sizeof fdpath, "/proc/%d/fd/%d", t->tid, (int)REG_ARG(*r, 0));
		ssize_t n = readlink(fdpath, linkbuf, sizeof linkbuf - 1);
		linkbuf[n > 0 ? n : 0] = 0;
		orig = real = linkbuf;
		devpath = fdpath;
	} else {
		if (!t->w.statfs_path) return;
		orig = t->w.statfs_path;
		real = t->w.statfs_real;
		devpath = real;
	}
	long long cur = 0;
	if (mem_read(t->tid, buf, &cur, sizeof cur) < 0) return;
	int i = statfs_rule_for(orig, real, devpath, cur);
	if (i < 0) return;
	long long v = T.rules.statfs[i].ftype;
	if (cur != v) {
		mem_write(t->tid, buf, &v, sizeof v);
		trace_log("%d %s: %s f_type 0x%llx -> 0x%llx", t->tid, sc_table[t->sc].name, orig, cur, v);
	}
}

/* ---------- bpf: BPF_PROG_TYPE_CGROUP_DEVICE emulation ("bpfCgroupDevice": "emulate") ----------
 * runc (cgroup v2) loads a device-filter program and attaches it to the container's cgroup
 * directory fd; neither a FUSE directory nor gVisor supports that. The load becomes
 * memfd_create(FAKE_PROG_NAME, MFD_CLOEXEC), a real fd (close/dup work) recognised later by its
 * /proc/PID/fd link; ATTACH/DETACH of such an fd succeed (EBADF when the target is not an open
 * fd, as the kernel checks); QUERY of BPF_CGROUP_DEVICE on a directory the statfs rules report
 * as cgroup2 returns zero programs. Every other bpf call runs untouched. Devices are therefore
 * not enforced (README: limits). Numbers: include/uapi/linux/bpf.h. */
#define FAKE_PROG_NAME "hybrid-shim-bpf-cgroup-device"
enum { BPF_PROG_LOAD_ = 5, BPF_PROG_ATTACH_ = 8, BPF_PROG_DETACH_ = 9, BPF_PROG_QUERY_ = 16,
       BPF_PROG_TYPE_CGROUP_DEVICE_ = 15, BPF_CGROUP_DEVICE_ = 6 };
#define CGROUP2_MAGIC 0x63677270LL

static int fake_prog_fd(struct thread *t, int fd)
{
	char p[64], l[128];
	snprintf(p, sizeof p, "/proc/%d/fd/%d", t->tid, fd);
	ssize_t n = readlink(p, l, sizeof l - 1);
	if (n <= 0) return 0;
	l[n] = 0;
	return !strncmp(l, "/memfd:" FAKE_PROG_NAME, strlen("/memfd:" FAKE_PROG_NAME));
}

static int fd_open(struct thread *t, int fd)
{
	char p[64];
	struct stat st;
	snprintf(p, sizeof p, "/proc/%d/fd/%d", t->tid, fd);
	return fd >= 0 && lstat(p, &st) == 0;
}

/* the fd's file is reported as cgroup2 by the statfs rules (the emulated cgroupfs) */
static int fd_emulated_cgroup(struct thread *t, int fd)
{
	char p[64], l[PATH_MAX];
	struct statfs sf;
	snprintf(p, sizeof p, "/proc/%d/fd/%d", t->tid, fd);
	ssize_t n = readlink(p, l, sizeof l - 1);
	if (n <= 0 || statfs(p, &sf) < 0) return 0;
	l[n] = 0;
	int i = statfs_rule_for(l, l, p, (long long)sf.f_type);
	return i >= 0 && T.rules.statfs[i].ftype == CGROUP2_MAGIC;
}

/* the syscall becomes getpid and returns `result` at its exit */
static void emulate_result(struct thread *t, long long result)
{
	arch_regs_t *r = regs_get(t);
	REG_SYSNO(*r) = ARCH_NR_GETPID;
	regs_dirty(t);
	t->w.set_result = 1;
	t->w.result = result;
	t->want_exit = 1;
}

static void handle_bpf(struct thread *t)
{
	arch_regs_t *r = regs_get(t);
	unsigned cmd = (unsigned)REG_ARG(*r, 0);
	unsigned long long attr = REG_ARG(*r, 1);
	unsigned long long size = REG_ARG(*r, 2) & 0xFFFFFFFFULL;
	uint32_t a[8] = { 0 };
	size_t n = size < sizeof a ? (size_t)size : sizeof a;
	if (n < 12 || mem_read(t->tid, attr, a, n) < 0) return;
	switch (cmd) {
	case BPF_PROG_LOAD_:
		if (a[0] != BPF_PROG_TYPE_CGROUP_DEVICE_) return;
		if (t->scratch == 0) { exit_work_clear(&t->w); inject_mmap(t); return; }
		if (t->scratch == ~0ULL) { trace_log("%d bpf: no scratch memory in tracee, PROG_LOAD not emulated", t->tid); return; }
		{
			unsigned long long name = t->scratch + 2ULL * PATH_MAX + 256;
			if (mem_write(t->tid, name, FAKE_PROG_NAME, sizeof FAKE_PROG_NAME) < 0) return;
			REG_SYSNO(*r) = ARCH_NR_MEMFD_CREATE;
			regs_dirty(t);
			set_arg(t, 0, name);
			set_arg(t, 1, MFD_CLOEXEC);
			t->want_exit = 1;
		}
		trace_log("%d bpf emulate: PROG_LOAD CGROUP_DEVICE -> memfd", t->tid);
		return;
	case BPF_PROG_ATTACH_:
	case BPF_PROG_DETACH_:
		if (!fake_prog_fd(t, (int)a[1])) return;
		emulate_result(t, fd_open(t, (int)a[0]) ? 0 : -EBADF);
		trace_log("%d bpf emulate: %s target fd %d -> %lld", t->tid, cmd == BPF_PROG_ATTACH_ ? "PROG_ATTACH" : "PROG_DETACH", (int)a[0], t->w.result);
		return;
	case BPF_PROG_QUERY_:
		if (a[1] != BPF_CGROUP_DEVICE_ || !fd_emulated_cgroup(t, (int)a[0])) return;
		{
			uint32_t zero = 0;
			if (n >= 16) mem_write(t->tid, attr + 12, &zero, 4); /* attach_flags */
			if (n >= 28) mem_write(t->tid, attr + 24, &zero, 4); /* prog_cnt */
		}
		emulate_result(t, 0);
		trace_log("%d bpf emulate: PROG_QUERY CGROUP_DEVICE target fd %d -> 0 programs", t->tid, (int)a[0]);
		return;
	}
}

int version_below(const char *release, const char *limit)
{
	int a = 0, b = 0, c = 0, d = 0;
	sscanf(release, "%d.%d", &a, &b);
	sscanf(limit, "%d.%d", &c, &d);
	return a < c || (a == c && b < d);
}

static void fix_uname(struct thread *t)
{
	arch_regs_t *r = regs_get(t);
	unsigned long long addr = REG_ARG(*r, 0) + ARCH_UTS_RELEASE_OFF;
	char rel[65] = { 0 };
	if (mem_read(t->tid, addr, rel, 64) < 0) return;
	if (T.rules.uname_if_below && !version_below(rel, T.rules.uname_if_below)) return;
	mem_write(t->tid, addr, T.rules.uname_release, strlen(T.rules.uname_release) + 1);
	trace_log("%d uname: release %s -> %s", t->tid, rel, T.rules.uname_release);
}

static void fix_readlink(struct thread *t, long long ret)
{
	arch_regs_t *r = regs_get(t);
	int bi = t->w.readlink_buf;
	unsigned long long buf = REG_ARG(*r, bi), size = REG_ARG(*r, bi + 1);
	char target[PATH_MAX], out[PATH_MAX];
	if (ret <= 0 || ret >= PATH_MAX || mem_read(t->tid, buf, target, (size_t)ret) < 0) return;
	target[ret] = 0;
	for (size_t i = 0; i < T.rules.n_redirects; i++) {
		const struct redirect *d = &T.rules.redirects[i];
		size_t tl = strlen(d->to);
		if (!under(target, d->to, tl)) continue;
		int n = snprintf(out, sizeof out, "%s%s", d->from, target + tl);
		if (n <= 0 || (unsigned long long)n > size) return;
		if (mem_write(t->tid, buf, out, (size_t)n) == 0) {
			REG_RESULT(*r) = (unsigned long long)n;
			regs_dirty(t);
			trace_log("%d %s reverse: %s -> %s", t->tid, sc_table[t->sc].name, target, out);
		}
		return;
	}
}

void handle_exit(struct thread *t)
{
	arch_regs_t *r = regs_get(t);
	if (t->w.inject) {
		long long ret = (long long)REG_RESULT(*r);
		t->scratch = (ret < 0 && ret > -4096) ? ~0ULL : (unsigned long long)ret;
		if (t->scratch == ~0ULL) trace_log("%d: mmap of scratch memory failed: %s", t->tid, strerror((int)-ret));
		*r = t->w.inj_saved;
		REG_IP(*r) -= ARCH_SYSCALL_INSN_LEN; /* run the original syscall again */
		REG_RESULT(*r) = REG_SYSNO(*r);
		regs_dirty(t);
		exit_work_clear(&t->w);
		if (!T.seccomp) t->in_syscall = 0;
		return;
	}
	long long ret = (long long)REG_RESULT(*r);
	if (t->w.statfs && ret == 0) fix_statfs(t);
	if (t->w.uname && ret == 0) fix_uname(t);
	if (t->w.readlink_buf) fix_readlink(t, ret);
	if (t->w.unlink_path) unlink(t->w.unlink_path);
	if (t->w.mount_prop && ret == -EINVAL) {
		REG_RESULT(*r) = 0;
		regs_dirty(t);
		trace_log("%d mount: propagation change 0x%llx refused with EINVAL -> 0", t->tid, REG_ARG(*r, 3));
	}
	if (t->w.set_result) { REG_RESULT(*r) = (unsigned long long)t->w.result; regs_dirty(t); }
	for (int i = 0; i < 6; i++)
		if (t->w.restore_mask & (1u << i)) { REG_ARG(*r, i) = t->w.saved_arg[i]; regs_dirty(t); }
	exit_work_clear(&t->w);
}

/* ---------- cgroup membership of new processes ("cgroup.procsDir" set) ----------
 * The kernel starts a child in its forker's cgroup. The cgroupfs daemon can only infer that from
 * /proc parentage, one sampling interval later, and cannot at all for CLONE_PARENT children (runc's
 * nsexec stage-1 and stage-2 are CLONE_PARENT clones, so the container's init would stay in the
 * root). At each fork/vfork/clone event the tracer therefore reads procsDir/<forker tgid> and, when
 * the forker is in a non-root group, writes the child's pid into that group's cgroup.procs on the
 * cgroupfs mount (the /sys/fs/cgroup redirect's target), as the kernel's fork would. Threads
 * (CLONE_THREAD) share their process's group and are skipped. */
/* field 4 of /proc/PID/stat; -1 if unreadable */
static long proc_ppid(pid_t pid)
{
	char p[64], buf[512];
	snprintf(p, sizeof p, "/proc/%d/stat", pid);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0) return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0) return -1;
	buf[n] = 0;
	char *e = strrchr(buf, ')');
	long ppid = -1;
	if (!e || sscanf(e + 1, " %*c %ld", &ppid) != 1) return -1;
	return ppid;
}

void cgroup_inherit(struct thread *parent, pid_t child, int is_clone)
{
	const struct rules *r = &T.rules;
	if (!r->cgroup_procs_dir) return;
	if (is_clone) { /* the forker is stopped in clone/clone3: a thread (CLONE_THREAD) keeps the group */
		arch_regs_t *rg = regs_get(parent);
		unsigned long long flags = REG_ARG(*rg, 0);
		if ((long long)REG_SYSNO(*rg) == ARCH_NR_CLONE3 && mem_read(parent->tid, REG_ARG(*rg, 0), &flags, sizeof flags) < 0) return;
		if (flags & 0x00010000ULL /* CLONE_THREAD */) return;
	}
	char p[PATH_MAX], line[PATH_MAX];
	snprintf(p, sizeof p, "%s/%d", r->cgroup_procs_dir, thread_tgid(parent));
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0) return; /* root group: nothing to do */
	ssize_t n = read(fd, line, sizeof line - 1);
	close(fd);
	if (n < 5 || strncmp(line, "0::/", 4)) return;
	line[n] = 0;
	line[strcspn(line, "\n")] = 0;
	const char *group = line + 3;
	if (!strcmp(group, "/")) return;
	/* The event's pid is in the tracer's pid namespace on Linux, but gVisor reports it in the
	 * tracee's (the threads of a process in a new pid namespace come as 2, 3, ...): only trust it
	 * when that process's parent is the forker or, for CLONE_PARENT, the forker's parent. Forks
	 * that fail this check are left to the cgroupfs sampler's parent-based inheritance. */
	pid_t fork_tgid = thread_tgid(parent);
	long child_ppid = proc_ppid(child), fork_ppid = proc_ppid(fork_tgid);
	if (child_ppid <= 0 || (child_ppid != fork_tgid && child_ppid != fork_ppid)) return;
	snprintf(p, sizeof p, "/proc/%d/status", child);
	FILE *f = fopen(p, "re");
	pid_t tgid = child;
	if (f) {
		char l[256];
		while (fgets(l, sizeof l, f))
			if (!strncmp(l, "Tgid:", 5)) { tgid = atoi(l + 5); break; }
		fclose(f);
	}
	if (tgid != child) return; /* a thread */
	const char *mnt = "/sys/fs/cgroup";
	for (size_t i = 0; i < r->n_redirects; i++)
		if (!strcmp(r->redirects[i].from, "/sys/fs/cgroup")) { mnt = r->redirects[i].to; break; }
	if ((size_t)snprintf(p, sizeof p, "%s%s/cgroup.procs", mnt, group) >= sizeof p) return;
	fd = open(p, O_WRONLY | O_CLOEXEC);
	char num[32];
	int len = snprintf(num, sizeof num, "%d", child);
	int ok = fd >= 0 && write(fd, num, (size_t)len) == len;
	int e = errno;
	if (fd >= 0) close(fd);
	trace_log("%d fork cgroup: child %d -> %s%s%s", parent->tid, child, group, ok ? "" : ": ", ok ? "" : strerror(e));
}
