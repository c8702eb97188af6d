/*
 * Decode: one Kafka message into a change. Debezium JSON (envelope with schema, or the bare
 * payload), Debezium Avro (through decode_avro.c, schemas from registry.c or glue.c), plain JSON,
 * raw bytes. A JSON value or key may come in a schema-registry framing (Confluent's or Glue's,
 * framing.c): it is taken off (a Glue payload inflated) and the JSON decoded as without it.
 * The value is parsed once; the change holds references into that one tree.
 */
#include "decode.h"

#include <float.h>
#include <librdkafka/rdkafka.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "decode_avro.h"
#include "framing.h"
#include "glue.h"
#include "registry.h"

/*
 * Kafka Connect's JSON converter writes every message as {"schema":S,"payload":P}, with the
 * same S (several times larger than P) in every message of a table. A decoder remembers the
 * bytes of the last few S it met and their parsed value; a message that starts with one of them
 * has only {"payload":P...} parsed (schema_known).
 */
#define SCHEMA_TEXTS 8              /* schema texts remembered per decoder, for values and for keys */
#define SCHEMA_TEXT_MAX (64 * 1024) /* longer ones are parsed every time */

typedef struct schema_text {
	char *text;     /* S's bytes as the messages have them */
	size_t len;
	json_t *schema; /* parsed from them outside any arena (shared, never changed) */
	int has_float;  /* the bytes hold "float" (see widen_floats) */
} schema_text;

typedef struct schema_texts {
	schema_text e[SCHEMA_TEXTS];
	unsigned next;  /* the entry replaced next */
	unsigned long hits, misses;
} schema_texts;

struct ks_decoder {
	ks_input_format format;
	int envelope;            /* raw.envelope: a null value is a record too */
	ks_registry_t *registry; /* debezium-avro only: the schemas (shared, or owned when own_registry) */
	int own_registry;
	ks_avro_decoder_t *avro; /* debezium-avro only: this decoder's Avro state */
	ks_metrics *metrics;
	schema_texts values, keys; /* debezium-json: the schemas met, by their bytes */
	int key_later;           /* debezium-json with primary_key: the message key is parsed only
				    when a delete has no before */
	ks_glue_t *glue;         /* schema.registry.type=glue: the schema versions (shared, or owned
				    when own_glue); for JSON input only to check a framed value's DataFormat */
	int own_glue;
	size_t max_inflate;      /* a compressed Glue payload inflates to at most this many bytes */
	ks_buf value_buf, key_buf; /* what a compressed Glue value and key inflated to */
	uint8_t json_version[16]; /* JSON input with Glue: the last version id found to be JSON */
	int has_json_version;
};

#define KEEP_INFLATED (1024 * 1024) /* an inflate buffer larger than this is freed after its message */

char ks_op_char(ks_op op)
{
	static const char letters[] = { '-', 'c', 'r', 'u', 'd', 't', 'm', '-' };

	return (unsigned)op < sizeof(letters) ? letters[op] : '-';
}

/*
 * A value of the arena open on this thread goes back with the whole arena at the window's end:
 * walking its tree to drop references would only cost time (nothing in such a tree holds a
 * value from outside it). Anything else is released as usual.
 */
static void release(json_t *j)
{
	if (j && !ks_arena_owns(j))
		json_decref(j);
}

void ks_change_clean(ks_change *c)
{
	release(c->before);
	release(c->after);
	release(c->source);
	release(c->schema);
	release(c->key);
	memset(c, 0, sizeof(*c));
}

/*
 * The most the consumer may receive in one message when the caller does not say: librdkafka's
 * receive.message.max.bytes, which it raises to fetch.max.bytes + 512, from the kafka.* settings
 * (librdkafka's defaults for what they leave unset).
 */
static size_t receivable(const ks_conf *conf)
{
	rd_kafka_conf_t *kc = rd_kafka_conf_new();
	long recv = 0, fetch = 0;
	char v[32];
	size_t n;
	int i;

	if (!kc)
		return 100000000;
	for (i = 0; i < conf->n_kafka; i++)
		if (!strcmp(conf->kafka[i].key, "receive.message.max.bytes") || !strcmp(conf->kafka[i].key, "fetch.max.bytes"))
			rd_kafka_conf_set(kc, conf->kafka[i].key, conf->kafka[i].value, NULL, 0);
	n = sizeof(v);
	if (rd_kafka_conf_get(kc, "receive.message.max.bytes", v, &n) == RD_KAFKA_CONF_OK)
		recv = atol(v);
	n = sizeof(v);
	if (rd_kafka_conf_get(kc, "fetch.max.bytes", v, &n) == RD_KAFKA_CONF_OK)
		fetch = atol(v);
	rd_kafka_conf_destroy(kc);
	return (size_t)(fetch + 512 > recv ? fetch + 512 : recv);
}

ks_decoder_t *ks_decoder_new_sources(const ks_conf *conf, ks_metrics *metrics, const ks_decoder_sources *src,
				     ks_errbuf *err)
{
	ks_decoder_t *d = calloc(1, sizeof(*d));
	int framed_json, glue;

	if (!d) {
		ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory creating the decoder");
		return NULL;
	}
	d->format = conf->input_format;
	d->envelope = conf->input_format == KS_INPUT_RAW && conf->raw_envelope != KS_ENVELOPE_NONE;
	d->metrics = metrics;
	d->key_later = d->format == KS_INPUT_DEBEZIUM_JSON && conf->n_pk_cols > 0;
	d->max_inflate = src && src->max_inflate ? src->max_inflate : receivable(conf);
	ks_buf_init(&d->value_buf, 0);
	ks_buf_init(&d->key_buf, 0);
	framed_json = d->format == KS_INPUT_DEBEZIUM_JSON || d->format == KS_INPUT_JSON;
	glue = conf->registry_type == KS_REGISTRY_GLUE && (framed_json || d->format == KS_INPUT_DEBEZIUM_AVRO);
	if (glue && !(d->glue = src ? src->glue : NULL)) {
		if (!(d->glue = ks_glue_new(conf, NULL, metrics, err)))
			goto fail;
		d->own_glue = 1;
	}
	if (d->format != KS_INPUT_DEBEZIUM_AVRO)
		return d;
	if (glue) {
		if (!(d->avro = ks_avro_decoder_new_glue(d->glue, err)))
			goto fail;
		return d;
	}
	if (!(d->registry = src ? src->registry : NULL)) {
		if (!(d->registry = ks_registry_new(conf, err)))
			goto fail;
		d->own_registry = 1;
	}
	if (!(d->avro = ks_avro_decoder_new(d->registry, err)))
		goto fail;
	return d;
fail:
	ks_decoder_destroy(d);
	return NULL;
}

ks_decoder_t *ks_decoder_new_shared(const ks_conf *conf, ks_metrics *metrics, ks_registry_t *registry,
				    ks_errbuf *err)
{
	ks_decoder_sources src = { registry, NULL, 0 };

	return ks_decoder_new_sources(conf, metrics, &src, err);
}

ks_decoder_t *ks_decoder_new(const ks_conf *conf, ks_metrics *metrics, ks_errbuf *err)
{
	return ks_decoder_new_sources(conf, metrics, NULL, err);
}

struct ks_registry *ks_decoder_registry(ks_decoder_t *d)
{
	return d->registry;
}

static void forget_texts(schema_texts *st)
{
	int i;

	for (i = 0; i < SCHEMA_TEXTS; i++) {
		free(st->e[i].text);
		json_decref(st->e[i].schema);
	}
	memset(st, 0, sizeof(*st));
}

unsigned long ks_decoder_schemas_reused(const ks_decoder_t *d)
{
	return d->values.hits + d->keys.hits;
}

void ks_decoder_destroy(ks_decoder_t *d)
{
	if (!d)
		return;
	forget_texts(&d->values);
	forget_texts(&d->keys);
	ks_avro_decoder_destroy(d->avro);
	if (d->own_registry)
		ks_registry_destroy(d->registry);
	if (d->own_glue)
		ks_glue_destroy(d->glue);
	ks_buf_clean(&d->value_buf);
	ks_buf_clean(&d->key_buf);
	free(d);
}

const char *ks_json_type_name(const json_t *j)
{
	if (!j)
		return "nothing";
	switch (json_typeof(j)) {
	case JSON_OBJECT: return "object";
	case JSON_ARRAY: return "array";
	case JSON_STRING: return "string";
	case JSON_INTEGER: return "integer";
	case JSON_REAL: return "number";
	case JSON_TRUE:
	case JSON_FALSE: return "boolean";
	default: return "null";
	}
}

/* "topic [partition] @offset: " + text; stage decode; reason token. */
/* "topic [partition] @offset: " + text, with the stage and a short reason. */
#define bad(err, m, reason, ...) \
	ks_errbuf_badrec((err), KS_STAGE_DECODE, (reason), (m)->topic, (m)->partition, (m)->offset, __VA_ARGS__)

static json_t *own(json_t *j)
{
	return j && !json_is_null(j) ? json_incref(j) : NULL;
}

static const char connect_head[] = "{\"schema\":", connect_mid[] = ",\"payload\":";
#define HEAD_LEN (sizeof(connect_head) - 1)
#define MID_LEN (sizeof(connect_mid) - 1)

/* What json_load_callback reads: "{" and then the bytes from the "payload" member on. */
typedef struct feed {
	const char *p;
	size_t n;
	int opened;
} feed;

static size_t feed_more(void *buf, size_t size, void *arg)
{
	feed *f = arg;
	size_t k;

	if (!f->opened) {
		f->opened = 1;
		*(char *)buf = '{';
		return 1;
	}
	k = f->n < size ? f->n : size;
	memcpy(buf, f->p, k);
	f->p += k;
	f->n -= k;
	return k;
}

/*
 * When @p p (@p n bytes) begins {"schema":S,"payload": with S the bytes of a remembered schema
 * (*known gets it), the value parsed from the rest as {"payload":…}: the message's object but for
 * its "schema" member, which is S. Parsing that rest checks everything a parse of the whole
 * value would (the nesting depth too, as the object is the same); when it fails, or the rest has
 * a "schema" member of its own, NULL: the caller parses the whole value, as without the cache.
 */
static json_t *schema_known(schema_texts *st, const char *p, size_t n, const schema_text **known)
{
	const char *s;
	size_t left;
	json_t *root;
	feed f;
	int i;

	if (n < HEAD_LEN || memcmp(p, connect_head, HEAD_LEN))
		return NULL;
	s = p + HEAD_LEN;
	left = n - HEAD_LEN;
	for (i = 0; i < SCHEMA_TEXTS; i++) {
		const schema_text *e = &st->e[i];

		if (!e->text || e->len + MID_LEN > left || memcmp(s, e->text, e->len) ||
		    memcmp(s + e->len, connect_mid, MID_LEN))
			continue;
		f.p = s + e->len + 1; /* from "payload" on */
		f.n = left - e->len - 1;
		f.opened = 0;
		root = json_load_callback(feed_more, &f, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
		if (root && json_object_get(root, "schema")) {
			release(root);
			root = NULL;
		}
		if (root) {
			st->hits++;
			*known = e;
		}
		return root;
	}
	return NULL;
}

/*
 * After a whole @p p (@p n bytes) parsed well in the Connect form: remember its S. S is parsed on
 * its own (outside the arena: it outlives the message) to know where it ends. A decoder that
 * keeps meeting new texts (more tables than entries, or S written differently each time) stops
 * remembering.
 */
static void remember_schema(schema_texts *st, const char *p, size_t n)
{
	const char *s;
	schema_text *e;
	json_error_t jerr;
	ks_arena_t *arena;
	json_t *schema;
	char *text;
	size_t len;

	if (n < HEAD_LEN || memcmp(p, connect_head, HEAD_LEN) || (st->misses > 64 && st->misses > st->hits))
		return;
	s = p + HEAD_LEN;
	st->misses++;
	arena = ks_arena_suspend();
	schema = json_loadb(s, n - HEAD_LEN, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DISABLE_EOF_CHECK, &jerr);
	len = schema && jerr.position > 0 ? (size_t)jerr.position : 0;
	if (!len || len > SCHEMA_TEXT_MAX || len + MID_LEN > n - HEAD_LEN || memcmp(s + len, connect_mid, MID_LEN) ||
	    !(text = malloc(len))) {
		json_decref(schema);
		ks_arena_resume(arena);
		return;
	}
	memcpy(text, s, len);
	e = &st->e[st->next];
	st->next = (st->next + 1) % SCHEMA_TEXTS;
	free(e->text);
	json_decref(e->schema);
	e->text = text;
	e->len = len;
	e->schema = schema;
	e->has_float = memmem(text, len, "\"float\"", 7) != NULL;
	ks_arena_resume(arena);
}

/*
 * JSON text without its framing: a Confluent header is taken off, a Glue one too (its payload
 * inflated into @p buf when compressed; with a Glue client and @p check_format, the version's
 * DataFormat must be JSON: one lookup per version id and decoder). @returns 0 with *@p p / *@p n
 * the JSON text (the message's bytes or @p buf's); KS_ERR_BADREC with @p err's text and reason
 * (without the coordinates); KS_ERR_FATAL, KS_ERR_NOMEM.
 */
static int unframe_json(ks_decoder_t *d, const void *in, size_t in_len, ks_buf *buf, int check_format, const void **p,
			size_t *n, ks_errbuf *err)
{
	const ks_glue_schema *version;
	const uint8_t *out;
	size_t len;
	ks_frame f;
	int rc;

	if ((rc = ks_frame_json(in, in_len, &f, err)))
		return rc;
	if (f.framing == KS_FRAMING_NONE) {
		*p = in;
		*n = in_len;
		return 0;
	}
	if ((rc = ks_frame_payload(&f, d->max_inflate, buf, &out, &len, err)))
		return rc;
	if (f.framing == KS_FRAMING_GLUE && check_format && d->glue &&
	    !(d->has_json_version && memcmp(d->json_version, f.version_id, 16) == 0)) {
		if ((rc = ks_glue_get(d->glue, f.version_id, &version, err)))
			return rc;
		if (strcmp(version->format, "JSON") != 0) {
			ks_errbuf_set(err, KS_ERR_BADREC, "AWS Glue schema version %s has DataFormat %s, but input.format = %s "
				      "reads JSON: set the route's input.format to match its topic", version->id_text,
				      version->format, d->format == KS_INPUT_JSON ? "json" : "debezium-json");
			ks_errbuf_reason(err, "wrong_format");
			return KS_ERR_BADREC;
		}
		memcpy(d->json_version, f.version_id, 16);
		d->has_json_version = 1;
	}
	*p = out;
	*n = len;
	return 0;
}

/* A framing error of the value (unframe_json's) as a bad record with its coordinates; others as they are. */
static int framing_bad(const ks_msg *m, int rc, ks_errbuf *err)
{
	if (rc != KS_ERR_BADREC)
		return rc;
	return bad(err, m, err->reason[0] ? err->reason : "bad_framing", "value: %s", err->text);
}

/* An inflate buffer grown past KEEP_INFLATED by one message is not kept for the next. */
static void trim(ks_buf *b)
{
	if (b->cap > KEEP_INFLATED) {
		ks_buf_clean(b);
		ks_buf_init(b, 0);
	}
}

/* The key message: {"schema":…,"payload":{…}} or the bare object, framed or not; anything else is no key. */
static json_t *decode_json_key(ks_decoder_t *d, const ks_msg *m)
{
	const schema_text *known = NULL;
	json_t *root, *payload, *key = NULL;
	ks_errbuf ignored;
	const void *kp;
	size_t kn;

	if (!m->key || !m->key_len || unframe_json(d, m->key, m->key_len, &d->key_buf, 0, &kp, &kn, &ignored))
		return NULL;
	if ((root = schema_known(&d->keys, kp, kn, &known))) {
		/* The object without its "schema" member: only a payload object can be the key. */
		payload = json_object_get(root, "payload");
		key = json_is_object(payload) ? json_incref(payload) : NULL;
		release(root);
		if (key)
			return key;
	}
	if (!(root = json_loadb(kp, kn, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL)))
		return NULL;
	payload = json_object_get(root, "payload");
	if (json_is_object(payload) && json_object_get(root, "schema")) {
		key = json_incref(payload);
		remember_schema(&d->keys, kp, kn);
	} else if (json_is_object(root))
		key = json_incref(root);
	release(root);
	return key;
}

/* @p s (@p n bytes, at most its first 20) as a JSON string into @p out: safe to log. */
static const char *quoted(char *out, size_t size, const char *s, size_t n)
{
	size_t cut = n;
	ks_buf b;

	if (cut > 20)
		for (cut = 20; cut > 0 && (s[cut] & 0xc0) == 0x80; cut--)
			; /* not inside a UTF-8 sequence */
	ks_buf_init(&b, 0);
	if (ks_buf_json_str(&b, s, cut))
		snprintf(out, size, "(unprintable)");
	else
		snprintf(out, size, "%.*s%s", (int)b.len, b.data, cut < n ? "..." : "");
	ks_buf_clean(&b);
	return out;
}

/*
 * Pull a change out of a Debezium payload object (from JSON or from Avro): op, before,
 * after, source, ts_ms. @p schema is the value schema or NULL (borrowed).
 */
static int extract_debezium(ks_decoder_t *d, const ks_msg *m, json_t *payload, json_t *schema, ks_change *out,
			    ks_errbuf *err)
{
	json_t *op = json_object_get(payload, "op"), *j;
	const char *ops;
	char q[100];

	if (!op)
		return bad(err, m, "missing_op",
			   "payload.op: missing: not a Debezium change event (for plain JSON rows set input.format = 'json')");
	if (!json_is_string(op))
		return bad(err, m, "bad_op", "payload.op: expected a string, got %s", ks_json_type_name(op));
	ops = json_string_value(op);
	if (json_string_length(op) != 1)
		goto unknown;
	switch (ops[0]) {
	case 'c': out->op = KS_OP_CREATE; break;
	case 'r': out->op = KS_OP_READ; break;
	case 'u': out->op = KS_OP_UPDATE; break;
	case 'd': out->op = KS_OP_DELETE; break;
	case 't': out->op = KS_OP_TRUNCATE; break;
	case 'm': out->op = KS_OP_MESSAGE; break;
	default: goto unknown;
	}
	j = json_object_get(payload, "before");
	if (j && !json_is_null(j) && !json_is_object(j))
		return bad(err, m, "bad_before", "payload.before: expected an object or null, got %s",
			   ks_json_type_name(j));
	out->before = own(j);
	j = json_object_get(payload, "after");
	if (j && !json_is_null(j) && !json_is_object(j))
		return bad(err, m, "bad_after", "payload.after: expected an object or null, got %s",
			   ks_json_type_name(j));
	out->after = own(j);
	if ((out->op == KS_OP_CREATE || out->op == KS_OP_READ || out->op == KS_OP_UPDATE) && !out->after)
		return bad(err, m, "missing_after", "payload.after: missing or null, but op '%c' needs the row", ops[0]);
	/* With primary_key the row gives the key columns; the message key is wanted only here. */
	if (out->op == KS_OP_DELETE && !out->before && !out->key && d->key_later)
		out->key = decode_json_key(d, m);
	if (out->op == KS_OP_DELETE && !out->before && !out->key)
		return bad(err, m, "missing_before",
			   "payload.before: missing for op 'd' and the message has no key to identify the row");
	j = json_object_get(payload, "source");
	if (j && !json_is_null(j) && !json_is_object(j))
		return bad(err, m, "bad_source", "payload.source: expected an object or null, got %s",
			   ks_json_type_name(j));
	out->source = own(j);
	j = json_object_get(payload, "ts_ms");
	if (json_is_integer(j)) {
		out->ts_ms = json_integer_value(j);
		out->has_ts_ms = 1;
	} else if (j && !json_is_null(j)) {
		return bad(err, m, "bad_ts_ms", "payload.ts_ms: expected an integer, got %s", ks_json_type_name(j));
	}
	out->schema = own(schema);
	return 0;
unknown:
	return bad(err, m, "unknown_op", "payload.op: unknown op %s (expected c, r, u, d, t or m)",
		   quoted(q, sizeof(q), ops, json_string_length(op)));
}

/* jansson's text quotes the bytes near the error: control and non-ASCII ones become \xNN. */
static const char *safe_text(char *out, size_t size, const char *s)
{
	size_t n = 0;

	for (; *s && n + 5 < size; s++) {
		unsigned char c = (unsigned char)*s;

		if (c >= 0x20 && c < 0x7f)
			out[n++] = (char)c;
		else
			n += (size_t)snprintf(out + n, size - n, "\\x%02x", c);
	}
	out[n] = '\0';
	return out;
}

/* Why jansson refused the value, with where. */
static int not_json(const ks_msg *m, const json_error_t *jerr, ks_errbuf *err)
{
	char text[JSON_ERROR_TEXT_LENGTH * 4 + 1];

	safe_text(text, sizeof(text), jerr->text);
	if (!m->value_len)
		return bad(err, m, "not_json", "value is empty (0 bytes), not JSON");
	switch (json_error_code(jerr)) {
	case json_error_numeric_overflow:
		return bad(err, m, "unsupported_json",
			   "value has a number out of range at line %d column %d: %s (integers must fit in 64 bits, "
			   "reals in a double)", jerr->line, jerr->column, text);
	case json_error_invalid_utf8:
		return bad(err, m, "not_json", "value is not UTF-8 at line %d column %d: %s", jerr->line, jerr->column,
			   text);
	case json_error_null_byte_in_key:
		return bad(err, m, "unsupported_json",
			   "value has a member name with a \\u0000 escape at line %d column %d, which cannot be held (%s)",
			   jerr->line, jerr->column, text);
	default:
		return bad(err, m, "not_json", "value is not JSON: line %d column %d: %s", jerr->line, jerr->column,
			   text);
	}
}

/* @p v, a JSON number of a float32 column, as the f32 it was, widened back to a double. */
static void widen(json_t *holder, const char *name, size_t index, json_t *v)
{
	double d = json_number_value(v);
	json_t *w;

	if (!json_is_number(v) || !(d >= -FLT_MAX && d <= FLT_MAX) || !(w = json_real((double)(float)d)))
		return; /* not a number, or none an f32 holds: left as it is */
	if (name)
		json_object_set_new(holder, name, w);
	else
		json_array_set_new(holder, index, w);
}

/*
 * A float32 column (Connect type "float") reaches RisingWave's encoder as an f32, which it
 * writes widened to a double: 0.1 becomes 0.10000000149011612. The envelope's schema says which
 * columns of before and after are float32 (and arrays of them); their values are made so here.
 */
static void widen_floats(const json_t *schema, ks_change *out)
{
	const json_t *part, *col;
	size_t i, j, k;

	json_array_foreach(json_object_get(schema, "fields"), i, part) {
		const char *which = json_string_value(json_object_get(part, "field"));
		json_t *row = NULL;

		if (which && !strcmp(which, "before"))
			row = out->before;
		else if (which && !strcmp(which, "after"))
			row = out->after;
		if (!row)
			continue;
		json_array_foreach(json_object_get(part, "fields"), j, col) {
			const char *name = json_string_value(json_object_get(col, "field"));
			const char *type = json_string_value(json_object_get(col, "type"));
			const char *items = json_string_value(json_object_get(json_object_get(col, "items"), "type"));
			json_t *v = name ? json_object_get(row, name) : NULL, *e;

			if (!v || !type)
				continue;
			if (!strcmp(type, "float"))
				widen(row, name, 0, v);
			else if (!strcmp(type, "array") && items && !strcmp(items, "float") && json_is_array(v))
				json_array_foreach(v, k, e)
					widen(v, NULL, k, e);
		}
	}
}

static int decode_debezium_json(ks_decoder_t *d, const ks_msg *m, ks_change *out, ks_errbuf *err)
{
	const schema_text *known = NULL;
	json_error_t jerr;
	json_t *root, *payload, *schema = NULL;
	int rc, floats;

	if (!(root = schema_known(&d->values, m->value, m->value_len, &known))) {
		if (!(root = json_loadb(m->value, m->value_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr)))
			return not_json(m, &jerr, err);
		if (json_is_object(root) && json_object_get(root, "schema") && json_object_get(root, "payload") &&
		    !json_object_get(root, "op"))
			remember_schema(&d->values, m->value, m->value_len);
	}
	if (!json_is_object(root)) {
		rc = bad(err, m, "not_object", "value: expected a Debezium envelope object, got %s",
			 ks_json_type_name(root));
		release(root);
		return rc;
	}
	payload = json_object_get(root, "payload");
	/* The envelope is {"schema":…,"payload":…}; a bare payload has "op" at the top. */
	if (payload && !json_object_get(root, "op")) {
		schema = known ? known->schema : json_object_get(root, "schema");
		if (json_is_null(schema))
			schema = NULL;
		if (!json_is_object(payload)) {
			rc = json_is_null(payload) ? 0 :
				bad(err, m, "bad_payload", "payload: expected an object or null, got %s",
				    ks_json_type_name(payload));
			/* {"schema":…,"payload":null} is the JSON converter's tombstone. */
			if (!rc)
				out->op = KS_OP_TOMBSTONE;
			release(root);
			return rc;
		}
	} else {
		payload = root;
	}
	rc = extract_debezium(d, m, payload, schema, out, err);
	/* "float" cannot straddle S and what follows it (a ',' comes first): the text after S is enough. */
	if (known)
		floats = known->has_float || memmem((const char *)m->value + HEAD_LEN + known->len,
						    m->value_len - HEAD_LEN - known->len, "\"float\"", 7);
	else
		floats = memmem(m->value, m->value_len, "\"float\"", 7) != NULL;
	if (!rc && schema && floats)
		widen_floats(schema, out);
	release(root);
	return rc;
}

/*
 * One Avro message, value or key (@p p, @p n bytes), in the decoder's framing: Confluent's, or
 * Glue's (the payload inflated into @p buf when compressed).
 */
static int avro_framed(ks_decoder_t *d, const void *p, size_t n, ks_buf *buf, json_t **out, json_t **schema,
		       ks_errbuf *err)
{
	const uint8_t *body;
	size_t len;
	ks_frame f;
	int rc;

	if (!d->glue)
		return ks_avro_decode(d->avro, p, n, out, schema, err);
	*out = NULL;
	if (schema)
		*schema = NULL;
	if ((rc = ks_frame_glue(p, n, &f, err)) || (rc = ks_frame_payload(&f, d->max_inflate, buf, &body, &len, err)))
		return rc;
	return ks_avro_decode_glue(d->avro, f.version_id, body, len, out, schema, err);
}

static int decode_avro(ks_decoder_t *d, const ks_msg *m, ks_change *out, ks_errbuf *err)
{
	json_t *payload = NULL, *schema = NULL;
	int rc;

	rc = avro_framed(d, m->value, m->value_len, &d->value_buf, &payload, &schema, err);
	if (rc) {
		/* ks_errbuf_badrec copies reason and text before rewriting err. */
		if (rc == KS_ERR_BADREC)
			return bad(err, m, err->reason[0] ? err->reason : "bad_avro", "%s", err->text);
		return rc;
	}
	if (!json_is_object(payload)) {
		rc = bad(err, m, "not_object", "Avro value: expected a record, got %s", ks_json_type_name(payload));
	} else {
		rc = extract_debezium(d, m, payload, schema, out, err);
	}
	json_decref(payload);
	json_decref(schema);
	return rc;
}

/*
 * Avro keys: a framed record of the key columns; anything undecodable is no key. The partition
 * key is made from these fields, never from the framed bytes (a Glue key holds its schema
 * version id, which changes when the key schema evolves).
 */
static json_t *decode_avro_key(ks_decoder_t *d, const ks_msg *m, ks_errbuf *err, int *fatal)
{
	const unsigned char *k = m->key;
	json_t *key = NULL;
	int rc;

	*fatal = 0;
	if (!k || (d->glue ? m->key_len < KS_GLUE_HEADER_LEN || k[0] != KS_GLUE_HEADER_VERSION
			   : m->key_len < KS_CONFLUENT_HEADER_LEN || k[0] != 0))
		return NULL;
	rc = avro_framed(d, m->key, m->key_len, &d->key_buf, &key, NULL, err);
	if (rc == KS_ERR_FATAL) {
		*fatal = 1;
		return NULL;
	}
	if (rc || !json_is_object(key)) {
		json_decref(key);
		ks_errbuf_clear(err);
		return NULL;
	}
	return key;
}

int ks_decoder_decode(ks_decoder_t *d, const ks_msg *m, ks_change *out, ks_errbuf *err)
{
	json_error_t jerr;
	ks_msg unframed = *m;
	int rc = 0, fatal;

	memset(out, 0, sizeof(*out));
	out->topic = m->topic;
	out->partition = m->partition;
	out->offset = m->offset;
	out->kafka_key = m->key;
	out->kafka_key_len = m->key_len;
	out->kafka_ts = m->timestamp;
	out->kafka_ts_type = m->timestamp_type;
	out->headers = m->headers;
	if (!m->value && !d->envelope) {
		out->op = KS_OP_TOMBSTONE;
		return 0;
	}
	switch (d->format) {
	case KS_INPUT_RAW:
		out->op = KS_OP_CREATE; /* with raw.envelope a null value too: raw NULL, mirrored as such */
		out->raw = m->value;
		out->raw_len = m->value_len;
		return 0;
	case KS_INPUT_JSON:
		if ((rc = unframe_json(d, m->value, m->value_len, &d->value_buf, 1, &unframed.value, &unframed.value_len, err))) {
			rc = framing_bad(m, rc, err);
			break;
		}
		if (!(out->after = json_loadb(unframed.value, unframed.value_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr)))
			rc = not_json(&unframed, &jerr, err);
		else
			out->op = KS_OP_CREATE;
		break;
	case KS_INPUT_DEBEZIUM_JSON:
		if ((rc = unframe_json(d, m->value, m->value_len, &d->value_buf, 1, &unframed.value, &unframed.value_len, err))) {
			rc = framing_bad(m, rc, err);
			break;
		}
		if (!d->key_later)
			out->key = decode_json_key(d, m);
		rc = decode_debezium_json(d, &unframed, out, err);
		break;
	case KS_INPUT_DEBEZIUM_AVRO:
		out->key = decode_avro_key(d, m, err, &fatal);
		if (fatal)
			return KS_ERR_FATAL;
		rc = decode_avro(d, m, out, err);
		break;
	}
	trim(&d->value_buf);
	trim(&d->key_buf);
	if (rc)
		ks_change_clean(out);
	return rc;
}
