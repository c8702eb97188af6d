/*
 * Decoding, data-driven: each folder of tests/data/decode holds `value` (absent: a tombstone),
 * optional `key` and `config` (properties, e.g. input.format=json), and `expected`: the change
 * as canonical JSON ({"op","before","after","source","ts_ms","key","schema","raw"}) or the
 * error line ("error: <reason>: <text>"). A case is added by adding a folder.
 */
#include "conf.h"
#include "decode.h"
#include "testutil.h"
#include "transform.h"

static void put(json_t *o, const char *k, json_t *v)
{
	json_object_set(o, k, v ? v : json_null());
}

static void run_case(const char *dir, const char *name)
{
	size_t vlen = 0, klen = 0;
	char *value = tu_read_in(dir, "value", &vlen), *key = tu_read_in(dir, "key", &klen);
	char *config = tu_read_in(dir, "config", NULL), *expected;
	ks_msg msg = { "dbserver1.inventory.customers", 1, 77, key, klen, value, vlen, 0, KS_TS_NONE, NULL };
	ks_decoder_t *d;
	ks_change ch;
	ks_errbuf err;
	ks_conf c;
	ks_buf out;
	int rc;

	ks_conf_init(&c);
	CU_ASSERT_EQUAL(tu_conf_lines(&c, config, "config", NULL), 0);
	if (!value)
		msg.value = NULL;
	ks_errbuf_clear(&err);
	d = ks_decoder_new(&c, NULL, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	ks_buf_init(&out, 0);
	rc = ks_decoder_decode(d, &msg, &ch, &err);
	if (rc) {
		CU_ASSERT_EQUAL(rc, KS_ERR_BADREC);
		CU_ASSERT_EQUAL(err.stage, KS_STAGE_DECODE);
		ks_buf_printf(&out, "error: %s: %s\n", err.reason, err.text);
	} else {
		json_t *o = json_object();
		char op[2] = { ks_op_char(ch.op), 0 };

		json_object_set_new(o, "op", json_string(ch.op == KS_OP_TOMBSTONE ? "tombstone" : op));
		put(o, "before", ch.before);
		put(o, "after", ch.after);
		put(o, "source", ch.source);
		put(o, "key", ch.key);
		json_object_set_new(o, "schema", json_boolean(ch.schema != NULL));
		json_object_set_new(o, "ts_ms", ch.has_ts_ms ? json_integer(ch.ts_ms) : json_null());
		if (ch.raw)
			json_object_set_new(o, "raw", json_stringn(ch.raw, ch.raw_len));
		ks_json_write(&out, o);
		ks_buf_puts(&out, "\n");
		json_decref(o);
		CU_ASSERT_EQUAL(ch.offset, 77);
		ks_change_clean(&ch);
	}
	expected = tu_read_in(dir, "expected", NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(expected);
	TU_ASSERT_STR(name, out.data, expected);
	free(expected);
	ks_buf_clean(&out);
	ks_decoder_destroy(d);
	ks_conf_clean(&c);
	free(value);
	free(key);
	free(config);
}

static void test_cases(void)
{
	CU_ASSERT(tu_each_case("decode", run_case) >= 20);
}

/* ---- the schema part remembered by its bytes ------------------------------------------------ */

#define S1 "{\"type\":\"struct\",\"fields\":[{\"type\":\"struct\",\"fields\":[{\"type\":\"int32\",\"field\":\"id\"}," \
	   "{\"type\":\"string\",\"optional\":true,\"field\":\"name\"}],\"field\":\"before\"},{\"type\":\"struct\"," \
	   "\"fields\":[{\"type\":\"int32\",\"field\":\"id\"},{\"type\":\"string\",\"optional\":true,\"field\":\"name\"}]," \
	   "\"field\":\"after\"}],\"name\":\"t.Envelope\"}"
/* S1 but for its last letter: the same length, other bytes. */
#define S1X "{\"type\":\"struct\",\"fields\":[{\"type\":\"struct\",\"fields\":[{\"type\":\"int32\",\"field\":\"id\"}," \
	    "{\"type\":\"string\",\"optional\":true,\"field\":\"name\"}],\"field\":\"before\"},{\"type\":\"struct\"," \
	    "\"fields\":[{\"type\":\"int32\",\"field\":\"id\"},{\"type\":\"string\",\"optional\":true,\"field\":\"name\"}]," \
	    "\"field\":\"after\"}],\"name\":\"t.Envelopf\"}"
/* A float32 column, and an escaped name. */
#define S2 "{\"type\":\"struct\",\"fields\":[{\"type\":\"struct\",\"fields\":[{\"type\":\"int32\",\"field\":\"id\"}," \
	   "{\"type\":\"float\",\"field\":\"f\"}],\"field\":\"after\"}],\"name\":\"t.\\u00e9\\\"Envelope\"}"
#define KS "{\"type\":\"struct\",\"fields\":[{\"type\":\"int32\",\"field\":\"id\"}],\"name\":\"t.Key\"}"
#define ENV(schema, rest) "{\"schema\":" schema rest
#define KEY1 ENV(KS, ",\"payload\":{\"id\":1}}")

static const char *const sequence[][2] = {
	{ KEY1, ENV(S1, ",\"payload\":{\"op\":\"c\",\"before\":null,\"after\":{\"id\":1,\"name\":\"a\"},\"ts_ms\":1}}") },
	{ KEY1, ENV(S1, ",\"payload\":{\"op\":\"u\",\"before\":{\"id\":1,\"name\":\"a\"},"
			"\"after\":{\"id\":1,\"name\":\"b\\\"q\\u00e9\\u0000z\\n\"},\"ts_ms\":2}}") },
	{ KEY1, ENV(S1, ",\"payload\":{\"op\":\"c\",\"after\":{\"id\":1}") },          /* cut short */
	{ KEY1, ENV(S1, ",\"payload\":{\"op\":\"c\",\"after\":{\"id\":1}}}x") },        /* trailing garbage */
	{ KEY1, ENV(S1, ",\"payload\":{\"op\":\"c\",\"after\":{\"id\":1,\"name\":\"\xff\"}}}") }, /* not UTF-8 */
	{ KEY1, ENV(S1, ",\"payload\":{\"op\":\"c\",\"after\":{\"id\":1e400}}}") },     /* out of range */
	{ KEY1, ENV(S1, ",\"payload\":{\"op\":\"c\",\"after\":{\"id\":1}}}}") },         /* one brace too many */
	{ KEY1, ENV(S1, ",\"payload\":null}") },                                         /* the converter's tombstone */
	{ KEY1, ENV(S1, ",\"payload\":5}") },
	{ KEY1, ENV(S1, ",\"payload\":{\"after\":{\"id\":9}},\"op\":\"c\"}") },            /* "op" at the top: a bare payload */
	{ KEY1, ENV(S1, ",\"payload\":{\"op\":\"c\",\"after\":{\"id\":2}},\"schema\":null}") }, /* the later schema wins */
	{ KEY1, ENV(S1, ",\"payload\":{\"op\":\"c\",\"after\":{\"id\":2}},\"payload\":null}") }, /* the later payload wins */
	{ KEY1, ENV(S1, " ,\"payload\":{\"op\":\"c\",\"after\":{\"id\":3}}}") },          /* a blank: parsed whole */
	{ KEY1, ENV(S1, ",\"payload\":{\"op\":\"c\",\"after\":{\"id\":3}}} \n") },        /* trailing blanks are fine */
	{ KEY1, ENV(S2, ",\"payload\":{\"op\":\"c\",\"after\":{\"id\":3,\"f\":0.1}}}") },   /* another schema: floats */
	{ KEY1, ENV(S2, ",\"payload\":{\"op\":\"c\",\"after\":{\"id\":4,\"f\":0.1}}}") },
	{ KEY1, ENV(S1X, ",\"payload\":{\"op\":\"c\",\"after\":{\"id\":5,\"name\":\"x\"}}}") },
	{ KEY1, ENV(S1, ",\"payload\":{\"op\":\"c\",\"after\":{\"id\":6,\"name\":\"float\"}}}") },
	{ KEY1, ENV(S1X, ",\"payload\":{\"op\":\"c\",\"after\":{\"id\":7,\"name\":\"x\"}}}") },
	{ KEY1, ENV("null", ",\"payload\":{\"op\":\"c\",\"after\":{\"id\":8}}}") },
	{ KEY1, ENV("null", ",\"payload\":{\"op\":\"c\",\"after\":{\"id\":9}}}") },
	{ ENV(KS, ",\"payload\":{\"id\":2}}"), ENV(S1, ",\"payload\":{\"op\":\"d\",\"before\":null,\"ts_ms\":3}}") },
	{ ENV(KS, ",\"payload\":5}"), ENV(S1, ",\"payload\":{\"op\":\"d\",\"before\":null,\"ts_ms\":3}}") },
	{ ENV(KS, ",\"payload\":{\"id\":"), ENV(S1, ",\"payload\":{\"op\":\"d\",\"ts_ms\":3}}") },
	{ ENV(KS, ",\"payload\":{\"id\":3},\"schema\":null}"), ENV(S1, ",\"payload\":{\"op\":\"d\",\"ts_ms\":3}}") },
	{ NULL, ENV(S1, ",\"payload\":{\"op\":\"d\",\"before\":{\"id\":4},\"ts_ms\":4}}") },
	{ "{\"id\":5}", ENV(S1, ",\"payload\":{\"op\":\"d\",\"ts_ms\":5}}") },
	{ KEY1, "{\"schema\":" },
	{ KEY1, ENV(S1, ",\"payload\":{\"op\":\"r\",\"after\":{\"id\":10,\"name\":\"last\"}}}") },
};

/* The change (its schema written out) and its records (type debezium), or the error, as one line. */
static void describe(ks_decoder_t *d, ks_transform_t *t, const char *key, const char *value, ks_buf *out)
{
	ks_msg msg = { "t", 0, 5, key, key ? strlen(key) : 0, value, strlen(value), 0, KS_TS_NONE, NULL };
	ks_record *recs[2];
	ks_change ch;
	ks_errbuf err;
	int rc, i;

	ks_errbuf_clear(&err);
	ks_buf_reset(out);
	rc = ks_decoder_decode(d, &msg, &ch, &err);
	if (rc) {
		ks_buf_printf(out, "error %d: %s: %s", rc, err.reason, err.text);
		return;
	}
	ks_buf_printf(out, "%c ", ks_op_char(ch.op));
	ks_json_write(out, ch.before ? ch.before : json_null());
	ks_json_write(out, ch.after ? ch.after : json_null());
	ks_json_write(out, ch.source ? ch.source : json_null());
	ks_json_write(out, ch.key ? ch.key : json_null());
	ks_json_write(out, ch.schema ? ch.schema : json_null());
	ks_buf_printf(out, " %d %lld", ch.has_ts_ms, (long long)ch.ts_ms);
	rc = ks_transform_apply(t, &ch, recs, &err);
	for (i = 0; i < rc; i++) {
		ks_buf_printf(out, " | %s ", recs[i]->pkey);
		ks_buf_append(out, recs[i]->data, recs[i]->data_len);
		ks_record_destroy(recs[i]);
	}
	if (rc < 0)
		ks_buf_printf(out, " | error %d: %s: %s", rc, err.reason, err.text);
	ks_buf_append(out, "", 1);
	out->len--;
	ks_change_clean(&ch);
}

/*
 * One decoder for the whole sequence (schemas remembered) against a new decoder for each
 * message (nothing remembered: the whole value parsed): the same change or error every time.
 */
static void schema_sequence(const char *config)
{
	char *text = strdup(config);
	ks_decoder_t *warm, *cold;
	ks_transform_t *warm_t, *cold_t;
	ks_buf a, b;
	ks_errbuf err;
	ks_conf c;
	size_t i, n = sizeof(sequence) / sizeof(sequence[0]);
	int round;

	ks_conf_init(&c);
	CU_ASSERT_EQUAL_FATAL(tu_conf_lines(&c, text, "config", NULL), 0);
	warm = ks_decoder_new(&c, NULL, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(warm);
	warm_t = ks_transform_new(&c, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(warm_t);
	ks_buf_init(&a, 0);
	ks_buf_init(&b, 0);
	for (round = 0; round < 2; round++) {
		for (i = 0; i < n; i++) {
			cold = ks_decoder_new(&c, NULL, &err);
			cold_t = ks_transform_new(&c, &err);
			CU_ASSERT_PTR_NOT_NULL_FATAL(cold);
			CU_ASSERT_PTR_NOT_NULL_FATAL(cold_t);
			describe(warm, warm_t, sequence[i][0], sequence[i][1], &a);
			describe(cold, cold_t, sequence[i][0], sequence[i][1], &b);
			CU_ASSERT_EQUAL(ks_decoder_schemas_reused(cold), 0);
			if (strcmp(a.data, b.data)) {
				fprintf(stderr, "\nmessage %zu (%s):\n remembered: %s\n parsed:     %s\n", i, config,
					a.data, b.data);
				CU_FAIL("a remembered schema changed the outcome");
			}
			ks_transform_destroy(cold_t);
			ks_decoder_destroy(cold);
		}
	}
	/* Most messages of the second round, and many of the first, took their schema from memory. */
	CU_ASSERT(ks_decoder_schemas_reused(warm) >= n + n / 2);
	ks_buf_clean(&a);
	ks_buf_clean(&b);
	ks_transform_destroy(warm_t);
	ks_decoder_destroy(warm);
	ks_conf_clean(&c);
	free(text);
}

static void test_schema_remembered(void)
{
	schema_sequence("stream=s\naws.region=us-east-1\ntopic=t\ninput.format=debezium-json\ntype=debezium\n");
	schema_sequence("stream=s\naws.region=us-east-1\ntopic=t\ninput.format=debezium-json\ntype=debezium\n"
			"primary_key=id\n");
}

int main(void)
{
	static const tu_test tests[] = {
		{ "data-driven cases (tests/data/decode)", test_cases },
		{ "schema part remembered by its bytes: the same changes and records as parsing it", test_schema_remembered },
		{ NULL, NULL },
	};

	return tu_main("decode", tests);
}
