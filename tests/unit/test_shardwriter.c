/*
 * The shard-aware writer, driven through its seams: a fake service with shards (hash-key ranges,
 * routing by ExplicitHashKey or MD5 of the partition key, ListShards, per-shard token buckets as
 * the service enforces them, a split at a moment the test picks) and a fake clock that moves only
 * when the writer waits. What the fake stores is read as a KCL consumer reads it: an aggregate's
 * user records whose key hashes outside the shard's range are dropped. So the tests check what
 * a consumer sees (every record once, each key in order), not only what the writer sent.
 */
#include <jansson.h>
#include <openssl/evp.h>
#include <string.h>
#include <unistd.h>

#include "kinesis.h"
#include "kpl.h"
#include "writerutil.h"

#define MAXSHARDS 8
#define MAXSEEN 20000

typedef struct fshard {
	char id[32];
	ks_u128 start, end;
	int open;
	double rec_tokens, byte_tokens;  /* the service's buckets (limits on) */
	int64_t last_ms;
} fshard;

/* A user record a consumer of shard `shard` sees, in the order stored. */
typedef struct seen {
	int shard;
	char rec[48];
} seen;

typedef struct fake {
	int64_t now;
	fshard sh[MAXSHARDS];
	int nsh;
	int limits;                 /* enforce 1,000 records/s and 1 MiB/s per shard */
	int lists_refused;          /* ListShards calls still to answer with AccessDeniedException */
	int pending[16], npending;
	ks_buf bodies[16];
	int is_list[16];
	seen seen[MAXSEEN];
	int nseen;
	int dropped;                /* user records a KCL consumer would drop (outside the range) */
	int entries, aggregates, user_in_aggs, throttled, lists, requests;
	int list_calls;             /* ListShards requests, answered or refused */
	int describes;              /* DescribeStreamSummary requests */
	int auto_distribution;      /* the stream ignores keys: a shard at random, DescribeStreamSummary says AUTO */
	uint64_t rng;
	int ehk_outside_predicted;  /* aggregates whose hash key is not in the shard they landed in */
	int max_records_per_s;      /* most records one shard accepted within any 1,000 ms (limits on) */
	int64_t acc_at[MAXSHARDS][4096];
	int nacc[MAXSHARDS];
	char log[1 << 16];          /* "+key=data " acknowledged */
	int acked;
	int hold;                   /* PutRecords requests stay in flight, unanswered, while set */
	int late;                   /* PutRecords processed when sent, answered when polled (and not held) */
	int reverse;                /* requests answered in the reverse order of their sending */
	int max_pending;            /* most requests in flight at once */
	ks_buf answers[16];         /* late: the answer of each slot's request */
	int throttle_all;           /* the next requests answered: every entry throttled */
	int revoked;                /* partition A was revoked: requests started since must not hold its records */
	int after_revoke[16];       /* per slot: started after the revoke */
	int revoked_sent;           /* records of partition A (keys "a...") stored from such requests */
	int dropped_a, dropped_b, acked_a;
} fake;

static ks_u128 u128_of(const char *s)
{
	ks_u128 v = 0;

	CU_ASSERT_EQUAL(ks_u128_parse(s, strlen(s), &v), 0);
	return v;
}

static void shard_set(fake *f, int i, const char *id, ks_u128 start, ks_u128 end)
{
	snprintf(f->sh[i].id, sizeof(f->sh[i].id), "%s", id);
	f->sh[i].start = start;
	f->sh[i].end = end;
	f->sh[i].open = 1;
	f->sh[i].rec_tokens = 1000;
	f->sh[i].byte_tokens = 1048576;
	f->sh[i].last_ms = f->now;
	if (i >= f->nsh)
		f->nsh = i + 1;
}

/* @p n shards of equal ranges, as CreateStream makes them. */
static void shards_even(fake *f, int n)
{
	ks_u128 step = KS_U128_MAX / (ks_u128)n;
	int i;

	for (i = 0; i < n; i++) {
		char id[32];

		snprintf(id, sizeof(id), "shardId-%012d", i);
		shard_set(f, i, id, step * (ks_u128)i, i == n - 1 ? KS_U128_MAX : step * (ks_u128)(i + 1) - 1);
	}
}

/* SplitShard of shard @p i at its middle: two children, the parent closed. */
static void split(fake *f, int i)
{
	ks_u128 mid = f->sh[i].start + (f->sh[i].end - f->sh[i].start) / 2;
	char a[32], b[32];

	snprintf(a, sizeof(a), "shardId-%012d", f->nsh);
	snprintf(b, sizeof(b), "shardId-%012d", f->nsh + 1);
	f->sh[i].open = 0;
	shard_set(f, f->nsh, a, f->sh[i].start, mid);
	shard_set(f, f->nsh, b, mid + 1, f->sh[i].end);
}

/* MergeShards of shards @p i and @p j (adjacent, i below j): one child, both parents closed. */
static void merge(fake *f, int i, int j)
{
	char c[32];

	snprintf(c, sizeof(c), "shardId-%012d", f->nsh);
	f->sh[i].open = 0;
	f->sh[j].open = 0;
	shard_set(f, f->nsh, c, f->sh[i].start, f->sh[j].end);
}

static int route(const fake *f, ks_u128 h)
{
	int i;

	for (i = 0; i < f->nsh; i++)
		if (f->sh[i].open && h >= f->sh[i].start && h <= f->sh[i].end)
			return i;
	return -1;
}

/* The service's buckets: take one record of @p bytes, or say it is throttled. */
static int take(fake *f, fshard *s, size_t bytes)
{
	double dt = (double)(f->now - s->last_ms) / 1000.0;

	s->last_ms = f->now;
	s->rec_tokens = s->rec_tokens + dt * 1000 > 1000 ? 1000 : s->rec_tokens + dt * 1000;
	s->byte_tokens = s->byte_tokens + dt * 1048576 > 1048576 ? 1048576 : s->byte_tokens + dt * 1048576;
	if (s->rec_tokens < 1 || s->byte_tokens < (double)bytes)
		return 0;
	s->rec_tokens -= 1;
	s->byte_tokens -= (double)bytes;
	return 1;
}

typedef struct store_ud {
	fake *f;
	int shard;
	int after_revoke;
	int alone;       /* a record alone: a consumer keeps it wherever it landed */
} store_ud;

static void store(void *ud, const char *pkey, size_t pkey_len, const void *data, size_t len)
{
	store_ud *u = ud;
	fake *f = u->f;
	ks_u128 h = ks_hash_key(pkey, pkey_len);

	/* The KCL rule: an aggregate's user record hashing outside the shard's range is dropped. */
	if (!u->alone && (h < f->sh[u->shard].start || h > f->sh[u->shard].end)) {
		f->dropped++;
		return;
	}
	CU_ASSERT_FATAL(f->nseen < MAXSEEN);
	if (u->after_revoke && (pkey[0] == 'a' || (pkey[0] == 'm' && len && *(const char *)data == '1')))
		f->revoked_sent++;
	f->seen[f->nseen].shard = u->shard;
	snprintf(f->seen[f->nseen++].rec, sizeof(f->seen[0].rec), "%.*s=%.*s", (int)pkey_len, pkey, (int)len,
		 (const char *)data);
}

static void answer_list(fake *f, ks_buf *out)
{
	int i, first = 1;

	f->lists++;
	ks_buf_puts(out, "{\"Shards\":[");
	for (i = 0; i < f->nsh; i++) {
		char a[KS_U128_STRLEN], b[KS_U128_STRLEN];

		if (!f->sh[i].open)
			continue;
		ks_u128_format(f->sh[i].start, a);
		ks_u128_format(f->sh[i].end, b);
		ks_buf_printf(out, "%s{\"ShardId\":\"%s\",\"HashKeyRange\":{\"StartingHashKey\":\"%s\",\"EndingHashKey\":\"%s\"},"
			      "\"SequenceNumberRange\":{\"StartingSequenceNumber\":\"1\"}}",
			      first ? "" : ",", f->sh[i].id, a, b);
		first = 0;
	}
	ks_buf_puts(out, "]}");
}

/* One PutRecords request: each entry routed, limited, stored as a consumer reads it. */
static void answer_put(fake *f, const ks_buf *body, ks_buf *out, int after_revoke)
{
	static unsigned char data[1 << 20];
	json_t *root = json_loadb(body->data, body->len, 0, NULL), *recs = json_object_get(root, "Records"), *r;
	int failed = 0;
	size_t i;

	f->requests++;
	ks_buf_puts(out, "{\"Records\":[");
	json_array_foreach(recs, i, r) {
		const char *pkey = json_string_value(json_object_get(r, "PartitionKey"));
		const char *ehk = json_string_value(json_object_get(r, "ExplicitHashKey"));
		size_t dlen = wu_unbase64(json_string_value(json_object_get(r, "Data")), data);
		ks_u128 h = ehk ? u128_of(ehk) : ks_hash_key(pkey, strlen(pkey));
		int s, n;
		store_ud u = { f, 0, after_revoke, 0 };

		if (f->auto_distribution) { /* keys and hash keys ignored: a shard at random */
			f->rng = f->rng * 6364136223846793005ULL + 1442695040888963407ULL;
			h = (ks_u128)f->rng << 64;
		}
		u.shard = s = route(f, h);

		CU_ASSERT_FATAL(s >= 0);
		f->entries++;
		if (i)
			ks_buf_puts(out, ",");
		if (f->throttle_all || (f->limits && !take(f, &f->sh[s], strlen(pkey) + dlen))) {
			failed++;
			f->throttled++;
			ks_buf_puts(out, "{\"ErrorCode\":\"ProvisionedThroughputExceededException\",\"ErrorMessage\":\"Rate exceeded\"}");
			continue;
		}
		if (f->nacc[s] < 4096)
			f->acc_at[s][f->nacc[s]++] = f->now;
		if ((n = ks_kpl_decode(data, dlen, store, &u)) >= 0) {
			f->aggregates++;
			f->user_in_aggs += n;
			CU_ASSERT_PTR_NOT_NULL(ehk);
		} else {
			u.alone = 1;
			store(&u, pkey, strlen(pkey), data, dlen);
		}
		ks_buf_printf(out, "{\"SequenceNumber\":\"%d\",\"ShardId\":\"%s\"}", f->entries, f->sh[s].id);
	}
	ks_buf_printf(out, "],\"FailedRecordCount\":%d}", failed);
	json_decref(root);
}

static int64_t fake_now(void *ud)
{
	return ((fake *)ud)->now;
}

static void *fake_open(const ks_http_transport_opts *o, ks_errbuf *err)
{
	CU_ASSERT_TRUE(o->slots <= 16);
	return o->ud;
}

static int fake_start(void *t, int slot, const char *const *headers, const void *body, size_t len, ks_errbuf *err)
{
	fake *f = t;
	int i;

	f->is_list[slot] = 0;
	for (i = 0; headers[i]; i++) {
		if (strcmp(headers[i], "X-Amz-Target: Kinesis_20131202.ListShards") == 0)
			f->is_list[slot] = 1;
		if (strcmp(headers[i], "X-Amz-Target: Kinesis_20131202.DescribeStreamSummary") == 0)
			f->is_list[slot] = 2;
	}
	ks_buf_reset(&f->bodies[slot]);
	ks_buf_append(&f->bodies[slot], body, len);
	f->after_revoke[slot] = f->revoked;
	f->list_calls += f->is_list[slot] == 1;
	if (f->late && !f->is_list[slot]) {
		ks_buf_reset(&f->answers[slot]);
		answer_put(f, &f->bodies[slot], &f->answers[slot], f->revoked);
	}
	f->pending[f->npending++] = slot;
	return 0;
}

static void fake_poll(void *t, int timeout_ms, int wake_fd, void (*done)(void *ud, const ks_http_answer *a), void *ud)
{
	fake *f = t;
	int pending[16], n = f->npending, i, answered = 0;

	memcpy(pending, f->pending, sizeof(pending));
	f->npending = 0;
	if (n > f->max_pending)
		f->max_pending = n;
	for (i = 0; f->reverse && i < n / 2; i++) {
		int first = pending[i];

		pending[i] = pending[n - 1 - i];
		pending[n - 1 - i] = first;
	}
	for (i = 0; i < n; i++) {
		ks_http_answer a = { 0 };
		ks_buf out;

		if (f->hold && !f->is_list[pending[i]]) {
			f->pending[f->npending++] = pending[i];
			continue;
		}
		answered++;
		ks_buf_init(&out, 0);
		a.status = 200;
		if (f->is_list[pending[i]] == 2) {
			f->describes++;
			ks_buf_printf(&out, "{\"StreamDescriptionSummary\":{\"StreamName\":\"s1\",\"StreamStatus\":\"ACTIVE\"%s}}",
				      f->auto_distribution ? ",\"RecordDistributionStrategy\":\"AUTO\"" : "");
		} else if (f->is_list[pending[i]] && f->lists_refused > 0) {
			f->lists_refused--;
			a.status = 400;
			ks_buf_puts(&out, "{\"__type\":\"AccessDeniedException\",\"message\":\"not allowed to ListShards\"}");
		} else if (f->is_list[pending[i]]) {
			answer_list(f, &out);
		} else if (f->late) {
			ks_buf_append(&out, f->answers[pending[i]].data, f->answers[pending[i]].len);
		} else {
			answer_put(f, &f->bodies[pending[i]], &out, f->after_revoke[pending[i]]);
		}
		a.slot = pending[i];
		a.body = out.data;
		a.body_len = out.len;
		a.request_id = "req-1";
		done(ud, &a);
		ks_buf_clean(&out);
	}
	if (!answered)
		f->now += timeout_ms;
	if (answered)
		f->throttle_all = 0;
}

static void fake_close(void *t)
{
}

static const ks_http_transport fake_transport = { fake_open, fake_start, fake_poll, fake_close };

/* Partition A's records (origin &partition_a) are the revoked ones. */
static int partition_a, partition_b;

static void on_acked(void *opaque, ks_record *rec, const char *shard, const char *seq)
{
	fake *f = opaque;
	size_t l = strlen(f->log);
	const char *pad = memchr(rec->data, '.', rec->data_len);
	size_t data_shown = pad ? (size_t)(pad - (const char *)rec->data) : rec->data_len;

	f->acked++;
	f->acked_a += rec->origin == &partition_a;
	if (l + 64 < sizeof(f->log))
		snprintf(f->log + l, sizeof(f->log) - l, "+%s=%.*s ", rec->pkey, (int)data_shown, (const char *)rec->data);
}

static void on_failed(void *opaque, ks_record *rec, const ks_errbuf *err)
{
	CU_FAIL("a record failed");
}

static void on_dropped(void *opaque, ks_record *rec)
{
	fake *f = opaque;

	if (rec->origin == &partition_a)
		f->dropped_a++;
	else
		f->dropped_b++;
}

static int of_partition_a(void *ud, const ks_record *rec)
{
	return rec->origin == ud;
}

typedef struct writer {
	ks_conf conf;
	ks_creds_t *creds;
	ks_metrics m;
	ks_kinesis_t *k;
	fake f;
} writer;

/* The service's shards as ListShards tells them now. */
static ks_shardmap_t *map_of(fake *f)
{
	ks_shardmap_t *m = ks_shardmap_new();
	char next[64];
	ks_errbuf err;
	ks_buf b;

	ks_buf_init(&b, 0);
	answer_list(f, &b);
	f->lists--;
	CU_ASSERT_EQUAL(ks_shardmap_add_page(m, b.data, b.len, next, sizeof(next), &err), 0);
	CU_ASSERT_EQUAL(ks_shardmap_finish(m, &err), 0);
	ks_buf_clean(&b);
	return m;
}

static void writer_open_map(writer *w, int nshards, const char *const *props, int with_map);

static void writer_open(writer *w, int nshards, const char *const *props)
{
	writer_open_map(w, nshards, props, 1);
}

static void writer_open_map(writer *w, int nshards, const char *const *props, int with_map)
{
	static const char *const base[] = { "shards.refresh.ms", "0", NULL };
	ks_kinesis_cbs cbs = { on_acked, on_failed, &w->f, on_dropped };
	ks_kinesis_io io = { &fake_transport, &w->f, fake_now, &w->f, 0x9e3779b97f4a7c15ULL };
	ks_errbuf err;
	int i;

	memset(w, 0, sizeof(*w));
	w->f.now = 1000000;
	for (i = 0; i < 16; i++) {
		ks_buf_init(&w->f.bodies[i], 0);
		ks_buf_init(&w->f.answers[i], 0);
	}
	shards_even(&w->f, nshards);
	wu_conf(&w->conf, base);
	for (i = 0; props && props[i]; i += 2)
		CU_ASSERT_EQUAL(ks_conf_set(&w->conf, props[i], props[i + 1], "t", 1, NULL), 0);
	w->creds = ks_creds_new(&w->conf, &w->m, &err);
	w->k = ks_kinesis_new_io(&w->conf, w->creds, &w->m, &cbs, &io, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(w->k);
	if (with_map)
		CU_ASSERT_EQUAL(ks_kinesis_set_shardmap(w->k, map_of(&w->f)), 0);
}

static void submit(writer *w, const char *key, int seq)
{
	char data[32];
	ks_record *r;
	ks_errbuf err;

	snprintf(data, sizeof(data), "%d", seq);
	r = ks_record_new(key, strlen(key), data, strlen(data));
	CU_ASSERT_EQUAL(ks_kinesis_submit(w->k, r, &err), 0);
}

/* Poll until the writer holds nothing; @returns the fake time it took. */
static int64_t drain(writer *w)
{
	int64_t t0 = w->f.now;
	ks_errbuf err;
	int i;

	for (i = 0; i < 100000 && ks_kinesis_inflight_records(w->k); i++)
		CU_ASSERT_EQUAL_FATAL(ks_kinesis_poll(w->k, 1000, -1, &err), 0);
	CU_ASSERT_EQUAL(ks_kinesis_inflight_records(w->k), 0);
	return w->f.now - t0;
}

static void writer_close(writer *w)
{
	int i;

	if (CU_get_number_of_failures())
		fprintf(stderr, "acked: %.2000s\n", w->f.log);
	ks_kinesis_destroy(w->k);
	ks_creds_destroy(w->creds);
	ks_conf_clean(&w->conf);
	ks_metrics_clean(&w->m);
	for (i = 0; i < 16; i++) {
		ks_buf_clean(&w->f.bodies[i]);
		ks_buf_clean(&w->f.answers[i]);
	}
}

/* Every record "k<i>=<j>" (keys k0..k<keys-1>, j 1..per) seen exactly once, each key in order. */
static void check_seen(const fake *f, int keys, int per)
{
	int *last = calloc((size_t)keys, sizeof(int)), i, bad = 0;

	CU_ASSERT_EQUAL(f->nseen, keys * per);
	for (i = 0; i < f->nseen; i++) {
		int key, seq;

		CU_ASSERT_EQUAL_FATAL(sscanf(f->seen[i].rec, "k%d=%d", &key, &seq), 2);
		if (seq != last[key] + 1 && bad++ < 5)
			fprintf(stderr, "key k%d: %d after %d\n", key, seq, last[key]);
		last[key] = seq;
	}
	CU_ASSERT_EQUAL(bad, 0);
	for (i = 0; i < keys; i++)
		CU_ASSERT_EQUAL(last[i], per);
	free(last);
}

static void submit_keys(writer *w, int keys, int from, int to)
{
	int j, i;
	char key[16];

	for (j = from; j <= to; j++)
		for (i = 0; i < keys; i++) {
			snprintf(key, sizeof(key), "k%d", i);
			submit(w, key, j);
		}
}

static void test_aggregates_per_shard_across_keys(void)
{
	static const char *const props[] = { "aggregation", "kpl", "rate.limit.percent", "0", NULL };
	writer w;

	writer_open(&w, 4, props);
	submit_keys(&w, 400, 1, 3);
	ks_kinesis_flush(w.k);
	drain(&w);
	check_seen(&w.f, 400, 3);
	CU_ASSERT_EQUAL(w.f.acked, 1200);
	CU_ASSERT_EQUAL(w.f.dropped, 0);
	/* Each shard's 300 records in one aggregate (a key's three in it, in order): 4 entries. */
	CU_ASSERT_EQUAL(w.f.entries, 4);
	CU_ASSERT_EQUAL(w.f.user_in_aggs, 1200);
	CU_ASSERT_EQUAL(w.m.shard_mispredictions, 0);
	writer_close(&w);
}

static void test_aggregate_limits(void)
{
	static const char *const props[] = { "aggregation", "kpl", "rate.limit.percent", "0", "aggregation.max.records",
					     "50", NULL };
	writer w;

	writer_open(&w, 2, props);
	submit_keys(&w, 100, 1, 2);
	ks_kinesis_flush(w.k);
	drain(&w);
	check_seen(&w.f, 100, 2);
	/* 200 records into aggregates of at most 50: at least 4 entries. */
	CU_ASSERT_TRUE(w.f.entries >= 4 && w.f.entries <= 6);
	writer_close(&w);
}

/* Most records shard @p s accepted within any 1,000 ms. */
static int peak_per_second(const fake *f, int s)
{
	int i, j = 0, best = 0;

	for (i = 0; i < f->nacc[s]; i++) {
		while (f->acc_at[s][i] - f->acc_at[s][j] >= 1000)
			j++;
		if (i - j + 1 > best)
			best = i - j + 1;
	}
	return best;
}

static void test_rate_limit_without_aggregation(void)
{
	static const char *const props[] = { "ordering", "none", NULL };
	writer w;
	int64_t took;

	writer_open(&w, 2, props);
	w.f.limits = 1;
	submit_keys(&w, 1500, 1, 1);  /* about 750 per shard, then 1500 more: over the burst */
	submit_keys(&w, 1500, 2, 2);
	took = drain(&w);
	CU_ASSERT_EQUAL(w.f.acked, 3000);
	/* Nothing sent to be throttled: records waited for their shard instead. */
	CU_ASSERT_EQUAL(w.f.throttled, 0);
	/* 1,500 records per shard at 1,000/s after a full bucket: at least half a second. */
	CU_ASSERT_TRUE(took >= 400);
	CU_ASSERT_TRUE(peak_per_second(&w.f, 0) <= 1001 + 1000);
	writer_close(&w);
}

static void test_rate_limit_percent(void)
{
	static const char *const props[] = { "ordering", "none", "rate.limit.percent", "50", NULL };
	writer w;
	int64_t took;

	writer_open(&w, 1, props);
	w.f.limits = 1;
	submit_keys(&w, 2000, 1, 1);
	took = drain(&w);
	CU_ASSERT_EQUAL(w.f.acked, 2000);
	CU_ASSERT_EQUAL(w.f.throttled, 0);
	/* 500 at once (a full bucket at 50 %), then 500/s: 3 s for the other 1,500. */
	CU_ASSERT_TRUE(took >= 2900 && took <= 3300);
	writer_close(&w);
}

/*
 * The service splits a shard while the writer's map is stale: aggregates packed for the parent
 * land in a child, whose range holds only part of their records. Those outside are sent again
 * for their shard before any later record of their key; a consumer sees every record once.
 */
static void test_split_resends_records_outside(void)
{
	static const char *const props[] = { "aggregation", "kpl", "rate.limit.percent", "0", NULL };
	writer w;

	writer_open(&w, 1, props);
	submit_keys(&w, 200, 1, 1);
	ks_kinesis_flush(w.k);
	drain(&w);
	CU_ASSERT_EQUAL(w.f.acked, 200);
	split(&w.f, 0);
	submit_keys(&w, 200, 2, 3);
	ks_kinesis_flush(w.k);
	drain(&w);
	submit_keys(&w, 200, 4, 4);
	ks_kinesis_flush(w.k);
	drain(&w);
	check_seen(&w.f, 200, 4);
	CU_ASSERT_EQUAL(w.f.acked, 800);
	CU_ASSERT_TRUE(w.f.dropped > 0); /* the stale aggregate did hold records of the other child */
	CU_ASSERT_TRUE(w.m.shard_mispredictions >= 1);
	CU_ASSERT_TRUE(w.m.records_resent_reshard > 0);
	CU_ASSERT_EQUAL(w.m.shard_map_refreshes, 1);
	CU_ASSERT_EQUAL(w.m.stream_open_shards, 2);
	CU_ASSERT_EQUAL(w.f.lists, 1);
	writer_close(&w);
}

/* The map is listed again every shards.refresh.ms: records then go by the new shards. */
static void test_refresh_interval(void)
{
	static const char *const props[] = { "ordering", "none", "shards.refresh.ms", "5000", NULL };
	int64_t elapsed;
	writer w;
	ks_errbuf err;
	int i;

	writer_open(&w, 1, props);
	split(&w.f, 0);
	for (i = 0; i < 20; i++)
		CU_ASSERT_EQUAL(ks_kinesis_poll(w.k, 1000, -1, &err), 0);
	/* Listed every 5 s of the clock (the writer wakes up for it), no more. */
	elapsed = w.f.now - 1000000;
	CU_ASSERT_TRUE(elapsed >= 10000);
	CU_ASSERT_TRUE(w.f.lists >= elapsed / 5000 - 1 && w.f.lists <= elapsed / 5000);
	CU_ASSERT_EQUAL(w.m.stream_open_shards, 2);
	CU_ASSERT_EQUAL(w.m.shard_map_refreshes, (uint64_t)w.f.lists);
	submit_keys(&w, 100, 1, 1);
	drain(&w);
	CU_ASSERT_EQUAL(w.m.shard_mispredictions, 0);
	writer_close(&w);
}

/*
 * A split behind the map, and the listing it triggers refused: the landed shard's range stays
 * unknown, so every record of another key than each aggregate's first goes again. A consumer
 * may see some twice (a key's run replayed), never none, and a key's records first appear in
 * their order. The map is listed again after a backoff of about a second.
 */
static void test_split_with_listing_refused(void)
{
	static const char *const props[] = { "aggregation", "kpl", "rate.limit.percent", "0", NULL };
	int next[200], i, bad = 0, firsts = 0, replays = 0;
	writer w;
	ks_errbuf err;

	writer_open(&w, 1, props);
	split(&w.f, 0);
	w.f.lists_refused = 1;
	submit_keys(&w, 200, 1, 2);
	ks_kinesis_flush(w.k);
	drain(&w);
	CU_ASSERT_EQUAL(w.f.acked, 400);
	CU_ASSERT_EQUAL(w.f.lists_refused, 0);
	CU_ASSERT_TRUE(w.m.records_resent_reshard > 0);
	for (i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(ks_kinesis_poll(w.k, 1000, -1, &err), 0);
	/* The next listing took: the map in use now. */
	CU_ASSERT_EQUAL(w.m.shard_map_refreshes, 1);
	CU_ASSERT_EQUAL(w.m.stream_open_shards, 2);
	for (i = 0; i < 200; i++)
		next[i] = 1;
	for (i = 0; i < w.f.nseen; i++) {
		int key, seq;

		CU_ASSERT_EQUAL_FATAL(sscanf(w.f.seen[i].rec, "k%d=%d", &key, &seq), 2);
		if (seq == next[key]) {
			next[key]++;
			firsts++;
		} else if (seq < next[key]) {
			replays++;
		} else {
			bad++; /* a record before an earlier one of its key was ever seen */
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(firsts, 400); /* every record at least once */
	CU_ASSERT_TRUE(replays > 0);  /* and the ones sent again without knowing the range, twice */
	writer_close(&w);
}

/* Without a map at start (ListShards failed then), the writer lists the shards itself later. */
static void test_listed_later_without_a_map(void)
{
	static const char *const props[] = { "ordering", "none", NULL };
	writer w;
	ks_errbuf err;
	int i;

	writer_open_map(&w, 2, props, 0);
	submit_keys(&w, 10, 1, 1);
	drain(&w);
	CU_ASSERT_EQUAL(w.f.lists, 0);
	for (i = 0; i < 70 && !w.f.lists; i++)
		CU_ASSERT_EQUAL(ks_kinesis_poll(w.k, 1000, -1, &err), 0);
	CU_ASSERT_EQUAL(w.f.lists, 1);
	CU_ASSERT_EQUAL(ks_kinesis_poll(w.k, 0, -1, &err), 0);
	CU_ASSERT_EQUAL(w.m.stream_open_shards, 2);
	w.f.limits = 1;
	submit_keys(&w, 3000, 2, 2);
	drain(&w);
	CU_ASSERT_EQUAL(w.f.throttled, 0); /* now limited per shard */
	writer_close(&w);
}

/* The log (stderr) goes to a temporary file until log_count. @returns the saved stderr. */
static int log_capture(FILE **tmp)
{
	int saved;

	fflush(stderr);
	saved = dup(2);
	*tmp = tmpfile();
	CU_ASSERT_PTR_NOT_NULL_FATAL(*tmp);
	dup2(fileno(*tmp), 2);
	return saved;
}

/* stderr back; @returns the captured lines holding @p needle (the file is closed). */
static int log_count(FILE *tmp, int saved, const char *needle)
{
	char line[1024];
	int n = 0;

	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	while (fgets(line, sizeof(line), tmp))
		n += strstr(line, needle) != NULL;
	fclose(tmp);
	return n;
}

/*
 * ListShards refused for half an hour while an answer asked for a listing: the writer does not
 * spin (2,000 polls of a second move the clock by about as much), tries again with a backoff
 * that grows to a minute, warns once for the outage, and says once when it ends.
 */
static void test_listing_failures_back_off(void)
{
	static const char *const props[] = { "ordering", "none", NULL };
	int64_t t0;
	writer w;
	ks_errbuf err;
	FILE *tmp;
	int i, saved, lists;

	writer_open(&w, 1, props);
	split(&w.f, 0);
	w.f.lists_refused = 1000000;
	saved = log_capture(&tmp);
	submit_keys(&w, 10, 1, 1);
	drain(&w); /* records alone that land in the children: acknowledged, a listing asked for */
	CU_ASSERT_TRUE(w.m.shard_mispredictions > 0);
	t0 = w.f.now;
	for (i = 0; i < 2000; i++)
		CU_ASSERT_EQUAL(ks_kinesis_poll(w.k, 1000, -1, &err), 0);
	lists = w.f.list_calls;
	CU_ASSERT_TRUE(w.f.now - t0 >= 1800000);
	/* 1, 2, 4, ... s then a minute (equal jitter: 30 to 60 s) over 2,000 s: about 50. */
	CU_ASSERT_TRUE(lists >= 30 && lists <= 70);
	CU_ASSERT_EQUAL(w.m.shard_map_refreshes, 0);
	w.f.lists_refused = 0;
	for (i = 0; i < 70 && !w.m.shard_map_refreshes; i++)
		CU_ASSERT_EQUAL(ks_kinesis_poll(w.k, 1000, -1, &err), 0);
	CU_ASSERT_EQUAL(w.m.shard_map_refreshes, 1);
	CU_ASSERT_EQUAL(w.m.stream_open_shards, 2);
	/* Listed, no further listing is asked for. */
	for (i = 0; i < 100; i++)
		CU_ASSERT_EQUAL(ks_kinesis_poll(w.k, 1000, -1, &err), 0);
	CU_ASSERT_EQUAL(w.m.shard_map_refreshes, 1);
	CU_ASSERT_EQUAL(log_count(tmp, saved, "listing the shards of stream s1 failed"), 1);
	fprintf(stderr, "%d ListShards calls refused in %lld s\n", lists, (long long)(w.f.now - t0) / 1000);
	writer_close(&w);
}

/*
 * A split behind the map and every listing refused: the landed shard's range stays unknown, so
 * the records of other keys than each aggregate's first go again, as units of one key (which land
 * where their key does) and are not packed with other keys while the map is stale. Each record
 * goes again at most once: 200 keys of 2 records send at most 400 again and a consumer sees at
 * most 800, every record at least once, in order.
 */
static void test_resends_bounded_while_listings_refused(void)
{
	static const char *const props[] = { "aggregation", "kpl", "rate.limit.percent", "0", NULL };
	int next[200], i, bad = 0, firsts = 0;
	int64_t took;
	writer w;
	ks_errbuf err;

	writer_open(&w, 1, props);
	split(&w.f, 0);
	w.f.lists_refused = 1000000;
	submit_keys(&w, 200, 1, 1);
	ks_kinesis_flush(w.k);
	CU_ASSERT_EQUAL(ks_kinesis_poll(w.k, 0, -1, &err), 0);
	submit_keys(&w, 200, 2, 2);
	ks_kinesis_flush(w.k);
	took = drain(&w);
	CU_ASSERT_EQUAL(w.f.acked, 400);
	CU_ASSERT_TRUE(w.m.records_resent_reshard > 0 && w.m.records_resent_reshard <= 400);
	CU_ASSERT_TRUE(w.f.nseen <= 800);
	CU_ASSERT_TRUE(took <= 5000);
	for (i = 0; i < 200; i++)
		next[i] = 1;
	for (i = 0; i < w.f.nseen; i++) {
		int key, seq;

		CU_ASSERT_EQUAL_FATAL(sscanf(w.f.seen[i].rec, "k%d=%d", &key, &seq), 2);
		if (seq == next[key]) {
			next[key]++;
			firsts++;
		} else if (seq > next[key]) {
			bad++;
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(firsts, 400);
	fprintf(stderr, "%llu resent, %d seen, %lld ms\n", (unsigned long long)w.m.records_resent_reshard, w.f.nseen,
		(long long)took);
	writer_close(&w);
}

/*
 * An aggregate's answer comes late: it landed in a child of a split the map did not know, and by
 * the time it is answered the writer listed that child and then its split (the child is closed,
 * no longer listed). The child's range is still known: only the records outside it go again, and
 * a consumer sees every record exactly once.
 */
static void test_landed_in_a_shard_closed_since(void)
{
	static const char *const props[] = { "aggregation", "kpl", "rate.limit.percent", "0", "shards.refresh.ms", "1000",
					     NULL };
	writer w;
	ks_errbuf err;
	int i, child;

	writer_open(&w, 1, props);
	w.f.late = 1;
	w.f.hold = 1;
	split(&w.f, 0);
	submit_keys(&w, 200, 1, 1);
	ks_kinesis_flush(w.k);
	CU_ASSERT_EQUAL(ks_kinesis_poll(w.k, 0, -1, &err), 0);
	CU_ASSERT_EQUAL_FATAL(w.f.npending, 1); /* processed by the service, not answered yet */
	child = route(&w.f, ks_hash_key("k0", 2));
	for (i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(ks_kinesis_poll(w.k, 1000, -1, &err), 0);
	CU_ASSERT_EQUAL(w.m.stream_open_shards, 2);
	split(&w.f, child);
	for (i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(ks_kinesis_poll(w.k, 1000, -1, &err), 0);
	CU_ASSERT_EQUAL(w.m.stream_open_shards, 3);
	w.f.hold = 0;
	drain(&w);
	CU_ASSERT_TRUE(w.f.dropped > 0);
	CU_ASSERT_EQUAL(w.m.records_resent_reshard, (uint64_t)w.f.dropped);
	check_seen(&w.f, 200, 1);
	writer_close(&w);
}

/*
 * delivery.timeout.ms counts from a record's first send: records that waited longer than it for
 * their shard's buckets are not failed by one transient error (on_failed fails the test).
 */
static void test_delivery_timeout_from_the_first_send(void)
{
	static const char *const props[] = { "ordering", "none", "rate.limit.percent", "10", "delivery.timeout.ms", "3000",
					     NULL };
	writer w;
	ks_errbuf err;
	int64_t t0;
	int i;

	writer_open(&w, 1, props);
	submit_keys(&w, 1000, 1, 1);
	t0 = w.f.now;
	for (i = 0; i < 100000 && w.f.now - t0 < 6000; i++)
		CU_ASSERT_EQUAL_FATAL(ks_kinesis_poll(w.k, 1000, -1, &err), 0);
	CU_ASSERT_TRUE(w.f.acked < 900); /* about a hundred a second: many still wait */
	w.f.throttle_all = 1;
	drain(&w);
	CU_ASSERT_EQUAL(w.f.acked, 1000);
	CU_ASSERT_TRUE(w.f.throttled > 0);
	writer_close(&w);
}

/*
 * A flush (a revoke's drain, shutdown) lasts until every record held went: a key's next record,
 * waiting in the gate when the flush came, goes as soon as its turn comes, not batch.linger.ms
 * later.
 */
static void test_flush_covers_the_gate(void)
{
	static const char *const props[] = { "aggregation", "kpl", "rate.limit.percent", "0", NULL };
	writer w;
	ks_errbuf err;

	writer_open(&w, 1, props);
	w.f.hold = 1;
	submit(&w, "k0", 1);
	ks_kinesis_flush(w.k);
	CU_ASSERT_EQUAL(ks_kinesis_poll(w.k, 0, -1, &err), 0);
	CU_ASSERT_EQUAL(w.f.npending, 1);
	submit(&w, "k0", 2);
	ks_kinesis_flush(w.k);
	CU_ASSERT_EQUAL(ks_kinesis_poll(w.k, 0, -1, &err), 0);
	w.f.hold = 0;
	CU_ASSERT_TRUE(drain(&w) < 100);
	CU_ASSERT_EQUAL(w.f.acked, 2);
	writer_close(&w);
}

/*
 * The stream is switched to RecordDistributionStrategy AUTO while an append-only writer runs: the
 * next listing's DescribeStreamSummary tells, and the writer sends every record alone from then on
 * (no aggregate a consumer would take apart by the range of a random shard); none is lost.
 */
static void test_switched_to_auto_while_running(void)
{
	static const char *const props[] = { "aggregation", "kpl", "rate.limit.percent", "0", "shards.refresh.ms", "1000",
					     "batch.linger.ms", "5000", NULL };
	writer w;
	ks_errbuf err;
	int i, aggregates, lists;

	writer_open(&w, 2, props);
	submit_keys(&w, 100, 1, 1);
	ks_kinesis_flush(w.k);
	drain(&w);
	CU_ASSERT_TRUE((aggregates = w.f.aggregates) > 0);
	w.f.auto_distribution = 1;
	/* Records lingering in aggregates when the switch is noticed go alone too. */
	submit_keys(&w, 100, 2, 2);
	for (i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(ks_kinesis_poll(w.k, 1000, -1, &err), 0);
	CU_ASSERT_TRUE(w.f.describes >= 1);
	CU_ASSERT_EQUAL(w.f.aggregates, aggregates);
	lists = w.f.list_calls;
	submit_keys(&w, 100, 3, 3);
	ks_kinesis_flush(w.k);
	drain(&w);
	CU_ASSERT_EQUAL(w.f.aggregates, aggregates);
	CU_ASSERT_EQUAL(w.f.acked, 300);
	CU_ASSERT_EQUAL(w.f.dropped, 0);
	CU_ASSERT_EQUAL(w.f.nseen, 300);
	CU_ASSERT_EQUAL(w.f.list_calls, lists); /* no shards any more: no listing */
	writer_close(&w);
}

/*
 * A stream of 4 shards that ignores keys from the start (ks_kinesis_set_distribution): records go
 * as they come, bounded by the shards' limits together at rate.limit.percent, so the service,
 * spreading them at random, throttles none.
 */
static void test_auto_stream_limited_by_its_shards(void)
{
	static const char *const props[] = { "ordering", "none", "rate.limit.percent", "50", NULL };
	writer w;
	ks_errbuf err;
	int64_t took;

	writer_open_map(&w, 4, props, 0);
	w.f.auto_distribution = 1;
	w.f.limits = 1;
	CU_ASSERT_EQUAL(ks_kinesis_set_distribution(w.k, "AUTO", &err), 0);
	CU_ASSERT_EQUAL(ks_kinesis_set_shardmap(w.k, map_of(&w.f)), 0);
	submit_keys(&w, 4000, 1, 1);
	took = drain(&w);
	CU_ASSERT_EQUAL(w.f.acked, 4000);
	CU_ASSERT_EQUAL(w.f.throttled, 0);
	CU_ASSERT_EQUAL(w.f.aggregates, 0);
	/* 2,000 records/s for the stream, a second of it in the buckets at start. */
	CU_ASSERT_TRUE(took >= 900);
	writer_close(&w);
}

/* The same switch under type=upsert, whose contract is per-key order: the writer stops. */
static void test_switched_to_auto_stops_upsert(void)
{
	static const char *const props[] = { "type", "upsert", "aggregation", "kpl", "rate.limit.percent", "0",
					     "shards.refresh.ms", "1000", NULL };
	writer w;
	ks_errbuf err;
	int i, rc = 0;

	writer_open(&w, 2, props);
	submit_keys(&w, 10, 1, 1);
	ks_kinesis_flush(w.k);
	drain(&w);
	w.f.auto_distribution = 1;
	for (i = 0; i < 5 && !rc; i++)
		rc = ks_kinesis_poll(w.k, 1000, -1, &err);
	CU_ASSERT_EQUAL(rc, KS_ERR_FATAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "RecordDistributionStrategy AUTO"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "while running"));
	writer_close(&w);
}

/*
 * A merge behind the map: aggregates packed for either parent land in the child, whose range holds
 * all of their records: once the listing names it, all are acknowledged, none sent again.
 */
static void test_merge_behind_the_map(void)
{
	static const char *const props[] = { "aggregation", "kpl", "rate.limit.percent", "0", NULL };
	writer w;

	writer_open(&w, 2, props);
	merge(&w.f, 0, 1);
	submit_keys(&w, 200, 1, 2);
	ks_kinesis_flush(w.k);
	drain(&w);
	check_seen(&w.f, 200, 2);
	CU_ASSERT_EQUAL(w.f.dropped, 0);
	CU_ASSERT_EQUAL(w.m.records_resent_reshard, 0);
	CU_ASSERT_TRUE(w.m.shard_mispredictions >= 1);
	CU_ASSERT_EQUAL(w.m.stream_open_shards, 1);
	writer_close(&w);
}

/*
 * Two reshards before a listing (a split, then a split of a child), with answers coming back in
 * the reverse order of the requests, several in flight: every record seen once by a consumer, each
 * key in order.
 */
static void test_two_reshards_before_a_listing(void)
{
	static const char *const props[] = { "aggregation", "kpl", "rate.limit.percent", "0", "aggregation.max.records",
					     "40", "max.inflight.requests", "4", "batch.max.records", "2", NULL };
	writer w;

	writer_open(&w, 1, props);
	w.f.reverse = 1;
	split(&w.f, 0);
	split(&w.f, 1);
	submit_keys(&w, 200, 1, 3);
	ks_kinesis_flush(w.k);
	drain(&w);
	check_seen(&w.f, 200, 3);
	CU_ASSERT_TRUE(w.f.dropped > 0);
	CU_ASSERT_EQUAL(w.m.records_resent_reshard, (uint64_t)w.f.dropped);
	CU_ASSERT_EQUAL(w.m.stream_open_shards, 3);
	CU_ASSERT_TRUE(w.f.max_pending >= 3); /* answers did come out of order */
	writer_close(&w);
}

/* Record @p seq of @p key, from @p origin's partition, with @p pad bytes of padding after it. */
static void submit_from(writer *w, const char *key, int seq, int *origin, size_t pad)
{
	char data[2048];
	ks_record *r;
	ks_errbuf err;
	int n = snprintf(data, sizeof(data), "%d", seq);

	memset(data + n, '.', pad);
	r = ks_record_new(key, strlen(key), data, (size_t)n + pad);
	r->origin = origin;
	CU_ASSERT_EQUAL(ks_kinesis_submit(w->k, r, &err), 0);
}

/* Keys a<i> of partition A, b<i> of partition B, m<i> (i a multiple of 3; record 1 in A, 2 and
 * 3 in B), for i in
 * @p from..@p to: record @p seq. */
static void submit_round(writer *w, int seq, int from, int to)
{
	char key[16];
	int i;

	for (i = from; i <= to; i++) {
		snprintf(key, sizeof(key), "a%d", i);
		submit_from(w, key, seq, &partition_a, 1000);
		snprintf(key, sizeof(key), "b%d", i);
		submit_from(w, key, seq, &partition_b, 1000);
		if (i % 3 == 0) {
			snprintf(key, sizeof(key), "m%d", i);
			submit_from(w, key, seq, seq == 1 ? &partition_a : &partition_b, 1000);
		}
	}
}

/*
 * Partition A is revoked while its records are everywhere in the writer: in flight (unanswered),
 * waiting in the gate behind them, in open aggregates lingering in the shard queues, in units
 * waiting for their shard's buckets, mixed with partition B's records in aggregates. None is sent
 * after the revoke; those not sent are dropped (not acknowledged); those in flight are answered
 * (accepted, or with @p throttled every entry throttled: then dropped instead of retried). With
 * @p taken, the aggregates waited in the shard queues long enough to be taken for the next request.
 * Partition B's records are each seen once, each key in order, including keys m whose first record
 * was A's.
 */
static void revoke_while_busy(int throttled, int taken)
{
	static const char *const props[] = { "aggregation", "kpl", "rate.limit.percent", "10", "max.inflight.requests",
					     "1", NULL };
	int last[3][60] = { { 0 } }, i, inflight, a_total = 60 * 3 + 20;
	writer w;
	ks_errbuf err;

	writer_open(&w, 2, props);
	w.f.hold = 1;
	/* Half the keys' first records in flight, the others' waiting behind them in the gate. */
	submit_round(&w, 1, 0, 29);
	ks_kinesis_flush(w.k);
	CU_ASSERT_EQUAL(ks_kinesis_poll(w.k, 0, -1, &err), 0);
	CU_ASSERT_EQUAL(w.f.npending, 1);
	submit_round(&w, 2, 0, 29);
	/* The other half in aggregates of both partitions, some waiting for their shard's buckets,
	 * some lingering open. */
	submit_round(&w, 1, 30, 59);
	submit_round(&w, 2, 30, 59);
	submit_round(&w, 3, 0, 59);
	CU_ASSERT_EQUAL(ks_kinesis_poll(w.k, 0, -1, &err), 0);
	/* A second later, the aggregates that lingered are ready to go (but for the request slot). */
	if (taken)
		CU_ASSERT_EQUAL(ks_kinesis_poll(w.k, 1000, -1, &err), 0);
	inflight = (int)ks_kinesis_revoke(w.k, of_partition_a, &partition_a);
	w.f.revoked = 1;
	CU_ASSERT_TRUE(inflight > 0);
	CU_ASSERT_TRUE(w.f.dropped_a > 0);
	CU_ASSERT_EQUAL(w.f.dropped_b, 0);
	CU_ASSERT_EQUAL(w.f.dropped_a + inflight + w.f.acked_a, a_total);
	CU_ASSERT_EQUAL(ks_kinesis_inflight_records(w.k), (size_t)(60 * 3 * 2 + 20 * 3 - a_total + inflight));
	w.f.hold = 0;
	w.f.throttle_all = throttled;
	drain(&w);
	CU_ASSERT_EQUAL(ks_kinesis_revoked_inflight(w.k), 0);
	CU_ASSERT_EQUAL(w.f.revoked_sent, 0);
	CU_ASSERT_EQUAL(w.f.dropped_b, 0);
	CU_ASSERT_EQUAL(w.f.dropped_a + w.f.acked_a, a_total);
	if (throttled)
		CU_ASSERT_EQUAL(w.f.acked_a, 0);
	CU_ASSERT_EQUAL(w.f.acked - w.f.acked_a, 60 * 3 + 20 * 2);
	CU_ASSERT_EQUAL(w.f.dropped, 0);
	/* What a consumer sees: B's records once each, each key in order; A's at most once. */
	for (i = 0; i < w.f.nseen; i++) {
		char c;
		int key, seq, *l;

		CU_ASSERT_EQUAL_FATAL(sscanf(w.f.seen[i].rec, "%c%d=%d", &c, &key, &seq), 3);
		l = &last[c == 'a' ? 0 : c == 'b' ? 1 : 2][key];
		if (c == 'a' || (c == 'm' && seq == 1)) {
			CU_ASSERT_TRUE(seq > *l);
		} else {
			CU_ASSERT_TRUE(seq == *l + 1 || (c == 'm' && seq == 2 && *l == 0));
		}
		*l = seq;
	}
	for (i = 0; i < 60; i++) {
		CU_ASSERT_EQUAL(last[1][i], 3);
		if (i % 3 == 0)
			CU_ASSERT_EQUAL(last[2][i], 3);
	}
	writer_close(&w);
}

static void test_revoked_partition_accepted_in_flight(void)
{
	revoke_while_busy(0, 0);
}

static void test_revoked_partition_throttled_in_flight(void)
{
	revoke_while_busy(1, 1);
}

/* The requests stall for 5 s (every slot in flight, unanswered): the units waiting meanwhile take
 * no tokens, so what goes after the stall is what the shard's bucket holds, not 5 s of it at once.
 * (With tokens taken as units moved to the ready queue, 900 of the 5,900 entries after the stall
 * were throttled.) */
static void test_stall_does_not_burst(void)
{
	static const char *const props[] = { "max.inflight.requests", "2", NULL };
	writer w;
	ks_errbuf err;
	int64_t t0;
	int entries_before;

	writer_open(&w, 1, props);
	w.f.limits = 1;
	w.f.late = 1;
	w.f.hold = 1;
	submit_keys(&w, 2000, 1, 3);
	t0 = w.f.now;
	while (w.f.now < t0 + 5000)
		CU_ASSERT_EQUAL_FATAL(ks_kinesis_poll(w.k, 1000, -1, &err), 0);
	CU_ASSERT_EQUAL(w.f.throttled, 0);
	entries_before = w.f.entries;
	w.f.hold = 0;
	drain(&w);
	check_seen(&w.f, 2000, 3);
	fprintf(stderr, "\n  after the stall: %d of %d entries throttled\n", w.f.throttled, w.f.entries - entries_before);
	CU_ASSERT_TRUE(w.f.throttled * 100 < (w.f.entries - entries_before));
	writer_close(&w);
}

/* ---- several writers sharing one stream ----------------------------------------------------
 * A service of its own, shared by several writers (each its own transport), on one clock the test
 * moves in ticks: each shard enforces 1,000 records/s, as token buckets holding one second or as
 * counts per wall-clock second. Answers come RTT_MS after their request. The writers know nothing
 * of each other. */

#define FLEET_SHARDS 2
#define FLEET_KEYS 1000
#define FLEET_MAXW 3
#define RTT_MS 30
#define FLEET_TICK_MS 1

typedef struct fleet {
	int64_t now;
	int windows;                      /* counts per second, not token buckets */
	double tokens[FLEET_SHARDS];
	int64_t last_ms[FLEET_SHARDS];
	int64_t window[FLEET_SHARDS];
	int in_window[FLEET_SHARDS];
	int counting;                     /* the convergence is over: entries are counted */
	long entries, throttled, accepted;
	int last_seq[FLEET_MAXW][FLEET_KEYS];
	int order_bad;
	long stored;
} fleet;

typedef struct fconn {
	fleet *fl;
	int pending[16], npending;
	int64_t sent_at[16];
	ks_buf body[16];
} fconn;

static void *fleet_open(const ks_http_transport_opts *o, ks_errbuf *err)
{
	return o->ud;
}

static int fleet_start(void *t, int slot, const char *const *headers, const void *body, size_t len, ks_errbuf *err)
{
	fconn *c = t;

	ks_buf_reset(&c->body[slot]);
	ks_buf_append(&c->body[slot], body, len);
	c->sent_at[slot] = c->fl->now;
	c->pending[c->npending++] = slot;
	return 0;
}

/* Whether shard @p s takes one more record now. */
static int fleet_take(fleet *fl, int s)
{
	if (fl->windows) {
		if (fl->now / 1000 != fl->window[s]) {
			fl->window[s] = fl->now / 1000;
			fl->in_window[s] = 0;
		}
		return fl->in_window[s] < 1000 ? (fl->in_window[s]++, 1) : 0;
	}
	fl->tokens[s] += (double)(fl->now - fl->last_ms[s]);
	if (fl->tokens[s] > 1000)
		fl->tokens[s] = 1000;
	fl->last_ms[s] = fl->now;
	return fl->tokens[s] >= 1 ? (fl->tokens[s] -= 1, 1) : 0;
}

static void fleet_answer(fleet *fl, const ks_buf *body, ks_buf *out)
{
	static unsigned char data[4096];
	json_t *root = json_loadb(body->data, body->len, 0, NULL), *r;
	int failed = 0;
	size_t i;

	ks_buf_puts(out, "{\"Records\":[");
	json_array_foreach(json_object_get(root, "Records"), i, r) {
		const char *pkey = json_string_value(json_object_get(r, "PartitionKey"));
		size_t dlen = wu_unbase64(json_string_value(json_object_get(r, "Data")), data);
		int s = (int)(ks_hash_key(pkey, strlen(pkey)) / (KS_U128_MAX / FLEET_SHARDS + 1)), w, key, seq;

		fl->entries += fl->counting;
		if (!fleet_take(fl, s)) {
			fl->throttled += fl->counting;
			failed++;
			ks_buf_printf(out, "%s{\"ErrorCode\":\"ProvisionedThroughputExceededException\",\"ErrorMessage\":\"Rate exceeded\"}",
				      i ? "," : "");
			continue;
		}
		fl->accepted += fl->counting;
		fl->stored++;
		data[dlen] = 0;
		CU_ASSERT_EQUAL_FATAL(sscanf(pkey, "w%d-k%d", &w, &key), 2);
		seq = atoi((const char *)data);
		if (seq != fl->last_seq[w][key] + 1)
			fl->order_bad++;
		fl->last_seq[w][key] = seq;
		ks_buf_printf(out, "%s{\"SequenceNumber\":\"%ld\",\"ShardId\":\"shardId-%012d\"}", i ? "," : "", fl->stored, s);
	}
	ks_buf_printf(out, "],\"FailedRecordCount\":%d}", failed);
	json_decref(root);
}

/* Answers the requests sent RTT_MS ago or earlier; never moves the clock (the test does). */
static void fleet_poll(void *t, int timeout_ms, int wake_fd, void (*done)(void *ud, const ks_http_answer *a), void *ud)
{
	fconn *c = t;
	int pending[16], n = c->npending, i;

	memcpy(pending, c->pending, sizeof(pending));
	c->npending = 0;
	for (i = 0; i < n; i++) {
		ks_http_answer a = { 0 };
		ks_buf out;

		if (c->fl->now - c->sent_at[pending[i]] < RTT_MS) {
			c->pending[c->npending++] = pending[i];
			continue;
		}
		ks_buf_init(&out, 0);
		fleet_answer(c->fl, &c->body[pending[i]], &out);
		a.status = 200;
		a.slot = pending[i];
		a.body = out.data;
		a.body_len = out.len;
		a.request_id = "req-f";
		done(ud, &a);
		ks_buf_clean(&out);
	}
}

static const ks_http_transport fleet_transport = { fleet_open, fleet_start, fleet_poll, fake_close };

static int64_t fleet_now(void *ud)
{
	return ((fleet *)ud)->now;
}

static void on_acked_quiet(void *opaque, ks_record *rec, const char *shard, const char *seq)
{
	(*(long *)opaque)++;
}

/*
 * @p nw writers (rate.limit.percent 100, the defaults otherwise) keep the stream's shards busy for
 * 40 s, polled every FLEET_TICK_MS (as a writer wakes when a batch is due); from 10 s on, the entries the service throttled and the records it accepted are counted.
 * @returns the share of the records limit used; sets @p thr_share.
 */
static double fleet_run(int nw, int windows, double *thr_share, const char *rate_metric_check)
{
	static const char *const props[] = { "shards.refresh.ms", "0", NULL };
	static fleet fl;
	fconn conn[FLEET_MAXW];
	ks_conf conf[FLEET_MAXW];
	ks_creds_t *creds[FLEET_MAXW];
	ks_metrics m[FLEET_MAXW];
	ks_kinesis_t *k[FLEET_MAXW];
	long acked[FLEET_MAXW] = { 0 }, submitted[FLEET_MAXW] = { 0 };
	int next_key[FLEET_MAXW] = { 0 }, seq[FLEET_MAXW][FLEET_KEYS];
	const int64_t t0 = 5000000, run_ms = 40000, warm_ms = 10000;
	double used;
	ks_errbuf err;
	int w, i;

	memset(&fl, 0, sizeof(fl));
	memset(seq, 0, sizeof(seq));
	memset(m, 0, sizeof(m));
	fl.now = t0;
	fl.windows = windows;
	for (i = 0; i < FLEET_SHARDS; i++) {
		fl.tokens[i] = 1000;
		fl.last_ms[i] = t0;
	}
	for (w = 0; w < nw; w++) {
		ks_kinesis_cbs cbs = { on_acked_quiet, on_failed, &acked[w], NULL };
		ks_kinesis_io io = { &fleet_transport, &conn[w], fleet_now, &fl, 0x9e3779b97f4a7c15ULL + (uint64_t)w };
		const char *list = "{\"Shards\":["
				   "{\"ShardId\":\"shardId-000000000000\",\"HashKeyRange\":{\"StartingHashKey\":\"0\",\"EndingHashKey\":\"170141183460469231731687303715884105727\"},\"SequenceNumberRange\":{\"StartingSequenceNumber\":\"1\"}},"
				   "{\"ShardId\":\"shardId-000000000001\",\"HashKeyRange\":{\"StartingHashKey\":\"170141183460469231731687303715884105728\",\"EndingHashKey\":\"340282366920938463463374607431768211455\"},\"SequenceNumberRange\":{\"StartingSequenceNumber\":\"1\"}}]}";
		ks_shardmap_t *map = ks_shardmap_new();
		char next[64];

		memset(&conn[w], 0, sizeof(conn[w]));
		conn[w].fl = &fl;
		for (i = 0; i < 16; i++)
			ks_buf_init(&conn[w].body[i], 0);
		wu_conf(&conf[w], props);
		creds[w] = ks_creds_new(&conf[w], &m[w], &err);
		k[w] = ks_kinesis_new_io(&conf[w], creds[w], &m[w], &cbs, &io, &err);
		CU_ASSERT_PTR_NOT_NULL_FATAL(k[w]);
		CU_ASSERT_EQUAL(ks_shardmap_add_page(map, list, strlen(list), next, sizeof(next), &err), 0);
		CU_ASSERT_EQUAL(ks_shardmap_finish(map, &err), 0);
		CU_ASSERT_EQUAL(ks_kinesis_set_shardmap(k[w], map), 0);
	}
	for (; fl.now < t0 + run_ms; fl.now += FLEET_TICK_MS) {
		fl.counting = fl.now >= t0 + warm_ms;
		for (w = 0; w < nw; w++) {
			/* Enough records held that the writer always has some for each shard. */
			while (ks_kinesis_inflight_records(k[w]) < 3000) {
				char key[16], data[16];
				ks_record *r;
				int kk = next_key[w]++ % FLEET_KEYS;

				snprintf(key, sizeof(key), "w%d-k%d", w, kk);
				snprintf(data, sizeof(data), "%d", ++seq[w][kk]);
				r = ks_record_new(key, strlen(key), data, strlen(data));
				CU_ASSERT_EQUAL_FATAL(ks_kinesis_submit(k[w], r, &err), 0);
				submitted[w]++;
			}
			CU_ASSERT_EQUAL_FATAL(ks_kinesis_poll(k[w], 0, -1, &err), 0);
		}
	}
	fl.counting = 0;
	if (rate_metric_check) {
		/* The current rate of each shard is shown, below the limit after the throttles. */
		ks_buf b;

		ks_buf_init(&b, 0);
		CU_ASSERT_EQUAL(ks_metrics_render(&m[0], NULL, 0, &b), 0);
		CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "kinesink_shard_rate_limit{stream=\"s1\",shard=\"shardId-000000000001\",unit=\"records\"} "));
		CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "kinesink_shard_rate_limit{stream=\"s1\",shard=\"shardId-000000000000\",unit=\"bytes\"} "));
		CU_ASSERT_PTR_NULL(strstr(b.data, "unit=\"records\"} 1000\n"));
		ks_buf_clean(&b);
	}
	/* Then every record goes: none lost, each key in order. */
	for (i = 0; i < 200000; i++) {
		int busy = 0;

		for (w = 0; w < nw; w++) {
			ks_kinesis_flush(k[w]);
			CU_ASSERT_EQUAL_FATAL(ks_kinesis_poll(k[w], 0, -1, &err), 0);
			busy |= ks_kinesis_inflight_records(k[w]) > 0;
		}
		if (!busy)
			break;
		fl.now += 5;
	}
	for (w = 0; w < nw; w++) {
		CU_ASSERT_EQUAL(ks_kinesis_inflight_records(k[w]), 0);
		CU_ASSERT_EQUAL(acked[w], submitted[w]);
		for (i = 0; i < FLEET_KEYS; i++)
			CU_ASSERT_EQUAL(fl.last_seq[w][i], seq[w][i]);
		ks_kinesis_destroy(k[w]);
		ks_creds_destroy(creds[w]);
		ks_conf_clean(&conf[w]);
		ks_metrics_clean(&m[w]);
		for (i = 0; i < 16; i++)
			ks_buf_clean(&conn[w].body[i]);
	}
	CU_ASSERT_EQUAL(fl.order_bad, 0);
	used = (double)fl.accepted / ((double)(run_ms - warm_ms) / 1000.0 * 1000.0 * FLEET_SHARDS);
	*thr_share = fl.entries ? (double)fl.throttled / (double)fl.entries : 0;
	fprintf(stderr, "\n  %d writer(s), %s: %.1f %% of the records limit used, %.2f %% of %ld entries throttled\n", nw,
		windows ? "per-second windows" : "token buckets", used * 100, *thr_share * 100, fl.entries);
	return used;
}

static void test_one_writer_uses_its_shards(void)
{
	double thr, used;
	int windows;

	for (windows = 0; windows < 2; windows++) {
		used = fleet_run(1, windows, &thr, NULL);
		CU_ASSERT_TRUE(used >= 0.90);
		CU_ASSERT_TRUE(thr < 0.01);
	}
}

static void test_writers_converge_on_shared_shards(void)
{
	double thr, used;
	int nw, windows;

	for (nw = 2; nw <= 3; nw++)
		for (windows = 0; windows < 2; windows++) {
			used = fleet_run(nw, windows, &thr, nw == 3 && windows ? "rates" : NULL);
			CU_ASSERT_TRUE(used >= 0.80);
			CU_ASSERT_TRUE(thr < 0.03);
		}
}

int main(void)
{
	static const tu_test tests[] = {
		{ "aggregation packs the records of a shard, across keys, each key in order",
		  test_aggregates_per_shard_across_keys },
		{ "aggregation.max.records bounds an aggregate", test_aggregate_limits },
		{ "records wait for their shard's buckets instead of being throttled", test_rate_limit_without_aggregation },
		{ "rate.limit.percent scales the buckets", test_rate_limit_percent },
		{ "a split behind the map: records outside the landed shard go again", test_split_resends_records_outside },
		{ "shards.refresh.ms lists the shards again", test_refresh_interval },
		{ "a split behind the map, its listing refused: records go again, none lost",
		  test_split_with_listing_refused },
		{ "without a map at start, the shards are listed later", test_listed_later_without_a_map },
		{ "ListShards failing: backoff, no spin, one warning per outage", test_listing_failures_back_off },
		{ "every listing refused after a split: resends bounded, none lost",
		  test_resends_bounded_while_listings_refused },
		{ "landed in a shard closed since: its range is still known", test_landed_in_a_shard_closed_since },
		{ "delivery.timeout.ms counts from the first send", test_delivery_timeout_from_the_first_send },
		{ "a merge behind the map: the child holds every record", test_merge_behind_the_map },
		{ "two reshards before a listing, answers out of order", test_two_reshards_before_a_listing },
		{ "a stream switched to AUTO: records go alone", test_switched_to_auto_while_running },
		{ "a stream switched to AUTO: upsert stops", test_switched_to_auto_stops_upsert },
		{ "an AUTO stream: the shards' limits together", test_auto_stream_limited_by_its_shards },
		{ "a flush covers the records waiting in the gate", test_flush_covers_the_gate },
		{ "a revoked partition: nothing sent after, what was in flight acknowledged",
		  test_revoked_partition_accepted_in_flight },
		{ "a revoked partition: what was in flight and throttled is dropped, not retried",
		  test_revoked_partition_throttled_in_flight },
		{ "a stall of the requests: no burst after it", test_stall_does_not_burst },
		{ "one writer alone: its shards' limits used, next to nothing throttled", test_one_writer_uses_its_shards },
		{ "two and three writers on shared shards: their rates converge", test_writers_converge_on_shared_shards },
		{ NULL, NULL },
	};

	return tu_main("shard-aware writer", tests);
}
