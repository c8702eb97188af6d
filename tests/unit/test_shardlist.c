/*
 * The writer's shard listing layer alone (shardlist.h), on the test's clock: when listings are
 * due (periodic, asked for, without a map), the backoff while they fail and its jitter, a listing
 * page by page into a map, the ranges of every shard a map named (also once closed), and the
 * decisions for an entry that landed elsewhere than predicted.
 */
#include <string.h>

#include "shardlist.h"
#include "testutil.h"

/* A ListShards page of shards @p ids (count @p n) splitting the hash keys evenly, @p next or none. */
static void page(ks_buf *b, const char *const *ids, int n, int of, int first, const char *next)
{
	ks_u128 step = KS_U128_MAX / (ks_u128)of;
	int i;

	ks_buf_reset(b);
	ks_buf_puts(b, "{\"Shards\":[");
	for (i = 0; i < n; i++) {
		char a[KS_U128_STRLEN], e[KS_U128_STRLEN];
		int at = first + i;

		ks_u128_format(step * (ks_u128)at, a);
		ks_u128_format(at == of - 1 ? KS_U128_MAX : step * (ks_u128)(at + 1) - 1, e);
		ks_buf_printf(b, "%s{\"ShardId\":\"%s\",\"HashKeyRange\":{\"StartingHashKey\":\"%s\",\"EndingHashKey\":\"%s\"},"
			      "\"SequenceNumberRange\":{\"StartingSequenceNumber\":\"1\"}}", i ? "," : "", ids[i], a, e);
	}
	ks_buf_printf(b, "]%s%s%s}", next ? ",\"NextToken\":\"" : "", next ? next : "", next ? "\"" : "");
}

static ks_shardlist_t *new_list(int64_t refresh_ms, int64_t now)
{
	ks_shardlist_opts o = { "s1", refresh_ms, 60000, 60000, 42 };
	ks_shardlist_t *l = ks_shardlist_new(&o, now);

	CU_ASSERT_PTR_NOT_NULL_FATAL(l);
	return l;
}

static void test_schedule(void)
{
	static const char *const ids[] = { "shardId-0", "shardId-1" };
	ks_shardlist_t *l = new_list(5000, 0);
	ks_shardmap_t *m;
	ks_buf b;

	ks_buf_init(&b, 0);
	/* Without a map: the first try a minute (relist) later. */
	CU_ASSERT_FALSE(ks_shardlist_due(l, 59999));
	CU_ASSERT_TRUE(ks_shardlist_due(l, 60000));
	CU_ASSERT_EQUAL(ks_shardlist_wake(l), 60000);
	/* A listing of two pages. */
	CU_ASSERT_EQUAL(ks_shardlist_begin(l, 60000), 0);
	CU_ASSERT_PTR_NULL(ks_shardlist_token(l));
	CU_ASSERT_EQUAL(ks_shardlist_wake(l), INT64_MAX); /* under way */
	page(&b, ids, 1, 2, 0, "tok");
	CU_ASSERT_EQUAL(ks_shardlist_answer(l, 200, b.data, b.len, NULL, 60010), KS_LIST_NEXT);
	CU_ASSERT_STRING_EQUAL(ks_shardlist_token(l), "tok");
	page(&b, ids + 1, 1, 2, 1, NULL);
	CU_ASSERT_EQUAL(ks_shardlist_answer(l, 200, b.data, b.len, NULL, 60020), KS_LIST_DONE);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m = ks_shardlist_take_map(l));
	CU_ASSERT_EQUAL(ks_shardmap_count(m), 2);
	CU_ASSERT_PTR_NULL(ks_shardlist_take_map(l));
	ks_shardmap_destroy(m);
	/* With a map: every shards.refresh.ms. */
	CU_ASSERT_EQUAL(ks_shardlist_wake(l), 65020);
	/* An answer that named another shard: soon, but not within a second of the last start. */
	CU_ASSERT_EQUAL(ks_shardlist_landed(l, "shardId-0", "shardId-9", 0, 1, NULL, NULL), KS_LAND_ACK);
	CU_ASSERT_TRUE(ks_shardlist_stale(l));
	CU_ASSERT_EQUAL(ks_shardlist_wake(l), 61000);
	ks_shardlist_destroy(l);
	ks_buf_clean(&b);
}

/* Listings failing for an hour: the waits double from a second to the maximum, each at least half
 * of its step (equal jitter), one try at a time; a success ends the outage. */
static void test_backoff(void)
{
	static const char *const ids[] = { "shardId-0" };
	static const char fail[] = "{\"__type\":\"InternalFailure\",\"message\":\"try again\"}";
	ks_shardlist_t *l = new_list(0, 0);
	int64_t now = 60000, gap;
	int tries = 0;
	ks_buf b;

	ks_buf_init(&b, 0);
	ks_shardlist_landed(l, "a", "b", 0, 1, NULL, NULL); /* asked for */
	while (now < 3600000) {
		int64_t at = ks_shardlist_wake(l), step;

		now = at > now ? at : now;
		CU_ASSERT_TRUE(ks_shardlist_due(l, now));
		CU_ASSERT_EQUAL(ks_shardlist_begin(l, now), 0);
		CU_ASSERT_FALSE(ks_shardlist_due(l, now)); /* one at a time */
		CU_ASSERT_EQUAL(ks_shardlist_answer(l, 503, fail, strlen(fail), NULL, now), KS_LIST_FAILED);
		tries++;
		CU_ASSERT_EQUAL(ks_shardlist_failures(l), tries);
		step = (int64_t)1000 << (tries - 1 < 6 ? tries - 1 : 6);
		if (step > 60000)
			step = 60000;
		gap = ks_shardlist_wake(l) - now;
		CU_ASSERT_TRUE(gap >= step / 2 && gap <= step);
	}
	/* 1, 2, 4 ... 32 s, then 30 to 60 s each: 60 to 120 tries in the hour. */
	CU_ASSERT_TRUE(tries >= 60 && tries <= 125);
	now = ks_shardlist_wake(l);
	CU_ASSERT_EQUAL(ks_shardlist_begin(l, now), 0);
	page(&b, ids, 1, 1, 0, NULL);
	CU_ASSERT_EQUAL(ks_shardlist_answer(l, 200, b.data, b.len, NULL, now), KS_LIST_DONE);
	ks_shardmap_destroy(ks_shardlist_take_map(l));
	CU_ASSERT_EQUAL(ks_shardlist_failures(l), 0);
	CU_ASSERT_FALSE(ks_shardlist_stale(l));
	CU_ASSERT_EQUAL(ks_shardlist_wake(l), INT64_MAX); /* shards.refresh.ms=0: only when asked */
	/* A snapshot with a gap (mid-reshard) is a failure too. */
	ks_shardlist_landed(l, "a", "b", 0, 1, NULL, NULL);
	now += 1000;
	CU_ASSERT_EQUAL(ks_shardlist_begin(l, now), 0);
	page(&b, ids, 1, 2, 0, NULL); /* the first half only */
	CU_ASSERT_EQUAL(ks_shardlist_answer(l, 200, b.data, b.len, NULL, now), KS_LIST_FAILED);
	CU_ASSERT_EQUAL(ks_shardlist_failures(l), 1);
	ks_shardlist_destroy(l);
	ks_buf_clean(&b);
}

/* Ranges of every shard a map named, 1,000 shards and then their 2,000 children: the parents are
 * known after the children's map is used; unknown shards hold while a listing can tell, not once
 * listings fail. */
static void test_ranges_and_landings(void)
{
	static char names[3000][32];
	const char *ids[2000];
	ks_shardlist_t *l = new_list(0, 0);
	ks_shardmap_t *m;
	ks_u128 s, e, step = KS_U128_MAX / 1000;
	ks_buf b;
	char next[8];
	ks_errbuf err;
	int i;

	ks_buf_init(&b, 0);
	for (i = 0; i < 3000; i++)
		snprintf(names[i], sizeof(names[i]), "shardId-%06d", i);
	for (i = 0; i < 1000; i++)
		ids[i] = names[i];
	page(&b, ids, 1000, 1000, 0, NULL);
	m = ks_shardmap_new();
	CU_ASSERT_EQUAL(ks_shardmap_add_page(m, b.data, b.len, next, sizeof(next), &err), 0);
	CU_ASSERT_EQUAL(ks_shardmap_finish(m, &err), 0);
	CU_ASSERT_EQUAL(ks_shardlist_use(l, m, 0), 0);
	ks_shardmap_destroy(m);
	for (i = 0; i < 2000; i++)
		ids[i] = names[1000 + i];
	page(&b, ids, 2000, 2000, 0, NULL);
	m = ks_shardmap_new();
	CU_ASSERT_EQUAL(ks_shardmap_add_page(m, b.data, b.len, next, sizeof(next), &err), 0);
	CU_ASSERT_EQUAL(ks_shardmap_finish(m, &err), 0);
	CU_ASSERT_EQUAL(ks_shardlist_use(l, m, 0), 0);
	ks_shardmap_destroy(m);
	for (i = 0; i < 1000; i++) {
		CU_ASSERT_TRUE_FATAL(ks_shardlist_range(l, names[i], &s, &e));
		CU_ASSERT_TRUE(s == step * (ks_u128)i);
	}
	CU_ASSERT_TRUE(ks_shardlist_range(l, names[2999], &s, &e) && e == KS_U128_MAX);
	CU_ASSERT_FALSE(ks_shardlist_range(l, "shardId-x", &s, &e));
	/* Decisions. */
	CU_ASSERT_EQUAL(ks_shardlist_landed(l, names[1], names[1], 1, 1, &s, &e), KS_LAND_ACK);
	CU_ASSERT_EQUAL(ks_shardlist_landed(l, names[1], "", 1, 1, &s, &e), KS_LAND_ACK);
	CU_ASSERT_FALSE(ks_shardlist_stale(l));
	CU_ASSERT_EQUAL(ks_shardlist_landed(l, names[1], names[1002], 1, 1, &s, &e), KS_LAND_RANGE);
	CU_ASSERT_TRUE(s == (KS_U128_MAX / 2000) * 2); /* the child's range */
	CU_ASSERT_TRUE(ks_shardlist_stale(l));
	CU_ASSERT_EQUAL(ks_shardlist_landed(l, names[1], "shardId-x", 1, 1, &s, &e), KS_LAND_HOLD);
	CU_ASSERT_EQUAL(ks_shardlist_landed(l, names[1], "shardId-x", 1, 0, &s, &e), KS_LAND_OTHER_KEYS);
	CU_ASSERT_EQUAL(ks_shardlist_begin(l, 5000), 0);
	ks_shardlist_not_sent(l, "no credentials", 5000);
	CU_ASSERT_EQUAL(ks_shardlist_landed(l, names[1], "shardId-x", 1, 1, &s, &e), KS_LAND_OTHER_KEYS);
	ks_shardlist_destroy(l);
	ks_buf_clean(&b);
}

int main(void)
{
	static const tu_test tests[] = {
		{ "when listings are due", test_schedule },
		{ "failed listings back off with jitter", test_backoff },
		{ "ranges of every shard named, landing decisions", test_ranges_and_landings },
		{ NULL, NULL },
	};

	return tu_main("shard listing", tests);
}
