/*
 * Transform golden tests, data-driven: each folder of tests/data/transform holds `config`
 * (properties: type, primary_key, force_append_only, debezium.tombstones, input.format),
 * `value` (the Kafka message value; absent: a tombstone), `key` (optional), and `expected`:
 * each output record as a `key ...` line and a `data ...` line (exact bytes, empty data as
 * `data` alone), or `error: ...` for a bad record. The input goes through the real decoder.
 * For raw.envelope: `timestamp` ("create MS" or "log-append MS") and `headers`, one header a
 * line in order: its name, then a space and its value in hex (none: a null value).
 */
#include "conf.h"
#include "decode.h"
#include "testutil.h"
#include "transform.h"

#include <librdkafka/rdkafka.h>

/* The case's `headers` file as librdkafka headers (NULL: no file); `timestamp` into @p msg. */
static rd_kafka_headers_t *read_meta(const char *dir, ks_msg *msg)
{
	char *ts = tu_read_in(dir, "timestamp", NULL), *text = tu_read_in(dir, "headers", NULL), *line, *save;
	rd_kafka_headers_t *h = NULL;
	long long ms;
	char type[16];

	if (ts && sscanf(ts, "%15s %lld", type, &ms) == 2) {
		msg->timestamp = ms;
		msg->timestamp_type = !strcmp(type, "create") ? KS_TS_CREATE : KS_TS_LOG_APPEND;
	}
	free(ts);
	if (!text)
		return NULL;
	h = rd_kafka_headers_new(4);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *sp = strchr(line, ' '), val[256];
		size_t n = 0;
		unsigned byte;

		if (sp)
			*sp++ = '\0';
		while (sp && n < sizeof(val) && sscanf(sp + 2 * n, "%2x", &byte) == 1)
			val[n++] = (char)byte;
		rd_kafka_header_add(h, line, -1, sp ? val : NULL, (ssize_t)n);
	}
	free(text);
	msg->headers = h;
	return h;
}

static void run_case(const char *dir, const char *name)
{
	char *config = tu_read_in(dir, "config", NULL), *expected, *out = NULL;
	size_t vlen = 0, klen = 0, outlen = 0;
	char *value = tu_read_in(dir, "value", &vlen), *key = tu_read_in(dir, "key", &klen);
	ks_msg msg = { "shop.public.items", 2, 1043, key, klen, value, vlen, 0, KS_TS_NONE, NULL };
	ks_conf_errors errs = { 0 };
	ks_record *recs[2] = { 0 };
	rd_kafka_headers_t *hdrs;
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
	hdrs = read_meta(dir, &msg);
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
	if (hdrs)
		rd_kafka_headers_destroy(hdrs);
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

/*
 * Reals against RisingWave's encoder (serde_json, which writes floats with the ryu crate): the
 * expectations are ryu's own test values and Python's repr digits (the shortest round trip, an
 * independent implementation) laid out by ryu's format64 rules.
 */
static void test_reals_as_ryu_writes_them(void)
{
	static const struct {
		double v;
		const char *want;
	} cases[] = {
		{ 0.0, "0.0" }, { -0.0, "-0.0" }, { 1.0, "1.0" }, { -1.0, "-1.0" }, { 0.1, "0.1" },
		{ 0.3, "0.3" }, { 2.5, "2.5" }, { 100.0, "100.0" }, { 123.456, "123.456" },
		{ 1.0 / 3, "0.3333333333333333" }, { 2.0 / 3, "0.6666666666666666" },
		{ 2.718281828459045, "2.718281828459045" }, { 1.2345678901234567, "1.2345678901234567" },
		{ 1.234567895, "1.234567895" }, { 4.294967296, "4.294967296" },
		/* the fixed/exponent switch above: up to 16 integer digits are written out */
		{ 1e15, "1000000000000000.0" }, { 1.234e15, "1234000000000000.0" },
		{ 9999999999999998.0, "9999999999999998.0" }, { 9.0608011534336e15, "9060801153433600.0" },
		{ 9007199254740992.0, "9007199254740992.0" }, { 1e16, "1e16" }, { 1.5e16, "1.5e16" },
		{ 1.234e16, "1.234e16" }, { -2.109808898695963e16, "-2.109808898695963e16" },
		{ 18014398509481984.0, "1.8014398509481984e16" }, { 3.6028797018963964e16, "3.6028797018963964e16" },
		{ 1e17, "1e17" }, { 1e20, "1e20" }, { 1e21, "1e21" }, { 1e22, "1e22" }, { 1e23, "1e23" },
		{ 4.708356024711512e18, "4.708356024711512e18" }, { 9.409340012568248e18, "9.409340012568248e18" },
		{ 1e100, "1e100" }, { 1.1e128, "1.1e128" }, { 5.764607523034235e39, "5.764607523034235e39" },
		{ 1.152921504606847e40, "1.152921504606847e40" }, { 2.305843009213694e40, "2.305843009213694e40" },
		/* and below: 0.0000x is written out, 0.00000x is not */
		{ 0.01, "0.01" }, { 0.001, "0.001" }, { 1e-4, "0.0001" }, { 1e-5, "0.00001" },
		{ 1.5e-5, "0.000015" }, { 1.234e-5, "0.00001234" }, { 9.9999e-6, "9.9999e-6" }, { 1e-6, "1e-6" },
		{ 1.234e-6, "1.234e-6" }, { 1e-7, "1e-7" }, { 1.5e-7, "1.5e-7" }, { -1e-5, "-0.00001" },
		{ 2.9802322387695312e-8, "2.9802322387695312e-8" }, { 1.1e-64, "1.1e-64" },
		{ 3.196104012172126e-27, "3.196104012172126e-27" }, { 2.220446049250313e-16, "2.220446049250313e-16" },
		/* extremes and subnormals */
		{ 1.7976931348623157e308, "1.7976931348623157e308" }, { -1.7976931348623157e308, "-1.7976931348623157e308" },
		{ 2.2250738585072014e-308, "2.2250738585072014e-308" }, { 2.225073858507201e-308, "2.225073858507201e-308" },
		{ 4.9406564584124654e-324, "5e-324" }, { -4.9406564584124654e-324, "-5e-324" }, { 1e-323, "1e-323" },
		{ 4.940656e-318, "4.940656e-318" }, { 1.18575755e-316, "1.18575755e-316" },
		{ 2.989102097996e-312, "2.989102097996e-312" }, { 1.7800590868057611e-307, "1.7800590868057611e-307" },
		{ 2.8480945388892175e-306, "2.8480945388892175e-306" }, { 2.446494580089078e-296, "2.446494580089078e-296" },
		{ 4.8929891601781557e-296, "4.8929891601781557e-296" }, { 2.900835519859558e-216, "2.900835519859558e-216" },
		/* powers of two whose nearest 16-digit decimal misses: the next one up is the shortest */
		{ 7.120236347223045e-307, "7.120236347223045e-307" }, { 5.858190679279809e-244, "5.858190679279809e-244" },
		/* a float32 column reaches serde_json widened to f64 */
		{ (double)0.1f, "0.10000000149011612" }, { (double)16777216.0f, "16777216.0" },
	};
	double sum = 0.1;
	ks_buf b;
	size_t i;

	ks_buf_init(&b, 0);
	sum += 0.2;
	for (i = 0; i <= sizeof(cases) / sizeof(cases[0]); i++) {
		double v = i < sizeof(cases) / sizeof(cases[0]) ? cases[i].v : sum;
		const char *want = i < sizeof(cases) / sizeof(cases[0]) ? cases[i].want : "0.30000000000000004";
		json_t *j = json_real(v);

		ks_buf_reset(&b);
		CU_ASSERT_EQUAL_FATAL(ks_json_write(&b, j), 0);
		CU_ASSERT_EQUAL_FATAL(ks_buf_append(&b, "", 1), 0);
		if (strcmp(b.data, want) != 0)
			fprintf(stderr, "real %.17g: got %s, want %s\n", v, b.data, want);
		CU_ASSERT_STRING_EQUAL(b.data, want);
		CU_ASSERT_EQUAL(strtod(b.data, NULL), v);
		json_decref(j);
	}
	ks_buf_clean(&b);
}

/* tests/data/transform/reals-table.txt (tests/fixtures/make_reals_table.py): bits, then the text. */
static void test_reals_table(void)
{
	char dir[4096], *table, *line, *save = NULL;
	int n = 0, bad = 0;
	ks_buf b;

	tu_data_dir("transform", dir, sizeof(dir));
	table = tu_read_in(dir, "reals-table.txt", NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(table);
	ks_buf_init(&b, 0);
	for (line = strtok_r(table, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *want = strchr(line, ' ');
		uint64_t bits = strtoull(line, NULL, 16);
		json_t *j;
		double v;

		CU_ASSERT_PTR_NOT_NULL_FATAL(want);
		want++;
		memcpy(&v, &bits, sizeof(v));
		j = json_real(v);
		ks_buf_reset(&b);
		CU_ASSERT_EQUAL_FATAL(ks_json_write(&b, j), 0);
		CU_ASSERT_EQUAL_FATAL(ks_buf_append(&b, "", 1), 0);
		if (strcmp(b.data, want) != 0 && bad++ < 10)
			fprintf(stderr, "real %016llx: got %s, want %s\n", (unsigned long long)bits, b.data, want);
		json_decref(j);
		n++;
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT(n > 4000);
	ks_buf_clean(&b);
	free(table);
}

/* A row whose data is over what any stream takes is a bad record (too_large), not a stop. */
static void test_oversized_row_is_a_bad_record(void)
{
	size_t n = KS_MAX_DATA_BYTES + 1;
	char *big = malloc(n + 1);
	ks_conf_errors errs = { 0 };
	ks_record *recs[2] = { 0 };
	ks_transform_t *t;
	ks_change ch = { 0 };
	ks_errbuf err;
	ks_conf c;

	CU_ASSERT_PTR_NOT_NULL_FATAL(big);
	memset(big, 'x', n);
	big[n] = '\0';
	ks_conf_init(&c);
	ks_conf_set(&c, "type", "upsert", "t", 0, &errs);
	ks_conf_set(&c, "primary_key", "id", "t", 0, &errs);
	ks_conf_set(&c, "stream", "s", "t", 0, &errs);
	ks_conf_set(&c, "aws.region", "r", "t", 0, &errs);
	ks_conf_set(&c, "topic", "t", "t", 0, &errs);
	CU_ASSERT_EQUAL_FATAL(ks_conf_finalize(&c, &errs), 0);
	t = ks_transform_new(&c, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	ch.op = KS_OP_CREATE;
	ch.topic = "shop.public.items";
	ch.partition = 2;
	ch.offset = 1043;
	ch.after = json_pack("{s:i,s:s}", "id", 1, "blob", big);
	CU_ASSERT_EQUAL(ks_transform_apply(t, &ch, recs, &err), KS_ERR_BADREC);
	CU_ASSERT_STRING_EQUAL(err.reason, "too_large");
	CU_ASSERT_EQUAL(err.stage, KS_STAGE_TRANSFORM);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "shop.public.items [2] @1043: "));
	CU_ASSERT_PTR_NULL(recs[0]);
	ks_change_clean(&ch);
	ks_transform_destroy(t);
	ks_conf_errors_clean(&errs);
	ks_conf_clean(&c);
	free(big);
}

/* raw.envelope: the envelope, not the value, must fit; base64 makes 8 MiB of bytes over 10 MiB. */
static void test_envelope_counts_toward_the_limit(void)
{
	size_t n = 8u << 20;
	unsigned char *big = malloc(n);
	int envelope;

	CU_ASSERT_PTR_NOT_NULL_FATAL(big);
	memset(big, 0xff, n);
	for (envelope = 0; envelope < 2; envelope++) {
		ks_conf_errors errs = { 0 };
		ks_record *recs[2] = { 0 };
		ks_change ch = { 0 };
		ks_transform_t *t;
		ks_errbuf err;
		ks_conf c;

		ks_conf_init(&c);
		ks_conf_set(&c, "type", "append-only", "t", 0, &errs);
		ks_conf_set(&c, "input.format", "raw", "t", 0, &errs);
		ks_conf_set(&c, "raw.envelope", envelope ? "kafka" : "none", "t", 0, &errs);
		ks_conf_set(&c, "stream", "s", "t", 0, &errs);
		ks_conf_set(&c, "aws.region", "r", "t", 0, &errs);
		ks_conf_set(&c, "topic", "t", "t", 0, &errs);
		CU_ASSERT_EQUAL_FATAL(ks_conf_finalize(&c, &errs), 0);
		t = ks_transform_new(&c, &err);
		CU_ASSERT_PTR_NOT_NULL_FATAL(t);
		ch.op = KS_OP_CREATE;
		ch.topic = "events.raw";
		ch.partition = 1;
		ch.offset = 7;
		ch.kafka_key = "k";
		ch.kafka_key_len = 1;
		ch.raw = big;
		ch.raw_len = n;
		if (envelope) {
			CU_ASSERT_EQUAL(ks_transform_apply(t, &ch, recs, &err), KS_ERR_BADREC);
			CU_ASSERT_STRING_EQUAL(err.reason, "too_large");
			CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "events.raw [1] @7: "));
			CU_ASSERT_PTR_NULL(recs[0]);
		} else {
			CU_ASSERT_EQUAL_FATAL(ks_transform_apply(t, &ch, recs, &err), 1);
			CU_ASSERT_EQUAL(recs[0]->data_len, n);
			ks_record_destroy(recs[0]);
		}
		ks_transform_destroy(t);
		ks_conf_errors_clean(&errs);
		ks_conf_clean(&c);
	}
	free(big);
}

int main(void)
{
	static const tu_test tests[] = {
		{ "golden cases (tests/data/transform)", test_cases },
		{ "JSON writer is deterministic", test_json_writer_is_deterministic },
		{ "reals as RisingWave (serde_json, ryu) writes them", test_reals_as_ryu_writes_them },
		{ "reals table (Python's shortest digits, ryu's layout)", test_reals_table },
		{ "a row over the largest record is a bad record", test_oversized_row_is_a_bad_record },
		{ "raw.envelope: the envelope counts toward the record limit", test_envelope_counts_toward_the_limit },
		{ NULL, NULL },
	};

	return tu_main("transform", tests);
}
