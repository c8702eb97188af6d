/*
 * The shard-aware side of the Kinesis writer (kinesis_internal.h): records through the shard
 * queues (shards.c) and the key gate, the shard map listed again while running (ListShards on the
 * transport's last slot), and the aggregates that landed in another shard than predicted: the
 * records outside that shard's range are sent again, the others acknowledged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinesis_internal.h"
#include "log.h"
#include "stream.h"

/* Least time between two listings, whatever asks for them. */
#define LIST_MIN_INTERVAL_MS 1000

/* Records of @p a's key waiting in the gate join its aggregate while it is open and has room:
 * with aggregation, a busy key costs no round trip as long as its records fit. */
static void join_waiting(ks_kinesis_t *k, ks_record *a)
{
	const ks_record *w;

	while ((w = ks_keygate_peek_waiting(k->gate, a)) && ks_shards_can_join(k->sh, a, w))
		ks_shards_join(k->sh, a, ks_keygate_take_waiting(k->gate, a));
}

void ks_kinesis_shards_nomem(ks_kinesis_t *k)
{
	ks_errbuf e;

	ks_errbuf_set(&e, KS_ERR_FATAL, "out of memory in the shard queues of the Kinesis writer");
	ks_kinesis_set_fatal(k, &e);
}

/* Queue @p rec (its key's active record, or any with ordering=none) for its predicted shard. */
void ks_kinesis_route(ks_kinesis_t *k, ks_record *rec)
{
	if (ks_shards_add(k->sh, rec)) {
		ks_rqueue_push(&k->retry, rec); /* held, never acknowledged, freed with the writer */
		ks_kinesis_shards_nomem(k);
		return;
	}
	if (k->gate)
		join_waiting(k, rec);
}

/* Shard-aware: the records submitted since the last poll go through the gate to their shard. */
void ks_kinesis_admit_sharded(ks_kinesis_t *k)
{
	ks_record *r, *a;
	ks_errbuf e;
	int rc;

	while (!k->fatal && (r = ks_rqueue_pop(&k->incoming))) {
		if (!k->gate) {
			ks_kinesis_route(k, r);
			continue;
		}
		if ((rc = ks_keygate_admit(k->gate, r)) < 0) {
			ks_errbuf_set(&e, KS_ERR_FATAL, "out of memory in the key table of the Kinesis writer (%zu keys)",
				      ks_keygate_keys(k->gate));
			ks_rqueue_push(&k->retry, r);
			ks_kinesis_set_fatal(k, &e);
		} else if (rc == 1) {
			ks_kinesis_route(k, r);
		} else if ((a = ks_keygate_active(k->gate, r))) {
			join_waiting(k, a);
		}
	}
}

/* The records of an aggregate that landed in a shard outside whose range they hash: a KCL
 * consumer would drop them. They go again, for their shard, before any later record of their
 * key (which waits in the gate behind them); they are not acknowledged. */
static void resend(ks_kinesis_t *k, ks_record *outside, int64_t now)
{
	ks_rqueue released = { 0 };
	size_t n = 0;
	ks_record *r;

	/* Those of a partition revoked since are not: the partition's new owner sends them. */
	if (ks_kinesis_has_revoked(k, outside))
		outside = ks_kinesis_strip_revoked(k, outside, &released);
	while ((r = ks_rqueue_pop(&released)))
		ks_kinesis_requeue_active(k, r, now);
	if (!outside)
		return;
	for (r = outside; r; r = r->agg)
		n++;
	KS_METRIC_ADD(k->metrics, records_resent_reshard, n);
	ks_info("kinesis", "%zu records of an aggregate landed outside the range of their shard of stream %s: sending them again",
		n, k->conf->stream);
	if (ks_shards_add_chain(k->sh, outside))
		ks_kinesis_shards_nomem(k);
}

/* An accepted unit's ShardId against its prediction. @returns 1 when it may be acknowledged
 * now (after the records outside its landed shard's range were sent again), 0 when the unit
 * waits for the next shard listing. */
int ks_kinesis_check_landed(ks_kinesis_t *k, ks_record *unit, const ks_put_result *res, int64_t now)
{
	ks_record *outside = NULL;
	ks_landed landed = ks_shards_landed(k->sh, unit, res->shard_id, &outside);
	landed_wait *w;

	if (landed == KS_LANDED_PREDICTED)
		return 1;
	KS_METRIC_ADD(k->metrics, shard_mispredictions, 1);
	k->want_refresh = 1;
	if (landed != KS_LANDED_UNKNOWN) {
		if (outside)
			resend(k, outside, now);
		return 1;
	}
	/* Records of a revoked partition are not held until the next listing: decided now. */
	if (ks_kinesis_has_revoked(k, unit) || !(w = calloc(1, sizeof(*w)))) {
		/* Not known which records a KCL consumer sees: all but the first key go again. */
		ks_shards_keep_first_key(unit, &outside);
		resend(k, outside, now);
		return 1;
	}
	w->unit = unit;
	snprintf(w->shard, sizeof(w->shard), "%s", res->shard_id);
	snprintf(w->seq, sizeof(w->seq), "%s", res->seq);
	w->next = k->verdicts;
	k->verdicts = w;
	return 0;
}

/* After a listing (or a failed one): decide the aggregates that waited for it. */
static void decide_waiting(ks_kinesis_t *k, int64_t now)
{
	landed_wait *w;

	while ((w = k->verdicts)) {
		ks_record *outside = NULL;

		k->verdicts = w->next;
		if (ks_shards_landed(k->sh, w->unit, w->shard, &outside) == KS_LANDED_UNKNOWN)
			ks_shards_keep_first_key(w->unit, &outside);
		if (outside)
			resend(k, outside, now);
		KS_METRIC_ADD(k->metrics, records_put_ok, ks_kinesis_ack_unit(k, w->unit, w->shard, w->seq, now));
		free(w);
	}
}

void ks_kinesis_decide_revoked(ks_kinesis_t *k, int64_t now)
{
	landed_wait **pp = &k->verdicts, *w;

	while ((w = *pp)) {
		ks_record *outside = NULL;

		if (!ks_kinesis_has_revoked(k, w->unit)) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		/* Not known which records a KCL consumer sees: all but the first key go again. */
		ks_shards_keep_first_key(w->unit, &outside);
		resend(k, outside, now);
		KS_METRIC_ADD(k->metrics, records_put_ok, ks_kinesis_ack_unit(k, w->unit, w->shard, w->seq, now));
		free(w);
	}
}

/* Send the ListShards call of page k->list_page (1: the first, naming the stream). */
static int list_page(ks_kinesis_t *k, int64_t now)
{
	ks_aws_headers hdrs = { 0 };
	ks_errbuf err;
	int rc;

	ks_errbuf_clear(&err);
	ks_buf_reset(&k->list_body);
	if ((rc = ks_stream_list_body(&k->list_body, k->conf, k->list_page == 1 ? NULL : k->list_next)) ||
	    (rc = ks_kinesis_sign(k, "Kinesis_20131202.ListShards", &k->list_body, &hdrs, &err)) ||
	    (rc = k->tp->start(k->t, k->list_slot, (const char *const *)hdrs.lines, k->list_body.data, k->list_body.len,
			       &err))) {
		ks_warn("kinesis", "cannot list the shards of stream %s: %s", k->conf->stream,
			err.text[0] ? err.text : ks_err_str(rc));
		ks_aws_headers_clean(&hdrs);
		return rc;
	}
	ks_aws_headers_clean(&hdrs);
	k->list_busy = 1;
	k->last_list_ms = now;
	return 0;
}

/* List the shards again when an answer asked for it (at most once a second) or when due; or,
 * without a map yet (the listing at start failed), every shards.refresh.ms (or minute). */
void ks_kinesis_maybe_list(ks_kinesis_t *k, int64_t now)
{
	if (!k->sh || k->list_busy || k->fatal || now - k->last_list_ms < LIST_MIN_INTERVAL_MS)
		return;
	if (!ks_kinesis_sharded(k) ? now < k->next_refresh_ms
			: !k->want_refresh && !(k->conf->shards_refresh_ms > 0 && now >= k->next_refresh_ms))
		return;
	ks_shardmap_destroy(k->list_map);
	if (!(k->list_map = ks_shardmap_new()))
		return;
	k->list_page = 1;
	if (list_page(k, now)) {
		ks_shardmap_destroy(k->list_map);
		k->list_map = NULL;
		if (!ks_kinesis_sharded(k))
			k->next_refresh_ms = now + ks_kinesis_relist_ms(k->conf);
		decide_waiting(k, now);
	}
}

static void use_map(ks_kinesis_t *k, ks_shardmap_t *map, int64_t now)
{
	int n = ks_shardmap_count(map);
	ks_errbuf e;

	if (ks_shards_set_map(k->sh, map, now)) {
		ks_errbuf_set(&e, KS_ERR_FATAL, "out of memory in the shard queues of the Kinesis writer");
		ks_kinesis_set_fatal(k, &e);
		return;
	}
	/* The gauge adds up every writer's stream (several with routes). */
	KS_METRIC_ADD(k->metrics, stream_open_shards, n - k->open_shards);
	k->open_shards = n;
	k->next_refresh_ms = now + k->conf->shards_refresh_ms;
}

/* One ListShards answer: the next page, or the new map in use. */
void ks_kinesis_handle_list(ks_kinesis_t *k, const ks_http_answer *a, int64_t now)
{
	ks_aws_error ae;
	ks_errbuf err;
	int rc;

	k->list_busy = 0;
	ks_errbuf_clear(&err);
	if (a->status != 200) {
		ks_aws_error_parse(a->body, a->body_len, &ae);
		ks_errbuf_set(&err, KS_ERR_IO, "HTTP %ld %s: %s", a->status, a->status ? ae.type : "no answer",
			      a->status ? ae.message : a->error ? a->error : "");
		rc = KS_ERR_IO;
	} else if (!(rc = ks_shardmap_add_page(k->list_map, a->body, a->body_len, k->list_next, sizeof(k->list_next),
					       &err)) &&
		   k->list_next[0]) {
		k->list_page++;
		if (!(rc = list_page(k, now)))
			return;
	} else if (!rc) {
		rc = ks_shardmap_finish(k->list_map, &err);
	}
	if (rc) {
		/* Keep the map in use; try again later (a snapshot taken mid-reshard, a throttle). */
		if (!k->list_failures++)
			ks_warn("kinesis", "listing the shards of stream %s failed (page %d): %s; %s", k->conf->stream,
				k->list_page, err.text, ks_kinesis_sharded(k) ? "keeping the map in use" : "writing on without the shard map");
		ks_shardmap_destroy(k->list_map);
		if (!ks_kinesis_sharded(k))
			k->next_refresh_ms = now + ks_kinesis_relist_ms(k->conf);
	} else {
		if (k->list_failures)
			ks_info("kinesis", "listed the shards of stream %s again after %d failures", k->conf->stream,
				k->list_failures);
		k->list_failures = 0;
		KS_METRIC_ADD(k->metrics, shard_map_refreshes, 1);
		ks_debug("kinesis", "stream %s has %d open shards", k->conf->stream, ks_shardmap_count(k->list_map));
		use_map(k, k->list_map, now);
		k->want_refresh = 0;
	}
	k->list_map = NULL;
	decide_waiting(k, now);
}

int ks_kinesis_set_shardmap(ks_kinesis_t *k, ks_shardmap_t *map)
{
	if (!k->sh) {
		/* Neither limits nor aggregation: records go as they come. */
		KS_METRIC_ADD(k->metrics, stream_open_shards, ks_shardmap_count(map));
		ks_shardmap_destroy(map);
		return 0;
	}
	use_map(k, map, ks_kinesis_now(k));
	return k->fatal ? KS_ERR_NOMEM : 0;
}

int64_t ks_kinesis_shards_wake(const ks_kinesis_t *k)
{
	int64_t wake = INT64_MAX;

	if (!ks_kinesis_sharded(k))
		return wake;
	wake = k->shard_wake;
	if ((k->want_refresh || k->conf->shards_refresh_ms > 0) && !k->list_busy) {
		int64_t due = k->want_refresh ? k->last_list_ms + LIST_MIN_INTERVAL_MS : k->next_refresh_ms;

		if (due < wake)
			wake = due;
	}
	return wake;
}
