/* rules.c - reads and validates the rules JSON (second validation after the TypeScript zod schema:
 * the tracer may be run by hand). Every error names the offending field. */
#include "rules.h"
#include "json.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct { const char *name; long long magic; } fs_names[] = {
	{ "ext2", 0xEF53 }, { "ext3", 0xEF53 }, { "ext4", 0xEF53 }, { "xfs", 0x58465342 },
	{ "btrfs", 0x9123683E }, { "tmpfs", 0x01021994 }, { "v9fs", 0x01021997 }, { "9p", 0x01021997 },
	{ "fuse", 0x65735546 }, { "overlayfs", 0x794C7630 }, { "overlay", 0x794C7630 },
	{ "cgroup2", 0x63677270 }, { "cgroup", 0x0027E0EB }, { "proc", 0x9FA0 }, { "sysfs", 0x62656572 },
};

long long fs_magic_by_name(const char *name)
{
	for (size_t i = 0; i < sizeof fs_names / sizeof fs_names[0]; i++)
		if (!strcmp(fs_names[i].name, name)) return fs_names[i].magic;
	return -1;
}

static const char *g_file;
static int bad(const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, "hybrid-shim: rules %s: ", g_file);
	fprintf(stderr, fmt, a, b);
	fputc('\n', stderr);
	return -1;
}

/* every key of obj must be in the NULL-terminated list */
static int only_keys(const jv *obj, const char *where, const char *const *allowed)
{
	for (size_t i = 0; i < obj->len; i++) {
		int ok = 0;
		for (const char *const *a = allowed; *a; a++) ok |= !strcmp(*a, obj->keys[i]);
		if (!ok) return bad("unknown key \"%s\" in %s", obj->keys[i], where);
	}
	return 0;
}

static int want(const jv *v, enum jv_kind k, const char *where)
{
	if (v->kind != k) {
		fprintf(stderr, "hybrid-shim: rules %s: %s must be a%s %s, got %s\n", g_file, where,
			k == JV_ARR || k == JV_OBJ ? "n" : "", json_kind_name(k), json_kind_name(v->kind));
		return -1;
	}
	return 0;
}

/* optional string member; abs requires an absolute path */
static int get_str(const jv *obj, const char *key, const char *where, int required, int abs, char **out)
{
	jv *v = json_get(obj, key);
	char w[256];
	snprintf(w, sizeof w, "%s.%s", where, key);
	if (!v) return required ? bad("%s is required%s", w, "") : 0;
	if (want(v, JV_STR, w)) return -1;
	if (abs && v->str[0] != '/') return bad("%s must be an absolute path, got \"%s\"", w, v->str);
	if (required && !v->str[0]) return bad("%s must not be empty%s", w, "");
	*out = strdup(v->str);
	return 0;
}

static int get_fstype(const jv *v, const char *where, long long *out)
{
	if (v->kind == JV_NUM) {
		if (v->num < 0 || v->num > 0xFFFFFFFFLL) return bad("%s must be a 32-bit filesystem magic%s", where, "");
		*out = v->num;
		return 0;
	}
	if (v->kind == JV_STR) {
		long long m = fs_magic_by_name(v->str);
		if (m < 0) return bad("%s: unknown filesystem name \"%s\" (use a number or ext4, xfs, tmpfs, v9fs, fuse, overlayfs, cgroup2, cgroup, proc, sysfs, btrfs)", where, v->str);
		*out = m;
		return 0;
	}
	return bad("%s must be a filesystem magic number or name%s", where, "");
}

static int cmp_redirect(const void *a, const void *b)
{
	const struct redirect *x = a, *y = b;
	return (int)y->from_len - (int)x->from_len;
}

static int load_mi_list(const jv *arr, const char *where, struct mi_entry **out, size_t *n, int is_add)
{
	static const char *const keys[] = { "mountPoint", "fsType", "source", "options", "superOptions", "like", NULL };
	if (want(arr, JV_ARR, where)) return -1;
	*out = calloc(arr->len + 1, sizeof **out);
	*n = arr->len;
	for (size_t i = 0; i < arr->len; i++) {
		char w[128];
		snprintf(w, sizeof w, "%s[%zu]", where, i);
		jv *e = arr->items[i];
		struct mi_entry *m = &(*out)[i];
		if (want(e, JV_OBJ, w) || only_keys(e, w, keys)) return -1;
		if (get_str(e, "mountPoint", w, 1, 1, &m->mount_point) || get_str(e, "fsType", w, is_add, 0, &m->fstype) ||
		    get_str(e, "source", w, is_add, 0, &m->source) || get_str(e, "options", w, 0, 0, &m->options) ||
		    get_str(e, "superOptions", w, 0, 0, &m->super_options) || get_str(e, "like", w, 0, 1, &m->like))
			return -1;
		for (const char *p = m->mount_point; *p; p++)
			if (*p == ' ' || *p == '\n') return bad("%s.mountPoint must not contain blanks: \"%s\"", w, m->mount_point);
	}
	return 0;
}

int rules_load(const char *file, struct rules *r)
{
	static const char *const top[] = { "version", "statfs", "redirects", "procSys", "kmsg", "mountinfo", "cgroup", "uname", "runtimeDir", "checkDirfdPaths", "bpfCgroupDevice", "mountPropagation", NULL };
	memset(r, 0, sizeof *r);
	g_file = file;
	FILE *f = fopen(file, "re");
	if (!f) return bad("cannot open: %s%s", strerror(errno), "");
	char *text = NULL;
	size_t cap = 0, len = 0, n;
	do {
		if (len + 4096 > cap) text = realloc(text, cap = cap * 2 + 8192);
		n = fread(text + len, 1, cap - len - 1, f);
		len += n;
	} while (n > 0);
	fclose(f);
	text[len] = 0;
	char err[256];
	jv *root = json_parse(text, err, sizeof err);
	free(text);
	if (!root) return bad("%s%s", err, "");
	int rc = -1;
	if (want(root, JV_OBJ, "the top level") || only_keys(root, "the top level", top)) goto out;
	jv *v = json_get(root, "version");
	if (!v || v->kind != JV_NUM || v->num != 1) { bad("version must be 1%s%s", "", ""); goto out; }

	if ((v = json_get(root, "statfs"))) {
		static const char *const keys[] = { "pathPrefix", "mount", "fromType", "type", NULL };
		if (want(v, JV_ARR, "statfs")) goto out;
		r->statfs = calloc(v->len + 1, sizeof *r->statfs);
		r->n_statfs = v->len;
		for (size_t i = 0; i < v->len; i++) {
			char w[64];
			snprintf(w, sizeof w, "statfs[%zu]", i);
			jv *e = v->items[i];
			struct statfs_rule *s = &r->statfs[i];
			if (want(e, JV_OBJ, w) || only_keys(e, w, keys)) goto out;
			if (get_str(e, "pathPrefix", w, 0, 1, &s->path_prefix) || get_str(e, "mount", w, 0, 1, &s->mount)) goto out;
			jv *t = json_get(e, "type");
			if (!t) { bad("%s.type is required%s", w, ""); goto out; }
			char tw[80];
			snprintf(tw, sizeof tw, "%s.type", w);
			if (get_fstype(t, tw, &s->ftype)) goto out;
			if ((t = json_get(e, "fromType"))) {
				snprintf(tw, sizeof tw, "%s.fromType", w);
				if (get_fstype(t, tw, &s->from_type)) goto out;
				s->has_from = 1;
			}
			if (!s->path_prefix && !s->mount && !s->has_from) { bad("%s needs at least one of pathPrefix, mount, fromType%s", w, ""); goto out; }
		}
	}
	jv *kmsg = json_get(root, "kmsg");
	if ((v = json_get(root, "redirects")) || kmsg) {
		size_t nv = v ? v->len : 0;
		if (v && want(v, JV_ARR, "redirects")) goto out;
		r->redirects = calloc(nv + 2, sizeof *r->redirects);
		for (size_t i = 0; i < nv; i++) {
			char w[64];
			snprintf(w, sizeof w, "redirects[%zu]", i);
			jv *e = v->items[i];
			static const char *const keys[] = { "from", "to", NULL };
			struct redirect *d = &r->redirects[r->n_redirects++];
			if (want(e, JV_OBJ, w) || only_keys(e, w, keys) || get_str(e, "from", w, 1, 1, &d->from) || get_str(e, "to", w, 1, 1, &d->to)) goto out;
			d->from_len = strlen(d->from);
			while (d->from_len > 1 && d->from[d->from_len - 1] == '/') d->from[--d->from_len] = 0;
			if (d->from_len == 1) { bad("%s.from must not be \"/\" (redirecting everything)%s", w, ""); goto out; }
		}
		if (kmsg) {
			if (want(kmsg, JV_STR, "kmsg")) goto out;
			if (kmsg->str[0] != '/') { bad("kmsg must be an absolute path, got \"%s\"%s", kmsg->str, ""); goto out; }
			struct redirect *d = &r->redirects[r->n_redirects++];
			d->from = strdup("/dev/kmsg");
			d->to = strdup(kmsg->str);
			d->from_len = strlen(d->from);
		}
		qsort(r->redirects, r->n_redirects, sizeof *r->redirects, cmp_redirect);
	}
	if ((v = json_get(root, "procSys"))) {
		static const char *const keys[] = { "shadowDir", "createOnWrite", NULL };
		if (want(v, JV_OBJ, "procSys") || only_keys(v, "procSys", keys) || get_str(v, "shadowDir", "procSys", 1, 1, &r->proc_sys_dir)) goto out;
		jv *c = json_get(v, "createOnWrite");
		r->proc_sys_create = 1;
		if (c) {
			if (want(c, JV_BOOL, "procSys.createOnWrite")) goto out;
			r->proc_sys_create = (int)c->num;
		}
	}
	if ((v = json_get(root, "mountinfo"))) {
		static const char *const keys[] = { "rewrite", "add", "hide", NULL };
		if (want(v, JV_OBJ, "mountinfo") || only_keys(v, "mountinfo", keys)) goto out;
		r->mountinfo_on = 1;
		jv *a;
		if ((a = json_get(v, "rewrite")) && load_mi_list(a, "mountinfo.rewrite", &r->mi_rewrite, &r->n_mi_rewrite, 0)) goto out;
		if ((a = json_get(v, "add")) && load_mi_list(a, "mountinfo.add", &r->mi_add, &r->n_mi_add, 1)) goto out;
		if ((a = json_get(v, "hide"))) {
			if (want(a, JV_ARR, "mountinfo.hide")) goto out;
			r->mi_hide = calloc(a->len + 1, sizeof *r->mi_hide);
			for (size_t i = 0; i < a->len; i++) {
				if (a->items[i]->kind != JV_STR || a->items[i]->str[0] != '/') { bad("mountinfo.hide entries must be absolute paths%s%s", "", ""); goto out; }
				r->mi_hide[r->n_mi_hide++] = strdup(a->items[i]->str);
			}
		}
	}
	if ((v = json_get(root, "cgroup"))) {
		static const char *const keys[] = { "procsDir", NULL };
		if (want(v, JV_OBJ, "cgroup") || only_keys(v, "cgroup", keys) || get_str(v, "procsDir", "cgroup", 0, 1, &r->cgroup_procs_dir)) goto out;
		r->cgroup_on = 1;
	}
	if ((v = json_get(root, "uname"))) {
		static const char *const keys[] = { "release", "ifBelow", NULL };
		if (want(v, JV_OBJ, "uname") || only_keys(v, "uname", keys) || get_str(v, "release", "uname", 1, 0, &r->uname_release) ||
		    get_str(v, "ifBelow", "uname", 0, 0, &r->uname_if_below)) goto out;
		if (strlen(r->uname_release) > 64) { bad("uname.release is longer than 64 bytes%s%s", "", ""); goto out; }
	}
	if (get_str(root, "runtimeDir", "rules", 0, 1, &r->runtime_dir)) goto out;
	if ((v = json_get(root, "checkDirfdPaths"))) {
		if (want(v, JV_BOOL, "checkDirfdPaths")) goto out;
		r->check_dirfd_paths = (int)v->num;
	}
	if ((v = json_get(root, "mountPropagation"))) {
		if (want(v, JV_STR, "mountPropagation")) goto out;
		if (!strcmp(v->str, "ignore-unsupported")) r->mount_propagation = 1;
		else if (strcmp(v->str, "passthrough")) { bad("mountPropagation must be \"ignore-unsupported\" or \"passthrough\", not \"%s\"%s", v->str, ""); goto out; }
	}
	if ((v = json_get(root, "bpfCgroupDevice"))) {
		if (want(v, JV_STR, "bpfCgroupDevice")) goto out;
		if (!strcmp(v->str, "emulate")) r->bpf_cgroup_device = 1;
		else if (strcmp(v->str, "passthrough")) { bad("bpfCgroupDevice must be \"emulate\" or \"passthrough\", not \"%s\"%s", v->str, ""); goto out; }
	}
	rc = 0;
out:
	json_free(root);
	return rc;
}

static void free_mi(struct mi_entry *m, size_t n)
{
	for (size_t i = 0; m && i < n; i++) {
		free(m[i].mount_point); free(m[i].fstype); free(m[i].source);
		free(m[i].options); free(m[i].super_options); free(m[i].like);
	}
	free(m);
}

void rules_free(struct rules *r)
{
	for (size_t i = 0; i < r->n_statfs; i++) { free(r->statfs[i].path_prefix); free(r->statfs[i].mount); }
	free(r->statfs);
	for (size_t i = 0; i < r->n_redirects; i++) { free(r->redirects[i].from); free(r->redirects[i].to); }
	free(r->redirects);
	free_mi(r->mi_rewrite, r->n_mi_rewrite);
	free_mi(r->mi_add, r->n_mi_add);
	for (size_t i = 0; i < r->n_mi_hide; i++) free(r->mi_hide[i]);
	free(r->mi_hide);
	free(r->proc_sys_dir); free(r->cgroup_procs_dir); free(r->uname_release); free(r->uname_if_below); free(r->runtime_dir);
	memset(r, 0, sizeof *r);
}
