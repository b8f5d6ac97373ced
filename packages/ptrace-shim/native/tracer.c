/* tracer.c - hybrid-shim: runs a command under a seccomp-filtered ptrace tracer.
 *
 *   hybrid-shim --rules FILE [--trace-log FILE] [--no-seccomp] -- CMD ARGS...
 *   hybrid-shim --probe
 *
 * Shape (after PRoot): one tracer loop (waitpid(-1, __WALL)) dispatching every stop; per-thread
 * records; per-syscall handlers in handlers.c; the architecture-neutral syscall table in
 * syscalls.c with the x86_64 numbers and registers in arch_x86_64.h; registers fetched at most
 * once per stop and written back once before resuming.
 *
 * The child installs a seccomp filter (libseccomp) that returns SECCOMP_RET_TRACE for exactly
 * the syscalls the rules need; every other syscall runs without stopping. Where seccomp filters
 * cannot be loaded the tracer falls back to PTRACE_SYSCALL stepping (slow, same behaviour).
 * All tracees are seized with PTRACE_O_EXITKILL: if the tracer dies they are killed rather than
 * left stopped or running with syscalls that return ENOSYS (RET_TRACE without a tracer).
 */
#define _GNU_SOURCE
#include "tracer.h"
#include <dirent.h>
#include <errno.h>
#include <sys/mount.h>
#include <fcntl.h>
#include <seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PTRACE_EVENT_STOP
#define PTRACE_EVENT_STOP 128
#endif

struct tracer T;

/* ---------- threads ---------- */
#define NBUCKETS 1024
static struct thread *buckets[NBUCKETS];
static int nthreads;

static struct thread *thread_find(pid_t tid)
{
	for (struct thread *t = buckets[tid % NBUCKETS]; t; t = t->next)
		if (t->tid == tid) return t;
	return NULL;
}

static struct thread *thread_get(pid_t tid)
{
	struct thread *t = thread_find(tid);
	if (t) return t;
	t = calloc(1, sizeof *t);
	if (!t) { perror("hybrid-shim: calloc"); exit(70); }
	t->tid = tid;
	t->next = buckets[tid % NBUCKETS];
	buckets[tid % NBUCKETS] = t;
	nthreads++;
	return t;
}

static void thread_drop(pid_t tid)
{
	for (struct thread **p = &buckets[tid % NBUCKETS]; *p; p = &(*p)->next) {
		if ((*p)->tid == tid) {
			struct thread *t = *p;
			*p = t->next;
			if (t->w.unlink_path) unlink(t->w.unlink_path);
			exit_work_clear(&t->w);
			free(t);
			nthreads--;
			return;
		}
	}
}

/* ---------- registers ---------- */
arch_regs_t *regs_get(struct thread *t)
{
	if (!t->regs_valid) {
		if (arch_get_regs(t->tid, &t->regs) < 0) memset(&t->regs, 0, sizeof t->regs);
		t->regs_valid = 1;
	}
	return &t->regs;
}

void regs_dirty(struct thread *t) { t->regs_dirty = 1; }

/* ---------- tracee memory ---------- */
static int vm_ok = 1; /* process_vm_readv/writev usable; else PEEK/POKEDATA */

int mem_read(pid_t tid, unsigned long long addr, void *buf, size_t len)
{
	if (vm_ok) {
		struct iovec l = { buf, len }, r = { (void *)addr, len };
		ssize_t n = process_vm_readv(tid, &l, 1, &r, 1, 0);
		if (n == (ssize_t)len) return 0;
		if (n >= 0 || (errno != ENOSYS && errno != EPERM)) return -1;
		vm_ok = 0;
	}
	for (size_t off = 0; off < len; off += sizeof(long)) {
		errno = 0;
		long word = ptrace(PTRACE_PEEKDATA, tid, (void *)(addr + off), 0);
		if (errno) return -1;
		memcpy((char *)buf + off, &word, len - off < sizeof word ? len - off : sizeof word);
	}
	return 0;
}

int mem_write(pid_t tid, unsigned long long addr, const void *buf, size_t len)
{
	if (vm_ok) {
		struct iovec l = { (void *)buf, len }, r = { (void *)addr, len };
		ssize_t n = process_vm_writev(tid, &l, 1, &r, 1, 0);
		if (n == (ssize_t)len) return 0;
		if (n >= 0 || (errno != ENOSYS && errno != EPERM)) return -1;
		vm_ok = 0;
	}
	for (size_t off = 0; off < len; off += sizeof(long)) {
		long word = 0;
		size_t n = len - off < sizeof word ? len - off : sizeof word;
		if (n < sizeof word) {
			errno = 0;
			word = ptrace(PTRACE_PEEKDATA, tid, (void *)(addr + off), 0);
			if (errno) return -1;
		}
		memcpy(&word, (const char *)buf + off, n);
		if (ptrace(PTRACE_POKEDATA, tid, (void *)(addr + off), (void *)word) < 0) return -1;
	}
	return 0;
}

/* One read up to the end of the page (paths are short), more only when needed. A short or
 * failed process_vm_readv (gVisor answers EFAULT for some stack pages) falls back to PEEKDATA. */
int mem_read_str(pid_t tid, unsigned long long addr, char *buf, size_t cap)
{
	size_t got = 0;
	if (!addr) return -1;
	while (got < cap - 1) {
		size_t page_left = 4096 - ((addr + got) & 4095);
		size_t n = page_left < cap - 1 - got ? page_left : cap - 1 - got;
		ssize_t r = -1;
		if (vm_ok) {
			struct iovec l = { buf + got, n }, rv = { (void *)(addr + got), n };
			r = process_vm_readv(tid, &l, 1, &rv, 1, 0);
		}
		if (r <= 0) { /* word by word */
			for (r = 0; (size_t)r < n; r += (ssize_t)sizeof(long)) {
				errno = 0;
				long word = ptrace(PTRACE_PEEKDATA, tid, (void *)(addr + got + (size_t)r), 0);
				if (errno) break;
				size_t k = n - (size_t)r < sizeof word ? n - (size_t)r : sizeof word;
				memcpy(buf + got + r, &word, k);
				if (memchr(&word, 0, k)) { r += (ssize_t)k; break; }
			}
			if (r <= 0) return -1;
			if ((size_t)r > n) r = (ssize_t)n;
		}
		if (memchr(buf + got, 0, (size_t)r)) return 0;
		got += (size_t)r;
	}
	return -1;
}

/* ---------- logging ---------- */
void trace_log(const char *fmt, ...)
{
	if (!T.log) return;
	va_list ap;
	va_start(ap, fmt);
	vfprintf(T.log, fmt, ap);
	va_end(ap);
	fputc('\n', T.log);
	fflush(T.log);
}

/* ---------- seccomp filter ---------- */
static int trapped(enum sc s)
{
	unsigned f = sc_table[s].family;
	if ((f & SCF_PATH) && T.path_rules) return 1;
	if ((f & (SCF_STATFS | SCF_FSTATFS)) && T.rules.n_statfs) return 1;
	if ((f & SCF_UNAME) && T.rules.uname_release) return 1;
	if ((f & SCF_BPF) && T.rules.bpf_cgroup_device) return 1;
	if ((f & SCF_MOUNT) && T.rules.mount_propagation) return 1;
	return 0;
}

/* Loads the filter in the calling (child) process. Returns 0 or -errno. Without CAP_SYS_ADMIN
 * the kernel requires no_new_privs; we set it only then, so setuid programs keep working as root. */
static int load_filter(void)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx) return -ENOMEM;
	seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ALLOW);
	int rc = 0;
	for (int s = 1; s < SC_COUNT && !rc; s++) {
		if (arch_sysno[s] < 0 || !trapped((enum sc)s)) continue;
		const struct scdesc *d = &sc_table[s];
		if (d->family & SCF_MOUNT) { /* only calls with a propagation flag (arg 3) */
			static const unsigned long long bits[] = { MS_SHARED, MS_PRIVATE, MS_SLAVE, MS_UNBINDABLE };
			for (size_t k = 0; k < 4 && !rc; k++)
				rc = seccomp_rule_add(ctx, SCMP_ACT_TRACE(0), arch_sysno[s], 1, SCMP_CMP(3, SCMP_CMP_MASKED_EQ, bits[k], bits[k]));
			continue;
		}
		if (d->family & SCF_BPF) { /* only the commands the cgroup device emulation looks at */
			static const unsigned cmds[] = { 5 /* BPF_PROG_LOAD */, 8 /* BPF_PROG_ATTACH */, 9 /* BPF_PROG_DETACH */, 16 /* BPF_PROG_QUERY */ };
			for (size_t k = 0; k < sizeof cmds / sizeof cmds[0] && !rc; k++)
				rc = seccomp_rule_add(ctx, SCMP_ACT_TRACE(0), arch_sysno[s], 1, SCMP_CMP(0, SCMP_CMP_MASKED_EQ, 0xFFFFFFFFULL, cmds[k]));
			continue;
		}
		if (d->dirfd[0] < 0 || T.rules.check_dirfd_paths || (d->family & ~SCF_PATH & ~SCF_OPEN)) {
			rc = seccomp_rule_add(ctx, SCMP_ACT_TRACE(0), arch_sysno[s], 0);
			continue;
		}
		/* *at syscalls: stop only when the dirfd is not a real descriptor, i.e. negative as an
		 * int (bit 31 of the low 32 bits): AT_FDCWD, or any other negative value, which the kernel
		 * ignores for an absolute path (runc opens /sys/fs/cgroup with openat2(-1, ...)) and
		 * refuses with EBADF for a relative one. Paths relative to a real dirfd never need a
		 * rewrite: the dirfd was itself opened through the redirect. Absolute paths given with a
		 * real dirfd are the one case skipped (README: limits); "checkDirfdPaths": true traps
		 * those too. */
		for (int k = 0; k < 2 && d->dirfd[k] >= 0 && !rc; k++)
			rc = seccomp_rule_add(ctx, SCMP_ACT_TRACE(0), arch_sysno[s], 1,
					      SCMP_CMP((unsigned)d->dirfd[k], SCMP_CMP_MASKED_EQ, 0x80000000ULL, 0x80000000ULL));
	}
	if (!rc) {
		rc = seccomp_load(ctx);
		if (rc == -EACCES || rc == -EPERM) {
			if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0) rc = seccomp_load(ctx);
		}
	}
	seccomp_release(ctx);
	return rc;
}

/* ---------- the child ---------- */
static pid_t start_child(char **argv, int use_seccomp, int *seccomp_ok)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) { perror("hybrid-shim: pipe"); exit(70); }
	pid_t pid = fork();
	if (pid < 0) { perror("hybrid-shim: fork"); exit(70); }
	if (pid == 0) {
		signal(SIGTERM, SIG_DFL); signal(SIGINT, SIG_DFL); signal(SIGHUP, SIG_DFL); signal(SIGQUIT, SIG_DFL);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		char ok = use_seccomp && load_filter() == 0;
		if (write(p[1], &ok, 1) != 1) _exit(70);
		kill(getpid(), SIGSTOP); /* wait to be seized */
		execvp(argv[0], argv);
		fprintf(stderr, "hybrid-shim: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	close(p[1]);
	char ok = 0;
	if (read(p[0], &ok, 1) != 1) ok = 0;
	close(p[0]);
	*seccomp_ok = ok;
	int st;
	if (waitpid(pid, &st, WUNTRACED) < 0 || !WIFSTOPPED(st)) {
		fprintf(stderr, "hybrid-shim: child did not stop before exec\n");
		exit(70);
	}
	long opts = PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK |
		    PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL | (ok ? PTRACE_O_TRACESECCOMP : 0);
	if (ptrace(PTRACE_SEIZE, pid, 0, (void *)opts) < 0) {
		int e = errno;
		kill(pid, SIGKILL);
		fprintf(stderr, "hybrid-shim: PTRACE_SEIZE: %s\n", strerror(e));
		exit(70);
	}
	thread_get(pid);
	kill(pid, SIGCONT);
	return pid;
}

/* ---------- signals sent to the tracer go to the traced command ---------- */
static volatile pid_t main_pid;
/* Only signals sent with kill()/sigqueue() are forwarded: terminal-generated ones (Ctrl-C,
 * si_code SI_KERNEL) already reach the command through its process group. */
static void forward(int sig, siginfo_t *info, void *ctx)
{
	(void)ctx;
	if (main_pid > 0 && info && info->si_code <= 0) kill(main_pid, sig);
}

/* ---------- resuming ---------- */
static void resume(struct thread *t, int sig)
{
	if (t->regs_dirty) {
		arch_set_regs(t->tid, &t->regs);
		t->regs_dirty = 0;
	}
	t->regs_valid = 0;
	int req = (!T.seccomp || t->want_exit) ? PTRACE_SYSCALL : PTRACE_CONT;
	ptrace(req, t->tid, 0, (void *)(long)sig);
}

static unsigned long seccomp_stops;

static void on_syscall_stop(struct thread *t, int from_seccomp)
{
	seccomp_stops += from_seccomp;
	if (!from_seccomp && T.seccomp && !t->want_exit) return; /* stray stop */
	if (!from_seccomp && t->skip_entry) { t->skip_entry = 0; return; }
	if (!T.seccomp) t->in_syscall = !t->in_syscall;
	int entry = from_seccomp || (!T.seccomp && t->in_syscall);
	if (entry) {
		arch_regs_t *r = regs_get(t);
		long nr = (long)REG_SYSNO(*r);
		t->sc = (nr >= 0 && nr < T.sc_by_nr_size) ? T.sc_by_nr[nr] : SC_NONE;
		if (t->sc != SC_NONE && trapped(t->sc)) handle_entry(t);
		if (from_seccomp && t->want_exit && T.seccomp_first) t->skip_entry = 1;
	} else if (t->want_exit) {
		t->want_exit = 0;
		handle_exit(t);
	}
}

/* ---------- main loop ---------- */
static int debug;
static int trace_loop(pid_t child)
{
	debug = T.debug = getenv("HYBRID_SHIM_DEBUG") != NULL && T.log;
	int main_status = -1;
	while (nthreads > 0) {
		int st;
		pid_t tid = waitpid(-1, &st, __WALL);
		if (tid < 0) {
			if (errno == EINTR) continue;
			if (errno == ECHILD) break;
			perror("hybrid-shim: waitpid");
			break;
		}
		if (WIFEXITED(st) || WIFSIGNALED(st)) {
			if (tid == child) main_status = st;
			thread_drop(tid);
			continue;
		}
		if (!WIFSTOPPED(st)) continue;
		struct thread *t = thread_get(tid);
		t->regs_valid = 0;
		int sig = WSTOPSIG(st), event = (unsigned)st >> 16, inject = 0;
		if (debug) trace_log("stop %d sig %d event %d nr %lld rax %lld", tid, sig, event, (long long)REG_SYSNO(*regs_get(t)), (long long)REG_RESULT(*regs_get(t)));
		if (sig == (SIGTRAP | 0x80)) {
			on_syscall_stop(t, 0);
		} else if (event == PTRACE_EVENT_SECCOMP) {
			on_syscall_stop(t, 1);
		} else if (event == PTRACE_EVENT_STOP) {
			if (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU) {
				/* group-stop: stay stopped until SIGCONT, without eating the tracer's waitpid */
				ptrace(PTRACE_LISTEN, tid, 0, 0);
				continue;
			}
			/* SIGTRAP: first stop of an auto-attached thread, or the end of a listen */
		} else if (event == PTRACE_EVENT_EXEC) {
			unsigned long former = 0;
			ptrace(PTRACE_GETEVENTMSG, tid, 0, &former);
			if ((pid_t)former != tid) { /* a non-leader thread exec'd and took the leader's tid */
				struct thread *f = thread_find((pid_t)former);
				if (f) { t->in_syscall = f->in_syscall; thread_drop((pid_t)former); }
			}
			t->scratch = 0; /* new address space */
			t->tgid = 0;
			exit_work_clear(&t->w);
			t->want_exit = 0;
			t->skip_entry = 0;
		} else if (event == PTRACE_EVENT_FORK || event == PTRACE_EVENT_VFORK || event == PTRACE_EVENT_CLONE) {
			unsigned long child_tid = 0;
			if (ptrace(PTRACE_GETEVENTMSG, tid, 0, &child_tid) == 0 && child_tid) {
				thread_get((pid_t)child_tid);
				cgroup_inherit(t, (pid_t)child_tid, event == PTRACE_EVENT_CLONE);
			}
		} else if (event == 0) {
			inject = sig; /* signal-delivery-stop: pass the signal on */
		}
		resume(t, inject);
	}
	return main_status;
}

/* ---------- probe ---------- */
static int probe(void)
{
	/* trap the path syscalls with no rules: the child's execve must give one seccomp stop */
	memset(&T.rules, 0, sizeof T.rules);
	T.path_rules = 1;
	T.sc_by_nr_size = (int)(sizeof T.sc_by_nr / sizeof T.sc_by_nr[0]);
	char *argv[] = { "true", NULL };
	int ok;
	pid_t pid = start_child(argv, 1, &ok);
	T.seccomp = ok;
	int st = trace_loop(pid);
	int traced = st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
	int sec = ok && seccomp_stops > 0;
	printf("{\"ptrace\":%s,\"seccompTrace\":%s,\"detail\":\"%s\"}\n", traced ? "true" : "false", sec ? "true" : "false",
	       !traced ? "the traced probe command did not exit cleanly"
	       : sec ? "PTRACE_SEIZE and a SECCOMP_RET_TRACE filter work"
	       : "PTRACE_SEIZE works; no seccomp stop (filter unavailable): PTRACE_SYSCALL fallback");
	return traced ? 0 : 1;
}

static void usage(void)
{
	fprintf(stderr, "usage: hybrid-shim --rules FILE [--trace-log FILE] [--no-seccomp] -- CMD [ARGS...]\n"
			"       hybrid-shim --probe\n");
	exit(64);
}

static void remove_dir_files(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d) return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.') continue;
		char p[4352];
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		unlink(p);
	}
	closedir(d);
}

/* Removes hybrid-shim.<pid>.* dirs left in an explicitly configured runtimeDir by tracers that
 * were killed (SIGKILL leaves no chance to clean up). Only there: pids are compared, so the dir
 * must not be shared between pid namespaces (a gVisor sandbox shares the host's /tmp over 9p,
 * and its pid and namespace ids are not comparable with the host's). */
static void sweep_stale(const char *base)
{
	DIR *d = opendir(base);
	if (!d) return;
	struct dirent *e;
	while ((e = readdir(d))) {
		int pid;
		char rest[2];
		if (sscanf(e->d_name, "hybrid-shim.%d.%1s", &pid, rest) != 2 || pid <= 0 || pid == getpid()) continue;
		if (kill(pid, 0) == 0 || errno != ESRCH) continue;
		char p[4352];
		snprintf(p, sizeof p, "%s/%s", base, e->d_name);
		remove_dir_files(p);
		rmdir(p);
	}
	closedir(d);
}

/* Created on the first synthesized file (handlers.c), removed at exit. */
void make_runtime_dir(void)
{
	if (T.runtime_dir) return;
	const char *base = T.rules.runtime_dir ? T.rules.runtime_dir : getenv("TMPDIR");
	if (!base || !*base) base = "/tmp";
	if (T.rules.runtime_dir) sweep_stale(base);
	char tmpl[4096];
	snprintf(tmpl, sizeof tmpl, "%s/hybrid-shim.%d.XXXXXX", base, (int)getpid());
	if (!mkdtemp(tmpl)) { /* not fatal while tracing: the file is then not synthesized */
		trace_log("cannot create runtime dir %s: %s", tmpl, strerror(errno));
		return;
	}
	chmod(tmpl, 0755);
	T.runtime_dir = strdup(tmpl);
}

static void remove_runtime_dir(void)
{
	if (!T.runtime_dir) return;
	remove_dir_files(T.runtime_dir);
	rmdir(T.runtime_dir);
	free(T.runtime_dir);
	T.runtime_dir = NULL;
}

int main(int argc, char **argv)
{
	const char *rules_file = NULL, *log_file = NULL;
	int use_seccomp = 1, i;
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--")) { i++; break; }
		else if (!strcmp(argv[i], "--probe")) return probe();
		else if (!strcmp(argv[i], "--rules") && i + 1 < argc) rules_file = argv[++i];
		else if (!strcmp(argv[i], "--trace-log") && i + 1 < argc) log_file = argv[++i];
		else if (!strcmp(argv[i], "--no-seccomp")) use_seccomp = 0;
		else if (!strcmp(argv[i], "--help")) usage();
		else { fprintf(stderr, "hybrid-shim: unknown argument %s\n", argv[i]); usage(); }
	}
	if (!rules_file) { fprintf(stderr, "hybrid-shim: --rules FILE is required\n"); usage(); }
	if (i >= argc) { fprintf(stderr, "hybrid-shim: no command given after --\n"); usage(); }
	if (rules_load(rules_file, &T.rules) < 0) return 65;
	if (log_file && !(T.log = fopen(log_file, "ae"))) {
		fprintf(stderr, "hybrid-shim: --trace-log %s: %s\n", log_file, strerror(errno));
		return 73;
	}
	if (T.rules.mountinfo_on || T.rules.cgroup_on) {
		const char *base = T.rules.runtime_dir ? T.rules.runtime_dir : getenv("TMPDIR");
		if (!base || !*base) base = "/tmp";
		if (access(base, W_OK | X_OK) < 0) {
			fprintf(stderr, "hybrid-shim: runtime dir %s is not writable: %s\n", base, strerror(errno));
			return 73;
		}
	}
	T.path_rules = T.rules.n_redirects || T.rules.proc_sys_dir || T.rules.mountinfo_on || T.rules.cgroup_on;
	T.sc_by_nr_size = (int)(sizeof T.sc_by_nr / sizeof T.sc_by_nr[0]);
	for (int s = 1; s < SC_COUNT; s++)
		if (arch_sysno[s] >= 0 && arch_sysno[s] < T.sc_by_nr_size) T.sc_by_nr[arch_sysno[s]] = (enum sc)s;
	struct utsname u;
	memset(&u, 0, sizeof u);
	int major = 0, minor = 0;
	if (uname(&u) == 0 && sscanf(u.release, "%d.%d", &major, &minor) == 2)
		T.seccomp_first = major < 4 || (major == 4 && minor < 8);
	/* uname override only below a release: the tracee runs on this same kernel, so when it is not
	 * below, uname need not be trapped at all */
	if (T.rules.uname_release && T.rules.uname_if_below && u.release[0] && !version_below(u.release, T.rules.uname_if_below)) {
		free(T.rules.uname_release);
		T.rules.uname_release = NULL;
	}

	struct sigaction sa = { 0 };
	sa.sa_sigaction = forward;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	for (int s = 0, sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 }; s < 6; s++) sigaction(sigs[s], &sa, NULL);

	int ok;
	pid_t child = start_child(argv + i, use_seccomp, &ok);
	T.seccomp = ok;
	main_pid = child;
	if (use_seccomp && !ok) trace_log("seccomp filter unavailable: PTRACE_SYSCALL fallback");
	trace_log("tracing pid %d (%s mode)", child, ok ? "seccomp" : "syscall");
	int st = trace_loop(child);
	main_pid = 0;
	remove_runtime_dir();
	if (T.log) fclose(T.log);
	rules_free(&T.rules);
	if (st == -1) return 70;
	if (WIFEXITED(st)) return WEXITSTATUS(st);
	/* die of the same signal, without a core dump of the tracer */
	int sig = WTERMSIG(st);
	struct rlimit no_core = { 0, 0 };
	setrlimit(RLIMIT_CORE, &no_core);
	signal(sig, SIG_DFL);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	raise(sig);
	return 128 + sig;
}
