/* A backfill's progress: the rate, the time left and the text, on a fake clock. */
#include "progress.h"
#include "testutil.h"

static ks_backfill fig(int64_t done, int64_t total, int finished, int assigned)
{
	ks_backfill b = { done, total, finished, assigned, 0, 0, 0 };

	return b;
}

static void check_text(const ks_progress *pr, const char *want)
{
	char buf[256];

	ks_progress_format(pr, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, want);
	if (strcmp(buf, want))
		fprintf(stderr, "\n  got  '%s'\n  want '%s'\n", buf, want);
}

static void test_nothing_known_yet(void)
{
	ks_progress pr;
	ks_backfill b = fig(0, 0, 0, 0);

	ks_progress_init(&pr);
	CU_ASSERT(ks_progress_due(&pr, 0));
	ks_progress_update(&pr, &b, 1000);
	CU_ASSERT_EQUAL(ks_progress_rate(&pr), 0.0);
	check_text(&pr, "waiting for partitions");
}

/* 1,000 records a second, sampled every 250 ms: the rate, the time left, the text. */
static void test_steady_rate_and_eta(void)
{
	ks_progress pr;
	int64_t t = 5000, done = 0;
	ks_backfill b;

	ks_progress_init(&pr);
	for (; done <= 4000; done += 250, t += 250) {
		b = fig(done, 10000, 1, 4);
		CU_ASSERT(ks_progress_due(&pr, t));
		ks_progress_update(&pr, &b, t);
		CU_ASSERT(!ks_progress_due(&pr, t + 249));
	}
	CU_ASSERT_DOUBLE_EQUAL(ks_progress_rate(&pr), 1000.0, 1e-9);
	CU_ASSERT_EQUAL(ks_progress_eta_s(&pr), 6);
	check_text(&pr, "4000 of 10000 records (40.0 %), 1000 records/s, ETA 0:06, 1 of 4 partitions finished");
}

/* The percentage is rounded down: 100.0 % only once everything is done; ETA 0:00 then. */
static void test_percentage_rounded_down(void)
{
	static const struct {
		int64_t done, total;
		int finished, assigned;
		const char *want;
	} cases[] = {
		{ 9999, 10000, 3, 4, "9999 of 10000 records (99.9 %), 0 records/s, ETA --, 3 of 4 partitions finished" },
		{ 1, 3, 0, 1, "1 of 3 records (33.3 %), 0 records/s, ETA --, 0 of 1 partition finished" },
		{ 10000, 10000, 4, 4, "10000 of 10000 records (100.0 %), 0 records/s, ETA 0:00, 4 of 4 partitions finished" },
		/* Nothing to do on the partitions assigned: done at once. */
		{ 0, 0, 2, 2, "0 of 0 records (100.0 %), 0 records/s, ETA 0:00, 2 of 2 partitions finished" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ks_progress pr;
		ks_backfill b = fig(cases[i].done, cases[i].total, cases[i].finished, cases[i].assigned);

		ks_progress_init(&pr);
		ks_progress_update(&pr, &b, 0);
		check_text(&pr, cases[i].want);
	}
}

/* A revoked partition takes its done and total away without slowing the rate; one assigned
 * later adds its total and starts at 0. */
static void test_rebalance_moves_total_not_rate(void)
{
	ks_progress pr;
	ks_backfill b;

	ks_progress_init(&pr);
	b = fig(0, 8000, 0, 4);
	ks_progress_update(&pr, &b, 0);
	b = fig(2000, 8000, 0, 4);
	ks_progress_update(&pr, &b, 1000);
	CU_ASSERT_DOUBLE_EQUAL(ks_progress_rate(&pr), 2000.0, 1e-9);
	/* Two partitions (1,000 done of 4,000) revoked while 500 more were done on the others. */
	b = fig(1500, 4000, 0, 2);
	ks_progress_update(&pr, &b, 2000);
	CU_ASSERT_DOUBLE_EQUAL(ks_progress_rate(&pr), 1000.0, 1e-9); /* 2,000 counted over 2 s */
	/* A partition of 3,000 assigned: nothing done on it yet. */
	b = fig(2000, 7000, 0, 3);
	ks_progress_update(&pr, &b, 3000);
	CU_ASSERT_DOUBLE_EQUAL(ks_progress_rate(&pr), 2500.0 / 3.0, 1e-9);
	CU_ASSERT_EQUAL(ks_progress_eta_s(&pr), 6); /* 5,000 left at 833.3/s: 6.0 s, rounded up */
	check_text(&pr, "2000 of 7000 records (28.5 %), 833 records/s, ETA 0:06, 0 of 3 partitions finished");
}

/* The rate is over the last KS_PROGRESS_WINDOW_MS: a stall brings it to 0 and the ETA to "--". */
static void test_rate_window_forgets_old_progress(void)
{
	ks_progress pr;
	int64_t t;
	ks_backfill b;

	ks_progress_init(&pr);
	b = fig(0, 1000, 0, 1);
	ks_progress_update(&pr, &b, 0);
	b = fig(500, 1000, 0, 1);
	ks_progress_update(&pr, &b, 1000);
	CU_ASSERT_DOUBLE_EQUAL(ks_progress_rate(&pr), 500.0, 1e-9);
	for (t = 1250; t <= 1000 + KS_PROGRESS_WINDOW_MS + 250; t += 250)
		ks_progress_update(&pr, &b, t);
	CU_ASSERT_EQUAL(ks_progress_rate(&pr), 0.0);
	CU_ASSERT_EQUAL(ks_progress_eta_s(&pr), -1);
	/* Progress again: only the window's counts. */
	b = fig(600, 1000, 0, 1);
	ks_progress_update(&pr, &b, t);
	CU_ASSERT_DOUBLE_EQUAL(ks_progress_rate(&pr), 100.0 * 1000.0 / (double)KS_PROGRESS_WINDOW_MS, 1e-6);
}

/* Samples far apart (only the periodic log line takes them): the rate is since the last one. */
/* The wait for an assignment does not count in the rate. */
static void test_wait_for_the_group_not_in_the_rate(void)
{
	ks_progress pr;
	ks_backfill b = fig(0, 0, 0, 0);
	int64_t t;

	ks_progress_init(&pr);
	for (t = 0; t <= 3000; t += 250)
		ks_progress_update(&pr, &b, t);
	b = fig(0, 1000, 0, 2);
	ks_progress_update(&pr, &b, 3250);
	b = fig(400, 1000, 0, 2);
	ks_progress_update(&pr, &b, 3750);
	CU_ASSERT_DOUBLE_EQUAL(ks_progress_rate(&pr), 800.0, 1e-9);
}

static void test_rare_samples(void)
{
	ks_progress pr;
	ks_backfill b;

	ks_progress_init(&pr);
	b = fig(0, 1000000, 0, 8);
	ks_progress_update(&pr, &b, 0);
	b = fig(60000, 1000000, 0, 8);
	ks_progress_update(&pr, &b, 60000);
	b = fig(180000, 1000000, 2, 8);
	ks_progress_update(&pr, &b, 120000);
	CU_ASSERT_DOUBLE_EQUAL(ks_progress_rate(&pr), 2000.0, 1e-9);
	CU_ASSERT_EQUAL(ks_progress_eta_s(&pr), 410);
	check_text(&pr, "180000 of 1000000 records (18.0 %), 2000 records/s, ETA 6:50, 2 of 8 partitions finished");
	/* Updates in between samples count for the rate at once. */
	b = fig(180100, 1000000, 2, 8);
	ks_progress_update(&pr, &b, 120100);
	CU_ASSERT_DOUBLE_EQUAL(ks_progress_rate(&pr), 100.0 * 1000.0 / 100.0, 1e-9);
}

static void test_hours_and_unmeasured(void)
{
	ks_progress pr;
	ks_backfill b = { 0, 36000000, 0, 3, 1, 0, 0 };

	ks_progress_init(&pr);
	ks_progress_update(&pr, &b, 0);
	b.done = 1000;
	ks_progress_update(&pr, &b, 1000);
	CU_ASSERT_EQUAL(ks_progress_eta_s(&pr), 35999);
	check_text(&pr, "1000 of 36000000 records (0.0 %), 1000 records/s, ETA 9:59:59, 0 of 3 partitions finished, "
			"1 not measured");
	/* Unmeasured partitions keep the total from claiming 100 %. */
	ks_progress_init(&pr);
	b = (ks_backfill){ 0, 0, 0, 1, 1, 0, 0 };
	ks_progress_update(&pr, &b, 0);
	check_text(&pr, "0 of 0 records (0.0 %), 0 records/s, ETA --, 0 of 1 partition finished, 1 not measured");
}

static void test_seconds_behind(void)
{
	static const struct { int64_t ms; const char *want; } cases[] = {
		{ 0, "0.0 s" }, { 449, "0.4 s" }, { 9999, "9.9 s" }, { 10000, "10 s" }, { 59999, "59 s" },
		{ 60000, "1:00" }, { 3599999, "59:59" }, { 3600000, "1:00:00" }, { 90061000, "25:01:01" }, { -1, "--" },
	};
	ks_progress pr;
	ks_backfill b = fig(12, 100, 0, 1);
	char buf[32];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ks_progress_behind_text(cases[i].ms, buf, sizeof(buf));
		CU_ASSERT_STRING_EQUAL(buf, cases[i].want);
	}
	/* Known: the last figure of the line; not known: left out. */
	ks_progress_init(&pr);
	b.behind_known = 1;
	b.behind_ms = 3723000;
	ks_progress_update(&pr, &b, 0);
	check_text(&pr, "12 of 100 records (12.0 %), 0 records/s, ETA --, 0 of 1 partition finished, 1:02:03 behind");
	b.behind_known = 0;
	ks_progress_update(&pr, &b, 100);
	check_text(&pr, "12 of 100 records (12.0 %), 0 records/s, ETA --, 0 of 1 partition finished");
}

static void test_truncated_to_the_buffer(void)
{
	ks_progress pr;
	ks_backfill b = fig(12, 100, 0, 1);
	char buf[9];

	ks_progress_init(&pr);
	ks_progress_update(&pr, &b, 0);
	CU_ASSERT_EQUAL(ks_progress_format(&pr, buf, sizeof(buf)), 8);
	CU_ASSERT_STRING_EQUAL(buf, "12 of 10");
	CU_ASSERT_EQUAL(ks_progress_format(&pr, buf, 0), 0);
}

int main(void)
{
	static const tu_test tests[] = {
		{ "nothing known yet", test_nothing_known_yet },
		{ "steady rate and ETA", test_steady_rate_and_eta },
		{ "percentage rounded down", test_percentage_rounded_down },
		{ "a rebalance moves the total, not the rate", test_rebalance_moves_total_not_rate },
		{ "the rate window forgets old progress", test_rate_window_forgets_old_progress },
		{ "the wait for the group is not in the rate", test_wait_for_the_group_not_in_the_rate },
		{ "rare samples", test_rare_samples },
		{ "hours and unmeasured partitions", test_hours_and_unmeasured },
		{ "seconds behind", test_seconds_behind },
		{ "truncated to the buffer", test_truncated_to_the_buffer },
		{ NULL, NULL },
	};

	return tu_main("progress", tests);
}
