/*
 * The pipeline: one thread moves each Kafka message through decode and transform into the
 * Kinesis writer, and commits an offset only when every record up to it was acknowledged
 * (or skipped / dead-lettered on purpose). Kafka events and HTTP answers wake the same poll.
 */
#include "pipeline.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "consumer.h"
#include "creds.h"
#include "decode.h"
#include "dlq.h"
#include "kinesis.h"
#include "log.h"
#include "metrics.h"
#include "offsets.h"
#include "prepare.h"
#include "transform.h"

#define CONSUME_BUDGET 1000  /* messages taken per loop turn before the writer runs */
#define BATCH_MAX 500        /* messages decoded and transformed together */

typedef struct pipeline {
	const ks_conf *conf;
	volatile sig_atomic_t *stop;
	ks_metrics m;
	ks_metrics_server_t *msrv;
	ks_creds_t *creds;
	ks_kinesis_t *kin;
	ks_preparer_t *prep;
	ks_prepared *batch;           /* messages being taken from the consumer */
	int nbatch;
	ks_prepared *pend;            /* the batch taken before: on the lanes, then handled */
	int npend;
	size_t pend_bytes;
	ks_dlq_t *dlq;
	rd_kafka_t *rk;
	int wake[2];

	pthread_mutex_t parts_lock;   /* parts[] is read by the metrics thread */
	ks_ptrack_t **parts;          /* assigned partitions */
	int nparts, capparts;
	ks_ptrack_t **retired;        /* revoked, waiting for their last acks */
	int nretired, capretired;
	ks_ptrack_t *last;            /* lookup cache */

	int bp_paused;
	int64_t commit_hold_until;    /* a commit met a rebalance: wait for the next assignment */
	int nudge;                    /* restart stalled fetches (librdkafka < 2.1) */
	int nudge_armed;              /* the prefetch queue was seen near its limit */
	rd_kafka_queue_t *cq;         /* the consumer queue, for its length */
	int64_t q_max_bytes, q_min_msgs;
	uint64_t msgs_seen, bytes_seen;
	int64_t last_msg_ms;          /* when the consumer last gave a message */
	int64_t over_since_ms;        /* 0, or since when in-flight bounds are exceeded */
	int fatal;
	int fatal_drain;              /* the writer still works: finish its records before exiting */
	int stopping;
	int64_t stop_deadline;
	int64_t last_commit_ms;
	int64_t last_stats_ms;
	uint64_t last_stats_consumed;
	uint64_t warned_non_row;
} pipeline;

typedef struct dlq_cookie {
	ks_ptrack_t *part;
	int64_t offset;
} dlq_cookie;

/* ---- partitions ------------------------------------------------------------------------------ */

static int push_ptr(ks_ptrack_t ***arr, int *n, int *cap, ks_ptrack_t *p)
{
	if (*n == *cap) {
		int ncap = *cap ? *cap * 2 : 16;
		ks_ptrack_t **na = realloc(*arr, sizeof(*na) * (size_t)ncap);

		if (!na)
			return KS_ERR_NOMEM;
		*arr = na;
		*cap = ncap;
	}
	(*arr)[(*n)++] = p;
	return 0;
}

static ks_ptrack_t *find_part(pipeline *p, const char *topic, int32_t partition)
{
	int i;

	if (p->last && ks_ptrack_partition(p->last) == partition && strcmp(ks_ptrack_topic(p->last), topic) == 0)
		return p->last;
	for (i = 0; i < p->nparts; i++) {
		if (ks_ptrack_partition(p->parts[i]) == partition && strcmp(ks_ptrack_topic(p->parts[i]), topic) == 0)
			return p->last = p->parts[i];
	}
	return NULL;
}

/* Free retired trackers nothing points at any more. */
static void sweep_retired(pipeline *p)
{
	int i, o = 0;

	for (i = 0; i < p->nretired; i++) {
		if (ks_ptrack_pending_acks(p->retired[i]) == 0)
			ks_ptrack_destroy(p->retired[i]);
		else
			p->retired[o++] = p->retired[i];
	}
	p->nretired = o;
}

static void set_fatal(pipeline *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Stop because of the input (bad record, registry): records already handed to Kinesis are
 * finished and committed first, so the restart re-reads as little as possible. */
#define set_fatal_input(p, ...) do { (p)->fatal_drain = !(p)->fatal; set_fatal((p), __VA_ARGS__); } while (0)

static void set_fatal(pipeline *p, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!p->fatal)
		ks_err_log("pipeline", "%s", msg);
	p->fatal = 1;
}

/* ---- commits ----------------------------------------------------------------------------------- */

/* The outcome of a commit: confirmed offsets become `committed`; a failed one is sent again by
 * the next commit (unless a later offset was sent since). After a failure that says the group is
 * rebalancing, commits wait for the next assignment, or COMMIT_HOLD_MAX_MS at most. */
#define COMMIT_HOLD_MAX_MS 30000

static void on_committed(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
	pipeline *p = opaque;
	int i;

	for (i = 0; offsets && i < offsets->cnt; i++) {
		const rd_kafka_topic_partition_t *tp = &offsets->elems[i];
		ks_ptrack_t *t = find_part(p, tp->topic, tp->partition);
		ks_ptrack_state *st;

		if (!t || tp->offset < 0)
			continue;
		st = ks_ptrack_state_of(t);
		if (!err && !tp->err) {
			if (tp->offset > st->committed)
				st->committed = tp->offset;
			ks_debug("offsets", "committed %s [%d] @%" PRId64, tp->topic, tp->partition, tp->offset);
		} else if (st->commit_sent == tp->offset) {
			rd_kafka_resp_err_t e = tp->err ? tp->err : err;

			st->commit_sent = st->committed;
			/* The group is rebalancing: a commit now would only fail again (and a stale
			 * generation makes librdkafka give the assignment up); wait for its outcome. */
			if (e == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS || e == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION ||
			    e == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID)
				p->commit_hold_until = ks_now_ms() + COMMIT_HOLD_MAX_MS;
			ks_debug("offsets", "commit of %s [%d] @%" PRId64 " failed (%s): sending it again", tp->topic,
				 tp->partition, tp->offset, rd_kafka_err2str(e));
		}
	}
}

/* Commit every partition whose committable offset moved (all of them when @p force). */
static void commit(pipeline *p, int sync, int force)
{
	rd_kafka_topic_partition_list_t *l;
	rd_kafka_resp_err_t e;
	int i;

	if (!force && !sync && ks_now_ms() < p->commit_hold_until) /* revoke and shutdown try anyway */
		return;
	l = rd_kafka_topic_partition_list_new(p->nparts ? p->nparts : 1);

	for (i = 0; i < p->nparts; i++) {
		ks_ptrack_state *st = ks_ptrack_state_of(p->parts[i]);
		int64_t off = ks_ptrack_committable(p->parts[i]);

		if (off < 0 || (!force && off <= st->commit_sent))
			continue;
		rd_kafka_topic_partition_list_add(l, ks_ptrack_topic(p->parts[i]), ks_ptrack_partition(p->parts[i]))
			->offset = off;
	}
	if (l->cnt > 0) {
		/* Sent, not yet committed: on_committed says, and a failure is sent again. */
		for (i = 0; i < l->cnt; i++)
			ks_ptrack_state_of(find_part(p, l->elems[i].topic, l->elems[i].partition))->commit_sent =
				l->elems[i].offset;
		e = rd_kafka_commit(p->rk, l, sync ? 0 : 1);
		if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
			ks_warn("offsets", "commit failed: %s (the offsets will be committed again)", rd_kafka_err2str(e));
		if (sync)
			on_committed(e, l, p);
	}
	rd_kafka_topic_partition_list_destroy(l);
	p->last_commit_ms = ks_now_ms();
}

/* ---- writer callbacks ---------------------------------------------------------------------------- */

static void on_acked(void *opaque, ks_record *rec, const char *shard, const char *seq)
{
	(void)opaque;
	(void)shard;
	(void)seq;
	ks_ptrack_ack(rec->origin, rec->offset);
}

static void on_failed(void *opaque, ks_record *rec, const ks_errbuf *err)
{
	pipeline *p = opaque;

	/* Never acknowledged: its offset is never committed, the worker stops. */
	ks_ptrack_drop(rec->origin, rec->offset);
	set_fatal(p, "%s [%d] @%lld: %s", ks_ptrack_topic(rec->origin), (int)ks_ptrack_partition(rec->origin),
		  (long long)rec->offset, err->text);
}

static void on_dlq_done(void *opaque, void *cookie, const char *err)
{
	pipeline *p = opaque;
	dlq_cookie *c = cookie;

	if (err) {
		ks_ptrack_drop(c->part, c->offset);
		set_fatal(p, "cannot dead-letter %s [%d] @%lld to %s: %s; stopping so the record is not lost",
			  ks_ptrack_topic(c->part), (int)ks_ptrack_partition(c->part), (long long)c->offset,
			  p->conf->errors_dlq_topic, err);
	} else {
		KS_METRIC_ADD(&p->m, records_dead_lettered, 1);
		ks_ptrack_ack(c->part, c->offset);
	}
	free(c);
}

/* ---- bad records ------------------------------------------------------------------------------- */

static ks_bad_reason reason_of(const ks_errbuf *err)
{
	if (err->stage == KS_STAGE_DECODE)
		return KS_BAD_DECODE;
	if (strcmp(err->reason, "too_large") == 0)
		return KS_BAD_TOO_LARGE;
	if (strcmp(err->reason, "bad_key") == 0)
		return KS_BAD_KEY;
	return KS_BAD_TRANSFORM;
}

/*
 * Apply errors.policy to one bad record of @p msg, whose tracker entry waits for one more ack:
 * skip acks it now, dlq acks it when Kafka confirmed the dead letter, fail stops the worker with
 * the offset still pending, so nothing from it on is committed.
 */
static void bad_record(pipeline *p, ks_ptrack_t *part, const rd_kafka_message_t *msg, const ks_errbuf *err)
{
	dlq_cookie *c;
	ks_errbuf e;

	KS_METRIC_ADD(&p->m, records_bad[reason_of(err)], 1);
	switch (p->conf->errors_policy) {
	case KS_POLICY_SKIP:
		ks_warn("pipeline", "skipping bad record (%s): %s", ks_stage_str(err->stage), err->text);
		KS_METRIC_ADD(&p->m, records_skipped, 1);
		ks_ptrack_ack(part, msg->offset);
		return;
	case KS_POLICY_DLQ:
		if (!(c = malloc(sizeof(*c)))) {
			set_fatal(p, "out of memory dead-lettering %s", err->text);
			return;
		}
		c->part = part;
		c->offset = msg->offset;
		ks_errbuf_clear(&e);
		while (ks_dlq_send(p->dlq, msg, err, c, &e) == KS_ERR_TRANSIENT) {
			/* The producer queue is full: let it drain, the pipeline waits. */
			rd_kafka_poll(NULL, 0);
			ks_dlq_poll(p->dlq);
			usleep(1000);
			if (*p->stop)
				break;
		}
		if (e.code && e.code != KS_ERR_TRANSIENT) {
			free(c);
			set_fatal(p, "%s", e.text);
			return;
		}
		ks_warn("pipeline", "dead-lettering bad record to %s (%s): %s", p->conf->errors_dlq_topic,
			ks_stage_str(err->stage), err->text);
		return;
	case KS_POLICY_FAIL:
	default:
		set_fatal_input(p, "bad record (%s): %s. errors.policy=fail stops here; offsets are committed up to "
			     "before this record. Fix the input, or set errors.policy=skip or errors.policy=dlq",
			  ks_stage_str(err->stage), err->text);
		return;
	}
}

/* ---- messages ------------------------------------------------------------------------------------ */

/* What follows decode and transform, in message order on the pipeline thread: offsets
 * tracking, bad records by policy, and the hand-over to the writer. */
static void handle_prepared(pipeline *p, ks_prepared *it)
{
	rd_kafka_message_t *msg = it->msg;
	ks_ptrack_t *part;
	ks_errbuf err;
	int rc, i, n = it->n;

	if (msg->err) {
		if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			if ((part = find_part(p, rd_kafka_topic_name(msg->rkt), msg->partition)))
				ks_ptrack_state_of(part)->eof = 1;
			return;
		}
		ks_warn("consumer", "%s%s%s: %s", msg->rkt ? rd_kafka_topic_name(msg->rkt) : "",
			msg->rkt ? " " : "", rd_kafka_err2name(msg->err), rd_kafka_message_errstr(msg));
		return;
	}
	part = find_part(p, rd_kafka_topic_name(msg->rkt), msg->partition);
	if (!part || p->stopping || p->fatal)
		goto drop; /* not tracked: never committed, read again by whoever owns it next */
	ks_ptrack_state_of(part)->eof = 0;
	KS_METRIC_ADD(&p->m, records_consumed, 1);

	if (it->rc == KS_ERR_BADREC) {
		if (it->transformed)
			KS_METRIC_ADD(&p->m, records_decoded, 1);
		if (ks_ptrack_add(part, msg->offset, 1) == 0)
			bad_record(p, part, msg, &it->err);
		return;
	}
	if (it->rc && !it->transformed) {
		set_fatal_input(p, "%s", it->err.text[0] ? it->err.text : ks_err_str(it->rc));
		return;
	}
	if (it->rc) {
		set_fatal(p, "transform failed: %s", ks_err_str(it->rc));
		return;
	}
	if (it->op == KS_OP_TOMBSTONE) {
		ks_ptrack_add(part, msg->offset, 0);
		return;
	}
	if (it->op == KS_OP_TRUNCATE || it->op == KS_OP_MESSAGE) {
		/* Not a row change: skipped with a warning count, whatever the policy. */
		KS_METRIC_ADD(&p->m, records_bad[KS_BAD_NON_ROW], 1);
		if (p->warned_non_row++ < 10)
			ks_warn("pipeline", "%s [%d] @%lld: skipping Debezium '%c' event (not a row change)",
				rd_kafka_topic_name(msg->rkt), (int)msg->partition, (long long)msg->offset,
				ks_op_char(it->op));
		ks_ptrack_add(part, msg->offset, 0);
		return;
	}
	KS_METRIC_ADD(&p->m, records_decoded, 1);
	if ((rc = ks_ptrack_add(part, msg->offset, n))) {
		set_fatal(p, "cannot track %s [%d] @%lld: %s", rd_kafka_topic_name(msg->rkt), (int)msg->partition,
			  (long long)msg->offset, ks_err_str(rc));
		goto drop;
	}
	for (i = 0; i < n; i++) {
		ks_record *rec = it->recs[i];

		rec->origin = part;
		rec->offset = msg->offset;
		ks_errbuf_clear(&err);
		if ((rc = ks_kinesis_submit(p->kin, rec, &err)) == 0)
			continue;
		if (rc == KS_ERR_BADREC) {
			ks_errbuf_prefix(&err, "%s [%d] @%lld", rd_kafka_topic_name(msg->rkt), (int)msg->partition,
					 (long long)msg->offset);
			bad_record(p, part, msg, &err);
		} else {
			ks_ptrack_drop(part, msg->offset);
			set_fatal(p, "%s", err.text);
		}
		ks_record_destroy(rec);
	}
	return;
drop:
	for (i = 0; i < n; i++)
		ks_record_destroy(it->recs[i]);
}

/* Wait for the batch on the lanes and handle it in order. */
static void handle_pending(pipeline *p)
{
	int i;

	ks_preparer_finish(p->prep);
	for (i = 0; i < p->npend; i++) {
		handle_prepared(p, &p->pend[i]);
		rd_kafka_message_destroy(p->pend[i].msg);
	}
	p->npend = 0;
	p->pend_bytes = 0;
}

/*
 * The batch just taken goes to the lanes, and the one before it, finished first, is handled
 * while they work on it: decoding overlaps with everything else the pipeline thread does.
 */
static void advance(pipeline *p)
{
	ks_prepared *t = p->pend;
	int n = p->nbatch, npend = p->npend, i;
	size_t bytes = 0;

	ks_preparer_finish(p->prep);
	for (i = 0; i < n; i++)
		bytes += p->batch[i].msg->len + p->batch[i].msg->key_len;
	if (n)
		ks_preparer_start(p->prep, p->batch, n);
	for (i = 0; i < npend; i++) {
		handle_prepared(p, &t[i]);
		rd_kafka_message_destroy(t[i].msg);
	}
	p->pend = p->batch;
	p->npend = n;
	p->pend_bytes = bytes;
	p->batch = t;
	p->nbatch = 0;
}

/* Handle everything taken so far, in order: the batch on the lanes, then the one being taken. */
static void flush_batch(pipeline *p)
{
	advance(p);
	handle_pending(p);
}

/* After a fatal error: what is still on the lanes is dropped, its offsets never committed. */
static void drop_pending(pipeline *p)
{
	int i, k;

	ks_preparer_finish(p->prep);
	for (i = 0; i < p->npend; i++) {
		for (k = 0; k < p->pend[i].n; k++)
			ks_record_destroy(p->pend[i].recs[k]);
		rd_kafka_message_destroy(p->pend[i].msg);
	}
	p->npend = 0;
	p->pend_bytes = 0;
}

/* ---- rebalances ---------------------------------------------------------------------------------- */

static void pause_list(pipeline *p, int pause)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(p->nparts ? p->nparts : 1);
	int i;

	for (i = 0; i < p->nparts; i++) {
		rd_kafka_topic_partition_list_add(l, ks_ptrack_topic(p->parts[i]), ks_ptrack_partition(p->parts[i]));
		ks_ptrack_state_of(p->parts[i])->paused = pause;
	}
	if (l->cnt)
		(pause ? rd_kafka_pause_partitions : rd_kafka_resume_partitions)(p->rk, l);
	rd_kafka_topic_partition_list_destroy(l);
	KS_METRIC_SET(&p->m, paused_partitions, pause ? (int64_t)p->nparts : 0);
}

static int has_pending(pipeline *p, rd_kafka_topic_partition_list_t *parts)
{
	int i;

	for (i = 0; i < parts->cnt; i++) {
		ks_ptrack_t *t = find_part(p, parts->elems[i].topic, parts->elems[i].partition);

		if (t && ks_ptrack_pending_acks(t) > 0)
			return 1;
	}
	return 0;
}

static void revoke_parts(pipeline *p, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts)
{
	int64_t deadline = ks_now_ms() + p->conf->rebalance_drain_ms;
	int lost = rd_kafka_assignment_lost(rk), i, j;
	ks_errbuf err;

	/* Let the records of these partitions finish, so the new owner re-reads as little as possible. */
	ks_kinesis_flush(p->kin);
	while (!lost && !p->fatal && has_pending(p, parts) && ks_now_ms() < deadline) {
		if (ks_kinesis_poll(p->kin, 50, -1, &err)) {
			set_fatal(p, "%s", err.text);
			break;
		}
		ks_dlq_poll(p->dlq);
	}
	if (!lost)
		commit(p, 1, 0);
	pthread_mutex_lock(&p->parts_lock);
	for (i = 0; i < parts->cnt; i++) {
		for (j = 0; j < p->nparts; j++) {
			ks_ptrack_t *t = p->parts[j];

			if (ks_ptrack_partition(t) != parts->elems[i].partition ||
			    strcmp(ks_ptrack_topic(t), parts->elems[i].topic) != 0)
				continue;
			if (ks_ptrack_pending_acks(t) > 0)
				ks_info("pipeline", "%s [%d] revoked with %lld records unacknowledged: the next owner reads them again",
					ks_ptrack_topic(t), (int)ks_ptrack_partition(t), (long long)ks_ptrack_pending_acks(t));
			ks_ptrack_release(t);
			if (push_ptr(&p->retired, &p->nretired, &p->capretired, t))
				ks_ptrack_destroy(t); /* cannot happen with pending acks: they were 0 or memory is gone */
			p->parts[j] = p->parts[--p->nparts];
			break;
		}
	}
	p->last = NULL;
	pthread_mutex_unlock(&p->parts_lock);
	KS_METRIC_SET(&p->m, assigned_partitions, (int64_t)p->nparts);
	sweep_retired(p);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
			 void *opaque)
{
	pipeline *p = opaque;
	int coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0, i;
	rd_kafka_error_t *e = NULL;

	/* Messages taken before the rebalance are handled before it, as if one at a time. */
	flush_batch(p);
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
		p->commit_hold_until = 0;

	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		pthread_mutex_lock(&p->parts_lock);
		for (i = 0; i < parts->cnt; i++) {
			ks_ptrack_t *t;

			if (find_part(p, parts->elems[i].topic, parts->elems[i].partition))
				continue;
			if (!(t = ks_ptrack_new(parts->elems[i].topic, parts->elems[i].partition)) ||
			    push_ptr(&p->parts, &p->nparts, &p->capparts, t)) {
				ks_ptrack_destroy(t);
				set_fatal(p, "out of memory tracking assigned partitions");
				break;
			}
		}
		pthread_mutex_unlock(&p->parts_lock);
		ks_info("pipeline", "assigned %d partition%s (%d in total)", parts->cnt, parts->cnt == 1 ? "" : "s",
			p->nparts);
		if (coop)
			e = rd_kafka_incremental_assign(rk, parts);
		else
			rd_kafka_assign(rk, parts);
		if (p->bp_paused || p->stopping)
			pause_list(p, 1);
	} else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
		ks_info("pipeline", "revoking %d partition%s", parts->cnt, parts->cnt == 1 ? "" : "s");
		revoke_parts(p, rk, parts);
		if (coop)
			e = rd_kafka_incremental_unassign(rk, parts);
		else
			rd_kafka_assign(rk, NULL);
	} else {
		ks_err_log("pipeline", "rebalance failed: %s", rd_kafka_err2str(err));
		revoke_parts(p, rk, parts);
		rd_kafka_assign(rk, NULL);
	}
	if (e) {
		ks_err_log("pipeline", "rebalance: %s", rd_kafka_error_string(e));
		rd_kafka_error_destroy(e);
	}
	KS_METRIC_SET(&p->m, assigned_partitions, (int64_t)p->nparts);
}

/* ---- metrics -------------------------------------------------------------------------------------- */

static int partition_stats(void *opaque, ks_partition_stat *out, int max)
{
	pipeline *p = opaque;
	int i, n = 0;

	pthread_mutex_lock(&p->parts_lock);
	for (i = 0; i < p->nparts && n < max; i++, n++) {
		ks_ptrack_t *t = p->parts[i];
		ks_ptrack_state *st = ks_ptrack_state_of(t);
		int64_t lo = -1, hi = -1, pos = ks_ptrack_committable(t);

		snprintf(out[n].topic, sizeof(out[n].topic), "%s", ks_ptrack_topic(t));
		out[n].partition = ks_ptrack_partition(t);
		out[n].committed = st->committed;
		out[n].last_acked = ks_ptrack_last_acked(t);
		out[n].paused = st->paused;
		rd_kafka_get_watermark_offsets(p->rk, ks_ptrack_topic(t), ks_ptrack_partition(t), &lo, &hi);
		if (pos < 0)
			pos = st->committed;
		out[n].lag = hi >= 0 && pos >= 0 ? hi - pos : -1;
	}
	pthread_mutex_unlock(&p->parts_lock);
	return n;
}

static void progress_line(pipeline *p, int64_t now)
{
	uint64_t consumed = __atomic_load_n(&p->m.records_consumed, __ATOMIC_RELAXED);
	double secs = (double)(now - p->last_stats_ms) / 1000.0;

	ks_info("pipeline", "progress: consumed %" PRIu64 " (%.0f/s), put %" PRIu64 ", retried %" PRIu64
			    ", bad %" PRIu64 ", in flight %zu records / %zu bytes, %d partitions%s",
		consumed, secs > 0 ? (double)(consumed - p->last_stats_consumed) / secs : 0.0,
		__atomic_load_n(&p->m.records_put_ok, __ATOMIC_RELAXED),
		__atomic_load_n(&p->m.records_retried, __ATOMIC_RELAXED),
		p->m.records_bad[KS_BAD_DECODE] + p->m.records_bad[KS_BAD_TRANSFORM] +
			p->m.records_bad[KS_BAD_TOO_LARGE] + p->m.records_bad[KS_BAD_KEY],
		ks_kinesis_inflight_records(p->kin), ks_kinesis_inflight_bytes(p->kin), p->nparts,
		p->bp_paused ? ", paused (backpressure)" : "");
	p->last_stats_ms = now;
	p->last_stats_consumed = consumed;
}

/* ---- the loop --------------------------------------------------------------------------------------- */

/*
 * Past max.inflight.records / max.inflight.bytes the loop stops taking messages and lets the
 * writer catch up: librdkafka's bounded prefetch queue holds the rest. Only when that lasts
 * longer than BP_PAUSE_AFTER_MS (throttling, an outage) are the partitions paused, so the
 * consumer can go on polling (group membership, rebalances) without taking more data; pausing
 * at every short burst would throw the prefetched messages away and fetch them again.
 * @returns 1 when no message may be taken now.
 */
#define BP_PAUSE_AFTER_MS 1000

/* Held between Kafka and a Kinesis acknowledgement: in the writer, or on the lanes (as taken). */
static size_t held_records(pipeline *p)
{
	return ks_kinesis_inflight_records(p->kin) + (size_t)p->npend;
}

static size_t held_bytes(pipeline *p)
{
	return ks_kinesis_inflight_bytes(p->kin) + p->pend_bytes;
}

static int backpressure(pipeline *p, int64_t now)
{
	size_t recs = held_records(p), bytes = held_bytes(p);
	size_t max_recs = (size_t)p->conf->max_inflight_records, max_bytes = (size_t)p->conf->max_inflight_bytes;

	if (recs >= max_recs || bytes >= max_bytes) {
		if (!p->over_since_ms)
			p->over_since_ms = now;
		if (!p->bp_paused && now - p->over_since_ms >= BP_PAUSE_AFTER_MS) {
			ks_info("pipeline", "pausing %d partitions: %zu records / %zu bytes in flight for %lld ms",
				p->nparts, recs, bytes, (long long)(now - p->over_since_ms));
			p->bp_paused = 1;
			pause_list(p, 1);
		}
		return !p->bp_paused;
	}
	p->over_since_ms = 0;
	if (p->bp_paused && !p->stopping && recs <= max_recs * 3 / 4 && bytes <= max_bytes * 3 / 4) {
		ks_info("pipeline", "resuming %d partitions: %zu records / %zu bytes in flight", p->nparts, recs, bytes);
		p->bp_paused = 0;
		pause_list(p, 0);
		p->nudge_armed = p->nudge; /* a resume alone does not wake librdkafka 2.0's fetcher */
	}
	return 0;
}

/*
 * librdkafka before 2.1 stops fetching when its prefetch queue is full and looks at it again
 * only on its broker thread's next wake-up, up to a second later, however soon the queue was
 * drained: a fast pipeline would idle most of that second. So when the queue was seen near its
 * limit (queued.max.messages.kbytes or queued.min.messages) and has since run empty while
 * assigned partitions still have data (their last known high watermark is past the position),
 * those partitions are sought to their position, which wakes the broker thread. Nothing is
 * lost or read twice: the queue is empty and the fetch resumes at the position. Once per fill,
 * so that a fetch in flight on a slow network is never cut short more than once.
 */
#define NUDGE_IDLE_MS 5

static void fetch_watch(pipeline *p)
{
	size_t queued;

	if (!p->nudge || p->nudge_armed)
		return;
	queued = rd_kafka_queue_length(p->cq);
	if ((int64_t)queued * 2 >= p->q_min_msgs ||
	    (p->msgs_seen && (int64_t)(queued * (p->bytes_seen / p->msgs_seen)) * 2 >= p->q_max_bytes))
		p->nudge_armed = 1;
}

/* @returns 1 when it is too early to tell and the caller should look again in NUDGE_IDLE_MS. */
static int nudge_fetcher(pipeline *p, int64_t now)
{
	rd_kafka_topic_partition_list_t *all, *stalled;
	int i;

	if (!p->nudge_armed || p->bp_paused || p->stopping || !p->nparts)
		return 0;
	if (now - p->last_msg_ms < NUDGE_IDLE_MS)
		return 1;
	p->nudge_armed = 0;
	all = rd_kafka_topic_partition_list_new(p->nparts);
	stalled = rd_kafka_topic_partition_list_new(p->nparts);
	for (i = 0; i < p->nparts; i++)
		rd_kafka_topic_partition_list_add(all, ks_ptrack_topic(p->parts[i]), ks_ptrack_partition(p->parts[i]));
	if (rd_kafka_position(p->rk, all) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		for (i = 0; i < all->cnt; i++) {
			const rd_kafka_topic_partition_t *tp = &all->elems[i];
			int64_t lo, hi;

			if (tp->offset >= 0 &&
			    rd_kafka_get_watermark_offsets(p->rk, tp->topic, tp->partition, &lo, &hi) == 0 &&
			    hi > tp->offset)
				rd_kafka_topic_partition_list_add(stalled, tp->topic, tp->partition)->offset = tp->offset;
		}
	}
	if (stalled->cnt) {
		rd_kafka_error_t *e = rd_kafka_seek_partitions(p->rk, stalled, 0);

		ks_debug("pipeline", "restarting the fetch of %d partitions with data left and none queued%s%s",
			 stalled->cnt, e ? ": " : "", e ? rd_kafka_error_string(e) : "");
		if (e)
			rd_kafka_error_destroy(e);
		KS_METRIC_ADD(&p->m, fetch_restarts, (uint64_t)stalled->cnt);
	}
	rd_kafka_topic_partition_list_destroy(stalled);
	rd_kafka_topic_partition_list_destroy(all);
	return 0;
}

static int all_at_eof(pipeline *p)
{
	int i;

	if (p->nparts == 0)
		return 0;
	for (i = 0; i < p->nparts; i++)
		if (!ks_ptrack_state_of(p->parts[i])->eof)
			return 0;
	return 1;
}

static void drain_wake(pipeline *p)
{
	char buf[256];

	while (read(p->wake[0], buf, sizeof(buf)) > 0)
		;
}

static void drain_after_fatal(pipeline *p)
{
	int64_t deadline = ks_now_ms() + p->conf->shutdown_timeout_ms;
	ks_errbuf err;

	if (!p->fatal_drain)
		return;
	pause_list(p, 1);
	ks_kinesis_flush(p->kin);
	while ((ks_kinesis_inflight_records(p->kin) > 0 || ks_dlq_pending(p->dlq) > 0) && ks_now_ms() < deadline) {
		if (ks_kinesis_poll(p->kin, 50, -1, &err))
			break;
		ks_dlq_poll(p->dlq);
	}
}

static int run_loop(pipeline *p)
{
	ks_errbuf err;
	int64_t now;

	p->last_commit_ms = p->last_stats_ms = ks_now_ms();
	for (;;) {
		int budget = CONSUME_BUDGET, more = 0, hold, soon = 0;
		rd_kafka_message_t *msg;

		now = ks_now_ms();
		KS_METRIC_SET(&p->m, last_loop_ms, now);
		if (*p->stop && !p->stopping) {
			ks_info("pipeline", "stopping: finishing %zu records in flight (up to %d ms)",
				ks_kinesis_inflight_records(p->kin), p->conf->shutdown_timeout_ms);
			p->stopping = 1;
			p->stop_deadline = now + p->conf->shutdown_timeout_ms;
			pause_list(p, 1);
			ks_kinesis_flush(p->kin);
		}
		if (!p->fatal && ks_consumer_auth_failed(p->rk, &err))
			set_fatal(p, "%s", err.text);
		if (p->fatal) {
			drain_after_fatal(p);
			return 1;
		}
		if (p->stopping) {
			if (held_records(p) == 0 && ks_dlq_pending(p->dlq) == 0)
				return 0;
			if (now >= p->stop_deadline) {
				ks_err_log("pipeline", "shutdown.timeout.ms passed with %zu records unacknowledged: "
						       "their offsets are not committed and will be read again",
					   ks_kinesis_inflight_records(p->kin));
				return 1;
			}
		}

		drain_wake(p);
		hold = 0;
		fetch_watch(p);
		while (budget > 0 && !p->fatal) {
			size_t recs = held_records(p), bytes = held_bytes(p);
			size_t room = (size_t)p->conf->max_inflight_records > recs ?
					      (size_t)p->conf->max_inflight_records - recs : 1;
			size_t room_bytes = (size_t)p->conf->max_inflight_bytes > bytes ?
						    (size_t)p->conf->max_inflight_bytes - bytes : 1;
			size_t taken = 0;
			int empty = 0, n;

			if (!p->stopping && (hold = backpressure(p, now))) {
				advance(p); /* takes nothing, but what is on the lanes goes on to the writer */
				break;
			}
			/* Up to the in-flight bounds, as if each message were checked on its own. */
			while (p->nbatch < BATCH_MAX && p->nbatch < budget && (size_t)p->nbatch < room &&
			       taken < room_bytes) {
				if (!(msg = rd_kafka_consumer_poll(p->rk, 0))) {
					empty = 1;
					break;
				}
				p->last_msg_ms = now;
				p->msgs_seen++;
				p->bytes_seen += msg->len + msg->key_len;
				taken += msg->len + msg->key_len;
				p->batch[p->nbatch++].msg = msg;
			}
			n = p->nbatch;
			advance(p);
			budget -= n ? n : 1;
			if (empty) {
				soon = nudge_fetcher(p, now);
				break;
			}
		}
		more = budget == 0 || p->npend > 0; /* a batch on the lanes: back soon to handle it */
		ks_dlq_poll(p->dlq);
		if (p->fatal) {
			drain_after_fatal(p);
			return 1;
		}

		/* Holding back: wait for the writer only, not for more Kafka messages. */
		if (ks_kinesis_poll(p->kin, more ? 0 : soon ? NUDGE_IDLE_MS : 100, more || hold ? -1 : p->wake[0], &err)) {
			set_fatal(p, "%s", err.text);
			return 1;
		}
		now = ks_now_ms();
		if (now - p->last_commit_ms >= p->conf->offsets_commit_interval_ms) {
			commit(p, 0, 0);
			sweep_retired(p);
		}
		if (p->conf->stats_interval_ms > 0 && now - p->last_stats_ms >= p->conf->stats_interval_ms)
			progress_line(p, now);
		if (p->conf->exit_at_eof && !p->stopping && all_at_eof(p) && held_records(p) == 0 &&
		    ks_dlq_pending(p->dlq) == 0) {
			ks_info("pipeline", "every assigned partition is at its end and acknowledged: exiting");
			return 0;
		}
	}
}

/* A numeric property of the running consumer, or @p def when this librdkafka does not have it. */
static int64_t kafka_conf_int(rd_kafka_t *rk, const char *key, int64_t def)
{
	char v[32];
	size_t n = sizeof(v);

	return rd_kafka_conf_get(rd_kafka_conf(rk), key, v, &n) == RD_KAFKA_CONF_OK ? strtoll(v, NULL, 10) : def;
}

static int setup(pipeline *p, ks_errbuf *err)
{
	ks_kinesis_cbs cbs = { on_acked, on_failed, p };
	int rc;

	if (pipe(p->wake)) {
		ks_errbuf_set(err, KS_ERR_IO, "cannot create a pipe: %s", strerror(errno));
		return 1;
	}
	fcntl(p->wake[0], F_SETFL, O_NONBLOCK);
	fcntl(p->wake[1], F_SETFL, O_NONBLOCK);
	if (p->conf->metrics_listen && strcmp(p->conf->metrics_listen, "off") != 0 &&
	    !(p->msrv = ks_metrics_server_new(p->conf->metrics_listen, &p->m, partition_stats, p,
					      p->conf->delivery_timeout_ms, err)))
		return 1;
	if (!(p->creds = ks_creds_new(p->conf, &p->m, err)) ||
	    !(p->kin = ks_kinesis_new(p->conf, p->creds, &p->m, &cbs, err)) ||
	    !(p->prep = ks_preparer_new(p->conf, &p->m, err)))
		return 1;
	if (!(p->batch = calloc(BATCH_MAX, sizeof(*p->batch))) || !(p->pend = calloc(BATCH_MAX, sizeof(*p->pend)))) {
		ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
		return 1;
	}
	if ((rc = ks_kinesis_check_stream(p->kin, err)))
		return 1;
	ks_info("pipeline", "stream '%s' in %s is ready", p->conf->stream, p->conf->aws_region);
	if (p->conf->errors_policy == KS_POLICY_DLQ && !(p->dlq = ks_dlq_new(p->conf, on_dlq_done, p, err)))
		return 1;
	if (!(p->rk = ks_consumer_new(p->conf, on_rebalance, on_committed, p, p->wake[1], err)))
		return 1;
	/* No fetch.queue.backoff.ms in this librdkafka (before 2.1): restart stalled fetches. */
	if ((p->nudge = kafka_conf_int(p->rk, "fetch.queue.backoff.ms", -1) < 0)) {
		p->cq = rd_kafka_queue_get_consumer(p->rk);
		p->q_max_bytes = kafka_conf_int(p->rk, "queued.max.messages.kbytes", 65536) * 1024;
		p->q_min_msgs = kafka_conf_int(p->rk, "queued.min.messages", 100000);
	}
	{
		const char *group = "kinesink";

		for (rc = 0; rc < p->conf->n_kafka; rc++)
			if (strcmp(p->conf->kafka[rc].key, "group.id") == 0)
				group = p->conf->kafka[rc].value;
		ks_info("pipeline", "consuming %s in group %s", p->conf->topic, group);
	}
	return 0;
}

int ks_pipeline_run(const ks_conf *conf, volatile sig_atomic_t *stop)
{
	pipeline p;
	ks_errbuf err;
	int rc, i;

	memset(&p, 0, sizeof(p));
	p.conf = conf;
	p.stop = stop;
	p.wake[0] = p.wake[1] = -1;
	pthread_mutex_init(&p.parts_lock, NULL);
	ks_errbuf_clear(&err);

	if (setup(&p, &err)) {
		ks_err_log("pipeline", "%s", err.text[0] ? err.text : "start-up failed");
		rc = 1;
	} else {
		rc = run_loop(&p);
		if (rc)
			p.fatal = 1;
	}
	if (p.prep)
		drop_pending(&p);

	if (p.rk) {
		/* What Kinesis acknowledged is committed whatever the reason for stopping. */
		commit(&p, 1, 0);
		p.stopping = 1;
		rd_kafka_consumer_close(p.rk);
		if (p.cq)
			rd_kafka_queue_destroy(p.cq);
		ks_consumer_destroy(p.rk);
	}
	ks_dlq_destroy(p.dlq, 5000);
	ks_kinesis_destroy(p.kin);
	for (i = 0; i < p.nparts; i++)
		ks_ptrack_destroy(p.parts[i]);
	for (i = 0; i < p.nretired; i++)
		ks_ptrack_destroy(p.retired[i]);
	free(p.parts);
	free(p.retired);
	ks_preparer_destroy(p.prep);
	free(p.batch);
	free(p.pend);
	ks_creds_destroy(p.creds);
	ks_metrics_server_destroy(p.msrv);
	if (p.wake[0] >= 0) {
		close(p.wake[0]);
		close(p.wake[1]);
	}
	pthread_mutex_destroy(&p.parts_lock);
	if (rc == 0)
		ks_info("pipeline", "done");
	return rc;
}
