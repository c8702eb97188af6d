/*
 * A shard's adaptive rate (shardrate.h) on a clock of the test's own: cut by the share throttled
 * (bounded, once per interval), raised quickly back toward the rate before the cut and slowly
 * beyond it, never above the ceiling nor below the floor; and a bucket following a new rate
 * (ratelimit.h).
 */
#include <math.h>

#include "ratelimit.h"
#include "shardrate.h"
#include "testutil.h"

#define NEAR(a, b) CU_ASSERT_TRUE(fabs((a) - (b)) < 1e-6)

static void test_cut_by_the_share_throttled(void)
{
	ks_shardrate r;

	ks_shardrate_init(&r, 1000, 0);
	NEAR(r.rate, 1000);
	/* A stray throttle costs little; one answer mostly throttled, at most KS_SHARDRATE_CUT_MAX. */
	CU_ASSERT_EQUAL(ks_shardrate_throttled(&r, 0.001, 0), 1);
	NEAR(r.rate, 1000 * (1 - KS_SHARDRATE_CUT_MIN));
	CU_ASSERT_EQUAL(ks_shardrate_throttled(&r, 0.9, KS_SHARDRATE_CUT_INTERVAL_MS), 1);
	NEAR(r.rate, 1000 * (1 - KS_SHARDRATE_CUT_MIN) * (1 - KS_SHARDRATE_CUT_MAX));
	ks_shardrate_init(&r, 1000, 0);
	CU_ASSERT_EQUAL(ks_shardrate_throttled(&r, 0.2, 0), 1);
	NEAR(r.rate, 800);
}

static void test_one_cut_per_interval(void)
{
	ks_shardrate r;
	int i;

	ks_shardrate_init(&r, 1000, 0);
	CU_ASSERT_EQUAL(ks_shardrate_throttled(&r, 0.3, 100), 1);
	/* The answers to what was sent before the cut do not cut again. */
	for (i = 0; i < 50; i++)
		CU_ASSERT_EQUAL(ks_shardrate_throttled(&r, 1.0, 100 + i * 10), 0);
	NEAR(r.rate, 700);
	CU_ASSERT_EQUAL(ks_shardrate_throttled(&r, 0.3, 100 + KS_SHARDRATE_CUT_INTERVAL_MS), 1);
	NEAR(r.rate, 490);
}

static void test_floor(void)
{
	ks_shardrate r;
	int i;

	ks_shardrate_init(&r, 1000, 0);
	for (i = 0; i < 100; i++)
		ks_shardrate_throttled(&r, 1.0, (int64_t)i * KS_SHARDRATE_CUT_INTERVAL_MS);
	NEAR(r.rate, 1000 * KS_SHARDRATE_FLOOR);
	CU_ASSERT_TRUE(r.rate > 0);
}

static void test_raised_back_to_the_ceiling(void)
{
	ks_shardrate r;
	int64_t t = 0;

	ks_shardrate_init(&r, 1000, 0);
	ks_shardrate_throttled(&r, 0.3, 0);
	NEAR(r.rate, 700);
	/* Quickly back up to KS_SHARDRATE_RECOVER of the rate before the cut: 50 per second. */
	for (t = 100; t <= 1000; t += 100)
		CU_ASSERT_EQUAL(ks_shardrate_accepted(&r, t), 1);
	NEAR(r.rate, 700 + 1000 * KS_SHARDRATE_RAISE_FAST);
	for (; t <= 4000; t += 100)
		ks_shardrate_accepted(&r, t);
	NEAR(r.rate, 1000 * KS_SHARDRATE_RECOVER);
	/* Then slowly: 10 per second. */
	ks_shardrate_accepted(&r, t + 999);
	CU_ASSERT_TRUE(r.rate < 1000 * KS_SHARDRATE_RECOVER + 1000 * KS_SHARDRATE_RAISE + 1e-6);
	CU_ASSERT_TRUE(r.rate > 1000 * KS_SHARDRATE_RECOVER);
	/* Never above the ceiling. */
	for (t += 1000; t < 60000; t += 100)
		ks_shardrate_accepted(&r, t);
	NEAR(r.rate, 1000);
	CU_ASSERT_EQUAL(ks_shardrate_accepted(&r, t + 100), 0);
}

static void test_idle_is_not_rewarded(void)
{
	ks_shardrate r;

	ks_shardrate_init(&r, 1000, 0);
	ks_shardrate_throttled(&r, 0.3, 0);
	/* Ten idle minutes, then one accepted entry: one second's raise at most. */
	ks_shardrate_accepted(&r, 600000);
	NEAR(r.rate, 700 + 1000 * KS_SHARDRATE_RAISE_FAST);
}

static void test_bucket_follows_the_rate(void)
{
	ks_bucket b;

	ks_bucket_init(&b, 1000, 0);
	b.reserve = 100; /* 0.1 s */
	ks_bucket_set_rate(&b, 500, 0);
	NEAR(b.rate, 500);
	NEAR(b.cap, 500);
	NEAR(b.tokens, 500); /* no more than the new second holds */
	NEAR(b.reserve, 50);
	b.tokens = 0;
	/* What was refilled at the old rate is kept. */
	ks_bucket_set_rate(&b, 1000, 100);
	NEAR(b.tokens, 50);
	NEAR(b.cap, 1000);
}

int main(void)
{
	static const tu_test tests[] = {
		{ "a cut takes the share throttled, within its bounds", test_cut_by_the_share_throttled },
		{ "one cut per interval", test_one_cut_per_interval },
		{ "the rate never goes below its floor", test_floor },
		{ "accepted traffic raises the rate back to the ceiling", test_raised_back_to_the_ceiling },
		{ "an idle shard is not raised for its idleness", test_idle_is_not_rewarded },
		{ "a bucket follows its new rate", test_bucket_follows_the_rate },
		{ NULL, NULL },
	};

	return tu_main("adaptive shard rates", tests);
}
