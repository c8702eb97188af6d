/* The per-key gate: one active record per key, later ones handed back in order, the table kept
 * right through growth and removals (checked against a plain model), and KPL gathering. */
#include <stdlib.h>
#include <string.h>

#include "keygate.h"
#include "kpl.h"
#include "testutil.h"

static ks_record *rec(const char *key, const char *data)
{
	ks_record *r = ks_record_new(key, strlen(key), data, strlen(data));

	r->key_hash = ks_key_hash(key, strlen(key));
	return r;
}

static void test_queue(void)
{
	ks_rqueue q = { 0 };
	ks_record *a = rec("a", "12"), *b = rec("bb", "3");

	ks_rqueue_push(&q, a);
	ks_rqueue_push(&q, b);
	CU_ASSERT_EQUAL(q.n, 2);
	CU_ASSERT_EQUAL(q.bytes, 6);
	CU_ASSERT_PTR_EQUAL(ks_rqueue_pop(&q), a);
	CU_ASSERT_PTR_NULL(a->next);
	CU_ASSERT_PTR_EQUAL(ks_rqueue_pop(&q), b);
	CU_ASSERT_PTR_NULL(ks_rqueue_pop(&q));
	CU_ASSERT_EQUAL(q.n, 0);
	CU_ASSERT_EQUAL(q.bytes, 0);
	CU_ASSERT_PTR_NULL(q.tail);
	ks_record_destroy(a);
	ks_record_destroy(b);
}

static void test_one_active_record_per_key(void)
{
	ks_keygate_t *g = ks_keygate_new();
	ks_record *a1 = rec("a", "1"), *a2 = rec("a", "2"), *a3 = rec("a", "3"), *b1 = rec("b", "1");
	ks_record *n;

	CU_ASSERT_EQUAL(ks_keygate_admit(g, a1), 1);
	CU_ASSERT_EQUAL(ks_keygate_admit(g, a2), 0);
	CU_ASSERT_EQUAL(ks_keygate_admit(g, b1), 1);
	CU_ASSERT_EQUAL(ks_keygate_admit(g, a3), 0);
	CU_ASSERT_EQUAL(ks_keygate_keys(g), 2);
	CU_ASSERT_EQUAL(ks_keygate_waiting(g), 2);
	/* A record that is not active releases nothing. */
	CU_ASSERT_PTR_NULL(ks_keygate_release(g, a2));
	CU_ASSERT_PTR_EQUAL(n = ks_keygate_release(g, a1), a2);
	ks_record_destroy(a1);
	CU_ASSERT_PTR_NULL(ks_keygate_release(g, b1));
	ks_record_destroy(b1);
	CU_ASSERT_EQUAL(ks_keygate_keys(g), 1);
	/* Key b is free again: its next record is active at once. */
	b1 = rec("b", "2");
	CU_ASSERT_EQUAL(ks_keygate_admit(g, b1), 1);
	CU_ASSERT_PTR_EQUAL(ks_keygate_release(g, a2), a3);
	ks_record_destroy(a2);
	CU_ASSERT_PTR_NULL(ks_keygate_release(g, a3));
	ks_record_destroy(a3);
	CU_ASSERT_EQUAL(ks_keygate_keys(g), 1);
	CU_ASSERT_EQUAL(ks_keygate_waiting(g), 0);
	/* Destroying the gate frees what waits in it, not the active records. */
	CU_ASSERT_EQUAL(ks_keygate_admit(g, rec("b", "3")), 0);
	ks_keygate_destroy(g);
	ks_record_destroy(b1);
}

/* Thousands of keys through growth and backward-shift removals, against a model of per-key FIFOs. */
static void test_many_keys(void)
{
	enum { KEYS = 3000, PER = 3 };
	ks_keygate_t *g = ks_keygate_new();
	static ks_record *active[KEYS];
	static int next_seq[KEYS];
	char key[32], data[32];
	int i, j, left = KEYS * PER;
	uint64_t x = 88172645463325252ULL;

	for (j = 0; j < PER; j++)
		for (i = 0; i < KEYS; i++) {
			ks_record *r;

			snprintf(key, sizeof(key), "key-%d", i);
			snprintf(data, sizeof(data), "%d", j);
			r = rec(key, data);
			if (ks_keygate_admit(g, r) == 1) {
				CU_ASSERT_EQUAL(j, 0);
				active[i] = r;
			}
		}
	CU_ASSERT_EQUAL(ks_keygate_keys(g), KEYS);
	CU_ASSERT_EQUAL(ks_keygate_waiting(g), KEYS * (PER - 1));
	/* Release in a pseudo-random order of keys: each hands back its key's next record in order. */
	while (left) {
		ks_record *n;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		i = (int)(x % KEYS);
		if (!active[i])
			continue;
		CU_ASSERT_EQUAL(active[i]->data[0] - '0', next_seq[i]); /* data is not NUL-terminated */
		next_seq[i]++;
		n = ks_keygate_release(g, active[i]);
		ks_record_destroy(active[i]);
		active[i] = n;
		left--;
	}
	for (i = 0; i < KEYS; i++)
		CU_ASSERT_EQUAL(next_seq[i], PER);
	CU_ASSERT_EQUAL(ks_keygate_keys(g), 0);
	CU_ASSERT_EQUAL(ks_keygate_waiting(g), 0);
	ks_keygate_destroy(g);
}

static void test_gather(void)
{
	static char big[400 * 1024];
	ks_keygate_t *g = ks_keygate_new();
	ks_record *a1 = rec("a", "1"), *a2 = rec("a", "2"), *a3 = rec("a", "3"), *b1 = rec("b", "1"), *r;
	size_t cost;

	ks_keygate_admit(g, a1);
	ks_keygate_admit(g, a2);
	ks_keygate_admit(g, b1);
	ks_keygate_admit(g, a3);
	/* Not within the room: nothing joins. */
	CU_ASSERT_EQUAL(ks_keygate_gather(g, a1, 60), 0);
	CU_ASSERT_PTR_NULL(a1->agg);
	CU_ASSERT_EQUAL(ks_keygate_gather(g, a1, 1 << 20), 2);
	CU_ASSERT_PTR_EQUAL(a1->agg, a2);
	CU_ASSERT_PTR_EQUAL(a2->agg, a3);
	CU_ASSERT_PTR_NULL(a3->agg);
	CU_ASSERT_EQUAL(a1->agg_n, 2);
	cost = KS_KPL_OVERHEAD + 1 + 16 + 3 * ks_kpl_record_cost(a1);
	CU_ASSERT_EQUAL(a1->agg_cost, cost);
	CU_ASSERT_EQUAL(ks_keygate_waiting(g), 0);
	/* b1 has nobody behind it; a record not active gathers nothing. */
	CU_ASSERT_EQUAL(ks_keygate_gather(g, b1, 1 << 20), 0);
	CU_ASSERT_EQUAL(ks_keygate_gather(g, a2, 1 << 20), 0);
	/* The aggregate goes whole: releasing its head frees the key. */
	CU_ASSERT_PTR_NULL(ks_keygate_release(g, a1));
	for (r = a1; r;) {
		ks_record *nx = r->agg;

		ks_record_destroy(r);
		r = nx;
	}
	/* An aggregate stays a valid Kinesis record: three 400 KiB records do not fit in 1 MiB. */
	a1 = ks_record_new("a", 1, big, sizeof(big));
	a1->key_hash = ks_key_hash("a", 1);
	CU_ASSERT_EQUAL(ks_keygate_admit(g, a1), 1);
	for (cost = 0; cost < 2; cost++) {
		r = ks_record_new("a", 1, big, sizeof(big));
		r->key_hash = a1->key_hash;
		CU_ASSERT_EQUAL(ks_keygate_admit(g, r), 0);
	}
	CU_ASSERT_EQUAL(ks_keygate_gather(g, a1, 5 << 20), 1);
	CU_ASSERT_TRUE(a1->agg_cost + a1->pkey_len <= 1024 * 1024);
	CU_ASSERT_EQUAL(ks_keygate_waiting(g), 1);
	ks_record_destroy(a1->agg);
	ks_record_destroy(a1);
	ks_record_destroy(b1);
	ks_keygate_destroy(g);
}

/*
 * Records admitted and released interleaved, so that keys gain waiting records, lose the last
 * of them and gain new ones while both tables grow and shift their slots: each release hands
 * back its key's next record in order, and the counts agree with a plain model at every step.
 */
static void test_interleaved_churn(void)
{
	enum { KEYS = 700, STEPS = 200000 };
	ks_keygate_t *g = ks_keygate_new();
	static ks_record *active[KEYS];
	static int admitted[KEYS], next_seq[KEYS];
	size_t keys = 0, waiting = 0, max_waiting = 0;
	uint64_t x = 2463534242ULL;
	char key[32], data[32];
	int step, i;

	for (step = 0; step < STEPS; step++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		i = (int)((x >> 8) % KEYS);
		/* Admit more than release in the first half, then drain. */
		if ((x & 0xff) < (step < STEPS / 2 ? 150u : 60u)) {
			ks_record *r;
			int rc;

			snprintf(key, sizeof(key), "key-%d", i);
			snprintf(data, sizeof(data), "%d", admitted[i]++);
			r = rec(key, data);
			rc = ks_keygate_admit(g, r);
			CU_ASSERT_EQUAL(rc, active[i] ? 0 : 1);
			if (rc == 1) {
				active[i] = r;
				keys++;
			} else {
				waiting++;
			}
		} else if (active[i]) {
			ks_record *n;

			snprintf(data, sizeof(data), "%.*s", (int)active[i]->data_len, (const char *)active[i]->data);
			CU_ASSERT_EQUAL(atoi(data), next_seq[i]);
			next_seq[i]++;
			n = ks_keygate_release(g, active[i]);
			ks_record_destroy(active[i]);
			CU_ASSERT_EQUAL(n != NULL, next_seq[i] < admitted[i]);
			active[i] = n;
			if (n)
				waiting--;
			else
				keys--;
		}
		CU_ASSERT_EQUAL(ks_keygate_keys(g), keys);
		CU_ASSERT_EQUAL(ks_keygate_waiting(g), waiting);
		if (waiting > max_waiting)
			max_waiting = waiting;
	}
	CU_ASSERT_TRUE(max_waiting > 1000); /* many keys with several records waiting at once */
	for (i = 0; i < KEYS; i++)
		while (active[i]) {
			ks_record *n = ks_keygate_release(g, active[i]);

			ks_record_destroy(active[i]);
			next_seq[i]++;
			active[i] = n;
		}
	for (i = 0; i < KEYS; i++)
		CU_ASSERT_EQUAL(next_seq[i], admitted[i]);
	CU_ASSERT_EQUAL(ks_keygate_keys(g), 0);
	CU_ASSERT_EQUAL(ks_keygate_waiting(g), 0);
	ks_keygate_destroy(g);
}

/* A queue admitted at once: the records that become active go to ready in their order (more
 * than the prefetch distance, so the look-ahead passes records that will wait), the others wait. */
static void test_admit_queue(void)
{
	ks_keygate_t *g = ks_keygate_new();
	ks_rqueue in = { 0 }, ready = { 0 };
	static const char *const keys[] = { "a", "b", "a", "c", "a", "d", "e", "b", "f", "g", "h", "a", "i" };
	ks_record *r, *a[4];
	char data[8];
	size_t i, na = 0;
	const char *order = "abcdefghi";

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		snprintf(data, sizeof(data), "%zu", i);
		ks_rqueue_push(&in, r = rec(keys[i], data));
		if (keys[i][0] == 'a')
			a[na++] = r;
	}
	CU_ASSERT_EQUAL(ks_keygate_admit_queue(g, &in, &ready), 0);
	CU_ASSERT_EQUAL(in.n, 0);
	CU_ASSERT_EQUAL(in.bytes, 0);
	CU_ASSERT_PTR_NULL(in.head);
	CU_ASSERT_PTR_NULL(in.tail);
	CU_ASSERT_EQUAL(ready.n, 9);
	CU_ASSERT_EQUAL(ks_keygate_waiting(g), 4);
	for (i = 0; (r = ks_rqueue_pop(&ready)); i++) {
		CU_ASSERT_EQUAL(r->pkey[0], order[i]);
		/* b's second record (number 7) waits behind its first. */
		while (r && r->pkey[0] != 'a') {
			ks_record *n = ks_keygate_release(g, r);

			CU_ASSERT_EQUAL(n != NULL, r->pkey[0] == 'b' && r->data[0] == '1');
			if (n)
				CU_ASSERT_EQUAL(n->data[0], '7');
			ks_record_destroy(r);
			r = n;
		}
	}
	/* Key a's records come back one at a time, in their order. */
	for (i = 0; i < 3; i++) {
		CU_ASSERT_PTR_EQUAL(ks_keygate_release(g, a[i]), a[i + 1]);
		ks_record_destroy(a[i]);
	}
	CU_ASSERT_PTR_NULL(ks_keygate_release(g, a[3]));
	ks_record_destroy(a[3]);
	CU_ASSERT_EQUAL(ks_keygate_keys(g), 0);
	CU_ASSERT_EQUAL(ks_keygate_waiting(g), 0);
	ks_keygate_destroy(g);
}

/* Records whose data starts with 'x' (of a revoked partition). */
static int data_x(void *ud, const ks_record *r)
{
	(void)ud;
	return r->data[0] == 'x';
}

/*
 * Waiting records taken out by a predicate, from 3,000 keys (the table's runs wrap and shift as
 * keys lose all their waiters): every key keeps its other waiters in order, and an active record
 * handed on to a record taken from behind it keeps the key's waiters behind the new one.
 */
static void test_take_matching(void)
{
	ks_keygate_t *g = ks_keygate_new();
	ks_record **act = calloc(3000, sizeof(*act)), *r;
	ks_rqueue out = { 0 };
	char key[16], data[16];
	int i, j, taken = 0;

	for (i = 0; i < 3000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		CU_ASSERT_EQUAL(ks_keygate_admit(g, act[i] = rec(key, "a0")), 1);
		/* Key i: waiters 1..3, those of an x partition: all of them (i % 3 == 0), the middle
		 * one (1), none (2). */
		for (j = 1; j <= 3; j++) {
			snprintf(data, sizeof(data), "%c%d", i % 3 == 0 || (i % 3 == 1 && j == 2) ? 'x' : 'a', j);
			CU_ASSERT_EQUAL(ks_keygate_admit(g, rec(key, data)), 0);
		}
	}
	CU_ASSERT_EQUAL(ks_keygate_take_matching(g, data_x, NULL, &out), 1000 * 3 + 1000);
	CU_ASSERT_EQUAL(ks_keygate_waiting(g), 3000 * 3 - 4000);
	while ((r = ks_rqueue_pop(&out))) {
		CU_ASSERT_EQUAL(r->data[0], 'x');
		taken++;
		ks_record_destroy(r);
	}
	CU_ASSERT_EQUAL(taken, 4000);
	for (i = 0; i < 3000; i++) {
		const char *want[3] = { NULL, NULL, NULL };
		ks_record *next;

		if (i % 3 == 1) {
			want[0] = "a1";
			want[1] = "a3";
		} else if (i % 3 == 2) {
			want[0] = "a1";
			want[1] = "a2";
			want[2] = "a3";
		}
		/* Key 1 of each three hands its active record on to one taken from behind it. */
		if (i % 3 == 1) {
			snprintf(key, sizeof(key), "k%d", i);
			r = rec(key, "b0");
			CU_ASSERT_EQUAL(ks_keygate_pass_active(g, act[i], r), 0);
			CU_ASSERT_EQUAL(ks_keygate_pass_active(g, act[i], r), -1);
			ks_record_destroy(act[i]);
			act[i] = r;
			CU_ASSERT_PTR_EQUAL(ks_keygate_active(g, r), r);
		}
		for (j = 0; j < 3; j++) {
			next = ks_keygate_release(g, act[i]);
			ks_record_destroy(act[i]);
			act[i] = next;
			if (!want[j]) {
				CU_ASSERT_PTR_NULL(next);
				break;
			}
			CU_ASSERT_PTR_NOT_NULL_FATAL(next);
			CU_ASSERT_EQUAL(memcmp(next->data, want[j], 2), 0);
		}
		if (act[i]) {
			CU_ASSERT_PTR_NULL(ks_keygate_release(g, act[i]));
			ks_record_destroy(act[i]);
		}
	}
	CU_ASSERT_EQUAL(ks_keygate_keys(g), 0);
	CU_ASSERT_EQUAL(ks_keygate_waiting(g), 0);
	ks_keygate_destroy(g);
	free(act);
}

int main(void)
{
	static const tu_test tests[] = {
		{ "record queue", test_queue },
		{ "one active record per key", test_one_active_record_per_key },
		{ "thousands of keys in order", test_many_keys },
		{ "KPL gathering", test_gather },
		{ "admissions and releases interleaved", test_interleaved_churn },
		{ "a queue admitted at once", test_admit_queue },
		{ "waiting records taken out by a predicate, an active record handed on", test_take_matching },
		{ NULL, NULL },
	};

	return tu_main("key gate", tests);
}
