/*
 * The Kinesis writer's state machine. Records wait in a ready queue, are batched to the service
 * limits into PutRecords requests (putrecords.c, signed by aws.c, sent over the transport), and
 * each answer entry acknowledges or fails one record; only failed entries are sent again, after a
 * jittered exponential backoff. With ordering=key the key gate (keygate.c) keeps one record per
 * key queued or in flight; with aggregation=kpl the records waiting behind it join its aggregate,
 * which is acknowledged, retried or failed as a whole, so a key's order holds. With a shard map,
 * records reach the ready queue through their shard's queue (shards.c); when to list the shards and
 * what an aggregate that landed elsewhere means is decided by shardlist.c.
 */
#include "kinesis.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aws.h"
#include "keygate.h"
#include "kpl.h"
#include "log.h"
#include "putrecords.h"
#include "ratelimit.h"
#include "shardlist.h"
#include "shards.h"
#include "stream.h"

#define JSON_1_1 "application/x-amz-json-1.1"

typedef struct request {
	ks_buf body;
	ks_record **recs;
	size_t n;
	int64_t start_ms;
	unsigned creds_gen;    /* the writer's credentials generation it was signed with */
	int busy;
} request;

/* An aggregate accepted by a shard the map did not know: decided after the next listing. */
typedef struct landed_wait {
	struct landed_wait *next;
	ks_record *unit;
	char shard[64];
	char seq[128];
} landed_wait;

struct ks_kinesis {
	const ks_conf *conf;
	char *url;
	ks_aws_url aws_url;    /* host and path as signed */
	ks_creds_t *creds;
	ks_metrics *metrics;
	ks_kinesis_cbs cbs;
	const ks_http_transport *tp;
	void *t;
	int64_t (*now_ms)(void *ud);
	void *clock_ud;
	request *reqs;
	int nreqs;
	int busy;

	ks_rqueue incoming;    /* ordering=key: submitted, not yet through the gate */
	ks_rqueue ready;       /* may be sent now */
	ks_rqueue retry;       /* waiting for their backoff */
	ks_keygate_t *gate;    /* ordering=key */
	size_t held_records;
	size_t held_bytes;
	int flush;
	uint64_t rng;

	ks_buf kpl;            /* aggregation=kpl: one aggregate being encoded */
	size_t max_record_bytes;   /* the stream's (DescribeStreamSummary), 1 MiB until told */
	size_t max_request_bytes;  /* 5 MiB; 10 MiB once records may be over 1 MiB */

	/* Shard-aware (rate.limit.percent or aggregation=kpl, once a shard map is known). */
	ks_shards_t *sh;
	ks_shardlist_t *sl;    /* when to list the shards, the ranges of those seen, landing decisions */
	int64_t shard_wake;    /* when a queued unit may go next */
	landed_wait *verdicts; /* aggregates that landed in a shard the map does not know yet */
	int list_slot;         /* the transport slot of ListShards */
	int list_busy;
	int list_describing;   /* the list slot's call is the DescribeStreamSummary before a listing */
	ks_buf list_body;
	int open_shards;       /* of the map in use: its share of kinesink_stream_open_shards */

	size_t revoked_held;   /* records marked by ks_kinesis_revoke, still held (in flight) */
	size_t dropped_revoked; /* records dropped since the writer started: their partition was revoked */

	int auto_distribution; /* the stream ignores partition keys: no prediction, no aggregation */
	int stream_limited;    /* auto_distribution with rate.limit.percent: stream_lim holds the writes */
	ks_shard_limiter stream_lim; /* the open shards' limits together (their count times one shard's) */
	int64_t stream_wake;   /* when stream_lim lets the next record go (INT64_MAX: none waits) */
	unsigned creds_gen;    /* counts the refreshes after ExpiredTokenException */
	int expired_retry;     /* creds_gen is such a refresh, not yet accepted: its keys refused again is fatal */
	int fatal;
	ks_errbuf fatal_err;
};


/* Whether records go by shard: a map is known and limits or aggregation asked for. */
static inline int sharded(const ks_kinesis_t *k)
{
	return k->sh && ks_shards_map(k->sh);
}
static inline int64_t now_of(const ks_kinesis_t *k)
{
	return k->now_ms(k->clock_ud);
}

/* Without a map, how often the writer tries to list the shards: shards.refresh.ms, or a minute. */
static int64_t relist_ms(const ks_conf *conf)
{
	return conf->shards_refresh_ms > 0 ? conf->shards_refresh_ms : 60000;
}


static void set_fatal(ks_kinesis_t *k, const ks_errbuf *e);
static void unpack(ks_kinesis_t *k, ks_record *u, ks_rqueue *q);
static void route(ks_kinesis_t *k, ks_record *rec);
static void admit_sharded(ks_kinesis_t *k);
static void shards_nomem(ks_kinesis_t *k);
static int check_landed(ks_kinesis_t *k, ks_record *unit, const ks_put_result *res, int64_t now);
static void decide_revoked(ks_kinesis_t *k, int64_t now);
static void maybe_list(ks_kinesis_t *k, int64_t now);
static void list_page(ks_kinesis_t *k, int64_t now);
static void switch_to_auto(ks_kinesis_t *k, int64_t now);
static void limit_stream(ks_kinesis_t *k, int open_shards, int64_t now);
static int accept_distribution(ks_kinesis_t *k, const char *strategy, ks_errbuf *err);
static void handle_list(ks_kinesis_t *k, const ks_http_answer *a, int64_t now);
static int64_t shards_wake(const ks_kinesis_t *k);

static int64_t mono_now(void *ud)
{
	(void)ud;
	return ks_now_ms();
}

/* ---- set-up ------------------------------------------------------------------------------ */

ks_kinesis_t *ks_kinesis_new_io(const ks_conf *conf, ks_creds_t *creds, ks_metrics *metrics,
				const ks_kinesis_cbs *cbs, const ks_kinesis_io *io, ks_errbuf *err)
{
	ks_http_transport_opts topts = { 0 };
	ks_kinesis_t *k;
	int i;

	if (!(k = calloc(1, sizeof(*k))))
		goto nomem;
	k->conf = conf;
	k->creds = creds;
	k->metrics = metrics;
	k->cbs = *cbs;
	k->tp = io && io->transport ? io->transport : &ks_http_multi;
	k->now_ms = io && io->now_ms ? io->now_ms : mono_now;
	k->clock_ud = io ? io->clock_ud : NULL;
	k->max_record_bytes = KS_MAX_RECORD_BYTES;
	k->max_request_bytes = KS_PUT_MAX_BYTES;
	k->rng = io && io->seed ? io->seed : (uint64_t)time(NULL) * 6364136223846793005ULL ^ (uint64_t)getpid();
	if (!(k->url = ks_aws_endpoint("kinesis", conf->aws_region, conf->endpoint)))
		goto nomem;
	ks_aws_url_parse(k->url, &k->aws_url);
	k->nreqs = conf->max_inflight_requests > 0 ? conf->max_inflight_requests : 1;
	if (!(k->reqs = calloc((size_t)k->nreqs, sizeof(*k->reqs))))
		goto nomem;
	for (i = 0; i < k->nreqs; i++) {
		ks_buf_init(&k->reqs[i].body, 0);
		if (!(k->reqs[i].recs = calloc(KS_PUT_MAX_ENTRIES, sizeof(*k->reqs[i].recs))))
			goto nomem;
	}
	if (conf->ordering == KS_ORDERING_KEY && !(k->gate = ks_keygate_new()))
		goto nomem;
	ks_buf_init(&k->kpl, KS_MAX_RECORD_BYTES);
	ks_buf_init(&k->list_body, 0);
	if (conf->rate_limit_percent > 0 || conf->aggregation == KS_AGG_KPL) {
		ks_shards_opts so = { conf->aggregation == KS_AGG_KPL,
				      conf->aggregation_max_bytes > 0 ? (size_t)conf->aggregation_max_bytes : 51200,
				      conf->aggregation_max_records > 0 ? (size_t)conf->aggregation_max_records : SIZE_MAX,
				      KS_MAX_RECORD_BYTES, conf->rate_limit_percent, conf->batch_linger_ms,
				      metrics, conf->stream };

		if (!(k->sh = ks_shards_new(&so)))
			goto nomem;
	}
	if (k->sh) {
		/* The pipeline lists the shards at start (ks_kinesis_set_shardmap); without a map by
		 * then, the writer tries again later. */
		ks_shardlist_opts lo = { conf->stream, conf->shards_refresh_ms, relist_ms(conf), relist_ms(conf),
					 k->rng ^ 0x5851f42d4c957f2dULL };

		if (!(k->sl = ks_shardlist_new(&lo, k->now_ms(k->clock_ud))))
			goto nomem;
	}
	k->list_slot = k->nreqs;
	k->shard_wake = INT64_MAX;
	k->stream_wake = INT64_MAX;
	topts.url = k->url;
	topts.timeout_ms = conf->request_timeout_ms;
	topts.connect_timeout_ms = conf->connect_timeout_ms;
	topts.ca_file = conf->ssl_ca_location;
	topts.proxy = conf->http_proxy;
	topts.max_response = 8u << 20;
	topts.slots = k->nreqs + 1; /* the last one lists shards */
	topts.ud = io ? io->transport_ud : NULL;
	if (!(k->t = k->tp->open(&topts, err))) {
		ks_kinesis_destroy(k);
		return NULL;
	}
	return k;
nomem:
	ks_kinesis_destroy(k);
	ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory creating the Kinesis writer");
	return NULL;
}

ks_kinesis_t *ks_kinesis_new(const ks_conf *conf, ks_creds_t *creds, ks_metrics *metrics,
			     const ks_kinesis_cbs *cbs, ks_errbuf *err)
{
	return ks_kinesis_new_io(conf, creds, metrics, cbs, NULL, err);
}

/* A record and the records aggregated behind it; a unit lets go of its shard map. */
static void destroy_group(ks_kinesis_t *k, ks_record *r)
{
	/* Its map goes with the last unit predicted in it, even after the shard queues went. */
	ks_shards_unit_done(k->sh, r);
	ks_shards_free_chain(r);
}

static void free_queue(ks_kinesis_t *k, ks_rqueue *q)
{
	ks_record *r;

	while ((r = ks_rqueue_pop(q)))
		destroy_group(k, r);
}

void ks_kinesis_destroy(ks_kinesis_t *k)
{
	size_t i;
	int j;

	if (!k)
		return;
	if (k->t)
		k->tp->close(k->t);
	for (j = 0; k->reqs && j < k->nreqs; j++) {
		request *rq = &k->reqs[j];

		for (i = 0; rq->busy && i < rq->n; i++)
			destroy_group(k, rq->recs[i]);
		free(rq->recs);
		ks_buf_clean(&rq->body);
	}
	free(k->reqs);
	free_queue(k, &k->incoming);
	free_queue(k, &k->ready);
	free_queue(k, &k->retry);
	while (k->verdicts) {
		landed_wait *w = k->verdicts;

		k->verdicts = w->next;
		destroy_group(k, w->unit);
		free(w);
	}
	ks_shards_destroy(k->sh);
	ks_shardlist_destroy(k->sl);
	ks_buf_clean(&k->list_body);
	ks_keygate_destroy(k->gate);
	ks_buf_clean(&k->kpl);
	free(k->url);
	free(k);
}

/* ---- signing and sending ------------------------------------------------------------------ */

/* Credentials as the signer takes them; clean @p cr after use. */
static int keys_of(ks_kinesis_t *k, ks_credentials *cr, ks_sigv4_keys *keys, ks_errbuf *err)
{
	int rc = ks_creds_get(k->creds, time(NULL), cr, err);

	if (rc == 0) {
		keys->access_key_id = cr->access_key_id;
		keys->secret_access_key = cr->secret_access_key;
		keys->session_token = cr->session_token;
	}
	return rc;
}

/* The signed header lines of a Kinesis call of @p target with @p body. */
static int sign_call(ks_kinesis_t *k, const char *target, const ks_buf *body, ks_aws_headers *out, ks_errbuf *err)
{
	ks_aws_call call = { "POST", &k->aws_url, k->conf->aws_region, "kinesis", JSON_1_1, target,
			     body->data, body->len };
	ks_credentials cr;
	ks_sigv4_keys keys;
	int rc;

	if ((rc = keys_of(k, &cr, &keys, err)))
		return rc;
	rc = ks_aws_sign(&call, &keys, time(NULL), out, err);
	ks_credentials_clean(&cr);
	return rc;
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

/* The PutRecords body of @p rq's records; an aggregate is encoded as it is added. */
static int build_body(ks_kinesis_t *k, request *rq)
{
	size_t i;
	int r;

	if ((r = ks_putrecords_begin(&rq->body, k->conf->stream)))
		return r;
	for (i = 0; i < rq->n; i++) {
		ks_record *rec = rq->recs[i];
		ks_put_entry e = { rec->pkey, rec->pkey_len, NULL, rec->data, rec->data_len };
		char ehk[KS_U128_STRLEN];

		if (rec->agg) {
			ks_buf_reset(&k->kpl);
			if ((r = ks_kpl_encode_chain(rec, &k->kpl)))
				return r;
			e.data = k->kpl.data;
			e.data_len = k->kpl.len;
			/* Routed by its first record's hash key: inside the shard it was packed for. */
			if (rec->shardset) {
				ks_shards_hash_key(rec, ehk);
				e.explicit_hash_key = ehk;
				ks_shards_refund(k->sh, rec, rec->pkey_len + k->kpl.len);
			}
		}
		if ((r = ks_putrecords_add(&rq->body, &e, i)))
			return r;
	}
	return ks_putrecords_end(&rq->body);
}

static void requeue_retry(ks_kinesis_t *k, ks_record *rec, int64_t now, const char *why);

/* A fatal error with @p rq's records: they stay held, unacknowledged (their offsets are never
 * committed), and are freed with the writer. */
static int hold_fatal(ks_kinesis_t *k, request *rq, const ks_errbuf *err, int rc)
{
	size_t i;

	set_fatal(k, err);
	for (i = 0; i < rq->n; i++)
		ks_rqueue_push(&k->retry, rq->recs[i]);
	rq->n = 0;
	return rc;
}

static int start_request(ks_kinesis_t *k, request *rq, int64_t now)
{
	ks_aws_headers hdrs = { 0 };
	ks_errbuf err;
	ks_record *r;
	size_t i;
	int rc;

	ks_errbuf_clear(&err);
	/* delivery.timeout.ms counts from a record's first send, not from the time it waited for
	 * its shard's capacity or its key's turn. */
	for (i = 0; i < rq->n; i++)
		for (r = rq->recs[i]; !rq->recs[i]->attempts && r; r = r->agg)
			r->first_try_ms = now;
	if ((rc = build_body(k, rq)) || (rc = sign_call(k, "Kinesis_20131202.PutRecords", &rq->body, &hdrs, &err))) {
		if (rc == KS_ERR_NOMEM || rc == KS_ERR_TOOBIG) {
			ks_errbuf_set(&err, KS_ERR_FATAL, "cannot build a PutRecords request: %s", ks_err_str(rc));
			return hold_fatal(k, rq, &err, rc);
		}
		/* Credentials not available right now: the records wait and try again. */
		ks_warn("kinesis", "cannot sign PutRecords for stream %s: %s", k->conf->stream, err.text);
		if (err.fatal && rc == KS_ERR_AUTH)
			return hold_fatal(k, rq, &err, rc);
		for (i = 0; i < rq->n; i++)
			requeue_retry(k, rq->recs[i], now, "credentials unavailable");
		rq->n = 0;
		return rc;
	}
	rc = k->tp->start(k->t, (int)(rq - k->reqs), (const char *const *)hdrs.lines, rq->body.data, rq->body.len,
			  &err);
	ks_aws_headers_clean(&hdrs);
	if (rc) {
		ks_errbuf_prefix(&err, "cannot start an HTTP request to %s", k->url);
		err.code = KS_ERR_FATAL;
		return hold_fatal(k, rq, &err, KS_ERR_FATAL);
	}
	rq->busy = 1;
	rq->start_ms = now;
	rq->creds_gen = k->creds_gen;
	k->busy++;
	KS_METRIC_ADD(k->metrics, requests_sent, 1);
	return 0;
}

/* How many records ahead an answer's records have their key's gate slot prefetched. */
#define PREFETCH_AHEAD 8

/* ordering=key: the records submitted since the last poll go through the gate, in their order;
 * those that become their key's active record go to @p out. */
static void admit_incoming_to(ks_kinesis_t *k, ks_rqueue *out)
{
	ks_errbuf e;

	if (ks_keygate_admit_queue(k->gate, &k->incoming, out) < 0) {
		/* The records left are held, never acknowledged (not committed), freed with the writer. */
		ks_errbuf_set(&e, KS_ERR_FATAL, "out of memory in the key table of the Kinesis writer (%zu keys)",
			      ks_keygate_keys(k->gate));
		set_fatal(k, &e);
	}
}

static void admit_incoming(ks_kinesis_t *k)
{
	admit_incoming_to(k, &k->ready);
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

static void start_batches(ks_kinesis_t *k, int64_t now)
{
	int i;

	if (sharded(k) && !k->fatal) {
		size_t room = 0;

		admit_sharded(k);
		/* Tokens are taken as units go into requests: no more than the free requests take. */
		for (i = 0; i < k->nreqs; i++)
			room += k->reqs[i].busy ? 0 : (size_t)k->conf->batch_max_records;
		room = room > k->ready.n ? room - k->ready.n : 0;
		ks_shards_take(k->sh, now, k->flush, room, &k->ready, &k->shard_wake);
	} else if (k->gate && !k->fatal) {
		admit_incoming(k);
	}
	k->stream_wake = INT64_MAX;
	for (i = 0; i < k->nreqs && !k->fatal && batch_due(k, now); i++) {
		request *rq = &k->reqs[i];
		size_t bytes = 0;

		if (rq->busy)
			continue;
		rq->n = 0;
		while (k->ready.head && rq->n < (size_t)k->conf->batch_max_records) {
			ks_record *head = k->ready.head;
			size_t sz = ks_shards_unit_bytes(head);

			/* A record alone may be over batch.max.bytes (up to the stream's record size),
			 * never over the request limit. */
			if (rq->n && (bytes + sz > (size_t)k->conf->batch_max_bytes || bytes + sz > k->max_request_bytes))
				break;
			/* A retried aggregate goes again as it was: nobody joins late and shares its deadline. */
			if (k->conf->aggregation == KS_AGG_KPL && k->gate && !k->auto_distribution && !head->attempts &&
			    !head->shardset) {
				ks_keygate_gather(k->gate, head, (size_t)k->conf->batch_max_bytes - (rq->n ? bytes : 0));
				sz = ks_shards_unit_bytes(head);
			}
			/* A stream that ignores keys: its shards' limits together bound what is sent. */
			if (k->stream_limited && !ks_limiter_take(&k->stream_lim, sz, now)) {
				k->stream_wake = now + ks_limiter_wait_ms(&k->stream_lim, sz, now);
				break;
			}
			bytes += sz;
			rq->recs[rq->n++] = ks_rqueue_pop(&k->ready);
		}
		if (!rq->n)
			break;
		start_request(k, rq, now);
	}
	/* A flush lasts until every record held went (those in the gate and the shard queues too). */
	if (!k->held_records)
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

static void requeue_active(ks_kinesis_t *k, ks_record *rec, int64_t now)
{
	rec->not_before_ms = now;
	if (sharded(k))
		route(k, rec);
	else
		ks_rqueue_push(&k->ready, rec);
}

static void release_unit(ks_kinesis_t *k, ks_record *rec, int64_t now)
{
	ks_record *r;

	for (r = rec; r; r = r->agg) {
		k->held_records--;
		k->held_bytes -= r->pkey_len + r->data_len;
		if (r->revoked)
			k->revoked_held--;
	}
	/* Every record of the unit is done before any key's next record is let go (an aggregate
	 * may hold several keys, each key's records in their order). */
	for (r = rec; k->gate && r; r = r->agg) {
		ks_record *next = ks_keygate_release(k->gate, r);

		if (next)
			requeue_active(k, next, now);
	}
	destroy_group(k, rec);
}

/* ---- revoked partitions -------------------------------------------------------------------- */

/* @p r is never sent: its partition was revoked. Not acknowledged, so never committed. */
static void drop_record(ks_kinesis_t *k, ks_record *r)
{
	k->held_records--;
	k->held_bytes -= r->pkey_len + r->data_len;
	if (r->revoked)
		k->revoked_held--;
	k->dropped_revoked++;
	if (k->cbs.dropped)
		k->cbs.dropped(k->cbs.opaque, r);
	ks_record_destroy(r);
}

static int same_key(const ks_record *a, const ks_record *b)
{
	return a->key_hash == b->key_hash && a->pkey_len == b->pkey_len && memcmp(a->pkey, b->pkey, a->pkey_len) == 0;
}

/* Take the records marked revoked off chain @p r (linked by agg), dropping them; returns the
 * others in their order. A dropped key's active record hands the key on: to its next record kept
 * in the chain, or else to the first waiting in the gate (appended to @p released, for the caller
 * to queue). */
static ks_record *strip_revoked(ks_kinesis_t *k, ks_record *r, ks_rqueue *released)
{
	ks_record *kept = NULL, **tail = &kept;

	while (r) {
		ks_record *next = r->agg, *heir;

		r->agg = NULL;
		r->unit = NULL;
		if (!r->revoked) {
			*tail = r;
			tail = &r->agg;
			r = next;
			continue;
		}
		if (k->gate && ks_keygate_active(k->gate, r) == r) {
			/* Its key's records after it in the chain are out of the gate already: the next
			 * kept one is the key's active record now; with none, the first waiting one. */
			for (heir = next; heir && (heir->revoked || !same_key(heir, r)); heir = heir->agg)
				;
			if (heir)
				ks_keygate_pass_active(k->gate, r, heir);
			else if ((heir = ks_keygate_release(k->gate, r)))
				ks_rqueue_push(released, heir);
		}
		drop_record(k, r);
		r = next;
	}
	return kept;
}

/* Whether a record of unit @p u is marked revoked (none is while none is held). */
static int has_revoked(const ks_kinesis_t *k, const ks_record *u)
{
	for (; k->revoked_held && u; u = u->agg)
		if (u->revoked)
			return 1;
	return 0;
}

/* What is kept of a unit not bound to a shard, one unit again: headed by its first record, the
 * others aggregated behind it (of its key: only the gate gathers such units). */
static void reform(ks_record *u, int attempts, int64_t not_before_ms)
{
	size_t n = 0, cost = KS_KPL_OVERHEAD + u->pkey_len + 16 + ks_kpl_record_cost(u);
	ks_record *r;

	for (r = u->agg; r; r = r->agg) {
		n++;
		cost += ks_kpl_record_cost(r);
	}
	u->agg_n = n;
	u->agg_cost = n ? cost : 0;
	u->agg_tail = NULL;
	u->attempts = attempts;
	u->not_before_ms = not_before_ms;
}

/*
 * Unit @p u holds records marked revoked: they are dropped, and what is kept goes on: queued
 * again by key for its shard (a shard-aware writer), or as one unit into @p q. Keys that go on
 * with a record waiting in the gate are appended to @p released.
 */
static void strip_unit(ks_kinesis_t *k, ks_record *u, ks_rqueue *q, ks_rqueue *released)
{
	int attempts = u->attempts;
	int64_t not_before_ms = u->not_before_ms;
	ks_record *kept;

	if (k->sh)
		ks_shards_unit_done(k->sh, u);
	if (!(kept = strip_revoked(k, u, released)))
		return;
	if (sharded(k)) {
		if (ks_shards_add_chain(k->sh, kept))
			shards_nomem(k);
		return;
	}
	reform(kept, attempts, not_before_ms);
	ks_rqueue_push(q, kept);
}

typedef struct marker {
	ks_record_pred revoked;
	void *ud;
	size_t marked;
} marker;

/* Mark the records of unit @p u that are revoked. @returns whether one of its records is. */
static int mark_unit(void *ud, ks_record *u)
{
	marker *m = ud;
	int any = 0;

	for (; u; u = u->agg) {
		if (!u->revoked && m->revoked(m->ud, u)) {
			u->revoked = 1;
			m->marked++;
		}
		any |= u->revoked;
	}
	return any;
}

/* The units of @p q holding revoked records, marked, into @p out; the others stay. */
static void take_marked(ks_rqueue *q, marker *m, ks_rqueue *out)
{
	ks_rqueue keep = { 0 };
	ks_record *u;

	while ((u = ks_rqueue_pop(q)))
		ks_rqueue_push(mark_unit(m, u) ? out : &keep, u);
	*q = keep;
}

static int match_record(void *ud, const ks_record *r)
{
	const marker *m = ud;

	return m->revoked(m->ud, r);
}

size_t ks_kinesis_revoke(ks_kinesis_t *k, ks_record_pred revoked, void *ud)
{
	int64_t now = now_of(k);
	marker m = { revoked, ud, 0 };
	ks_rqueue keep = { 0 }, gone = { 0 }, queued = { 0 }, ready = { 0 }, retry = { 0 }, released = { 0 };
	size_t i, before = k->dropped_revoked;
	landed_wait *w;
	ks_record *r;
	int j;

	if (k->fatal)
		return 0; /* nothing is sent any more */
	/* Not through the gate yet, or waiting in it: dropped first, so that no key goes on with one. */
	while ((r = ks_rqueue_pop(&k->incoming))) {
		if (revoked(ud, r))
			drop_record(k, r);
		else
			ks_rqueue_push(&keep, r);
	}
	k->incoming = keep;
	if (k->gate)
		ks_keygate_take_matching(k->gate, match_record, &m, &gone);
	while ((r = ks_rqueue_pop(&gone)))
		drop_record(k, r);
	/* Every record held is marked before any is dropped (the count goes down as they go). */
	for (j = 0; j < k->nreqs; j++)
		for (i = 0; k->reqs[j].busy && i < k->reqs[j].n; i++)
			mark_unit(&m, k->reqs[j].recs[i]);
	for (w = k->verdicts; w; w = w->next)
		mark_unit(&m, w->unit);
	if (k->sh)
		ks_shards_extract(k->sh, mark_unit, &m, &queued);
	take_marked(&k->ready, &m, &ready);
	take_marked(&k->retry, &m, &retry);
	k->revoked_held += m.marked;
	/* Accepted into a shard not known yet: decided now, not after the next listing. */
	decide_revoked(k, now);
	while ((r = ks_rqueue_pop(&queued)))
		strip_unit(k, r, &k->ready, &released);
	while ((r = ks_rqueue_pop(&ready)))
		strip_unit(k, r, &k->ready, &released);
	while ((r = ks_rqueue_pop(&retry)))
		strip_unit(k, r, &k->retry, &released);
	while ((r = ks_rqueue_pop(&released)))
		requeue_active(k, r, now);
	ks_info("kinesis", "partitions revoked: %zu records for stream %s not sent (the new owner reads them again), %zu in flight",
		k->dropped_revoked - before, k->conf->stream, k->revoked_held);
	return k->revoked_held;
}

size_t ks_kinesis_revoked_inflight(const ks_kinesis_t *k)
{
	return k->revoked_held;
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
	release_unit(k, rec, now);
}

static void requeue_retry(ks_kinesis_t *k, ks_record *rec, int64_t now, const char *why)
{
	int64_t base = k->conf->retry_backoff_ms, max = k->conf->retry_backoff_max_ms, backoff;
	int shift;

	if (has_revoked(k, rec)) {
		/* Its partition was revoked while it was sent: what is kept of it goes on. */
		ks_rqueue kept = { 0 }, released = { 0 };
		ks_record *r;

		strip_unit(k, rec, &kept, &released);
		while ((r = ks_rqueue_pop(&released)))
			requeue_active(k, r, now);
		if (!(rec = ks_rqueue_pop(&kept)))
			return;
	}
	shift = rec->attempts < 20 ? rec->attempts : 20;
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
	if (k->auto_distribution && (rec->agg || rec->shardset))
		unpack(k, rec, &k->retry); /* sent before the stream was found to ignore keys */
	else
		ks_rqueue_push(&k->retry, rec);
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

/* Acknowledge every record of @p unit (accepted by shard @p shard_id) and let it go. */
static size_t ack_unit(ks_kinesis_t *k, ks_record *unit, const char *shard_id, const char *seq, int64_t now)
{
	size_t n = 0, bytes = 0;
	struct ks_shard_counters *c = NULL;
	ks_u128 start, end;
	ks_record *r;

	for (r = unit; r; r = r->agg) {
		n++;
		bytes += r->pkey_len + r->data_len;
		if (k->cbs.acked)
			k->cbs.acked(k->cbs.opaque, r, shard_id, seq);
	}
	KS_METRIC_ADD(k->metrics, bytes_put, bytes);
	/* Without the answer's shard id (not read), the predicted one: its series is held with it. */
	if (unit->shardset && (!*shard_id || strcmp(shard_id, ks_shards_predicted(unit)) == 0))
		ks_metrics_shard_count(ks_shards_counters(unit), n, bytes, 0);
	else if (unit->shardset && k->sh && k->sl && ks_shardlist_range(k->sl, shard_id, &start, &end) &&
		 (c = ks_shards_counters_of(k->sh, shard_id, start)))
		ks_metrics_shard_count(c, n, bytes, 0); /* landed elsewhere: by the shards' hash, no search */
	else if (unit->shardset)
		ks_metrics_shard_add(k->metrics, k->conf->stream, shard_id, n, bytes, 0);
	release_unit(k, unit, now);
	return n;
}

static void handle_ok(ks_kinesis_t *k, request *rq, const ks_http_answer *a, int64_t now)
{
	ks_put_answer ans;
	size_t i, ok = 0, failed = 0;

	/* Shard-aware: where each entry landed (a stale map, and for an aggregate what is acknowledged). */
	if (ks_putrecords_parse_as(&ans, a->body, a->body_len, rq->n, sharded(k))) {
		/* Without a per-entry answer nothing is known accepted: send all again. */
		ks_warn("kinesis", "PutRecords answer from %s without %zu entries (request id %s): retrying the batch",
			k->url, rq->n, a->request_id[0] ? a->request_id : "none");
		retry_request(k, rq, now, "malformed answer", KS_PUTERR_INTERNAL);
		return;
	}
	for (i = 0; k->gate && i < PREFETCH_AHEAD && i < rq->n; i++)
		ks_keygate_prefetch(k->gate, rq->recs[i]);
	for (i = 0; i < rq->n; i++) {
		ks_record *rec = rq->recs[i];
		ks_put_result res;

		if (k->gate && i + PREFETCH_AHEAD < rq->n)
			ks_keygate_prefetch(k->gate, rq->recs[i + PREFETCH_AHEAD]);

		ks_putrecords_result(&ans, i, &res);
		if (res.outcome != KS_PUT_ACCEPTED) {
			int thr = res.outcome == KS_PUT_THROTTLED;

			if (thr && rec->shardset) {
				ks_metrics_shard_count(ks_shards_counters(rec), 0, 0, 1);
				if (k->sh)
					ks_shards_answered(k->sh, rec, 1);
			}
			failed++;
			KS_METRIC_ADD(k->metrics, records_put_failed[thr ? KS_PUTERR_THROTTLED : KS_PUTERR_INTERNAL],
				      1 + rec->agg_n);
			if (thr)
				KS_METRIC_ADD(k->metrics, records_throttled, 1 + rec->agg_n);
			ks_debug("kinesis", "entry failed: %s: %s", res.error_code, res.error_message);
			requeue_retry(k, rec, now, res.error_code);
			continue;
		}
		if (rec->shardset && k->sh)
			ks_shards_answered(k->sh, rec, 0);
		if (rec->shardset && !check_landed(k, rec, &res, now))
			continue; /* decided once the shard it landed in is known */
		ok += ack_unit(k, rec, res.shard_id, res.seq, now);
	}
	rq->n = 0;
	if (k->sh)
		ks_shards_answer_done(k->sh, now);
	KS_METRIC_ADD(k->metrics, records_put_ok, ok);
	if (k->metrics) {
		KS_METRIC_SET(k->metrics, last_put_ok_ms, now);
		if (!failed)
			KS_METRIC_SET(k->metrics, retrying_since_ms, 0);
		else if (!k->metrics->retrying_since_ms)
			KS_METRIC_SET(k->metrics, retrying_since_ms, now);
	}
	if (rq->creds_gen == k->creds_gen)
		k->expired_retry = 0;
	ks_putrecords_answer_clean(&ans);
}

static void handle_error_answer(ks_kinesis_t *k, request *rq, const ks_http_answer *a, int64_t now)
{
	const char *rid = a->request_id[0] ? a->request_id : "none";
	ks_aws_error ae;
	ks_errbuf e;

	ks_aws_error_parse(a->body, a->body_len, &ae);
	if (a->status >= 500) {
		ks_warn("kinesis", "PutRecords to %s answered HTTP %ld %s (request id %s): retrying %zu records",
			k->url, a->status, ae.type, rid, rq->n);
		retry_request(k, rq, now, "HTTP 5xx", KS_PUTERR_HTTP_5XX);
	} else if (ks_putrecords_is_throttle(ae.type)) {
		size_t i;

		KS_METRIC_ADD(k->metrics, records_throttled, records_in(rq));
		for (i = 0; k->sh && i < rq->n; i++)
			ks_shards_answered(k->sh, rq->recs[i], 1);
		if (k->sh)
			ks_shards_answer_done(k->sh, now);
		retry_request(k, rq, now, ae.type, KS_PUTERR_THROTTLED);
	} else if (strcmp(ae.type, "ExpiredTokenException") == 0 &&
		   (rq->creds_gen != k->creds_gen || !k->expired_retry)) {
		/* A request signed before the last refresh goes again with the fresh keys; one signed
		 * with the current keys refreshes them. Only fresh keys refused again are fatal. */
		if (rq->creds_gen == k->creds_gen) {
			ks_warn("kinesis", "credentials expired (request id %s): refreshing them", rid);
			k->expired_retry = 1;
			k->creds_gen++;
			ks_creds_invalidate(k->creds);
		}
		retry_request(k, rq, now, ae.type, KS_PUTERR_EXPIRED_TOKEN);
	} else {
		KS_METRIC_ADD(k->metrics, records_put_failed[KS_PUTERR_FATAL], records_in(rq));
		ks_errbuf_set(&e, KS_ERR_FATAL,
			      "PutRecords to stream '%s' in region %s at %s failed: HTTP %ld %s: %.*s (AWS request id %s)",
			      k->conf->stream, k->conf->aws_region, k->url, a->status, ae.type[0] ? ae.type : "error",
			      ae.message[0] ? (int)strlen(ae.message) : (int)a->body_len,
			      ae.message[0] ? ae.message : a->body ? a->body : "", rid);
		hold_fatal(k, rq, &e, KS_ERR_FATAL);
	}
}

static void handle_done(void *ud, const ks_http_answer *a)
{
	ks_kinesis_t *k = ud;
	request *rq = &k->reqs[a->slot];
	int64_t now = now_of(k);

	if (a->slot == k->list_slot) {
		handle_list(k, a, now);
		return;
	}
	rq->busy = 0;
	k->busy--;
	if (k->metrics) {
		ks_hist_observe(&k->metrics->put_latency_ms, ks_latency_bounds_ms, (double)(now - rq->start_ms));
		ks_hist_observe(&k->metrics->batch_records, ks_batch_bounds, (double)rq->n);
	}
	if (!a->status) {
		const char *why = a->error && *a->error ? a->error : "no answer";

		ks_warn("kinesis", "PutRecords to %s failed: %s: retrying %zu records", k->url,
			a->detail && *a->detail ? a->detail : why, rq->n);
		retry_request(k, rq, now, why, KS_PUTERR_NETWORK);
	} else if (a->status == 200) {
		handle_ok(k, rq, a, now);
	} else {
		handle_error_answer(k, rq, a, now);
	}
}

/* ---- the shard-aware side ------------------------------------------------------------------ */

/* Records of @p a's key waiting in the gate join its aggregate while it is open and has room:
 * with aggregation, a busy key costs no round trip as long as its records fit. */
static void join_waiting(ks_kinesis_t *k, ks_record *a)
{
	const ks_record *w;

	while ((w = ks_keygate_peek_waiting(k->gate, a)) && ks_shards_can_join(k->sh, a, w))
		ks_shards_join(k->sh, a, ks_keygate_take_waiting(k->gate, a));
}

/* The shard queues could not take a record: the writer stops. */
static void shards_nomem(ks_kinesis_t *k)
{
	ks_errbuf e;

	ks_errbuf_set(&e, KS_ERR_FATAL, "out of memory in the shard queues of the Kinesis writer");
	set_fatal(k, &e);
}

/* Queue @p rec (its key's active record, or any with ordering=none) for its predicted shard. */
static void route(ks_kinesis_t *k, ks_record *rec)
{
	if (ks_shards_add(k->sh, rec)) {
		ks_rqueue_push(&k->retry, rec); /* held, never acknowledged, freed with the writer */
		shards_nomem(k);
		return;
	}
	if (k->gate)
		join_waiting(k, rec);
}

/* Shard-aware: the records submitted since the last poll go through the gate to their shard. */
static void admit_sharded(ks_kinesis_t *k)
{
	ks_record *r, *a;
	ks_errbuf e;
	int rc;

	/* While the map may be stale, no aggregate packs several keys (shardlist.h). */
	ks_shards_set_solo(k->sh, ks_shardlist_stale(k->sl));
	if (k->gate && k->conf->aggregation != KS_AGG_KPL) {
		/* Nothing joins an aggregate: the gate's batch admit (prefetching keys ahead), then each
		 * key's active record to its shard. */
		ks_rqueue active = { 0 };

		admit_incoming_to(k, &active);
		while ((r = ks_rqueue_pop(&active)))
			if (ks_shards_add(k->sh, r)) {
				ks_rqueue_push(&k->retry, r); /* held, never acknowledged, freed with the writer */
				shards_nomem(k);
			}
		return;
	}
	while (!k->fatal && (r = ks_rqueue_pop(&k->incoming))) {
		if (!k->gate) {
			route(k, r);
			continue;
		}
		if ((rc = ks_keygate_admit(k->gate, r)) < 0) {
			ks_errbuf_set(&e, KS_ERR_FATAL, "out of memory in the key table of the Kinesis writer (%zu keys)",
				      ks_keygate_keys(k->gate));
			ks_rqueue_push(&k->retry, r);
			set_fatal(k, &e);
		} else if (rc == 1) {
			route(k, r);
		} else if ((a = ks_keygate_active(k->gate, r))) {
			join_waiting(k, a);
		}
	}
}

/* The records of an aggregate that landed in a shard outside whose range they hash (or may: the
 * range is not known): a KCL consumer would drop them. They go again, each key's in a unit of its
 * own (which lands where its key does, whatever the map), before any later record of their key
 * (which waits in the gate behind them); they are not acknowledged. */
static void resend(ks_kinesis_t *k, ks_record *outside, int64_t now)
{
	ks_rqueue released = { 0 };
	size_t n = 0;
	ks_record *r;

	/* Those of a partition revoked since are not: the partition's new owner sends them. */
	if (has_revoked(k, outside))
		outside = strip_revoked(k, outside, &released);
	while ((r = ks_rqueue_pop(&released)))
		requeue_active(k, r, now);
	if (!outside)
		return;
	for (r = outside; r; r = r->agg)
		n++;
	KS_METRIC_ADD(k->metrics, records_resent_reshard, n);
	ks_info("kinesis", "%zu records of an aggregate landed outside the range of their shard of stream %s: sending them again",
		n, k->conf->stream);
	if (ks_shards_add_chain_solo(k->sh, outside))
		shards_nomem(k);
}

/* Accepted aggregate @p unit landed in shard @p landed: what a KCL consumer drops of it goes again.
 * Without the shard's range, every key but its first. */
static void resend_outside(ks_kinesis_t *k, ks_record *unit, const char *landed, int64_t now)
{
	ks_record *outside = NULL;
	ks_u128 start, end;

	if (ks_shardlist_range(k->sl, landed, &start, &end))
		ks_shards_split(unit, start, end, &outside);
	else
		ks_shards_keep_first_key(unit, &outside);
	if (outside)
		resend(k, outside, now);
}

/* An accepted unit's ShardId against its prediction. @returns 1 when it may be acknowledged now
 * (after the records outside its landed shard's range were sent again), 0 when the unit waits for
 * the next shard listing (held in k->verdicts). */
static int check_landed(ks_kinesis_t *k, ks_record *unit, const ks_put_result *res, int64_t now)
{
	const char *predicted = ks_shards_predicted(unit);
	ks_u128 start, end;
	landed_wait *w;

	if (!*res->shard_id || !*predicted || strcmp(res->shard_id, predicted) == 0 || !k->sl)
		return 1;
	KS_METRIC_ADD(k->metrics, shard_mispredictions, 1);
	/* Records of a revoked partition are not held until the next listing: decided now. */
	switch (ks_shardlist_landed(k->sl, predicted, res->shard_id, unit->agg != NULL, !has_revoked(k, unit), &start,
				    &end)) {
	case KS_LAND_ACK:
		return 1;
	case KS_LAND_HOLD:
		if ((w = calloc(1, sizeof(*w)))) {
			w->unit = unit;
			snprintf(w->shard, sizeof(w->shard), "%s", res->shard_id);
			snprintf(w->seq, sizeof(w->seq), "%s", res->seq);
			w->next = k->verdicts;
			k->verdicts = w;
			return 0;
		}
		resend_outside(k, unit, res->shard_id, now); /* out of memory: decided now */
		return 1;
	case KS_LAND_RANGE:
	case KS_LAND_OTHER_KEYS:
		resend_outside(k, unit, res->shard_id, now);
		return 1;
	}
	return 1;
}

/* Decide the aggregates waiting for a listing: all of them after one (done or failed), or only
 * those holding records of a revoked partition. */
static void decide(ks_kinesis_t *k, int revoked_only, int64_t now)
{
	landed_wait **pp = &k->verdicts, *w;

	while ((w = *pp)) {
		if (revoked_only && !has_revoked(k, w->unit)) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		resend_outside(k, w->unit, w->shard, now);
		KS_METRIC_ADD(k->metrics, records_put_ok, ack_unit(k, w->unit, w->shard, w->seq, now));
		free(w);
	}
}

static void decide_revoked(ks_kinesis_t *k, int64_t now)
{
	decide(k, 1, now);
}

/* Send the ListShards call of the page the listing is at. */
static void list_page(ks_kinesis_t *k, int64_t now)
{
	ks_aws_headers hdrs = { 0 };
	ks_errbuf err;
	int rc;

	ks_errbuf_clear(&err);
	ks_buf_reset(&k->list_body);
	if ((rc = ks_stream_list_body(&k->list_body, k->conf, ks_shardlist_token(k->sl))) ||
	    (rc = sign_call(k, "Kinesis_20131202.ListShards", &k->list_body, &hdrs, &err)) ||
	    (rc = k->tp->start(k->t, k->list_slot, (const char *const *)hdrs.lines, k->list_body.data, k->list_body.len,
			       &err))) {
		ks_aws_headers_clean(&hdrs);
		ks_shardlist_not_sent(k->sl, err.text[0] ? err.text : ks_err_str(rc), now);
		decide(k, 0, now);
		return;
	}
	ks_aws_headers_clean(&hdrs);
	k->list_busy = 1;
}

/* Each listing starts with DescribeStreamSummary: a stream switched to RecordDistributionStrategy
 * AUTO while running is noticed by the next listing (every shards.refresh.ms, and soon after
 * answers that land records elsewhere than predicted, as every answer does on such a stream). */
static void describe_call(ks_kinesis_t *k, int64_t now)
{
	ks_aws_headers hdrs = { 0 };
	ks_errbuf err;

	ks_errbuf_clear(&err);
	ks_buf_reset(&k->list_body);
	if (ks_stream_describe_body(&k->list_body, k->conf) ||
	    sign_call(k, "Kinesis_20131202.DescribeStreamSummary", &k->list_body, &hdrs, &err) ||
	    k->tp->start(k->t, k->list_slot, (const char *const *)hdrs.lines, k->list_body.data, k->list_body.len,
			 &err)) {
		ks_aws_headers_clean(&hdrs);
		ks_debug("kinesis", "DescribeStreamSummary of stream %s not sent: %s; listing the shards", k->conf->stream,
			 err.text);
		list_page(k, now);
		return;
	}
	ks_aws_headers_clean(&hdrs);
	k->list_busy = 1;
	k->list_describing = 1;
}

/* List the shards when shardlist.c says it is due. */
static void maybe_list(ks_kinesis_t *k, int64_t now)
{
	if (!k->sl || k->list_busy || k->fatal || !ks_shardlist_due(k->sl, now))
		return;
	if (ks_shardlist_begin(k->sl, now))
		return; /* out of memory: tried again on the next poll */
	describe_call(k, now);
}

static void use_map(ks_kinesis_t *k, ks_shardmap_t *map, int64_t now)
{
	int n = ks_shardmap_count(map);
	ks_errbuf e;

	if (ks_shards_set_map(k->sh, map, now)) {
		ks_errbuf_set(&e, KS_ERR_FATAL, "out of memory in the shard queues of the Kinesis writer");
		set_fatal(k, &e);
		return;
	}
	/* The gauge adds up every writer's stream (several with routes). */
	KS_METRIC_ADD(k->metrics, stream_open_shards, n - k->open_shards);
	k->open_shards = n;
}

/* The records of unit @p u, each alone, into @p q (a stream that ignores partition keys: an
 * aggregate's records would be dropped by a KCL consumer wherever the service puts it). */
static void unpack(ks_kinesis_t *k, ks_record *u, ks_rqueue *q)
{
	int attempts = u->attempts;
	int64_t not_before_ms = u->not_before_ms;
	ks_record *r = u, *next;

	ks_shards_unit_done(k->sh, u);
	for (; r; r = next) {
		next = r->agg;
		r->agg = NULL;
		r->agg_tail = NULL;
		r->unit = NULL;
		r->agg_n = 0;
		r->agg_cost = 0;
		r->attempts = attempts;
		r->not_before_ms = not_before_ms;
		ks_rqueue_push(q, r);
	}
}

static int take_all(void *ud, ks_record *unit)
{
	(void)ud;
	(void)unit;
	return 1;
}

/* The units of @p q, each record alone, back into @p q. */
static void unpack_queue(ks_kinesis_t *k, ks_rqueue *q)
{
	ks_rqueue units = *q;
	ks_record *u;

	memset(q, 0, sizeof(*q));
	while ((u = ks_rqueue_pop(&units)))
		unpack(k, u, q);
}

/* A stream that ignores partition keys, of @p open_shards: with rate.limit.percent, what the writer
 * sends is bounded by the shards' limits together (records spread evenly over them). */
static void limit_stream(ks_kinesis_t *k, int open_shards, int64_t now)
{
	if (k->conf->rate_limit_percent <= 0 || open_shards <= 0)
		return;
	ks_limiter_init(&k->stream_lim, k->conf->rate_limit_percent * (double)open_shards, now);
	ks_limiter_reserve(&k->stream_lim, 0.1);
	k->stream_limited = 1;
}

/* The stream was switched to RecordDistributionStrategy AUTO while the writer ran: stop a writer
 * whose contract is per-key order; otherwise write on as ks_kinesis_set_distribution does, with
 * the records queued for shards and in aggregates sent each alone. */
static void switch_to_auto(ks_kinesis_t *k, int64_t now)
{
	ks_rqueue queued = { 0 };
	ks_errbuf e;
	ks_record *u;

	decide(k, 0, now); /* aggregates accepted into shards not known yet: decided by key */
	ks_errbuf_clear(&e);
	if (accept_distribution(k, "AUTO", &e)) {
		ks_errbuf_prefix(&e, "while running");
		set_fatal(k, &e);
		return;
	}
	if (k->sh)
		ks_shards_extract(k->sh, take_all, NULL, &queued);
	while ((u = ks_rqueue_pop(&queued)))
		unpack(k, u, &k->ready);
	unpack_queue(k, &k->ready);
	unpack_queue(k, &k->retry);
	ks_shards_destroy(k->sh);
	k->sh = NULL;
	ks_shardlist_destroy(k->sl);
	k->sl = NULL;
	limit_stream(k, k->open_shards, now);
}

/* One ListShards answer: the next page, or the new map in use, or a failure (tried again later). */
static void handle_list(ks_kinesis_t *k, const ks_http_answer *a, int64_t now)
{
	char strategy[32] = "";

	k->list_busy = 0;
	if (k->list_describing) {
		k->list_describing = 0;
		if (a->status == 200)
			ks_stream_summary_distribution(a->body, a->body_len, strategy, sizeof(strategy));
		if (strcmp(strategy, "AUTO") == 0)
			switch_to_auto(k, now);
		else
			list_page(k, now); /* a failed describe is no reason not to list */
		return;
	}
	switch (ks_shardlist_answer(k->sl, a->status, a->body, a->body_len, a->error, now)) {
	case KS_LIST_NEXT:
		list_page(k, now);
		return;
	case KS_LIST_DONE: {
		ks_shardmap_t *map = ks_shardlist_take_map(k->sl);

		KS_METRIC_ADD(k->metrics, shard_map_refreshes, 1);
		ks_debug("kinesis", "stream %s has %d open shards", k->conf->stream, ks_shardmap_count(map));
		use_map(k, map, now);
		break;
	}
	case KS_LIST_FAILED:
		break;
	}
	decide(k, 0, now);
}

/* Whether the writer can go on with a stream of RecordDistributionStrategy @p strategy; with AUTO,
 * it writes on without shards (those queued are the caller's to take apart). */
static int accept_distribution(ks_kinesis_t *k, const char *strategy, ks_errbuf *err)
{
	const ks_conf *c = k->conf;

	if (!strategy || strcmp(strategy, "AUTO") != 0)
		return 0;
	if ((c->type == KS_TYPE_UPSERT || c->type == KS_TYPE_DEBEZIUM) && c->ordering != KS_ORDERING_NONE)
		return ks_errbuf_set(err, KS_ERR_FATAL,
				     "stream '%s' in region %s has RecordDistributionStrategy AUTO: Kinesis ignores partition keys, so type=%s cannot keep each key's changes in order; set the stream's strategy to USER_PARTITION_KEY (UpdateStreamRecordDistributionStrategy), or set ordering = none to write without per-key order",
				     c->stream, c->aws_region, c->type == KS_TYPE_UPSERT ? "upsert" : "debezium");
	ks_warn("kinesis", "stream '%s' has RecordDistributionStrategy AUTO: Kinesis ignores partition keys; writing without shard prediction, per-shard rate limits or aggregation",
		c->stream);
	k->auto_distribution = 1;
	return 0;
}

int ks_kinesis_set_distribution(ks_kinesis_t *k, const char *strategy, ks_errbuf *err)
{
	int rc = accept_distribution(k, strategy, err);

	if (rc || !k->auto_distribution)
		return rc;
	/* Nothing goes by shard: no map, no buckets, no listing. */
	ks_shards_destroy(k->sh);
	k->sh = NULL;
	ks_shardlist_destroy(k->sl);
	k->sl = NULL;
	return 0;
}

int ks_kinesis_set_shardmap(ks_kinesis_t *k, ks_shardmap_t *map)
{
	int64_t now = now_of(k);

	if (!k->sh) {
		/* Neither limits nor aggregation, or a stream that ignores keys: records go as they come. */
		if (k->auto_distribution)
			limit_stream(k, ks_shardmap_count(map), now);
		KS_METRIC_ADD(k->metrics, stream_open_shards, ks_shardmap_count(map));
		ks_shardmap_destroy(map);
		return 0;
	}
	if (ks_shardlist_use(k->sl, map, now)) {
		ks_shardmap_destroy(map);
		return KS_ERR_NOMEM;
	}
	use_map(k, map, now);
	return k->fatal ? KS_ERR_NOMEM : 0;
}

/* When the shard side needs the writer awake next (INT64_MAX: never). */
static int64_t shards_wake(const ks_kinesis_t *k)
{
	int64_t wake = sharded(k) ? k->shard_wake : INT64_MAX, list;

	if (k->sl && !k->list_busy && (list = ks_shardlist_wake(k->sl)) < wake)
		wake = list;
	return wake;
}

/* ---- public API ----------------------------------------------------------------------------- */

int ks_kinesis_validate(const ks_record *rec, ks_errbuf *err)
{
	ks_put_entry e = { rec->pkey, rec->pkey_len, NULL, rec->data, rec->data_len };

	return ks_putrecords_check_entry(&e, KS_MAX_RECORD_BYTES, err);
}

void ks_kinesis_set_max_record_bytes(ks_kinesis_t *k, size_t max_record_bytes)
{
	if (max_record_bytes < KS_MAX_RECORD_BYTES || max_record_bytes > KS_MAX_DATA_BYTES)
		max_record_bytes = KS_MAX_RECORD_BYTES;
	k->max_record_bytes = max_record_bytes;
	if (k->sh)
		ks_shards_set_max_record_bytes(k->sh, max_record_bytes);
	k->max_request_bytes = max_record_bytes > KS_MAX_RECORD_BYTES ? KS_PUT_MAX_LARGE_BYTES : KS_PUT_MAX_BYTES;
}

int ks_kinesis_submit(ks_kinesis_t *k, ks_record *rec, ks_errbuf *err)
{
	int64_t now = now_of(k);
	ks_put_entry e = { rec->pkey, rec->pkey_len, NULL, rec->data, rec->data_len };
	int rc;

	if ((rc = ks_putrecords_check_entry(&e, k->max_record_bytes, err)))
		return rc;
	rec->first_try_ms = now;
	rec->not_before_ms = now;
	rec->attempts = 0;
	/* Records again: what comes now may linger as usual (a flush is for what is held). */
	k->flush = 0;
	/* With ordering=key the gate takes it on the next poll, with the others submitted by then. */
	ks_rqueue_push(k->gate || sharded(k) ? &k->incoming : &k->ready, rec);
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
	ks_rqueue keep = { 0 };
	int64_t next = INT64_MAX;
	ks_record *r;

	if (k->fatal)
		return next;
	while ((r = ks_rqueue_pop(&k->retry))) {
		if (r->not_before_ms <= now) {
			/* Predicted units wait for their shard's buckets again. */
			if (r->shardset && sharded(k) && ks_shards_retry(k->sh, r) == 0)
				continue;
			ks_rqueue_push(&k->ready, r);
		} else {
			if (r->not_before_ms < next)
				next = r->not_before_ms;
			ks_rqueue_push(&keep, r);
		}
	}
	k->retry = keep;
	return next;
}

int ks_kinesis_poll(ks_kinesis_t *k, int timeout_ms, int wake_fd, ks_errbuf *err)
{
	int64_t now = now_of(k), next_retry, wait = timeout_ms;

	if (k->fatal)
		goto fatal;
	next_retry = due_retries(k, now);
	maybe_list(k, now);
	start_batches(k, now);
	/* Sleep no longer than until the next batch or retry is due. */
	if (next_retry != INT64_MAX && next_retry - now < wait)
		wait = next_retry - now;
	if (shards_wake(k) - now < wait)
		wait = shards_wake(k) - now;
	if (k->stream_wake - now < wait)
		wait = k->stream_wake - now;
	if (k->ready.n && k->busy < k->nreqs) {
		int64_t due = k->ready.head->not_before_ms + k->conf->batch_linger_ms - now;

		/* Due, but held by the stream's limits: not before they let a record go. */
		if (k->stream_wake != INT64_MAX && k->stream_wake - now > due)
			due = k->stream_wake - now;

		if (due < wait)
			wait = due;
	}
	if (wait < 0)
		wait = 0;
	k->tp->poll(k->t, (int)wait, wake_fd, handle_done, k);
	now = now_of(k);
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
