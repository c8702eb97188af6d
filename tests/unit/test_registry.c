/*
 * One Schema Registry cache for every decode lane (prepare.c, registry.c, decode_avro.c): with
 * four lanes decoding Debezium Avro at the same time, each schema is fetched once per process,
 * and a schema that is not valid Avro gives every lane the same complete error. The registry is
 * a libmicrohttpd stand-in inside the test that counts the requests per schema id; it holds its
 * answer to the first request for an id until a second request for that id comes (the lanes
 * fetching on their own) or HOLD_MS passed, so lanes asking while the first fetch is under way
 * are seen asking.
 *
 * The first test goes through the preparer, as the pipeline does; the others run decoders on
 * their own threads, without librdkafka, so that they also run under ThreadSanitizer (whose
 * runtime here does not follow librdkafka's C11 threads): `test_registry decoders` runs only
 * the tests whose name contains "decoders".
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "decode.h"
#include "prepare.h"
#include "registry.h"
#include "testutil.h"

#define NMSG 480       /* 30 chunks of 16: every lane takes some */
#define MAXID 16
#define HOLD_MS 300
#define BAD_SCHEMA_ID 10
#define MISSING_ID 13    /* "schema not found" (40403) until the test adds it */
#define PROXY_404_ID 14  /* a 404 that is not the registry's: an HTML page, no error code */
#define NTHREADS 4

static struct {
	struct MHD_Daemon *d;
	int port;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int requests[MAXID];
	char *schemas[MAXID]; /* JSON text by id */
} reg = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static rd_kafka_t *rk;
static rd_kafka_topic_t *rkt;
static rd_kafka_message_t msgs[NMSG];
static char *insert_key, *insert_value, *bad_value;
static size_t insert_key_len, insert_value_len;

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url, const char *method,
			      const char *version, const char *upload, size_t *upload_size, void **state)
{
	struct MHD_Response *resp;
	enum MHD_Result r;
	char *body = NULL;
	int id = -1, status = 404;

	(void)cls, (void)method, (void)version, (void)upload, (void)upload_size, (void)state;
	if (sscanf(url, "/schemas/ids/%d", &id) == 1 && id >= 0 && id < MAXID) {
		pthread_mutex_lock(&reg.mu);
		if (reg.schemas[id]) {
			struct timespec until;
			json_t *o = json_pack("{s:s}", "schema", reg.schemas[id]);

			body = json_dumps(o, 0);
			json_decref(o);
			status = 200;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += HOLD_MS * 1000000L;
			until.tv_sec += until.tv_nsec / 1000000000L;
			until.tv_nsec %= 1000000000L;
			if (++reg.requests[id] == 1)
				while (reg.requests[id] == 1 &&
				       pthread_cond_timedwait(&reg.cv, &reg.mu, &until) != ETIMEDOUT)
					;
			else
				pthread_cond_broadcast(&reg.cv);
		} else {
			reg.requests[id]++;
		}
		pthread_mutex_unlock(&reg.mu);
	}
	if (!body && id == PROXY_404_ID)
		body = strdup("<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>");
	else if (!body)
		body = strdup("{\"error_code\":40403,\"message\":\"Schema not found\"}");
	resp = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(resp, "Content-Type", id == PROXY_404_ID ? "text/html" : "application/vnd.schemaregistry.v1+json");
	r = MHD_queue_response(c, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return r;
}

static int start_registry(void)
{
	struct sockaddr_in sa = { 0 };
	const union MHD_DaemonInfo *info;

	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	reg.d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
				 answer, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_END);
	if (!reg.d || !(info = MHD_get_daemon_info(reg.d, MHD_DAEMON_INFO_BIND_PORT)))
		return -1;
	reg.port = info->port;
	return 0;
}

static int setup(void)
{
	char dir[4096];

	tu_data_dir("avro/schemas", dir, sizeof(dir));
	reg.schemas[7] = tu_read_in(dir, "7.json", NULL);
	reg.schemas[8] = tu_read_in(dir, "8.json", NULL);
	/* The same schemas under other ids, for the tests after the first. */
	reg.schemas[11] = tu_read_in(dir, "7.json", NULL);
	reg.schemas[12] = tu_read_in(dir, "8.json", NULL);
	/* JSON, but not Avro: the field's type names nothing. */
	reg.schemas[BAD_SCHEMA_ID] = strdup("{\"type\":\"record\",\"name\":\"Bad\",\"fields\":"
					    "[{\"name\":\"a\",\"type\":\"no.such.Type\"}]}");
	tu_data_dir("avro/insert", dir, sizeof(dir));
	insert_key = tu_read_in(dir, "key.bin", &insert_key_len);
	insert_value = tu_read_in(dir, "value.bin", &insert_value_len);
	if (!reg.schemas[7] || !reg.schemas[8] || !reg.schemas[11] || !reg.schemas[12] || !insert_key ||
	    !insert_value || start_registry())
		return -1;
	bad_value = malloc(insert_value_len);
	memcpy(bad_value, insert_value, insert_value_len);
	bad_value[4] = BAD_SCHEMA_ID;
	return 0;
}

/* A topic handle for the preparer's messages: an offline producer, never connected, quiet. */
static int setup_kafka(void)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char errstr[256];

	rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof(errstr));
	if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr))) ||
	    !(rkt = rd_kafka_topic_new(rk, "shop.public.orders", NULL))) {
		fprintf(stderr, "test_registry: %s\n", errstr);
		return -1;
	}
	return 0;
}

static void conf_port(ks_conf *c, int threads, int port, const char *timeout_ms)
{
	ks_conf_errors errs = { 0 };
	char url[64], t[8];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	snprintf(t, sizeof(t), "%d", threads);
	ks_conf_init(c);
	ks_conf_set(c, "stream", "s", "test", 0, &errs);
	ks_conf_set(c, "aws.region", "us-east-1", "test", 0, &errs);
	ks_conf_set(c, "topic", "shop.public.orders", "test", 0, &errs);
	ks_conf_set(c, "input.format", "debezium-avro", "test", 0, &errs);
	ks_conf_set(c, "schema.registry.url", url, "test", 0, &errs);
	ks_conf_set(c, "type", "upsert", "test", 0, &errs);
	ks_conf_set(c, "decode.threads", t, "test", 0, &errs);
	if (timeout_ms)
		ks_conf_set(c, "schema.registry.timeout.ms", timeout_ms, "test", 0, &errs);
	CU_ASSERT_EQUAL_FATAL(ks_conf_finalize(c, &errs), 0);
	ks_conf_errors_clean(&errs);
}

static void conf_for(ks_conf *c, int threads)
{
	conf_port(c, threads, reg.port, NULL);
}

static ks_preparer_t *lanes(ks_conf *c, int threads)
{
	ks_preparer_t *pp;
	ks_errbuf err;

	conf_for(c, threads);
	pp = ks_preparer_new(c, NULL, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(pp);
	return pp;
}

static void set_msg(int i, const void *key, size_t key_len, const void *value, size_t value_len)
{
	memset(&msgs[i], 0, sizeof(msgs[i]));
	msgs[i].rkt = rkt;
	msgs[i].offset = i;
	msgs[i].key = (void *)key;
	msgs[i].key_len = key_len;
	msgs[i].payload = (void *)value;
	msgs[i].len = value_len;
}

static void run(ks_preparer_t *pp, ks_prepared *items)
{
	int i;

	for (i = 0; i < NMSG; i++) {
		memset(&items[i], 0, sizeof(items[i]));
		items[i].msg = &msgs[i];
	}
	ks_preparer_start(pp, items, NMSG);
	ks_preparer_finish(pp);
}

static int requests(int id)
{
	int n;

	pthread_mutex_lock(&reg.mu);
	n = reg.requests[id];
	pthread_mutex_unlock(&reg.mu);
	return n;
}

/* Four lanes, 480 messages with value schema 7 and key schema 8: one GET for each id. */
static void test_one_fetch_per_schema(void)
{
	static ks_prepared items[NMSG];
	ks_preparer_t *pp;
	int round, i, ok = 0;
	ks_conf c;

	CU_ASSERT_EQUAL_FATAL(setup_kafka(), 0);
	for (i = 0; i < NMSG; i++)
		set_msg(i, insert_key, insert_key_len, insert_value, insert_value_len);
	pp = lanes(&c, 4);
	for (round = 0; round < 2; round++) {
		run(pp, items);
		for (i = 0; i < NMSG; i++) {
			if (items[i].outcome == KS_PREP_RECORDS && items[i].n == 1)
				ok++;
			else
				fprintf(stderr, "\nmessage %d: outcome %d: %s\n", i, (int)items[i].outcome, items[i].err.text);
			if (items[i].n >= 1)
				ks_record_destroy(items[i].recs[0]);
		}
	}
	CU_ASSERT_EQUAL(ok, 2 * NMSG);
	CU_ASSERT_EQUAL(requests(7), 1);
	CU_ASSERT_EQUAL(requests(8), 1);
	if (requests(7) != 1 || requests(8) != 1)
		fprintf(stderr, "\nGET /schemas/ids/7: %d, /schemas/ids/8: %d (want 1 each)\n", requests(7), requests(8));
	ks_preparer_destroy(pp);
	ks_conf_clean(&c);
}

/* What one decoder thread decodes, and what became of it. */
typedef struct job {
	ks_registry_t *registry;
	const ks_conf *conf;
	pthread_barrier_t *go;
	int errors; /* 1: alternate invalid-schema and cut messages; 0: good ones on ids 11, 12 */
	int ok;     /* messages that came out as they should */
	char schema_error[768], body_error[768];
} job;

static char *with_id(const char *p, size_t n, int id)
{
	char *c = malloc(n);

	memcpy(c, p, n);
	c[4] = (char)id;
	return c;
}

/* The text of @p err from "schema id" on (the coordinates before it differ per message). */
static int same_error(char *first, const ks_errbuf *err, const char *want)
{
	const char *t = strstr(err->text, "schema id");

	if (!t || !strstr(t, want))
		return 0;
	if (!first[0])
		snprintf(first, 768, "%s", t);
	return strcmp(first, t) == 0;
}

static void *decode_thread(void *arg)
{
	job *j = arg;
	char *key = with_id(insert_key, insert_key_len, 12), *value = with_id(insert_value, insert_value_len, 11);
	ks_decoder_t *d;
	ks_errbuf err;
	int i;

	d = ks_decoder_new_shared(j->conf, NULL, j->registry, &err);
	pthread_barrier_wait(j->go);
	for (i = 0; d && i < NMSG / NTHREADS; i++) {
		ks_msg m = { "shop.public.orders", 0, i, key, insert_key_len, value, insert_value_len, 0, KS_TS_NONE, NULL };
		ks_change ch;
		int rc;

		if (j->errors) {
			m.key = NULL;
			m.key_len = 0;
			m.value = i % 2 ? bad_value : value;
			m.value_len = i % 2 ? insert_value_len : insert_value_len / 2;
		}
		rc = ks_decoder_decode(d, &m, &ch, &err);
		if (!j->errors)
			j->ok += rc == 0 && ch.after && ch.key;
		else if (i % 2)
			j->ok += rc == KS_ERR_BADREC && !strcmp(err.reason, "bad_schema") &&
				 same_error(j->schema_error, &err, "schema id 10 is not a valid Avro schema: ");
		else
			j->ok += rc == KS_ERR_BADREC && !strcmp(err.reason, "bad_avro") &&
				 same_error(j->body_error, &err, "schema id 11: invalid or truncated Avro body");
		if (!rc)
			ks_change_clean(&ch);
	}
	ks_decoder_destroy(d);
	free(key);
	free(value);
	return NULL;
}

/* NTHREADS decoders on their own threads share one registry client, started together. */
static void run_decoders(int errors, job *jobs)
{
	pthread_t th[NTHREADS];
	pthread_barrier_t go;
	ks_registry_t *r;
	ks_errbuf err;
	ks_conf c;
	int i;

	conf_for(&c, NTHREADS);
	r = ks_registry_new(&c, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	pthread_barrier_init(&go, NULL, NTHREADS);
	for (i = 0; i < NTHREADS; i++) {
		jobs[i] = (job){ .registry = r, .conf = &c, .go = &go, .errors = errors };
		CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, decode_thread, &jobs[i]), 0);
	}
	for (i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&go);
	ks_registry_destroy(r);
	ks_conf_clean(&c);
}

/* Decoders on four threads asking for schemas 11 and 12 at the same time: one GET each. */
static void test_decoders_fetch_once(void)
{
	job jobs[NTHREADS];
	int i;

	run_decoders(0, jobs);
	for (i = 0; i < NTHREADS; i++)
		CU_ASSERT_EQUAL(jobs[i].ok, NMSG / NTHREADS);
	CU_ASSERT_EQUAL(requests(11), 1);
	CU_ASSERT_EQUAL(requests(12), 1);
}

/*
 * Decoders on four threads meet a schema that is not Avro and bodies cut short, at the same
 * time: each message gets its own whole error (Avro C's text for the schema, kinesink's for the
 * body), the same on every thread; the schema is fetched once. Avro C keeps its error text in
 * one process-wide buffer: read by lanes while another lane writes it, the texts would differ
 * (and ThreadSanitizer would report the race).
 */
static void test_decoders_errors(void)
{
	job jobs[NTHREADS];
	int i;

	run_decoders(1, jobs);
	for (i = 0; i < NTHREADS; i++) {
		CU_ASSERT_EQUAL(jobs[i].ok, NMSG / NTHREADS);
		CU_ASSERT_STRING_EQUAL(jobs[i].schema_error, jobs[0].schema_error);
		CU_ASSERT_STRING_EQUAL(jobs[i].body_error, jobs[0].body_error);
	}
	CU_ASSERT_EQUAL(requests(BAD_SCHEMA_ID), 1);
}

/*
 * Only the registry's own "schema not found" (404 with error code 40403) is a bad record, and it
 * is not remembered: asked again, the id is found once the registry has it. A 404 of something
 * else in front of the registry, and a registry that refuses connections, are retried over
 * schema.registry.timeout.ms and then fatal, never a bad record.
 */
static void test_outage_is_not_a_bad_record(void)
{
	const ks_schema_entry *e;
	ks_registry_t *r;
	ks_errbuf err;
	ks_conf c;
	int rc, closed_port;
	struct sockaddr_in sa = { 0 };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	conf_port(&c, 1, reg.port, "700");
	r = ks_registry_new(&c, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	rc = ks_registry_get(r, MISSING_ID, &e, &err);
	CU_ASSERT_EQUAL(rc, KS_ERR_BADREC);
	CU_ASSERT_STRING_EQUAL(err.reason, "unknown_schema");
	CU_ASSERT_EQUAL(requests(MISSING_ID), 1);
	pthread_mutex_lock(&reg.mu);
	reg.schemas[MISSING_ID] = strdup(reg.schemas[7]);
	pthread_mutex_unlock(&reg.mu);
	rc = ks_registry_get(r, MISSING_ID, &e, &err);
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(requests(MISSING_ID), 2);

	rc = ks_registry_get(r, PROXY_404_ID, &e, &err);
	CU_ASSERT_EQUAL(rc, KS_ERR_FATAL);
	CU_ASSERT_TRUE(requests(PROXY_404_ID) >= 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "answered HTTP 404 for schema id 14 without the Schema Registry's error code 40403"));
	if (rc != KS_ERR_FATAL)
		fprintf(stderr, "\nproxy 404: %d: %s\n", rc, err.text);
	ks_registry_destroy(r);
	ks_conf_clean(&c);

	/* A port nobody listens on: connections refused. */
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CU_ASSERT_EQUAL_FATAL(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	getsockname(fd, (struct sockaddr *)&sa, &sl);
	closed_port = ntohs(sa.sin_port);
	close(fd);
	conf_port(&c, 1, closed_port, "700");
	r = ks_registry_new(&c, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	rc = ks_registry_get(r, 7, &e, &err);
	CU_ASSERT_EQUAL(rc, KS_ERR_FATAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "unreachable"));
	ks_registry_destroy(r);
	ks_conf_clean(&c);
}

int main(int argc, char **argv)
{
	static const tu_test all[] = {
		{ "lanes of the preparer: each schema fetched once per process", test_one_fetch_per_schema },
		{ "decoders on four threads: one fetch for all", test_decoders_fetch_once },
		{ "decoders on four threads: invalid schema and cut bodies, the same whole error", test_decoders_errors },
		{ "an outage (a proxy's 404, refused connections) is fatal; only 40403 is a bad record, asked again",
		  test_outage_is_not_a_bad_record },
		{ NULL, NULL },
	};
	tu_test tests[sizeof(all) / sizeof(all[0])];
	int rc, i, n = 0;

	for (i = 0; all[i].name; i++)
		if (argc < 2 || strstr(all[i].name, argv[1]))
			tests[n++] = all[i];
	tests[n] = all[i];
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (setup())
		return 1;
	rc = tu_main("registry", tests);
	MHD_stop_daemon(reg.d);
	if (rkt)
		rd_kafka_topic_destroy(rkt);
	if (rk)
		rd_kafka_destroy(rk);
	for (i = 0; i < MAXID; i++)
		free(reg.schemas[i]);
	free(insert_key);
	free(insert_value);
	free(bad_value);
	curl_global_cleanup();
	return rc;
}
