/* KPL aggregation: round trip, key table de-duplication, integrity check. */
#include "kpl.h"
#include "testutil.h"

typedef struct seen {
	int n;
	char keys[8][32];
	char data[8][32];
} seen;

static void collect(void *ud, const char *pkey, size_t pkey_len, const void *data, size_t len)
{
	seen *s = ud;

	snprintf(s->keys[s->n], sizeof(s->keys[0]), "%.*s", (int)pkey_len, pkey);
	snprintf(s->data[s->n], sizeof(s->data[0]), "%.*s", (int)len, (const char *)data);
	s->n++;
}

static void test_round_trip(void)
{
	ks_record *r[3] = { ks_record_new("{\"id\":1}", 8, "one", 3), ks_record_new("{\"id\":2}", 8, "two", 3),
			    ks_record_new("{\"id\":1}", 8, "", 0) };
	seen s = { 0 };
	ks_buf b;
	int i;

	ks_buf_init(&b, 0);
	CU_ASSERT_EQUAL_FATAL(ks_kpl_encode(r, 3, &b), 0);
	CU_ASSERT_EQUAL((unsigned char)b.data[0], 0xf3);
	CU_ASSERT_EQUAL(ks_kpl_decode(b.data, b.len, collect, &s), 3);
	CU_ASSERT_STRING_EQUAL(s.keys[0], "{\"id\":1}");
	CU_ASSERT_STRING_EQUAL(s.data[1], "two");
	CU_ASSERT_STRING_EQUAL(s.keys[2], "{\"id\":1}");
	CU_ASSERT_STRING_EQUAL(s.data[2], "");
	/* The repeated key is stored once: smaller than with three table entries. */
	CU_ASSERT(b.len < 3 * 8 + 3 + 3 + 3 * 10 + KS_KPL_OVERHEAD);
	for (i = 0; i < 3; i++) {
		CU_ASSERT(b.len <= KS_KPL_OVERHEAD + 3 * ks_kpl_record_cost(r[i]));
		ks_record_destroy(r[i]);
	}
	ks_buf_clean(&b);
}

static void test_tampering_detected(void)
{
	ks_record *r = ks_record_new("k", 1, "payload", 7);
	seen s = { 0 };
	ks_buf b;

	ks_buf_init(&b, 0);
	CU_ASSERT_EQUAL_FATAL(ks_kpl_encode(&r, 1, &b), 0);
	b.data[b.len - 20] ^= 1; /* a byte of the protobuf: the MD5 no longer matches */
	CU_ASSERT_EQUAL(ks_kpl_decode(b.data, b.len, collect, &s), KS_ERR_BADREC);
	CU_ASSERT_EQUAL(ks_kpl_decode("\xf3\x89", 2, collect, &s), KS_ERR_BADREC);
	CU_ASSERT_EQUAL(s.n, 0);
	ks_record_destroy(r);
	ks_buf_clean(&b);
}

int main(void)
{
	static const tu_test tests[] = {
		{ "round trip with a shared key", test_round_trip },
		{ "tampering detected", test_tampering_detected },
		{ NULL, NULL },
	};

	return tu_main("kpl", tests);
}
