/* Dead-letter queue: an idempotent librdkafka producer to errors.dlq.topic. */
#include "dlq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer.h"
#include "log.h"
#include "msk_iam.h"
#include "scrub.h"

/* Room for the headers a dead letter adds to the record: names, reason, stage, the error text
 * (at most sizeof(ks_errbuf.text)), topic name (at most 249) and the numbers. */
#define HEADER_ROOM 4096
/* librdkafka's upper bound of message.max.bytes. */
#define MESSAGE_MAX_BYTES_LIMIT 1000000000L
/* How much of the key and of the value a reference record keeps. */
#define REFERENCE_PREFIX 1024

struct ks_dlq {
	rd_kafka_t *rk;
	char *topic;
	ks_dlq_done_fn done;
	void *opaque;
	int pending;
	ks_metrics *m;
	char fatal[512]; /* the producer's fatal error, once librdkafka raised one */
	int purged;
	ks_msk_iam_t *iam;  /* kafka.sasl.mechanism = AWS_MSK_IAM, else NULL */
};

/* One dead letter in flight: the caller's cookie, and whether it is already the reference. */
typedef struct letter {
	void *cookie;
	int reference;
} letter;

static const char *header(const rd_kafka_headers_t *h, const char *name)
{
	const void *v;
	size_t n;

	/* Every header this module reads it wrote itself, as a NUL-free string. */
	if (!h || rd_kafka_header_get_last(h, name, &v, &n) || !v)
		return "?";
	return v;
}

/* The fatal error, as librdkafka words it; d->fatal is set once it is known. */
static const char *fatal_reason(ks_dlq_t *d)
{
	if (!d->fatal[0] && rd_kafka_fatal_error(d->rk, d->fatal, sizeof(d->fatal)) == RD_KAFKA_RESP_ERR_NO_ERROR)
		d->fatal[0] = '\0';
	return d->fatal[0] ? d->fatal : NULL;
}

/* MSK IAM: the brokers refused the producer's token (librdkafka would retry for ever). */
static const char *auth_failure(ks_dlq_t *d, ks_errbuf *e)
{
	ks_errbuf_clear(e);
	if (!ks_msk_iam_failed(d->iam, e))
		return NULL;
	ks_errbuf_prefix(e, "the dead-letter producer");
	return e->text;
}

/*
 * Dead-letter a reference to a record the broker (or the producer's own cap) refused by size:
 * the kinesink.* headers of @p full, the original size, why, and at most REFERENCE_PREFIX bytes
 * of key and value. The original record's own headers are left out: they may be what is big.
 */
static rd_kafka_resp_err_t produce_reference(ks_dlq_t *d, const rd_kafka_headers_t *full, const void *key,
					     size_t key_len, const void *value, size_t len, const char *refused,
					     letter *l)
{
	rd_kafka_headers_t *h = rd_kafka_headers_new(10);
	const char *name;
	const void *v;
	size_t i, n;
	char num[32];
	rd_kafka_resp_err_t e;

	for (i = 0; full && rd_kafka_header_get_all(full, i, &name, &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR; i++)
		if (strncmp(name, "kinesink.", 9) == 0)
			rd_kafka_header_add(h, name, -1, v, (ssize_t)n);
	snprintf(num, sizeof(num), "%zu", len);
	rd_kafka_header_add(h, "kinesink.original.size", -1, num, -1);
	rd_kafka_header_add(h, "kinesink.truncated.reason", -1, refused, -1);
	l->reference = 1;
	e = rd_kafka_producev(d->rk, RD_KAFKA_V_TOPIC(d->topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
			      RD_KAFKA_V_KEY(key, key_len < REFERENCE_PREFIX ? key_len : REFERENCE_PREFIX),
			      RD_KAFKA_V_VALUE((void *)value, len < REFERENCE_PREFIX ? len : REFERENCE_PREFIX),
			      RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(l), RD_KAFKA_V_END);
	if (e) {
		rd_kafka_headers_destroy(h);
		return e;
	}
	ks_warn("dlq", "%s [%s] @%s: the dead letter (%zu bytes of value) was refused by size (%s); writing a "
		       "reference record (headers and the first %d bytes) to %s instead. To keep whole records, "
		       "raise max.message.bytes of topic %s",
		header(full, "kinesink.original.topic"), header(full, "kinesink.original.partition"),
		header(full, "kinesink.original.offset"), len, refused, REFERENCE_PREFIX, d->topic, d->topic);
	return RD_KAFKA_RESP_ERR_NO_ERROR;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	ks_dlq_t *d = opaque;
	letter *l = m->_private;
	rd_kafka_headers_t *h = NULL;
	void *cookie = l->cookie;
	int reference = l->reference;
	char why[768];
	ks_errbuf e;

	(void)rk;
	if (m->err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE && !l->reference) {
		rd_kafka_message_headers(m, &h);
		if (produce_reference(d, h, m->key, m->key_len, m->payload, m->len, rd_kafka_err2str(m->err), l) ==
		    RD_KAFKA_RESP_ERR_NO_ERROR)
			return; /* still pending, as the reference */
	}
	d->pending--;
	free(l);
	if (!m->err) {
		if (reference)
			KS_METRIC_ADD(d->m, records_dead_lettered_truncated, 1);
		d->done(d->opaque, cookie, NULL);
		return;
	}
	if (fatal_reason(d))
		snprintf(why, sizeof(why), "the dead-letter producer failed for good: %s", d->fatal);
	else if (auth_failure(d, &e))
		snprintf(why, sizeof(why), "%s", e.text);
	else
		snprintf(why, sizeof(why), "%s", rd_kafka_err2str(m->err));
	d->done(d->opaque, cookie, why);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	ks_dlq_t *d = opaque;

	(void)rk;
	if (err == RD_KAFKA_RESP_ERR__FATAL && fatal_reason(d)) {
		ks_err_log("dlq", "the dead-letter producer to %s failed for good: %s; %d dead letter%s not written "
				  "(their offsets are not committed); stopping",
			   d->topic, d->fatal, d->pending, d->pending == 1 ? "" : "s");
		return;
	}
	/* With MSK IAM a refused token is final, as for the consumer: ks_dlq_poll fails the dead
	 * letters. librdkafka retries the others itself. */
	if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION)
		ks_msk_iam_auth_error(d->iam, reason);
	ks_warn("dlq", "%s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)rk;
	ks_log(ks_log_level_from_syslog(level),
	       "dlq", "%s: %s", fac, buf);
}

static long conf_long(rd_kafka_conf_t *kc, const char *key)
{
	char v[32];
	size_t n = sizeof(v);

	return rd_kafka_conf_get(kc, key, v, &n) == RD_KAFKA_CONF_OK ? atol(v) : 0;
}

/*
 * The producer's configuration: conf's kafka.* settings that mean something to a producer, the
 * delivery settings, and a message size cap above anything the consumer can receive, so that a
 * record it fetched always fits in a dead letter. The consumer receives a record in one fetch
 * answer of at most receive.message.max.bytes, which librdkafka raises to fetch.max.bytes + 512.
 */
static rd_kafka_conf_t *dlq_conf_new(const ks_conf *conf, ks_errbuf *err)
{
	rd_kafka_conf_t *kc, *cc;
	long receivable, cap;
	char num[32], brokers[4096];
	size_t n = sizeof(brokers);
	int i;

	if (!(cc = ks_consumer_conf_new(conf, err)))
		return NULL;
	receivable = conf_long(cc, "receive.message.max.bytes");
	if (conf_long(cc, "fetch.max.bytes") + 512 > receivable)
		receivable = conf_long(cc, "fetch.max.bytes") + 512;
	kc = rd_kafka_conf_new();
	/* The consumer's brokers, whether set or its default. */
	if (rd_kafka_conf_get(cc, "bootstrap.servers", brokers, &n) == RD_KAFKA_CONF_OK && brokers[0])
		rd_kafka_conf_set(kc, "bootstrap.servers", brokers, NULL, 0);
	rd_kafka_conf_destroy(cc);
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
	/* The consumer's client.id with "-dlq": brokers' logs, quotas and policies tell the two apart
	 * (Kafka Connect names its dead-letter producers apart the same way). */
	n = sizeof(brokers);
	if (rd_kafka_conf_get(kc, "client.id", brokers, &n) == RD_KAFKA_CONF_OK && n + 4 <= sizeof(brokers)) {
		strcat(brokers, "-dlq");
		rd_kafka_conf_set(kc, "client.id", brokers, NULL, 0);
	}
	rd_kafka_conf_set(kc, "acks", "all", NULL, 0);
	rd_kafka_conf_set(kc, "enable.idempotence", "true", NULL, 0);
	rd_kafka_conf_set(kc, "linger.ms", "5", NULL, 0);
	cap = receivable + HEADER_ROOM;
	if (conf_long(kc, "message.max.bytes") > cap)
		cap = conf_long(kc, "message.max.bytes");
	snprintf(num, sizeof(num), "%ld", cap < MESSAGE_MAX_BYTES_LIMIT ? cap : MESSAGE_MAX_BYTES_LIMIT);
	rd_kafka_conf_set(kc, "message.max.bytes", num, NULL, 0);
	return kc;
}

ks_dlq_t *ks_dlq_new(const ks_conf *conf, ks_dlq_done_fn done, void *opaque, ks_errbuf *err)
{
	rd_kafka_conf_t *kc;
	char errstr[512];
	ks_dlq_t *d = calloc(1, sizeof(*d));

	if (!d || !(d->topic = strdup(conf->errors_dlq_topic))) {
		free(d);
		ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory creating the DLQ producer");
		return NULL;
	}
	d->done = done;
	d->opaque = opaque;
	if (!(kc = dlq_conf_new(conf, err))) {
		free(d->topic);
		free(d);
		return NULL;
	}
	rd_kafka_conf_set_dr_msg_cb(kc, on_delivery);
	rd_kafka_conf_set_error_cb(kc, on_error);
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
		rd_kafka_conf_destroy(kc);
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

int ks_dlq_check(const ks_conf *conf, ks_errbuf *err)
{
	rd_kafka_conf_t *kc = dlq_conf_new(conf, err);
	char errstr[512];

	if (!kc)
		return err->code;
	if (ks_msk_iam_conf(kc, conf, err)) { /* AWS_MSK_IAM is OAUTHBEARER to librdkafka */
		rd_kafka_conf_destroy(kc);
		return err->code;
	}
	if (ks_consumer_try_offline(RD_KAFKA_PRODUCER, kc, errstr, sizeof(errstr)))
		return ks_errbuf_set(err, KS_ERR_CONFIG, "cannot create the dead-letter producer for topic %s: %s",
				     conf->errors_dlq_topic, errstr);
	return 0;
}

void ks_dlq_set_metrics(ks_dlq_t *d, ks_metrics *m)
{
	if (d)
		d->m = m;
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
	ks_errbuf refused;
	letter *l;
	char num[32], text[sizeof(why->text)];

	if (auth_failure(d, &refused))
		return ks_errbuf_set(err, KS_ERR_AUTH, "cannot dead-letter %s [%d] @%lld to %s: %s",
				     rd_kafka_topic_name(msg->rkt), (int)msg->partition, (long long)msg->offset, d->topic,
				     refused.text);
	if (!(l = calloc(1, sizeof(*l))))
		return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory dead-lettering %s [%d] @%lld",
				     rd_kafka_topic_name(msg->rkt), (int)msg->partition, (long long)msg->offset);
	l->cookie = cookie;
	if (rd_kafka_message_headers(msg, &orig) == RD_KAFKA_RESP_ERR_NO_ERROR && orig)
		h = rd_kafka_headers_copy(orig);
	else
		h = rd_kafka_headers_new(8);
	/* The error text may quote a peer (a registry's answer): it leaves scrubbed, as every text. */
	snprintf(text, sizeof(text), "%s", why->text);
	ks_scrub_str(text, sizeof(text));
	rd_kafka_header_add(h, "kinesink.error.reason", -1, why->reason[0] ? why->reason : "bad_record", -1);
	rd_kafka_header_add(h, "kinesink.error.stage", -1, ks_stage_str(why->stage), -1);
	rd_kafka_header_add(h, "kinesink.error.message", -1, text, -1);
	rd_kafka_header_add(h, "kinesink.original.topic", -1, rd_kafka_topic_name(msg->rkt), -1);
	snprintf(num, sizeof(num), "%d", (int)msg->partition);
	rd_kafka_header_add(h, "kinesink.original.partition", -1, num, -1);
	snprintf(num, sizeof(num), "%lld", (long long)msg->offset);
	rd_kafka_header_add(h, "kinesink.original.offset", -1, num, -1);
	e = rd_kafka_producev(d->rk, RD_KAFKA_V_TOPIC(d->topic),
			      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
			      RD_KAFKA_V_KEY(msg->key, msg->key_len),
			      RD_KAFKA_V_VALUE(msg->payload, msg->len),
			      RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(l), RD_KAFKA_V_END);
	if (e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
		/* Over the producer's own cap, sized so that a record the consumer received fits: should
		 * it not, a reference is still better than stopping. */
		e = produce_reference(d, h, msg->key, msg->key_len, msg->payload, msg->len, rd_kafka_err2str(e), l);
		rd_kafka_headers_destroy(h);
		h = NULL;
	}
	if (e) {
		if (h)
			rd_kafka_headers_destroy(h);
		free(l);
		return ks_errbuf_set(err, e == RD_KAFKA_RESP_ERR__QUEUE_FULL ? KS_ERR_TRANSIENT : KS_ERR_FATAL,
				     "cannot dead-letter %s [%d] @%lld to %s: %s", rd_kafka_topic_name(msg->rkt),
				     (int)msg->partition, (long long)msg->offset, d->topic,
				     e == RD_KAFKA_RESP_ERR__FATAL && fatal_reason(d) ? d->fatal : rd_kafka_err2str(e));
	}
	d->pending++;
	return 0;
}

void ks_dlq_poll(ks_dlq_t *d)
{
	if (!d)
		return;
	rd_kafka_poll(d->rk, 0);
	if (!d->purged && d->pending > 0 && (fatal_reason(d) || ks_msk_iam_failed(d->iam, NULL))) {
		/* The producer is done for: fail what it still holds now rather than at its timeout. */
		d->purged = 1;
		rd_kafka_purge(d->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT | RD_KAFKA_PURGE_F_NON_BLOCKING);
		rd_kafka_poll(d->rk, 0);
	}
}

int ks_dlq_pending(const ks_dlq_t *d)
{
	return d ? d->pending : 0;
}
