/* Offsets: what may be committed when acks arrive in any order. */
#include "offsets.h"
#include "testutil.h"

#include <pthread.h>

static void test_in_order(void)
{
	ks_ptrack_t *p = ks_ptrack_new("t", 0);

	CU_ASSERT_EQUAL(ks_ptrack_committable(p), -1);
	ks_ptrack_add(p, 0, 1);
	ks_ptrack_add(p, 1, 1);
	CU_ASSERT_EQUAL(ks_ptrack_committable(p), 0);
	ks_ptrack_ack(p, 0);
	CU_ASSERT_EQUAL(ks_ptrack_committable(p), 1);
	ks_ptrack_ack(p, 1);
	CU_ASSERT_EQUAL(ks_ptrack_committable(p), 2);
	CU_ASSERT_EQUAL(ks_ptrack_pending_acks(p), 0);
	ks_ptrack_destroy(p);
}

static void test_out_of_order_never_passes_a_pending_offset(void)
{
	ks_ptrack_t *p = ks_ptrack_new("t", 3);
	int64_t i;

	for (i = 100; i < 110; i++)
		ks_ptrack_add(p, i, 1);
	/* Everything but 103 acked: the commit stops right before it. */
	for (i = 109; i >= 100; i--)
		if (i != 103)
			ks_ptrack_ack(p, i);
	CU_ASSERT_EQUAL(ks_ptrack_committable(p), 103);
	CU_ASSERT_EQUAL(ks_ptrack_last_acked(p), 109);
	ks_ptrack_ack(p, 103);
	CU_ASSERT_EQUAL(ks_ptrack_committable(p), 110);
	ks_ptrack_destroy(p);
}

static void test_gaps_zero_and_two_record_messages(void)
{
	ks_ptrack_t *p = ks_ptrack_new("t", 0);

	ks_ptrack_add(p, 5, 2);  /* a delete with its tombstone */
	ks_ptrack_add(p, 9, 0);  /* a tombstone input: nothing to write */
	ks_ptrack_add(p, 12, 1); /* gap: compaction or transaction markers */
	CU_ASSERT_EQUAL(ks_ptrack_committable(p), 5);
	ks_ptrack_ack(p, 5);
	CU_ASSERT_EQUAL(ks_ptrack_committable(p), 5); /* one of its two records is still out */
	ks_ptrack_ack(p, 12);
	CU_ASSERT_EQUAL(ks_ptrack_committable(p), 5);
	ks_ptrack_ack(p, 5);
	CU_ASSERT_EQUAL(ks_ptrack_committable(p), 13);
	ks_ptrack_destroy(p);
}

static void test_done_messages_without_pending(void)
{
	ks_ptrack_t *p = ks_ptrack_new("t", 0);

	ks_ptrack_add(p, 0, 0);
	ks_ptrack_add(p, 1, 0);
	CU_ASSERT_EQUAL(ks_ptrack_committable(p), 2);
	CU_ASSERT_EQUAL(ks_ptrack_add(p, 1, 1), KS_ERR_ORDER); /* offsets must grow */
	ks_ptrack_destroy(p);
}

static void test_drop_keeps_offset_uncommittable(void)
{
	ks_ptrack_t *p = ks_ptrack_new("t", 0);

	ks_ptrack_add(p, 0, 1);
	ks_ptrack_add(p, 1, 1);
	ks_ptrack_ack(p, 1);
	ks_ptrack_drop(p, 0);
	CU_ASSERT_EQUAL(ks_ptrack_committable(p), 0);
	CU_ASSERT_EQUAL(ks_ptrack_pending_acks(p), 0);
	ks_ptrack_destroy(p);
}

static void test_ring_growth_with_random_acks(void)
{
	ks_ptrack_t *p = ks_ptrack_new("t", 0);
	enum { N = 5000 };
	static int64_t order[N];
	int64_t i, acked_prefix = 0;
	static char done[N];
	unsigned seed = 42;

	for (i = 0; i < N; i++) {
		ks_ptrack_add(p, i * 2, 1);
		order[i] = i;
	}
	for (i = N - 1; i > 0; i--) {
		int64_t j = rand_r(&seed) % (i + 1), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	for (i = 0; i < N; i++) {
		ks_ptrack_ack(p, order[i] * 2);
		done[order[i]] = 1;
		while (acked_prefix < N && done[acked_prefix])
			acked_prefix++;
		/* Committable is exactly the first unacked message (or one past the last). */
		CU_ASSERT_EQUAL_FATAL(ks_ptrack_committable(p),
				      acked_prefix < N ? acked_prefix * 2 : (N - 1) * 2 + 1);
	}
	ks_ptrack_destroy(p);
}

/*
 * The metrics thread reads what a tracker publishes while the pipeline thread adds, acks and
 * grows its ring (256 entries first, doubled as needed). Built with --enable-tsan this fails
 * on a tracker whose readers look at the ring itself; in any build, the published committable
 * offset and last acked offset never go backwards.
 */
enum { RACE_N = 20000 };

typedef struct race {
	ks_ptrack_t *t;
	ks_offsets_t *o;
	int started, done;
	int backwards;    /* published values that went backwards */
	long reads;
} race;

static void *read_tracker(void *arg)
{
	race *r = arg;
	int64_t last_c = -1, last_a = -1;

	__atomic_store_n(&r->started, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&r->done, __ATOMIC_ACQUIRE)) {
		int64_t c = ks_ptrack_committable(r->t), a = ks_ptrack_last_acked(r->t);

		r->backwards += c < last_c || a < last_a;
		last_c = c;
		last_a = a;
		r->reads++;
	}
	return NULL;
}

static void wait_started(race *r)
{
	while (!__atomic_load_n(&r->started, __ATOMIC_ACQUIRE))
		;
}

/* Add RACE_N messages, acking each one 1000 behind, so the ring grows to hold 1000+. */
static void add_and_ack(ks_ptrack_t *t)
{
	int64_t i;

	for (i = 0; i < RACE_N; i++) {
		CU_ASSERT_EQUAL_FATAL(ks_ptrack_add(t, i, 1), 0);
		if (i >= 1000)
			ks_ptrack_ack(t, i - 1000);
	}
	for (i = RACE_N - 1000; i < RACE_N; i++)
		ks_ptrack_ack(t, i);
}

static void test_tracker_read_while_its_ring_grows(void)
{
	race r = { 0 };
	pthread_t th;

	r.t = ks_ptrack_new("t", 0);
	CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, read_tracker, &r), 0);
	wait_started(&r);
	add_and_ack(r.t);
	__atomic_store_n(&r.done, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	CU_ASSERT_EQUAL(r.backwards, 0);
	CU_ASSERT(r.reads > 0);
	CU_ASSERT_EQUAL(ks_ptrack_committable(r.t), RACE_N);
	CU_ASSERT_EQUAL(ks_ptrack_last_acked(r.t), RACE_N - 1);
	ks_ptrack_destroy(r.t);
}

static void *scrape(void *arg)
{
	race *r = arg;
	ks_partition_stat st[8];

	__atomic_store_n(&r->started, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&r->done, __ATOMIC_ACQUIRE)) {
		int n = ks_offsets_partition_stats(r->o, st, 8), i;

		for (i = 0; i < n; i++)
			r->backwards += st[i].last_acked < -1 || st[i].last_acked >= RACE_N ||
					strcmp(st[i].topic, "t") != 0 || st[i].lag != -1;
		r->reads++;
	}
	return NULL;
}

static void test_registry_scraped_through_assign_growth_and_revoke(void)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
	race r = { 0 };
	pthread_t th;
	int round;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r.o = ks_offsets_new(NULL));
	rd_kafka_topic_partition_list_add(l, "t", 0);
	rd_kafka_topic_partition_list_add(l, "t", 1);
	CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, scrape, &r), 0);
	wait_started(&r);
	for (round = 0; round < 3; round++) {
		CU_ASSERT_EQUAL_FATAL(ks_offsets_assign(r.o, l), 0);
		CU_ASSERT_EQUAL(ks_offsets_count(r.o), 2);
		add_and_ack(ks_offsets_find(r.o, "t", round % 2));
		ks_offsets_set_paused(r.o, round % 2);
		ks_offsets_revoke(r.o, l); /* nothing pending: the trackers are freed at once */
		CU_ASSERT_EQUAL(ks_offsets_count(r.o), 0);
	}
	__atomic_store_n(&r.done, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	CU_ASSERT_EQUAL(r.backwards, 0);
	rd_kafka_topic_partition_list_destroy(l);
	ks_offsets_destroy(r.o);
}

/*
 * A partition revoked while records of it are in flight: its tracker stays alive (retired) for
 * their acks, which arrive through the pointer each record holds, and is freed by the sweep after
 * the last one. Freeing it at the revoke, or at a sweep with acks pending, is a use-after-free
 * that AddressSanitizer reports here (scripts/test.sh runs the unit tests under it).
 */
static void test_revoke_with_pending_acks_keeps_the_tracker(void)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	ks_offsets_t *o = ks_offsets_new(NULL);
	ks_ptrack_t *p, *again;
	int64_t off;

	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	rd_kafka_topic_partition_list_add(l, "t", 0);
	CU_ASSERT_EQUAL_FATAL(ks_offsets_assign(o, l), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p = ks_offsets_find(o, "t", 0));
	for (off = 0; off < 3; off++)
		CU_ASSERT_EQUAL(ks_ptrack_add(p, off, 2), 0);
	ks_ptrack_ack(p, 0);
	ks_ptrack_ack(p, 0);
	ks_offsets_revoke(o, l);
	CU_ASSERT_EQUAL(ks_offsets_count(o), 0);
	CU_ASSERT_PTR_NULL(ks_offsets_find(o, "t", 0));

	/* The partition comes back while the old records are still in flight: a tracker of its own. */
	CU_ASSERT_EQUAL_FATAL(ks_offsets_assign(o, l), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(again = ks_offsets_find(o, "t", 0));
	CU_ASSERT_PTR_NOT_EQUAL(again, p);
	CU_ASSERT_EQUAL(ks_ptrack_pending_acks(again), 0);

	/* Acks of the old records, a sweep between them: the retired tracker is still there. */
	ks_ptrack_ack(p, 2);
	ks_ptrack_ack(p, 1);
	ks_offsets_sweep(o);
	CU_ASSERT_EQUAL(ks_ptrack_pending_acks(p), 2);
	CU_ASSERT_EQUAL(ks_ptrack_committable(p), 1);
	ks_ptrack_ack(p, 1);
	ks_offsets_revoke(o, l); /* the new tracker has nothing pending: freed at once */
	ks_ptrack_drop(p, 2);
	CU_ASSERT_EQUAL(ks_ptrack_pending_acks(p), 0);
	CU_ASSERT_EQUAL(ks_ptrack_committable(p), 2);
	ks_offsets_sweep(o); /* now it goes; the registry's destroy frees what is left otherwise */
	rd_kafka_topic_partition_list_destroy(l);
	ks_offsets_destroy(o);
}

/* A backfill's figures: done is the committable offset past the start, up to the end; a
 * partition at its end with nothing pending is finished even short of its end (markers); a
 * revoked one leaves done and total; an unmeasured one counts only as assigned. */
static void test_backfill_figures(void)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4), *one;
	ks_offsets_t *o = ks_offsets_new(NULL);
	ks_ptrack_t *p0, *p1, *p2;
	ks_backfill b;
	int64_t i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	for (i = 0; i < 3; i++)
		rd_kafka_topic_partition_list_add(l, "t", (int32_t)i);
	CU_ASSERT_EQUAL_FATAL(ks_offsets_assign(o, l), 0);
	p0 = ks_offsets_find(o, "t", 0);
	p1 = ks_offsets_find(o, "t", 1);
	p2 = ks_offsets_find(o, "t", 2);
	ks_ptrack_set_range(p0, 100, 200); /* committed at 100 before: 100 records to go */
	ks_ptrack_set_range(p1, 0, 50);
	ks_offsets_backfill(o, &b);
	CU_ASSERT_EQUAL(b.total, 150);
	CU_ASSERT_EQUAL(b.done, 0);
	CU_ASSERT_EQUAL(b.assigned, 3);
	CU_ASSERT_EQUAL(b.unmeasured, 1);
	CU_ASSERT_EQUAL(b.finished, 0);

	/* Taken but not acknowledged is not done. */
	for (i = 100; i < 160; i++)
		ks_ptrack_add(p0, i, 1);
	ks_offsets_backfill(o, &b);
	CU_ASSERT_EQUAL(b.done, 0);
	for (i = 159; i >= 100; i--)
		if (i != 120)
			ks_ptrack_ack(p0, i);
	ks_offsets_backfill(o, &b);
	CU_ASSERT_EQUAL(b.done, 20); /* 120 still out: nothing past it may be committed */
	ks_ptrack_ack(p0, 120);
	ks_offsets_backfill(o, &b);
	CU_ASSERT_EQUAL(b.done, 60);

	/* p1's last offsets are no records (transaction markers): at its end with nothing pending. */
	for (i = 0; i < 48; i++)
		ks_ptrack_add(p1, i, 0);
	ks_offsets_backfill(o, &b);
	CU_ASSERT_EQUAL(b.done, 60 + 48);
	CU_ASSERT_EQUAL(b.finished, 0);
	ks_ptrack_set_eof(p1, 1);
	ks_ptrack_set_eof(p2, 1);
	ks_offsets_backfill(o, &b);
	CU_ASSERT_EQUAL(b.done, 60 + 50);
	CU_ASSERT_EQUAL(b.finished, 2);

	/* p0 finishes by its offsets alone, before the consumer says it is at the end. */
	for (i = 160; i < 200; i++) {
		ks_ptrack_add(p0, i, 1);
		ks_ptrack_ack(p0, i);
	}
	ks_offsets_backfill(o, &b);
	CU_ASSERT_EQUAL(b.done, 150);
	CU_ASSERT_EQUAL(b.total, 150);
	CU_ASSERT_EQUAL(b.finished, 3);

	/* Revoked: its records leave both figures. */
	one = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(one, "t", 0);
	ks_offsets_revoke(o, one);
	ks_offsets_backfill(o, &b);
	CU_ASSERT_EQUAL(b.total, 50);
	CU_ASSERT_EQUAL(b.done, 50);
	CU_ASSERT_EQUAL(b.assigned, 2);
	rd_kafka_topic_partition_list_destroy(one);
	rd_kafka_topic_partition_list_destroy(l);
	ks_offsets_destroy(o);
}

/* Seconds behind on a fake wall clock: the oldest message not done, then the last one taken
 * while more is left to read, then 0. */
static void test_behind(void)
{
	const int64_t t0 = 1700000000000; /* ms since the epoch */
	ks_ptrack_t *p = ks_ptrack_new("t", 0);

	/* Nothing taken: nothing behind when nothing is left to read, unknown otherwise. */
	CU_ASSERT_EQUAL(ks_ptrack_behind_ms(p, 0, t0), 0);
	CU_ASSERT_EQUAL(ks_ptrack_behind_ms(p, -1, t0), -1); /* no fetch answered yet */
	CU_ASSERT_EQUAL(ks_ptrack_behind_ms(p, 5, t0), -1);

	/* Three messages an hour old, a minute apart; in flight, the oldest counts. */
	ks_ptrack_taken(p, t0 - 3600000);
	ks_ptrack_add(p, 10, 1);
	ks_ptrack_taken(p, t0 - 3540000);
	ks_ptrack_add(p, 11, 2);
	ks_ptrack_taken(p, t0 - 3480000);
	ks_ptrack_add(p, 12, 1);
	CU_ASSERT_EQUAL(ks_ptrack_behind_ms(p, 0, t0), 3600000);
	ks_ptrack_ack(p, 11);
	ks_ptrack_ack(p, 12);
	CU_ASSERT_EQUAL(ks_ptrack_behind_ms(p, 0, t0), 3600000); /* 10 still out */
	ks_ptrack_ack(p, 10);
	CU_ASSERT_EQUAL(ks_ptrack_behind_ms(p, 0, t0 + 1000), 3541000); /* 11 has one record out */
	ks_ptrack_ack(p, 11);
	/* Everything taken acknowledged: 0, unless more is left to read (then the last taken's age). */
	CU_ASSERT_EQUAL(ks_ptrack_behind_ms(p, 0, t0), 0);
	CU_ASSERT_EQUAL(ks_ptrack_behind_ms(p, -1, t0), 0);
	CU_ASSERT_EQUAL(ks_ptrack_behind_ms(p, 7, t0), 3480000);
	ks_ptrack_set_eof(p, 1);
	CU_ASSERT_EQUAL(ks_ptrack_behind_ms(p, 7, t0), 0); /* the consumer is at the end: markers */

	/* A message without a timestamp in front: the last one taken with one stands in. */
	ks_ptrack_taken(p, -1);
	ks_ptrack_add(p, 13, 1);
	CU_ASSERT_EQUAL(ks_ptrack_behind_ms(p, 0, t0), 3480000);
	ks_ptrack_taken(p, t0 - 1000);
	ks_ptrack_add(p, 14, 1);
	CU_ASSERT_EQUAL(ks_ptrack_behind_ms(p, 0, t0), 1000); /* the last taken */
	ks_ptrack_ack(p, 13);
	CU_ASSERT_EQUAL(ks_ptrack_behind_ms(p, 0, t0 + 500), 1500);

	/* A timestamp ahead of this clock is never negative; for a message tracked without a
	 * timestamp, the last one taken stands in. */
	ks_ptrack_taken(p, t0 + 60000);
	ks_ptrack_add(p, 15, 1);
	ks_ptrack_ack(p, 14);
	CU_ASSERT_EQUAL(ks_ptrack_behind_ms(p, 0, t0), 0);
	ks_ptrack_ack(p, 15);
	ks_ptrack_add(p, 16, 1);
	CU_ASSERT_EQUAL(ks_ptrack_behind_ms(p, 0, t0 + 61000), 1000); /* no own timestamp: the last taken's */
	ks_ptrack_ack(p, 16);
	CU_ASSERT_EQUAL(ks_ptrack_behind_ms(p, 0, t0 + 61000), 0);
	ks_ptrack_destroy(p);
}

/* The registry's view: the most behind partition, in the stats and the backfill's figures. */
static void test_registry_behind(void)
{
	ks_offsets_t *o = ks_offsets_new(NULL);
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(2);
	ks_partition_stat st[2];
	int64_t now = ks_wall_ms();
	ks_backfill b;
	ks_ptrack_t *p0, *p1;

	CU_ASSERT_EQUAL(ks_offsets_behind_ms(o, now), -1); /* nothing assigned */
	rd_kafka_topic_partition_list_add(l, "t", 0);
	rd_kafka_topic_partition_list_add(l, "t", 1);
	CU_ASSERT_EQUAL_FATAL(ks_offsets_assign(o, l), 0);
	p0 = ks_offsets_find(o, "t", 0);
	p1 = ks_offsets_find(o, "t", 1);
	ks_ptrack_taken(p0, now - 5000);
	ks_ptrack_add(p0, 0, 1);
	ks_ptrack_taken(p1, now - 90000);
	ks_ptrack_add(p1, 0, 1);
	CU_ASSERT_EQUAL(ks_offsets_behind_ms(o, now), 90000);
	CU_ASSERT_EQUAL_FATAL(ks_offsets_partition_stats(o, st, 2), 2);
	CU_ASSERT(st[0].behind_ms >= 5000 && st[0].behind_ms < 65000);
	CU_ASSERT(st[1].behind_ms >= 90000 && st[1].behind_ms < 150000);
	ks_offsets_backfill(o, &b);
	CU_ASSERT(b.behind_known && b.behind_ms >= 90000);
	ks_ptrack_ack(p1, 0);
	ks_ptrack_ack(p0, 0);
	CU_ASSERT_EQUAL(ks_offsets_behind_ms(o, now), 0); /* no consumer: nothing known left to read */
	CU_ASSERT_EQUAL_FATAL(ks_offsets_partition_stats(o, st, 2), 2);
	CU_ASSERT_EQUAL(st[0].behind_ms, 0);
	CU_ASSERT_EQUAL(st[1].behind_ms, 0);
	rd_kafka_topic_partition_list_destroy(l);
	ks_offsets_destroy(o);
}

int main(void)
{
	static const tu_test tests[] = {
		{ "in order", test_in_order },
		{ "out of order never passes a pending offset", test_out_of_order_never_passes_a_pending_offset },
		{ "gaps, zero- and two-record messages", test_gaps_zero_and_two_record_messages },
		{ "done messages without pending records", test_done_messages_without_pending },
		{ "drop keeps the offset uncommittable", test_drop_keeps_offset_uncommittable },
		{ "ring growth with random acks", test_ring_growth_with_random_acks },
		{ "tracker read while its ring grows", test_tracker_read_while_its_ring_grows },
		{ "registry scraped through assign, growth and revoke", test_registry_scraped_through_assign_growth_and_revoke },
		{ "backfill figures", test_backfill_figures },
		{ "seconds behind", test_behind },
		{ "seconds behind over the registry", test_registry_behind },
		{ "revoke with acks pending keeps the tracker until the last", test_revoke_with_pending_acks_keeps_the_tracker },
		{ NULL, NULL },
	};

	return tu_main("offsets", tests);
}
