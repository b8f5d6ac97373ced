/* json.h - a minimal JSON reader for the rules file (objects, arrays, strings, integers, booleans, null).
 * The whole document is parsed into a tree of jv nodes; errors carry a byte offset. */
#ifndef SHIM_JSON_H
#define SHIM_JSON_H
#include <stddef.h>

enum jv_kind { JV_NULL, JV_BOOL, JV_NUM, JV_STR, JV_ARR, JV_OBJ };

typedef struct jv {
	enum jv_kind kind;
	long long num;        /* JV_NUM (integers only), JV_BOOL */
	char *str;            /* JV_STR */
	size_t len;           /* number of children for JV_ARR / JV_OBJ */
	char **keys;          /* JV_OBJ keys */
	struct jv **items;    /* JV_ARR / JV_OBJ values */
} jv;

/* Parses text; on error returns NULL and writes a message to err. */
jv *json_parse(const char *text, char *err, size_t errlen);
void json_free(jv *v);
/* Object member lookup; NULL if absent or v is not an object. */
jv *json_get(const jv *v, const char *key);
const char *json_kind_name(enum jv_kind k);
#endif
