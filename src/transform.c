/*
 * Transform: a change becomes 0, 1 or 2 output records for the configured type
 * (DESIGN.md, output types). Data is compact JSON with object keys sorted, written straight
 * into a reused buffer; the partition key is the compact JSON object of the key columns.
 */
#include "transform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ks_transform {
	ks_sink_type type;
	ks_input_format input;
	int force_append_only;
	int tombstones;
	const char **pk_cols; /* the configuration's columns, sorted by name (strings borrowed) */
	int n_pk_cols;
	ks_buf data;      /* reused for every record's data */
	ks_buf key;       /* reused for every partition key */
};

ks_record *ks_record_new(const char *pkey, size_t pkey_len, const void *data, size_t data_len)
{
	ks_record *r = malloc(sizeof(*r) + pkey_len + 1 + data_len);

	if (!r)
		return NULL;
	memset(r, 0, sizeof(*r));
	r->pkey = (char *)(r + 1);
	memcpy(r->pkey, pkey, pkey_len);
	r->pkey[pkey_len] = '\0';
	r->pkey_len = pkey_len;
	r->data = (unsigned char *)r->pkey + pkey_len + 1;
	if (data_len)
		memcpy(r->data, data, data_len);
	r->data_len = data_len;
	r->key_hash = ks_key_hash(pkey, pkey_len);
	r->offset = -1;
	return r;
}

void ks_record_destroy(ks_record *r)
{
	free(r);
}

uint64_t ks_key_hash(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 1099511628211ULL;
	}
	/* FNV-1a's low bits see only the low bits of each byte; the key table indexes by them. */
	h ^= h >> 32;
	h *= 0xd6e8feb86659fd93ULL;
	return h ^ (h >> 32);
}

/* ---- deterministic JSON ------------------------------------------------------------------ */

static int cmp_keys(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The shortest text that reads back as the same double, always marked as a real. */
static int write_real(ks_buf *b, double v)
{
	char s[40];
	int prec;

	for (prec = 15; prec <= 17; prec++) {
		snprintf(s, sizeof(s), "%.*g", prec, v);
		if (strtod(s, NULL) == v)
			break;
	}
	if (!strpbrk(s, ".eEn")) /* "n": nan/inf never reach here (jansson refuses them) */
		strcat(s, ".0");
	return ks_buf_puts(b, s);
}

/* Object members in key order: insertion sort for the usual few, qsort for many. */
typedef struct member {
	const char *key;
	size_t len;
	const json_t *value;
} member;

static int member_cmp(const void *a, const void *b)
{
	const member *x = a, *y = b;
	int c = memcmp(x->key, y->key, x->len < y->len ? x->len : y->len);

	return c ? c : (x->len > y->len) - (x->len < y->len);
}

static void sort_members(member *m, size_t n)
{
	size_t i, j;

	if (n > 16) {
		qsort(m, n, sizeof(*m), member_cmp);
		return;
	}
	for (i = 1; i < n; i++) {
		member t = m[i];

		for (j = i; j > 0 && member_cmp(&m[j - 1], &t) > 0; j--)
			m[j] = m[j - 1];
		m[j] = t;
	}
}

static int write_int(ks_buf *b, long long v)
{
	char s[24], *p = s + sizeof(s);
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--p = '-';
	return ks_buf_append(b, p, (size_t)(s + sizeof(s) - p));
}

int ks_json_write(ks_buf *b, const json_t *j)
{
	int r = 0;

	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		member stack[32], *m = stack;
		size_t n = json_object_size(j), i = 0;
		const char *k;
		json_t *v;

		if (n > sizeof(stack) / sizeof(stack[0]) && !(m = malloc(n * sizeof(*m))))
			return KS_ERR_NOMEM;
		json_object_foreach((json_t *)j, k, v) {
			m[i].key = k;
			m[i].len = strlen(k);
			m[i++].value = v;
		}
		sort_members(m, n);
		r = ks_buf_append(b, "{", 1);
		for (i = 0; i < n && !r; i++) {
			if (i && (r = ks_buf_append(b, ",", 1)))
				break;
			if ((r = ks_buf_json_str(b, m[i].key, m[i].len)) || (r = ks_buf_append(b, ":", 1)))
				break;
			r = ks_json_write(b, m[i].value);
		}
		if (!r)
			r = ks_buf_append(b, "}", 1);
		if (m != stack)
			free(m);
		return r;
	}
	case JSON_ARRAY: {
		size_t i;

		r = ks_buf_append(b, "[", 1);
		for (i = 0; i < json_array_size(j) && !r; i++) {
			if (i && (r = ks_buf_append(b, ",", 1)))
				break;
			r = ks_json_write(b, json_array_get(j, i));
		}
		return r ? r : ks_buf_append(b, "]", 1);
	}
	case JSON_STRING:
		return ks_buf_json_str(b, json_string_value(j), json_string_length(j));
	case JSON_INTEGER:
		return write_int(b, (long long)json_integer_value(j));
	case JSON_REAL:
		return write_real(b, json_real_value(j));
	case JSON_TRUE:
		return ks_buf_append(b, "true", 4);
	case JSON_FALSE:
		return ks_buf_append(b, "false", 5);
	default:
		return ks_buf_append(b, "null", 4);
	}
}

static int write_or_null(ks_buf *b, const json_t *j)
{
	return j ? ks_json_write(b, j) : ks_buf_append(b, "null", 4);
}

/* ---- transform -------------------------------------------------------------------------- */

ks_transform_t *ks_transform_new(const ks_conf *conf, ks_errbuf *err)
{
	ks_transform_t *t = calloc(1, sizeof(*t));

	if (!t) {
		ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory creating the transform");
		return NULL;
	}
	t->type = conf->type;
	t->input = conf->input_format;
	t->force_append_only = conf->force_append_only;
	t->tombstones = conf->debezium_tombstones;
	t->n_pk_cols = conf->n_pk_cols;
	if (t->n_pk_cols > 0) {
		if (!(t->pk_cols = malloc(sizeof(*t->pk_cols) * (size_t)t->n_pk_cols))) {
			free(t);
			ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
			return NULL;
		}
		/* Sorted by name like every JSON object kinesink writes. */
		memcpy(t->pk_cols, conf->pk_cols, sizeof(*t->pk_cols) * (size_t)t->n_pk_cols);
		qsort(t->pk_cols, (size_t)t->n_pk_cols, sizeof(*t->pk_cols), cmp_keys);
	}
	ks_buf_init(&t->data, KS_MAX_RECORD_BYTES * 4);
	ks_buf_init(&t->key, 64 * 1024);
	return t;
}

void ks_transform_destroy(ks_transform_t *t)
{
	if (!t)
		return;
	ks_buf_clean(&t->data);
	ks_buf_clean(&t->key);
	free(t->pk_cols);
	free(t);
}

/* "topic [partition] @offset: " + text, with the stage and a short reason. */
#define bad(err, c, reason, ...) \
	ks_errbuf_badrec((err), KS_STAGE_TRANSFORM, (reason), (c)->topic, (c)->partition, (c)->offset, __VA_ARGS__)

/* Valid UTF-8 without control characters: usable as a partition key as it is. */
static int printable_utf8(const unsigned char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = p[i];
		size_t len, k;

		if (c < 0x20 || c == 0x7f)
			return 0;
		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0 && c >= 0xc2)
			len = 2;
		else if ((c & 0xf0) == 0xe0)
			len = 3;
		else if ((c & 0xf8) == 0xf0 && c <= 0xf4)
			len = 4;
		else
			return 0;
		if (i + len > n)
			return 0;
		for (k = 1; k < len; k++)
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
		i += len;
	}
	return 1;
}

/* Partition keys longer than Kinesis allows become their SHA-256: same key, same shard. */
static int finish_key(ks_buf *k)
{
	char hex[65];

	if (k->len <= KS_MAX_PKEY_LEN && k->len > 0)
		return 0;
	ks_sha256_hex(k->data ? k->data : "", k->len, hex);
	ks_buf_reset(k);
	return ks_buf_append(k, hex, 64);
}

/* A stable key for a message without one: the same message always lands on the same shard. */
static int coordinate_key(ks_buf *k, const ks_change *c)
{
	char coords[512], hex[65];

	snprintf(coords, sizeof(coords), "%s/%d/%lld", c->topic ? c->topic : "", (int)c->partition,
		 (long long)c->offset);
	ks_sha256_hex(coords, strlen(coords), hex);
	ks_buf_reset(k);
	return ks_buf_append(k, hex, 64);
}

/* The JSON object of the key columns, taken from @p row (after, or before for deletes). */
static int build_key(ks_transform_t *t, const ks_change *c, const json_t *row, ks_errbuf *err)
{
	ks_buf *k = &t->key;
	int i, r = 0;

	ks_buf_reset(k);
	if (t->n_pk_cols > 0) {
		const char **cols = t->pk_cols;

		r = ks_buf_append(k, "{", 1);
		for (i = 0; i < t->n_pk_cols && !r; i++) {
			const json_t *v = json_is_object(row) ? json_object_get(row, cols[i]) : NULL;

			if (!v && c->key)
				v = json_object_get(c->key, cols[i]);
			if (!v) {
				r = bad(err, c, "missing_key_column", "primary key column '%s' is missing from %s",
					cols[i], c->op == KS_OP_DELETE ? "before" : "after");
				break;
			}
			if ((i && (r = ks_buf_append(k, ",", 1))) ||
			    (r = ks_buf_json_str(k, cols[i], strlen(cols[i]))) || (r = ks_buf_append(k, ":", 1)) ||
			    (r = ks_json_write(k, v)))
				break;
		}
		if (!r)
			r = ks_buf_append(k, "}", 1);
		return r ? r : finish_key(k);
	}
	if (c->key) {
		if ((r = ks_json_write(k, c->key)))
			return r;
		return finish_key(k);
	}
	if (t->type == KS_TYPE_APPEND_ONLY)
		return coordinate_key(k, c);
	return bad(err, c, "no_key",
		   "no key to partition by: the message has no key and primary_key is not set (set primary_key = 'col,...')");
}

static int emit(ks_transform_t *t, ks_record *out[2], int n, const void *data, size_t len)
{
	if (!(out[n] = ks_record_new(t->key.data, t->key.len, data, len)))
		return KS_ERR_NOMEM;
	return n + 1;
}

static int emit_row(ks_transform_t *t, ks_record *out[2], int n, const json_t *row)
{
	int r;

	ks_buf_reset(&t->data);
	if ((r = ks_json_write(&t->data, row)))
		return r;
	return emit(t, out, n, t->data.data, t->data.len);
}

static int debezium_envelope(ks_transform_t *t, const ks_change *c, char op)
{
	ks_buf *b = &t->data;
	char opstr[4] = { '"', op, '"', 0 };
	int r;

	ks_buf_reset(b);
	if ((r = ks_buf_puts(b, "{\"payload\":{\"after\":")) || (r = write_or_null(b, c->after)) ||
	    (r = ks_buf_puts(b, ",\"before\":")) || (r = write_or_null(b, c->before)) ||
	    (r = ks_buf_puts(b, ",\"op\":")) || (r = ks_buf_puts(b, opstr)) ||
	    (r = ks_buf_puts(b, ",\"source\":")) || (r = write_or_null(b, c->source)) ||
	    (r = ks_buf_puts(b, ",\"ts_ms\":")))
		return r;
	r = c->has_ts_ms ? write_int(b, (long long)c->ts_ms) : ks_buf_puts(b, "null");
	if (r || (r = ks_buf_puts(b, "},\"schema\":")) || (r = write_or_null(b, c->schema)))
		return r;
	return ks_buf_puts(b, "}");
}

static int apply_raw(ks_transform_t *t, const ks_change *c, ks_record *out[2])
{
	ks_buf *k = &t->key;
	char hex[65];
	int r;

	ks_buf_reset(k);
	if (!c->kafka_key || !c->kafka_key_len) {
		r = coordinate_key(k, c);
	} else if (c->kafka_key_len <= KS_MAX_PKEY_LEN && printable_utf8(c->kafka_key, c->kafka_key_len)) {
		r = ks_buf_append(k, c->kafka_key, c->kafka_key_len);
	} else {
		/* Too long, or bytes that are not a Unicode string: the key's hash, stable per key. */
		ks_sha256_hex(c->kafka_key, c->kafka_key_len, hex);
		r = ks_buf_append(k, hex, 64);
	}
	if (r)
		return r;
	return emit(t, out, 0, c->raw, c->raw_len);
}

int ks_transform_apply(ks_transform_t *t, const ks_change *c, ks_record *out[2], ks_errbuf *err)
{
	const json_t *row;
	int r, n;

	out[0] = out[1] = NULL;
	switch (c->op) {
	case KS_OP_TOMBSTONE:
		return 0;
	case KS_OP_TRUNCATE:
	case KS_OP_MESSAGE:
		return bad(err, c, "non_row_event", "op '%c' is not a row change; nothing to write",
			   ks_op_char(c->op));
	case KS_OP_NONE:
		return bad(err, c, "missing_op", "change has no op");
	default:
		break;
	}
	if (t->input == KS_INPUT_RAW)
		return apply_raw(t, c, out);

	row = c->op == KS_OP_DELETE ? (c->before ? c->before : c->key) : c->after;
	switch (t->type) {
	case KS_TYPE_APPEND_ONLY:
		if (c->op == KS_OP_DELETE) {
			if (t->force_append_only)
				return 0;
			return bad(err, c, "not_append_only",
				   "a delete reached an append-only sink; set force_append_only = 'true' to drop deletes");
		}
		if (c->op == KS_OP_UPDATE && !t->force_append_only)
			return bad(err, c, "not_append_only",
				   "an update reached an append-only sink; set force_append_only = 'true' to write updates as inserts");
		if ((r = build_key(t, c, row, err)))
			return r;
		return emit_row(t, out, 0, c->after);
	case KS_TYPE_UPSERT:
		if ((r = build_key(t, c, row, err)))
			return r;
		if (c->op == KS_OP_DELETE)
			return emit(t, out, 0, "", 0);
		return emit_row(t, out, 0, c->after);
	case KS_TYPE_DEBEZIUM: {
		char op = c->op == KS_OP_UPDATE ? 'u' : c->op == KS_OP_DELETE ? 'd' : 'c';

		if ((r = build_key(t, c, row, err)))
			return r;
		if ((r = debezium_envelope(t, c, op)))
			return r;
		if ((n = emit(t, out, 0, t->data.data, t->data.len)) < 0)
			return n;
		if (c->op == KS_OP_DELETE && t->tombstones) {
			if ((n = emit(t, out, n, "", 0)) < 0) {
				ks_record_destroy(out[0]);
				out[0] = NULL;
			}
		}
		return n;
	}
	}
	return bad(err, c, "bad_type", "unknown output type");
}
