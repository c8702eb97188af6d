/*
 * Transform: a change becomes 0, 1 or 2 output records for the configured type
 * (DESIGN.md, output types). Data is compact JSON with object keys sorted, written straight
 * into a reused buffer; the partition key is the compact JSON object of the key columns.
 */
#include "transform.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

struct ks_transform {
	ks_sink_type type;
	ks_input_format input;
	int force_append_only;
	int tombstones;
	int envelope;     /* raw.envelope=kafka */
	const char **pk_cols; /* the configuration's columns, sorted by name (strings borrowed) */
	int n_pk_cols;
	ks_buf data;      /* reused for every record's data */
	ks_buf key;       /* reused for every partition key */
	ks_buf scratch;   /* raw.envelope: a field's bytes re-written, or in base64 */
	json_t *schema;   /* type=debezium: the last schema written outside an arena (a reference
			     held, so the same pointer is the same value) ... */
	ks_buf schema_text; /* ... and its text */
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

static int write_or_null(ks_buf *b, const json_t *j)
{
	return j ? ks_json_write(b, j) : ks_buf_append(b, "null", 4);
}

/* ---- transform -------------------------------------------------------------------------- */

static int cmp_keys(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

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
	t->envelope = conf->input_format == KS_INPUT_RAW && conf->raw_envelope == KS_ENVELOPE_KAFKA;
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
	/* Whatever the stream's own limit, no Kinesis record is larger than this: the writer checks. */
	ks_buf_init(&t->data, KS_MAX_DATA_BYTES);
	ks_buf_init(&t->key, KS_MAX_DATA_BYTES);
	ks_buf_init(&t->scratch, KS_MAX_DATA_BYTES);
	ks_buf_init(&t->schema_text, KS_MAX_DATA_BYTES);
	return t;
}

void ks_transform_destroy(ks_transform_t *t)
{
	if (!t)
		return;
	ks_buf_clean(&t->data);
	ks_buf_clean(&t->key);
	ks_buf_clean(&t->scratch);
	ks_buf_clean(&t->schema_text);
	json_decref(t->schema);
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

static int key_fits(const void *p, size_t n)
{
	return n > 0 && (n <= KS_MAX_PKEY_LEN || ks_key_chars(p, n) <= KS_MAX_PKEY_LEN);
}

/* Partition keys longer than Kinesis allows become their SHA-256: same key, same shard. */
static int finish_key(ks_buf *k)
{
	char hex[65];

	if (key_fits(k->data, k->len))
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

/* What the key columns are read from, for messages. */
static const char *row_name(const ks_transform_t *t, const ks_change *c)
{
	if (t->input == KS_INPUT_JSON)
		return "the value";
	if (c->op == KS_OP_DELETE)
		return c->before ? "before" : "the message key";
	return "after";
}

/*
 * The JSON object of the primary-key columns, taken from @p row (after; before for deletes, or
 * the key message when a delete has no before), else the key message's fields.
 */
static int build_key(ks_transform_t *t, const ks_change *c, const json_t *row, ks_errbuf *err)
{
	ks_buf *k = &t->key;
	int i, r = 0;

	ks_buf_reset(k);
	if (t->n_pk_cols > 0) {
		const char **cols = t->pk_cols;

		if (!json_is_object(row))
			return bad(err, c, "missing_key_column",
				   "%s is a JSON %s, not an object: primary key column '%s' cannot be read from it",
				   row_name(t, c), ks_json_type_name(row), cols[0]);
		r = ks_buf_append(k, "{", 1);
		for (i = 0; i < t->n_pk_cols && !r; i++) {
			const json_t *v = json_object_get(row, cols[i]);

			if (!v)
				return bad(err, c, "missing_key_column", "primary key column '%s' is missing from %s",
					   cols[i], row_name(t, c));
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
	if (c->kafka_key && c->kafka_key_len)
		return bad(err, c, "no_key",
			   "no key to partition by: primary_key is not set and the message key (%zu bytes) is not a "
			   "Debezium key (a record of the key columns): set primary_key = 'col,...'", c->kafka_key_len);
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

/*
 * The value schema of a Kafka Connect envelope is the same value for every message of a table
 * (the decoder keeps one per schema text): written once, then copied. A schema of the open arena
 * lives for this message only and is written as it is.
 */
static int write_schema(ks_transform_t *t, ks_buf *b, json_t *schema)
{
	int r;

	if (!schema || ks_arena_owns(schema))
		return write_or_null(b, schema);
	if (schema != t->schema) {
		json_decref(t->schema);
		t->schema = NULL;
		ks_buf_reset(&t->schema_text);
		if ((r = ks_json_write(&t->schema_text, schema)))
			return r;
		t->schema = json_incref(schema);
	}
	return ks_buf_append(b, t->schema_text.data, t->schema_text.len);
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
	r = c->has_ts_ms ? ks_json_write_int(b, (long long)c->ts_ms) : ks_buf_puts(b, "null");
	if (r || (r = ks_buf_puts(b, "},\"schema\":")) || (r = write_schema(t, b, c->schema)))
		return r;
	return ks_buf_puts(b, "}");
}

/*
 * raw.envelope=kafka: set "<name>" to bytes @p p (n) as JSON when they are JSON exactly as this
 * writer writes it (so writing the value back compact with sorted keys gives the bytes again),
 * else "<name>_base64" to their base64; NULL bytes (a null key or value) are "<name>": null.
 */
static int put_bytes(ks_transform_t *t, json_t *obj, const char *name, const void *p, size_t n)
{
	ks_buf *s = &t->scratch;
	json_t *v = NULL;
	char b64name[32];
	int r;

	if (!p)
		return json_object_set_new(obj, name, json_null()) ? KS_ERR_NOMEM : 0;
	if (n && (v = json_loadb(p, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL))) {
		ks_buf_reset(s);
		if (!ks_json_write(s, v) && s->len == n && !memcmp(s->data, p, n))
			return json_object_set_new(obj, name, v) ? KS_ERR_NOMEM : 0;
		json_decref(v);
	}
	ks_buf_reset(s);
	if ((r = ks_buf_base64(s, p, n)))
		return r;
	snprintf(b64name, sizeof(b64name), "%s_base64", name);
	return json_object_set_new(obj, b64name, json_stringn(s->len ? s->data : "", s->len)) ? KS_ERR_NOMEM : 0;
}

/*
 * The whole Kafka record as one JSON object in t->data: topic, partition, offset, timestamp and
 * timestamp_type (null when the broker gave none), key, value, and headers in order (repeats and
 * null values kept), bytes through put_bytes; header names that are not UTF-8 go as key_base64.
 */
static int write_envelope(ks_transform_t *t, const ks_change *c)
{
	const rd_kafka_headers_t *h = c->headers;
	json_t *env = json_object(), *hs = json_array();
	size_t i, n = h ? rd_kafka_header_cnt(h) : 0;
	int r = env && hs ? 0 : KS_ERR_NOMEM;

	if (!r && (json_object_set_new(env, "topic", json_string(c->topic ? c->topic : "")) ||
		   json_object_set_new(env, "partition", json_integer(c->partition)) ||
		   json_object_set_new(env, "offset", json_integer(c->offset)) ||
		   json_object_set_new(env, "timestamp",
				       c->kafka_ts_type == KS_TS_NONE ? json_null() : json_integer(c->kafka_ts)) ||
		   json_object_set_new(env, "timestamp_type",
				       c->kafka_ts_type == KS_TS_CREATE       ? json_string("create")
				       : c->kafka_ts_type == KS_TS_LOG_APPEND ? json_string("log-append")
									      : json_null())))
		r = KS_ERR_NOMEM;
	for (i = 0; i < n && !r; i++) {
		const char *name;
		const void *val;
		size_t size;
		json_t *one = json_object(), *jname;

		if (!one || json_array_append_new(hs, one)) {
			r = KS_ERR_NOMEM;
			break;
		}
		if (rd_kafka_header_get_all(h, i, &name, &val, &size))
			break;
		if ((jname = json_stringn(name, strlen(name))))
			r = json_object_set_new(one, "key", jname) ? KS_ERR_NOMEM : 0;
		else
			r = put_bytes(t, one, "key", name, strlen(name));
		if (!r)
			r = put_bytes(t, one, "value", val, size);
	}
	if (!r && !(r = json_object_set(env, "headers", hs) ? KS_ERR_NOMEM : 0) &&
	    !(r = put_bytes(t, env, "key", c->kafka_key, c->kafka_key_len)) &&
	    !(r = put_bytes(t, env, "value", c->raw, c->raw_len))) {
		ks_buf_reset(&t->data);
		r = ks_json_write(&t->data, env);
	}
	json_decref(hs);
	json_decref(env);
	return r;
}

static int apply_raw(ks_transform_t *t, const ks_change *c, ks_record *out[2])
{
	ks_buf *k = &t->key;
	char hex[65];
	int r;

	ks_buf_reset(k);
	if (!c->kafka_key || !c->kafka_key_len) {
		r = coordinate_key(k, c);
	} else if (printable_utf8(c->kafka_key, c->kafka_key_len) && key_fits(c->kafka_key, c->kafka_key_len)) {
		r = ks_buf_append(k, c->kafka_key, c->kafka_key_len);
	} else {
		/* Too long, or bytes that are not a Unicode string: the key's hash, stable per key. */
		ks_sha256_hex(c->kafka_key, c->kafka_key_len, hex);
		r = ks_buf_append(k, hex, 64);
	}
	if (r)
		return r;
	if (t->envelope)
		return (r = write_envelope(t, c)) ? r : emit(t, out, 0, t->data.data, t->data.len);
	return emit(t, out, 0, c->raw, c->raw_len);
}

static int apply(ks_transform_t *t, const ks_change *c, ks_record *out[2], ks_errbuf *err)
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

int ks_transform_apply(ks_transform_t *t, const ks_change *c, ks_record *out[2], ks_errbuf *err)
{
	int n = apply(t, c, out, err);

	if (n == KS_ERR_TOOBIG)
		return bad(err, c, "too_large",
			   "the output record is over %d MiB, more than any Kinesis stream takes in one record",
			   KS_MAX_DATA_BYTES >> 20);
	return n;
}
