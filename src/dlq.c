/* Dead-letter queue: an idempotent librdkafka producer to errors.dlq.topic. */
#include "dlq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "msk_iam.h"

struct ks_dlq {
	rd_kafka_t *rk;
	char *topic;
	ks_dlq_done_fn done;
	void *opaque;
	int pending;
	ks_msk_iam_t *iam;  /* kafka.sasl.mechanism = AWS_MSK_IAM, else NULL */
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	ks_dlq_t *d = opaque;

	(void)rk;
	d->pending--;
	d->done(d->opaque, m->_private, m->err ? rd_kafka_err2str(m->err) : NULL);
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)rk;
	ks_log(ks_log_level_from_syslog(level),
	       "dlq", "%s: %s", fac, buf);
}

ks_dlq_t *ks_dlq_new(const ks_conf *conf, ks_dlq_done_fn done, void *opaque, ks_errbuf *err)
{
	rd_kafka_conf_t *kc = rd_kafka_conf_new();
	char errstr[512];
	ks_dlq_t *d = calloc(1, sizeof(*d));
	int i;

	if (!d || !(d->topic = strdup(conf->errors_dlq_topic))) {
		free(d);
		rd_kafka_conf_destroy(kc);
		ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory creating the DLQ producer");
		return NULL;
	}
	d->done = done;
	d->opaque = opaque;
	for (i = 0; i < conf->n_kafka; i++) {
		const char *k = conf->kafka[i].key;

		/* Consumer-only settings mean nothing to the producer. */
		if (!strcmp(k, "group.id") || !strcmp(k, "group.instance.id") || !strncmp(k, "auto.", 5) ||
		    !strcmp(k, "partition.assignment.strategy") || !strncmp(k, "session.", 8) ||
		    !strncmp(k, "heartbeat.", 10) || !strncmp(k, "enable.auto", 11) ||
		    !strcmp(k, "enable.partition.eof") || !strcmp(k, "max.poll.interval.ms") ||
		    !strncmp(k, "fetch.", 6) || !strcmp(k, "isolation.level") || !strcmp(k, "check.crcs"))
			continue;
		rd_kafka_conf_set(kc, k, conf->kafka[i].value, NULL, 0);
	}
	rd_kafka_conf_set(kc, "acks", "all", NULL, 0);
	rd_kafka_conf_set(kc, "enable.idempotence", "true", NULL, 0);
	rd_kafka_conf_set(kc, "linger.ms", "5", NULL, 0);
	rd_kafka_conf_set_dr_msg_cb(kc, on_delivery);
	rd_kafka_conf_set_log_cb(kc, on_log);
	rd_kafka_conf_set_opaque(kc, d);
	if (ks_msk_iam_setup(kc, conf, &d->iam, err)) {
		rd_kafka_conf_destroy(kc);
		free(d->topic);
		free(d);
		return NULL;
	}
	if (!(d->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, errstr, sizeof(errstr)))) {
		ks_errbuf_set(err, KS_ERR_CONFIG, "cannot create the dead-letter producer for topic %s: %s",
			      d->topic, errstr);
		ks_msk_iam_destroy(d->iam);
		free(d->topic);
		free(d);
		return NULL;
	}
	if (ks_msk_iam_start(d->iam, d->rk, err)) {
		ks_errbuf_prefix(err, "dead-letter producer for topic %s", d->topic);
		ks_msk_iam_destroy(d->iam);
		rd_kafka_destroy(d->rk);
		free(d->topic);
		free(d);
		return NULL;
	}
	return d;
}

void ks_dlq_destroy(ks_dlq_t *d, int timeout_ms)
{
	if (!d)
		return;
	rd_kafka_flush(d->rk, timeout_ms);
	ks_msk_iam_destroy(d->iam);
	rd_kafka_destroy(d->rk);
	free(d->topic);
	free(d);
}

int ks_dlq_send(ks_dlq_t *d, const rd_kafka_message_t *msg, const ks_errbuf *why, void *cookie,
		ks_errbuf *err)
{
	rd_kafka_headers_t *orig = NULL, *h;
	rd_kafka_resp_err_t e;
	char num[32];

	if (rd_kafka_message_headers(msg, &orig) == RD_KAFKA_RESP_ERR_NO_ERROR && orig)
		h = rd_kafka_headers_copy(orig);
	else
		h = rd_kafka_headers_new(8);
	rd_kafka_header_add(h, "kinesink.error.reason", -1, why->reason[0] ? why->reason : "bad_record", -1);
	rd_kafka_header_add(h, "kinesink.error.stage", -1, ks_stage_str(why->stage), -1);
	rd_kafka_header_add(h, "kinesink.error.message", -1, why->text, -1);
	rd_kafka_header_add(h, "kinesink.original.topic", -1, rd_kafka_topic_name(msg->rkt), -1);
	snprintf(num, sizeof(num), "%d", (int)msg->partition);
	rd_kafka_header_add(h, "kinesink.original.partition", -1, num, -1);
	snprintf(num, sizeof(num), "%lld", (long long)msg->offset);
	rd_kafka_header_add(h, "kinesink.original.offset", -1, num, -1);
	e = rd_kafka_producev(d->rk, RD_KAFKA_V_TOPIC(d->topic),
			      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
			      RD_KAFKA_V_KEY(msg->key, msg->key_len),
			      RD_KAFKA_V_VALUE(msg->payload, msg->len),
			      RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(cookie), RD_KAFKA_V_END);
	if (e) {
		rd_kafka_headers_destroy(h);
		return ks_errbuf_set(err, e == RD_KAFKA_RESP_ERR__QUEUE_FULL ? KS_ERR_TRANSIENT : KS_ERR_FATAL,
				     "cannot dead-letter %s [%d] @%lld to %s: %s", rd_kafka_topic_name(msg->rkt),
				     (int)msg->partition, (long long)msg->offset, d->topic, rd_kafka_err2str(e));
	}
	d->pending++;
	return 0;
}

void ks_dlq_poll(ks_dlq_t *d)
{
	if (d)
		rd_kafka_poll(d->rk, 0);
}

int ks_dlq_pending(const ks_dlq_t *d)
{
	return d ? d->pending : 0;
}
