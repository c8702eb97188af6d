/* The PutRecords wire format: bodies built from entries, answers read back per entry. The fast
 * acknowledgement may say "all accepted" only when that is certain; every doubtful answer must go
 * to the full parse. */
#include <jansson.h>
#include <string.h>

#include "putrecords.h"
#include "testutil.h"

static int accepted(const char *body, size_t n)
{
	ks_buf b;
	int r;

	ks_buf_init(&b, 0);
	ks_buf_puts(&b, body);
	r = ks_putrecords_all_accepted(b.data, b.len, n);
	ks_buf_clean(&b);
	return r;
}

#define OK2 "{\"SequenceNumber\":\"4959\",\"ShardId\":\"shardId-0\"},{\"SequenceNumber\":\"4960\",\"ShardId\":\"shardId-1\"}"

static void test_all_accepted(void)
{
	CU_ASSERT_TRUE(accepted("{\"FailedRecordCount\":0,\"Records\":[" OK2 "]}", 2));
	CU_ASSERT_TRUE(accepted("{\"Records\":[" OK2 "],\"FailedRecordCount\":0}", 2));
	/* kinesis-mock's accepted entries carry "ErrorCode":null */
	CU_ASSERT_TRUE(accepted("{\"EncryptionType\":\"NONE\",\"FailedRecordCount\":0,\"Records\":[{\"ErrorCode\":null,"
				"\"SequenceNumber\":\"1\",\"ShardId\":\"s\"}]}", 1));
}

static void test_doubtful_answers_are_parsed(void)
{
	/* a failure, counted or not */
	CU_ASSERT_FALSE(accepted("{\"FailedRecordCount\":1,\"Records\":[" OK2 "]}", 2));
	CU_ASSERT_FALSE(accepted("{\"FailedRecordCount\":0,\"Records\":[{\"SequenceNumber\":\"1\"},"
				 "{\"ErrorCode\":\"ProvisionedThroughputExceededException\",\"ErrorMessage\":\"x\"}]}", 2));
	CU_ASSERT_FALSE(accepted("{\"FailedRecordCount\":01,\"Records\":[" OK2 "]}", 2));
	CU_ASSERT_FALSE(accepted("{\"FailedRecordCount\":0", 0));
	/* fewer or more entries than records sent */
	CU_ASSERT_FALSE(accepted("{\"FailedRecordCount\":0,\"Records\":[" OK2 "]}", 3));
	CU_ASSERT_FALSE(accepted("{\"FailedRecordCount\":0,\"Records\":[" OK2 "]}", 1));
	/* another layout, a duplicate member, nothing at all */
	CU_ASSERT_FALSE(accepted("{\"FailedRecordCount\": 0,\"Records\":[" OK2 "]}", 2));
	CU_ASSERT_FALSE(accepted("{\"FailedRecordCount\":0,\"FailedRecordCount\":1,\"Records\":[" OK2 "]}", 2));
	CU_ASSERT_FALSE(accepted("", 0));
	/* the pattern inside a string is not a member */
	CU_ASSERT_FALSE(accepted("{\"FailedRecordCount\":2,\"Records\":[{\"ErrorMessage\":\"\\\"FailedRecordCount\\\":0,\","
				 "\"SequenceNumber\":\"1\"},{\"SequenceNumber\":\"2\"}]}", 2));
}

static void test_body(void)
{
	static const unsigned char bin[] = { 0xF3, 0x89, 0x9A, 0xC2, 0x00, 0xFF };
	const ks_put_entry e[] = {
		{ "{\"id\":1}", 8, NULL, "{\"a\":\"\\u00e9\"}", 14 },
		{ "k\"\xc3\xa9", 4, "170141183460469231731687303715884105728", bin, sizeof(bin) },
		{ "t", 1, NULL, "", 0 },
	};
	ks_buf b;
	json_t *root, *recs;

	ks_buf_init(&b, 0);
	CU_ASSERT_EQUAL(ks_putrecords_build(&b, "s\"1", e, 3), 0);
	/* The wire form byte for byte: Data (base64), PartitionKey, ExplicitHashKey when given. */
	CU_ASSERT_STRING_EQUAL(b.data,
			       "{\"StreamName\":\"s\\\"1\",\"Records\":["
			       "{\"Data\":\"eyJhIjoiXHUwMGU5In0=\",\"PartitionKey\":\"{\\\"id\\\":1}\"},"
			       "{\"Data\":\"84mawgD/\",\"PartitionKey\":\"k\\\"\xc3\xa9\","
			       "\"ExplicitHashKey\":\"170141183460469231731687303715884105728\"},"
			       "{\"Data\":\"\",\"PartitionKey\":\"t\"}]}");
	root = json_loadb(b.data, b.len, 0, NULL);
	recs = json_object_get(root, "Records");
	CU_ASSERT_EQUAL(json_array_size(recs), 3);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_array_get(recs, 1), "PartitionKey")),
			       "k\"\xc3\xa9");
	json_decref(root);
	CU_ASSERT_EQUAL(ks_putrecords_entry_bytes(&e[1]), 4 + sizeof(bin));
	/* A stream ARN goes as StreamARN. */
	CU_ASSERT_EQUAL(ks_putrecords_build(&b, "arn:aws-us-gov:kinesis:us-gov-west-1:123456789012:stream/s1", e + 2, 1),
			0);
	CU_ASSERT_STRING_EQUAL(b.data,
			       "{\"StreamARN\":\"arn:aws-us-gov:kinesis:us-gov-west-1:123456789012:stream/s1\",\"Records\":["
			       "{\"Data\":\"\",\"PartitionKey\":\"t\"}]}");
	/* A body over its buffer's cap is an error, not a truncated request. */
	ks_buf_clean(&b);
	ks_buf_init(&b, 40);
	CU_ASSERT_EQUAL(ks_putrecords_build(&b, "s1", e, 3), KS_ERR_TOOBIG);
	ks_buf_clean(&b);
}

static int parse(ks_put_answer *a, const char *body, size_t n)
{
	return ks_putrecords_parse(a, body, strlen(body), n);
}

static void test_answer_per_entry(void)
{
	ks_put_answer a;
	ks_put_result r;

	CU_ASSERT_EQUAL(parse(&a, "{\"FailedRecordCount\":2,\"Records\":["
			      "{\"SequenceNumber\":\"49\",\"ShardId\":\"shardId-000000000003\"},"
			      "{\"ErrorCode\":\"ProvisionedThroughputExceededException\",\"ErrorMessage\":\"Rate exceeded for shard\"},"
			      "{\"ErrorCode\":\"InternalFailure\"},"
			      "{\"ErrorCode\":null,\"SequenceNumber\":\"50\",\"ShardId\":\"shardId-000000000001\"},"
			      "{\"ErrorCode\":\"KMSThrottlingException\",\"ErrorMessage\":\"kms\"}]}", 5), 0);
	CU_ASSERT_FALSE(a.fast);
	ks_putrecords_result(&a, 0, &r);
	CU_ASSERT_EQUAL(r.outcome, KS_PUT_ACCEPTED);
	CU_ASSERT_STRING_EQUAL(r.shard_id, "shardId-000000000003");
	CU_ASSERT_STRING_EQUAL(r.seq, "49");
	ks_putrecords_result(&a, 1, &r);
	CU_ASSERT_EQUAL(r.outcome, KS_PUT_THROTTLED);
	CU_ASSERT_STRING_EQUAL(r.error_code, "ProvisionedThroughputExceededException");
	CU_ASSERT_STRING_EQUAL(r.error_message, "Rate exceeded for shard");
	ks_putrecords_result(&a, 2, &r);
	CU_ASSERT_EQUAL(r.outcome, KS_PUT_FAILED);
	CU_ASSERT_STRING_EQUAL(r.error_code, "InternalFailure");
	CU_ASSERT_STRING_EQUAL(r.error_message, "");
	ks_putrecords_result(&a, 3, &r);
	CU_ASSERT_EQUAL(r.outcome, KS_PUT_ACCEPTED); /* "ErrorCode":null is kinesis-mock's "none" */
	CU_ASSERT_STRING_EQUAL(r.shard_id, "shardId-000000000001");
	ks_putrecords_result(&a, 4, &r);
	CU_ASSERT_EQUAL(r.outcome, KS_PUT_THROTTLED);
	ks_putrecords_answer_clean(&a);

	/* The fast path: all accepted, without shard ids. */
	CU_ASSERT_EQUAL(parse(&a, "{\"FailedRecordCount\":0,\"Records\":[" OK2 "]}", 2), 0);
	CU_ASSERT_TRUE(a.fast);
	ks_putrecords_result(&a, 1, &r);
	CU_ASSERT_EQUAL(r.outcome, KS_PUT_ACCEPTED);
	CU_ASSERT_STRING_EQUAL(r.shard_id, "");
	ks_putrecords_answer_clean(&a);
}

static void test_malformed_answers(void)
{
	ks_put_answer a;

	CU_ASSERT_EQUAL(parse(&a, "", 1), KS_ERR_BADREC);
	CU_ASSERT_EQUAL(parse(&a, "<html>busy</html>", 1), KS_ERR_BADREC);
	CU_ASSERT_EQUAL(parse(&a, "{\"FailedRecordCount\":1}", 1), KS_ERR_BADREC);
	CU_ASSERT_EQUAL(parse(&a, "{\"FailedRecordCount\":1,\"Records\":{}}", 1), KS_ERR_BADREC);
	/* entries missing or extra: nothing is known accepted */
	CU_ASSERT_EQUAL(parse(&a, "{\"FailedRecordCount\":1,\"Records\":[{\"ErrorCode\":\"InternalFailure\"}]}", 2),
			KS_ERR_BADREC);
	CU_ASSERT_EQUAL(parse(&a, "{\"FailedRecordCount\":1,\"Records\":[{\"ErrorCode\":\"InternalFailure\"},"
			      "{\"SequenceNumber\":\"1\"}]}", 1), KS_ERR_BADREC);
}

static void test_throttle_codes(void)
{
	CU_ASSERT_TRUE(ks_putrecords_is_throttle("ProvisionedThroughputExceededException"));
	CU_ASSERT_TRUE(ks_putrecords_is_throttle("LimitExceededException"));
	CU_ASSERT_TRUE(ks_putrecords_is_throttle("KMSThrottlingException"));
	CU_ASSERT_FALSE(ks_putrecords_is_throttle("InternalFailure"));
	CU_ASSERT_FALSE(ks_putrecords_is_throttle(""));
}

/* The per-record limit is the stream's (MaxRecordSizeInKiB): at it passes, one byte over fails
 * naming the limit as the stream sets it. */
static void test_record_size_limits(void)
{
	static const struct {
		size_t limit, data_len;
		int rc;
		const char *text;
	} cases[] = {
		{ 1024 * 1024, 1024 * 1024 - 1, 0, NULL },
		{ 1024 * 1024, 1024 * 1024, KS_ERR_BADREC, "exceed Kinesis' 1 MiB (1048576 bytes) per record" },
		{ 1536 * 1024, 1536 * 1024 - 1, 0, NULL },
		{ 1536 * 1024, 1536 * 1024, KS_ERR_BADREC, "exceed Kinesis' 1536 KiB (1572864 bytes) per record" },
		{ 10 * 1024 * 1024, 10 * 1024 * 1024 - 1, 0, NULL },
		{ 10 * 1024 * 1024, 10 * 1024 * 1024, KS_ERR_BADREC, "exceed Kinesis' 10 MiB (10485760 bytes)" },
	};
	static char data[10 * 1024 * 1024];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ks_put_entry e = { "k", 1, NULL, data, cases[i].data_len };
		ks_errbuf err;

		ks_errbuf_clear(&err);
		CU_ASSERT_EQUAL(ks_putrecords_check_entry(&e, cases[i].limit, &err), cases[i].rc);
		if (cases[i].text) {
			CU_ASSERT_PTR_NOT_NULL(strstr(err.text, cases[i].text));
			CU_ASSERT_STRING_EQUAL(err.reason, "too_large");
		}
	}
}

static void test_shard_ids_without_a_tree(void)
{
	static const char ok[] = "{\"FailedRecordCount\":0,\"Records\":[{\"SequenceNumber\":\"1\",\"ShardId\":\"shardId-000000000002\"},"
				 "{\"SequenceNumber\":\"2\",\"ShardId\":\"shardId-000000000007\"}]}";
	static const char mixed[] = "{\"FailedRecordCount\":1,\"Records\":[{\"SequenceNumber\":\"1\",\"ShardId\":\"shardId-1\"},"
				    "{\"ErrorCode\":\"InternalFailure\",\"ErrorMessage\":\"x\"}]}";
	static const char missing[] = "{\"FailedRecordCount\":0,\"Records\":[{\"SequenceNumber\":\"1\",\"ShardId\":\"shardId-1\"},"
				      "{\"SequenceNumber\":\"2\"}]}";
	ks_put_answer a;
	ks_put_result r;

	CU_ASSERT_EQUAL_FATAL(ks_putrecords_parse_as(&a, ok, sizeof(ok) - 1, 2, 1), 0);
	CU_ASSERT_TRUE(a.fast);
	ks_putrecords_result(&a, 1, &r);
	CU_ASSERT_EQUAL(r.outcome, KS_PUT_ACCEPTED);
	CU_ASSERT_STRING_EQUAL(r.shard_id, "shardId-000000000007");
	ks_putrecords_result(&a, 0, &r);
	CU_ASSERT_STRING_EQUAL(r.shard_id, "shardId-000000000002");
	ks_putrecords_answer_clean(&a);
	/* Not fast without shard ids asked for: none read. */
	CU_ASSERT_EQUAL_FATAL(ks_putrecords_parse_as(&a, ok, sizeof(ok) - 1, 2, 0), 0);
	ks_putrecords_result(&a, 1, &r);
	CU_ASSERT_STRING_EQUAL(r.shard_id, "");
	ks_putrecords_answer_clean(&a);
	/* A failure, or an entry without its ShardId: parsed in full. */
	CU_ASSERT_EQUAL_FATAL(ks_putrecords_parse_as(&a, mixed, sizeof(mixed) - 1, 2, 1), 0);
	CU_ASSERT_FALSE(a.fast);
	ks_putrecords_result(&a, 0, &r);
	CU_ASSERT_STRING_EQUAL(r.shard_id, "shardId-1");
	ks_putrecords_result(&a, 1, &r);
	CU_ASSERT_EQUAL(r.outcome, KS_PUT_FAILED);
	ks_putrecords_answer_clean(&a);
	CU_ASSERT_EQUAL_FATAL(ks_putrecords_parse_as(&a, missing, sizeof(missing) - 1, 2, 1), 0);
	CU_ASSERT_FALSE(a.fast);
	ks_putrecords_result(&a, 1, &r);
	CU_ASSERT_STRING_EQUAL(r.shard_id, "");
	ks_putrecords_answer_clean(&a);
}

int main(void)
{
	static const tu_test tests[] = {
		{ "answers that accepted every entry", test_all_accepted },
		{ "doubtful answers are parsed in full", test_doubtful_answers_are_parsed },
		{ "request bodies", test_body },
		{ "one result per entry", test_answer_per_entry },
		{ "shard ids of an answer that accepted all, without a tree", test_shard_ids_without_a_tree },
		{ "answers without a result per entry", test_malformed_answers },
		{ "throttling codes", test_throttle_codes },
		{ "per-record limits follow the stream's", test_record_size_limits },
		{ NULL, NULL },
	};

	return tu_main("PutRecords", tests);
}
