/*
 * errors.policy (policy.c): skip acks a bad record's offset at once, fail stops the worker with
 * the offset still pending and asks for the records in flight to be finished first; every bad
 * record is counted by reason, and a non-row event is counted whatever the policy.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "policy.h"
#include "testutil.h"

static rd_kafka_t *rk;
static rd_kafka_topic_t *rkt;

typedef struct stopped {
	int calls, drain;
	char msg[1024];
} stopped;

static void on_fatal(void *opaque, int drain, const char *msg)
{
	stopped *s = opaque;

	s->calls++;
	s->drain = drain;
	snprintf(s->msg, sizeof(s->msg), "%s", msg);
}

static ks_policy_t *policy(ks_conf *c, const char *which, ks_metrics *m, stopped *s)
{
	static ks_stop stop;
	ks_policy_cbs cbs = { on_fatal, s };
	ks_conf_errors errs = { 0 };
	ks_errbuf err;
	ks_policy_t *pol;

	ks_conf_init(c);
	ks_conf_set(c, "errors.policy", which, "test", 0, &errs);
	CU_ASSERT_EQUAL(errs.n, 0);
	ks_conf_errors_clean(&errs);
	pol = ks_policy_new(c, m, &cbs, &stop, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(pol);
	return pol;
}

static rd_kafka_message_t message(int64_t offset)
{
	rd_kafka_message_t m;

	memset(&m, 0, sizeof(m));
	m.rkt = rkt;
	m.partition = 2;
	m.offset = offset;
	return m;
}

static void bad(ks_errbuf *e, ks_stage stage, const char *reason)
{
	ks_errbuf_clear(e);
	ks_errbuf_badrec(e, stage, reason, "orders", 2, 41, "value is not JSON");
}

static void test_skip_acks_at_once_and_counts_by_reason(void)
{
	ks_metrics m = { 0 };
	stopped s = { 0 };
	ks_conf c;
	ks_policy_t *pol = policy(&c, "skip", &m, &s);
	ks_ptrack_t *t = ks_ptrack_new("orders", 2);
	rd_kafka_message_t msg = message(41);
	ks_errbuf e;

	CU_ASSERT_EQUAL(ks_ptrack_add(t, 41, 1), 0);
	bad(&e, KS_STAGE_DECODE, "not_json");
	ks_policy_bad_record(pol, t, &msg, &e);
	CU_ASSERT_EQUAL(ks_ptrack_committable(t), 42);
	CU_ASSERT_EQUAL(ks_ptrack_pending_acks(t), 0);
	CU_ASSERT_EQUAL(m.records_skipped, 1);
	CU_ASSERT_EQUAL(m.records_bad[KS_BAD_DECODE], 1);

	msg = message(42);
	CU_ASSERT_EQUAL(ks_ptrack_add(t, 42, 1), 0);
	bad(&e, KS_STAGE_PRODUCE, "too_large");
	ks_policy_bad_record(pol, t, &msg, &e);
	CU_ASSERT_EQUAL(m.records_bad[KS_BAD_TOO_LARGE], 1);
	CU_ASSERT_EQUAL(ks_ptrack_committable(t), 43);
	CU_ASSERT_EQUAL(s.calls, 0);
	CU_ASSERT_EQUAL(ks_policy_pending(pol), 0);
	ks_policy_destroy(pol);
	ks_ptrack_destroy(t);
	ks_conf_clean(&c);
}

static void test_fail_stops_with_the_offset_pending(void)
{
	ks_metrics m = { 0 };
	stopped s = { 0 };
	ks_conf c;
	ks_policy_t *pol = policy(&c, "fail", &m, &s);
	ks_ptrack_t *t = ks_ptrack_new("orders", 2);
	rd_kafka_message_t msg = message(41);
	ks_errbuf e;

	CU_ASSERT_EQUAL(ks_ptrack_add(t, 40, 0), 0);
	CU_ASSERT_EQUAL(ks_ptrack_add(t, 41, 1), 0);
	bad(&e, KS_STAGE_TRANSFORM, "missing_key");
	ks_policy_bad_record(pol, t, &msg, &e);
	CU_ASSERT_EQUAL(s.calls, 1);
	CU_ASSERT_EQUAL(s.drain, 1); /* the input's fault: what is in flight is finished first */
	CU_ASSERT_PTR_NOT_NULL(strstr(s.msg, "orders [2] @41: value is not JSON"));
	CU_ASSERT_PTR_NOT_NULL(strstr(s.msg, "errors.policy=fail"));
	CU_ASSERT_EQUAL(ks_ptrack_committable(t), 41); /* committed up to before the bad record */
	CU_ASSERT_EQUAL(m.records_bad[KS_BAD_TRANSFORM], 1);
	CU_ASSERT_EQUAL(m.records_skipped, 0);
	ks_policy_destroy(pol);
	ks_ptrack_destroy(t);
	ks_conf_clean(&c);
}

static void test_non_row_events_counted_whatever_the_policy(void)
{
	static const char *const policies[] = { "fail", "skip" };
	size_t i;

	for (i = 0; i < sizeof(policies) / sizeof(policies[0]); i++) {
		ks_metrics m = { 0 };
		stopped s = { 0 };
		ks_conf c;
		ks_policy_t *pol = policy(&c, policies[i], &m, &s);
		rd_kafka_message_t msg = message(7);

		ks_policy_non_row(pol, &msg, KS_OP_TRUNCATE);
		ks_policy_non_row(pol, &msg, KS_OP_MESSAGE);
		CU_ASSERT_EQUAL(m.records_bad[KS_BAD_NON_ROW], 2);
		CU_ASSERT_EQUAL(s.calls, 0);
		ks_policy_destroy(pol);
		ks_conf_clean(&c);
	}
}

int main(void)
{
	static const tu_test tests[] = {
		{ "skip acks at once and counts by reason", test_skip_acks_at_once_and_counts_by_reason },
		{ "fail stops with the offset pending", test_fail_stops_with_the_offset_pending },
		{ "non-row events counted whatever the policy", test_non_row_events_counted_whatever_the_policy },
		{ NULL, NULL },
	};
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char errstr[256];
	int rc;

	/* A topic handle for the messages: an offline producer, never connected, quiet. */
	rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof(errstr));
	if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr))) ||
	    !(rkt = rd_kafka_topic_new(rk, "orders", NULL))) {
		fprintf(stderr, "test_policy: %s\n", errstr);
		return 1;
	}
	rc = tu_main("policy", tests);
	rd_kafka_topic_destroy(rkt);
	rd_kafka_destroy(rk);
	return rc;
}
