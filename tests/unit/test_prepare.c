/*
 * The decode lanes (prepare.c): every message of a batch is decoded and transformed exactly
 * once, its result lands in its own slot, and a batch started while the caller goes on with
 * other work is complete when ks_preparer_finish returns. Many batches of every size, so lanes
 * that wake late for a batch already finished meet the next one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "prepare.h"
#include "testutil.h"

#define NMSG 1200

static rd_kafka_t *rk;
static rd_kafka_topic_t *rkt;
static rd_kafka_message_t msgs[NMSG];
static char values[NMSG][96], keys[NMSG][32];

/* A topic handle for the messages: an offline producer, never connected, quiet. */
static int setup_messages(void)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char errstr[256];
	int i;

	rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof(errstr));
	if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr))) ||
	    !(rkt = rd_kafka_topic_new(rk, "shop.items", NULL))) {
		fprintf(stderr, "test_prepare: %s\n", errstr);
		return -1;
	}
	for (i = 0; i < NMSG; i++) {
		/* Every 97th message is not JSON: a bad record in its own slot, the rest unaffected. */
		if (i % 97 == 13)
			snprintf(values[i], sizeof(values[i]), "not json %d", i);
		else
			snprintf(values[i], sizeof(values[i]), "{\"op\":\"c\",\"after\":{\"id\":%d,\"n\":\"m%d\"}}", i, i);
		snprintf(keys[i], sizeof(keys[i]), "{\"id\":%d}", i);
		memset(&msgs[i], 0, sizeof(msgs[i]));
		msgs[i].rkt = rkt;
		msgs[i].partition = i % 4;
		msgs[i].offset = i;
		msgs[i].payload = values[i];
		msgs[i].len = strlen(values[i]);
		msgs[i].key = keys[i];
		msgs[i].key_len = strlen(keys[i]);
	}
	return 0;
}

/* Item @p it holds what message @p i must become; its records are freed. */
static void check_item(ks_prepared *it, int i)
{
	char want[96];

	CU_ASSERT_PTR_EQUAL(it->msg, &msgs[i]);
	if (i % 97 == 13) {
		CU_ASSERT_EQUAL(it->outcome, KS_PREP_BAD);
		CU_ASSERT_EQUAL(it->n, 0);
		CU_ASSERT_PTR_NOT_NULL(strstr(it->err.text, "shop.items"));
		return;
	}
	CU_ASSERT_EQUAL(it->outcome, KS_PREP_RECORDS);
	CU_ASSERT_EQUAL_FATAL(it->n, 1);
	snprintf(want, sizeof(want), "{\"id\":%d,\"n\":\"m%d\"}", i, i);
	CU_ASSERT_EQUAL(it->recs[0]->data_len, strlen(want));
	CU_ASSERT(memcmp(it->recs[0]->data, want, strlen(want)) == 0);
	snprintf(want, sizeof(want), "{\"id\":%d}", i);
	CU_ASSERT_STRING_EQUAL(it->recs[0]->pkey, want);
	ks_record_destroy(it->recs[0]);
	it->recs[0] = NULL;
}

static void run_lanes(int threads)
{
	static ks_prepared a[500], b[500];
	ks_prepared *cur = a, *prev = b;
	ks_conf_errors errs = { 0 };
	ks_preparer_t *pp;
	ks_errbuf err;
	ks_conf c;
	int round, first = 0, nprev = 0, firstprev = 0, i;
	char t[8];

	ks_conf_init(&c);
	snprintf(t, sizeof(t), "%d", threads);
	ks_conf_set(&c, "stream", "s", "test", 0, &errs);
	ks_conf_set(&c, "aws.region", "us-east-1", "test", 0, &errs);
	ks_conf_set(&c, "topic", "shop.items", "test", 0, &errs);
	ks_conf_set(&c, "input.format", "debezium-json", "test", 0, &errs);
	ks_conf_set(&c, "type", "upsert", "test", 0, &errs);
	ks_conf_set(&c, "decode.threads", t, "test", 0, &errs);
	CU_ASSERT_EQUAL_FATAL(ks_conf_finalize(&c, &errs), 0);
	pp = ks_preparer_new(&c, NULL, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(pp);

	/* As the pipeline does: start a batch, check the one before while the lanes work. */
	for (round = 0; round < 400; round++) {
		int n = 1 + (round * 37) % 500, k;
		ks_prepared *swap;

		for (k = 0; k < n; k++) {
			memset(&cur[k], 0, sizeof(cur[k]));
			cur[k].msg = &msgs[(first + k) % NMSG];
		}
		ks_preparer_start(pp, cur, n);
		for (i = 0; i < nprev; i++)
			check_item(&prev[i], (firstprev + i) % NMSG);
		ks_preparer_finish(pp);
		swap = prev;
		prev = cur;
		cur = swap;
		nprev = n;
		firstprev = first;
		first = (first + n) % NMSG;
	}
	for (i = 0; i < nprev; i++)
		check_item(&prev[i], (firstprev + i) % NMSG);
	/* Finishing with nothing started returns at once; so does an empty batch. */
	ks_preparer_finish(pp);
	ks_preparer_start(pp, cur, 0);
	ks_preparer_finish(pp);
	ks_preparer_destroy(pp);
	ks_conf_errors_clean(&errs);
	ks_conf_clean(&c);
}

static void test_one_lane(void)
{
	run_lanes(1);
}

static void test_two_lanes(void)
{
	run_lanes(2);
}

static void test_five_lanes(void)
{
	run_lanes(5);
}

int main(void)
{
	static const tu_test tests[] = {
		{ "one lane: everything on the caller at finish", test_one_lane },
		{ "two lanes: batches overlap the caller's work, in order, exactly once", test_two_lanes },
		{ "five lanes: more lanes than cores, late wake-ups", test_five_lanes },
		{ NULL, NULL },
	};
	int rc;

	if (setup_messages())
		return 1;
	rc = tu_main("prepare", tests);
	rd_kafka_topic_destroy(rkt);
	rd_kafka_destroy(rk);
	return rc;
}
