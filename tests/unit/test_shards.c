/*
 * Shards: the shard map against tests/data/shardmap/<case>/ (ListShards pages, and the shard each
 * key lands in as computed by hashlib's MD5 in tests/fixtures/make_shardmap_cases.py, or the
 * error the map must give), and the per-shard token buckets on a clock of the test's own.
 */
#include "metrics.h"
#include "ratelimit.h"
#include "shardmap.h"
#include "shards.h"
#include "testutil.h"

static int cases;

/* The map of a case folder: every pageN.json in turn, following NextToken as a client would. */
static int load_map(const char *dir, const char *name, ks_shardmap_t *m, ks_errbuf *err)
{
	char file[32], next[128];
	int page, rc = 0;

	for (page = 1;; page++) {
		size_t len;
		char *json;

		snprintf(file, sizeof(file), "page%d.json", page);
		if (!(json = tu_read_in(dir, file, &len)))
			break;
		rc = ks_shardmap_add_page(m, json, len, next, sizeof(next), err);
		free(json);
		if (rc)
			return rc;
		if (!next[0] && page == 1) {
			char *second = tu_read_in(dir, "page2.json", NULL);

			if (second) {
				fprintf(stderr, "\ncase %s: page 1 has no NextToken but a page 2 exists\n", name);
				CU_FAIL("NextToken lost");
			}
			free(second);
		}
		if (!next[0])
			break;
	}
	return ks_shardmap_finish(m, err);
}

static void check_case(const char *dir, const char *name)
{
	ks_shardmap_t *m = ks_shardmap_new();
	char *want_err = tu_read_in(dir, "error", NULL), *keys = tu_read_in(dir, "keys", NULL), *line, *save = NULL;
	ks_errbuf err;
	int rc;

	cases++;
	ks_errbuf_clear(&err);
	rc = load_map(dir, name, m, &err);
	if (want_err) {
		tu_chomp(want_err);
		CU_ASSERT_NOT_EQUAL(rc, 0);
		if (!strstr(err.text, want_err)) {
			fprintf(stderr, "\ncase %s: error '%s', want it to say '%s'\n", name, err.text, want_err);
			CU_FAIL("error text");
		}
	} else {
		if (rc)
			fprintf(stderr, "\ncase %s: %s\n", name, err.text);
		CU_ASSERT_EQUAL_FATAL(rc, 0);
		for (line = strtok_r(keys, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			char *tab = strchr(line, '\t');
			ks_u128 h;
			int i;

			CU_ASSERT_PTR_NOT_NULL_FATAL(tab);
			*tab = '\0';
			if (line[0] == '#') {
				CU_ASSERT_EQUAL_FATAL(ks_u128_parse(line + 1, strlen(line + 1), &h), 0);
			} else {
				h = ks_hash_key(line, strlen(line));
			}
			i = ks_shardmap_find(m, h);
			CU_ASSERT_FATAL(i >= 0);
			if (strcmp(ks_shardmap_shard(m, i)->id, tab + 1) != 0) {
				fprintf(stderr, "\ncase %s: key %s predicted in %s, Kinesis routes it to %s\n", name, line,
					ks_shardmap_shard(m, i)->id, tab + 1);
				CU_FAIL("prediction differs");
			}
			CU_ASSERT_EQUAL(ks_shardmap_index_of(m, tab + 1), i);
		}
	}
	free(want_err);
	free(keys);
	ks_shardmap_destroy(m);
}

static void test_cases(void)
{
	tu_each_case("shardmap", check_case);
	CU_ASSERT(cases >= 10);
}

static void test_u128_text(void)
{
	static const char *const ok[] = { "0", "1", "340282366920938463463374607431768211455",
					  "170141183460469231731687303715884105728", "000000000000000000000000000000000000001" };
	static const char *const bad[] = { "", "-1", "340282366920938463463374607431768211456", "1e5", " 1",
					   "3402823669209384634633746074317682114550" };
	char out[KS_U128_STRLEN];
	ks_u128 v;
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		CU_ASSERT_EQUAL_FATAL(ks_u128_parse(ok[i], strlen(ok[i]), &v), 0);
		ks_u128_format(v, out);
		CU_ASSERT_STRING_EQUAL(out, ok[i][0] == '0' && ok[i][1] ? "1" : ok[i]);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CU_ASSERT_EQUAL(ks_u128_parse(bad[i], strlen(bad[i]), &v), KS_ERR_BADREC);
	CU_ASSERT_EQUAL(ks_shardmap_find(NULL, 0), -1);
}

/* 1,000 records/s: a full second's burst, then one every millisecond. */
static void test_records_bucket(void)
{
	ks_shard_limiter l;
	int i, taken = 0;

	ks_limiter_init(&l, 100.0, 0);
	for (i = 0; i < 2000; i++)
		taken += ks_limiter_take(&l, 10, 0);
	CU_ASSERT_EQUAL(taken, 1000);
	CU_ASSERT_EQUAL(ks_limiter_wait_ms(&l, 10, 0), 1);
	CU_ASSERT_EQUAL(ks_limiter_take(&l, 10, 0), 0);
	CU_ASSERT_EQUAL(ks_limiter_take(&l, 10, 1), 1);
	CU_ASSERT_EQUAL(ks_limiter_take(&l, 10, 1), 0);
	/* Never more than a second's worth after a long idle time. */
	for (i = 0, taken = 0; i < 3000; i++)
		taken += ks_limiter_take(&l, 10, 60000);
	CU_ASSERT_EQUAL(taken, 1000);
}

/* 1 MiB/s at 50 %: 512 KiB a second; a record larger than the bucket waits for it to be full. */
static void test_bytes_bucket_and_percent(void)
{
	ks_shard_limiter l;

	ks_limiter_init(&l, 50.0, 1000);
	CU_ASSERT_EQUAL(ks_limiter_take(&l, 400 * 1024, 1000), 1);
	CU_ASSERT_EQUAL(ks_limiter_take(&l, 200 * 1024, 1000), 0);
	/* 88 KiB missing at 512 KiB/s: 172 ms. */
	CU_ASSERT_EQUAL(ks_limiter_wait_ms(&l, 200 * 1024, 1000), 172);
	CU_ASSERT_EQUAL(ks_limiter_take(&l, 200 * 1024, 1171), 0);
	CU_ASSERT_EQUAL(ks_limiter_take(&l, 200 * 1024, 1172), 1);
	/* 2 MiB (a large-record stream): only from a full bucket, and then the shard owes 1.5 MiB. */
	CU_ASSERT_EQUAL(ks_limiter_take(&l, 2048 * 1024, 1500), 0);
	CU_ASSERT_EQUAL(ks_limiter_take(&l, 2048 * 1024, 3000), 1);
	CU_ASSERT_EQUAL(ks_limiter_wait_ms(&l, 1, 3000), 3001);
	CU_ASSERT_EQUAL(ks_limiter_take(&l, 1, 6000), 0);
	CU_ASSERT_EQUAL(ks_limiter_take(&l, 1, 6001), 1);
	/* 500 records/s at 50 %. */
	CU_ASSERT_DOUBLE_EQUAL(l.records.rate, 500.0, 1e-9);
}

/* A reserve: takes leave 10 % of a second in the bucket; the long-run rate is the same. */
static void test_reserve(void)
{
	ks_shard_limiter l;
	int taken = 0, i;

	ks_limiter_init(&l, 100.0, 0);
	ks_limiter_reserve(&l, 0.1);
	for (i = 0; i < 2000; i++)
		taken += ks_limiter_take(&l, 10, 0);
	CU_ASSERT_EQUAL(taken, 900);
	for (i = 0; i < 2000; i++)
		taken += ks_limiter_take(&l, 10, 10000);
	CU_ASSERT_EQUAL(taken, 1800);
	/* Steady: one record a millisecond. */
	for (i = 1; i <= 1000; i++)
		taken += ks_limiter_take(&l, 10, 10000 + i);
	CU_ASSERT_EQUAL(taken, 2800);
	/* A record larger than the bucket still goes from a full one. */
	CU_ASSERT_EQUAL(ks_limiter_take(&l, 2 << 20, 20000), 1);
}

/* A map of @p n shards "shardId-<ids[i]>", each from @p starts[i] to the next start (the last to the end). */
static ks_shardmap_t *map_at(const int *ids, const char *const *starts, int n)
{
	ks_shardmap_t *m = ks_shardmap_new();
	char json[4096], next[64];
	size_t len = 0;
	ks_errbuf err;
	int i;

	len += (size_t)snprintf(json + len, sizeof(json) - len, "{\"Shards\":[");
	for (i = 0; i < n; i++) {
		const char *end = i + 1 < n ? NULL : "340282366920938463463374607431768211455";
		char endbuf[KS_U128_STRLEN];
		ks_u128 e;

		if (!end) {
			CU_ASSERT_EQUAL(ks_u128_parse(starts[i + 1], strlen(starts[i + 1]), &e), 0);
			ks_u128_format(e - 1, endbuf);
			end = endbuf;
		}
		len += (size_t)snprintf(json + len, sizeof(json) - len,
					"%s{\"ShardId\":\"shardId-%012d\",\"HashKeyRange\":{\"StartingHashKey\":\"%s\",\"EndingHashKey\":\"%s\"},\"SequenceNumberRange\":{\"StartingSequenceNumber\":\"1\"}}",
					i ? "," : "", ids[i], starts[i], end);
	}
	snprintf(json + len, sizeof(json) - len, "]}");
	CU_ASSERT_EQUAL(ks_shardmap_add_page(m, json, strlen(json), next, sizeof(next), &err), 0);
	CU_ASSERT_EQUAL(ks_shardmap_finish(m, &err), 0);
	return m;
}

static int shown(const ks_metrics *m, const char *needle)
{
	ks_buf b;
	int found;

	ks_buf_init(&b, 0);
	CU_ASSERT_EQUAL(ks_metrics_render(m, NULL, 0, &b), 0);
	found = strstr(b.data, needle) != NULL;
	ks_buf_clean(&b);
	return found;
}

/* Each shard's series is held with the map and found by the shard's range start, not by name; a
 * shard the next map does not name (closed by a split) has its series removed. */
static void test_shard_series_held_with_the_map(void)
{
	static const int before_ids[] = { 0, 1 }, after_ids[] = { 0, 2, 3 };
	static const char *const before[] = { "0", "170141183460469231731687303715884105728" };
	static const char *const after[] = { "0", "170141183460469231731687303715884105728",
					     "255211775190703847597530955573826158592" };
	ks_metrics m;
	ks_shards_opts o = { 0, 51200, 1, 1 << 20, 100.0, 5, &m, "s1" };
	ks_shards_t *s;
	ks_u128 start;

	memset(&m, 0, sizeof(m));
	CU_ASSERT_PTR_NOT_NULL_FATAL(s = ks_shards_new(&o));
	CU_ASSERT_EQUAL(ks_shards_set_map(s, map_at(before_ids, before, 2), 0), 0);
	CU_ASSERT_EQUAL(ks_u128_parse(before[1], strlen(before[1]), &start), 0);
	CU_ASSERT_PTR_NULL(ks_shards_counters_of(s, "shardId-000000000000", start));
	ks_metrics_shard_count(ks_shards_counters_of(s, "shardId-000000000001", start), 5, 50, 1);
	CU_ASSERT_TRUE(shown(&m, "kinesink_shard_records_total{stream=\"s1\",shard=\"shardId-000000000001\"} 5\n"));
	CU_ASSERT_TRUE(shown(&m, "kinesink_shard_rate_limit{stream=\"s1\",shard=\"shardId-000000000001\",unit=\"records\"} 1000\n"));
	/* Shard 1 split into 2 and 3: its series go, shard 0's stay. */
	CU_ASSERT_EQUAL(ks_shards_set_map(s, map_at(after_ids, after, 3), 10), 0);
	CU_ASSERT_FALSE(shown(&m, "shard=\"shardId-000000000001\""));
	CU_ASSERT_TRUE(shown(&m, "kinesink_shard_records_total{stream=\"s1\",shard=\"shardId-000000000000\"} 0\n"));
	CU_ASSERT_TRUE(shown(&m, "kinesink_shard_records_total{stream=\"s1\",shard=\"shardId-000000000003\"} 0\n"));
	ks_shards_destroy(s);
	CU_ASSERT_FALSE(shown(&m, "shard=\"shardId-000000000000\""));
	ks_metrics_clean(&m);
}

int main(void)
{
	static const tu_test tests[] = {
		{ "shard map cases", test_cases },
		{ "128-bit hash key text", test_u128_text },
		{ "records bucket", test_records_bucket },
		{ "bytes bucket, percent, large records", test_bytes_bucket_and_percent },
		{ "a reserve left in the buckets", test_reserve },
		{ "per-shard series held with the map, closed shards' removed", test_shard_series_held_with_the_map },
		{ NULL, NULL },
	};

	return tu_main("shards", tests);
}
