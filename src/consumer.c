/*
 * The Kafka consumer: configuration, subscription, log routing, queue wake-ups; and, for the
 * loop, the group's rebalances, pausing and the restart of stalled fetches.
 */
#include "consumer.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "msk_iam.h"

typedef struct rebalance_ctx {
	ks_rebalance_fn fn;
	ks_committed_fn committed;
	void *opaque;
	ks_msk_iam_t *iam;  /* kafka.sasl.mechanism = AWS_MSK_IAM, else NULL */
	int quiet;          /* errors are the caller's to report (ks_consumer_new_reader) */
	/* Another SASL mechanism the brokers refused: the first reason, written once on the
	 * thread of the error callback (auth_claimed), then published (auth_failed). */
	int auth_claimed, auth_failed;
	char auth_why[512];
	char mechanism[32];
} rebalance_ctx;

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
			 void *opaque)
{
	/* The consumer's opaque is the pipeline; the callback was set through ks_consumer_new. */
	rebalance_ctx *ctx = opaque;

	ctx->fn(rk, err, parts, ctx->opaque);
}

static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *offsets,
		      void *opaque)
{
	rebalance_ctx *ctx = opaque;

	(void)rk;
	if (ctx->committed)
		ctx->committed(err, offsets, ctx->opaque);
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)rk;
	ks_log(ks_log_level_from_syslog(level),
	       "kafka", "%s: %s", fac, buf);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	(void)rk;
	if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION && opaque && ((rebalance_ctx *)opaque)->iam) {
		ks_msk_iam_auth_error(((rebalance_ctx *)opaque)->iam, reason);
	} else if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION && opaque) {
		/* Credentials the brokers refuse stay refused: librdkafka would retry for ever. */
		rebalance_ctx *ctx = opaque;

		if (!__atomic_exchange_n(&ctx->auth_claimed, 1, __ATOMIC_ACQ_REL)) {
			snprintf(ctx->auth_why, sizeof(ctx->auth_why), "%s", reason ? reason : "");
			__atomic_store_n(&ctx->auth_failed, 1, __ATOMIC_RELEASE);
		}
	}
	/* librdkafka retries transient errors itself; a fatal one (RD_KAFKA_RESP_ERR__FATAL) is
	 * seen by the loop through ks_consumer_fatal, which asks rd_kafka_fatal_error why. */
	if (!opaque || !((rebalance_ctx *)opaque)->quiet)
		ks_warn("kafka", "%s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static int has_key(const ks_conf *c, const char *key)
{
	int i;

	for (i = 0; i < c->n_kafka; i++)
		if (strcmp(c->kafka[i].key, key) == 0)
			return 1;
	return 0;
}

rd_kafka_conf_t *ks_consumer_conf_new(const ks_conf *conf, ks_errbuf *err)
{
	rd_kafka_conf_t *kc = rd_kafka_conf_new();
	char errstr[512];
	int i;

	/* Defaults first, so that any kafka.* setting overrides them. */
	rd_kafka_conf_set(kc, "partition.assignment.strategy", "cooperative-sticky", NULL, 0);
	rd_kafka_conf_set(kc, "auto.offset.reset", "earliest", NULL, 0);
	/* Bounded memory: librdkafka's prefetch (64 MiB by default) is the largest buffer. A full
	 * queue costs no speed (the pipeline restarts the fetch as soon as it ran empty), so 8 MiB
	 * queued plus one 4 MiB fetch answer is enough (make bench measured it). */
	rd_kafka_conf_set(kc, "queued.max.messages.kbytes", "8192", NULL, 0);
	rd_kafka_conf_set(kc, "fetch.max.bytes", "4194304", NULL, 0);
	/* librdkafka >= 2.1: look at a full prefetch queue again soon, not after a second
	 * (older versions do not know the key: the pipeline restarts the fetch itself, see
	 * nudge_fetcher in pipeline.c). */
	rd_kafka_conf_set(kc, "fetch.queue.backoff.ms", "10", NULL, 0);
	if (conf->exit_at_eof)
		rd_kafka_conf_set(kc, "enable.partition.eof", "true", NULL, 0);
	for (i = 0; i < conf->n_kafka; i++) {
		if (rd_kafka_conf_set(kc, conf->kafka[i].key, conf->kafka[i].value, errstr, sizeof(errstr))) {
			ks_errbuf_set(err, KS_ERR_CONFIG, "kafka.%s: %s", conf->kafka[i].key, errstr);
			rd_kafka_conf_destroy(kc);
			return NULL;
		}
	}
	/* The delivery contract: offsets move only when kinesink says so. */
	rd_kafka_conf_set(kc, "enable.auto.offset.store", "false", NULL, 0);
	rd_kafka_conf_set(kc, "enable.auto.commit", "false", NULL, 0);
	return kc;
}

/*
 * A consumer client from @p kc (taken, whatever happens) with @p ctx as its opaque (taken: freed
 * with the client by ks_consumer_destroy): kinesink's log and error callbacks, MSK IAM when
 * configured, polled through the consumer queue. @returns the client or NULL with @p err set.
 */
static rd_kafka_t *client_new(const ks_conf *conf, rd_kafka_conf_t *kc, rebalance_ctx *ctx, ks_errbuf *err)
{
	char errstr[512];
	size_t n = sizeof(ctx->mechanism);
	rd_kafka_t *rk;

	if (rd_kafka_conf_get(kc, "sasl.mechanisms", ctx->mechanism, &n) != RD_KAFKA_CONF_OK)
		ctx->mechanism[0] = '\0';
	if (ks_msk_iam_setup(kc, conf, &ctx->iam, err)) {
		free(ctx);
		rd_kafka_conf_destroy(kc);
		return NULL;
	}
	rd_kafka_conf_set_log_cb(kc, on_log);
	rd_kafka_conf_set_error_cb(kc, on_error);
	rd_kafka_conf_set_opaque(kc, ctx);
	if (!(rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, errstr, sizeof(errstr)))) {
		rd_kafka_conf_destroy(kc); /* librdkafka takes it only on success */
		ks_msk_iam_destroy(ctx->iam);
		free(ctx);
		ks_errbuf_set(err, KS_ERR_CONFIG, "cannot create the Kafka consumer: %s", errstr);
		return NULL;
	}
	if (ks_msk_iam_start(ctx->iam, rk, err)) {
		ks_consumer_destroy(rk);
		return NULL;
	}
	rd_kafka_poll_set_consumer(rk);
	return rk;
}

/* Subscribe @p rk to conf->topic (names, or a ^regex, comma-separated). @returns 0, or an error with @p err. */
static int subscribe(rd_kafka_t *rk, const ks_conf *conf, ks_errbuf *err)
{
	rd_kafka_topic_partition_list_t *topics;
	char *list, *tok, *save = NULL;
	rd_kafka_resp_err_t e;

	if (!(list = strdup(conf->topic)))
		return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
	topics = rd_kafka_topic_partition_list_new(4);
	for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		tok[strcspn(tok, " ")] = '\0';
		if (*tok)
			rd_kafka_topic_partition_list_add(topics, tok, RD_KAFKA_PARTITION_UA);
	}
	free(list);
	e = rd_kafka_subscribe(rk, topics);
	rd_kafka_topic_partition_list_destroy(topics);
	if (e)
		return ks_errbuf_set(err, KS_ERR_CONFIG, "cannot subscribe to '%s': %s", conf->topic, rd_kafka_err2str(e));
	return 0;
}

rd_kafka_t *ks_consumer_new(const ks_conf *conf, ks_rebalance_fn rebalance, ks_committed_fn committed,
			    void *opaque, int wake_fd, ks_errbuf *err)
{
	rd_kafka_conf_t *kc;
	rebalance_ctx *ctx;
	rd_kafka_t *rk;

	if (!(kc = ks_consumer_conf_new(conf, err)))
		return NULL;
	if (has_key(conf, "enable.auto.offset.store") || has_key(conf, "enable.auto.commit"))
		ks_warn("consumer", "kafka.enable.auto.offset.store / kafka.enable.auto.commit are ignored: "
				    "kinesink commits only offsets Kinesis acknowledged");
	if (!(ctx = calloc(1, sizeof(*ctx)))) {
		rd_kafka_conf_destroy(kc);
		ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
		return NULL;
	}
	ctx->fn = rebalance;
	ctx->committed = committed;
	ctx->opaque = opaque;
	rd_kafka_conf_set_rebalance_cb(kc, on_rebalance);
	rd_kafka_conf_set_offset_commit_cb(kc, on_commit);
	if (!(rk = client_new(conf, kc, ctx, err)))
		return NULL;
	if (wake_fd >= 0) {
		rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);

		rd_kafka_queue_io_event_enable(q, wake_fd, "1", 1);
		rd_kafka_queue_destroy(q);
	}

	if (subscribe(rk, conf, err)) {
		ks_consumer_destroy(rk);
		return NULL;
	}
	return rk;
}

rd_kafka_t *ks_consumer_new_reader(const ks_conf *conf, int eof, int quiet, ks_errbuf *err)
{
	rd_kafka_conf_t *kc;
	rebalance_ctx *ctx;

	if (!(kc = ks_consumer_conf_new(conf, err)))
		return NULL;
	rd_kafka_conf_set(kc, "enable.partition.eof", eof ? "true" : "false", NULL, 0);
	if (quiet) /* librdkafka's own log off: the caller reports the outcome itself */
		rd_kafka_conf_set(kc, "log_level", "0", NULL, 0);
	if (!(ctx = calloc(1, sizeof(*ctx)))) {
		rd_kafka_conf_destroy(kc);
		ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
		return NULL;
	}
	ctx->quiet = quiet;
	return client_new(conf, kc, ctx, err);
}

void ks_consumer_destroy(rd_kafka_t *rk)
{
	void *ctx;

	if (!rk)
		return;
	ctx = rd_kafka_opaque(rk);
	ks_msk_iam_destroy(((rebalance_ctx *)ctx)->iam);
	rd_kafka_destroy(rk);
	free(ctx);
}

void ks_consumer_msg(const rd_kafka_message_t *m, int headers, ks_msg *out)
{
	rd_kafka_timestamp_type_t tstype;
	rd_kafka_headers_t *hdrs = NULL;

	out->topic = rd_kafka_topic_name(m->rkt);
	out->partition = m->partition;
	out->offset = m->offset;
	out->key = m->key;
	out->key_len = m->key_len;
	out->value = m->payload;
	out->value_len = m->len;
	out->timestamp = rd_kafka_message_timestamp(m, &tstype);
	out->timestamp_type = tstype == RD_KAFKA_TIMESTAMP_CREATE_TIME ? KS_TS_CREATE
			      : tstype == RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME ? KS_TS_LOG_APPEND : KS_TS_NONE;
	/* librdkafka parses a message's headers on first asking: only when they are wanted. */
	out->headers = headers && rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR ? hdrs : NULL;
}

/* ---- the consumer the loop drives ------------------------------------------------------------ */

#define BP_PAUSE_AFTER_MS 1000
#define NUDGE_IDLE_MS 5
#define MEASURE_TIMEOUT_MS 5000

struct ks_consumer {
	rd_kafka_t *rk;
	const ks_conf *conf;
	ks_offsets_t *offs;
	ks_metrics *m;
	ks_consumer_cbs cbs;
	int coop;                     /* the group's protocol is COOPERATIVE */
	int bp_paused;
	int stopping;
	int closing;                  /* in ks_consumer_close: revocations are not drained */
	int ever_assigned;            /* the group gave this member an assignment once */
	int64_t leaving_since;        /* 0, or since when a backfill done here is leaving the group */
	int work_while_leaving;       /* ... and was given partitions with records left meanwhile */
	int64_t over_since_ms;        /* 0, or since when in-flight bounds are exceeded */
	int nudge;                    /* restart stalled fetches (librdkafka < 2.1) */
	int nudge_armed;              /* the prefetch queue was seen near its limit */
	rd_kafka_queue_t *cq;         /* the consumer queue, for its length */
	int64_t q_max_bytes, q_min_msgs;
	uint64_t msgs_seen, bytes_seen;
	int64_t last_msg_ms;          /* when the consumer last gave a message */
};

/* Partitions assigned to @p rk now (0 when it cannot tell). */
static int assigned(rd_kafka_t *rk)
{
	rd_kafka_topic_partition_list_t *l = NULL;
	int n = 0;

	if (rd_kafka_assignment(rk, &l) == RD_KAFKA_RESP_ERR_NO_ERROR && l)
		n = l->cnt;
	if (l)
		rd_kafka_topic_partition_list_destroy(l);
	return n;
}

static void pause_all(ks_consumer_t *c, int pause)
{
	rd_kafka_topic_partition_list_t *l = ks_offsets_list(c->offs);

	ks_offsets_set_paused(c->offs, pause);
	if (l && l->cnt)
		(pause ? rd_kafka_pause_partitions : rd_kafka_resume_partitions)(c->rk, l);
	if (l)
		rd_kafka_topic_partition_list_destroy(l);
	KS_METRIC_SET(c->m, paused_partitions, pause ? (int64_t)ks_offsets_count(c->offs) : 0);
}

static void revoke_parts(ks_consumer_t *c, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts)
{
	/* Let the records of these partitions finish, so the new owner re-reads as little as possible
	 * (on close, the loop already waited for them as long as it may). */
	if (!rd_kafka_assignment_lost(rk)) {
		if (!c->closing)
			c->cbs.drain(c->cbs.opaque, parts, ks_now_ms() + c->conf->rebalance_drain_ms);
		ks_offsets_commit(c->offs, 1, 0);
	} else {
		/* Lost: the partitions are someone else's already; nothing more of them is sent. */
		c->cbs.drain(c->cbs.opaque, parts, ks_now_ms());
	}
	ks_offsets_revoke(c->offs, parts);
}

static void on_group_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
			       void *opaque)
{
	ks_consumer_t *c = opaque;
	int coop = c->coop;
	rd_kafka_error_t *e = NULL;

	/* Messages taken before the rebalance are handled before it, as if one at a time. */
	c->cbs.flush(c->cbs.opaque);
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		c->ever_assigned = 1;
		if (ks_offsets_assign(c->offs, parts))
			c->cbs.fatal(c->cbs.opaque, "out of memory tracking assigned partitions");
		ks_info("pipeline", "assigned %d partition%s (%d in total)", parts->cnt, parts->cnt == 1 ? "" : "s",
			ks_offsets_count(c->offs));
		if (coop)
			e = rd_kafka_incremental_assign(rk, parts);
		else
			rd_kafka_assign(rk, parts);
		if (c->bp_paused || c->stopping)
			pause_all(c, 1);
		if (c->conf->exit_at_eof) /* a backfill: its work is known now, for the progress */
			ks_offsets_measure(c->offs, parts, MEASURE_TIMEOUT_MS);
		/* Leaving, given work another member did not finish: take it up again afterwards. */
		if (c->leaving_since && !c->closing && ks_offsets_work_left(c->offs, parts))
			c->work_while_leaving = 1;
	} else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
		ks_info("pipeline", "revoking %d partition%s", parts->cnt, parts->cnt == 1 ? "" : "s");
		revoke_parts(c, rk, parts);
		if (coop)
			e = rd_kafka_incremental_unassign(rk, parts);
		else
			rd_kafka_assign(rk, NULL);
	} else {
		ks_err_log("pipeline", "rebalance failed: %s", rd_kafka_err2str(err));
		revoke_parts(c, rk, parts);
		rd_kafka_assign(rk, NULL);
	}
	if (e) {
		ks_err_log("pipeline", "rebalance: %s", rd_kafka_error_string(e));
		rd_kafka_error_destroy(e);
	}
}

static void on_group_committed(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
	ks_consumer_t *c = opaque;

	ks_offsets_on_committed(err, offsets, c->offs);
}

static const char *group_of(const ks_conf *conf)
{
	const char *group = "kinesink";
	int i;

	for (i = 0; i < conf->n_kafka; i++)
		if (strcmp(conf->kafka[i].key, "group.id") == 0)
			group = conf->kafka[i].value;
	return group;
}

/*
 * Whether the group's protocol is COOPERATIVE: librdkafka takes only assignors of one protocol,
 * and cooperative-sticky is its one cooperative assignor. Read once from the configuration, not
 * asked of rd_kafka_rebalance_protocol() in the rebalance callback, which can hang there once the
 * consumer is closing (confluentinc/librdkafka#4041).
 */
static int is_cooperative(rd_kafka_t *rk)
{
	char v[256];
	size_t n = sizeof(v);

	return rd_kafka_conf_get(rd_kafka_conf(rk), "partition.assignment.strategy", v, &n) == RD_KAFKA_CONF_OK &&
	       strstr(v, "cooperative-sticky") != NULL;
}

/* A numeric property of the running consumer, or @p def when this librdkafka does not have it. */
static int64_t kafka_conf_int(rd_kafka_t *rk, const char *key, int64_t def)
{
	char v[32];
	size_t n = sizeof(v);

	return rd_kafka_conf_get(rd_kafka_conf(rk), key, v, &n) == RD_KAFKA_CONF_OK ? strtoll(v, NULL, 10) : def;
}

ks_consumer_t *ks_consumer_start(const ks_conf *conf, ks_offsets_t *offs, ks_metrics *m,
				 const ks_consumer_cbs *cbs, int wake_fd, ks_errbuf *err)
{
	ks_consumer_t *c = calloc(1, sizeof(*c));

	if (!c) {
		ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
		return NULL;
	}
	c->conf = conf;
	c->offs = offs;
	c->m = m;
	c->cbs = *cbs;
	if (!(c->rk = ks_consumer_new(conf, on_group_rebalance, on_group_committed, c, wake_fd, err))) {
		free(c);
		return NULL;
	}
	ks_offsets_set_consumer(offs, c->rk);
	c->coop = is_cooperative(c->rk);
	/* No fetch.queue.backoff.ms in this librdkafka (before 2.1): restart stalled fetches. */
	if ((c->nudge = kafka_conf_int(c->rk, "fetch.queue.backoff.ms", -1) < 0)) {
		c->cq = rd_kafka_queue_get_consumer(c->rk);
		c->q_max_bytes = kafka_conf_int(c->rk, "queued.max.messages.kbytes", 65536) * 1024;
		c->q_min_msgs = kafka_conf_int(c->rk, "queued.min.messages", 100000);
	}
	ks_info("pipeline", "consuming %s in group %s", conf->topic, group_of(conf));
	return c;
}

rd_kafka_message_t *ks_consumer_poll(ks_consumer_t *c, int64_t now)
{
	rd_kafka_message_t *msg = rd_kafka_consumer_poll(c->rk, 0);

	if (msg) {
		c->last_msg_ms = now;
		c->msgs_seen++;
		c->bytes_seen += msg->len + msg->key_len;
	}
	return msg;
}

/*
 * Past max.inflight.records / max.inflight.bytes the loop stops taking messages and lets the
 * writer catch up: librdkafka's bounded prefetch queue holds the rest. Only when that lasts
 * longer than BP_PAUSE_AFTER_MS (throttling, an outage) are the partitions paused, so the
 * consumer can go on polling (group membership, rebalances) without taking more data; pausing
 * at every short burst would throw the prefetched messages away and fetch them again.
 */
int ks_consumer_backpressure(ks_consumer_t *c, size_t recs, size_t bytes, int64_t now)
{
	size_t max_recs = (size_t)c->conf->max_inflight_records, max_bytes = (size_t)c->conf->max_inflight_bytes;

	if (recs >= max_recs || bytes >= max_bytes) {
		if (!c->over_since_ms)
			c->over_since_ms = now;
		if (!c->bp_paused && now - c->over_since_ms >= BP_PAUSE_AFTER_MS) {
			ks_info("pipeline", "pausing %d partitions: %zu records / %zu bytes in flight for %lld ms",
				ks_offsets_count(c->offs), recs, bytes, (long long)(now - c->over_since_ms));
			c->bp_paused = 1;
			pause_all(c, 1);
		}
		return !c->bp_paused;
	}
	c->over_since_ms = 0;
	if (c->bp_paused && !c->stopping && recs <= max_recs * 3 / 4 && bytes <= max_bytes * 3 / 4) {
		ks_info("pipeline", "resuming %d partitions: %zu records / %zu bytes in flight",
			ks_offsets_count(c->offs), recs, bytes);
		c->bp_paused = 0;
		pause_all(c, 0);
		c->nudge_armed = c->nudge; /* a resume alone does not wake librdkafka 2.0's fetcher */
	}
	return 0;
}

int ks_consumer_bp_paused(const ks_consumer_t *c)
{
	return c->bp_paused;
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
void ks_consumer_fetch_watch(ks_consumer_t *c)
{
	size_t queued;

	if (!c->nudge || c->nudge_armed)
		return;
	queued = rd_kafka_queue_length(c->cq);
	if ((int64_t)queued * 2 >= c->q_min_msgs ||
	    (c->msgs_seen && (int64_t)(queued * (c->bytes_seen / c->msgs_seen)) * 2 >= c->q_max_bytes))
		c->nudge_armed = 1;
}

int ks_consumer_nudge(ks_consumer_t *c, int64_t now)
{
	rd_kafka_topic_partition_list_t *all, *stalled;
	int i;

	if (!c->nudge_armed || c->bp_paused || c->stopping || !ks_offsets_count(c->offs))
		return 0;
	if (now - c->last_msg_ms < NUDGE_IDLE_MS)
		return NUDGE_IDLE_MS;
	c->nudge_armed = 0;
	if (!(all = ks_offsets_list(c->offs)))
		return 0;
	stalled = rd_kafka_topic_partition_list_new(all->cnt);
	if (rd_kafka_position(c->rk, all) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		for (i = 0; i < all->cnt; i++) {
			const rd_kafka_topic_partition_t *tp = &all->elems[i];
			int64_t lo, hi;

			if (tp->offset >= 0 &&
			    rd_kafka_get_watermark_offsets(c->rk, tp->topic, tp->partition, &lo, &hi) == 0 &&
			    hi > tp->offset)
				rd_kafka_topic_partition_list_add(stalled, tp->topic, tp->partition)->offset = tp->offset;
		}
	}
	if (stalled->cnt) {
		rd_kafka_error_t *e = rd_kafka_seek_partitions(c->rk, stalled, 0);

		ks_debug("pipeline", "restarting the fetch of %d partitions with data left and none queued%s%s",
			 stalled->cnt, e ? ": " : "", e ? rd_kafka_error_string(e) : "");
		if (e)
			rd_kafka_error_destroy(e);
		KS_METRIC_ADD(c->m, fetch_restarts, (uint64_t)stalled->cnt);
	}
	rd_kafka_topic_partition_list_destroy(stalled);
	rd_kafka_topic_partition_list_destroy(all);
	return 0;
}

void ks_consumer_event(ks_consumer_t *c, const rd_kafka_message_t *msg)
{
	ks_ptrack_t *part;

	if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
		if ((part = ks_offsets_find(c->offs, rd_kafka_topic_name(msg->rkt), msg->partition)))
			ks_ptrack_set_eof(part, 1);
		return;
	}
	ks_warn("consumer", "%s%s%s: %s", msg->rkt ? rd_kafka_topic_name(msg->rkt) : "", msg->rkt ? " " : "",
		rd_kafka_err2name(msg->err), rd_kafka_message_errstr(msg));
}

void ks_consumer_leave(ks_consumer_t *c, int64_t now)
{
	if (c->leaving_since)
		return;
	c->leaving_since = now;
	c->work_while_leaving = 0;
	rd_kafka_unsubscribe(c->rk);
}

int ks_consumer_leaving(const ks_consumer_t *c)
{
	return c->leaving_since != 0;
}

int ks_consumer_left(ks_consumer_t *c, int64_t now)
{
	ks_errbuf err;

	if (!c->leaving_since)
		return 0;
	if (assigned(c->rk) || ks_offsets_count(c->offs)) {
		if (now - c->leaving_since < KS_CLOSE_BOUND_MS)
			return 0;
		ks_warn("pipeline", "still assigned %d ms after leaving the group: closing now", KS_CLOSE_BOUND_MS);
		return 1;
	}
	if (!c->work_while_leaving)
		return 1;
	/* Partitions with records left came while leaving (a member that gave them up, or left, as
	 * this one did): join again and finish them, or no member of a backfilling fleet would. */
	ks_info("pipeline", "given partitions with records left while leaving the group: joining it again");
	c->leaving_since = 0;
	ks_errbuf_clear(&err);
	if (subscribe(c->rk, c->conf, &err))
		c->cbs.fatal(c->cbs.opaque, err.text);
	return 0;
}

void ks_consumer_stop(ks_consumer_t *c)
{
	c->stopping = 1;
	pause_all(c, 1);
}

int ks_consumer_fatal(ks_consumer_t *c, ks_errbuf *err)
{
	char reason[512];
	rd_kafka_resp_err_t e = rd_kafka_fatal_error(c->rk, reason, sizeof(reason));

	if (!e)
		return ks_consumer_auth_failed(c->rk, err) ? 1 : 0;
	if (e == RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID)
		ks_errbuf_set(err, KS_ERR_FATAL, "Kafka consumer stopped by a fatal error: %s (%s): another member of "
			      "group '%s' uses the same kafka.group.instance.id; give every worker its own",
			      rd_kafka_err2name(e), reason, group_of(c->conf));
	else
		ks_errbuf_set(err, KS_ERR_FATAL, "Kafka consumer stopped by a fatal error: %s (%s); restart the worker",
			      rd_kafka_err2name(e), reason);
	return 1;
}


/*
 * Leave the group, then close, each step served here with a deadline: the workaround for
 * librdkafka#4527 (unsubscribe, wait for an empty assignment, close) with a bound on each wait.
 * The revocation the unsubscribe brings runs the rebalance callback (commit, unassign) from the
 * polls. Messages still arriving meanwhile are dropped: never tracked, never committed.
 * @returns 1 once the client is closed.
 */
static int leave_and_close(ks_consumer_t *c, int64_t deadline)
{
	rd_kafka_queue_t *q;
	rd_kafka_error_t *e;
	int closed;

	rd_kafka_unsubscribe(c->rk);
	while (assigned(c->rk) && ks_now_ms() < deadline) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, 50);

		if (m)
			rd_kafka_message_destroy(m);
	}
	q = rd_kafka_queue_new(c->rk);
	if ((e = rd_kafka_consumer_close_queue(c->rk, q))) {
		ks_warn("pipeline", "closing the Kafka consumer: %s", rd_kafka_error_string(e));
		rd_kafka_error_destroy(e);
	}
	while (!(closed = rd_kafka_consumer_closed(c->rk)) && ks_now_ms() < deadline)
		rd_kafka_queue_poll_callback(q, 50);
	rd_kafka_queue_destroy(q);
	return closed;
}

/*
 * librdkafka before 2.2 asserts when it destroys a cooperative-sticky consumer that never got an
 * assignment (its assignor state is still NULL: confluentinc/librdkafka#4312, fixed by #4381):
 * a worker stopped while it joins its group would abort instead of exiting.
 */
static int destroy_would_abort(const ks_consumer_t *c)
{
	return c->coop && !c->ever_assigned && rd_kafka_version() < 0x020200ff;
}

int ks_consumer_close(ks_consumer_t *c)
{
	if (!c)
		return 0;
	/* What Kinesis acknowledged is committed whatever the reason for stopping. */
	ks_offsets_commit(c->offs, 1, 0);
	c->stopping = c->closing = 1;
	if (!leave_and_close(c, ks_now_ms() + KS_CLOSE_BOUND_MS)) {
		ks_err_log("pipeline", "the Kafka consumer did not leave its group within %d ms (a rebalance under way): "
				       "leaving it; acknowledged offsets are committed, the group's next owner re-reads the rest",
			   KS_CLOSE_BOUND_MS);
		return KS_ERR_TIMEOUT;
	}
	ks_offsets_set_consumer(c->offs, NULL);
	if (destroy_would_abort(c)) {
		ks_debug("pipeline", "closed before the group's first assignment: the client is left to the process's end");
		return 1;
	}
	if (c->cq)
		rd_kafka_queue_destroy(c->cq);
	ks_consumer_destroy(c->rk);
	free(c);
	return 0;
}
/* Under a check, librdkafka says nothing: the check reports only what rd_kafka_new rejects. */
static void quiet_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)rk;
	(void)level;
	(void)fac;
	(void)buf;
}

static void no_token(rd_kafka_t *rk, const char *oauthbearer_config, void *opaque)
{
	(void)rk;
	(void)oauthbearer_config;
	(void)opaque;
}

static int conf_is(rd_kafka_conf_t *kc, const char *key, const char *value)
{
	char v[64];
	size_t n = sizeof(v);

	return rd_kafka_conf_get(kc, key, v, &n) == RD_KAFKA_CONF_OK && strcmp(v, value) == 0;
}

int ks_consumer_try_offline(rd_kafka_type_t type, rd_kafka_conf_t *kc, char *errstr, size_t size)
{
	rd_kafka_t *rk;

	/* No broker to talk to, and none of the side doors that open a connection at creation:
	 * the built-in OIDC token fetch and the Kerberos kinit. */
	rd_kafka_conf_set(kc, "bootstrap.servers", "", NULL, 0);
	rd_kafka_conf_set(kc, "sasl.kerberos.min.time.before.relogin", "0", NULL, 0);
	if (conf_is(kc, "sasl.oauthbearer.method", "oidc") && !conf_is(kc, "enable.sasl.oauthbearer.unsecure.jwt", "true"))
		rd_kafka_conf_set_oauthbearer_token_refresh_cb(kc, no_token);
	rd_kafka_conf_set_log_cb(kc, quiet_log);
	if (!(rk = rd_kafka_new(type, kc, errstr, size))) {
		rd_kafka_conf_destroy(kc);
		return KS_ERR_CONFIG;
	}
	rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
	return 0;
}

int ks_consumer_conf_defaults(ks_conf *c, ks_conf_errors *errs)
{
	static const char *const defs[][2] = {
		{ "group.id", "kinesink" },
		{ "bootstrap.servers", "localhost:9092" },
	};
	char key[64];
	size_t d;
	int r;

	for (d = 0; d < sizeof(defs) / sizeof(defs[0]); d++) {
		if (has_key(c, defs[d][0]))
			continue;
		snprintf(key, sizeof(key), "kafka.%s", defs[d][0]);
		if ((r = ks_conf_set(c, key, defs[d][1], "default", 0, errs)))
			return r;
	}
	return 0;
}

int ks_consumer_check(const ks_conf *conf, ks_errbuf *err)
{
	rd_kafka_conf_t *kc = ks_consumer_conf_new(conf, err);
	char errstr[512];

	if (!kc)
		return err->code;
	if (ks_msk_iam_conf(kc, conf, err)) { /* AWS_MSK_IAM is OAUTHBEARER to librdkafka */
		rd_kafka_conf_destroy(kc);
		return err->code;
	}
	if (ks_consumer_try_offline(RD_KAFKA_CONSUMER, kc, errstr, sizeof(errstr)))
		return ks_errbuf_set(err, KS_ERR_CONFIG, "cannot create the Kafka consumer: %s", errstr);
	return 0;
}

int ks_consumer_auth_failed(rd_kafka_t *rk, ks_errbuf *err)
{
	rebalance_ctx *ctx = rk ? rd_kafka_opaque(rk) : NULL;

	if (!ctx)
		return 0;
	if (ctx->iam)
		return ks_msk_iam_failed(ctx->iam, err);
	if (!__atomic_load_n(&ctx->auth_failed, __ATOMIC_ACQUIRE))
		return 0;
	if (!strncasecmp(ctx->mechanism, "SCRAM", 5) || !strcasecmp(ctx->mechanism, "PLAIN"))
		return ks_errbuf_set(err, KS_ERR_AUTH,
				     "Kafka SASL authentication (%s) failed: %s. Check kafka.sasl.username and "
				     "kafka.sasl.password, and that the user exists on the brokers for %s",
				     ctx->mechanism, ctx->auth_why, ctx->mechanism);
	return ks_errbuf_set(err, KS_ERR_AUTH,
			     "Kafka SASL authentication (%s) failed: %s. Check the kafka.sasl.* settings against "
			     "what the brokers accept", ctx->mechanism, ctx->auth_why);
}
