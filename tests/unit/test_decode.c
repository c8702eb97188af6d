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

int main(void)
{
	static const tu_test tests[] = {
		{ "data-driven cases (tests/data/decode)", test_cases },
		{ NULL, NULL },
	};

	return tu_main("decode", tests);
}
