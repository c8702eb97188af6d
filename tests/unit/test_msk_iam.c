/*
 * MSK IAM: the token's lifetime (presign expiry, cut at the credentials' expiry), its shape
 * (base64url of the presigned kafka-cluster:Connect URL; the byte-for-byte comparison with
 * botocore is tests/integration/test_msk_iam.py), the region it is signed for, and the
 * kafka.aws.* keys. Tables drive each test.
 */
#include <openssl/evp.h>
#include <string.h>
#include <time.h>

#include "conf.h"
#include "msk_iam.h"
#include "testutil.h"

static ks_credentials creds(const char *token, time_t expiration)
{
	ks_credentials c = { "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", (char *)token, expiration, "config" };

	return c;
}

/* librdkafka asks for a new token at 80 % of the lifetime given here: it must never outlive
 * the credentials that signed it. */
static void test_lifetime(void)
{
	static const struct {
		time_t now, cred_exp;
		int expires, rc;
		int64_t want_ms;
	} cases[] = {
		{ 1795000000, 0, 900, 0, (int64_t)(1795000000 + 900) * 1000 },            /* long-term keys */
		{ 1795000000, 1795003600, 900, 0, (int64_t)(1795000000 + 900) * 1000 },   /* creds outlive it */
		{ 1795000000, 1795000600, 900, 0, (int64_t)1795000600 * 1000 },           /* creds expire first */
		{ 1795000000, 1795000900, 900, 0, (int64_t)1795000900 * 1000 },           /* the same second */
		{ 1795000000, 1795000001, 900, 0, (int64_t)1795000001 * 1000 },
		{ 1795000000, 1795000000, 900, KS_ERR_AUTH, 0 },                           /* already expired */
		{ 1795000000, 1794990000, 900, KS_ERR_AUTH, 0 },
		{ 1700000000, 0, 60, 0, (int64_t)1700000060 * 1000 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ks_credentials c = creds("tok", cases[i].cred_exp);
		ks_msk_token t;
		ks_errbuf err = { 0 };
		int rc = ks_msk_iam_token(&c, "us-east-1", cases[i].now, cases[i].expires, &t, &err);

		CU_ASSERT_EQUAL(rc, cases[i].rc);
		if (rc == 0) {
			CU_ASSERT_EQUAL(t.expiry_ms, cases[i].want_ms);
			CU_ASSERT_PTR_NOT_NULL(t.token);
		} else {
			CU_ASSERT_PTR_NULL(t.token);
			CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "expired"));
		}
		ks_msk_token_clean(&t);
	}
}

static char *decode_b64url(const char *s)
{
	size_t n = strlen(s), i;
	char *std = malloc(n + 4), *out = malloc(n + 4);
	int len;

	for (i = 0; i < n; i++)
		std[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
	while (i % 4)
		std[i++] = '=';
	std[i] = '\0';
	len = EVP_DecodeBlock((unsigned char *)out, (unsigned char *)std, (int)i);
	out[len < 0 ? 0 : len - (int)(i - n)] = '\0';
	free(std);
	return out;
}

static void test_token_shape(void)
{
	static const struct {
		const char *region, *session_token, *prefix, *has, *has_not;
	} cases[] = {
		{ "us-east-1", NULL,
		  "https://kafka.us-east-1.amazonaws.com/?Action=kafka-cluster%3AConnect&X-Amz-Algorithm=AWS4-HMAC-SHA256"
		  "&X-Amz-Credential=AKIDEXAMPLE%2F20261118%2Fus-east-1%2Fkafka-cluster%2Faws4_request"
		  "&X-Amz-Date=20261118T110640Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=",
		  "&User-Agent=kinesink/", "X-Amz-Security-Token" },
		{ "eu-west-1", "IQoJ/b+3==",
		  "https://kafka.eu-west-1.amazonaws.com/?Action=kafka-cluster%3AConnect&X-Amz-Algorithm=AWS4-HMAC-SHA256",
		  "&X-Amz-SignedHeaders=host&X-Amz-Security-Token=IQoJ%2Fb%2B3%3D%3D&X-Amz-Signature=", "wJalrXUtnFEMI" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ks_credentials c = creds(cases[i].session_token, 0);
		ks_msk_token t;
		ks_errbuf err = { 0 };
		char *url;

		CU_ASSERT_EQUAL_FATAL(ks_msk_iam_token(&c, cases[i].region, 1795000000, 900, &t, &err), 0);
		/* base64url without padding: only the URL-safe alphabet. */
		CU_ASSERT_EQUAL(strspn(t.token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
				strlen(t.token));
		url = decode_b64url(t.token);
		CU_ASSERT_EQUAL(strncmp(url, cases[i].prefix, strlen(cases[i].prefix)), 0);
		CU_ASSERT_PTR_NOT_NULL(strstr(url, cases[i].has));
		CU_ASSERT_PTR_NULL(strstr(url, cases[i].has_not));
		CU_ASSERT_PTR_NULL(strstr(url, "wJalrXUtnFEMI")); /* the secret never travels */
		CU_ASSERT_PTR_NOT_NULL(strstr(url, "&User-Agent=kinesink/"));
		free(url);
		ks_msk_token_clean(&t);
	}
}

static void set(ks_conf *c, const char *k, const char *v)
{
	ks_conf_errors errs = { 0 };

	CU_ASSERT_EQUAL(ks_conf_set(c, k, v, "test", 0, &errs), 0);
	if (errs.n)
		fprintf(stderr, "%s\n", errs.msgs[0]);
	ks_conf_errors_clean(&errs);
}

static void test_region(void)
{
	static const struct {
		const char *servers, *kafka_region, *aws_region, *want, *from;
	} cases[] = {
		{ "b-1.orders.abc123.c2.kafka.eu-west-1.amazonaws.com:9098,b-2.orders.abc123.c2.kafka.eu-west-1.amazonaws.com:9098",
		  NULL, "us-east-1", "eu-west-1", "bootstrap.servers" },
		{ "boot-abcd1234.c1.kafka-serverless.us-east-2.amazonaws.com:9098", NULL, "us-east-1", "us-east-2",
		  "bootstrap.servers" },
		{ "SASL_SSL://b-3.x.y.c4.kafka.ap-southeast-2.amazonaws.com:9098", NULL, "us-east-1", "ap-southeast-2",
		  "bootstrap.servers" },
		{ "localhost:9092, b-1.x.y.kafka.sa-east-1.amazonaws.com:9098", NULL, "us-east-1", "sa-east-1",
		  "bootstrap.servers" },
		{ "b-1.orders.abc123.c2.kafka.eu-west-1.amazonaws.com:9098", "eu-central-1", "us-east-1", "eu-central-1",
		  "kafka.aws.region" },
		{ "127.0.0.1:9092", NULL, "us-west-2", "us-west-2", "aws.region" },
		{ "kafka.example.com:9092", NULL, "us-west-2", "us-west-2", "aws.region" },
		{ "127.0.0.1:9092", NULL, NULL, NULL, NULL },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ks_conf c;
		char region[64] = "";
		const char *from;

		ks_conf_init(&c);
		set(&c, "kafka.bootstrap.servers", cases[i].servers);
		if (cases[i].kafka_region)
			set(&c, "kafka.aws.region", cases[i].kafka_region);
		if (cases[i].aws_region)
			set(&c, "aws.region", cases[i].aws_region);
		from = ks_msk_iam_region(&c, region, sizeof(region));
		if (cases[i].want) {
			CU_ASSERT_STRING_EQUAL(region, cases[i].want);
			CU_ASSERT_STRING_EQUAL(from, cases[i].from);
		} else {
			CU_ASSERT_PTR_NULL(from);
		}
		ks_conf_clean(&c);
	}
}

/* kafka.aws.* are kinesink's own keys: kept out of what librdkafka gets, and only valid with
 * AWS_MSK_IAM. */
static void test_conf_keys(void)
{
	static const struct {
		const char *mechanism, *key, *value;
		int enabled, ok;
	} cases[] = {
		{ "AWS_MSK_IAM", "kafka.aws.region", "eu-west-1", 1, 1 },
		{ "aws_msk_iam", "kafka.aws.credentials.role.arn", "arn:aws:iam::123456789012:role/msk", 1, 1 },
		{ "OAUTHBEARER", "kafka.aws.region", "eu-west-1", 0, 0 },
		{ NULL, "kafka.aws.credentials.role.arn", "arn:aws:iam::123456789012:role/msk", 0, 0 },
		{ "AWS_MSK_IAM", "kafka.aws.credentials.role.external_id", "x", 1, 0 }, /* needs the role */
		{ "AWS_MSK_IAM", NULL, NULL, 1, 1 },
		{ "PLAIN", NULL, NULL, 0, 1 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ks_conf c;
		ks_conf_errors errs = { 0 };
		int k, rc;

		ks_conf_init(&c);
		set(&c, "stream", "s");
		set(&c, "aws.region", "us-east-1");
		set(&c, "topic", "t");
		set(&c, "type", "append-only");
		set(&c, "input.format", "json");
		if (cases[i].mechanism)
			set(&c, "kafka.sasl.mechanism", cases[i].mechanism);
		if (cases[i].key)
			set(&c, cases[i].key, cases[i].value);
		rc = ks_conf_finalize(&c, &errs);
		CU_ASSERT_EQUAL(rc == 0, cases[i].ok);
		if (!cases[i].ok)
			CU_ASSERT_TRUE(errs.n > 0 && strstr(errs.msgs[0], cases[i].key));
		CU_ASSERT_EQUAL(ks_msk_iam_enabled(&c), cases[i].enabled);
		for (k = 0; k < c.n_kafka; k++)
			CU_ASSERT_NOT_EQUAL(strncmp(c.kafka[k].key, "aws.", 4), 0);
		ks_conf_errors_clean(&errs);
		ks_conf_clean(&c);
	}
}

int main(void)
{
	static const tu_test tests[] = {
		{ "token lifetime: presign expiry, never past the credentials'", test_lifetime },
		{ "token: base64url of the presigned kafka-cluster:Connect URL", test_token_shape },
		{ "region: kafka.aws.region, broker host names, aws.region", test_region },
		{ "kafka.aws.* keys", test_conf_keys },
		{ NULL, NULL },
	};

	return tu_main("msk_iam", tests);
}
