/*
 * The Kafka consumer: configuration, subscription, log routing, queue wake-ups; and, for the
 * loop, the group's rebalances, pausing and the restart of stalled fetches.
 */
#include "consumer.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "msk_iam.h"

typedef struct rebalance_ctx {
	ks_rebalance_fn fn;
	ks_committed_fn committed;
	void *opaque;
	ks_msk_iam_t *iam;  /* kafka.sasl.mechanism = AWS_MSK_IAM, else NULL */
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
	if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION && opaque)
		ks_msk_iam_auth_error(((rebalance_ctx *)opaque)->iam, reason);
	/* librdkafka retries transient errors itself; a fatal one (RD_KAFKA_RESP_ERR__FATAL) is
	 * seen by the loop through ks_consumer_fatal, which asks rd_kafka_fatal_error why. */
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

rd_kafka_t *ks_consumer_new(const ks_conf *conf, ks_rebalance_fn rebalance, ks_committed_fn committed,
			    void *opaque, int wake_fd, ks_errbuf *err)
{
	rd_kafka_conf_t *kc;
	rd_kafka_topic_partition_list_t *topics;
	rebalance_ctx *ctx;
	char errstr[512], *list, *tok, *save = NULL;
	rd_kafka_resp_err_t e;
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
	if (ks_msk_iam_setup(kc, conf, &ctx->iam, err)) {
		free(ctx);
		rd_kafka_conf_destroy(kc);
		return NULL;
	}
	rd_kafka_conf_set_rebalance_cb(kc, on_rebalance);
	rd_kafka_conf_set_offset_commit_cb(kc, on_commit);
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
	if (wake_fd >= 0) {
		rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);

		rd_kafka_queue_io_event_enable(q, wake_fd, "1", 1);
		rd_kafka_queue_destroy(q);
	}

	topics = rd_kafka_topic_partition_list_new(4);
	if (!(list = strdup(conf->topic))) {
		rd_kafka_topic_partition_list_destroy(topics);
		rd_kafka_destroy(rk);
		ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
		return NULL;
	}
	for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		tok[strcspn(tok, " ")] = '\0';
		if (*tok)
			rd_kafka_topic_partition_list_add(topics, tok, RD_KAFKA_PARTITION_UA);
	}
	free(list);
	if ((e = rd_kafka_subscribe(rk, topics))) {
		ks_errbuf_set(err, KS_ERR_CONFIG, "cannot subscribe to '%s': %s", conf->topic, rd_kafka_err2str(e));
		rd_kafka_topic_partition_list_destroy(topics);
		rd_kafka_destroy(rk);
		return NULL;
	}
	rd_kafka_topic_partition_list_destroy(topics);
	return rk;
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

void ks_consumer_msg(const rd_kafka_message_t *m, ks_msg *out)
{
	out->topic = rd_kafka_topic_name(m->rkt);
	out->partition = m->partition;
	out->offset = m->offset;
	out->key = m->key;
	out->key_len = m->key_len;
	out->value = m->payload;
	out->value_len = m->len;
}

int ks_consumer_auth_failed(rd_kafka_t *rk, ks_errbuf *err)
{
	rebalance_ctx *ctx = rk ? rd_kafka_opaque(rk) : NULL;

	return ctx ? ks_msk_iam_failed(ctx->iam, err) : 0;
}
