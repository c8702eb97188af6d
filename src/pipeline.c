/*
 * The pipeline: one thread moves each Kafka message through decode and transform into the
 * Kinesis writer, and commits an offset only when every record up to it was acknowledged
 * (or skipped / dead-lettered on purpose). Kafka events and HTTP answers wake the same poll.
 *
 * This file is the loop and what ties the stages together; each stage keeps its own state:
 * consumer.c (rebalances, pausing, fetch restarts), prepare.c (the decode lanes), policy.c
 * (bad records), kinesis.c (the writer) and offsets.c (trackers and commits).
 */
#include "pipeline.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "consumer.h"
#include "creds.h"
#include "kinesis.h"
#include "log.h"
#include "metrics.h"
#include "offsets.h"
#include "policy.h"
#include "prepare.h"
#include "status.h"
#include "router.h"

#define CONSUME_BUDGET 1000  /* messages taken per loop turn before the writer runs */

typedef struct pipeline {
	const ks_conf *conf;
	ks_stop *stop;
	ks_metrics m;
	ks_metrics_server_t *msrv;
	ks_creds_t *creds;
	ks_router_t *router;          /* the routes and their Kinesis writers, one per stream */
	ks_preparer_t *prep;          /* the decode lanes, with the batch on them and the one being taken */
	ks_offsets_t *offs;
	ks_consumer_t *cons;
	ks_policy_t *pol;
	int wake[2];

	int fatal;
	int fatal_drain;              /* the writer still works: finish its records before exiting */
	int stopping;
	int64_t stop_deadline;
	int64_t last_commit_ms;
	ks_status status;             /* the progress line, and a backfill's live line */
} pipeline;

static void set_fatal(pipeline *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

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

/* The worker must stop. @p drain: because of the input (bad record, registry), so the records
 * already handed to Kinesis are finished and committed first, and a restart re-reads little. */
static void stop_on(void *opaque, int drain, const char *msg)
{
	pipeline *p = opaque;

	if (drain)
		p->fatal_drain = !p->fatal;
	set_fatal(p, "%s", msg);
}

/* ---- what the stages call back ------------------------------------------------------------------ */

/* Every writer, driven as one; the in-flight gauges are then the sums over them. */
static int writers_poll(pipeline *p, int timeout_ms, int wake_fd, ks_errbuf *err)
{
	int rc = ks_router_poll(p->router, timeout_ms, wake_fd, err);

	KS_METRIC_SET(&p->m, inflight_records, (int64_t)ks_router_records(p->router));
	KS_METRIC_SET(&p->m, inflight_bytes, (int64_t)ks_router_bytes(p->router));
	return rc;
}

/* A consumer's fatal error, or a record a writer cannot deliver. */
static void on_fatal(void *opaque, const char *msg)
{
	stop_on(opaque, 0, msg);
}

/* What the writers did not send by the drain's end they never send (the partitions' new owner
 * reads it again, from the committed offset); what they have in flight could still land after
 * the new owner's records, so it is awaited, as long as a request may take. */
static void revoke_writers(pipeline *p, const rd_kafka_topic_partition_list_t *parts)
{
	void **origins = calloc((size_t)parts->cnt + 1, sizeof(*origins));
	ks_errbuf err;
	int i, n = 0;

	for (i = 0; origins && i < parts->cnt; i++)
		if ((origins[n] = ks_offsets_find(p->offs, parts->elems[i].topic, parts->elems[i].partition)))
			n++;
	if (!origins)
		set_fatal(p, "out of memory revoking %d partitions", parts->cnt);
	else if (n && ks_router_revoke(p->router, origins, n, ks_now_ms() + p->conf->request_timeout_ms, &err))
		set_fatal(p, "%s", err.text);
	free(origins);
}

/* Drive the writers and dead letters (flushed) until @p parts (NULL: any) hold nothing or @p deadline. */
static void drive(pipeline *p, const rd_kafka_topic_partition_list_t *parts, int64_t deadline)
{
	ks_errbuf err;

	ks_router_flush(p->router);
	while ((parts ? ks_offsets_pending(p->offs, parts) : ks_router_records(p->router) > 0 ||
						   ks_policy_pending(p->pol) > 0) && ks_now_ms() < deadline) {
		if (writers_poll(p, 50, -1, &err)) {
			set_fatal(p, "%s", err.text);
			break;
		}
		ks_policy_poll(p->pol);
	}
}

/* Revoked partitions: let their records in flight finish, up to @p deadline. */
static void on_drain(void *opaque, const rd_kafka_topic_partition_list_t *parts, int64_t deadline)
{
	pipeline *p = opaque;

	if (!p->fatal)
		drive(p, parts, deadline);
	if (ks_offsets_pending(p->offs, parts))
		revoke_writers(p, parts);
}

/* ---- messages ------------------------------------------------------------------------------------ */

/* The records of one message go to the writer; one Kinesis refuses is a bad record. */
static void submit(pipeline *p, ks_dest *d, ks_ptrack_t *part, const rd_kafka_message_t *msg, ks_record **recs,
		   int n)
{
	ks_errbuf err;
	char tag[128];
	int i, rc;

	for (i = 0; i < n; i++) {
		recs[i]->origin = part;
		recs[i]->offset = msg->offset;
		recs[i]->kafka_ts_ms = rd_kafka_message_timestamp(msg, NULL);
		ks_errbuf_clear(&err);
		if ((rc = ks_kinesis_submit(d->kin, recs[i], &err)) == 0)
			continue;
		if (rc == KS_ERR_BADREC) {
			ks_errbuf_prefix(&err, "%s%s [%d] @%lld", ks_router_tag(p->router, d->route, tag, sizeof(tag)),
					 rd_kafka_topic_name(msg->rkt), (int)msg->partition, (long long)msg->offset);
			ks_policy_bad_record(p->pol, part, msg, &err);
		} else {
			ks_ptrack_drop(part, msg->offset);
			set_fatal(p, "%s", err.text);
		}
		ks_record_destroy(recs[i]);
	}
}

/* What follows decode and transform, in message order on the pipeline thread: offsets
 * tracking, bad records by policy, and the hand-over to the writer. */
static void handle_prepared(void *opaque, ks_prepared *it)
{
	pipeline *p = opaque;
	rd_kafka_message_t *msg = it->msg;
	ks_dest *d = NULL;
	ks_ptrack_t *part;
	ks_errbuf err;
	int rc, i;

	if (msg->err) {
		ks_consumer_event(p->cons, msg);
		return;
	}
	part = ks_offsets_find(p->offs, rd_kafka_topic_name(msg->rkt), msg->partition);
	if (!part || p->stopping || p->fatal)
		goto drop; /* not tracked: never committed, read again by whoever owns it next */
	ks_ptrack_taken(part, rd_kafka_message_timestamp(msg, NULL));
	KS_METRIC_ADD(&p->m, records_consumed, 1);

	switch (it->outcome) {
	case KS_PREP_EVENT:
		return;
	case KS_PREP_FATAL:
		stop_on(p, it->err.stage == KS_STAGE_DECODE, it->err.text);
		return;
	case KS_PREP_BAD:
		if (it->err.stage == KS_STAGE_TRANSFORM)
			KS_METRIC_ADD(&p->m, records_decoded, 1);
		if (p->conf->n_route)
			ks_errbuf_prefix(&it->err, "route '%s'", p->conf->route[it->route].name);
		if (ks_ptrack_add(part, msg->offset, 1) == 0)
			ks_policy_bad_record(p->pol, part, msg, &it->err);
		return;
	case KS_PREP_NON_ROW:
		ks_policy_non_row(p->pol, msg, it->op);
		ks_ptrack_add(part, msg->offset, 0);
		return;
	case KS_PREP_SKIP_TOMBSTONE:
		ks_ptrack_add(part, msg->offset, 0);
		return;
	case KS_PREP_RECORDS:
		break;
	}
	KS_METRIC_ADD(&p->m, records_decoded, 1);
	ks_errbuf_clear(&err);
	if (it->n && !(d = ks_router_dest(p->router, rd_kafka_topic_name(msg->rkt), &err))) {
		/* Not tracked: never committed; what the writers hold is finished first. */
		stop_on(p, 1, err.text);
		goto drop;
	}
	if ((rc = ks_ptrack_add(part, msg->offset, it->n))) {
		set_fatal(p, "cannot track %s [%d] @%lld: %s", rd_kafka_topic_name(msg->rkt), (int)msg->partition,
			  (long long)msg->offset, ks_err_str(rc));
		goto drop;
	}
	if (it->n)
		submit(p, d, part, msg, it->recs, it->n);
	return;
drop:
	for (i = 0; i < it->n; i++)
		ks_record_destroy(it->recs[i]);
}

/* Before a rebalance: everything taken so far is handled, as if one message at a time. */
static void flush_batch(void *opaque)
{
	pipeline *p = opaque;

	ks_preparer_flush(p->prep, handle_prepared, p);
}

/* The batch just taken goes to the lanes, and the one before it is handled while they work on
 * it: decoding overlaps with everything else the pipeline thread does. */
static void advance(pipeline *p)
{
	ks_preparer_advance(p->prep, handle_prepared, p);
}

/* ---- the loop --------------------------------------------------------------------------------------- */

/* Held between Kafka and a Kinesis acknowledgement: in the writer, or on the lanes (as taken). */
static size_t held(pipeline *p, size_t *bytes)
{
	size_t n = (size_t)ks_preparer_held(p->prep, bytes);

	if (bytes)
		*bytes += ks_router_bytes(p->router);
	return n + ks_router_records(p->router);
}

static void drain_wake(pipeline *p)
{
	char buf[256];

	while (read(p->wake[0], buf, sizeof(buf)) > 0)
		;
}

static void drain_after_fatal(pipeline *p)
{
	if (!p->fatal_drain)
		return;
	ks_consumer_stop(p->cons);
	drive(p, NULL, ks_now_ms() + p->conf->shutdown_timeout_ms);
}

/* Onto the batch for the lanes, with the decoder and transform of the route that takes its
 * topic. @returns 1 (the message dropped, the worker stopping) when no route takes it. */
static int take_routed(pipeline *p, rd_kafka_message_t *msg)
{
	ks_errbuf err;
	int route = msg->err ? 0 : ks_router_route_msg(p->router, rd_kafka_topic_name(msg->rkt), msg->partition,
							 msg->offset, &err);

	if (route < 0) {
		/* Never tracked, never committed: read again once a route takes it. What the writers
		 * hold for the other topics is finished first. */
		stop_on(p, 1, err.text);
		rd_kafka_message_destroy(msg);
		return 1;
	}
	ks_preparer_take_route(p->prep, msg, route);
	return 0;
}

/*
 * Take messages up to the in-flight bounds and CONSUME_BUDGET, in batches for the lanes. Sets
 * *hold under backpressure and *soon to the ms after which an idle fetch is looked at again.
 * @returns 1 when the whole budget was taken (more may be waiting).
 */
static int take_messages(pipeline *p, int64_t now, int *hold, int *soon)
{
	int budget = CONSUME_BUDGET;

	ks_consumer_fetch_watch(p->cons);
	while (budget > 0 && !p->fatal) {
		size_t bytes, recs = held(p, &bytes), taken = 0;
		size_t max_recs = (size_t)p->conf->max_inflight_records, max_bytes = (size_t)p->conf->max_inflight_bytes;
		size_t room = max_recs > recs ? max_recs - recs : 1, room_bytes = max_bytes > bytes ? max_bytes - bytes : 1;
		rd_kafka_message_t *msg;
		int empty = 0, n;

		if (!p->stopping && (*hold = ks_consumer_backpressure(p->cons, recs, bytes, now))) {
			advance(p); /* takes nothing, but what is on the lanes goes on to the writer */
			break;
		}
		/* Up to the in-flight bounds, as if each message were checked on its own. */
		while ((n = ks_preparer_taking(p->prep)) < KS_PREP_BATCH_MAX && n < budget && (size_t)n < room &&
		       taken < room_bytes) {
			if (!(msg = ks_consumer_poll(p->cons, now))) {
				empty = 1;
				break;
			}
			taken += msg->len + msg->key_len;
			if (take_routed(p, msg))
				break;
		}
		n = ks_preparer_taking(p->prep);
		advance(p);
		budget -= n ? n : 1;
		if (empty) {
			*soon = ks_consumer_nudge(p->cons, now);
			break;
		}
	}
	return budget == 0;
}

static int run_loop(pipeline *p)
{
	ks_errbuf err;
	int64_t now;

	p->last_commit_ms = ks_now_ms();
	ks_status_init(&p->status, &p->m, p->offs, p->router, p->cons, p->conf->exit_at_eof, p->last_commit_ms);
	for (;;) {
		int more, hold = 0, soon = 0;

		now = ks_now_ms();
		KS_METRIC_SET(&p->m, last_loop_ms, now);
		if (ks_stop_requested(p->stop) && !p->stopping) {
			ks_info("pipeline", "stopping: finishing %zu records in flight (up to %d ms)",
				ks_router_records(p->router), p->conf->shutdown_timeout_ms);
			p->stopping = 1;
			p->stop_deadline = now + p->conf->shutdown_timeout_ms;
			ks_consumer_stop(p->cons);
			ks_router_flush(p->router);
		}
		if (ks_consumer_fatal(p->cons, &err))
			set_fatal(p, "%s", err.text);
		if (p->fatal) {
			drain_after_fatal(p);
			return 1;
		}
		if (p->stopping) {
			if (held(p, NULL) == 0 && ks_policy_pending(p->pol) == 0)
				return 0;
			if (now >= p->stop_deadline) {
				ks_err_log("pipeline", "shutdown.timeout.ms passed with %zu records unacknowledged: "
						       "their offsets are not committed and will be read again",
					   ks_router_records(p->router));
				return 1;
			}
		}

		drain_wake(p);
		more = take_messages(p, now, &hold, &soon);
		more |= ks_preparer_held(p->prep, NULL) > 0; /* a batch on the lanes: back soon */
		ks_policy_poll(p->pol);
		if (p->fatal) {
			drain_after_fatal(p);
			return 1;
		}

		/* Holding back: wait for the writer only, not for more Kafka messages. */
		if (writers_poll(p, more ? 0 : soon ? soon : 100, more || hold ? -1 : p->wake[0], &err)) {
			set_fatal(p, "%s", err.text);
			return 1;
		}
		now = ks_now_ms();
		if (now - p->last_commit_ms >= p->conf->offsets_commit_interval_ms &&
		    ks_offsets_commit(p->offs, 0, 0) == 0) {
			p->last_commit_ms = now;
			ks_offsets_sweep(p->offs);
		}
		ks_status_tick(&p->status, now, p->conf->stats_interval_ms);
		if (p->conf->exit_at_eof && !p->stopping && !ks_consumer_leaving(p->cons) && ks_offsets_all_at_eof(p->offs) &&
		    held(p, NULL) == 0 && ks_policy_pending(p->pol) == 0) {
			char figures[256];

			/* Done once Kafka has the offsets: a commit the group refused while it rebalanced
			 * (a stale generation) is sent again, not left to the next owner to re-read. */
			if (!ks_offsets_all_committed(p->offs)) {
				ks_offsets_commit(p->offs, 0, 0);
				continue;
			}
			ks_status_backfill(&p->status, now, figures, sizeof(figures));
			ks_info("pipeline", "every assigned partition is at its end, acknowledged and committed: leaving "
					    "the group; backfill: %s", figures);
			ks_consumer_leave(p->cons, now);
		}
		if (p->conf->exit_at_eof && !p->stopping && ks_consumer_left(p->cons, now)) {
			ks_info("pipeline", "left the group: exiting");
			return 0;
		}
	}
}

/* ---- start and end ------------------------------------------------------------------------------ */

static int setup(pipeline *p, ks_errbuf *err)
{
	ks_policy_cbs pcbs = { stop_on, p };
	ks_consumer_cbs ccbs = { flush_batch, on_drain, on_fatal, p };

	if (pipe(p->wake)) {
		ks_errbuf_set(err, KS_ERR_IO, "cannot create a pipe: %s", strerror(errno));
		return 1;
	}
	fcntl(p->wake[0], F_SETFL, O_NONBLOCK);
	fcntl(p->wake[1], F_SETFL, O_NONBLOCK);
	if (!(p->offs = ks_offsets_new(&p->m))) {
		ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
		return 1;
	}
	if (p->conf->metrics_listen && strcmp(p->conf->metrics_listen, "off") != 0 &&
	    !(p->msrv = ks_metrics_server_new(p->conf->metrics_listen, &p->m, ks_offsets_partition_stats, p->offs,
					      p->conf->delivery_timeout_ms, err)))
		return 1;
	if (!(p->creds = ks_creds_new(p->conf, &p->m, err)) ||
	    !(p->router = ks_router_new(p->conf, p->creds, &p->m, on_fatal, p, err)) ||
	    !(p->prep = ks_preparer_new_routes(p->conf, ks_router_confs(p->router), ks_router_nroutes(p->router), &p->m,
					       err)))
		return 1;
	if (!(p->pol = ks_policy_new(p->conf, &p->m, &pcbs, p->stop, err)) ||
	    !(p->cons = ks_consumer_start(p->conf, p->offs, &p->m, &ccbs, p->wake[1], err)))
		return 1;
	return 0;
}

int ks_pipeline_run(const ks_conf *conf, ks_stop *stop)
{
	pipeline p;
	ks_errbuf err;
	int rc, closed;

	memset(&p, 0, sizeof(p));
	p.conf = conf;
	p.stop = stop;
	p.wake[0] = p.wake[1] = -1;
	ks_errbuf_clear(&err);

	if (setup(&p, &err)) {
		ks_err_log("pipeline", "%s", err.text[0] ? err.text : "start-up failed");
		rc = 1;
	} else {
		rc = run_loop(&p);
		if (rc)
			p.fatal = 1;
	}
	ks_status_end(&p.status); /* the live line goes: what follows is the log alone */
	if (p.prep)
		ks_preparer_drop(p.prep); /* after a fatal error: never handled, never committed */
	p.stopping = 1;
	/* What Kinesis acknowledged is committed whatever the reason for stopping. The close has
	 * its own bound; the signal thread's is the last resort, should librdkafka block inside. */
	ks_stop_bound(stop, KS_CLOSE_BOUND_MS + 5000);
	if ((closed = ks_consumer_close(p.cons)) != 0)
		return KS_PIPELINE_LEFT | (closed == KS_ERR_TIMEOUT ? 1 : rc);
	ks_policy_destroy(p.pol);
	ks_router_destroy(p.router);
	ks_metrics_server_destroy(p.msrv);
	ks_offsets_destroy(p.offs);
	ks_preparer_destroy(p.prep);
	ks_creds_destroy(p.creds);
	ks_metrics_clean(&p.m);
	if (p.wake[0] >= 0) {
		close(p.wake[0]);
		close(p.wake[1]);
	}
	if (rc == 0)
		ks_info("pipeline", "done");
	return rc;
}
