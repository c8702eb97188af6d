/*
 * Configuration, data-driven: each folder of tests/data/conf holds input.conf or input.sql,
 * optionally `set` (key=value lines applied like -X), and `expected`: the --check output, or
 * the error lines ("error: ...") validation must print. A case is added by adding a folder.
 */
#include <unistd.h>

#include "conf.h"
#include "consumer.h"
#include "testutil.h"

static void run_case(const char *dir, const char *name)
{
	ks_conf_errors errs = { 0 };
	char cwd[4096], *expected, *set, *out = NULL;
	size_t outlen = 0;
	FILE *mem;
	ks_conf c;
	int i, rc = 0, syntax_error;

	CU_ASSERT_PTR_NOT_NULL_FATAL(getcwd(cwd, sizeof(cwd)));
	CU_ASSERT_EQUAL_FATAL(chdir(dir), 0);
	ks_conf_init(&c);
	rc = ks_conf_load_file(&c, access("input.sql", F_OK) == 0 ? "input.sql" : "input.conf", &errs);
	syntax_error = rc == KS_ERR_SYNTAX;
	if ((set = tu_read("set", NULL))) {
		rc |= tu_conf_lines(&c, set, "-X", &errs);
		free(set);
	}
	if (!syntax_error)
		rc |= ks_conf_finalize(&c, &errs);
	if (!rc) /* as the command line does before --check prints */
		rc = ks_consumer_conf_defaults(&c, &errs);
	mem = open_memstream(&out, &outlen);
	if (rc)
		for (i = 0; i < errs.n; i++)
			fprintf(mem, "error: %s\n", errs.msgs[i]);
	else
		ks_conf_dump(&c, mem);
	fclose(mem);
	expected = tu_read("expected", NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(expected);
	TU_ASSERT_STR(name, out, expected);
	/* Whatever the case, no secret value ever shows. */
	CU_ASSERT_PTR_NULL(strstr(out, "SECRETVALUE"));
	free(expected);
	free(out);
	ks_conf_errors_clean(&errs);
	ks_conf_clean(&c);
	CU_ASSERT_EQUAL(chdir(cwd), 0);
}

static void test_cases(void)
{
	CU_ASSERT(tu_each_case("conf", run_case) >= 20);
}

static void test_primary_key_parsing(void)
{
	ks_conf_errors errs = { 0 };
	ks_conf c;

	ks_conf_init(&c);
	ks_conf_load_sql(&c, "CREATE SINK s FROM t WITH (connector='kinesis', stream='s', aws.region='r', "
			     "type='upsert', primary_key = ' id ,, region , ')", "-e", &errs);
	CU_ASSERT_EQUAL(ks_conf_finalize(&c, &errs), 0);
	CU_ASSERT_EQUAL_FATAL(c.n_pk_cols, 2);
	CU_ASSERT_STRING_EQUAL(c.pk_cols[0], "id");
	CU_ASSERT_STRING_EQUAL(c.pk_cols[1], "region");
	CU_ASSERT_PTR_NULL(c.pk_cols[2]);
	ks_conf_errors_clean(&errs);
	ks_conf_clean(&c);
}

/* A statement that does not parse is a configuration error of its own kind (the caller skips
 * finalize), not a runtime failure; a bad value in a statement that parses is KS_ERR_CONFIG. */
static void test_sql_error_codes(void)
{
	static const struct {
		const char *sql;
		int rc;
	} cases[] = {
		{ "CREATE SINK s FROM t WITH (stream = 's'", KS_ERR_SYNTAX },
		{ "CREATE TABLE s", KS_ERR_SYNTAX },
		{ "CREATE SINK s FROM t WITH (stream = 's') garbage", KS_ERR_SYNTAX },
		{ "CREATE SINK s FROM t WITH (strem = 's')", KS_ERR_CONFIG },
		{ "CREATE SINK s FROM t WITH (stream = 's')", 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ks_conf_errors errs = { 0 };
		ks_conf c;

		ks_conf_init(&c);
		CU_ASSERT_EQUAL(ks_conf_load_sql(&c, cases[i].sql, "-e", &errs), cases[i].rc);
		CU_ASSERT_EQUAL(errs.n > 0, cases[i].rc != 0);
		ks_conf_errors_clean(&errs);
		ks_conf_clean(&c);
	}
	CU_ASSERT_STRING_EQUAL(ks_err_str(KS_ERR_SYNTAX), "syntax error");
}

/* The consumer's kafka.* defaults fill only what the configuration left unset, after it. */
static void test_kafka_defaults(void)
{
	ks_conf_errors errs = { 0 };
	ks_conf c;

	ks_conf_init(&c);
	CU_ASSERT_EQUAL(ks_conf_set(&c, "kafka.group.id", "mine", "t", 1, &errs), 0);
	CU_ASSERT_EQUAL(ks_consumer_conf_defaults(&c, &errs), 0);
	CU_ASSERT_EQUAL(ks_consumer_conf_defaults(&c, &errs), 0); /* idempotent */
	CU_ASSERT_EQUAL_FATAL(c.n_kafka, 2);
	CU_ASSERT_STRING_EQUAL(c.kafka[0].key, "group.id");
	CU_ASSERT_STRING_EQUAL(c.kafka[0].value, "mine");
	CU_ASSERT_STRING_EQUAL(c.kafka[1].key, "bootstrap.servers");
	CU_ASSERT_STRING_EQUAL(c.kafka[1].value, "localhost:9092");
	CU_ASSERT_EQUAL(errs.n, 0);
	ks_conf_errors_clean(&errs);
	ks_conf_clean(&c);
}

/* Which route takes a topic (first match wins), and the stream a template gives it. */
static void test_route_matching(void)
{
	static const char *const lines[] = {
		"aws.region=us-east-1", "type=append-only", "input.format=raw", "routes=lists, events, wide, mirror",
		"route.lists.topic= orders , items", "route.lists.stream=s1",
		"route.events.topic=^events\\.(a|b)$", "route.events.stream=s2",
		"route.wide.topic=^events\\..*", "route.wide.stream=s3",
		"route.mirror.topic=^m\\.", "route.mirror.stream=arn:aws:kinesis:us-east-1:123456789012:stream/copy-${topic}-v1",
	};
	static const struct {
		const char *topic;
		int route;
		const char *stream; /* NULL: the template gives no valid stream name */
	} cases[] = {
		{ "orders", 0, "s1" },
		{ "items", 0, "s1" },
		{ "order", -1, NULL },
		{ "orders2", -1, NULL },
		{ "events.a", 1, "s2" },       /* also matches wide: the first route wins */
		{ "events.ab", 2, "s3" },
		{ "eventsXa", -1, NULL },
		{ "m.t1", 3, "arn:aws:kinesis:us-east-1:123456789012:stream/copy-m.t1-v1" },
		{ "m.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 3, NULL },
		{ "m.a b", 3, NULL },
	};
	ks_conf_errors errs = { 0 };
	char out[512];
	ks_errbuf err;
	ks_conf c;
	size_t i;

	ks_conf_init(&c);
	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		char *l = strdup(lines[i]);

		tu_conf_lines(&c, l, "test", &errs);
		free(l);
	}
	CU_ASSERT_EQUAL_FATAL(ks_conf_finalize(&c, &errs), 0);
	CU_ASSERT_EQUAL_FATAL(c.n_route, 4);
	CU_ASSERT_STRING_EQUAL(c.topic, " orders , items,^events\\.(a|b)$,^events\\..*,^m\\.");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = ks_conf_route_find(&c, cases[i].topic);

		CU_ASSERT_EQUAL(r, cases[i].route);
		if (r != cases[i].route)
			fprintf(stderr, "\ntopic %s: route %d, want %d\n", cases[i].topic, r, cases[i].route);
		if (r < 0)
			continue;
		ks_errbuf_clear(&err);
		if (cases[i].stream) {
			CU_ASSERT_EQUAL(ks_conf_route_stream(&c.route[r], cases[i].topic, out, sizeof(out), &err), 0);
			CU_ASSERT_STRING_EQUAL(out, cases[i].stream);
		} else {
			CU_ASSERT_EQUAL(ks_conf_route_stream(&c.route[r], cases[i].topic, out, sizeof(out), &err), KS_ERR_CONFIG);
			CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "route 'mirror': topic '"));
		}
	}
	/* Each route's configuration is its own, the rest the top level's. */
	CU_ASSERT_STRING_EQUAL(c.route[1].conf->stream, "s2");
	CU_ASSERT_EQUAL(c.route[1].conf->input_format, KS_INPUT_RAW);
	CU_ASSERT_TRUE(c.route[3].is_template);
	CU_ASSERT_FALSE(c.route[0].is_template);
	ks_conf_errors_clean(&errs);
	ks_conf_clean(&c);
}

int main(void)
{
	static const tu_test tests[] = {
		{ "data-driven cases (tests/data/conf)", test_cases },
		{ "primary_key parsing", test_primary_key_parsing },
		{ "statement errors: syntax vs. configuration", test_sql_error_codes },
		{ "kafka.* defaults from the consumer", test_kafka_defaults },
		{ "routes: which route takes a topic, template streams", test_route_matching },
		{ NULL, NULL },
	};

	return tu_main("conf", tests);
}
