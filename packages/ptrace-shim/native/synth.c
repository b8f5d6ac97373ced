/* synth.c - content of synthesized /proc files:
 *   /proc/{self,thread-self,<pid>}/mountinfo, /proc/mounts, /proc/{self,thread-self,<pid>}/mounts:
 *     the real mountinfo of that process with the rules' rewrites, additions and hidden mounts;
 *   /proc/{self,thread-self,<pid>}/cgroup: the cgroupfs daemon's membership file <procsDir>/<tgid>,
 *     exactly `0::/path\n` (cgroup v2), or `0::/\n` when there is none. */
#define _GNU_SOURCE
#include "tracer.h"
#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

struct buf { char *p; size_t len, cap; };

static void put(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		if (!b->p) { perror("hybrid-shim: realloc"); exit(70); }
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}
static void puts_(struct buf *b, const char *s) { put(b, s, strlen(s)); }

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "re");
	if (!f) return NULL;
	struct buf b = { 0 };
	char chunk[8192];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) put(&b, chunk, n);
	fclose(f);
	if (!b.p) put(&b, "", 0);
	*len = b.len;
	return b.p;
}

/* one mountinfo line split into its fields (pointers into a private copy) */
struct mline {
	char *copy;
	char *id, *parent, *majmin, *root, *mp, *opts, *optional, *fstype, *source, *superopts;
};

static int parse_line(const char *line, struct mline *m)
{
	memset(m, 0, sizeof *m);
	m->copy = strdup(line);
	char *sep = strstr(m->copy, " - ");
	if (!sep) { free(m->copy); return -1; }
	*sep = 0;
	char *left = m->copy, *right = sep + 3, *save;
	m->id = strtok_r(left, " ", &save);
	m->parent = strtok_r(NULL, " ", &save);
	m->majmin = strtok_r(NULL, " ", &save);
	m->root = strtok_r(NULL, " ", &save);
	m->mp = strtok_r(NULL, " ", &save);
	m->opts = strtok_r(NULL, " ", &save);
	m->optional = save && *save ? save : "";
	m->fstype = strtok_r(right, " ", &save);
	m->source = strtok_r(NULL, " ", &save);
	m->superopts = strtok_r(NULL, " ", &save);
	if (!m->opts || !m->fstype) { free(m->copy); return -1; }
	if (!m->source) m->source = "none";
	if (!m->superopts) m->superopts = "rw";
	return 0;
}

static void emit(struct buf *b, const struct mline *m, int mounts_format)
{
	if (mounts_format) {
		char line[8192];
		snprintf(line, sizeof line, "%s %s %s %s 0 0\n", m->source, m->mp, m->fstype, m->opts);
		puts_(b, line);
		return;
	}
	char line[8192];
	snprintf(line, sizeof line, "%s %s %s %s %s %s%s%s - %s %s %s\n", m->id, m->parent, m->majmin, m->root, m->mp,
		 m->opts, *m->optional ? " " : "", m->optional, m->fstype, m->source, m->superopts);
	puts_(b, line);
}

static void apply(struct mline *m, const struct mi_entry *e)
{
	if (e->fstype) m->fstype = e->fstype;
	if (e->source) m->source = e->source;
	if (e->options) m->opts = e->options;
	if (e->super_options) m->superopts = e->super_options;
}

static char *synth_mountinfo(pid_t pid, int mounts_format, size_t *len)
{
	const struct rules *r = &T.rules;
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/mountinfo", pid);
	size_t rlen;
	char *real = read_file(path, &rlen);
	if (!real) return NULL;
	size_t n = 0, cap = 16;
	struct mline *lines = malloc(cap * sizeof *lines);
	long max_id = 0;
	for (char *save, *l = strtok_r(real, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (n == cap) lines = realloc(lines, (cap *= 2) * sizeof *lines);
		if (parse_line(l, &lines[n]) == 0) {
			long id = atol(lines[n].id);
			if (id > max_id) max_id = id;
			n++;
		}
	}
	free(real);
	const char *root_id = "1";
	for (size_t i = 0; i < n; i++) if (!strcmp(lines[i].mp, "/")) root_id = lines[i].id;
	int *used = calloc(r->n_mi_add + 1, sizeof *used);
	struct buf out = { 0 };
	for (size_t i = 0; i < n; i++) {
		struct mline m = lines[i];
		int hidden = 0;
		for (size_t h = 0; h < r->n_mi_hide; h++) {
			size_t hl = strlen(r->mi_hide[h]);
			hidden |= !strncmp(m.mp, r->mi_hide[h], hl) && (m.mp[hl] == 0 || m.mp[hl] == '/' || hl == 1);
		}
		if (hidden) continue;
		for (size_t k = 0; k < r->n_mi_rewrite; k++)
			if (!strcmp(m.mp, r->mi_rewrite[k].mount_point)) apply(&m, &r->mi_rewrite[k]);
		for (size_t k = 0; k < r->n_mi_add; k++)
			if (!strcmp(m.mp, r->mi_add[k].mount_point)) { apply(&m, &r->mi_add[k]); used[k] = 1; }
		emit(&out, &m, mounts_format);
	}
	for (size_t k = 0; k < r->n_mi_add; k++) {
		if (used[k]) continue;
		const struct mi_entry *e = &r->mi_add[k];
		struct mline m = { 0 };
		char id[32];
		snprintf(id, sizeof id, "%ld", max_id + 1 + (long)k);
		m.id = id;
		m.parent = (char *)root_id;
		m.majmin = "0:0";
		m.root = "/";
		m.optional = "";
		if (e->like)
			for (size_t i = 0; i < n; i++)
				if (!strcmp(lines[i].mp, e->like)) { m.majmin = lines[i].majmin; m.root = lines[i].root; }
		m.mp = e->mount_point;
		m.opts = e->options ? e->options : "rw,nosuid,nodev,noexec,relatime";
		m.fstype = e->fstype;
		m.source = e->source;
		m.superopts = e->super_options ? e->super_options : "rw";
		emit(&out, &m, mounts_format);
	}
	for (size_t i = 0; i < n; i++) free(lines[i].copy);
	free(lines);
	free(used);
	if (!out.p) puts_(&out, "");
	*len = out.len;
	return out.p;
}

static char *synth_cgroup(pid_t tgid, size_t *len)
{
	const struct rules *r = &T.rules;
	char path[PATH_MAX];
	char *s = NULL;
	if (r->cgroup_procs_dir) {
		snprintf(path, sizeof path, "%s/%d", r->cgroup_procs_dir, tgid);
		s = read_file(path, len);
	}
	if (!s || *len == 0) {
		free(s);
		s = strdup("0::/\n");
		*len = 5;
	}
	return s;
}

/* Splits "/proc/<who>/<what>" with who in self, thread-self or digits. */
static int proc_parts(const char *path, char *who, size_t wcap, const char **what)
{
	const char *p = path + 6, *slash = strchr(p, '/');
	if (!slash || (size_t)(slash - p) >= wcap || slash == p) return -1;
	memcpy(who, p, (size_t)(slash - p));
	who[slash - p] = 0;
	if (strcmp(who, "self") && strcmp(who, "thread-self"))
		for (const char *c = who; *c; c++) if (!isdigit((unsigned char)*c)) return -1;
	*what = slash + 1;
	return 0;
}

char *synth_content(struct thread *t, const char *path, size_t *len)
{
	const struct rules *r = &T.rules;
	if (r->mountinfo_on && !strcmp(path, "/proc/mounts")) return synth_mountinfo(t->tid, 1, len);
	char who[32];
	const char *what;
	if (proc_parts(path, who, sizeof who, &what) < 0) return NULL;
	int is_self = !strcmp(who, "self") || !strcmp(who, "thread-self");
	pid_t pid = is_self ? t->tid : atoi(who);
	if (r->mountinfo_on && !strcmp(what, "mountinfo")) return synth_mountinfo(pid, 0, len);
	if (r->mountinfo_on && !strcmp(what, "mounts")) return synth_mountinfo(pid, 1, len);
	if (r->cgroup_on && !strcmp(what, "cgroup")) return synth_cgroup(is_self ? thread_tgid(t) : pid, len);
	return NULL;
}
