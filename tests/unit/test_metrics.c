/* Metrics: the end-to-end latency histogram per stream, and the seconds behind per partition,
 * as the Prometheus text shows them. */
#include "metrics.h"
#include "testutil.h"

#include <pthread.h>

static int has(const ks_buf *b, const char *line)
{
	return b->data && strstr(b->data, line) != NULL;
}

static void test_latency_buckets_and_unmeasured(void)
{
	const int64_t now = 1700000000000;
	ks_metrics m;
	ks_stream_latency *a, *b;
	ks_buf out;

	memset(&m, 0, sizeof(m));
	a = ks_metrics_stream_latency(&m, "orders");
	b = ks_metrics_stream_latency(&m, "s\"2");
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_PTR_EQUAL(ks_metrics_stream_latency(&m, "orders"), a); /* one per stream */
	ks_latency_observe(a, now - 5, now);      /* on a bound: that bucket (le is <=) */
	ks_latency_observe(a, now - 6, now);      /* just past it: the next */
	ks_latency_observe(a, now - 300, now);    /* 0.3 s */
	ks_latency_observe(a, now - 600000, now); /* 10 min: the last bound */
	ks_latency_observe(a, now - 600001, now); /* past it: +Inf */
	ks_latency_observe(a, 0, now);            /* no timestamp: counted, not observed */
	ks_latency_observe(a, -1, now);
	ks_latency_observe(a, now + 1, now);      /* a producer's clock ahead */
	ks_latency_observe(b, now - 20, now);
	ks_latency_observe(NULL, now, now);       /* out of memory at start: nothing counted */

	ks_buf_init(&out, 0);
	CU_ASSERT_EQUAL_FATAL(ks_metrics_render(&m, NULL, 0, &out), 0);
	CU_ASSERT(has(&out, "# TYPE kinesink_record_latency_seconds histogram\n"));
	CU_ASSERT(has(&out, "kinesink_record_latency_seconds_bucket{stream=\"orders\",le=\"0.005\"} 1\n"));
	CU_ASSERT(has(&out, "kinesink_record_latency_seconds_bucket{stream=\"orders\",le=\"0.01\"} 2\n"));
	CU_ASSERT(has(&out, "kinesink_record_latency_seconds_bucket{stream=\"orders\",le=\"0.25\"} 2\n"));
	CU_ASSERT(has(&out, "kinesink_record_latency_seconds_bucket{stream=\"orders\",le=\"0.5\"} 3\n"));
	CU_ASSERT(has(&out, "kinesink_record_latency_seconds_bucket{stream=\"orders\",le=\"300\"} 3\n"));
	CU_ASSERT(has(&out, "kinesink_record_latency_seconds_bucket{stream=\"orders\",le=\"600\"} 4\n"));
	CU_ASSERT(has(&out, "kinesink_record_latency_seconds_bucket{stream=\"orders\",le=\"+Inf\"} 5\n"));
	CU_ASSERT(has(&out, "kinesink_record_latency_seconds_count{stream=\"orders\"} 5\n"));
	CU_ASSERT(has(&out, "kinesink_record_latency_seconds_sum{stream=\"orders\"} 1200.312\n"));
	CU_ASSERT(has(&out, "kinesink_record_latency_unmeasured_total{stream=\"orders\",reason=\"no_timestamp\"} 2\n"));
	CU_ASSERT(has(&out, "kinesink_record_latency_unmeasured_total{stream=\"orders\",reason=\"future_timestamp\"} 1\n"));
	/* The other stream on its own, its name escaped. */
	CU_ASSERT(has(&out, "kinesink_record_latency_seconds_bucket{stream=\"s\\\"2\",le=\"0.025\"} 1\n"));
	CU_ASSERT(has(&out, "kinesink_record_latency_seconds_count{stream=\"s\\\"2\"} 1\n"));
	CU_ASSERT(has(&out, "kinesink_record_latency_unmeasured_total{stream=\"s\\\"2\",reason=\"future_timestamp\"} 0\n"));
	ks_buf_clean(&out);
	ks_metrics_clean(&m);
	CU_ASSERT_PTR_NULL(m.latencies);
}

static void test_seconds_behind_shown_when_known(void)
{
	ks_partition_stat st[3];
	ks_metrics m;
	ks_buf out;

	memset(&m, 0, sizeof(m));
	memset(st, 0, sizeof(st));
	snprintf(st[0].topic, sizeof(st[0].topic), "t");
	st[0].partition = 0;
	st[0].behind_ms = 3600250;
	snprintf(st[1].topic, sizeof(st[1].topic), "t");
	st[1].partition = 1;
	st[1].behind_ms = 0;
	snprintf(st[2].topic, sizeof(st[2].topic), "t");
	st[2].partition = 2;
	st[2].behind_ms = -1;
	ks_buf_init(&out, 0);
	CU_ASSERT_EQUAL_FATAL(ks_metrics_render(&m, st, 3, &out), 0);
	CU_ASSERT(has(&out, "# TYPE kinesink_partition_seconds_behind gauge\n"));
	CU_ASSERT(has(&out, "kinesink_partition_seconds_behind{topic=\"t\",partition=\"0\"} 3600.250\n"));
	CU_ASSERT(has(&out, "kinesink_partition_seconds_behind{topic=\"t\",partition=\"1\"} 0.000\n"));
	CU_ASSERT(!has(&out, "kinesink_partition_seconds_behind{topic=\"t\",partition=\"2\"}")); /* unknown: no sample */
	ks_buf_clean(&out);
	ks_metrics_clean(&m);
}

/* The acknowledging thread observes while the endpoint's thread renders and another stream is
 * added: nothing lost (run under TSan by scripts/test.sh with the other unit tests). */
typedef struct racer {
	ks_metrics *m;
	ks_stream_latency *l;
} racer;

static void *observe_many(void *arg)
{
	racer *r = arg;
	int i;

	for (i = 0; i < 100000; i++)
		ks_latency_observe(r->l, 1000, 1000 + i % 700);
	return NULL;
}

static void test_observed_while_rendered(void)
{
	ks_metrics m;
	racer r;
	pthread_t th;
	ks_buf out;
	int i;

	memset(&m, 0, sizeof(m));
	r.m = &m;
	r.l = ks_metrics_stream_latency(&m, "a");
	CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, observe_many, &r), 0);
	for (i = 0; i < 50; i++) {
		char name[16];

		snprintf(name, sizeof(name), "s%d", i);
		CU_ASSERT_PTR_NOT_NULL(ks_metrics_stream_latency(&m, name));
		ks_buf_init(&out, 0);
		CU_ASSERT_EQUAL(ks_metrics_render(&m, NULL, 0, &out), 0);
		ks_buf_clean(&out);
	}
	pthread_join(th, NULL);
	ks_buf_init(&out, 0);
	CU_ASSERT_EQUAL_FATAL(ks_metrics_render(&m, NULL, 0, &out), 0);
	CU_ASSERT(has(&out, "kinesink_record_latency_seconds_count{stream=\"a\"} 100000\n"));
	ks_buf_clean(&out);
	ks_metrics_clean(&m);
}

int main(void)
{
	static const tu_test tests[] = {
		{ "latency buckets, no and future timestamps", test_latency_buckets_and_unmeasured },
		{ "seconds behind shown when known", test_seconds_behind_shown_when_known },
		{ "observed while rendered", test_observed_while_rendered },
		{ NULL, NULL },
	};

	return tu_main("metrics", tests);
}
