/*
 * fake-cni-client: the native fast path of the fake-cni CNI plugin.
 *
 * Installed as the plugin executable (`fake-cni`, or `host-local`), it does no CNI work itself:
 *   1. reads the network configuration from stdin;
 *   2. derives the server socket from it:
 *        <ipam.dataDir>/fake-cni.sock   when the config is a JSON object whose "ipam" object has
 *                                       an absolute string "dataDir" (the last one, as JSON.parse),
 *        /var/lib/cni/networks/fake-cni.sock  otherwise (host-local's default dataDir);
 *   3. sends "FCNI1\n", every CNI_* variable and FAKE_CNI_PROGRAM=<name it runs as> (each
 *      "KEY=VALUE\0"), an empty entry "\0", then the configuration, and shuts its write side;
 *   4. reads "<exit status>\n<stdout bytes>", writes the bytes to stdout, exits with the status.
 * When no server answers (no socket, ECONNREFUSED, a stale or foreign socket, a path too long
 * for sun_path, the connection closed without an answer) it execs the Node implementation,
 * `<directory of this executable>/fake-cni.cjs`, with the same environment (plus
 * FAKE_CNI_PROGRAM) and the same stdin (replayed through a memfd, else a pipe).
 * Failures of the client itself (stdin unreadable, out of memory, the fallback not runnable)
 * print the CNI spec's error object with code 5 (I/O failure) and exit 1. A server that takes the
 * whole request but gives no answer within FAKE_CNI_TIMEOUT_MS (default 60000 ms; e.g. a stopped
 * process) gets code 11 (try again later), not a fallback: it may still be running the call.
 * FAKE_CNI_DEBUG=1 writes one line to stderr saying which way the call went.
 *
 * The protocol is described in src/plugin/server.ts. Build: `make -C native` (C99 + POSIX, Linux).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

extern char **environ;

#define MAX_BYTES (16u << 20)   /* largest config / answer handled */
#define DEFAULT_DATA_DIR "/var/lib/cni/networks"
#define SOCKET_NAME "/fake-cni.sock"
#define BUNDLE_NAME "fake-cni.cjs"
#define CNI_IO_FAILURE 5
#define CNI_TRY_AGAIN 11
#define ANSWER_TIMEOUT_MS 60000 /* default; FAKE_CNI_TIMEOUT_MS overrides */

static int debug;
static char cni_version[16] = "1.1.0";

struct buf {
	char *p;
	size_t len, cap;
};

static int buf_add(struct buf *b, const void *data, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p)
			return -1;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

/* Reads fd to EOF into b. 0 on success, -1 with errno set (EFBIG past MAX_BYTES). */
static int read_all(int fd, struct buf *b)
{
	char chunk[65536];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof chunk);
		if (n == 0)
			return 0;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (b->len + (size_t)n > MAX_BYTES) {
			errno = EFBIG;
			return -1;
		}
		if (buf_add(b, chunk, (size_t)n) < 0)
			return -1;
	}
}

static int write_all(int fd, const char *p, size_t n, int sock)
{
	while (n > 0) {
		ssize_t w = sock ? send(fd, p, n, MSG_NOSIGNAL) : write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void debugf(const char *fmt, ...)
{
	if (!debug)
		return;
	va_list ap;
	va_start(ap, fmt);
	fputs("fake-cni-client: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* Prints the CNI error object (spec section "Error") with `code` and exits 1. */
static void cni_fail_code(int code, const char *msg, const char *detail)
{
	printf("{\"cniVersion\":\"%s\",\"code\":%d,\"msg\":\"fake-cni-client: ", cni_version, code);
	for (const char *s = msg; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	printf("\",\"details\":\"%s\"}\n", detail);
	fflush(stdout);
	exit(1);
}

/* A failure of the client itself: code 5 (I/O failure). */
static void cni_fail(const char *msg, const char *detail)
{
	cni_fail_code(CNI_IO_FAILURE, msg, detail);
}

/* ---- a minimal JSON reader: just enough to find ipam.dataDir and cniVersion ---- */

struct scan {
	const char *p, *end;
};

static void ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int hex4(struct scan *s, unsigned *out)
{
	if (s->end - s->p < 4)
		return -1;
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		int h = hexval(s->p[i]);
		if (h < 0)
			return -1;
		v = v * 16 + (unsigned)h;
	}
	s->p += 4;
	*out = v;
	return 0;
}

/*
 * Reads the JSON string at s->p. Decodes it into out (NUL-terminated, at most cap-1 bytes) when
 * out is not NULL. Returns 0, or -1 when malformed, too long, or containing NUL.
 */
static int json_string(struct scan *s, char *out, size_t cap)
{
	size_t n = 0;
	if (s->p >= s->end || *s->p != '"')
		return -1;
	s->p++;
	while (s->p < s->end && *s->p != '"') {
		unsigned cp = (unsigned char)*s->p++;
		if (cp < 0x20)
			return -1;
		if (cp == '\\') {
			if (s->p >= s->end)
				return -1;
			char e = *s->p++;
			switch (e) {
			case '"': case '\\': case '/': cp = (unsigned char)e; break;
			case 'b': cp = '\b'; break;
			case 'f': cp = '\f'; break;
			case 'n': cp = '\n'; break;
			case 'r': cp = '\r'; break;
			case 't': cp = '\t'; break;
			case 'u':
				if (hex4(s, &cp) < 0)
					return -1;
				if (cp >= 0xd800 && cp < 0xdc00) { /* surrogate pair */
					unsigned lo;
					if (s->end - s->p < 2 || s->p[0] != '\\' || s->p[1] != 'u')
						return -1;
					s->p += 2;
					if (hex4(s, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
						return -1;
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				} else if (cp >= 0xdc00 && cp <= 0xdfff) {
					return -1;
				}
				if (cp == 0)
					return -1;
				if (out) { /* encode as UTF-8 */
					char u[4];
					size_t k;
					if (cp < 0x80) { u[0] = (char)cp; k = 1; }
					else if (cp < 0x800) { u[0] = (char)(0xc0 | cp >> 6); u[1] = (char)(0x80 | (cp & 63)); k = 2; }
					else if (cp < 0x10000) { u[0] = (char)(0xe0 | cp >> 12); u[1] = (char)(0x80 | (cp >> 6 & 63)); u[2] = (char)(0x80 | (cp & 63)); k = 3; }
					else { u[0] = (char)(0xf0 | cp >> 18); u[1] = (char)(0x80 | (cp >> 12 & 63)); u[2] = (char)(0x80 | (cp >> 6 & 63)); u[3] = (char)(0x80 | (cp & 63)); k = 4; }
					if (n + k >= cap)
						return -1;
					memcpy(out + n, u, k);
					n += k;
				}
				continue;
			default:
				return -1;
			}
		}
		if (out) {
			if (n + 1 >= cap)
				return -1;
			out[n++] = (char)cp;
		}
	}
	if (s->p >= s->end)
		return -1;
	s->p++;
	if (out)
		out[n] = '\0';
	return 0;
}

/* Skips one JSON value. 0, or -1 when malformed or nested deeper than 64. */
static int json_skip(struct scan *s, int depth)
{
	ws(s);
	if (s->p >= s->end || depth > 64)
		return -1;
	char c = *s->p;
	if (c == '"')
		return json_string(s, NULL, 0);
	if (c == '{' || c == '[') {
		char close = c == '{' ? '}' : ']';
		s->p++;
		ws(s);
		if (s->p < s->end && *s->p == close) {
			s->p++;
			return 0;
		}
		for (;;) {
			if (c == '{') {
				ws(s);
				if (json_string(s, NULL, 0) < 0)
					return -1;
				ws(s);
				if (s->p >= s->end || *s->p++ != ':')
					return -1;
			}
			if (json_skip(s, depth + 1) < 0)
				return -1;
			ws(s);
			if (s->p >= s->end)
				return -1;
			if (*s->p == ',') {
				s->p++;
				continue;
			}
			if (*s->p++ == close)
				return 0;
			return -1;
		}
	}
	/* number, true, false, null */
	const char *start = s->p;
	while (s->p < s->end && strchr("+-.0123456789eEtrufalsn", *s->p))
		s->p++;
	return s->p > start ? 0 : -1;
}

/*
 * s->p at an object: finds the LAST member named key (JSON.parse keeps the last duplicate).
 * Returns 1 with *val at its value, 0 when absent, -1 when the object is malformed.
 */
static int json_member(struct scan s, const char *key, struct scan *val)
{
	int found = 0;
	char name[64];
	ws(&s);
	if (s.p >= s.end || *s.p != '{')
		return -1;
	s.p++;
	ws(&s);
	if (s.p < s.end && *s.p == '}')
		return 0;
	for (;;) {
		ws(&s);
		struct scan k = s;
		int named = json_string(&k, name, sizeof name) == 0;
		if (json_string(&s, NULL, 0) < 0)
			return -1;
		ws(&s);
		if (s.p >= s.end || *s.p++ != ':')
			return -1;
		ws(&s);
		if (named && strcmp(name, key) == 0) {
			*val = s;
			found = 1;
		}
		if (json_skip(&s, 1) < 0)
			return -1;
		ws(&s);
		if (s.p >= s.end)
			return -1;
		if (*s.p == ',') {
			s.p++;
			continue;
		}
		if (*s.p == '}')
			return found;
		return -1;
	}
}

/* The socket path for a configuration (rule in the header comment). */
static void socket_for(const struct buf *conf, char *path, size_t cap)
{
	struct scan all = { conf->p, conf->p + conf->len }, ipam, dd, ver;
	char dir[PATH_MAX] = DEFAULT_DATA_DIR;
	char v[16];
	if (json_member(all, "cniVersion", &ver) == 1 && json_string(&ver, v, sizeof v) == 0 && v[0] &&
	    strspn(v, "0123456789.") == strlen(v))
		memcpy(cni_version, v, sizeof v); /* used in the client's own error objects */
	if (json_member(all, "ipam", &ipam) == 1 && json_member(ipam, "dataDir", &dd) == 1) {
		char d[PATH_MAX];
		if (json_string(&dd, d, sizeof d) == 0 && d[0] == '/')
			memcpy(dir, d, sizeof d);
	}
	size_t n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		dir[--n] = '\0';
	snprintf(path, cap, "%s%s", n == 1 ? "" : dir, SOCKET_NAME);
}

static const char *program_name(const char *argv0)
{
	const char *slash = strrchr(argv0, '/');
	return slash ? slash + 1 : argv0;
}

/*
 * Asks the server, waiting at most timeout_ms for each of connect, send and the answer. Returns 0
 * with *status and the answer's stdout bytes in out; -1 when no server took the call (then the
 * caller falls back); -2 when a server took the whole request but did not answer in time (it may
 * still be running it, so the caller must not run it again); *why says what failed.
 */
static int ask_server(const char *path, const struct buf *conf, const char *prog, long timeout_ms, int *status, struct buf *out, const char **why)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof addr.sun_path) {
		*why = "socket path too long";
		return -1;
	}
	strcpy(addr.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*why = strerror(errno);
		return -1;
	}
	/* Bounds connect (a full backlog), sending and waiting for the answer. */
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
		*why = strerror(errno);
		close(fd);
		return -1;
	}
	struct buf req = { 0 };
	int ok = buf_add(&req, "FCNI1\n", 6) == 0;
	for (char **e = environ; ok && *e; e++)
		if (strncmp(*e, "CNI_", 4) == 0)
			ok = buf_add(&req, *e, strlen(*e) + 1) == 0; /* with its NUL */
	ok = ok && buf_add(&req, "FAKE_CNI_PROGRAM=", 17) == 0 && buf_add(&req, prog, strlen(prog) + 1) == 0;
	ok = ok && buf_add(&req, "", 1) == 0 && buf_add(&req, conf->p ? conf->p : "", conf->len) == 0;
	if (!ok) {
		free(req.p);
		close(fd);
		cni_fail("out of memory", "ENOMEM");
	}
	int sent = write_all(fd, req.p, req.len, 1) == 0 && shutdown(fd, SHUT_WR) == 0;
	free(req.p);
	if (!sent) {
		*why = strerror(errno);
		close(fd);
		return -1;
	}
	if (read_all(fd, out) < 0) {
		int timed_out = errno == EAGAIN || errno == EWOULDBLOCK;
		*why = strerror(errno);
		close(fd);
		return timed_out ? -2 : -1;
	}
	close(fd);
	/* "<status>\n" */
	char *nl = out->len ? memchr(out->p, '\n', out->len < 12 ? out->len : 12) : NULL;
	if (!nl || nl == out->p) {
		*why = "connection closed without an answer";
		return -1;
	}
	int st = 0;
	for (char *c = out->p; c < nl; c++) {
		if (*c < '0' || *c > '9') {
			*why = "malformed answer";
			return -1;
		}
		st = st * 10 + (*c - '0');
	}
	*status = st > 255 ? 1 : st;
	return 0;
}

/* Puts data back on fd 0 for the exec'd fallback: a memfd, else a pipe (data up to its size). */
static int replay_stdin(const struct buf *conf)
{
	int fd = memfd_create("fake-cni-stdin", 0);
	if (fd >= 0) {
		if (write_all(fd, conf->p ? conf->p : "", conf->len, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
			close(fd);
			return -1;
		}
	} else {
		int p[2];
		if (pipe(p) < 0)
			return -1;
		if (conf->len > 65536)
			fcntl(p[1], F_SETPIPE_SZ, (int)conf->len);
		int w = write_all(p[1], conf->p ? conf->p : "", conf->len, 0); /* blocks if larger than the pipe */
		close(p[1]);
		if (w < 0) {
			close(p[0]);
			return -1;
		}
		fd = p[0];
	}
	if (fd != 0) {
		if (dup2(fd, 0) < 0)
			return -1;
		close(fd);
	}
	return 0;
}

static void fallback(const char *argv0, const struct buf *conf, const char *why)
{
	char self[PATH_MAX], bundle[PATH_MAX + sizeof BUNDLE_NAME];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n > 0) {
		self[n] = '\0';
	} else if (strchr(argv0, '/') && strlen(argv0) < sizeof self) {
		strcpy(self, argv0);
	} else {
		cni_fail("cannot locate its own directory to run the Node fallback", "readlink /proc/self/exe");
	}
	char *slash = strrchr(self, '/');
	*slash = '\0';
	snprintf(bundle, sizeof bundle, "%s/%s", self[0] ? self : "", BUNDLE_NAME);
	debugf("fallback to %s (%s)", bundle, why);
	if (setenv("FAKE_CNI_PROGRAM", program_name(argv0), 1) < 0 || replay_stdin(conf) < 0)
		cni_fail("cannot prepare the Node fallback", strerror(errno));
	char *args[] = { bundle, NULL };
	execv(bundle, args); /* its shebang: #!/usr/bin/env node */
	int err = errno;
	char *nargs[] = { "node", bundle, NULL };
	if (err == ENOEXEC || err == EACCES)
		execvp("node", nargs);
	char msg[PATH_MAX + 64];
	snprintf(msg, sizeof msg, "no server answered and %s cannot be run", bundle);
	cni_fail(msg, strerror(err));
}

int main(int argc, char **argv)
{
	(void)argc;
	const char *argv0 = argv[0] ? argv[0] : "fake-cni";
	const char *d = getenv("FAKE_CNI_DEBUG");
	debug = d && *d && strcmp(d, "0") != 0;

	struct buf conf = { 0 };
	if (read_all(0, &conf) < 0 && errno != EBADF) {
		int err = errno;
		free(conf.p);
		cni_fail("cannot read stdin", strerror(err));
	}
	char path[PATH_MAX + sizeof SOCKET_NAME];
	socket_for(&conf, path, sizeof path);

	int status = 1;
	struct buf out = { 0 };
	const char *why = "";
	long timeout_ms = ANSWER_TIMEOUT_MS;
	const char *t = getenv("FAKE_CNI_TIMEOUT_MS");
	if (t && *t) {
		char *end;
		long v = strtol(t, &end, 10);
		if (!*end && v > 0)
			timeout_ms = v;
	}
	int r = ask_server(path, &conf, program_name(argv0), timeout_ms, &status, &out, &why);
	if (r == -2) {
		char msg[PATH_MAX + 160];
		snprintf(msg, sizeof msg, "the server at %s took the call but did not answer within %ld ms; try again later", path, timeout_ms);
		debugf("server %s timed out", path);
		cni_fail_code(CNI_TRY_AGAIN, msg, "ETIMEDOUT");
	}
	if (r < 0) {
		free(out.p);
		fallback(argv0, &conf, why); /* does not return */
	}
	debugf("server %s answered %d", path, status);
	char *body = memchr(out.p, '\n', out.len) + 1;
	int w = write_all(1, body, out.len - (size_t)(body - out.p), 0);
	free(out.p);
	free(conf.p);
	return w < 0 ? 1 : status;
}
