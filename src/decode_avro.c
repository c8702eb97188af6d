/*
 * Avro (Confluent wire format) to the JSON a Debezium JSON converter would have produced.
 * Avro C decodes the binary body with one reusable generic value per schema; logical types
 * (decimal) and Debezium's connect.* attributes are read from the schema's JSON, which Avro C
 * does not keep, by walking it alongside the value.
 */
#include <math.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"

static const char *const primitives[] = { "null", "boolean", "int", "long", "float", "double", "bytes", "string", NULL };

static int is_primitive(const char *s)
{
	int i;

	for (i = 0; primitives[i]; i++)
		if (strcmp(s, primitives[i]) == 0)
			return 1;
	return 0;
}

/* Record every named type (record, enum, fixed) by full name and by short name. */
static void collect_names(json_t *names, json_t *node, const char *ns)
{
	size_t i;
	json_t *v;

	if (json_is_array(node)) {
		json_array_foreach(node, i, v)
			collect_names(names, v, ns);
		return;
	}
	if (!json_is_object(node))
		return;
	{
		const char *type = json_string_value(json_object_get(node, "type"));
		const char *name = json_string_value(json_object_get(node, "name"));
		const char *nns = json_string_value(json_object_get(node, "namespace"));
		char full[512];

		if (!nns)
			nns = ns;
		if (type && name && (!strcmp(type, "record") || !strcmp(type, "enum") || !strcmp(type, "fixed"))) {
			if (strchr(name, '.') || !nns || !*nns)
				snprintf(full, sizeof(full), "%s", name);
			else
				snprintf(full, sizeof(full), "%s.%s", nns, name);
			json_object_set(names, full, node);
			json_object_set(names, strrchr(full, '.') ? strrchr(full, '.') + 1 : full, node);
			if (strrchr(full, '.'))
				nns = NULL; /* children resolve against this record's namespace below */
		}
		if (type && !strcmp(type, "record")) {
			char childns[512] = "";

			if (strchr(name ? name : "", '.'))
				snprintf(childns, sizeof(childns), "%.*s", (int)(strrchr(name, '.') - name), name);
			else if (json_string_value(json_object_get(node, "namespace")))
				snprintf(childns, sizeof(childns), "%s", json_string_value(json_object_get(node, "namespace")));
			else if (ns)
				snprintf(childns, sizeof(childns), "%s", ns);
			json_array_foreach(json_object_get(node, "fields"), i, v)
				collect_names(names, json_object_get(v, "type"), childns);
		} else if (type && !strcmp(type, "array")) {
			collect_names(names, json_object_get(node, "items"), ns);
		} else if (type && !strcmp(type, "map")) {
			collect_names(names, json_object_get(node, "values"), ns);
		} else if (type && !is_primitive(type) && strcmp(type, "enum") && strcmp(type, "fixed")) {
			collect_names(names, json_object_get(node, "type"), ns);
		}
	}
}

/* A type reference by name becomes its definition; {"type":"string"} style wrappers stay. */
static json_t *resolve(ks_schema_entry *e, json_t *t)
{
	if (!e->names) {
		e->names = json_object();
		collect_names(e->names, e->json, NULL);
	}
	if (json_is_string(t) && !is_primitive(json_string_value(t))) {
		json_t *d = json_object_get(e->names, json_string_value(t));

		return d ? d : t;
	}
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

/*
 * The schema JSON compiled once per schema id into what the per-message walks need: the kind
 * of every type, decimal scales, fixed sizes, enum symbol counts and the types below it, with
 * named types resolved. A named record that refers to itself is one node pointing at itself.
 */
typedef enum node_kind {
	N_INVALID, N_NULL, N_BOOLEAN, N_INT, N_LONG, N_FLOAT, N_DOUBLE, N_STRING, N_BYTES, N_FIXED,
	N_ENUM, N_RECORD, N_ARRAY, N_MAP, N_UNION,
} node_kind;

typedef struct node {
	node_kind kind;
	int scale;           /* bytes and fixed: decimal scale, else -1 */
	int64_t size;        /* fixed: byte size; enum: number of symbols */
	size_t n;            /* record fields, union branches; 1 for array items and map values */
	struct node **sub;
	const json_t *src;   /* the schema JSON object it was compiled from (for named types) */
	struct node *next;   /* every node of the plan, for freeing */
} node;

struct ks_avro_plan {
	node *root;
	node *all;
};

void ks_avro_plan_free(struct ks_avro_plan *p)
{
	node *n, *next;

	if (!p)
		return;
	for (n = p->all; n; n = next) {
		next = n->next;
		free(n->sub);
		free(n);
	}
	free(p);
}

static node *compile(ks_schema_entry *e, struct ks_avro_plan *p, json_t *t, int depth);

static node *new_node(struct ks_avro_plan *p, node_kind kind, size_t nsub, const json_t *src)
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
static int compile_children(ks_schema_entry *e, struct ks_avro_plan *p, node *n, json_t *list, int fields,
			    int depth)
{
	size_t i;

	for (i = 0; i < n->n; i++) {
		json_t *t = json_array_get(list, i);

		if (!(n->sub[i] = compile(e, p, fields ? json_object_get(t, "type") : t, depth + 1)))
			return -1;
	}
	return 0;
}

static node *compile(ks_schema_entry *e, struct ks_avro_plan *p, json_t *t, int depth)
{
	static const struct { const char *name; node_kind kind; } kinds[] = {
		{ "null", N_NULL }, { "boolean", N_BOOLEAN }, { "int", N_INT }, { "long", N_LONG },
		{ "float", N_FLOAT }, { "double", N_DOUBLE }, { "string", N_STRING }, { "bytes", N_BYTES },
		{ "fixed", N_FIXED }, { "enum", N_ENUM }, { "record", N_RECORD }, { "array", N_ARRAY },
		{ "map", N_MAP },
	};
	node_kind kind = N_INVALID;
	const char *type;
	node *n;
	size_t i;

	t = resolve(e, t);
	if (depth > 64)
		return new_node(p, N_INVALID, 0, NULL);
	if (json_is_object(t))
		for (n = p->all; n; n = n->next)
			if (n->src == t)
				return n;
	if (json_is_array(t)) {
		n = new_node(p, N_UNION, json_array_size(t), NULL);
		return n && !compile_children(e, p, n, t, 0, depth) ? n : NULL;
	}
	type = json_is_string(t) ? json_string_value(t) : json_string_value(json_object_get(t, "type"));
	if (!type && json_is_object(t) && json_object_get(t, "type"))
		return compile(e, p, json_object_get(t, "type"), depth + 1);
	for (i = 0; type && i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (!strcmp(type, kinds[i].name))
			kind = kinds[i].kind;
	switch (kind) {
	case N_RECORD: {
		json_t *fields = json_object_get(t, "fields");

		/* Registered before its fields, so a field of its own type finds it. */
		if (!(n = new_node(p, N_RECORD, json_array_size(fields), t)))
			return NULL;
		return compile_children(e, p, n, fields, 1, depth) ? NULL : n;
	}
	case N_ARRAY:
	case N_MAP:
		if (!(n = new_node(p, kind, 1, t)) ||
		    !(n->sub[0] = compile(e, p, json_object_get(t, kind == N_MAP ? "values" : "items"), depth + 1)))
			return NULL;
		return n;
	default:
		if (!(n = new_node(p, kind, 0, json_is_object(t) ? t : NULL)))
			return NULL;
		if (kind == N_FIXED)
			n->size = json_integer_value(json_object_get(t, "size"));
		if (kind == N_ENUM)
			n->size = (int64_t)json_array_size(json_object_get(t, "symbols"));
		if (kind == N_BYTES || kind == N_FIXED)
			n->scale = decimal_scale(t);
		return n;
	}
}

/* Big-endian two's complement unscaled value with @p scale digits after the point. */
static json_t *decimal_string(const unsigned char *p, size_t n, int scale)
{
	BIGNUM *bn = BN_bin2bn(p, (int)n, NULL), *m = NULL;
	char *dec = NULL, *digits;
	json_t *out = NULL;
	ks_buf b;
	size_t len;
	int neg;

	if (!bn)
		return NULL;
	if (n && (p[0] & 0x80)) {
		/* Negative: the unsigned reading minus 2^(8n). */
		if (!(m = BN_new()) || !BN_set_bit(m, (int)(8 * n)) || !BN_sub(bn, bn, m))
			goto out;
	}
	if (!(dec = BN_bn2dec(bn)))
		goto out;
	neg = dec[0] == '-';
	digits = dec + neg;
	len = strlen(digits);
	ks_buf_init(&b, 0);
	if (neg)
		ks_buf_append(&b, "-", 1);
	if (scale <= 0) {
		ks_buf_append(&b, digits, len);
	} else if (len <= (size_t)scale) {
		ks_buf_append(&b, "0.", 2);
		while (len < (size_t)scale--)
			ks_buf_append(&b, "0", 1);
		ks_buf_append(&b, digits, strlen(digits));
	} else {
		ks_buf_append(&b, digits, len - (size_t)scale);
		ks_buf_append(&b, ".", 1);
		ks_buf_append(&b, digits + len - (size_t)scale, (size_t)scale);
	}
	out = b.data ? json_stringn(b.data, b.len) : NULL;
	ks_buf_clean(&b);
out:
	OPENSSL_free(dec);
	BN_free(m);
	BN_free(bn);
	return out;
}

static json_t *base64_string(const void *p, size_t n)
{
	json_t *j;
	ks_buf b;

	ks_buf_init(&b, 0);
	if (ks_buf_base64(&b, p, n) || ks_buf_append(&b, "", 0)) {
		ks_buf_clean(&b);
		return NULL;
	}
	j = json_stringn(b.data, b.len);
	ks_buf_clean(&b);
	return j;
}

static json_t *real(double d)
{
	/* JSON has no NaN or infinity: RisingWave's encoder (serde_json) writes them as null. */
	return isfinite(d) ? json_real(d) : json_null();
}

static int to_json(const node *nd, avro_value_t *v, json_t **out, int depth);

/* The type below @p nd at @p i; NULL (no logical types below) when the plan has none there. */
static const node *child(const node *nd, size_t i)
{
	return nd && i < nd->n ? nd->sub[i] : NULL;
}

static int record_to_json(const node *nd, avro_value_t *v, json_t **out, int depth)
{
	json_t *o = json_object();
	size_t n = 0, i;

	if (!o || avro_value_get_size(v, &n))
		goto fail;
	for (i = 0; i < n; i++) {
		avro_value_t ch;
		const char *name;
		json_t *cj;

		if (avro_value_get_by_index(v, i, &ch, &name) || to_json(child(nd, i), &ch, &cj, depth + 1))
			goto fail;
		json_object_set_new(o, name, cj);
	}
	*out = o;
	return 0;
fail:
	json_decref(o);
	return -1;
}

static int to_json(const node *nd, avro_value_t *v, json_t **out, int depth)
{
	*out = NULL;
	if (depth > 64)
		return -1;
	switch (avro_value_get_type(v)) {
	case AVRO_NULL:
		*out = json_null();
		break;
	case AVRO_BOOLEAN: {
		int b;

		if (avro_value_get_boolean(v, &b))
			return -1;
		*out = json_boolean(b);
		break;
	}
	case AVRO_INT32: {
		int32_t x;

		if (avro_value_get_int(v, &x))
			return -1;
		*out = json_integer(x);
		break;
	}
	case AVRO_INT64: {
		int64_t x;

		if (avro_value_get_long(v, &x))
			return -1;
		*out = json_integer(x);
		break;
	}
	case AVRO_FLOAT: {
		float f;

		if (avro_value_get_float(v, &f))
			return -1;
		*out = real(f);
		break;
	}
	case AVRO_DOUBLE: {
		double d;

		if (avro_value_get_double(v, &d))
			return -1;
		*out = real(d);
		break;
	}
	case AVRO_STRING: {
		const char *s;
		size_t n;

		if (avro_value_get_string(v, &s, &n))
			return -1;
		if (!(*out = json_stringn(s, n ? n - 1 : 0))) /* the size counts the NUL */
			return -1; /* not UTF-8: an error, not a silently missing field */
		break;
	}
	case AVRO_BYTES:
	case AVRO_FIXED: {
		const void *p;
		size_t n;
		int scale = nd ? nd->scale : -1;

		if ((avro_value_get_type(v) == AVRO_BYTES ? avro_value_get_bytes(v, &p, &n) : avro_value_get_fixed(v, &p, &n)))
			return -1;
		*out = scale >= 0 ? decimal_string(p, n, scale) : base64_string(p, n);
		break;
	}
	case AVRO_ENUM: {
		const char *sym;
		int idx;

		if (avro_value_get_enum(v, &idx) || !(sym = avro_schema_enum_get(avro_value_get_schema(v), idx)))
			return -1;
		*out = json_string(sym);
		break;
	}
	case AVRO_RECORD:
		return record_to_json(nd, v, out, depth);
	case AVRO_ARRAY: {
		json_t *a = json_array();
		size_t n = 0, i;

		if (!a || avro_value_get_size(v, &n)) {
			json_decref(a);
			return -1;
		}
		for (i = 0; i < n; i++) {
			avro_value_t item;
			json_t *cj;

			if (avro_value_get_by_index(v, i, &item, NULL) || to_json(child(nd, 0), &item, &cj, depth + 1)) {
				json_decref(a);
				return -1;
			}
			json_array_append_new(a, cj);
		}
		*out = a;
		break;
	}
	case AVRO_MAP: {
		json_t *o = json_object();
		size_t n = 0, i;

		if (!o || avro_value_get_size(v, &n)) {
			json_decref(o);
			return -1;
		}
		for (i = 0; i < n; i++) {
			avro_value_t item;
			const char *k;
			json_t *cj;

			if (avro_value_get_by_index(v, i, &item, &k) || to_json(child(nd, 0), &item, &cj, depth + 1)) {
				json_decref(o);
				return -1;
			}
			json_object_set_new(o, k, cj);
		}
		*out = o;
		break;
	}
	case AVRO_UNION: {
		avro_value_t branch;
		int d;

		/* Unions unwrap to their value, as the JSON converter writes them. */
		if (avro_value_get_discriminant(v, &d) || avro_value_get_current_branch(v, &branch))
			return -1;
		return to_json(d >= 0 ? child(nd, (size_t)d) : NULL, &branch, out, depth + 1);
	}
	default:
		return -1;
	}
	return *out ? 0 : -1;
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
	case N_UNION:
		if (read_long(c, &len) || len < 0 || (uint64_t)len >= t->n)
			return -1;
		return check_body(t->sub[len], c, depth + 1);
	case N_NULL:
		return ++c->items > 1000000 ? -1 : 0;
	case N_BOOLEAN:
		return skip(c, 1);
	case N_INT:
	case N_LONG:
		return read_long(c, &len);
	case N_ENUM:
		return read_long(c, &len) || len < 0 || len >= t->size ? -1 : 0;
	case N_FLOAT:
		return skip(c, 4);
	case N_DOUBLE:
		return skip(c, 8);
	case N_STRING:
	case N_BYTES:
		return read_long(c, &len) || skip(c, len);
	case N_FIXED:
		return skip(c, t->size);
	case N_RECORD:
		for (i = 0; i < t->n; i++)
			if (check_body(t->sub[i], c, depth + 1))
				return -1;
		return ++c->items > 1000000 ? -1 : 0;
	case N_ARRAY:
	case N_MAP:
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
				if (t->kind == N_MAP) {
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

/* ---- Kafka Connect schema (the "schema" of the debezium output) ----------------------------- */

static json_t *connect_type(ks_schema_entry *e, json_t *t, const char *field, int optional, int depth)
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

	t = resolve(e, t);
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
		return connect_type(e, only ? only : json_string("null"), field, optional || has_null, depth + 1);
	}
	type = json_is_string(t) ? json_string_value(t) : json_string_value(json_object_get(t, "type"));
	if (!type)
		type = "string";
	if (json_is_object(t) && json_is_object(json_object_get(t, "type")))
		return connect_type(e, json_object_get(t, "type"), field, optional, depth + 1);
	o = json_object();
	cname = json_string_value(json_object_get(t, "connect.name"));
	ctype = json_string_value(json_object_get(t, "connect.type"));
	if (!strcmp(type, "record")) {
		json_t *fields = json_array(), *f;

		json_object_set_new(o, "type", json_string("struct"));
		json_array_foreach(json_object_get(t, "fields"), i, f) {
			json_t *ft = connect_type(e, json_object_get(f, "type"), json_string_value(json_object_get(f, "name")), 0, depth + 1);

			if (ft)
				json_array_append_new(fields, ft);
		}
		json_object_set_new(o, "fields", fields);
		if (json_string_value(json_object_get(t, "name")))
			json_object_set_new(o, "name", json_string(cname ? cname : json_string_value(json_object_get(t, "name"))));
	} else if (!strcmp(type, "array")) {
		json_object_set_new(o, "type", json_string("array"));
		json_object_set_new(o, "items", connect_type(e, json_object_get(t, "items"), NULL, 0, depth + 1));
	} else if (!strcmp(type, "map")) {
		json_object_set_new(o, "type", json_string("map"));
		json_object_set_new(o, "keys", json_pack("{s:s,s:b}", "type", "string", "optional", 0));
		json_object_set_new(o, "values", connect_type(e, json_object_get(t, "values"), NULL, 0, depth + 1));
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

/* ---- the wire format -------------------------------------------------------------------------- */

static int bad(ks_errbuf *err, const char *reason, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(ks_errbuf *err, const char *reason, const char *fmt, ...)
{
	char text[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	ks_errbuf_set(err, KS_ERR_BADREC, "%s", text);
	ks_errbuf_reason(err, reason);
	return KS_ERR_BADREC;
}

int ks_avro_decode(ks_registry_t *r, const void *p, size_t n, json_t **out, json_t **connect_schema,
		   ks_errbuf *err)
{
	const unsigned char *b = p;
	const ks_schema_entry *ce;
	ks_schema_entry *e;
	avro_reader_t reader;
	int32_t id;
	int rc;

	*out = NULL;
	if (connect_schema)
		*connect_schema = NULL;
	if (n < 5)
		return bad(err, "too_short",
			   "message of %zu bytes is shorter than the 5-byte Confluent header (magic byte and schema id)", n);
	if (b[0] != 0)
		return bad(err, "bad_magic", "magic byte is 0x%02x, expected 0x00: not in the Confluent wire format", b[0]);
	id = (int32_t)((uint32_t)b[1] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 8 | b[4]);
	if ((rc = ks_registry_get(r, id, &ce, err)))
		return rc;
	e = (ks_schema_entry *)ce;
	if (!e->plan) {
		struct ks_avro_plan *plan = calloc(1, sizeof(*plan));

		if (!plan || !(plan->root = compile(e, plan, e->json, 0))) {
			ks_avro_plan_free(plan);
			return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory compiling schema id %d", (int)id);
		}
		e->plan = plan;
	}
	{
		cursor c = { b + 5, n - 5, 0, 0 };

		if (check_body(e->plan->root, &c, 0))
			return bad(err, "bad_avro", "schema id %d: invalid or truncated Avro body (%zu bytes): a length or "
				   "count runs past the end of the message", (int)id, n - 5);
	}
	avro_value_reset(&e->value);
	if (!(reader = avro_reader_memory((const char *)b + 5, (int64_t)(n - 5))))
		return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
	rc = avro_value_read(reader, &e->value);
	avro_reader_free(reader);
	if (rc)
		return bad(err, "bad_avro", "schema id %d: invalid or truncated Avro body (%zu bytes): %s", (int)id, n - 5,
			   avro_strerror());
	if (to_json(e->plan->root, &e->value, out, 0)) {
		json_decref(*out);
		*out = NULL;
		return bad(err, "bad_avro", "schema id %d: the Avro value cannot be converted to JSON (a string that "
			   "is not UTF-8, or nesting deeper than 64)", (int)id);
	}
	if (connect_schema) {
		if (!e->connect_schema)
			e->connect_schema = connect_type(e, e->json, NULL, 0, 0);
		*connect_schema = json_incref(e->connect_schema);
	}
	return 0;
}
