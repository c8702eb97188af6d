/*
 * Avro (Confluent wire format, or a body the AWS Glue Schema Registry framed) to the JSON a
 * Debezium JSON converter would have produced.
 * Avro C decodes the binary body with one reusable generic value per schema; logical types
 * (decimal) and Debezium's connect.* attributes come from the schema's compiled plan
 * (avro_plan.c), walked alongside the value.
 *
 * The registry's entries are shared by every lane and never change; everything built from a
 * schema here (Avro C schema, value class and value, the compiled plan, the Kafka Connect
 * form) is one decoder's, kept per schema id, so a lane needs no lock once it has
 * seen a schema.
 */
#include "decode_avro.h"

#include <avro.h>
#include <errno.h>
#include <math.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avro_plan.h"
#include "framing.h"

typedef ks_avro_node node;

/* What one decoder built from one schema. */
typedef struct schema_state {
	int glue;                     /* 1: a Glue schema version (version_id), 0: a Confluent id */
	int32_t id;                   /* Confluent: the schema id */
	uint8_t version_id[16];       /* Glue: the schema version id */
	char name[64];                /* "schema id 7", "AWS Glue schema version <uuid>": for messages */
	const char *text;             /* the schema's JSON, borrowed from the registry's entry */
	json_t *json;                 /* the same, parsed (borrowed) */
	avro_schema_t schema;
	avro_value_iface_t *iface;    /* generic value class for this schema */
	avro_value_t value;           /* one reusable value, reset between messages */
	int value_ready;
	ks_avro_plan *plan;           /* the schema compiled for decoding */
	json_t *connect_schema;       /* the Kafka Connect JSON form (built lazily) */
	char *invalid;                /* the schema is not valid Avro: why, for each message using it */
	const char *invalid_reason;   /* and the reason token: bad_schema, wrong_format */
} schema_state;

struct ks_avro_decoder {
	ks_registry_t *registry;      /* Confluent ids come from here */
	ks_glue_t *glue;              /* Glue version ids from here */
	schema_state **states;
	size_t n, cap;
};

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

/* Items of an array, each with the plan's one child type. */
static int array_to_json(const node *nd, avro_value_t *v, json_t **out, int depth)
{
	json_t *a = json_array();
	size_t n = 0, i;

	if (!a || avro_value_get_size(v, &n))
		goto fail;
	for (i = 0; i < n; i++) {
		avro_value_t item;
		json_t *cj;

		if (avro_value_get_by_index(v, i, &item, NULL) || to_json(child(nd, 0), &item, &cj, depth + 1))
			goto fail;
		json_array_append_new(a, cj);
	}
	*out = a;
	return 0;
fail:
	json_decref(a);
	return -1;
}

/* Values of a map, each with the plan's one child type, under their keys. */
static int map_to_json(const node *nd, avro_value_t *v, json_t **out, int depth)
{
	json_t *o = json_object();
	size_t n = 0, i;

	if (!o || avro_value_get_size(v, &n))
		goto fail;
	for (i = 0; i < n; i++) {
		avro_value_t item;
		const char *k;
		json_t *cj;

		if (avro_value_get_by_index(v, i, &item, &k) || to_json(child(nd, 0), &item, &cj, depth + 1))
			goto fail;
		json_object_set_new(o, k, cj);
	}
	*out = o;
	return 0;
fail:
	json_decref(o);
	return -1;
}

/* bytes and fixed: a decimal string when the plan says decimal (scale >= 0), else base64. */
static int bytes_to_json(const node *nd, avro_value_t *v, json_t **out)
{
	const void *p;
	size_t n;
	int scale = nd ? nd->scale : -1;

	if ((avro_value_get_type(v) == AVRO_BYTES ? avro_value_get_bytes(v, &p, &n) : avro_value_get_fixed(v, &p, &n)))
		return -1;
	*out = scale >= 0 ? decimal_string(p, n, scale) : base64_string(p, n);
	return *out ? 0 : -1;
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
	case AVRO_FIXED:
		return bytes_to_json(nd, v, out);
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
	case AVRO_ARRAY:
		return array_to_json(nd, v, out, depth);
	case AVRO_MAP:
		return map_to_json(nd, v, out, depth);
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


/* ---- one decoder's schemas --------------------------------------------------------------------- */

/*
 * Avro C keeps the text of its last error in one process-wide buffer (Debian's libavro 1.11
 * builds it without thread-local storage), so a lane reading it while another lane's failing
 * call writes it would get garbled text or a data race. The calls whose message is read here
 * (building a schema, once per schema id and decoder) run under this lock, and the text is
 * copied before it is released. The per-message read of a body does not take it: its messages
 * are built from what kinesink knows (schema id, size, field, byte position), never from
 * avro_strerror. Such a read failing still writes Avro C's buffer without the lock; past the
 * bounds check that takes running out of memory, and at worst garbles (within the buffer) a
 * schema error being copied at that moment.
 */
static pthread_mutex_t avro_error_mu = PTHREAD_MUTEX_INITIALIZER;

static void state_free(schema_state *st)
{
	if (!st)
		return;
	if (st->value_ready)
		avro_value_decref(&st->value);
	if (st->iface)
		avro_value_iface_decref(st->iface);
	if (st->schema)
		avro_schema_decref(st->schema);
	ks_avro_plan_free(st->plan);
	json_decref(st->connect_schema);
	free(st->invalid);
	free(st);
}

ks_avro_decoder_t *ks_avro_decoder_new(ks_registry_t *registry, ks_errbuf *err)
{
	ks_avro_decoder_t *a = calloc(1, sizeof(*a));

	if (!a) {
		ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory creating the Avro decoder");
		return NULL;
	}
	a->registry = registry;
	return a;
}

ks_avro_decoder_t *ks_avro_decoder_new_glue(ks_glue_t *glue, ks_errbuf *err)
{
	ks_avro_decoder_t *a = ks_avro_decoder_new(NULL, err);

	if (a)
		a->glue = glue;
	return a;
}

void ks_avro_decoder_destroy(ks_avro_decoder_t *a)
{
	size_t i;

	if (!a)
		return;
	for (i = 0; i < a->n; i++)
		state_free(a->states[i]);
	free(a->states);
	free(a);
}

/* Avro C's schema, value class and value for @p st; an invalid schema is noted in st->invalid. */
static int build_avro(schema_state *st, ks_errbuf *err)
{
	const char *text = st->text;
	char why[512] = "";
	int rc = 0;

	pthread_mutex_lock(&avro_error_mu);
	if (avro_schema_from_json_length(text, strlen(text), &st->schema)) {
		st->schema = NULL;
		snprintf(why, sizeof(why), "%s is not a valid Avro schema: %s", st->name, avro_strerror());
	} else if (!(st->iface = avro_generic_class_from_schema(st->schema))) {
		snprintf(why, sizeof(why), "%s: %s", st->name, avro_strerror());
	} else if (avro_generic_value_new(st->iface, &st->value)) {
		rc = ks_errbuf_set(err, KS_ERR_NOMEM, "%s: %s", st->name, avro_strerror());
	} else {
		st->value_ready = 1;
	}
	pthread_mutex_unlock(&avro_error_mu);
	if (why[0] && !(st->invalid = strdup(why)))
		rc = ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
	return rc;
}

/* Build what @p st needs from its schema (st->text, st->json set; an invalid one noted) and keep it. */
static int state_keep(ks_avro_decoder_t *a, schema_state *st, ks_errbuf *err)
{
	int rc;

	if (!st->invalid && (rc = build_avro(st, err)))
		goto fail;
	if (!st->invalid) {
		if (!(st->plan = ks_avro_plan_new(st->json))) {
			rc = ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory compiling %s", st->name);
			goto fail;
		}
	}
	if (a->n == a->cap) {
		size_t ncap = a->cap ? a->cap * 2 : 8;
		schema_state **ns = realloc(a->states, ncap * sizeof(*ns));

		if (!ns) {
			rc = ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
			goto fail;
		}
		a->states = ns;
		a->cap = ncap;
	}
	a->states[a->n++] = st;
	return 0;
fail:
	state_free(st);
	return rc;
}

/* This decoder's state for Confluent schema @p id, built on first use (the schema asked of the registry). */
static int state_get(ks_avro_decoder_t *a, int32_t id, schema_state **out, ks_errbuf *err)
{
	const ks_schema_entry *entry;
	schema_state *st;
	size_t i;
	int rc;

	for (i = 0; i < a->n; i++)
		if (!a->states[i]->glue && a->states[i]->id == id) {
			*out = a->states[i];
			return 0;
		}
	if (!a->registry)
		return ks_errbuf_set(err, KS_ERR_FATAL, "a Confluent-framed Avro message but no Schema Registry");
	if ((rc = ks_registry_get(a->registry, id, &entry, err)))
		return rc;
	if (!(st = calloc(1, sizeof(*st))))
		return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
	st->id = id;
	snprintf(st->name, sizeof(st->name), "schema id %d", (int)id);
	st->text = entry->text;
	st->json = entry->json;
	if ((rc = state_keep(a, st, err)))
		return rc;
	*out = st;
	return 0;
}

/*
 * This decoder's state for Glue schema version @p id, built on first use (GetSchemaVersion).
 * A version whose DataFormat is not Avro is kept as invalid: each message using it is a bad
 * record, and Glue is asked only once.
 */
static int state_get_glue(ks_avro_decoder_t *a, const uint8_t id[16], schema_state **out, ks_errbuf *err)
{
	const ks_glue_schema *entry;
	schema_state *st;
	size_t i;
	int rc;

	for (i = 0; i < a->n; i++)
		if (a->states[i]->glue && memcmp(a->states[i]->version_id, id, 16) == 0) {
			*out = a->states[i];
			return 0;
		}
	if ((rc = ks_glue_get(a->glue, id, &entry, err)))
		return rc;
	if (!(st = calloc(1, sizeof(*st))))
		return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
	st->glue = 1;
	memcpy(st->version_id, id, 16);
	snprintf(st->name, sizeof(st->name), "AWS Glue schema version %s", entry->id_text);
	st->text = entry->text;
	st->json = entry->json;
	if (strcmp(entry->format, "AVRO") != 0) {
		char why[256];

		snprintf(why, sizeof(why), "%s has DataFormat %s, but input.format = debezium-avro reads Avro: "
			 "set the route's input.format to match its topic", st->name, entry->format);
		st->invalid_reason = "wrong_format";
		if (!(st->invalid = strdup(why))) {
			free(st);
			return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
		}
	}
	if ((rc = state_keep(a, st, err)))
		return rc;
	*out = st;
	return 0;
}

/* ---- the wire format -------------------------------------------------------------------------- */

/* The bounds check of the body failed: say in which field and at which byte. */
static int bad_body(ks_errbuf *err, const char *name, size_t n, const ks_avro_where *w)
{
	char where[256] = "";
	size_t len = 0;
	int i;

	for (i = w->nfields - 1; i >= 0 && len < sizeof(where); i--)
		len += (size_t)snprintf(where + len, sizeof(where) - len, "%s%s", len ? "." : " in field ",
					w->fields[i] ? w->fields[i] : "?");
	return ks_errbuf_bad(err, "bad_avro", "%s: invalid or truncated Avro body (%zu bytes): a length or count runs "
			     "past the end of the message%s, at byte %zu of the body", name, n, where, w->pos);
}

/* The body @p b (@p n bytes) read with @p st's schema into @p out (and the Connect form). */
static int decode_body(schema_state *st, const unsigned char *b, size_t n, json_t **out, json_t **connect_schema,
		       ks_errbuf *err)
{
	avro_reader_t reader;
	int rc;

	if (st->invalid)
		return ks_errbuf_bad(err, st->invalid_reason ? st->invalid_reason : "bad_schema", "%s", st->invalid);
	{
		ks_avro_where where;

		if (ks_avro_plan_check(st->plan, b, n, &where))
			return bad_body(err, st->name, n, &where);
	}
	avro_value_reset(&st->value);
	if (!(reader = avro_reader_memory((const char *)b, (int64_t)n)))
		return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
	rc = avro_value_read(reader, &st->value);
	avro_reader_free(reader);
	if (rc == ENOMEM)
		return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory reading an Avro body of %zu bytes (%s)", n, st->name);
	if (rc)
		return ks_errbuf_bad(err, "bad_avro", "%s: invalid or truncated Avro body (%zu bytes): Avro C cannot read "
				     "it (error %d) although every length and count in it fits", st->name, n, rc);
	if (to_json(ks_avro_plan_root(st->plan), &st->value, out, 0)) {
		json_decref(*out);
		*out = NULL;
		return ks_errbuf_bad(err, "bad_avro", "%s: the Avro value cannot be converted to JSON (a string that "
				     "is not UTF-8, or nesting deeper than 64)", st->name);
	}
	if (connect_schema) {
		if (!st->connect_schema)
			st->connect_schema = ks_avro_plan_connect(st->plan);
		*connect_schema = json_incref(st->connect_schema);
	}
	return 0;
}

int ks_avro_decode(ks_avro_decoder_t *a, const void *p, size_t n, json_t **out, json_t **connect_schema,
		   ks_errbuf *err)
{
	schema_state *st = NULL;
	ks_frame f;
	int rc;

	*out = NULL;
	if (connect_schema)
		*connect_schema = NULL;
	if ((rc = ks_frame_confluent(p, n, &f, err)))
		return rc;
	if ((rc = state_get(a, f.schema_id, &st, err)))
		return rc;
	return decode_body(st, f.payload, f.payload_len, out, connect_schema, err);
}

int ks_avro_decode_glue(ks_avro_decoder_t *a, const uint8_t version_id[16], const void *body, size_t n, json_t **out,
			json_t **connect_schema, ks_errbuf *err)
{
	schema_state *st = NULL;
	int rc;

	*out = NULL;
	if (connect_schema)
		*connect_schema = NULL;
	if (!a->glue)
		return ks_errbuf_set(err, KS_ERR_FATAL, "an AWS Glue-framed Avro message but no Glue client");
	if ((rc = state_get_glue(a, version_id, &st, err)))
		return rc;
	return decode_body(st, body, n, out, connect_schema, err);
}
