/*
 * Transform golden tests, data-driven: each folder of tests/data/transform holds `config`
 * (properties: type, primary_key, force_append_only, debezium.tombstones, input.format),
 * `value` (the Kafka message value; absent: a tombstone), `key` (optional), and `expected`:
 * each output record as a `key ...` line and a `data ...` line (exact bytes, empty data as
 * `data` alone), or `error: ...` for a bad record. The input goes through the real decoder.
 */
#include "conf.h"
#include "decode.h"
#include "testutil.h"
#include "transform.h"

static void run_case(const char *dir, const char *name)
{
	char *config = tu_read_in(dir, "config", NULL), *expected, *out = NULL;
	size_t vlen = 0, klen = 0, outlen = 0;
	char *value = tu_read_in(dir, "value", &vlen), *key = tu_read_in(dir, "key", &klen);
	ks_msg msg = { "shop.public.items", 2, 1043, key, klen, value, vlen };
	ks_conf_errors errs = { 0 };
	ks_record *recs[2] = { 0 };
	ks_transform_t *t;
	ks_decoder_t *d;
	ks_change ch;
	ks_errbuf err;
	FILE *mem;
	ks_conf c;
	int n, i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(config);
	ks_conf_init(&c);
	CU_ASSERT_EQUAL(tu_conf_lines(&c, config, "config", &errs), 0);
	ks_conf_set(&c, "stream", "s", "t", 0, &errs);
	ks_conf_set(&c, "aws.region", "r", "t", 0, &errs);
	ks_conf_set(&c, "topic", "t", "t", 0, &errs);
	if (!c.force_append_only && c.type == KS_TYPE_APPEND_ONLY && ks_conf_input_is_cdc(&c)) {
		/* The "without force" cell: validation would refuse it; the transform still must not write. */
		c.force_append_only = 1;
		ks_conf_finalize(&c, &errs);
		c.force_append_only = 0;
	} else {
		CU_ASSERT_EQUAL(ks_conf_finalize(&c, &errs), 0);
	}
	if (!value)
		msg.value = NULL;
	if (klen == 0)
		msg.key = NULL;
	ks_errbuf_clear(&err);
	d = ks_decoder_new(&c, NULL, &err);
	t = ks_transform_new(&c, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);

	mem = open_memstream(&out, &outlen);
	if (ks_decoder_decode(d, &msg, &ch, &err)) {
		fprintf(mem, "error: %s\n", err.text);
	} else {
		n = ks_transform_apply(t, &ch, recs, &err);
		if (n < 0)
			fprintf(mem, "error: %s\n", err.text);
		for (i = 0; i < n; i++) {
			fprintf(mem, "key %s\ndata%s", recs[i]->pkey, recs[i]->data_len ? " " : "");
			fwrite(recs[i]->data, 1, recs[i]->data_len, mem);
			fputc('\n', mem);
			CU_ASSERT_EQUAL(recs[i]->key_hash, ks_key_hash(recs[i]->pkey, recs[i]->pkey_len));
			ks_record_destroy(recs[i]);
		}
		ks_change_clean(&ch);
	}
	fclose(mem);
	expected = tu_read_in(dir, "expected", NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(expected);
	TU_ASSERT_STR(name, out, expected);
	free(expected);
	free(out);
	free(config);
	free(value);
	free(key);
	ks_transform_destroy(t);
	ks_decoder_destroy(d);
	ks_conf_errors_clean(&errs);
	ks_conf_clean(&c);
}

static void test_cases(void)
{
	CU_ASSERT(tu_each_case("transform", run_case) >= 30);
}

static void test_json_writer_is_deterministic(void)
{
	json_t *a = json_loads("{\"b\":1,\"a\":{\"d\":[true,false,null],\"c\":\"x\"}}", 0, NULL);
	json_t *b = json_loads("{\"a\":{\"c\":\"x\",\"d\":[true,false,null]},\"b\":1}", 0, NULL);
	ks_buf x, y;

	ks_buf_init(&x, 0);
	ks_buf_init(&y, 0);
	CU_ASSERT_EQUAL(ks_json_write(&x, a), 0);
	CU_ASSERT_EQUAL(ks_json_write(&y, b), 0);
	CU_ASSERT_STRING_EQUAL(x.data, "{\"a\":{\"c\":\"x\",\"d\":[true,false,null]},\"b\":1}");
	CU_ASSERT_STRING_EQUAL(x.data, y.data);
	ks_buf_clean(&x);
	ks_buf_clean(&y);
	json_decref(a);
	json_decref(b);
}

int main(void)
{
	static const tu_test tests[] = {
		{ "golden cases (tests/data/transform)", test_cases },
		{ "JSON writer is deterministic", test_json_writer_is_deterministic },
		{ NULL, NULL },
	};

	return tu_main("transform", tests);
}
