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
#include <sys/ioctl.h>
#include <unistd.h>

#include "consumer.h"
#include "creds.h"
#include "kinesis.h"
#include "log.h"
#include "metrics.h"
#include "offsets.h"
#include "policy.h"
#include "prepare.h"
#include "stream.h"
#include "progress.h"
#include "router.h"

#define CONSUME_BUDGET 1000  /* messages taken per loop turn before the writer runs */

typedef struct pipeline {
	const ks_conf *conf;
	volatile sig_atomic_t *stop;
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
	int64_t last_stats_ms;
	uint64_t last_stats_consumed;
	int backfill;                 /* --exit-at-eof: the progress of the work known at assignment */
	int tty;                      /* ... drawn live on stderr, a terminal */
	ks_progress prog;
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
	char tag[128];

	/* Never acknowledged: its offset is never committed, the worker stops. */
	ks_ptrack_drop(rec->origin, rec->offset);
	set_fatal(p, "%s%s [%d] @%lld: %s",
		  ks_router_tag(p->router, ks_router_route(p->router, ks_ptrack_topic(rec->origin)), tag, sizeof(tag)),
		  ks_ptrack_topic(rec->origin), (int)ks_ptrack_partition(rec->origin), (long long)rec->offset, err->text);
}

/* Every writer, driven as one; the in-flight gauges are then the sums over them. */
static int writers_poll(pipeline *p, int timeout_ms, int wake_fd, ks_errbuf *err)
{
	int rc = ks_router_poll(p->router, timeout_ms, wake_fd, err);

	KS_METRIC_SET(&p->m, inflight_records, (int64_t)ks_router_records(p->router));
	KS_METRIC_SET(&p->m, inflight_bytes, (int64_t)ks_router_bytes(p->router));
	return rc;
}

static void on_consumer_fatal(void *opaque, const char *msg)
{
	stop_on(opaque, 0, msg);
}

/* A record of a revoked partition that the writer will not send: never committed. */
static void on_dropped(void *opaque, ks_record *rec)
{
	(void)opaque;
	ks_ptrack_drop(rec->origin, rec->offset);
}

/* The trackers of revoked partitions, for ks_router_revoke. */
typedef struct revoked_set {
	ks_ptrack_t **parts;
	int n;
} revoked_set;

static int is_revoked(void *ud, const ks_record *rec)
{
	const revoked_set *rs = ud;
	int i;

	for (i = 0; i < rs->n; i++)
		if (rec->origin == rs->parts[i])
			return 1;
	return 0;
}

/* What the writers did not send by the drain's end they never send (the partitions' new owner
 * reads it again, from the committed offset); what they have in flight could still land after
 * the new owner's records, so it is awaited, as long as a request may take. */
static void revoke_writers(pipeline *p, const rd_kafka_topic_partition_list_t *parts)
{
	revoked_set rs = { calloc((size_t)parts->cnt + 1, sizeof(*rs.parts)), 0 };
	int64_t until = ks_now_ms() + p->conf->request_timeout_ms;
	ks_errbuf err;
	int i;

	for (i = 0; rs.parts && i < parts->cnt; i++)
		if ((rs.parts[rs.n] = ks_offsets_find(p->offs, parts->elems[i].topic, parts->elems[i].partition)))
			rs.n++;
	if (!rs.parts)
		set_fatal(p, "out of memory revoking %d partitions", parts->cnt);
	else if (rs.n && ks_router_revoke(p->router, is_revoked, &rs))
		while (!p->fatal && ks_router_revoked_inflight(p->router) && ks_now_ms() < until)
			if (writers_poll(p, 50, -1, &err))
				set_fatal(p, "%s", err.text);
	free(rs.parts);
}

/* Revoked partitions: let their records in flight finish, up to @p deadline. */
static void on_drain(void *opaque, const rd_kafka_topic_partition_list_t *parts, int64_t deadline)
{
	pipeline *p = opaque;
	ks_errbuf err;

	ks_router_flush(p->router);
	while (!p->fatal && ks_offsets_pending(p->offs, parts) && ks_now_ms() < deadline) {
		if (writers_poll(p, 50, -1, &err)) {
			set_fatal(p, "%s", err.text);
			break;
		}
		ks_policy_poll(p->pol);
	}
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
	ks_ptrack_set_eof(part, 0);
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

/* Columns of the terminal on stderr, 0 when unknown. */
static int term_width(void)
{
	struct winsize ws;

	return ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 ? ws.ws_col : 0;
}

/*
 * A backfill's figures, sampled at most every KS_PROGRESS_SAMPLE_MS (now with @p force) and,
 * on a terminal, drawn as the status line under the log (shorter than the terminal is wide,
 * or a wrapped line could not be redrawn in place). @p text (may be NULL) gets the figures.
 */
static void backfill_tick(pipeline *p, int64_t now, int force, char *text, size_t size)
{
	char line[256];
	ks_backfill b;
	int cols;

	if (!p->backfill)
		return;
	if (force || ks_progress_due(&p->prog, now)) {
		ks_offsets_backfill(p->offs, &b);
		ks_progress_update(&p->prog, &b, now);
		if (p->tty) {
			cols = term_width();
			memcpy(line, "backfill: ", 11);
			ks_progress_format(&p->prog, line + 10, sizeof(line) - 10);
			if (cols > 1 && (size_t)cols <= sizeof(line))
				line[cols - 1] = '\0';
			ks_log_status(line);
		}
	}
	if (text)
		ks_progress_format(&p->prog, text, size);
}

static void progress_line(pipeline *p, int64_t now)
{
	uint64_t consumed = __atomic_load_n(&p->m.records_consumed, __ATOMIC_RELAXED), bad = 0;
	double secs = (double)(now - p->last_stats_ms) / 1000.0;
	char figures[256] = "";
	int i;

	for (i = 0; i < KS_BAD_NON_ROW; i++)
		bad += __atomic_load_n(&p->m.records_bad[i], __ATOMIC_RELAXED);
	backfill_tick(p, now, 1, figures, sizeof(figures));
	ks_info("pipeline", "progress: consumed %" PRIu64 " (%.0f/s), put %" PRIu64 ", retried %" PRIu64
			    ", bad %" PRIu64 ", in flight %zu records / %zu bytes, %d partitions%s%s%s",
		consumed, secs > 0 ? (double)(consumed - p->last_stats_consumed) / secs : 0.0,
		__atomic_load_n(&p->m.records_put_ok, __ATOMIC_RELAXED),
		__atomic_load_n(&p->m.records_retried, __ATOMIC_RELAXED), bad,
		ks_router_records(p->router), ks_router_bytes(p->router), ks_offsets_count(p->offs),
		ks_consumer_bp_paused(p->cons) ? ", paused (backpressure)" : "", figures[0] ? "; backfill: " : "",
		figures);
	p->last_stats_ms = now;
	p->last_stats_consumed = consumed;
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
	ks_consumer_stop(p->cons);
	ks_router_flush(p->router);
	while ((ks_router_records(p->router) > 0 || ks_policy_pending(p->pol) > 0) && ks_now_ms() < deadline) {
		if (writers_poll(p, 50, -1, &err))
			break;
		ks_policy_poll(p->pol);
	}
}

/* Onto the batch for the lanes, with the decoder and transform of the route that takes its
 * topic. @returns 1 (the message dropped, the worker stopping) when no route takes it. */
static int take_routed(pipeline *p, rd_kafka_message_t *msg)
{
	int route = msg->err ? 0 : ks_router_route(p->router, rd_kafka_topic_name(msg->rkt));

	if (route < 0) {
		char text[1024];

		/* Never tracked, never committed: read again once a route takes it. What the writers
		 * hold for the other topics is finished first. */
		snprintf(text, sizeof(text), "%s [%d] @%lld: topic '%s' matches no route: add a route for it, or narrow topic (the subscription)",
			 rd_kafka_topic_name(msg->rkt), (int)msg->partition, (long long)msg->offset,
			 rd_kafka_topic_name(msg->rkt));
		stop_on(p, 1, text);
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

	p->last_commit_ms = p->last_stats_ms = ks_now_ms();
	for (;;) {
		int more, hold = 0, soon = 0;

		now = ks_now_ms();
		KS_METRIC_SET(&p->m, last_loop_ms, now);
		if (*p->stop && !p->stopping) {
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
		if (p->conf->stats_interval_ms > 0 && now - p->last_stats_ms >= p->conf->stats_interval_ms)
			progress_line(p, now);
		else
			backfill_tick(p, now, 0, NULL, 0);
		if (p->conf->exit_at_eof && !p->stopping && ks_offsets_all_at_eof(p->offs) && held(p, NULL) == 0 &&
		    ks_policy_pending(p->pol) == 0) {
			char figures[256];

			backfill_tick(p, now, 1, figures, sizeof(figures));
			ks_info("pipeline", "every assigned partition is at its end and acknowledged: exiting; backfill: %s",
				figures);
			return 0;
		}
	}
}

/* ---- start and end ------------------------------------------------------------------------------ */

/*
 * A writer's start-up, for stream d->conf->stream: the writer, the stream's record size limit
 * (DescribeStreamSummary) and its shard map (ListShards). Called for each route's stream at
 * start, and for a template route's stream on its topic's first record. @returns 0, or 1 with @p err.
 */
static int start_writer(void *opaque, ks_dest *d, ks_errbuf *err)
{
	pipeline *p = opaque;
	ks_kinesis_cbs kcbs = { on_acked, on_failed, p, on_dropped };
	const ks_conf *c = d->conf;
	ks_stream_info info;
	ks_shardmap_t *shards;
	ks_errbuf lerr;

	if (!(d->kin = ks_kinesis_new(c, p->creds, &p->m, &kcbs, err)) ||
	    ks_stream_describe_info(c, p->creds, &p->m, &info, err))
		return 1;
	ks_kinesis_set_max_record_bytes(d->kin, info.max_record_bytes);
	if (ks_kinesis_set_distribution(d->kin, info.distribution, err))
		return 1;
	/* A worker allowed PutRecords but not ListShards still writes, without knowing shards. */
	ks_errbuf_clear(&lerr);
	if (ks_stream_list_shards(c, p->creds, &shards, &lerr) == KS_ERR_NOMEM) {
		*err = lerr;
		return 1;
	} else if (shards) {
		ks_info("pipeline", "stream '%s' has %d open shards", c->stream, ks_shardmap_count(shards));
		if (ks_kinesis_set_shardmap(d->kin, shards)) {
			ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
			return 1;
		}
	} else {
		ks_warn("pipeline", "%s: writing on without the shard map", lerr.text);
	}
	ks_info("pipeline", "stream '%s' in %s is ready (records up to %zu KiB)", c->stream, c->aws_region,
		info.max_record_bytes >> 10);
	return 0;
}

static int setup(pipeline *p, ks_errbuf *err)
{
	ks_policy_cbs pcbs = { stop_on, p };
	ks_consumer_cbs ccbs = { flush_batch, on_drain, on_consumer_fatal, p };

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
	    !(p->router = ks_router_new(p->conf, start_writer, p, err)) ||
	    !(p->prep = ks_preparer_new_routes(p->conf, ks_router_confs(p->router), ks_router_nroutes(p->router), &p->m,
					       err)))
		return 1;
	if (!(p->pol = ks_policy_new(p->conf, &p->m, &pcbs, p->stop, err)) ||
	    !(p->cons = ks_consumer_start(p->conf, p->offs, &p->m, &ccbs, p->wake[1], err)))
		return 1;
	return 0;
}

int ks_pipeline_run(const ks_conf *conf, volatile sig_atomic_t *stop)
{
	pipeline p;
	ks_errbuf err;
	int rc;

	memset(&p, 0, sizeof(p));
	p.conf = conf;
	p.stop = stop;
	p.wake[0] = p.wake[1] = -1;
	p.backfill = conf->exit_at_eof;
	/* A terminal that can erase a line (not TERM=dumb: an editor's shell buffer, for one). */
	p.tty = p.backfill && isatty(STDERR_FILENO) && !(getenv("TERM") && strcmp(getenv("TERM"), "dumb") == 0);
	ks_progress_init(&p.prog);
	ks_errbuf_clear(&err);

	if (setup(&p, &err)) {
		ks_err_log("pipeline", "%s", err.text[0] ? err.text : "start-up failed");
		rc = 1;
	} else {
		rc = run_loop(&p);
		if (rc)
			p.fatal = 1;
	}
	if (p.tty)
		ks_log_status(NULL); /* the live line goes: what follows is the log alone */
	if (p.prep)
		ks_preparer_drop(p.prep); /* after a fatal error: never handled, never committed */
	p.stopping = 1;
	/* What Kinesis acknowledged is committed whatever the reason for stopping. */
	ks_consumer_close(p.cons);
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
