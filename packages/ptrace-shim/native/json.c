/* json.c - see json.h. Recursive descent, depth-limited. */
#include "json.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct parser { const char *s, *p; char *err; size_t errlen; int failed; };

static void fail(struct parser *ps, const char *what)
{
	if (!ps->failed)
		snprintf(ps->err, ps->errlen, "JSON syntax error at byte %ld: %s", (long)(ps->p - ps->s), what);
	ps->failed = 1;
}

static void ws(struct parser *ps)
{
	while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r') ps->p++;
}

static jv *node(enum jv_kind k)
{
	jv *v = calloc(1, sizeof *v);
	if (!v) { perror("calloc"); exit(70); }
	v->kind = k;
	return v;
}

static void put_utf8(char **o, unsigned cp)
{
	char *q = *o;
	if (cp < 0x80) *q++ = (char)cp;
	else if (cp < 0x800) { *q++ = (char)(0xC0 | cp >> 6); *q++ = (char)(0x80 | (cp & 0x3F)); }
	else { *q++ = (char)(0xE0 | cp >> 12); *q++ = (char)(0x80 | ((cp >> 6) & 0x3F)); *q++ = (char)(0x80 | (cp & 0x3F)); }
	*o = q;
}

static char *parse_string(struct parser *ps)
{
	const char *start = ++ps->p; /* after quote */
	size_t n = 0;
	while (start[n] && start[n] != '"') { if (start[n] == '\\' && start[n + 1]) n++; n++; }
	if (!start[n]) { fail(ps, "unterminated string"); return NULL; }
	char *out = malloc(n * 3 + 1), *o = out;
	if (!out) { perror("malloc"); exit(70); }
	while (*ps->p != '"') {
		char c = *ps->p++;
		if ((unsigned char)c < 0x20) { fail(ps, "control character in string"); free(out); return NULL; }
		if (c != '\\') { *o++ = c; continue; }
		c = *ps->p++;
		switch (c) {
		case '"': case '\\': case '/': *o++ = c; break;
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 't': *o++ = '\t'; break;
		case 'u': {
			unsigned cp = 0;
			for (int i = 0; i < 4; i++) {
				char h = *ps->p++;
				if (!isxdigit((unsigned char)h)) { fail(ps, "bad \\u escape"); free(out); return NULL; }
				cp = cp * 16 + (unsigned)(isdigit((unsigned char)h) ? h - '0' : (tolower((unsigned char)h) - 'a' + 10));
			}
			if (cp == 0) { fail(ps, "NUL in string"); free(out); return NULL; }
			put_utf8(&o, cp);
			break;
		}
		default: fail(ps, "bad escape"); free(out); return NULL;
		}
	}
	ps->p++;
	*o = 0;
	return out;
}

static jv *parse_value(struct parser *ps, int depth)
{
	ws(ps);
	if (depth > 32) { fail(ps, "nesting too deep"); return NULL; }
	char c = *ps->p;
	if (c == '{' || c == '[') {
		int obj = c == '{';
		jv *v = node(obj ? JV_OBJ : JV_ARR);
		ps->p++;
		ws(ps);
		if (*ps->p == (obj ? '}' : ']')) { ps->p++; return v; }
		for (;;) {
			char *key = NULL;
			ws(ps);
			if (obj) {
				if (*ps->p != '"') { fail(ps, "expected a string key"); json_free(v); return NULL; }
				if (!(key = parse_string(ps))) { json_free(v); return NULL; }
				ws(ps);
				if (*ps->p != ':') { fail(ps, "expected ':'"); free(key); json_free(v); return NULL; }
				ps->p++;
			}
			jv *item = parse_value(ps, depth + 1);
			if (!item) { free(key); json_free(v); return NULL; }
			v->items = realloc(v->items, (v->len + 1) * sizeof *v->items);
			if (obj) v->keys = realloc(v->keys, (v->len + 1) * sizeof *v->keys);
			if (!v->items || (obj && !v->keys)) { perror("realloc"); exit(70); }
			v->items[v->len] = item;
			if (obj) v->keys[v->len] = key;
			v->len++;
			ws(ps);
			if (*ps->p == ',') { ps->p++; continue; }
			if (*ps->p == (obj ? '}' : ']')) { ps->p++; return v; }
			fail(ps, obj ? "expected ',' or '}'" : "expected ',' or ']'");
			json_free(v);
			return NULL;
		}
	}
	if (c == '"') {
		char *s = parse_string(ps);
		if (!s) return NULL;
		jv *v = node(JV_STR);
		v->str = s;
		return v;
	}
	if (c == '-' || isdigit((unsigned char)c)) {
		char *end;
		long long n = strtoll(ps->p, &end, 10);
		if (*end == '.' || *end == 'e' || *end == 'E') { fail(ps, "only integers are accepted"); return NULL; }
		ps->p = end;
		jv *v = node(JV_NUM);
		v->num = n;
		return v;
	}
	if (!strncmp(ps->p, "true", 4)) { ps->p += 4; jv *v = node(JV_BOOL); v->num = 1; return v; }
	if (!strncmp(ps->p, "false", 5)) { ps->p += 5; return node(JV_BOOL); }
	if (!strncmp(ps->p, "null", 4)) { ps->p += 4; return node(JV_NULL); }
	fail(ps, "unexpected character");
	return NULL;
}

jv *json_parse(const char *text, char *err, size_t errlen)
{
	struct parser ps = { text, text, err, errlen, 0 };
	jv *v = parse_value(&ps, 0);
	if (!v) return NULL;
	ws(&ps);
	if (*ps.p) { fail(&ps, "trailing characters"); json_free(v); return NULL; }
	return v;
}

void json_free(jv *v)
{
	if (!v) return;
	for (size_t i = 0; i < v->len; i++) {
		json_free(v->items[i]);
		if (v->keys) free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->str);
	free(v);
}

jv *json_get(const jv *v, const char *key)
{
	if (!v || v->kind != JV_OBJ) return NULL;
	for (size_t i = 0; i < v->len; i++)
		if (!strcmp(v->keys[i], key)) return v->items[i];
	return NULL;
}

const char *json_kind_name(enum jv_kind k)
{
	static const char *names[] = { "null", "boolean", "number", "string", "array", "object" };
	return names[k];
}
