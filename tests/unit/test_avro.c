/*
 * Debezium Avro, data-driven: each folder of tests/data/avro holds value.bin and key.bin in the
 * Confluent wire format (made by tests/fixtures/make_avro_fixtures.py with python3-avro) and
 * `expected`: the change as canonical JSON. Schemas come from tests/data/avro/schemas/<id>.json,
 * put into the registry cache; the registry's HTTP side is tested against a stand-in server.
 */
#include "conf.h"
#include "decode.h"
#include "registry.h"
#include "testutil.h"
#include "transform.h"

static ks_conf conf;

static ks_decoder_t *decoder(const char *registry_url)
{
	ks_errbuf err;
	ks_decoder_t *d;

	ks_conf_init(&conf);
	ks_conf_set(&conf, "input.format", "debezium-avro", "t", 0, NULL);
	ks_conf_set(&conf, "schema.registry.url", registry_url, "t", 0, NULL);
	ks_conf_set(&conf, "schema.registry.timeout.ms", "300", "t", 0, NULL);
	d = ks_decoder_new(&conf, NULL, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	return d;
}

/* The registry behind a decoder, to pre-load schemas (no network needed). */
static void load_schemas(ks_decoder_t *d)
{
	char dir[4096], *text;
	ks_errbuf err;
	int id;

	tu_data_dir("avro/schemas", dir, sizeof(dir));
	for (id = 1; id < 32; id++) {
		char name[32];

		snprintf(name, sizeof(name), "%d.json", id);
		if ((text = tu_read_in(dir, name, NULL))) {
			CU_ASSERT_EQUAL(ks_registry_put(ks_decoder_registry(d), id, text, &err), 0);
			free(text);
		}
	}
}

static void run_case(const char *dir, const char *name)
{
	size_t vlen = 0, klen = 0;
	char *value, *key, *expected;
	ks_decoder_t *d;
	ks_change ch;
	ks_errbuf err;
	ks_msg msg;
	ks_buf out;
	json_t *o;

	if (!strcmp(name, "schemas"))
		return;
	value = tu_read_in(dir, "value.bin", &vlen);
	key = tu_read_in(dir, "key.bin", &klen);
	msg = (ks_msg){ "shop.public.orders", 0, 5, key, klen, value, vlen, 0, KS_TS_NONE, NULL };
	d = decoder("http://127.0.0.1:9");
	load_schemas(d);
	ks_buf_init(&out, 0);
	if (ks_decoder_decode(d, &msg, &ch, &err)) {
		ks_buf_printf(&out, "error: %s: %s\n", err.reason, err.text);
	} else {
		char op[2] = { ks_op_char(ch.op), 0 };

		o = json_pack("{s:s,s:O?,s:O?,s:O?,s:O?,s:I}", "op", op, "before", ch.before, "after", ch.after,
			      "source", ch.source, "key", ch.key, "ts_ms", (json_int_t)ch.ts_ms);
		ks_json_write(&out, o);
		ks_buf_puts(&out, "\n");
		json_decref(o);
		/* The debezium output carries the value schema in Kafka Connect's form. */
		CU_ASSERT_PTR_NOT_NULL(ch.schema);
		CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(ch.schema, "type")), "struct");
		ks_change_clean(&ch);
	}
	expected = tu_read_in(dir, "expected", NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(expected);
	TU_ASSERT_STR(name, out.data, expected);
	free(expected);
	ks_buf_clean(&out);
	ks_decoder_destroy(d);
	ks_conf_clean(&conf);
	free(value);
	free(key);
}

static void test_cases(void)
{
	CU_ASSERT(tu_each_case("avro", run_case) >= 5);
}

static void expect_error(ks_decoder_t *d, const void *v, size_t n, int code, const char *reason, const char *text)
{
	ks_msg msg = { "shop.public.orders", 1, 42, NULL, 0, v, n, 0, KS_TS_NONE, NULL };
	ks_change ch;
	ks_errbuf err;

	ks_errbuf_clear(&err);
	CU_ASSERT_EQUAL(ks_decoder_decode(d, &msg, &ch, &err), code);
	if (reason)
		CU_ASSERT_STRING_EQUAL(err.reason, reason);
	if (!strstr(err.text, text)) {
		fprintf(stderr, "\nerror text: %s\nexpected to contain: %s\n", err.text, text);
		CU_FAIL("error text");
	}
}

static void test_errors(void)
{
	ks_decoder_t *d = decoder("http://127.0.0.1:9");
	char dir[4096], *value;
	size_t vlen = 0;

	load_schemas(d);
	expect_error(d, "\x00\x00\x00", 3, KS_ERR_BADREC, "too_short",
		     "shop.public.orders [1] @42: message of 3 bytes is shorter than the 5-byte Confluent header");
	expect_error(d, "{\"op\":\"c\"}", 10, KS_ERR_BADREC, "bad_magic",
		     "shop.public.orders [1] @42: magic byte is 0x7b, expected 0x00: not in the Confluent wire format");
	tu_data_dir("avro/insert", dir, sizeof(dir));
	value = tu_read_in(dir, "value.bin", &vlen);
	expect_error(d, value, vlen / 2, KS_ERR_BADREC, "bad_avro",
		     "shop.public.orders [1] @42: schema id 7: invalid or truncated Avro body");
	/* Where it stopped: the field, and the byte of the body (after the 5-byte header). */
	expect_error(d, value, vlen / 2, KS_ERR_BADREC, "bad_avro",
		     "schema id 7: invalid or truncated Avro body (60 bytes): a length or count runs past the end of "
		     "the message in field source.connector, at byte 60 of the body");
	/* A string length of about 2^34 in a 12-byte message: refused before Avro C allocates it. */
	expect_error(d, "\x00\x00\x00\x00\x07\x02\x02\xfe\xff\xff\xff\x7f\x00", 13, KS_ERR_BADREC, "bad_avro",
		     "a length or count runs past the end of the message");
	/* Schema 99 is not cached and the registry at port 9 is unreachable: fatal, not a bad record. */
	value[4] = 99;
	expect_error(d, value, vlen, KS_ERR_FATAL, NULL,
		     "Schema Registry http://127.0.0.1:9 unreachable: ");
	free(value);
	ks_decoder_destroy(d);
	ks_conf_clean(&conf);
}

int main(void)
{
	static const tu_test tests[] = {
		{ "fixtures (tests/data/avro)", test_cases },
		{ "errors: short, magic, truncated, registry unreachable", test_errors },
		{ NULL, NULL },
	};

	return tu_main("avro", tests);
}
