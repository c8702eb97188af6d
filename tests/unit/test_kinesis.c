/*
 * The writer's state machine, driven through its seams: a fake transport answers each PutRecords
 * request as the test scripts it (partial failures, 5xx, throttling) and a fake clock moves only
 * when the writer waits, so order per key, retries of only the failed entries, backoff times and
 * whole aggregates are checked without sockets or sleeps. And the per-record limits.
 */
#include <jansson.h>
#include <openssl/evp.h>
#include <string.h>

#include "kinesis.h"
#include "kpl.h"
#include "writerutil.h"

#define MAXREQ 64
#define MAXENT 16

/* One entry of a request as the fake endpoint saw it: its user records as "key=data". */
typedef struct seen_entry {
	char pkey[300];
	int nrecs;
	char recs[MAXENT][64];
} seen_entry;

typedef struct seen_req {
	int64_t at;
	char akid[32];   /* the access key id it was signed with */
	int n;
	seen_entry e[MAXENT];
} seen_req;

typedef struct fake fake;
/* The answer to request number @p i: HTTP status and body. */
typedef long (*script_fn)(fake *f, int i, const seen_req *rq, ks_buf *answer);

struct fake {
	int64_t now;
	script_fn script;
	int pending[8];   /* slots started and not answered, in start order */
	int npending;
	seen_req reqs[MAXREQ];
	int nreqs;
	int req_of_slot[8];
	char log[4096];   /* "+key=data@shard/seq " acked, "!key=data:reason " failed */
	int fail_after;   /* script state */
	int hold;         /* requests stay in flight, unanswered, while set */
};

static int64_t fake_now(void *ud)
{
	return ((fake *)ud)->now;
}

static void *fake_open(const ks_http_transport_opts *o, ks_errbuf *err)
{
	CU_ASSERT_PTR_NOT_NULL(o->ud);
	CU_ASSERT_TRUE(o->slots <= 9); /* eight requests, and ListShards */
	return o->ud;
}

static void on_user_record(void *ud, const char *pkey, size_t pkey_len, const void *data, size_t len)
{
	seen_entry *e = ud;

	if (e->nrecs < MAXENT)
		snprintf(e->recs[e->nrecs++], sizeof(e->recs[0]), "%.*s=%.*s", (int)pkey_len, pkey, (int)len,
			 (const char *)data);
}

static int fake_start(void *t, int slot, const char *const *headers, const void *body, size_t len,
		      ks_errbuf *err)
{
	fake *f = t;
	json_t *root = json_loadb(body, len, 0, NULL), *recs = json_object_get(root, "Records"), *r;
	seen_req *rq = &f->reqs[f->nreqs];
	static unsigned char data[1 << 20];
	int auth = 0, i;
	size_t idx;

	CU_ASSERT_FATAL(f->nreqs < MAXREQ);
	for (i = 0; headers[i]; i++) {
		const char *cred = strstr(headers[i], "Credential=");

		auth |= strncmp(headers[i], "Authorization: AWS4-HMAC-SHA256 ", 32) == 0;
		if (cred && strncmp(headers[i], "Authorization: ", 15) == 0)
			sscanf(cred + 11, "%31[^/]", rq->akid);
	}
	CU_ASSERT_TRUE(auth);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(root, "StreamName")), "s1");
	rq->at = f->now;
	rq->n = (int)json_array_size(recs);
	json_array_foreach(recs, idx, r) {
		seen_entry *e = &rq->e[idx];
		const char *pkey = json_string_value(json_object_get(r, "PartitionKey"));
		size_t dlen = wu_unbase64(json_string_value(json_object_get(r, "Data")), data);

		snprintf(e->pkey, sizeof(e->pkey), "%s", pkey);
		if (ks_kpl_decode(data, dlen, on_user_record, e) < 0)
			on_user_record(e, pkey, strlen(pkey), data, dlen);
	}
	json_decref(root);
	f->req_of_slot[slot] = f->nreqs++;
	f->pending[f->npending++] = slot;
	return 0;
}

/* Every request is answered at once; with none in flight the writer's wait passes on the clock. */
static void fake_poll(void *t, int timeout_ms, int wake_fd, void (*done)(void *ud, const ks_http_answer *a),
		      void *ud)
{
	fake *f = t;
	int i;

	if (!f->npending || f->hold) {
		f->now += timeout_ms;
		return;
	}
	for (i = 0; i < f->npending; i++) {
		int slot = f->pending[i], n = f->req_of_slot[slot];
		ks_http_answer a = { 0 };
		ks_buf body;

		ks_buf_init(&body, 0);
		a.slot = slot;
		a.status = f->script(f, n, &f->reqs[n], &body);
		a.error = a.status ? NULL : "Couldn't connect to server";
		a.body = body.data;
		a.body_len = body.len;
		a.request_id = "req-1";
		done(ud, &a);
		ks_buf_clean(&body);
	}
	f->npending = 0;
}

static void fake_close(void *t)
{
}

static const ks_http_transport fake_transport = { fake_open, fake_start, fake_poll, fake_close };

static void on_acked(void *opaque, ks_record *rec, const char *shard, const char *seq)
{
	fake *f = opaque;
	size_t l = strlen(f->log);

	snprintf(f->log + l, sizeof(f->log) - l, "+%s=%.*s@%s/%s ", rec->pkey, (int)rec->data_len,
		 (const char *)rec->data, shard, seq);
}

static void on_failed(void *opaque, ks_record *rec, const ks_errbuf *err)
{
	fake *f = opaque;
	size_t l = strlen(f->log);

	snprintf(f->log + l, sizeof(f->log) - l, "!%s=%.*s:%s ", rec->pkey, (int)rec->data_len,
		 (const char *)rec->data, err->reason);
}

static void on_dropped(void *opaque, ks_record *rec)
{
	fake *f = opaque;
	size_t l = strlen(f->log);

	snprintf(f->log + l, sizeof(f->log) - l, "-%s=%.*s ", rec->pkey, (int)rec->data_len, (const char *)rec->data);
}

/*
 * An answer accepting every entry but those whose user records include @p fail ("key=data"),
 * with its failure count written after @p count_member. One that accepts all in AWS's layout
 * takes the writer's fast path, which reads no shard ids ("@/" in the log); otherwise the
 * accepted entries' shard ids and sequence numbers reach the callback.
 */
static long answer_laid_out(const seen_req *rq, const char *fail, const char *code, const char *count_member,
			    ks_buf *out)
{
	int i, j, failed = 0;

	ks_buf_puts(out, "{\"Records\":[");
	for (i = 0; i < rq->n; i++) {
		int bad = 0;

		for (j = 0; fail && j < rq->e[i].nrecs; j++)
			bad |= strcmp(rq->e[i].recs[j], fail) == 0;
		if (i)
			ks_buf_puts(out, ",");
		if (bad) {
			failed++;
			ks_buf_printf(out, "{\"ErrorCode\":\"%s\",\"ErrorMessage\":\"no\"}", code);
		} else {
			ks_buf_printf(out, "{\"SequenceNumber\":\"%d\",\"ShardId\":\"shardId-%d\"}", 100 + i, i);
		}
	}
	ks_buf_printf(out, "],%s%d}", count_member, failed);
	return 200;
}

static long answer_entries(const seen_req *rq, const char *fail, const char *code, ks_buf *out)
{
	return answer_laid_out(rq, fail, code, "\"FailedRecordCount\":", out);
}

typedef struct writer {
	ks_conf conf;
	ks_creds_t *creds;
	ks_metrics m;
	ks_kinesis_t *k;
	fake f;
} writer;

/* A writer whose credentials come from the environment (AWS_ACCESS_KEY_ID) when @p env_keys. */
static void writer_open_keys(writer *w, script_fn script, const char *const *props, int env_keys)
{
	static const char *const base[] = { "batch.linger.ms", "0", "retry.backoff.ms", "100", "retry.backoff.max.ms",
					    "300", NULL };
	ks_kinesis_cbs cbs = { on_acked, on_failed, &w->f, on_dropped };
	ks_kinesis_io io = { &fake_transport, &w->f, fake_now, &w->f, 0x9e3779b97f4a7c15ULL };
	ks_errbuf err;
	int i;

	memset(w, 0, sizeof(*w));
	w->f.now = 1000000;
	w->f.script = script;
	wu_conf(&w->conf, base);
	for (i = 0; props && props[i]; i += 2)
		CU_ASSERT_EQUAL(ks_conf_set(&w->conf, props[i], props[i + 1], "t", 1, NULL), 0);
	if (env_keys) {
		free(w->conf.access_key_id);
		free(w->conf.secret_access_key);
		w->conf.access_key_id = w->conf.secret_access_key = NULL;
	}
	w->creds = ks_creds_new(&w->conf, &w->m, &err);
	w->k = ks_kinesis_new_io(&w->conf, w->creds, &w->m, &cbs, &io, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(w->k);
}

static void writer_open(writer *w, script_fn script, const char *const *props)
{
	writer_open_keys(w, script, props, 0);
}

static void submit(writer *w, const char *key, const char *data)
{
	ks_record *r = ks_record_new(key, strlen(key), data, strlen(data));
	ks_errbuf err;

	r->key_hash = ks_key_hash(key, strlen(key));
	CU_ASSERT_EQUAL(ks_kinesis_submit(w->k, r, &err), 0);
}

/* Poll until the writer holds nothing (or 200 rounds, or it stops). */
static void drain(writer *w)
{
	ks_errbuf err;
	int i;

	for (i = 0; i < 200 && ks_kinesis_inflight_records(w->k); i++) {
		int rc = ks_kinesis_poll(w->k, 1000, -1, &err);

		CU_ASSERT_EQUAL(rc, 0);
		if (rc) {
			fprintf(stderr, "writer stopped: %s\n", err.text);
			break;
		}
	}
	CU_ASSERT_EQUAL(ks_kinesis_inflight_records(w->k), 0);
	CU_ASSERT_EQUAL(ks_kinesis_inflight_bytes(w->k), 0);
}

static void writer_close(writer *w)
{
	if (CU_get_number_of_failures())
		fprintf(stderr, "log: %s\n", w->f.log);
	ks_kinesis_destroy(w->k);
	ks_creds_destroy(w->creds);
	ks_conf_clean(&w->conf);
}

/* The request's entries as "key=data|key=data,..." (aggregates' user records joined by '|'). */
static const char *entries(const seen_req *rq)
{
	static char s[2048];
	int i, j;

	s[0] = '\0';
	for (i = 0; i < rq->n; i++) {
		for (j = 0; j < rq->e[i].nrecs; j++)
			snprintf(s + strlen(s), sizeof(s) - strlen(s), "%s%s", j ? "|" : i ? "," : "", rq->e[i].recs[j]);
	}
	return s;
}

static long fail_b_once(fake *f, int i, const seen_req *rq, ks_buf *out)
{
	return answer_entries(rq, i == 0 ? "b=1" : NULL, "InternalFailure", out);
}

static void test_partial_failure_retries_only_failed(void)
{
	static const char *const props[] = { "ordering", "none", NULL };
	writer w;
	int64_t gap;

	writer_open(&w, fail_b_once, props);
	submit(&w, "a", "1");
	submit(&w, "b", "1");
	submit(&w, "c", "1");
	drain(&w);
	CU_ASSERT_EQUAL(w.f.nreqs, 2);
	CU_ASSERT_STRING_EQUAL(entries(&w.f.reqs[0]), "a=1,b=1,c=1");
	CU_ASSERT_STRING_EQUAL(entries(&w.f.reqs[1]), "b=1");
	CU_ASSERT_STRING_EQUAL(w.f.log, "+a=1@shardId-0/100 +c=1@shardId-2/102 +b=1@/ ");
	/* First retry: equal jitter over retry.backoff.ms, [50, 100] ms after the answer. */
	gap = w.f.reqs[1].at - w.f.reqs[0].at;
	CU_ASSERT_TRUE(gap >= 50 && gap <= 100);
	CU_ASSERT_EQUAL(w.m.records_retried, 1);
	CU_ASSERT_EQUAL(w.m.records_put_ok, 3);
	CU_ASSERT_EQUAL(w.m.records_put_failed[KS_PUTERR_INTERNAL], 1);
	writer_close(&w);
}

static long http_500_then_throttle(fake *f, int i, const seen_req *rq, ks_buf *out)
{
	if (i == 0) {
		ks_buf_puts(out, "{\"__type\":\"InternalFailure\"}");
		return 500;
	}
	if (i == 1) {
		ks_buf_puts(out, "{\"__type\":\"com.amazonaws.kinesis#ProvisionedThroughputExceededException\","
			    "\"message\":\"Rate exceeded\"}");
		return 400;
	}
	if (i == 2)
		return 0; /* no answer: the connection dropped */
	return answer_entries(rq, NULL, NULL, out);
}

static void test_whole_request_failures_resend_the_batch(void)
{
	/* Backoff 1 ms: jitter leaves 0, so the records stay together and go as one batch again. */
	static const char *const props[] = { "ordering", "none", "retry.backoff.ms", "1", "retry.backoff.max.ms", "1",
					     NULL };
	writer w;
	int i;

	writer_open(&w, http_500_then_throttle, props);
	submit(&w, "a", "1");
	submit(&w, "b", "1");
	drain(&w);
	CU_ASSERT_EQUAL(w.f.nreqs, 4);
	for (i = 0; i < w.f.nreqs; i++)
		CU_ASSERT_STRING_EQUAL(entries(&w.f.reqs[i]), "a=1,b=1");
	CU_ASSERT_STRING_EQUAL(w.f.log, "+a=1@/ +b=1@/ ");
	CU_ASSERT_EQUAL(w.m.records_put_failed[KS_PUTERR_HTTP_5XX], 2);
	CU_ASSERT_EQUAL(w.m.records_put_failed[KS_PUTERR_THROTTLED], 2);
	CU_ASSERT_EQUAL(w.m.records_put_failed[KS_PUTERR_NETWORK], 2);
	CU_ASSERT_EQUAL(w.m.records_throttled, 2);
	writer_close(&w);
}

static long throttle_b_five_times(fake *f, int i, const seen_req *rq, ks_buf *out)
{
	return answer_entries(rq, i < 5 ? "b=1" : NULL, "ProvisionedThroughputExceededException", out);
}

static void test_backoff_grows_to_its_maximum(void)
{
	/* backoff before jitter: 100, 100, 200, 300 (max), 300; jitter keeps [half, whole]. */
	static const int64_t lo[] = { 50, 50, 100, 150, 150 }, hi[] = { 100, 100, 200, 300, 300 };
	writer w;
	int i;

	writer_open(&w, throttle_b_five_times, NULL);
	submit(&w, "b", "1");
	drain(&w);
	CU_ASSERT_EQUAL_FATAL(w.f.nreqs, 6);
	for (i = 1; i < 6; i++) {
		int64_t gap = w.f.reqs[i].at - w.f.reqs[i - 1].at;

		CU_ASSERT_TRUE(gap >= lo[i - 1] && gap <= hi[i - 1]);
		if (gap < lo[i - 1] || gap > hi[i - 1])
			fprintf(stderr, "retry %d after %lld ms\n", i, (long long)gap);
	}
	CU_ASSERT_EQUAL(w.m.records_throttled, 5);
	CU_ASSERT_STRING_EQUAL(w.f.log, "+b=1@/ ");
	writer_close(&w);
}

static long fail_a1_once(fake *f, int i, const seen_req *rq, ks_buf *out)
{
	return answer_entries(rq, i == 0 ? "a=1" : NULL, "ProvisionedThroughputExceededException", out);
}

static void test_key_order_holds_across_a_retry(void)
{
	writer w;

	writer_open(&w, fail_a1_once, NULL); /* ordering=key is the default */
	submit(&w, "a", "1");
	submit(&w, "a", "2");
	submit(&w, "b", "1");
	CU_ASSERT_EQUAL(ks_kinesis_inflight_records(w.k), 3);
	drain(&w);
	CU_ASSERT_EQUAL(w.f.nreqs, 3);
	/* a=2 waits behind a=1, through a=1's retry, and goes only once a=1 was accepted. */
	CU_ASSERT_STRING_EQUAL(entries(&w.f.reqs[0]), "a=1,b=1");
	CU_ASSERT_STRING_EQUAL(entries(&w.f.reqs[1]), "a=1");
	CU_ASSERT_STRING_EQUAL(entries(&w.f.reqs[2]), "a=2");
	CU_ASSERT_STRING_EQUAL(w.f.log, "+b=1@shardId-1/101 +a=1@/ +a=2@/ ");
	writer_close(&w);
}

static long fail_aggregate_once(fake *f, int i, const seen_req *rq, ks_buf *out)
{
	/* The second answer in another layout, parsed in full: the aggregate's shard id and
	 * sequence number reach each of its records. */
	if (i == 1)
		return answer_laid_out(rq, NULL, NULL, "\"FailedRecordCount\": ", out);
	return answer_entries(rq, i == 0 ? "a=2" : NULL, "InternalFailure", out);
}

static void test_aggregate_is_acknowledged_whole(void)
{
	static const char *const props[] = { "aggregation", "kpl", NULL };
	writer w;

	writer_open(&w, fail_aggregate_once, props);
	submit(&w, "a", "1");
	submit(&w, "a", "2");
	submit(&w, "b", "1");
	submit(&w, "a", "3");
	drain(&w);
	CU_ASSERT_EQUAL(w.f.nreqs, 2);
	/* One aggregate for key a in Kafka order, b alone as it is; the failed aggregate goes again
	 * as it was, and its three records are acknowledged together with its sequence number. */
	CU_ASSERT_STRING_EQUAL(entries(&w.f.reqs[0]), "a=1|a=2|a=3,b=1");
	CU_ASSERT_STRING_EQUAL(w.f.reqs[0].e[0].pkey, "a");
	CU_ASSERT_STRING_EQUAL(entries(&w.f.reqs[1]), "a=1|a=2|a=3");
	CU_ASSERT_STRING_EQUAL(w.f.log,
			       "+b=1@shardId-1/101 +a=1@shardId-0/100 +a=2@shardId-0/100 +a=3@shardId-0/100 ");
	CU_ASSERT_EQUAL(w.m.records_put_failed[KS_PUTERR_INTERNAL], 3);
	CU_ASSERT_EQUAL(w.m.records_put_ok, 4);
	writer_close(&w);
}

static long always_throttle(fake *f, int i, const seen_req *rq, ks_buf *out)
{
	return answer_entries(rq, "a=1", "ProvisionedThroughputExceededException", out);
}

static void test_delivery_timeout_fails_the_record(void)
{
	static const char *const props[] = { "delivery.timeout.ms", "1000", NULL };
	writer w;
	ks_errbuf err;
	int i;

	writer_open(&w, always_throttle, props);
	submit(&w, "a", "1");
	submit(&w, "a", "2");
	for (i = 0; i < 200 && ks_kinesis_inflight_records(w.k) == 2; i++)
		CU_ASSERT_EQUAL(ks_kinesis_poll(w.k, 1000, -1, &err), 0);
	/* Failed once delivery.timeout.ms passed on the clock, not before; a=2 goes on. */
	CU_ASSERT_STRING_EQUAL(w.f.log, "!a=1:delivery_timeout ");
	CU_ASSERT_TRUE(w.f.reqs[w.f.nreqs - 1].at - w.f.reqs[0].at >= 1000 - 300);
	CU_ASSERT_TRUE(w.f.now - 1000000 >= 1000);
	drain(&w);
	CU_ASSERT_STRING_EQUAL(w.f.log, "!a=1:delivery_timeout +a=2@/ ");
	writer_close(&w);
}

static long forbidden(fake *f, int i, const seen_req *rq, ks_buf *out)
{
	ks_buf_puts(out, "{\"__type\":\"AccessDeniedException\",\"Message\":\"not allowed\"}");
	return 400;
}

static void test_permanent_error_is_fatal(void)
{
	writer w;
	ks_errbuf err;
	int i, rc = 0;

	writer_open(&w, forbidden, NULL);
	submit(&w, "a", "1");
	for (i = 0; i < 10 && !rc; i++)
		rc = ks_kinesis_poll(w.k, 1000, -1, &err);
	CU_ASSERT_EQUAL(rc, KS_ERR_FATAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "HTTP 400 AccessDeniedException: not allowed (AWS request id req-1)"));
	CU_ASSERT_EQUAL(w.f.nreqs, 1);
	/* Nothing acknowledged: the record stays held (its offset is never committed). */
	CU_ASSERT_STRING_EQUAL(w.f.log, "");
	CU_ASSERT_EQUAL(ks_kinesis_inflight_records(w.k), 1);
	writer_close(&w);
}

static long expired_twice(fake *f, int i, const seen_req *rq, ks_buf *out)
{
	ks_buf_puts(out, "{\"__type\":\"ExpiredTokenException\",\"message\":\"The security token included in the request is expired\"}");
	return 400;
}

static void test_expired_token_refreshes_once(void)
{
	writer w;
	ks_errbuf err;
	int i, rc = 0;

	writer_open(&w, expired_twice, NULL);
	submit(&w, "a", "1");
	for (i = 0; i < 20 && !rc; i++)
		rc = ks_kinesis_poll(w.k, 1000, -1, &err);
	/* The first expiry refreshes the credentials and sends again; a second in a row is fatal. */
	CU_ASSERT_EQUAL(rc, KS_ERR_FATAL);
	CU_ASSERT_EQUAL(w.f.nreqs, 2);
	CU_ASSERT_EQUAL(w.m.records_put_failed[KS_PUTERR_EXPIRED_TOKEN], 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "HTTP 400 ExpiredTokenException: The security token"));
	CU_ASSERT_STRING_EQUAL(w.f.log, "");
	writer_close(&w);
}

/*
 * The service refuses the keys AKIDOLD as expired and accepts AKIDNEW; the keys in the
 * environment change from the old to the new ones while the first requests are in flight.
 */
static long old_keys_expired(fake *f, int i, const seen_req *rq, ks_buf *out)
{
	setenv("AWS_ACCESS_KEY_ID", "AKIDNEW", 1);
	if (strcmp(rq->akid, "AKIDOLD") == 0)
		return expired_twice(f, i, rq, out);
	return answer_entries(rq, NULL, NULL, out);
}

static void test_expired_token_with_requests_in_flight(void)
{
	static const char *const props[] = { "ordering", "none", "batch.max.records", "1",
					     "max.inflight.requests", "2", NULL };
	writer w;
	int i;

	setenv("AWS_ACCESS_KEY_ID", "AKIDOLD", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_PROFILE");
	writer_open_keys(&w, old_keys_expired, props, 1);
	submit(&w, "a", "1");
	submit(&w, "b", "1");
	/* Both requests were signed with the old keys and both are refused: each is sent again,
	 * signed with the refreshed keys (the second refusal is of a request signed before the
	 * refresh, not a second expiry in a row). */
	drain(&w);
	CU_ASSERT_EQUAL(w.f.nreqs, 4);
	CU_ASSERT_STRING_EQUAL(w.f.reqs[0].akid, "AKIDOLD");
	CU_ASSERT_STRING_EQUAL(w.f.reqs[1].akid, "AKIDOLD");
	for (i = 2; i < w.f.nreqs; i++)
		CU_ASSERT_STRING_EQUAL(w.f.reqs[i].akid, "AKIDNEW");
	CU_ASSERT_EQUAL(w.m.records_put_failed[KS_PUTERR_EXPIRED_TOKEN], 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(w.f.log, "+a=1@"));
	CU_ASSERT_PTR_NOT_NULL(strstr(w.f.log, "+b=1@"));
	writer_close(&w);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
}

/* Two requests in flight refused, then their retries, signed with the refreshed keys, refused
 * again: that is fatal, with nothing acknowledged. */
static void test_expired_token_again_after_refresh_is_fatal(void)
{
	static const char *const props[] = { "ordering", "none", "batch.max.records", "1",
					     "max.inflight.requests", "2", NULL };
	writer w;
	ks_errbuf err;
	int i, rc = 0;

	writer_open(&w, expired_twice, props);
	submit(&w, "a", "1");
	submit(&w, "b", "1");
	for (i = 0; i < 20 && !rc; i++)
		rc = ks_kinesis_poll(w.k, 1000, -1, &err);
	CU_ASSERT_EQUAL(rc, KS_ERR_FATAL);
	/* Both sent again (their backoffs differ: the second may not have gone before the stop). */
	CU_ASSERT_TRUE(w.f.nreqs >= 3);
	CU_ASSERT_STRING_EQUAL(w.f.log, "");
	CU_ASSERT_EQUAL(ks_kinesis_inflight_records(w.k), 2);
	writer_close(&w);
}

/* ---- per-record limits --------------------------------------------------------------------- */

static int validate_key(const char *unit, int times)
{
	char key[2048] = "";
	ks_record *r;
	ks_errbuf err;
	int i, rc;

	for (i = 0; i < times; i++)
		strcat(key, unit);
	r = ks_record_new(key, strlen(key), "x", 1);
	rc = ks_kinesis_validate(r, &err);
	if (rc)
		CU_ASSERT_STRING_EQUAL(err.reason, "bad_key");
	ks_record_destroy(r);
	return rc;
}

static void test_key_limit_counts_characters(void)
{
	CU_ASSERT_EQUAL(validate_key("a", 256), 0);
	CU_ASSERT_EQUAL(validate_key("a", 257), KS_ERR_BADREC);
	CU_ASSERT_EQUAL(validate_key("a", 0), KS_ERR_BADREC);
	/* 200 two-byte characters: 400 bytes, a valid key. */
	CU_ASSERT_EQUAL(validate_key("\xc3\xa9", 200), 0);
	CU_ASSERT_EQUAL(validate_key("\xc3\xa9", 256), 0);
	CU_ASSERT_EQUAL(validate_key("\xc3\xa9", 257), KS_ERR_BADREC);
	/* three- and four-byte characters */
	CU_ASSERT_EQUAL(validate_key("\xe6\x97\xa5", 256), 0);
	/* outside the Basic Multilingual Plane: two UTF-16 units each, as the service counts */
	CU_ASSERT_EQUAL(validate_key("\xf0\x9f\x98\x80", 128), 0);
	CU_ASSERT_EQUAL(validate_key("\xf0\x9f\x98\x80", 129), KS_ERR_BADREC);
}

static void test_record_size_limit(void)
{
	static char data[1024 * 1024];
	ks_record *r = ks_record_new("k", 1, data, sizeof(data) - 1);
	ks_errbuf err;

	CU_ASSERT_EQUAL(ks_kinesis_validate(r, &err), 0);
	ks_record_destroy(r);
	r = ks_record_new("k", 1, data, sizeof(data));
	CU_ASSERT_EQUAL(ks_kinesis_validate(r, &err), KS_ERR_BADREC);
	CU_ASSERT_STRING_EQUAL(err.reason, "too_large");
	ks_record_destroy(r);
}

/*
 * ordering=key under a transport that answers its requests in any order, with failed entries
 * and failed requests: at every request started, no key of it is in flight already (in this
 * request or another), and each key's records are acknowledged in the order they were submitted.
 */
#define SKEYS 7
#define SENTRIES 16

typedef struct stress {
	int64_t now;
	uint64_t rng;
	int hold;                            /* answer nothing while set */
	int pending[8], npending;
	int key[8][SENTRIES], seq[8][SENTRIES], n[8];  /* per slot: its entries */
	int inflight[SKEYS];                 /* records of each key in flight now */
	int next_ack[SKEYS];                 /* sequence number the key's next acknowledgement carries */
	int starts, twice, out_of_order, entries_failed, requests_failed, failed_cb, max_fill;
	char reqlog[8][64];                  /* the first requests as "k0=0,k3=1" */
} stress;

static uint64_t stress_rnd(stress *s)
{
	s->rng ^= s->rng << 13;
	s->rng ^= s->rng >> 7;
	s->rng ^= s->rng << 17;
	return s->rng;
}

static int64_t stress_now(void *ud)
{
	return ((stress *)ud)->now;
}

static void *stress_open(const ks_http_transport_opts *o, ks_errbuf *err)
{
	CU_ASSERT_TRUE(o->slots <= 9); /* eight requests, and ListShards */
	return o->ud;
}

static int stress_start(void *t, int slot, const char *const *headers, const void *body, size_t len,
			ks_errbuf *err)
{
	stress *s = t;
	json_t *root = json_loadb(body, len, 0, NULL), *r;
	char *log = s->starts < 8 ? s->reqlog[s->starts] : NULL;
	unsigned char data[64];
	size_t idx;

	s->n[slot] = 0;
	json_array_foreach(json_object_get(root, "Records"), idx, r) {
		const char *pkey = json_string_value(json_object_get(r, "PartitionKey"));
		const char *b64 = json_string_value(json_object_get(r, "Data"));
		int k = pkey[1] - '0', n = s->n[slot]++;

		CU_ASSERT_FATAL(n < SENTRIES && strlen(b64) < 40);
		data[wu_unbase64(b64, data)] = '\0';
		/* The rule: never two records of one key in flight at once. */
		if (s->inflight[k]++)
			s->twice++;
		s->key[slot][n] = k;
		s->seq[slot][n] = atoi((const char *)data);
		if (log)
			snprintf(log + strlen(log), 64 - strlen(log), "%sk%d=%d", n ? "," : "", k, s->seq[slot][n]);
	}
	if (s->n[slot] > s->max_fill)
		s->max_fill = s->n[slot];
	json_decref(root);
	s->starts++;
	s->pending[s->npending++] = slot;
	return 0;
}

/* Answers one pending request, chosen at random (or none yet, half the time while requests could
 * still start): a 500 now and then, else some entries failed. */
static void stress_poll(void *t, int timeout_ms, int wake_fd, void (*done)(void *ud, const ks_http_answer *a),
			void *ud)
{
	stress *s = t;
	ks_http_answer a = { 0 };
	ks_buf body;
	int j, i, slot, failed = 0;

	if (!s->npending || s->hold) {
		s->now += timeout_ms;
		return;
	}
	s->now += 1;
	/* Half the time nothing is answered yet while slots are free, so that requests overlap. */
	if (s->npending < 4 && stress_rnd(s) % 2)
		return;
	j = (int)(stress_rnd(s) % (uint64_t)s->npending);
	s->out_of_order += j > 0;
	slot = s->pending[j];
	s->pending[j] = s->pending[--s->npending];
	for (i = 0; i < s->n[slot]; i++)
		s->inflight[s->key[slot][i]]--;
	ks_buf_init(&body, 0);
	a.slot = slot;
	a.request_id = "req-1";
	if (stress_rnd(s) % 10 == 0) {
		s->requests_failed++;
		a.status = 500;
		ks_buf_puts(&body, "{\"__type\":\"InternalFailure\",\"message\":\"no\"}");
	} else {
		a.status = 200;
		ks_buf_puts(&body, "{\"Records\":[");
		for (i = 0; i < s->n[slot]; i++) {
			if (stress_rnd(s) % 4 == 0) {
				failed++;
				ks_buf_printf(&body, "%s{\"ErrorCode\":\"ProvisionedThroughputExceededException\",\"ErrorMessage\":\"no\"}",
					      i ? "," : "");
			} else {
				ks_buf_printf(&body, "%s{\"SequenceNumber\":\"%d\",\"ShardId\":\"shardId-0\"}", i ? "," : "", i);
			}
		}
		ks_buf_printf(&body, "],\"FailedRecordCount\":%d}", failed);
		s->entries_failed += failed;
	}
	a.body = body.data;
	a.body_len = body.len;
	done(ud, &a);
	ks_buf_clean(&body);
}

static void stress_close(void *t)
{
}

static const ks_http_transport stress_transport = { stress_open, stress_start, stress_poll, stress_close };

static void stress_acked(void *opaque, ks_record *rec, const char *shard, const char *seq)
{
	stress *s = opaque;
	int k = rec->pkey[1] - '0';
	char data[16];

	snprintf(data, sizeof(data), "%.*s", (int)rec->data_len, (const char *)rec->data); /* not NUL-terminated */
	CU_ASSERT_EQUAL(atoi(data), s->next_ack[k]);
	s->next_ack[k]++;
}

static void stress_failed(void *opaque, ks_record *rec, const ks_errbuf *err)
{
	((stress *)opaque)->failed_cb++;
}

typedef struct stress_writer {
	ks_conf conf;
	ks_creds_t *creds;
	ks_metrics m;
	ks_kinesis_t *k;
	stress s;
	int submitted[SKEYS];
} stress_writer;

static void stress_writer_open(stress_writer *w)
{
	static const char *const props[] = { "batch.linger.ms", "0", "batch.max.records", "5", "max.inflight.requests", "4",
		"retry.backoff.ms", "10", "retry.backoff.max.ms", "40", NULL };
	ks_kinesis_cbs cbs = { stress_acked, stress_failed, &w->s, NULL };
	/* A fixed jitter seed: the run, and what it asserts, are the same every time. */
	ks_kinesis_io io = { &stress_transport, &w->s, stress_now, &w->s, 0x9e3779b97f4a7c15ULL };
	ks_errbuf err;

	memset(w, 0, sizeof(*w));
	w->s.now = 1000000;
	w->s.rng = 88172645463325252ULL;
	wu_conf(&w->conf, props);
	w->creds = ks_creds_new(&w->conf, &w->m, &err);
	w->k = ks_kinesis_new_io(&w->conf, w->creds, &w->m, &cbs, &io, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(w->k);
}

static void stress_submit(stress_writer *w, int k)
{
	char key[8], data[16];
	ks_record *r;
	ks_errbuf err;

	snprintf(key, sizeof(key), "k%d", k);
	snprintf(data, sizeof(data), "%d", w->submitted[k]++);
	r = ks_record_new(key, strlen(key), data, strlen(data));
	CU_ASSERT_EQUAL(ks_kinesis_submit(w->k, r, &err), 0);
}

/* Poll until nothing is held; every key acknowledged all its records, in order, each once. */
static void stress_writer_finish(stress_writer *w)
{
	ks_errbuf err;
	int i;

	for (i = 0; i < 100000 && ks_kinesis_inflight_records(w->k); i++)
		CU_ASSERT_EQUAL_FATAL(ks_kinesis_poll(w->k, 1000, -1, &err), 0);
	CU_ASSERT_EQUAL(ks_kinesis_inflight_records(w->k), 0);
	for (i = 0; i < SKEYS; i++)
		CU_ASSERT_EQUAL(w->s.next_ack[i], w->submitted[i]);
	CU_ASSERT_EQUAL(w->s.twice, 0);
	CU_ASSERT_EQUAL(w->s.failed_cb, 0);
	ks_kinesis_destroy(w->k);
	ks_creds_destroy(w->creds);
	ks_conf_clean(&w->conf);
}

static void test_key_never_twice_in_flight(void)
{
	stress_writer w;
	ks_errbuf err;
	int i, j;

	stress_writer_open(&w);
	/* Bursts of records of few keys (so keys are often busy), between polls. */
	for (i = 0; i < 300; i++) {
		for (j = 0; j < 8; j++)
			stress_submit(&w, (int)(stress_rnd(&w.s) % SKEYS));
		CU_ASSERT_EQUAL_FATAL(ks_kinesis_poll(w.k, 1000, -1, &err), 0);
	}
	stress_writer_finish(&w);
	/* Not vacuous: answers came out of order, entries and whole requests failed, and requests
	 * held several keys at once. */
	CU_ASSERT_TRUE(w.s.out_of_order > 500);
	CU_ASSERT_TRUE(w.s.entries_failed > 300);
	CU_ASSERT_TRUE(w.s.requests_failed > 50);
	CU_ASSERT_EQUAL(w.s.max_fill, 5);
}

static void test_other_keys_go_while_one_is_in_flight(void)
{
	stress_writer w;
	ks_errbuf err;

	stress_writer_open(&w);
	w.s.hold = 1;
	w.s.rng = 3; /* the first answer accepts every entry */
	stress_submit(&w, 0);
	CU_ASSERT_EQUAL(ks_kinesis_poll(w.k, 1000, -1, &err), 0);
	stress_submit(&w, 0);
	stress_submit(&w, 1);
	stress_submit(&w, 2);
	CU_ASSERT_EQUAL(ks_kinesis_poll(w.k, 1000, -1, &err), 0);
	/* k0=1 waits for k0=0's answer; the free slot does not wait for it, it takes k1 and k2. */
	CU_ASSERT_EQUAL(w.s.starts, 2);
	CU_ASSERT_STRING_EQUAL(w.s.reqlog[0], "k0=0");
	CU_ASSERT_STRING_EQUAL(w.s.reqlog[1], "k1=0,k2=0");
	w.s.hold = 0;
	stress_writer_finish(&w);
	CU_ASSERT_TRUE(w.s.starts >= 3);
}

/* The records of "partition A" (revoked): their data starts with 'A'. */
static int of_a(void *ud, const ks_record *rec)
{
	(void)ud;
	return rec->data_len && rec->data[0] == 'A';
}

static long throttle_first(fake *f, int i, const seen_req *rq, ks_buf *out)
{
	if (i == 0) {
		ks_buf_puts(out, "{\"__type\":\"ProvisionedThroughputExceededException\",\"message\":\"Rate exceeded\"}");
		return 400;
	}
	return answer_entries(rq, NULL, NULL, out);
}

/*
 * Partition A is revoked while an aggregate holding one of its records (x=A1, gathered with x=B2
 * of another partition) is in flight, another of its records waits in the gate behind y=B1 and a
 * third in the ready queue. Those not sent are dropped at once; the one in flight, throttled, is
 * dropped instead of retried, and its key goes on with the record that shared its aggregate. No
 * record of A is sent after the revoke, the other records go in their order.
 */
static void test_revoked_partition_not_sent(void)
{
	static const char *const props[] = { "aggregation", "kpl", "max.inflight.requests", "1", NULL };
	writer w;
	ks_errbuf err;
	int i, j, first_after;

	writer_open(&w, throttle_first, props);
	w.f.hold = 1;
	submit(&w, "x", "A1");
	submit(&w, "x", "B2");
	submit(&w, "y", "B1");
	CU_ASSERT_EQUAL(ks_kinesis_poll(w.k, 0, -1, &err), 0);
	CU_ASSERT_EQUAL_FATAL(w.f.nreqs, 1);
	CU_ASSERT_STRING_EQUAL(entries(&w.f.reqs[0]), "x=A1|x=B2,y=B1");
	submit(&w, "x", "B3");
	submit(&w, "y", "A2");
	submit(&w, "y", "B3");
	submit(&w, "z", "A1");
	submit(&w, "v", "B1");
	CU_ASSERT_EQUAL(ks_kinesis_poll(w.k, 0, -1, &err), 0);
	CU_ASSERT_EQUAL(ks_kinesis_inflight_records(w.k), 8);
	/* y=A2 waits in the gate, z=A1 in the ready queue: dropped; x=A1 is in flight. */
	CU_ASSERT_EQUAL(ks_kinesis_revoke(w.k, of_a, NULL), 1);
	CU_ASSERT_EQUAL(ks_kinesis_revoked_inflight(w.k), 1);
	CU_ASSERT_STRING_EQUAL(w.f.log, "-y=A2 -z=A1 ");
	CU_ASSERT_EQUAL(ks_kinesis_inflight_records(w.k), 6);
	first_after = w.f.nreqs;
	w.f.hold = 0;
	drain(&w);
	CU_ASSERT_EQUAL(ks_kinesis_revoked_inflight(w.k), 0);
	/* Each key's kept records in their order (x=B2 retried alone, then x=B3). */
	CU_ASSERT_STRING_EQUAL(w.f.log, "-y=A2 -z=A1 -x=A1 +v=B1@/ +y=B1@/ +y=B3@/ +x=B2@/ +x=B3@/ ");
	for (i = first_after; i < w.f.nreqs; i++)
		for (j = 0; j < w.f.reqs[i].n; j++)
			CU_ASSERT_PTR_NULL(strstr(w.f.reqs[i].e[j].recs[0], "=A"));
	writer_close(&w);
}

/* Records waiting for their retry when their partition is revoked are dropped from there. */
static void test_revoked_partition_left_the_retry_queue(void)
{
	static const char *const props[] = { "ordering", "none", NULL };
	writer w;
	ks_errbuf err;

	writer_open(&w, throttle_first, props);
	submit(&w, "p", "A1");
	submit(&w, "q", "B1");
	CU_ASSERT_EQUAL(ks_kinesis_poll(w.k, 0, -1, &err), 0);
	CU_ASSERT_EQUAL(w.f.nreqs, 1);
	CU_ASSERT_EQUAL(w.m.records_retried, 2);
	CU_ASSERT_EQUAL(ks_kinesis_revoke(w.k, of_a, NULL), 0);
	CU_ASSERT_STRING_EQUAL(w.f.log, "-p=A1 ");
	drain(&w);
	CU_ASSERT_EQUAL(w.f.nreqs, 2);
	CU_ASSERT_STRING_EQUAL(entries(&w.f.reqs[1]), "q=B1");
	CU_ASSERT_STRING_EQUAL(w.f.log, "-p=A1 +q=B1@/ ");
	writer_close(&w);
}

int main(void)
{
	static const tu_test tests[] = {
		{ "a partial failure sends only the failed entries again", test_partial_failure_retries_only_failed },
		{ "5xx, throttling and a dropped connection resend the batch", test_whole_request_failures_resend_the_batch },
		{ "backoff grows to retry.backoff.max.ms", test_backoff_grows_to_its_maximum },
		{ "a key's order holds across a retry", test_key_order_holds_across_a_retry },
		{ "an aggregate is sent, retried and acknowledged whole", test_aggregate_is_acknowledged_whole },
		{ "delivery.timeout.ms fails a record by the clock", test_delivery_timeout_fails_the_record },
		{ "a permanent error is fatal and acknowledges nothing", test_permanent_error_is_fatal },
		{ "an expired token is refreshed once, then fatal", test_expired_token_refreshes_once },
		{ "an expired token with two requests in flight: both sent again with fresh keys",
		  test_expired_token_with_requests_in_flight },
		{ "requests signed with the refreshed keys refused again: fatal",
		  test_expired_token_again_after_refresh_is_fatal },
		{ "the partition key limit counts Unicode characters", test_key_limit_counts_characters },
		{ "the record size limit", test_record_size_limit },
		{ "ordering=key: no key twice in flight, answers out of order", test_key_never_twice_in_flight },
		{ "ordering=key: other keys go while one is in flight", test_other_keys_go_while_one_is_in_flight },
		{ "a revoked partition's records are not sent, in flight or not", test_revoked_partition_not_sent },
		{ "a revoked partition's records leave the retry queue", test_revoked_partition_left_the_retry_queue },
		{ NULL, NULL },
	};

	return tu_main("kinesis writer", tests);
}
