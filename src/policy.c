/*
 * errors.policy: skip, dead-letter or stop at a bad record. The decision is made here, in
 * message order on the pipeline thread; the offset it concerns is acked through its tracker.
 */
#include "policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dlq.h"
#include "log.h"

struct ks_policy {
	const ks_conf *conf;
	ks_metrics *m;
	ks_policy_cbs cbs;
	const ks_stop *stop;
	ks_dlq_t *dlq;
	uint64_t warned_non_row;
};

/* What a dead letter waits for: the offset it acks once Kafka confirmed it. */
typedef struct dlq_cookie {
	ks_ptrack_t *part;
	int64_t offset;
} dlq_cookie;

static void fatal(ks_policy_t *pol, int drain, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void fatal(ks_policy_t *pol, int drain, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pol->cbs.fatal(pol->cbs.opaque, drain, msg);
}

static void on_dlq_done(void *opaque, void *cookie, const char *err)
{
	ks_policy_t *pol = opaque;
	dlq_cookie *c = cookie;

	if (err) {
		ks_ptrack_drop(c->part, c->offset);
		fatal(pol, 0, "cannot dead-letter %s [%d] @%lld to %s: %s; stopping so the record is not lost",
		      ks_ptrack_topic(c->part), (int)ks_ptrack_partition(c->part), (long long)c->offset,
		      pol->conf->errors_dlq_topic, err);
	} else {
		KS_METRIC_ADD(pol->m, records_dead_lettered, 1);
		ks_ptrack_ack(c->part, c->offset);
	}
	free(c);
}

ks_policy_t *ks_policy_new(const ks_conf *conf, ks_metrics *m, const ks_policy_cbs *cbs,
			   const ks_stop *stop, ks_errbuf *err)
{
	ks_policy_t *pol = calloc(1, sizeof(*pol));

	if (!pol) {
		ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
		return NULL;
	}
	pol->conf = conf;
	pol->m = m;
	pol->cbs = *cbs;
	pol->stop = stop;
	if (conf->errors_policy == KS_POLICY_DLQ && !(pol->dlq = ks_dlq_new(conf, on_dlq_done, pol, err))) {
		free(pol);
		return NULL;
	}
	ks_dlq_set_metrics(pol->dlq, m);
	return pol;
}

void ks_policy_destroy(ks_policy_t *pol)
{
	if (!pol)
		return;
	ks_dlq_destroy(pol->dlq, 5000);
	free(pol);
}

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

static void dead_letter(ks_policy_t *pol, ks_ptrack_t *part, const rd_kafka_message_t *msg, const ks_errbuf *err)
{
	dlq_cookie *c;
	ks_errbuf e;

	if (!(c = malloc(sizeof(*c)))) {
		fatal(pol, 0, "out of memory dead-lettering %s", err->text);
		return;
	}
	c->part = part;
	c->offset = msg->offset;
	/* The producer's queue is full: serve its delivery reports (only this producer's: the
	 * consumer is polled by the loop alone) and try again; the pipeline waits. */
	for (;;) {
		ks_errbuf_clear(&e);
		if (!ks_dlq_send(pol->dlq, msg, err, c, &e) || !e.retriable || ks_stop_requested(pol->stop))
			break;
		ks_dlq_poll(pol->dlq);
		usleep(1000);
	}
	if (e.code) {
		free(c);
		ks_ptrack_drop(part, msg->offset); /* not sent: its offset is never committed */
		if (!e.retriable)
			fatal(pol, 0, "%s", e.text);
		return;
	}
	ks_warn("pipeline", "dead-lettering bad record to %s (%s): %s", pol->conf->errors_dlq_topic,
		ks_stage_str(err->stage), err->text);
}

void ks_policy_bad_record(ks_policy_t *pol, ks_ptrack_t *part, const rd_kafka_message_t *msg,
			  const ks_errbuf *err)
{
	KS_METRIC_ADD(pol->m, records_bad[reason_of(err)], 1);
	switch (pol->conf->errors_policy) {
	case KS_POLICY_SKIP:
		ks_warn("pipeline", "skipping bad record (%s): %s", ks_stage_str(err->stage), err->text);
		KS_METRIC_ADD(pol->m, records_skipped, 1);
		ks_ptrack_ack(part, msg->offset);
		return;
	case KS_POLICY_DLQ:
		dead_letter(pol, part, msg, err);
		return;
	case KS_POLICY_FAIL:
	default:
		fatal(pol, 1, "bad record (%s): %s. errors.policy=fail stops here; offsets are committed up to "
			      "before this record. Fix the input, or set errors.policy=skip or errors.policy=dlq",
		      ks_stage_str(err->stage), err->text);
		return;
	}
}

void ks_policy_non_row(ks_policy_t *pol, const rd_kafka_message_t *msg, ks_op op)
{
	/* Not a row change: skipped with a warning count, whatever the policy. */
	KS_METRIC_ADD(pol->m, records_bad[KS_BAD_NON_ROW], 1);
	if (pol->warned_non_row++ < 10)
		ks_warn("pipeline", "%s [%d] @%lld: skipping Debezium '%c' event (not a row change)",
			rd_kafka_topic_name(msg->rkt), (int)msg->partition, (long long)msg->offset, ks_op_char(op));
}

void ks_policy_poll(ks_policy_t *pol)
{
	ks_dlq_poll(pol->dlq);
}

int ks_policy_pending(const ks_policy_t *pol)
{
	return ks_dlq_pending(pol->dlq);
}
