/*
 * Schema-registry framings (framing.c) and the decoders that take them off: the AWS Glue
 * Schema Registry's header (version 3, compression 0 or 5, a 16-byte version id) with zlib
 * inflation under a bound, and Confluent's magic byte and id in front of JSON. Compressed
 * payloads are made by zlib's own compress(); the Avro bodies are tests/data/avro's (written by
 * python3-avro), framed here the Glue way, so the same change must decode the same way in both
 * framings; schemas are put into the Glue client's cache (no network).
 */
#include <zlib.h>

#include "conf.h"
#include "decode.h"
#include "framing.h"
#include "glue.h"
#include "json_write.h"
#include "registry.h"
#include "testutil.h"

static const uint8_t V1[16] = { 0x1b, 0x4e, 0x28, 0xba, 0x2f, 0xa1, 0x11, 0xd2,
				0x88, 0x3f, 0x00, 0x16, 0xd3, 0xcc, 0xa4, 0x27 };
static const uint8_t V2[16] = { 0xfe, 0xed, 0, 0, 0, 0, 0x40, 0, 0x80, 0, 0, 0, 0, 0, 0, 0x02 };

/* A Glue-framed message: header, version id, the payload compressed with zlib when asked. */
static size_t glue_frame(uint8_t *out, size_t cap, const uint8_t id[16], int compress_it, const void *p, size_t n)
{
	uLongf clen = (uLongf)(cap - KS_GLUE_HEADER_LEN);

	out[0] = 3;
	out[1] = compress_it ? 5 : 0;
	memcpy(out + 2, id, 16);
	if (!compress_it) {
		CU_ASSERT_FATAL(n <= cap - KS_GLUE_HEADER_LEN);
		memcpy(out + KS_GLUE_HEADER_LEN, p, n);
		return KS_GLUE_HEADER_LEN + n;
	}
	CU_ASSERT_EQUAL_FATAL(compress(out + KS_GLUE_HEADER_LEN, &clen, p, (uLong)n), Z_OK);
	return KS_GLUE_HEADER_LEN + clen;
}

static void expect_bad(int rc, const ks_errbuf *err, const char *reason, const char *text)
{
	CU_ASSERT_EQUAL(rc, KS_ERR_BADREC);
	CU_ASSERT_STRING_EQUAL(err->reason, reason);
	if (!strstr(err->text, text)) {
		fprintf(stderr, "\nerror text: %s\nexpected to contain: %s\n", err->text, text);
		CU_FAIL("error text");
	}
}

static void test_glue_header(void)
{
	static const char json[] = "{\"op\":\"c\"}";
	uint8_t msg[256];
	size_t n = glue_frame(msg, sizeof(msg), V1, 0, json, strlen(json));
	ks_errbuf err;
	ks_frame f;

	CU_ASSERT_EQUAL(ks_frame_glue(msg, n, &f, &err), 0);
	CU_ASSERT_EQUAL(f.framing, KS_FRAMING_GLUE);
	CU_ASSERT_EQUAL(f.compressed, 0);
	CU_ASSERT(memcmp(f.version_id, V1, 16) == 0);
	CU_ASSERT_EQUAL(f.payload_len, strlen(json));
	CU_ASSERT(memcmp(f.payload, json, strlen(json)) == 0);
	/* An empty payload is a header alone: 18 bytes are enough. */
	CU_ASSERT_EQUAL(ks_frame_glue(msg, 18, &f, &err), 0);
	CU_ASSERT_EQUAL(f.payload_len, 0);
	expect_bad(ks_frame_glue(msg, 17, &f, &err), &err, "too_short",
		   "message of 17 bytes is shorter than the 18-byte AWS Glue Schema Registry header");
	msg[0] = 2;
	expect_bad(ks_frame_glue(msg, n, &f, &err), &err, "bad_header", "header version byte is 0x02, expected 0x03");
	msg[0] = 3;
	msg[1] = 1;
	expect_bad(ks_frame_glue(msg, n, &f, &err), &err, "bad_compression",
		   "compression byte is 0x01, expected 0x00 (none) or 0x05 (zlib)");
}

static void test_confluent_and_json(void)
{
	ks_errbuf err;
	ks_frame f;

	CU_ASSERT_EQUAL(ks_frame_confluent("\x00\x00\x00\x01\x07{}", 7, &f, &err), 0);
	CU_ASSERT_EQUAL(f.schema_id, 263);
	CU_ASSERT_EQUAL(f.payload_len, 2);
	expect_bad(ks_frame_confluent("\x00\x00\x01", 3, &f, &err), &err, "too_short", "shorter than the 5-byte Confluent header");
	/* JSON: the first byte tells the framings apart; JSON text starts with neither 0 nor 3. */
	CU_ASSERT_EQUAL(ks_frame_json("{\"a\":1}", 7, &f, &err), 0);
	CU_ASSERT_EQUAL(f.framing, KS_FRAMING_NONE);
	CU_ASSERT_EQUAL(f.payload_len, 7);
	CU_ASSERT_EQUAL(ks_frame_json("\x00\x00\x00\x00\x05{}", 7, &f, &err), 0);
	CU_ASSERT_EQUAL(f.framing, KS_FRAMING_CONFLUENT);
	CU_ASSERT_EQUAL(f.schema_id, 5);
	CU_ASSERT_EQUAL(ks_frame_json("", 0, &f, &err), 0);
	CU_ASSERT_EQUAL(f.framing, KS_FRAMING_NONE);
	expect_bad(ks_frame_json("\x03\x00{}", 4, &f, &err), &err, "too_short", "18-byte AWS Glue Schema Registry header");
	expect_bad(ks_frame_json("\x00{}", 3, &f, &err), &err, "too_short", "5-byte Confluent header");
}

static void test_inflate(void)
{
	static const char text[] = "{\"payload\":{\"op\":\"c\",\"after\":{\"id\":1,\"note\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}}}";
	size_t big_n = 8 * 1024 * 1024, n;
	uint8_t msg[1024], *big = calloc(1, big_n), *bomb = malloc(big_n / 100);
	const uint8_t *out;
	size_t out_len;
	ks_errbuf err;
	ks_frame f;
	ks_buf buf;

	CU_ASSERT_PTR_NOT_NULL_FATAL(big);
	CU_ASSERT_PTR_NOT_NULL_FATAL(bomb);
	ks_buf_init(&buf, 0);
	n = glue_frame(msg, sizeof(msg), V1, 1, text, strlen(text));
	CU_ASSERT_EQUAL(ks_frame_glue(msg, n, &f, &err), 0);
	CU_ASSERT_EQUAL(f.compressed, 1);
	CU_ASSERT_EQUAL(ks_frame_payload(&f, 1 << 20, &buf, &out, &out_len, &err), 0);
	CU_ASSERT_EQUAL(out_len, strlen(text));
	CU_ASSERT(out && memcmp(out, text, out_len) == 0);
	/* Exactly at the bound is allowed; a byte past it is not. */
	CU_ASSERT_EQUAL(ks_frame_payload(&f, strlen(text), &buf, &out, &out_len, &err), 0);
	CU_ASSERT_EQUAL(out_len, strlen(text));
	expect_bad(ks_frame_payload(&f, strlen(text) - 1, &buf, &out, &out_len, &err), &err, "too_large",
		   "inflates past 76 bytes, the most the consumer may receive in a message");
	/* Truncated, corrupted, or followed by bytes of something else. */
	f.payload_len -= 3;
	expect_bad(ks_frame_payload(&f, 1 << 20, &buf, &out, &out_len, &err), &err, "bad_compression", "truncated zlib stream");
	f.payload_len += 3;
	msg[KS_GLUE_HEADER_LEN + 4] ^= 0xff;
	msg[KS_GLUE_HEADER_LEN + 5] ^= 0xff;
	expect_bad(ks_frame_payload(&f, 1 << 20, &buf, &out, &out_len, &err), &err, "bad_compression", "not valid zlib data");
	n = glue_frame(msg, sizeof(msg), V1, 1, text, strlen(text));
	memcpy(msg + n, "xyz", 3);
	CU_ASSERT_EQUAL(ks_frame_glue(msg, n + 3, &f, &err), 0);
	expect_bad(ks_frame_payload(&f, 1 << 20, &buf, &out, &out_len, &err), &err, "bad_compression",
		   "has 3 bytes after the end of its zlib stream");
	/* A bomb: 8 MiB of zeros in a few KiB never takes more than the bound. */
	{
		uLongf blen = (uLongf)(big_n / 100 - KS_GLUE_HEADER_LEN);

		bomb[0] = 3;
		bomb[1] = 5;
		memcpy(bomb + 2, V2, 16);
		CU_ASSERT_EQUAL_FATAL(compress(bomb + KS_GLUE_HEADER_LEN, &blen, big, (uLong)big_n), Z_OK);
		CU_ASSERT(blen < 64 * 1024);
		CU_ASSERT_EQUAL(ks_frame_glue(bomb, KS_GLUE_HEADER_LEN + blen, &f, &err), 0);
		expect_bad(ks_frame_payload(&f, 1 << 20, &buf, &out, &out_len, &err), &err, "too_large", "inflates past 1048576 bytes");
		CU_ASSERT(buf.cap <= (1 << 20) + 1);
		CU_ASSERT_EQUAL(ks_frame_payload(&f, big_n, &buf, &out, &out_len, &err), 0);
		CU_ASSERT_EQUAL(out_len, big_n);
	}
	ks_buf_clean(&buf);
	free(big);
	free(bomb);
}

static void test_uuid_text(void)
{
	char s[37];
	uint8_t id[16];

	ks_uuid_str(V1, s);
	CU_ASSERT_STRING_EQUAL(s, "1b4e28ba-2fa1-11d2-883f-0016d3cca427");
	CU_ASSERT_EQUAL(ks_uuid_parse("1B4E28BA-2FA1-11D2-883F-0016D3CCA427", id), 0);
	CU_ASSERT(memcmp(id, V1, 16) == 0);
	CU_ASSERT_EQUAL(ks_uuid_parse("1b4e28ba2fa111d2883f0016d3cca427", id), -1);
	CU_ASSERT_EQUAL(ks_uuid_parse("1b4e28ba-2fa1-11d2-883f-0016d3cca42g", id), -1);
}

/* ---- decoders --------------------------------------------------------------------------------- */

static ks_conf conf, conf2;

/* A decoder of @p format configured in @p c; with Glue, its client goes to *gp, else a Confluent registry's to *rp. */
static ks_decoder_t *decoder_in(ks_conf *c, const char *format, int glue, ks_glue_t **gp, ks_registry_t **rp);

static ks_decoder_t *decoder(const char *format, int glue, ks_glue_t **gp, ks_registry_t **rp)
{
	return decoder_in(&conf, format, glue, gp, rp);
}

static ks_decoder_t *decoder_in(ks_conf *c, const char *format, int glue, ks_glue_t **gp, ks_registry_t **rp)
{
	ks_decoder_sources src = { NULL, NULL, 1 << 20 };
	ks_errbuf err;
	ks_decoder_t *d;

	ks_conf_init(c);
	ks_conf_set(c, "input.format", format, "t", 0, NULL);
	ks_conf_set(c, "aws.region", "us-east-1", "t", 0, NULL);
	ks_conf_set(c, "aws.credentials.access_key_id", "AKIDTEST", "t", 0, NULL);
	ks_conf_set(c, "aws.credentials.secret_access_key", "secret", "t", 0, NULL);
	/* Nothing listens there: a fetch would fail, and fast. */
	ks_conf_set(c, "schema.registry.timeout.ms", "300", "t", 0, NULL);
	if (glue) {
		ks_conf_set(c, "schema.registry.type", "glue", "t", 0, NULL);
		ks_conf_set(c, "schema.registry.glue.endpoint", "http://127.0.0.1:9", "t", 0, NULL);
		CU_ASSERT_PTR_NOT_NULL_FATAL(src.glue = *gp = ks_glue_new(c, NULL, NULL, &err));
	} else if (rp) {
		ks_conf_set(c, "schema.registry.url", "http://127.0.0.1:9", "t", 0, NULL);
		CU_ASSERT_PTR_NOT_NULL_FATAL(src.registry = *rp = ks_registry_new(c, &err));
	}
	d = ks_decoder_new_sources(c, NULL, &src, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	return d;
}

static char *schema_text(int id)
{
	char dir[4096], name[32];

	tu_data_dir("avro/schemas", dir, sizeof(dir));
	snprintf(name, sizeof(name), "%d.json", id);
	return tu_read_in(dir, name, NULL);
}

/* The change as canonical JSON text (caller frees), or "error: reason: text". */
static char *decode_text(ks_decoder_t *d, const void *key, size_t klen, const void *value, size_t vlen)
{
	ks_msg msg = { "shop.public.orders", 0, 5, key, klen, value, vlen, 0, KS_TS_NONE, NULL };
	ks_change ch;
	ks_errbuf err;
	ks_buf out;
	json_t *o;

	ks_buf_init(&out, 0);
	ks_errbuf_clear(&err);
	if (ks_decoder_decode(d, &msg, &ch, &err)) {
		ks_buf_printf(&out, "error: %s: %s", err.reason, err.text);
	} else {
		char op[2] = { ks_op_char(ch.op), 0 };

		o = json_pack("{s:s,s:O?,s:O?,s:O?,s:O?,s:O?,s:I}", "op", op, "before", ch.before, "after", ch.after,
			      "source", ch.source, "key", ch.key, "schema", ch.schema, "ts_ms", (json_int_t)ch.ts_ms);
		ks_json_write(&out, o);
		json_decref(o);
		ks_change_clean(&ch);
	}
	return out.data;
}

static const char *const CASES[] = { "snapshot-read", "insert", "update", "delete", "small-decimal", "truncate" };

/* Each Avro fixture in Glue's framing, compressed and not, decodes as in Confluent's. */
static void test_glue_avro_as_confluent(void)
{
	char *s7 = schema_text(7), *s8 = schema_text(8), dir[4096];
	ks_glue_t *glue = NULL;
	ks_registry_t *reg = NULL;
	ks_decoder_t *dg = decoder("debezium-avro", 1, &glue, NULL), *dc = decoder_in(&conf2, "debezium-avro", 0, NULL, &reg);
	ks_errbuf err;
	size_t i;
	int z;

	CU_ASSERT_EQUAL(ks_glue_put(glue, V1, "AVRO", s7, &err), 0);
	CU_ASSERT_EQUAL(ks_glue_put(glue, V2, "AVRO", s8, &err), 0);
	CU_ASSERT_EQUAL(ks_registry_put(reg, 7, s7, &err), 0);
	CU_ASSERT_EQUAL(ks_registry_put(reg, 8, s8, &err), 0);
	for (i = 0; i < sizeof(CASES) / sizeof(CASES[0]); i++) {
		size_t vlen = 0, klen = 0;
		char *value, *key, *want;

		tu_data_dir("avro", dir, sizeof(dir));
		strcat(dir, "/");
		strcat(dir, CASES[i]);
		value = tu_read_in(dir, "value.bin", &vlen);
		key = tu_read_in(dir, "key.bin", &klen);
		CU_ASSERT_FATAL(value && key && vlen > 5);
		want = decode_text(dc, klen ? key : NULL, klen, value, vlen);
		CU_ASSERT(strncmp(want, "error", 5) != 0);
		for (z = 0; z < 2; z++) {
			uint8_t gv[4096], gk[256];
			size_t gvn = glue_frame(gv, sizeof(gv), V1, z, value + 5, vlen - 5);
			size_t gkn = klen ? glue_frame(gk, sizeof(gk), V2, z, key + 5, klen - 5) : 0;
			char *got = decode_text(dg, klen ? gk : NULL, gkn, gv, gvn);

			TU_ASSERT_STR(CASES[i], got, want);
			free(got);
		}
		free(want);
		free(value);
		free(key);
	}
	ks_decoder_destroy(dg);
	ks_decoder_destroy(dc);
	ks_glue_destroy(glue);
	ks_registry_destroy(reg);
	ks_conf_clean(&conf);
	ks_conf_clean(&conf2);
	free(s7);
	free(s8);
}

static void expect_decode_error(ks_decoder_t *d, const void *v, size_t n, int code, const char *reason, const char *text)
{
	char *got = decode_text(d, NULL, 0, v, n);
	char want[512];

	snprintf(want, sizeof(want), "error: %s: ", reason ? reason : "");
	if (code == KS_ERR_BADREC)
		CU_ASSERT(strncmp(got, want, strlen(want)) == 0);
	if (!strstr(got, text)) {
		fprintf(stderr, "\ngot: %s\nexpected to contain: %s\n", got, text);
		CU_FAIL("error text");
	}
	free(got);
}

static void test_glue_avro_errors(void)
{
	char *s7 = schema_text(7), dir[4096], *value;
	ks_glue_t *glue = NULL;
	ks_decoder_t *d = decoder("debezium-avro", 1, &glue, NULL);
	uint8_t gv[4096], other[16];
	size_t vlen = 0, n;
	ks_errbuf err;

	memcpy(other, V1, 16);
	other[15] ^= 1;
	CU_ASSERT_EQUAL(ks_glue_put(glue, V1, "AVRO", s7, &err), 0);
	CU_ASSERT_EQUAL(ks_glue_put(glue, V2, "JSON", "{\"type\":\"object\"}", &err), 0);
	tu_data_dir("avro/insert", dir, sizeof(dir));
	value = tu_read_in(dir, "value.bin", &vlen);
	n = glue_frame(gv, sizeof(gv), V1, 0, value + 5, vlen - 5);
	/* A Confluent-framed message where Glue's framing is expected. */
	expect_decode_error(d, value, vlen, KS_ERR_BADREC, "bad_header",
			    "shop.public.orders [0] @5: header version byte is 0x00, expected 0x03");
	expect_decode_error(d, gv, 10, KS_ERR_BADREC, "too_short", "message of 10 bytes is shorter than the 18-byte");
	expect_decode_error(d, gv, n - 20, KS_ERR_BADREC, "bad_avro",
			    "AWS Glue schema version 1b4e28ba-2fa1-11d2-883f-0016d3cca427: invalid or truncated Avro body");
	/* A version whose DataFormat is JSON is not read as Avro. */
	memcpy(gv + 2, V2, 16);
	expect_decode_error(d, gv, n, KS_ERR_BADREC, "wrong_format",
			    "AWS Glue schema version feed0000-0000-4000-8000-000000000002 has DataFormat JSON, but "
			    "input.format = debezium-avro reads Avro");
	/* An id not cached, and Glue unreachable: fatal, not a bad record. */
	memcpy(gv + 2, other, 16);
	expect_decode_error(d, gv, n, KS_ERR_FATAL, NULL,
			    "AWS Glue Schema Registry at http://127.0.0.1:9 unavailable: ");
	free(value);
	free(s7);
	ks_decoder_destroy(d);
	ks_glue_destroy(glue);
	ks_conf_clean(&conf);
}

/* JSON in every framing decodes as the same JSON unframed, for debezium-json and json. */
static void test_json_framings(void)
{
	static const char *const values[] = {
		"{\"schema\":{\"type\":\"struct\",\"fields\":[{\"field\":\"after\",\"type\":\"struct\",\"fields\":[{\"field\":\"w\",\"type\":\"float\"}]}]},"
		"\"payload\":{\"op\":\"c\",\"before\":null,\"after\":{\"id\":1,\"w\":0.1},\"source\":{\"db\":\"x\"},\"ts_ms\":17}}",
		"{\"op\":\"d\",\"before\":{\"id\":2},\"after\":null,\"ts_ms\":18}",
	};
	static const char key[] = "{\"schema\":{\"type\":\"struct\"},\"payload\":{\"id\":2}}";
	static const char *const formats[] = { "debezium-json", "json" };
	size_t f, v;
	int g;

	for (g = 0; g < 2; g++)
		for (f = 0; f < 2; f++) {
			ks_glue_t *glue = NULL;
			ks_decoder_t *d = decoder(formats[f], g, &glue, NULL);
			ks_errbuf err;

			if (glue)
				CU_ASSERT_EQUAL(ks_glue_put(glue, V1, "JSON", "{\"type\":\"object\"}", &err), 0);
			for (v = 0; v < 2; v++) {
				char *want = decode_text(d, key, strlen(key), values[v], strlen(values[v])), *got;
				uint8_t msg[1024], k[256];
				size_t n, kn;
				int z;

				CU_ASSERT(strncmp(want, "error", 5) != 0);
				for (z = 0; z < 2; z++) {
					n = glue_frame(msg, sizeof(msg), V1, z, values[v], strlen(values[v]));
					kn = glue_frame(k, sizeof(k), V1, z, key, strlen(key));
					got = decode_text(d, k, kn, msg, n);
					TU_ASSERT_STR(formats[f], got, want);
					free(got);
				}
				memcpy(msg, "\x00\x00\x00\x00\x2a", 5);
				memcpy(msg + 5, values[v], strlen(values[v]));
				memcpy(k, "\x00\x00\x00\x00\x2b", 5);
				memcpy(k + 5, key, strlen(key));
				got = decode_text(d, k, strlen(key) + 5, msg, strlen(values[v]) + 5);
				TU_ASSERT_STR(formats[f], got, want);
				free(got);
				free(want);
			}
			if (glue) {
				uint8_t msg[256];
				size_t n;

				/* A version that is not JSON, and a corrupt header, are bad records. */
				CU_ASSERT_EQUAL(ks_glue_put(glue, V2, "AVRO", "{\"type\":\"int\"}", &err), 0);
				n = glue_frame(msg, sizeof(msg), V2, 0, values[1], strlen(values[1]));
				expect_decode_error(d, msg, n, KS_ERR_BADREC, "wrong_format",
						    "value: AWS Glue schema version feed0000-0000-4000-8000-000000000002 has DataFormat AVRO");
				msg[1] = 9;
				expect_decode_error(d, msg, n, KS_ERR_BADREC, "bad_compression",
						    "shop.public.orders [0] @5: value: AWS Glue Schema Registry compression byte is 0x09");
			}
			ks_decoder_destroy(d);
			ks_glue_destroy(glue);
			ks_conf_clean(&conf);
		}
}

int main(void)
{
	static const tu_test tests[] = {
		{ "Glue header: version, compression, id, payload", test_glue_header },
		{ "Confluent header, JSON told apart by its first byte", test_confluent_and_json },
		{ "zlib payloads: inflated under a bound, truncated, corrupt, trailing bytes, a bomb", test_inflate },
		{ "version ids as text", test_uuid_text },
		{ "Glue-framed Avro decodes as Confluent-framed Avro", test_glue_avro_as_confluent },
		{ "Glue-framed Avro: bad header, truncated body, DataFormat, unknown id", test_glue_avro_errors },
		{ "framed JSON decodes as plain JSON", test_json_framings },
		{ NULL, NULL },
	};

	return tu_main("framing", tests);
}
