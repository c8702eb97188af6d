/* Offsets: what may be committed when acks arrive in any order. */
#include "offsets.h"
#include "testutil.h"

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

int main(void)
{
	static const tu_test tests[] = {
		{ "in order", test_in_order },
		{ "out of order never passes a pending offset", test_out_of_order_never_passes_a_pending_offset },
		{ "gaps, zero- and two-record messages", test_gaps_zero_and_two_record_messages },
		{ "done messages without pending records", test_done_messages_without_pending },
		{ "drop keeps the offset uncommittable", test_drop_keeps_offset_uncommittable },
		{ "ring growth with random acks", test_ring_growth_with_random_acks },
		{ NULL, NULL },
	};

	return tu_main("offsets", tests);
}
