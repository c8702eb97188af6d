/*
 * libFuzzer targets for the decoders and the configuration parser. One source, one target per
 * -DFUZZ_TARGET: debezium_json, json, avro (the body after a fixed Confluent header, schema id 7
 * from tests/data/avro/schemas), glue (an AWS Glue Schema Registry message whose header and
 * compression bytes and payload are the input's, its version id fixed to one holding schema 7:
 * the framing parser, zlib inflation under a bound, the Avro decoder), create_sink. The JSON
 * targets also meet Confluent- and Glue-framed JSON (seeds in their corpus). Each decoded change also goes through every
 * transform type, so the writer of compact sorted JSON is exercised with decoder output.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "decode.h"
#include "glue.h"
#include "log.h"
#include "registry.h"
#include "transform.h"

static ks_conf conf;
static ks_decoder_t *dec;
static ks_transform_t *tr[3];
#if defined(FUZZ_GLUE)
static ks_glue_t *glue;
static const uint8_t VERSION[16] = { 0x1b, 0x4e, 0x28, 0xba, 0x2f, 0xa1, 0x11, 0xd2,
				     0x88, 0x3f, 0x00, 0x16, 0xd3, 0xcc, 0xa4, 0x27 };
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	ks_errbuf err;
	int t;

	(void)argc;
	(void)argv;
	ks_log_setup(KS_LOG_ERROR, 0);
	ks_conf_init(&conf);
#if defined(FUZZ_JSON)
	ks_conf_set(&conf, "input.format", "json", "fuzz", 0, NULL);
#elif defined(FUZZ_AVRO)
	ks_conf_set(&conf, "input.format", "debezium-avro", "fuzz", 0, NULL);
	ks_conf_set(&conf, "schema.registry.url", "http://127.0.0.1:9", "fuzz", 0, NULL);
	ks_conf_set(&conf, "schema.registry.timeout.ms", "100", "fuzz", 0, NULL);
#elif defined(FUZZ_GLUE)
	ks_conf_set(&conf, "input.format", "debezium-avro", "fuzz", 0, NULL);
	ks_conf_set(&conf, "schema.registry.type", "glue", "fuzz", 0, NULL);
	ks_conf_set(&conf, "schema.registry.glue.endpoint", "http://127.0.0.1:9", "fuzz", 0, NULL);
	ks_conf_set(&conf, "schema.registry.timeout.ms", "100", "fuzz", 0, NULL);
	ks_conf_set(&conf, "aws.region", "us-east-1", "fuzz", 0, NULL);
	ks_conf_set(&conf, "aws.credentials.access_key_id", "AKIDFUZZ", "fuzz", 0, NULL);
	ks_conf_set(&conf, "aws.credentials.secret_access_key", "fuzz", "fuzz", 0, NULL);
#endif
	ks_conf_set(&conf, "primary_key", "id", "fuzz", 0, NULL);
	ks_conf_finalize(&conf, NULL);
#if defined(FUZZ_GLUE)
	{
		/* A small bound: a bomb in the input is refused at 1 MiB. */
		ks_decoder_sources src = { NULL, NULL, 1 << 20 };

		if (!(src.glue = glue = ks_glue_new(&conf, NULL, NULL, &err)))
			abort();
		dec = ks_decoder_new_sources(&conf, NULL, &src, &err);
	}
#else
	dec = ks_decoder_new(&conf, NULL, &err);
#endif
	if (!dec)
		abort();
#if defined(FUZZ_AVRO) || defined(FUZZ_GLUE)
	{
		const char *src = getenv("KS_SRCDIR");
		char path[4096];
		FILE *f;
		char *text;
		long n;

		snprintf(path, sizeof(path), "%s/tests/data/avro/schemas/7.json", src ? src : ".");
		if (!(f = fopen(path, "rb")))
			abort();
		fseek(f, 0, SEEK_END);
		n = ftell(f);
		fseek(f, 0, SEEK_SET);
		text = calloc(1, (size_t)n + 1);
		if (fread(text, 1, (size_t)n, f) != (size_t)n)
			abort();
		fclose(f);
#if defined(FUZZ_GLUE)
		if (ks_glue_put(glue, VERSION, "AVRO", text, &err))
			abort();
#else
		if (ks_registry_put(ks_decoder_registry(dec), 7, text, &err))
			abort();
#endif
		free(text);
	}
#endif
	for (t = 0; t < 3; t++) {
		conf.type = (ks_sink_type)t;
		conf.force_append_only = 1;
		tr[t] = ks_transform_new(&conf, &err);
	}
	return 0;
}

#if defined(FUZZ_CREATE_SINK)
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ks_conf_errors errs = { 0 };
	char *sql = malloc(size + 1);
	ks_conf c;

	memcpy(sql, data, size);
	sql[size] = '\0';
	ks_conf_init(&c);
	if (ks_conf_load_sql(&c, sql, "fuzz", &errs) != KS_ERR_SYNTAX)
		ks_conf_finalize(&c, &errs);
	ks_conf_errors_clean(&errs);
	ks_conf_clean(&c);
	free(sql);
	return 0;
}
#else
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *framed = NULL;
	ks_msg msg = { "fuzz", 0, 1, "{\"id\":1}", 8, data, size, 0, KS_TS_NONE, NULL };
	ks_record *recs[2];
	ks_change ch;
	ks_errbuf err;
	int t, n, i;

#if defined(FUZZ_AVRO)
	framed = malloc(size + 5);
	memcpy(framed, "\0\0\0\0\7", 5);
	memcpy(framed + 5, data, size);
	msg.value = framed;
	msg.value_len = size + 5;
	msg.key = NULL;
	msg.key_len = 0;
#elif defined(FUZZ_GLUE)
	/* The input's first two bytes are the header version and compression bytes, the rest the payload. */
	framed = malloc(size + 16);
	memcpy(framed, data, size < 2 ? size : 2);
	if (size >= 2) {
		memcpy(framed + 2, VERSION, 16);
		memcpy(framed + 18, data + 2, size - 2);
	}
	msg.value = framed;
	msg.value_len = size < 2 ? size : size + 16;
	msg.key = NULL;
	msg.key_len = 0;
#endif
	if (ks_decoder_decode(dec, &msg, &ch, &err) == 0) {
		for (t = 0; t < 3; t++) {
			n = ks_transform_apply(tr[t], &ch, recs, &err);
			for (i = 0; i < n; i++)
				ks_record_destroy(recs[i]);
		}
		ks_change_clean(&ch);
	}
	free(framed);
	return 0;
}
#endif
