/*
 * The Kinesis writer. Records wait in a ready queue, are batched to the service limits into
 * PutRecords requests sent over the libcurl multi interface, and each answer entry acknowledges
 * or fails one record. Only failed entries are sent again, after a jittered exponential backoff.
 *
 * Per-key order (ordering=key): a key table holds, for each partition key the writer owns,
 * the one record that may be queued or in flight and a FIFO of the later records of that key.
 * A later record becomes ready only once the earlier one was acknowledged, so neither a partial
 * failure nor a retry can reorder a key.
 *
 * KPL aggregation (aggregation=kpl, with ordering=key): when a key's record is batched, the records
 * waiting behind it join it (its `agg` chain), up to the 1 MiB record limit, and go as one
 * aggregated Kinesis record. The aggregate is acknowledged, retried or failed as a whole, so the
 * key's order holds; a record alone goes as it is.
 */
#include "kinesis.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "kpl.h"
#include "log.h"
#include "sigv4.h"

#define KS_MAX_BATCH_RECORDS 500
#define KS_MAX_BATCH_BYTES (5 * 1024 * 1024)

typedef struct rqueue {
	ks_record *head, *tail;
	size_t n;
	size_t bytes;
} rqueue;

static void rq_push(rqueue *q, ks_record *r)
{
	r->next = NULL;
	if (q->tail)
		q->tail->next = r;
	else
		q->head = r;
	q->tail = r;
	q->n++;
	q->bytes += r->pkey_len + r->data_len;
}

static ks_record *rq_pop(rqueue *q)
{
	ks_record *r = q->head;

	if (!r)
		return NULL;
	q->head = r->next;
	if (!q->head)
		q->tail = NULL;
	r->next = NULL;
	q->n--;
	q->bytes -= r->pkey_len + r->data_len;
	return r;
}

/* One partition key the writer owns: its active record and the ones waiting behind it. */
typedef struct kslot {
	uint64_t hash;
	ks_record *active;  /* NULL: empty slot */
	rqueue waiting;
} kslot;

typedef struct request {
	CURL *easy;
	struct curl_slist *headers;
	ks_buf body;
	ks_buf resp;
	ks_record **recs;
	size_t n;
	int64_t start_ms;
	int busy;
	char curl_err[CURL_ERROR_SIZE];
	char request_id[128];
} request;

struct ks_kinesis {
	const ks_conf *conf;
	char *url;
	char host[256];       /* as sent in Host and signed */
	const char *path;     /* into url */
	ks_creds_t *creds;
	ks_metrics *metrics;
	ks_kinesis_cbs cbs;
	CURLM *multi;
	request *reqs;
	int nreqs;
	int busy;

	rqueue ready;          /* may be sent now */
	rqueue retry;          /* waiting for their backoff */
	kslot *keys;           /* per-key gate (ordering=key) */
	size_t keys_cap, keys_n;
	size_t held_records;
	size_t held_bytes;
	int flush;
	uint64_t rng;

	ks_buf kpl;            /* aggregation=kpl: one aggregate being encoded */
	ks_record **kpl_recs;  /* its records */
	size_t kpl_cap;

	int expired_retry;     /* an ExpiredTokenException was answered: credentials refreshed once */
	int fatal;
	ks_errbuf fatal_err;
};

/* ---- per-key gate ----------------------------------------------------------------------- */

static kslot *key_find(ks_kinesis_t *k, const ks_record *r)
{
	size_t mask = k->keys_cap - 1, i = (size_t)r->key_hash & mask;

	for (;; i = (i + 1) & mask) {
		kslot *s = &k->keys[i];

		if (!s->active)
			return s;
		if (s->hash == r->key_hash && s->active->pkey_len == r->pkey_len &&
		    memcmp(s->active->pkey, r->pkey, r->pkey_len) == 0)
			return s;
	}
}

static int key_grow(ks_kinesis_t *k)
{
	size_t ncap = k->keys_cap ? k->keys_cap * 2 : 1024, i;
	kslot *old = k->keys, *n = calloc(ncap, sizeof(*n));
	size_t ocap = k->keys_cap;

	if (!n)
		return KS_ERR_NOMEM;
	k->keys = n;
	k->keys_cap = ncap;
	for (i = 0; i < ocap; i++)
		if (old[i].active)
			*key_find(k, old[i].active) = old[i];
	free(old);
	return 0;
}

/* Remove a slot with backward-shift deletion (linear probing keeps no tombstones). */
static void key_remove(ks_kinesis_t *k, kslot *s)
{
	size_t mask = k->keys_cap - 1, i = (size_t)(s - k->keys), j = i;

	for (;;) {
		size_t home;

		j = (j + 1) & mask;
		if (!k->keys[j].active)
			break;
		home = (size_t)k->keys[j].hash & mask;
		/* Move j into the hole at i when its home is not cyclically in (i, j]. */
		if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
			k->keys[i] = k->keys[j];
			i = j;
		}
	}
	memset(&k->keys[i], 0, sizeof(k->keys[i]));
	k->keys_n--;
}

/* ---- set-up ------------------------------------------------------------------------------ */

static void parse_endpoint(ks_kinesis_t *k)
{
	const char *h = strstr(k->url, "://"), *slash, *colon;
	int https = strncmp(k->url, "https://", 8) == 0;
	size_t hl;

	h = h ? h + 3 : k->url;
	slash = strchr(h, '/');
	hl = slash ? (size_t)(slash - h) : strlen(h);
	k->path = slash ? slash : "/";
	snprintf(k->host, sizeof(k->host), "%.*s", (int)hl, h);
	/* A default port is not part of the Host header curl would send. */
	colon = strrchr(k->host, ':');
	if (colon && ((https && strcmp(colon, ":443") == 0) || (!https && strcmp(colon, ":80") == 0)))
		k->host[colon - k->host] = '\0';
}

static int setup_request(ks_kinesis_t *k, request *rq)
{
	if (!(rq->easy = curl_easy_init()))
		return KS_ERR_NOMEM;
	ks_buf_init(&rq->body, 0);
	ks_buf_init(&rq->resp, 8u << 20);
	if (!(rq->recs = calloc(KS_MAX_BATCH_RECORDS, sizeof(*rq->recs))))
		return KS_ERR_NOMEM;
	curl_easy_setopt(rq->easy, CURLOPT_URL, k->url);
	curl_easy_setopt(rq->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(rq->easy, CURLOPT_ERRORBUFFER, rq->curl_err);
	curl_easy_setopt(rq->easy, CURLOPT_TIMEOUT_MS, (long)k->conf->request_timeout_ms);
	curl_easy_setopt(rq->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)k->conf->connect_timeout_ms);
	curl_easy_setopt(rq->easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(rq->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(rq->easy, CURLOPT_PRIVATE, rq);
	if (k->conf->ssl_ca_location)
		curl_easy_setopt(rq->easy, CURLOPT_CAINFO, k->conf->ssl_ca_location);
	if (k->conf->http_proxy)
		curl_easy_setopt(rq->easy, CURLOPT_PROXY, k->conf->http_proxy);
	return 0;
}

ks_kinesis_t *ks_kinesis_new(const ks_conf *conf, ks_creds_t *creds, ks_metrics *metrics,
			     const ks_kinesis_cbs *cbs, ks_errbuf *err)
{
	ks_kinesis_t *k;
	int i;

	if (!(k = calloc(1, sizeof(*k))))
		goto nomem;
	k->conf = conf;
	k->creds = creds;
	k->metrics = metrics;
	k->cbs = *cbs;
	k->rng = (uint64_t)time(NULL) * 6364136223846793005ULL ^ (uint64_t)getpid();
	if (!(k->url = ks_conf_kinesis_endpoint(conf)))
		goto nomem;
	parse_endpoint(k);
	if (!(k->multi = curl_multi_init()))
		goto nomem;
	k->nreqs = conf->max_inflight_requests > 0 ? conf->max_inflight_requests : 1;
	curl_multi_setopt(k->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)k->nreqs);
	if (!(k->reqs = calloc((size_t)k->nreqs, sizeof(*k->reqs))))
		goto nomem;
	for (i = 0; i < k->nreqs; i++)
		if (setup_request(k, &k->reqs[i]))
			goto nomem;
	if (key_grow(k))
		goto nomem;
	ks_buf_init(&k->kpl, KS_MAX_RECORD_BYTES);
	return k;
nomem:
	ks_kinesis_destroy(k);
	ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory creating the Kinesis writer");
	return NULL;
}

/* A record and the records aggregated behind it. */
static void destroy_group(ks_record *r)
{
	while (r) {
		ks_record *next = r->agg;

		ks_record_destroy(r);
		r = next;
	}
}

static void free_queue(rqueue *q)
{
	ks_record *r;

	while ((r = rq_pop(q)))
		destroy_group(r);
}

void ks_kinesis_destroy(ks_kinesis_t *k)
{
	size_t i;
	int j;

	if (!k)
		return;
	for (j = 0; k->reqs && j < k->nreqs; j++) {
		request *rq = &k->reqs[j];

		if (rq->easy) {
			if (rq->busy)
				curl_multi_remove_handle(k->multi, rq->easy);
			curl_easy_cleanup(rq->easy);
		}
		curl_slist_free_all(rq->headers);
		for (i = 0; rq->busy && i < rq->n; i++)
			destroy_group(rq->recs[i]);
		free(rq->recs);
		ks_buf_clean(&rq->body);
		ks_buf_clean(&rq->resp);
	}
	free(k->reqs);
	free_queue(&k->ready);
	free_queue(&k->retry);
	for (i = 0; i < k->keys_cap; i++)
		free_queue(&k->keys[i].waiting);
	free(k->keys);
	ks_buf_clean(&k->kpl);
	free(k->kpl_recs);
	if (k->multi)
		curl_multi_cleanup(k->multi);
	free(k->url);
	free(k);
}

/* ---- signing and sending ------------------------------------------------------------------ */

/* Headers of a signed Kinesis call; the body is already in @p body. */
static int signed_headers(ks_kinesis_t *k, const char *target, const ks_buf *body,
			  struct curl_slist **out, ks_errbuf *err)
{
	ks_credentials cr;
	ks_sigv4_result sig;
	ks_header hs[2] = { { "Content-Type", "application/x-amz-json-1.1" }, { "X-Amz-Target", target } };
	ks_sigv4_request sreq = { "POST", k->host, k->path, NULL, hs, 2, body->data, body->len,
				  k->conf->aws_region, "kinesis" };
	ks_sigv4_keys keys;
	struct curl_slist *l = NULL, *t;
	ks_buf line;
	int rc;

	if ((rc = ks_creds_get(k->creds, time(NULL), &cr, err)))
		return rc;
	keys.access_key_id = cr.access_key_id;
	keys.secret_access_key = cr.secret_access_key;
	keys.session_token = cr.session_token;
	if ((rc = ks_sigv4_sign(&sreq, &keys, time(NULL), &sig))) {
		ks_credentials_clean(&cr);
		return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory signing a request");
	}
	ks_buf_init(&line, 0);
#define ADD(...)                                                                  \
	do {                                                                      \
		ks_buf_reset(&line);                                              \
		if (ks_buf_printf(&line, __VA_ARGS__) || !(t = curl_slist_append(l, line.data))) \
			goto nomem;                                               \
		l = t;                                                            \
	} while (0)
	ADD("Host: %s", k->host);
	ADD("Content-Type: application/x-amz-json-1.1");
	ADD("X-Amz-Target: %s", target);
	ADD("X-Amz-Date: %s", sig.amz_date);
	ADD("Authorization: %s", sig.authorization);
	if (cr.session_token)
		ADD("X-Amz-Security-Token: %s", cr.session_token);
	ADD("Expect:");
#undef ADD
	ks_buf_clean(&line);
	ks_sigv4_result_clean(&sig);
	ks_credentials_clean(&cr);
	*out = l;
	return 0;
nomem:
	ks_buf_clean(&line);
	ks_sigv4_result_clean(&sig);
	ks_credentials_clean(&cr);
	curl_slist_free_all(l);
	return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory building request headers");
}

static void set_fatal(ks_kinesis_t *k, const ks_errbuf *e)
{
	if (k->fatal)
		return;
	k->fatal = 1;
	k->fatal_err = *e;
	k->fatal_err.fatal = 1;
	KS_METRIC_SET(k->metrics, kinesis_reachable, 0);
}

/* The KPL aggregate of @p head and the records behind it, into k->kpl. */
static int encode_aggregate(ks_kinesis_t *k, ks_record *head)
{
	size_t n = 0;
	ks_record *r;

	if (head->agg_n + 1 > k->kpl_cap) {
		ks_record **nr = realloc(k->kpl_recs, (head->agg_n + 1) * sizeof(*nr));

		if (!nr)
			return KS_ERR_NOMEM;
		k->kpl_recs = nr;
		k->kpl_cap = head->agg_n + 1;
	}
	for (r = head; r; r = r->agg)
		k->kpl_recs[n++] = r;
	ks_buf_reset(&k->kpl);
	return ks_kpl_encode(k->kpl_recs, n, &k->kpl);
}

static int build_body(ks_kinesis_t *k, request *rq)
{
	size_t i;
	int r;

	ks_buf_reset(&rq->body);
	if ((r = ks_buf_puts(&rq->body, "{\"StreamName\":")) ||
	    (r = ks_buf_json_str(&rq->body, k->conf->stream, strlen(k->conf->stream))) ||
	    (r = ks_buf_puts(&rq->body, ",\"Records\":[")))
		return r;
	for (i = 0; i < rq->n; i++) {
		ks_record *rec = rq->recs[i];
		const void *data = rec->data;
		size_t len = rec->data_len;

		if (rec->agg) {
			if ((r = encode_aggregate(k, rec)))
				return r;
			data = k->kpl.data;
			len = k->kpl.len;
		}
		if ((r = ks_buf_puts(&rq->body, i ? ",{\"Data\":\"" : "{\"Data\":\"")) ||
		    (r = ks_buf_base64(&rq->body, data, len)) ||
		    (r = ks_buf_puts(&rq->body, "\",\"PartitionKey\":")) ||
		    (r = ks_buf_json_str(&rq->body, rec->pkey, rec->pkey_len)) ||
		    (r = ks_buf_append(&rq->body, "}", 1)))
			return r;
	}
	return ks_buf_puts(&rq->body, "]}");
}

static size_t on_resp(char *p, size_t size, size_t n, void *ud)
{
	request *rq = ud;

	return ks_buf_append(&rq->resp, p, size * n) ? 0 : size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	request *rq = ud;

	ks_http_request_id_header(p, size * n, rq->request_id, sizeof(rq->request_id));
	return size * n;
}

static void requeue_retry(ks_kinesis_t *k, ks_record *rec, int64_t now, const char *why);

static int start_request(ks_kinesis_t *k, request *rq, int64_t now)
{
	ks_errbuf err;
	size_t i;
	int rc;

	ks_errbuf_clear(&err);
	curl_slist_free_all(rq->headers);
	rq->headers = NULL;
	if ((rc = build_body(k, rq)) || (rc = signed_headers(k, "Kinesis_20131202.PutRecords", &rq->body,
								 &rq->headers, &err))) {
		if (rc == KS_ERR_NOMEM || rc == KS_ERR_TOOBIG) {
			ks_errbuf_set(&err, KS_ERR_FATAL, "cannot build a PutRecords request: %s", ks_err_str(rc));
			set_fatal(k, &err);
			return rc;
		}
		/* Credentials not available right now: the records wait and try again. */
		ks_warn("kinesis", "cannot sign PutRecords for stream %s: %s", k->conf->stream, err.text);
		if (err.fatal && rc == KS_ERR_AUTH) {
			set_fatal(k, &err);
			return rc;
		}
		for (i = 0; i < rq->n; i++)
			requeue_retry(k, rq->recs[i], now, "credentials unavailable");
		rq->n = 0;
		return rc;
	}
	ks_buf_reset(&rq->resp);
	rq->request_id[0] = '\0';
	rq->curl_err[0] = '\0';
	curl_easy_setopt(rq->easy, CURLOPT_HTTPHEADER, rq->headers);
	curl_easy_setopt(rq->easy, CURLOPT_POSTFIELDS, rq->body.data);
	curl_easy_setopt(rq->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body.len);
	curl_easy_setopt(rq->easy, CURLOPT_WRITEFUNCTION, on_resp);
	curl_easy_setopt(rq->easy, CURLOPT_WRITEDATA, rq);
	curl_easy_setopt(rq->easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(rq->easy, CURLOPT_HEADERDATA, rq);
	if (curl_multi_add_handle(k->multi, rq->easy) != CURLM_OK) {
		ks_errbuf_set(&err, KS_ERR_FATAL, "cannot start an HTTP request to %s", k->url);
		set_fatal(k, &err);
		return KS_ERR_FATAL;
	}
	rq->busy = 1;
	rq->start_ms = now;
	k->busy++;
	KS_METRIC_ADD(k->metrics, requests_sent, 1);
	return 0;
}

/* A batch is due when full, when its oldest record lingered long enough, or on flush. */
static int batch_due(const ks_kinesis_t *k, int64_t now)
{
	int max_recs = k->conf->batch_max_records;

	if (!k->ready.n)
		return 0;
	return k->flush || (int)k->ready.n >= max_recs || k->ready.bytes >= (size_t)k->conf->batch_max_bytes ||
	       now - k->ready.head->not_before_ms >= k->conf->batch_linger_ms;
}

/* What an entry adds to a request: partition key and data, or the aggregate's bound. */
static size_t entry_bytes(const ks_record *r)
{
	return r->pkey_len + (r->agg ? r->agg_cost : r->data_len);
}

/*
 * The records waiting behind @p head (the active record of its key, on its first try) join its
 * aggregate while it stays a valid Kinesis record and the entry within @p room bytes.
 * @returns the entry's bytes.
 */
static size_t gather(ks_kinesis_t *k, ks_record *head, size_t room)
{
	kslot *s = key_find(k, head);
	ks_record *tail = head;
	size_t cost = KS_KPL_OVERHEAD + head->pkey_len + 16 + ks_kpl_record_cost(head);

	/* A retried aggregate goes again as it was: nobody joins late and shares its deadline. */
	if (s->active != head || head->attempts)
		return entry_bytes(head);
	while (s->waiting.head) {
		size_t more = ks_kpl_record_cost(s->waiting.head);

		if (head->pkey_len + cost + more > KS_MAX_RECORD_BYTES || head->pkey_len + cost + more > room)
			break;
		tail->agg = rq_pop(&s->waiting);
		tail = tail->agg;
		tail->agg = NULL;
		cost += more;
		head->agg_n++;
	}
	if (head->agg)
		head->agg_cost = cost;
	return entry_bytes(head);
}

static void start_batches(ks_kinesis_t *k, int64_t now)
{
	int i;

	for (i = 0; i < k->nreqs && !k->fatal && batch_due(k, now); i++) {
		request *rq = &k->reqs[i];
		size_t bytes = 0;

		if (rq->busy)
			continue;
		rq->n = 0;
		while (k->ready.head && rq->n < (size_t)k->conf->batch_max_records) {
			size_t sz = entry_bytes(k->ready.head);

			if (rq->n && bytes + sz > (size_t)k->conf->batch_max_bytes)
				break;
			if (k->conf->aggregation == KS_AGG_KPL)
				sz = gather(k, k->ready.head, (size_t)k->conf->batch_max_bytes - (rq->n ? bytes : 0));
			bytes += sz;
			rq->recs[rq->n++] = rq_pop(&k->ready);
		}
		start_request(k, rq, now);
	}
	if (!k->ready.n)
		k->flush = 0;
}

/* ---- answers ------------------------------------------------------------------------------ */

static uint64_t rnd(ks_kinesis_t *k)
{
	k->rng ^= k->rng << 13;
	k->rng ^= k->rng >> 7;
	k->rng ^= k->rng << 17;
	return k->rng;
}

static void release(ks_kinesis_t *k, ks_record *rec, int64_t now)
{
	ks_record *r;

	/* The records aggregated behind it go with it, before its key's next record is let go. */
	for (r = rec; r; r = r->agg) {
		k->held_records--;
		k->held_bytes -= r->pkey_len + r->data_len;
	}
	destroy_group(rec->agg);
	rec->agg = NULL;
	if (k->conf->ordering == KS_ORDERING_KEY) {
		kslot *s = key_find(k, rec);

		if (s->active == rec) {
			ks_record *next = rq_pop(&s->waiting);

			if (next) {
				s->active = next;
				next->not_before_ms = now;
				rq_push(&k->ready, next);
			} else {
				key_remove(k, s);
			}
		}
	}
	ks_record_destroy(rec);
}

static void fail_record(ks_kinesis_t *k, ks_record *rec, const char *code, const char *msg, int64_t now)
{
	ks_errbuf e;

	ks_errbuf_set(&e, KS_ERR_TIMEOUT,
		      "record of partition key '%.64s' (Kafka offset %lld) not accepted by stream %s after %d attempts over %lld ms (delivery.timeout.ms): last error %s%s%s",
		      rec->pkey, (long long)rec->offset, k->conf->stream, rec->attempts,
		      (long long)(now - rec->first_try_ms), code, msg && *msg ? ": " : "", msg ? msg : "");
	e.stage = KS_STAGE_PRODUCE;
	ks_errbuf_reason(&e, "delivery_timeout");
	if (k->cbs.failed) {
		ks_record *r;

		for (r = rec; r; r = r->agg)
			k->cbs.failed(k->cbs.opaque, r, &e);
	}
	release(k, rec, now);
}

static void requeue_retry(ks_kinesis_t *k, ks_record *rec, int64_t now, const char *why)
{
	int64_t base = k->conf->retry_backoff_ms, max = k->conf->retry_backoff_max_ms, backoff;
	int shift = rec->attempts < 20 ? rec->attempts : 20;

	rec->attempts++;
	if (k->conf->delivery_timeout_ms > 0 && now - rec->first_try_ms >= k->conf->delivery_timeout_ms) {
		fail_record(k, rec, why, NULL, now);
		return;
	}
	backoff = base << (shift > 0 ? shift - 1 : 0);
	if (backoff > max || backoff <= 0)
		backoff = max;
	/* Equal jitter: at least half the backoff, so a storm of retries spreads out. */
	backoff = backoff / 2 + (int64_t)(rnd(k) % (uint64_t)(backoff / 2 + 1));
	rec->not_before_ms = now + backoff;
	KS_METRIC_ADD(k->metrics, records_retried, 1);
	rq_push(&k->retry, rec);
}

/* User records in a request (an aggregate counts its records). */
static size_t records_in(const request *rq)
{
	size_t i, n = rq->n;

	for (i = 0; i < rq->n; i++)
		n += rq->recs[i]->agg_n;
	return n;
}

static void retry_request(ks_kinesis_t *k, request *rq, int64_t now, const char *why, ks_put_code code)
{
	size_t i;

	KS_METRIC_ADD(k->metrics, records_put_failed[code], records_in(rq));
	if (k->metrics && !k->metrics->retrying_since_ms)
		KS_METRIC_SET(k->metrics, retrying_since_ms, now);
	for (i = 0; i < rq->n; i++)
		requeue_retry(k, rq->recs[i], now, why);
	rq->n = 0;
}

static int is_throttle(const char *code)
{
	return strcmp(code, "ProvisionedThroughputExceededException") == 0 ||
	       strcmp(code, "LimitExceededException") == 0 || strcmp(code, "KMSThrottlingException") == 0;
}

static size_t count_of(const ks_buf *b, const char *needle)
{
	const char *p = b->data, *end = b->data + b->len, *hit;
	size_t n = 0, len = strlen(needle);

	while (p && p < end && (hit = memmem(p, (size_t)(end - p), needle, len))) {
		n++;
		p = hit + len;
	}
	return n;
}

/* In well-formed JSON a `"` right before a `:` ends a string: these byte patterns only match
 * real members. */
int ks_kinesis_all_accepted(const ks_buf *resp, size_t n)
{
	static const char zero[] = "\"FailedRecordCount\":0";
	const char *hit;

	if (!resp->data || count_of(resp, "\"FailedRecordCount\":") != 1 ||
	    !(hit = memmem(resp->data, resp->len, zero, sizeof(zero) - 1)))
		return 0;
	hit += sizeof(zero) - 1;
	return hit < resp->data + resp->len && (*hit == ',' || *hit == '}') &&
	       count_of(resp, "\"ErrorCode\":\"") == 0 && count_of(resp, "\"SequenceNumber\":") == n;
}

static void handle_ok(ks_kinesis_t *k, request *rq, int64_t now)
{
	int fast = ks_kinesis_all_accepted(&rq->resp, rq->n);
	json_t *root = fast ? NULL : json_loadb(rq->resp.data ? rq->resp.data : "", rq->resp.len, 0, NULL);
	json_t *entries = json_object_get(root, "Records");
	size_t i, ok = 0, failed = 0;

	if (!fast && (!json_is_array(entries) || json_array_size(entries) != rq->n)) {
		/* Without a per-entry answer nothing is known accepted: send all again. */
		ks_warn("kinesis", "PutRecords answer from %s without %zu entries (request id %s): retrying the batch",
			k->url, rq->n, rq->request_id[0] ? rq->request_id : "none");
		retry_request(k, rq, now, "malformed answer", KS_PUTERR_INTERNAL);
		json_decref(root);
		return;
	}
	for (i = 0; i < rq->n; i++) {
		json_t *e = fast ? NULL : json_array_get(entries, i); /* NULL: accepted, no details */
		json_t *code = json_object_get(e, "ErrorCode");
		ks_record *rec = rq->recs[i];

		/* kinesis-mock answers "ErrorCode":null for accepted entries: null is absent. */
		if (json_is_string(code)) {
			const char *c = json_string_value(code);
			int thr = is_throttle(c);

			failed++;
			KS_METRIC_ADD(k->metrics, records_put_failed[thr ? KS_PUTERR_THROTTLED : KS_PUTERR_INTERNAL],
				      1 + rec->agg_n);
			if (thr)
				KS_METRIC_ADD(k->metrics, records_throttled, 1 + rec->agg_n);
			ks_debug("kinesis", "entry failed: %s: %s", c,
				 json_string_value(json_object_get(e, "ErrorMessage")) ?: "");
			requeue_retry(k, rec, now, c);
			continue;
		}
		{
			const char *shard = json_string_value(json_object_get(e, "ShardId")) ?: "";
			const char *seq = json_string_value(json_object_get(e, "SequenceNumber")) ?: "";
			ks_record *r;

			for (r = rec; r; r = r->agg) {
				ok++;
				KS_METRIC_ADD(k->metrics, bytes_put, r->pkey_len + r->data_len);
				if (k->cbs.acked)
					k->cbs.acked(k->cbs.opaque, r, shard, seq);
			}
		}
		release(k, rec, now);
	}
	rq->n = 0;
	KS_METRIC_ADD(k->metrics, records_put_ok, ok);
	if (k->metrics) {
		KS_METRIC_SET(k->metrics, last_put_ok_ms, now);
		if (!failed)
			KS_METRIC_SET(k->metrics, retrying_since_ms, 0);
		else if (!k->metrics->retrying_since_ms)
			KS_METRIC_SET(k->metrics, retrying_since_ms, now);
	}
	k->expired_retry = 0;
	json_decref(root);
}

/* "com.amazonaws.kinesis#ResourceNotFoundException" -> "ResourceNotFoundException". */
static const char *short_type(const char *t)
{
	const char *h = t ? strrchr(t, '#') : NULL;

	return h ? h + 1 : t ? t : "";
}

static void handle_error_answer(ks_kinesis_t *k, request *rq, long status, int64_t now)
{
	json_t *root = json_loadb(rq->resp.data ? rq->resp.data : "", rq->resp.len, 0, NULL);
	const char *type = short_type(json_string_value(json_object_get(root, "__type")));
	const char *msg = json_string_value(json_object_get(root, "message"));
	ks_errbuf e;

	if (!msg)
		msg = json_string_value(json_object_get(root, "Message"));
	if (status >= 500) {
		ks_warn("kinesis", "PutRecords to %s answered HTTP %ld %s (request id %s): retrying %zu records",
			k->url, status, type, rq->request_id[0] ? rq->request_id : "none", rq->n);
		retry_request(k, rq, now, "HTTP 5xx", KS_PUTERR_HTTP_5XX);
	} else if (is_throttle(type)) {
		KS_METRIC_ADD(k->metrics, records_throttled, records_in(rq));
		retry_request(k, rq, now, type, KS_PUTERR_THROTTLED);
	} else if (strcmp(type, "ExpiredTokenException") == 0 && !k->expired_retry) {
		/* Refresh the credentials once; a second expiry in a row is fatal. */
		ks_warn("kinesis", "credentials expired (request id %s): refreshing them", rq->request_id);
		k->expired_retry = 1;
		ks_creds_invalidate(k->creds);
		retry_request(k, rq, now, type, KS_PUTERR_EXPIRED_TOKEN);
	} else {
		KS_METRIC_ADD(k->metrics, records_put_failed[KS_PUTERR_FATAL], records_in(rq));
		ks_errbuf_set(&e, KS_ERR_FATAL,
			      "PutRecords to stream '%s' in region %s at %s failed: HTTP %ld %s: %s (AWS request id %s)",
			      k->conf->stream, k->conf->aws_region, k->url, status, type[0] ? type : "error",
			      msg ? msg : (rq->resp.data ? rq->resp.data : ""),
			      rq->request_id[0] ? rq->request_id : "none");
		set_fatal(k, &e);
		/* The records stay unacknowledged: their offsets are never committed. */
		{
			size_t i;

			for (i = 0; i < rq->n; i++)
				rq_push(&k->retry, rq->recs[i]);
		}
		rq->n = 0;
	}
	json_decref(root);
}

static void handle_done(ks_kinesis_t *k, CURL *easy, CURLcode cc, int64_t now)
{
	request *rq = NULL;
	long status = 0;

	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&rq);
	curl_multi_remove_handle(k->multi, easy);
	rq->busy = 0;
	k->busy--;
	if (k->metrics) {
		ks_hist_observe(&k->metrics->put_latency_ms, ks_latency_bounds_ms, (double)(now - rq->start_ms));
		ks_hist_observe(&k->metrics->batch_records, ks_batch_bounds, (double)rq->n);
	}
	if (cc != CURLE_OK) {
		ks_warn("kinesis", "PutRecords to %s failed: %s: retrying %zu records", k->url,
			rq->curl_err[0] ? rq->curl_err : curl_easy_strerror(cc), rq->n);
		retry_request(k, rq, now, curl_easy_strerror(cc), KS_PUTERR_NETWORK);
		return;
	}
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	if (status == 200)
		handle_ok(k, rq, now);
	else
		handle_error_answer(k, rq, status, now);
}

/* ---- public API ----------------------------------------------------------------------------- */

int ks_kinesis_validate(const ks_record *rec, ks_errbuf *err)
{
	if (rec->pkey_len < 1 || rec->pkey_len > KS_MAX_PKEY_LEN) {
		ks_errbuf_set(err, KS_ERR_BADREC, "partition key of %zu bytes: Kinesis allows 1 to %d",
			      rec->pkey_len, KS_MAX_PKEY_LEN);
		ks_errbuf_reason(err, "bad_key");
	} else if (rec->pkey_len + rec->data_len > KS_MAX_RECORD_BYTES) {
		ks_errbuf_set(err, KS_ERR_BADREC,
			      "record too large: %zu bytes of data plus %zu of partition key exceed Kinesis' 1 MiB (%d bytes) per record",
			      rec->data_len, rec->pkey_len, KS_MAX_RECORD_BYTES);
		ks_errbuf_reason(err, "too_large");
	} else {
		return 0;
	}
	if (err)
		err->stage = KS_STAGE_PRODUCE;
	return KS_ERR_BADREC;
}

int ks_kinesis_submit(ks_kinesis_t *k, ks_record *rec, ks_errbuf *err)
{
	int64_t now = ks_now_ms();
	int rc;

	if ((rc = ks_kinesis_validate(rec, err)))
		return rc;
	rec->first_try_ms = now;
	rec->not_before_ms = now;
	rec->attempts = 0;
	if (k->conf->ordering == KS_ORDERING_KEY) {
		kslot *s;

		if (k->keys_n * 2 >= k->keys_cap && key_grow(k))
			return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory in the key table");
		s = key_find(k, rec);
		if (s->active) {
			/* Its key is busy: wait behind the records of that key. */
			rec->next = NULL;
			rq_push(&s->waiting, rec);
			goto held;
		}
		s->hash = rec->key_hash;
		s->active = rec;
		k->keys_n++;
	}
	rq_push(&k->ready, rec);
held:
	k->held_records++;
	k->held_bytes += rec->pkey_len + rec->data_len;
	return 0;
}

void ks_kinesis_flush(ks_kinesis_t *k)
{
	k->flush = 1;
}

size_t ks_kinesis_inflight_records(const ks_kinesis_t *k)
{
	return k->held_records;
}

size_t ks_kinesis_inflight_bytes(const ks_kinesis_t *k)
{
	return k->held_bytes;
}

/* Move records whose backoff ended to the ready queue; returns the next wake-up time. */
static int64_t due_retries(ks_kinesis_t *k, int64_t now)
{
	rqueue keep = { 0 };
	int64_t next = INT64_MAX;
	ks_record *r;

	if (k->fatal)
		return next;
	while ((r = rq_pop(&k->retry))) {
		if (r->not_before_ms <= now) {
			rq_push(&k->ready, r);
		} else {
			if (r->not_before_ms < next)
				next = r->not_before_ms;
			rq_push(&keep, r);
		}
	}
	k->retry = keep;
	return next;
}

int ks_kinesis_poll(ks_kinesis_t *k, int timeout_ms, int wake_fd, ks_errbuf *err)
{
	struct curl_waitfd wfd = { .fd = wake_fd, .events = CURL_WAIT_POLLIN };
	int64_t now = ks_now_ms(), next_retry, wait = timeout_ms;
	CURLMsg *msg;
	int running, left;

	if (k->fatal)
		goto fatal;
	next_retry = due_retries(k, now);
	start_batches(k, now);
	/* Sleep no longer than until the next batch or retry is due. */
	if (next_retry != INT64_MAX && next_retry - now < wait)
		wait = next_retry - now;
	if (k->ready.n && k->busy < k->nreqs) {
		int64_t due = k->ready.head->not_before_ms + k->conf->batch_linger_ms - now;

		if (due < wait)
			wait = due;
	}
	if (wait < 0)
		wait = 0;
	if (k->busy || wake_fd >= 0 || wait > 0)
		curl_multi_poll(k->multi, wake_fd >= 0 ? &wfd : NULL, wake_fd >= 0 ? 1 : 0, (int)wait, NULL);
	curl_multi_perform(k->multi, &running);
	now = ks_now_ms();
	while ((msg = curl_multi_info_read(k->multi, &left)))
		if (msg->msg == CURLMSG_DONE)
			handle_done(k, msg->easy_handle, msg->data.result, now);
	due_retries(k, now);
	start_batches(k, now);
	if (k->metrics) {
		KS_METRIC_SET(k->metrics, inflight_records, (int64_t)k->held_records);
		KS_METRIC_SET(k->metrics, inflight_bytes, (int64_t)k->held_bytes);
	}
	if (!k->fatal)
		return 0;
fatal:
	if (err)
		*err = k->fatal_err;
	return KS_ERR_FATAL;
}

int ks_kinesis_check_stream(ks_kinesis_t *k, ks_errbuf *err)
{
	struct curl_slist *hdrs = NULL, *h;
	const char **list = NULL;
	ks_http_request req = { 0 };
	ks_http_response resp;
	ks_buf body;
	size_t n = 0, i;
	int rc;

	ks_buf_init(&body, 4096);
	if (ks_buf_puts(&body, "{\"StreamName\":") ||
	    ks_buf_json_str(&body, k->conf->stream, strlen(k->conf->stream)) || ks_buf_puts(&body, "}")) {
		ks_buf_clean(&body);
		return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
	}
	if ((rc = signed_headers(k, "Kinesis_20131202.DescribeStreamSummary", &body, &hdrs, err))) {
		ks_buf_clean(&body);
		return rc;
	}
	for (h = hdrs; h; h = h->next)
		n++;
	list = calloc(n + 1, sizeof(*list));
	for (i = 0, h = hdrs; list && h; h = h->next)
		list[i++] = h->data;
	req.method = "POST";
	req.url = k->url;
	req.headers = list;
	req.body = body.data;
	req.body_len = body.len;
	req.timeout_ms = k->conf->request_timeout_ms;
	req.connect_timeout_ms = k->conf->connect_timeout_ms;
	req.ca_file = k->conf->ssl_ca_location;
	req.ca_key = "ssl.ca.location";
	req.proxy = k->conf->http_proxy;
	rc = list ? ks_http_perform(&req, &resp, err) : ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
	free(list);
	curl_slist_free_all(hdrs);
	ks_buf_clean(&body);
	if (rc) {
		char proxy[256] = "";

		if (k->conf->http_proxy)
			ks_url_redact(k->conf->http_proxy, proxy, sizeof(proxy));
		ks_errbuf_prefix(err, "cannot reach Kinesis for stream '%s' in region %s%s%s", k->conf->stream,
				 k->conf->aws_region, proxy[0] ? " through proxy " : "", proxy);
		return rc;
	}
	{
		json_t *root = json_loadb(resp.body.data ? resp.body.data : "", resp.body.len, 0, NULL);
		const char *status = json_string_value(
			json_object_get(json_object_get(root, "StreamDescriptionSummary"), "StreamStatus"));

		if (resp.status == 200 && status && (strcmp(status, "ACTIVE") == 0 || strcmp(status, "UPDATING") == 0)) {
			rc = 0;
			KS_METRIC_SET(k->metrics, kinesis_reachable, 1);
		} else if (resp.status == 200) {
			rc = ks_errbuf_set(err, KS_ERR_FATAL,
					   "stream '%s' in region %s at %s is %s, not ACTIVE or UPDATING: wait until it is active (request id %s)",
					   k->conf->stream, k->conf->aws_region, k->url, status ? status : "in an unknown state",
					   resp.request_id[0] ? resp.request_id : "none");
		} else {
			const char *type = short_type(json_string_value(json_object_get(root, "__type")));
			const char *msg = json_string_value(json_object_get(root, "message"));

			if (!msg)
				msg = json_string_value(json_object_get(root, "Message"));
			rc = ks_errbuf_set(err, resp.status >= 500 ? KS_ERR_IO : KS_ERR_FATAL,
					   "DescribeStreamSummary of stream '%s' in region %s at %s failed: HTTP %ld %s: %s (AWS request id %s)",
					   k->conf->stream, k->conf->aws_region, k->url, resp.status,
					   type[0] ? type : "error", msg ? msg : "",
					   resp.request_id[0] ? resp.request_id : "none");
		}
		json_decref(root);
	}
	ks_http_response_clean(&resp);
	return rc;
}
