/* metrics.c: counters, histograms, Prometheus text and the HTTP endpoint (completed below). */
#include "metrics.h"

const double ks_latency_bounds_ms[KS_HIST_BUCKETS] = { 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000 };
const double ks_batch_bounds[KS_HIST_BUCKETS] = { 1, 5, 10, 25, 50, 100, 200, 300, 400, 450, 499, 500 };
const int64_t ks_record_latency_bounds_ms[KS_LAT_BUCKETS] = { 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000,
							       10000, 30000, 60000, 120000, 300000, 600000 };

/* A double has no atomic add: compare-and-swap until no other thread came in between. */
static void hist_add_sum(ks_hist *h, double v)
{
	double old, sum;

	__atomic_load(&h->sum, &old, __ATOMIC_RELAXED);
	do
		sum = old + v;
	while (!__atomic_compare_exchange(&h->sum, &old, &sum, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
}

static double hist_sum(const ks_hist *h)
{
	double sum;

	__atomic_load(&h->sum, &sum, __ATOMIC_RELAXED);
	return sum;
}

void ks_hist_observe(ks_hist *h, const double *bounds, double v)
{
	int i;

	for (i = 0; i < KS_HIST_BUCKETS && v > bounds[i]; i++)
		;
	__atomic_add_fetch(&h->bucket[i], 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&h->count, 1, __ATOMIC_RELAXED);
	hist_add_sum(h, v);
}

/* On the acknowledgement path, once per record: integer ms, so the sum is an atomic add too,
 * and the count is the buckets' sum, taken when the histogram is shown. */
void ks_latency_observe(ks_stream_latency *l, int64_t ts_ms, int64_t now_ms)
{
	int64_t v = now_ms - ts_ms;
	int i;

	if (!l)
		return;
	if (ts_ms <= 0) {
		__atomic_add_fetch(&l->no_timestamp, 1, __ATOMIC_RELAXED);
		return;
	}
	if (v < 0) {
		__atomic_add_fetch(&l->future_timestamp, 1, __ATOMIC_RELAXED);
		return;
	}
	for (i = 0; i < KS_LAT_BUCKETS && v > ks_record_latency_bounds_ms[i]; i++)
		;
	__atomic_add_fetch(&l->bucket[i], 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&l->sum_ms, (uint64_t)v, __ATOMIC_RELAXED);
}

/* ---- Prometheus text ----------------------------------------------------------------------- */

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "scrub.h"

static const char *const bad_names[KS_BAD__COUNT] = { "decode", "transform", "too_large", "bad_key", "non_row_event" };
static const char *const put_names[KS_PUTERR__COUNT] = { "throttled", "internal", "http_5xx", "network",
							 "expired_token", "fatal" };

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

static int counter(ks_buf *b, const char *name, const char *help, uint64_t v)
{
	return ks_buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
			     (unsigned long long)v);
}

static int gauge(ks_buf *b, const char *name, const char *help, int64_t v)
{
	return ks_buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %lld\n", name, help, name, name, (long long)v);
}

static int hist(ks_buf *b, const char *name, const char *help, const ks_hist *h, const double *bounds, double scale)
{
	uint64_t cum = 0;
	int i, r;

	if ((r = ks_buf_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name)))
		return r;
	for (i = 0; i < KS_HIST_BUCKETS; i++) {
		cum += LOAD(h->bucket[i]);
		if ((r = ks_buf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i] * scale, (unsigned long long)cum)))
			return r;
	}
	cum += LOAD(h->bucket[KS_HIST_BUCKETS]);
	return ks_buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %g\n%s_count %llu\n", name,
			     (unsigned long long)cum, name, hist_sum(h) * scale, name, (unsigned long long)LOAD(h->count));
}

/* Label values escape backslash, quote and newline. */
static int label(ks_buf *b, const char *v)
{
	int r = 0;

	for (; *v && !r; v++) {
		if (*v == '\\' || *v == '"')
			r = ks_buf_printf(b, "\\%c", *v);
		else if (*v == '\n')
			r = ks_buf_puts(b, "\\n");
		else
			r = ks_buf_append(b, v, 1);
	}
	return r;
}

static int part_metric(ks_buf *b, const char *name, const char *help, const char *type,
		       const ks_partition_stat *parts, int n, int which)
{
	int i, r = ks_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);

	for (i = 0; i < n && !r; i++) {
		int64_t v = which == 0 ? parts[i].lag : which == 1 ? parts[i].committed : which == 2 ? parts[i].last_acked
											: parts[i].behind_ms;

		if (which == 3 && v < 0)
			continue; /* not known: no sample rather than a made-up one */
		if ((r = ks_buf_printf(b, "%s{topic=\"", name)) || (r = label(b, parts[i].topic)))
			break;
		if (which == 3)
			r = ks_buf_printf(b, "\",partition=\"%d\"} %.3f\n", (int)parts[i].partition, (double)v / 1000.0);
		else
			r = ks_buf_printf(b, "\",partition=\"%d\"} %lld\n", (int)parts[i].partition, (long long)v);
	}
	return r;
}

/* What one shard of one stream was sent. */
struct ks_shard_counters {
	struct ks_shard_counters *next;
	uint64_t records, bytes, throttled;
	uint64_t rate_records, rate_bytes; /* per second, rounded (shown while held) */
	int refs;                          /* ks_metrics_shard_hold; under shards_lock */
	char *stream;
	char shard[64];
};

static void shards_lock(ks_metrics *m)
{
	while (__atomic_test_and_set(&m->shards_lock, __ATOMIC_ACQUIRE))
		;
}

static void shards_unlock(ks_metrics *m)
{
	__atomic_clear(&m->shards_lock, __ATOMIC_RELEASE);
}

/* The series of @p stream / @p shard, made when missing; under shards_lock. */
static struct ks_shard_counters *shard_series(ks_metrics *m, const char *stream, const char *shard)
{
	struct ks_shard_counters *c;

	for (c = m->shards; c && (strcmp(c->shard, shard) != 0 || strcmp(c->stream, stream) != 0); c = c->next)
		;
	if (!c && (c = calloc(1, sizeof(*c)))) {
		if (!(c->stream = strdup(stream))) {
			free(c);
			c = NULL;
		} else {
			snprintf(c->shard, sizeof(c->shard), "%s", shard);
			c->next = m->shards;
			m->shards = c;
		}
	}
	return c;
}

void ks_metrics_shard_count(struct ks_shard_counters *c, uint64_t records, uint64_t bytes, uint64_t throttled)
{
	if (!c)
		return;
	if (records)
		__atomic_fetch_add(&c->records, records, __ATOMIC_RELAXED);
	if (bytes)
		__atomic_fetch_add(&c->bytes, bytes, __ATOMIC_RELAXED);
	if (throttled)
		__atomic_fetch_add(&c->throttled, throttled, __ATOMIC_RELAXED);
}

void ks_metrics_shard_rate(struct ks_shard_counters *c, double records_per_s, double bytes_per_s)
{
	if (!c)
		return;
	__atomic_store_n(&c->rate_records, (uint64_t)(records_per_s + 0.5), __ATOMIC_RELAXED);
	__atomic_store_n(&c->rate_bytes, (uint64_t)(bytes_per_s + 0.5), __ATOMIC_RELAXED);
}

int ks_metrics_shard_add(ks_metrics *m, const char *stream, const char *shard, uint64_t records, uint64_t bytes,
			 uint64_t throttled)
{
	struct ks_shard_counters *c;

	if (!m || !shard || !*shard)
		return 0;
	shards_lock(m);
	c = shard_series(m, stream, shard);
	ks_metrics_shard_count(c, records, bytes, throttled);
	shards_unlock(m);
	return c ? 0 : KS_ERR_NOMEM;
}

struct ks_shard_counters *ks_metrics_shard_hold(ks_metrics *m, const char *stream, const char *shard)
{
	struct ks_shard_counters *c;

	if (!m || !shard || !*shard)
		return NULL;
	shards_lock(m);
	if ((c = shard_series(m, stream, shard)))
		c->refs++;
	shards_unlock(m);
	return c;
}

void ks_metrics_shard_release(ks_metrics *m, struct ks_shard_counters *c)
{
	struct ks_shard_counters **pp;

	if (!m || !c)
		return;
	shards_lock(m);
	if (--c->refs <= 0) {
		for (pp = &m->shards; *pp && *pp != c; pp = &(*pp)->next)
			;
		if (*pp)
			*pp = c->next;
		free(c->stream);
		free(c);
	}
	shards_unlock(m);
}

ks_stream_latency *ks_metrics_stream_latency(ks_metrics *m, const char *stream)
{
	ks_stream_latency *l;

	if (!m)
		return NULL;
	shards_lock(m);
	for (l = m->latencies; l && strcmp(l->stream, stream) != 0; l = l->next)
		;
	if (!l && (l = calloc(1, sizeof(*l)))) {
		if (!(l->stream = strdup(stream))) {
			free(l);
			l = NULL;
		} else {
			l->next = m->latencies;
			m->latencies = l;
		}
	}
	shards_unlock(m);
	return l;
}

void ks_metrics_clean(ks_metrics *m)
{
	struct ks_shard_counters *c;
	ks_stream_latency *l;

	while ((c = m->shards)) {
		m->shards = c->next;
		free(c->stream);
		free(c);
	}
	while ((l = m->latencies)) {
		m->latencies = l->next;
		free(l->stream);
		free(l);
	}
}

static int stream_label(ks_buf *b, const char *name, const char *suffix, const char *stream)
{
	int r;

	if (!(r = ks_buf_printf(b, "%s%s{stream=\"", name, suffix)))
		r = label(b, stream);
	return r;
}

/* kinesink_record_latency_seconds per stream, and the records left out of it. */
static int latency_metrics(ks_buf *b, ks_metrics *m)
{
	static const char *const name = "kinesink_record_latency_seconds";
	static const char *const left = "kinesink_record_latency_unmeasured_total";
	const ks_stream_latency *l;
	int r, i;

	r = ks_buf_printf(b, "# HELP %s From a record's Kafka timestamp to Kinesis' acknowledgement of it, per stream.\n"
			     "# TYPE %s histogram\n", name, name);
	shards_lock(m);
	for (l = m->latencies; l && !r; l = l->next) {
		uint64_t cum = 0;

		for (i = 0; i <= KS_LAT_BUCKETS && !r; i++) {
			cum += LOAD(l->bucket[i]);
			if (!(r = stream_label(b, name, "_bucket", l->stream))) {
				if (i < KS_LAT_BUCKETS)
					r = ks_buf_printf(b, "\",le=\"%g\"} %llu\n",
							  (double)ks_record_latency_bounds_ms[i] / 1000.0,
							  (unsigned long long)cum);
				else
					r = ks_buf_printf(b, "\",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
			}
		}
		if (!r && !(r = stream_label(b, name, "_sum", l->stream)))
			r = ks_buf_printf(b, "\"} %.3f\n", (double)LOAD(l->sum_ms) / 1000.0);
		if (!r && !(r = stream_label(b, name, "_count", l->stream)))
			r = ks_buf_printf(b, "\"} %llu\n", (unsigned long long)cum);
	}
	if (!r)
		r = ks_buf_printf(b, "# HELP %s Acknowledged records left out of %s: their Kafka message had no timestamp "
				     "(reason no_timestamp) or one after the acknowledgement (future_timestamp: the "
				     "producer's clock is ahead of this host's).\n# TYPE %s counter\n", left, name, left);
	for (l = m->latencies; l && !r; l = l->next) {
		if (!(r = stream_label(b, left, "", l->stream)))
			r = ks_buf_printf(b, "\",reason=\"no_timestamp\"} %llu\n", (unsigned long long)LOAD(l->no_timestamp));
		if (!r && !(r = stream_label(b, left, "", l->stream)))
			r = ks_buf_printf(b, "\",reason=\"future_timestamp\"} %llu\n",
					  (unsigned long long)LOAD(l->future_timestamp));
	}
	shards_unlock(m);
	return r;
}

static int shard_metric(ks_buf *b, ks_metrics *m, const char *name, const char *help, int which)
{
	const struct ks_shard_counters *c;
	int r = ks_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, which == 3 ? "gauge" : "counter");

	shards_lock(m);
	for (c = m->shards; c && !r; c = c->next) {
		uint64_t v = which == 0 ? LOAD(c->records) : which == 1 ? LOAD(c->bytes) : LOAD(c->throttled);
		int u;

		if (which == 3) { /* the current rates, of the shards written to under limits */
			for (u = 0; u < 2 && c->refs > 0 && LOAD(c->rate_bytes) && !r; u++)
				if (!(r = ks_buf_printf(b, "%s{stream=\"", name)) && !(r = label(b, c->stream)) &&
				    !(r = ks_buf_puts(b, "\",shard=\"")) && !(r = label(b, c->shard)))
					r = ks_buf_printf(b, "\",unit=\"%s\"} %llu\n", u ? "bytes" : "records",
							  (unsigned long long)(u ? LOAD(c->rate_bytes) : LOAD(c->rate_records)));
			continue;
		}
		if (!(r = ks_buf_printf(b, "%s{stream=\"", name)) && !(r = label(b, c->stream)) &&
		    !(r = ks_buf_puts(b, "\",shard=\"")) && !(r = label(b, c->shard)))
			r = ks_buf_printf(b, "\"} %llu\n", (unsigned long long)v);
	}
	shards_unlock(m);
	return r;
}

int ks_metrics_render(const ks_metrics *m, const ks_partition_stat *parts, int nparts, ks_buf *b)
{
	int i, r = 0;

	r |= counter(b, "kinesink_records_consumed_total", "Kafka messages consumed.", LOAD(m->records_consumed));
	r |= counter(b, "kinesink_fetch_restarts_total", "Partitions with data left whose idle fetch was restarted.",
		     LOAD(m->fetch_restarts));
	r |= counter(b, "kinesink_records_decoded_total", "Messages decoded into row changes.", LOAD(m->records_decoded));
	r |= ks_buf_puts(b, "# HELP kinesink_records_bad_total Bad records, by reason.\n# TYPE kinesink_records_bad_total counter\n");
	for (i = 0; i < KS_BAD__COUNT; i++)
		r |= ks_buf_printf(b, "kinesink_records_bad_total{reason=\"%s\"} %llu\n", bad_names[i],
				   (unsigned long long)LOAD(m->records_bad[i]));
	r |= counter(b, "kinesink_records_put_total", "Records Kinesis accepted.", LOAD(m->records_put_ok));
	r |= ks_buf_puts(b, "# HELP kinesink_records_put_failed_total Record puts that failed (and were retried unless fatal), by error.\n# TYPE kinesink_records_put_failed_total counter\n");
	for (i = 0; i < KS_PUTERR__COUNT; i++)
		r |= ks_buf_printf(b, "kinesink_records_put_failed_total{code=\"%s\"} %llu\n", put_names[i],
				   (unsigned long long)LOAD(m->records_put_failed[i]));
	r |= counter(b, "kinesink_records_retried_total", "Records scheduled for another attempt.", LOAD(m->records_retried));
	r |= counter(b, "kinesink_records_throttled_total", "Records Kinesis throttled.", LOAD(m->records_throttled));
	r |= counter(b, "kinesink_records_dead_lettered_total", "Bad records written to the dead-letter topic.", LOAD(m->records_dead_lettered));
	r |= counter(b, "kinesink_records_dead_lettered_truncated_total", "Of those, records the dead-letter topic refused by size, written as a reference record (headers and a prefix).", LOAD(m->records_dead_lettered_truncated));
	r |= counter(b, "kinesink_records_skipped_total", "Bad records skipped by errors.policy=skip.", LOAD(m->records_skipped));
	r |= counter(b, "kinesink_bytes_put_total", "Bytes (partition keys plus data) Kinesis accepted.", LOAD(m->bytes_put));
	r |= counter(b, "kinesink_requests_total", "PutRecords requests sent.", LOAD(m->requests_sent));
	r |= counter(b, "kinesink_credential_refreshes_total", "Temporary AWS credentials refreshed.", LOAD(m->credential_refreshes));
	r |= gauge(b, "kinesink_inflight_records", "Records between Kafka and a Kinesis acknowledgement.", LOAD(m->inflight_records));
	r |= gauge(b, "kinesink_inflight_bytes", "Bytes between Kafka and a Kinesis acknowledgement.", LOAD(m->inflight_bytes));
	r |= gauge(b, "kinesink_paused_partitions", "Partitions paused by backpressure or shutdown.", LOAD(m->paused_partitions));
	r |= gauge(b, "kinesink_assigned_partitions", "Partitions assigned to this worker.", LOAD(m->assigned_partitions));
	r |= gauge(b, "kinesink_kinesis_reachable", "1 once the stream check passed and no fatal Kinesis error since (/readyz).",
		   LOAD(m->kinesis_reachable));
	r |= gauge(b, "kinesink_stream_open_shards", "Open shards of the stream, as ListShards last told.",
		   LOAD(m->stream_open_shards));
	r |= counter(b, "kinesink_shard_map_refreshes_total", "Shard maps listed again (ListShards) while running.",
		     LOAD(m->shard_map_refreshes));
	r |= counter(b, "kinesink_shard_mispredictions_total", "Entries that landed in another shard than predicted.",
		     LOAD(m->shard_mispredictions));
	r |= counter(b, "kinesink_records_resent_reshard_total",
		     "User records sent again because their aggregate landed in a shard outside whose range they hash.",
		     LOAD(m->records_resent_reshard));
	r |= shard_metric(b, (ks_metrics *)m, "kinesink_shard_records_total", "User records a shard accepted.", 0);
	r |= shard_metric(b, (ks_metrics *)m, "kinesink_shard_bytes_total", "Bytes (partition keys plus data) a shard accepted.", 1);
	r |= shard_metric(b, (ks_metrics *)m, "kinesink_shard_throttled_total", "Entries a shard throttled.", 2);
	r |= shard_metric(b, (ks_metrics *)m, "kinesink_shard_rate_limit",
			  "The rate (per second, of records or bytes) the writer sends a shard at now: cut when the shard throttles, raised back toward its limit times rate.limit.percent as it accepts.",
			  3);
	r |= hist(b, "kinesink_put_latency_seconds", "PutRecords request latency.", &m->put_latency_ms, ks_latency_bounds_ms, 0.001);
	r |= hist(b, "kinesink_batch_records", "Records per PutRecords request.", &m->batch_records, ks_batch_bounds, 1.0);
	r |= latency_metrics(b, (ks_metrics *)m);
	r |= part_metric(b, "kinesink_partition_lag", "Messages between the committable offset and the high watermark.", "gauge", parts, nparts, 0);
	r |= part_metric(b, "kinesink_partition_committed_offset", "Last committed offset.", "gauge", parts, nparts, 1);
	r |= part_metric(b, "kinesink_partition_acked_offset", "Highest offset acknowledged by Kinesis.", "gauge", parts, nparts, 2);
	r |= part_metric(b, "kinesink_partition_seconds_behind",
			 "Age of the oldest message taken and not yet acknowledged; with everything taken acknowledged, "
			 "of the last message taken while the partition has more to read, else 0 (docs/design.md).",
			 "gauge", parts, nparts, 3);
	return r ? KS_ERR_NOMEM : 0;
}

/* ---- HTTP endpoint ------------------------------------------------------------------------------ */

#define HEALTH_STALL_MS 30000
#define MAX_PARTS 4096

struct ks_metrics_server {
	struct MHD_Daemon *d;
	ks_metrics *m;
	ks_partition_stats_fn stats;
	void *opaque;
	int64_t delivery_timeout_ms;
	int port;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type, const char *body, size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", type);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
				  const char *version, const char *upload, size_t *upload_len, void **state)
{
	ks_metrics_server_t *s = cls;
	int64_t now = ks_now_ms();
	char text[256];

	(void)version;
	(void)upload;
	(void)upload_len;
	(void)state;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return reply(c, 405, "text/plain", "method not allowed\n", 19);
	if (strcmp(url, "/metrics") == 0) {
		ks_partition_stat *parts = calloc(MAX_PARTS, sizeof(*parts));
		int n = parts && s->stats ? s->stats(s->opaque, parts, MAX_PARTS) : 0;
		enum MHD_Result ret;
		ks_buf b, scrubbed;

		ks_buf_init(&b, 64u << 20);
		ks_buf_init(&scrubbed, 0);
		/* Labels carry names peers gave (topics, shard ids): the text leaves scrubbed. */
		if (ks_metrics_render(s->m, parts, n, &b) || !b.data || ks_scrub_buf(b.data, b.len, &scrubbed) ||
		    !scrubbed.data)
			ret = reply(c, 500, "text/plain", "out of memory\n", 14);
		else
			ret = reply(c, 200, "text/plain; version=0.0.4", scrubbed.data, scrubbed.len);
		ks_buf_clean(&b);
		ks_buf_clean(&scrubbed);
		free(parts);
		return ret;
	}
	if (strcmp(url, "/healthz") == 0) {
		int64_t last = LOAD(s->m->last_loop_ms);

		if (last && now - last > HEALTH_STALL_MS) {
			snprintf(text, sizeof(text), "stalled: the pipeline loop has not turned for %lld ms\n",
				 (long long)(now - last));
			return reply(c, 503, "text/plain", text, strlen(text));
		}
		return reply(c, 200, "text/plain", "ok\n", 3);
	}
	if (strcmp(url, "/readyz") == 0) {
		int64_t since = LOAD(s->m->retrying_since_ms);

		if (LOAD(s->m->assigned_partitions) <= 0)
			snprintf(text, sizeof(text), "not ready: no partitions assigned\n");
		else if (!LOAD(s->m->kinesis_reachable))
			snprintf(text, sizeof(text), "not ready: Kinesis not reachable\n");
		else if (since && s->delivery_timeout_ms > 0 && now - since > s->delivery_timeout_ms)
			snprintf(text, sizeof(text), "not ready: puts failing for %lld ms (delivery.timeout.ms %lld)\n",
				 (long long)(now - since), (long long)s->delivery_timeout_ms);
		else
			return reply(c, 200, "text/plain", "ready\n", 6);
		return reply(c, 503, "text/plain", text, strlen(text));
	}
	return reply(c, 404, "text/plain", "not found: try /metrics, /healthz or /readyz\n", 46);
}

ks_metrics_server_t *ks_metrics_server_new(const char *listen, ks_metrics *m, ks_partition_stats_fn stats,
					   void *opaque, int64_t delivery_timeout_ms, ks_errbuf *err)
{
	struct sockaddr_storage ss;
	const union MHD_DaemonInfo *info;
	ks_metrics_server_t *s;
	char host[256], *end;
	const char *colon = strrchr(listen, ':');
	socklen_t sl;
	long port;

	memset(&ss, 0, sizeof(ss));
	if (!colon || colon == listen) {
		ks_errbuf_set(err, KS_ERR_CONFIG, "metrics.listen: expected host:port, got '%s'", listen);
		return NULL;
	}
	port = strtol(colon + 1, &end, 10);
	if (*end || port < 0 || port > 65535) {
		ks_errbuf_set(err, KS_ERR_CONFIG, "metrics.listen: bad port in '%s'", listen);
		return NULL;
	}
	snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
	if (host[0] == '[') { /* [::1]:9464 */
		memmove(host, host + 1, strlen(host));
		host[strcspn(host, "]")] = '\0';
	}
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		((struct sockaddr_in *)&ss)->sin_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
		sl = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
		sl = sizeof(struct sockaddr_in6);
	} else {
		ks_errbuf_set(err, KS_ERR_CONFIG, "metrics.listen: '%s' is not an IP address (use e.g. 127.0.0.1:9464 or 0.0.0.0:9464)", host);
		return NULL;
	}
	(void)sl;
	if (!(s = calloc(1, sizeof(*s)))) {
		ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
		return NULL;
	}
	s->m = m;
	s->stats = stats;
	s->opaque = opaque;
	s->delivery_timeout_ms = delivery_timeout_ms;
	s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
					(ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
				(uint16_t)port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
				MHD_OPTION_CONNECTION_LIMIT, 32u, MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
	if (!s->d) {
		ks_errbuf_set(err, KS_ERR_CONFIG, "metrics.listen: cannot listen on %s (address in use or not available); set another port or metrics.listen = off", listen);
		free(s);
		return NULL;
	}
	info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	s->port = info ? info->port : (int)port;
	ks_info("metrics", "serving /metrics, /healthz, /readyz on %s:%d", host, s->port);
	return s;
}

void ks_metrics_server_destroy(ks_metrics_server_t *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->d);
	free(s);
}
