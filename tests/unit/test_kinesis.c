/* The writer's fast acknowledgement of a PutRecords answer: it may say "all accepted" only when
 * that is certain; every doubtful answer must go to the full parse. */
#include <string.h>

#include "kinesis.h"
#include "testutil.h"

static int accepted(const char *body, size_t n)
{
	ks_buf b;
	int r;

	ks_buf_init(&b, 0);
	ks_buf_puts(&b, body);
	r = ks_kinesis_all_accepted(&b, n);
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

int main(void)
{
	static const tu_test tests[] = {
		{ "answers that accepted every entry", test_all_accepted },
		{ "doubtful answers are parsed in full", test_doubtful_answers_are_parsed },
		{ NULL, NULL },
	};

	return tu_main("kinesis answers", tests);
}
