/*
 * What kinesink reads from an Avro schema's JSON, compiled once per schema and decoder: named
 * types resolved, decimal scales (Avro logical type or Debezium's Connect Decimal), fixed sizes,
 * enum symbol counts. The plan bounds-checks a binary body before Avro C reads it, guides the
 * conversion of the value to JSON (decode_avro.c), and gives the schema's Kafka Connect form.
 */
#include "avro_plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const primitives[] = { "null", "boolean", "int", "long", "float", "double", "bytes", "string", NULL };

static int is_primitive(const char *s)
{
	int i;

	for (i = 0; primitives[i]; i++)
		if (strcmp(s, primitives[i]) == 0)
			return 1;
	return 0;
}

/*
 * A named type and its definition in the registry's schema JSON. Not a JSON object of the
 * definitions: that would take references to nodes every lane shares, and jansson's
 * json_incref reads the count unlocked before its atomic add.
 */
typedef struct named {
	char *name;
	json_t *def;
} named;

typedef ks_avro_node node;

struct ks_avro_plan {
	node *root;
	node *all;       /* every node, for freeing */
	json_t *schema;  /* borrowed */
	named *names;
	size_t nnames;
};

static void set_name(ks_avro_plan *p, const char *name, json_t *def)
{
	named *nn;
	size_t i;

	for (i = 0; i < p->nnames; i++)
		if (!strcmp(p->names[i].name, name)) {
			p->names[i].def = def;
			return;
		}
	if (!(nn = realloc(p->names, (p->nnames + 1) * sizeof(*nn))))
		return;
	p->names = nn;
	if ((nn[p->nnames].name = strdup(name)))
		nn[p->nnames++].def = def;
}

/* Record every named type (record, enum, fixed) by full name and by short name. */
static void collect_names(ks_avro_plan *p, json_t *t, const char *ns)
{
	size_t i;
	json_t *v;

	if (json_is_array(t)) {
		json_array_foreach(t, i, v)
			collect_names(p, v, ns);
		return;
	}
	if (!json_is_object(t))
		return;
	{
		const char *type = json_string_value(json_object_get(t, "type"));
		const char *name = json_string_value(json_object_get(t, "name"));
		const char *nns = json_string_value(json_object_get(t, "namespace"));
		char full[512];

		if (!nns)
			nns = ns;
		if (type && name && (!strcmp(type, "record") || !strcmp(type, "enum") || !strcmp(type, "fixed"))) {
			if (strchr(name, '.') || !nns || !*nns)
				snprintf(full, sizeof(full), "%s", name);
			else
				snprintf(full, sizeof(full), "%s.%s", nns, name);
			set_name(p, full, t);
			set_name(p, strrchr(full, '.') ? strrchr(full, '.') + 1 : full, t);
			if (strrchr(full, '.'))
				nns = NULL; /* children resolve against this record's namespace below */
		}
		if (type && !strcmp(type, "record")) {
			char childns[512] = "";

			if (strchr(name ? name : "", '.'))
				snprintf(childns, sizeof(childns), "%.*s", (int)(strrchr(name, '.') - name), name);
			else if (json_string_value(json_object_get(t, "namespace")))
				snprintf(childns, sizeof(childns), "%s", json_string_value(json_object_get(t, "namespace")));
			else if (ns)
				snprintf(childns, sizeof(childns), "%s", ns);
			json_array_foreach(json_object_get(t, "fields"), i, v)
				collect_names(p, json_object_get(v, "type"), childns);
		} else if (type && !strcmp(type, "array")) {
			collect_names(p, json_object_get(t, "items"), ns);
		} else if (type && !strcmp(type, "map")) {
			collect_names(p, json_object_get(t, "values"), ns);
		} else if (type && !is_primitive(type) && strcmp(type, "enum") && strcmp(type, "fixed")) {
			collect_names(p, json_object_get(t, "type"), ns);
		}
	}
}

/* A type reference by name becomes its definition; {"type":"string"} style wrappers stay. */
static json_t *resolve(const ks_avro_plan *p, json_t *t)
{
	size_t i;

	if (json_is_string(t) && !is_primitive(json_string_value(t)))
		for (i = 0; i < p->nnames; i++)
			if (!strcmp(p->names[i].name, json_string_value(t)))
				return p->names[i].def;
	return t;
}

/* Scale when @p t is a decimal (Avro logical type or Debezium's Connect Decimal), else -1. */
static int decimal_scale(json_t *t)
{
	const char *lt, *cn;

	if (!json_is_object(t))
		return -1;
	lt = json_string_value(json_object_get(t, "logicalType"));
	cn = json_string_value(json_object_get(t, "connect.name"));
	if (lt && !strcmp(lt, "decimal"))
		return (int)json_integer_value(json_object_get(t, "scale"));
	if (cn && !strcmp(cn, "org.apache.kafka.connect.data.Decimal")) {
		const char *s = json_string_value(json_object_get(json_object_get(t, "connect.parameters"), "scale"));

		return s ? atoi(s) : 0;
	}
	return -1;
}

/* ---- the compiled plan ------------------------------------------------------------------------ */

void ks_avro_plan_free(ks_avro_plan *p)
{
	node *n, *next;

	if (!p)
		return;
	for (n = p->all; n; n = next) {
		next = n->next;
		free(n->sub);
		free(n);
	}
	while (p->nnames)
		free(p->names[--p->nnames].name);
	free(p->names);
	free(p);
}

static node *compile(ks_avro_plan *p, json_t *t, int depth);

static node *new_node(ks_avro_plan *p, ks_avro_kind kind, size_t nsub, const json_t *src)
{
	node *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	if (nsub && !(n->sub = calloc(nsub, sizeof(*n->sub)))) {
		free(n);
		return NULL;
	}
	n->kind = kind;
	n->scale = -1;
	n->n = nsub;
	n->src = src;
	n->next = p->all;
	p->all = n;
	return n;
}

/* Compile each child of @p n from @p list (an array of types, or of fields with their "type"). */
static int compile_children(ks_avro_plan *p, node *n, json_t *list, int fields, int depth)
{
	size_t i;

	for (i = 0; i < n->n; i++) {
		json_t *t = json_array_get(list, i);

		if (!(n->sub[i] = compile(p, fields ? json_object_get(t, "type") : t, depth + 1)))
			return -1;
	}
	return 0;
}

static node *compile(ks_avro_plan *p, json_t *t, int depth)
{
	static const struct { const char *name; ks_avro_kind kind; } kinds[] = {
		{ "null", KS_AVRO_NULL }, { "boolean", KS_AVRO_BOOLEAN }, { "int", KS_AVRO_INT },
		{ "long", KS_AVRO_LONG }, { "float", KS_AVRO_FLOAT }, { "double", KS_AVRO_DOUBLE },
		{ "string", KS_AVRO_STRING }, { "bytes", KS_AVRO_BYTES }, { "fixed", KS_AVRO_FIXED },
		{ "enum", KS_AVRO_ENUM }, { "record", KS_AVRO_RECORD }, { "array", KS_AVRO_ARRAY },
		{ "map", KS_AVRO_MAP },
	};
	ks_avro_kind kind = KS_AVRO_INVALID;
	const char *type;
	node *n;
	size_t i;

	t = resolve(p, t);
	if (depth > 64)
		return new_node(p, KS_AVRO_INVALID, 0, NULL);
	if (json_is_object(t))
		for (n = p->all; n; n = n->next)
			if (n->src == t)
				return n;
	if (json_is_array(t)) {
		n = new_node(p, KS_AVRO_UNION, json_array_size(t), NULL);
		return n && !compile_children(p, n, t, 0, depth) ? n : NULL;
	}
	type = json_is_string(t) ? json_string_value(t) : json_string_value(json_object_get(t, "type"));
	if (!type && json_is_object(t) && json_object_get(t, "type"))
		return compile(p, json_object_get(t, "type"), depth + 1);
	for (i = 0; type && i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (!strcmp(type, kinds[i].name))
			kind = kinds[i].kind;
	switch (kind) {
	case KS_AVRO_RECORD: {
		json_t *fields = json_object_get(t, "fields");

		/* Registered before its fields, so a field of its own type finds it. */
		if (!(n = new_node(p, KS_AVRO_RECORD, json_array_size(fields), t)))
			return NULL;
		return compile_children(p, n, fields, 1, depth) ? NULL : n;
	}
	case KS_AVRO_ARRAY:
	case KS_AVRO_MAP:
		if (!(n = new_node(p, kind, 1, t)) ||
		    !(n->sub[0] = compile(p, json_object_get(t, kind == KS_AVRO_MAP ? "values" : "items"), depth + 1)))
			return NULL;
		return n;
	default:
		if (!(n = new_node(p, kind, 0, json_is_object(t) ? t : NULL)))
			return NULL;
		if (kind == KS_AVRO_FIXED)
			n->size = json_integer_value(json_object_get(t, "size"));
		if (kind == KS_AVRO_ENUM)
			n->size = (int64_t)json_array_size(json_object_get(t, "symbols"));
		if (kind == KS_AVRO_BYTES || kind == KS_AVRO_FIXED)
			n->scale = decimal_scale(t);
		return n;
	}
}

/* ---- bounds check of the binary body ----------------------------------------------------------- */

/*
 * Avro C sizes its buffers from length prefixes in the data before it knows whether the bytes
 * are there, so a hostile message could make it allocate gigabytes. Walking the body against
 * the schema first bounds every length by the bytes actually left.
 */
typedef struct cursor {
	const unsigned char *p;
	size_t n, pos;
	size_t items;   /* elements of zero-size types seen: bounded too */
	ks_avro_where *where;
} cursor;

static int read_long(cursor *c, int64_t *out)
{
	uint64_t v = 0;
	int shift = 0;

	for (;;) {
		unsigned char b;

		if (c->pos >= c->n || shift > 63)
			return -1;
		b = c->p[c->pos++];
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			break;
		shift += 7;
	}
	*out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
	return 0;
}

static int skip(cursor *c, int64_t len)
{
	if (len < 0 || (uint64_t)len > c->n - c->pos)
		return -1;
	c->pos += (size_t)len;
	return 0;
}

static int check_body(const node *t, cursor *c, int depth)
{
	int64_t len;
	size_t i;

	if (depth > 64)
		return -1;
	switch (t->kind) {
	case KS_AVRO_UNION:
		if (read_long(c, &len) || len < 0 || (uint64_t)len >= t->n)
			return -1;
		return check_body(t->sub[len], c, depth + 1);
	case KS_AVRO_NULL:
		return ++c->items > 1000000 ? -1 : 0;
	case KS_AVRO_BOOLEAN:
		return skip(c, 1);
	case KS_AVRO_INT:
	case KS_AVRO_LONG:
		return read_long(c, &len);
	case KS_AVRO_ENUM:
		return read_long(c, &len) || len < 0 || len >= t->size ? -1 : 0;
	case KS_AVRO_FLOAT:
		return skip(c, 4);
	case KS_AVRO_DOUBLE:
		return skip(c, 8);
	case KS_AVRO_STRING:
	case KS_AVRO_BYTES:
		return read_long(c, &len) || skip(c, len);
	case KS_AVRO_FIXED:
		return skip(c, t->size);
	case KS_AVRO_RECORD:
		for (i = 0; i < t->n; i++)
			if (check_body(t->sub[i], c, depth + 1)) {
				const json_t *f = json_array_get(json_object_get(t->src, "fields"), i);

				if (c->where->nfields < (int)(sizeof(c->where->fields) / sizeof(c->where->fields[0])))
					c->where->fields[c->where->nfields++] = json_string_value(json_object_get(f, "name"));
				return -1;
			}
		return ++c->items > 1000000 ? -1 : 0;
	case KS_AVRO_ARRAY:
	case KS_AVRO_MAP:
		for (;;) {
			int64_t k;

			if (read_long(c, &len))
				return -1;
			if (len == 0)
				return 0;
			if (len < 0) { /* a block with its byte size */
				int64_t bytes;

				if (len == INT64_MIN || read_long(c, &bytes))
					return -1;
				len = -len;
			}
			if ((uint64_t)len > c->n - c->pos + 1000000 || (c->items += (size_t)len) > 1000000)
				return -1;
			for (k = 0; k < len; k++) {
				if (t->kind == KS_AVRO_MAP) {
					int64_t kl;

					if (read_long(c, &kl) || skip(c, kl))
						return -1;
				}
				if (check_body(t->sub[0], c, depth + 1))
					return -1;
			}
		}
	default:
		return -1;
	}
}

int ks_avro_plan_check(const ks_avro_plan *p, const void *body, size_t n, ks_avro_where *where)
{
	cursor c = { body, n, 0, 0, where };
	int rc;

	memset(where, 0, sizeof(*where));
	rc = check_body(p->root, &c, 0);
	where->pos = c.pos;
	return rc;
}

/* ---- Kafka Connect schema (the "schema" of the debezium output) ----------------------------- */

static json_t *connect_type(const ks_avro_plan *p, json_t *t, const char *field, int optional, int depth)
{
	static const char *const map[][2] = {
		{ "int", "int32" }, { "long", "int64" }, { "float", "float" }, { "double", "float64" },
		{ "boolean", "boolean" }, { "string", "string" }, { "bytes", "bytes" }, { "fixed", "bytes" },
		{ "enum", "string" }, { "null", "string" },
	};
	const char *type, *cname, *ctype;
	json_t *o;
	size_t i;
	int scale;

	t = resolve(p, t);
	if (depth > 32)
		return NULL;
	if (json_is_array(t)) {
		json_t *v, *only = NULL;
		int has_null = 0;

		json_array_foreach(t, i, v) {
			if (json_is_string(v) && !strcmp(json_string_value(v), "null"))
				has_null = 1;
			else if (!only)
				only = v;
		}
		return connect_type(p, only ? only : json_string("null"), field, optional || has_null, depth + 1);
	}
	type = json_is_string(t) ? json_string_value(t) : json_string_value(json_object_get(t, "type"));
	if (!type)
		type = "string";
	if (json_is_object(t) && json_is_object(json_object_get(t, "type")))
		return connect_type(p, json_object_get(t, "type"), field, optional, depth + 1);
	o = json_object();
	cname = json_string_value(json_object_get(t, "connect.name"));
	ctype = json_string_value(json_object_get(t, "connect.type"));
	if (!strcmp(type, "record")) {
		json_t *fields = json_array(), *f;

		json_object_set_new(o, "type", json_string("struct"));
		json_array_foreach(json_object_get(t, "fields"), i, f) {
			json_t *ft = connect_type(p, json_object_get(f, "type"), json_string_value(json_object_get(f, "name")), 0, depth + 1);

			if (ft)
				json_array_append_new(fields, ft);
		}
		json_object_set_new(o, "fields", fields);
		if (json_string_value(json_object_get(t, "name")))
			json_object_set_new(o, "name", json_string(cname ? cname : json_string_value(json_object_get(t, "name"))));
	} else if (!strcmp(type, "array")) {
		json_object_set_new(o, "type", json_string("array"));
		json_object_set_new(o, "items", connect_type(p, json_object_get(t, "items"), NULL, 0, depth + 1));
	} else if (!strcmp(type, "map")) {
		json_object_set_new(o, "type", json_string("map"));
		json_object_set_new(o, "keys", json_pack("{s:s,s:b}", "type", "string", "optional", 0));
		json_object_set_new(o, "values", connect_type(p, json_object_get(t, "values"), NULL, 0, depth + 1));
	} else {
		const char *m = ctype ? ctype : "string";

		for (i = 0; !ctype && i < sizeof(map) / sizeof(map[0]); i++)
			if (!strcmp(type, map[i][0]))
				m = map[i][1];
		json_object_set_new(o, "type", json_string(m));
		if (cname)
			json_object_set_new(o, "name", json_string(cname));
		if ((scale = decimal_scale(t)) >= 0) {
			char s[16];

			snprintf(s, sizeof(s), "%d", scale);
			json_object_set_new(o, "name", json_string("org.apache.kafka.connect.data.Decimal"));
			json_object_set_new(o, "parameters", json_pack("{s:s}", "scale", s));
		}
	}
	json_object_set_new(o, "optional", json_boolean(optional));
	if (field)
		json_object_set_new(o, "field", json_string(field));
	return o;
}

json_t *ks_avro_plan_connect(const ks_avro_plan *p)
{
	return connect_type(p, p->schema, NULL, 0, 0);
}

ks_avro_plan *ks_avro_plan_new(json_t *schema)
{
	ks_avro_plan *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->schema = schema;
	collect_names(p, schema, NULL);
	if (!(p->root = compile(p, schema, 0))) {
		ks_avro_plan_free(p);
		return NULL;
	}
	return p;
}

const ks_avro_node *ks_avro_plan_root(const ks_avro_plan *p)
{
	return p->root;
}
