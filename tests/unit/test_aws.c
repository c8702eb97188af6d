/* The AWS layer: endpoints by region, URLs as signed, signed header lines (against the SigV4
 * signer they wrap) and the errors of JSON and XML answers. */
#include <string.h>

#include "aws.h"
#include "testutil.h"

static void test_endpoint_by_region(void)
{
	char *u;

	u = ks_aws_endpoint("kinesis", "eu-west-1", NULL);
	CU_ASSERT_STRING_EQUAL(u, "https://kinesis.eu-west-1.amazonaws.com");
	free(u);
	u = ks_aws_endpoint("kinesis", "cn-north-1", NULL);
	CU_ASSERT_STRING_EQUAL(u, "https://kinesis.cn-north-1.amazonaws.com.cn");
	free(u);
	u = ks_aws_endpoint("kinesis", "cn-north-1", "http://127.0.0.1:4567");
	CU_ASSERT_STRING_EQUAL(u, "http://127.0.0.1:4567");
	free(u);
	u = ks_aws_endpoint("sts", "us-east-1", "");
	CU_ASSERT_STRING_EQUAL(u, "https://sts.us-east-1.amazonaws.com");
	free(u);
}

static void check_url(const char *url, const char *host, const char *path)
{
	ks_aws_url u;

	ks_aws_url_parse(url, &u);
	CU_ASSERT_STRING_EQUAL(u.host, host);
	CU_ASSERT_STRING_EQUAL(u.path, path);
}

static void test_url(void)
{
	check_url("https://kinesis.eu-west-1.amazonaws.com", "kinesis.eu-west-1.amazonaws.com", "/");
	check_url("https://kinesis.eu-west-1.amazonaws.com:443/", "kinesis.eu-west-1.amazonaws.com", "/");
	check_url("http://127.0.0.1:80/x/y", "127.0.0.1", "/x/y");
	check_url("http://127.0.0.1:4567", "127.0.0.1:4567", "/");
	check_url("https://h:80/", "h:80", "/");
	check_url("http://h:443/p", "h:443", "/p");
	check_url("[::1]:9000/sts", "[::1]:9000", "/sts");
}

static void test_signed_headers(void)
{
	ks_aws_url u;
	ks_aws_call call = { "POST", &u, "eu-west-1", "kinesis", "application/x-amz-json-1.1",
			     "Kinesis_20131202.PutRecords", "{}", 2 };
	ks_sigv4_keys keys = { "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "TOKEN" };
	ks_header hs[2] = { { "Content-Type", "application/x-amz-json-1.1" },
			    { "X-Amz-Target", "Kinesis_20131202.PutRecords" } };
	ks_sigv4_request sreq = { "POST", "127.0.0.1:4567", "/", NULL, hs, 2, "{}", 2, "eu-west-1", "kinesis" };
	ks_sigv4_result sig;
	ks_aws_headers h;
	ks_errbuf err;
	char want[1024];
	time_t now = 1764547200;

	ks_aws_url_parse("http://127.0.0.1:4567", &u);
	CU_ASSERT_EQUAL_FATAL(ks_aws_sign(&call, &keys, now, &h, &err), 0);
	CU_ASSERT_EQUAL_FATAL(ks_sigv4_sign(&sreq, &keys, now, &sig), 0);
	CU_ASSERT_EQUAL_FATAL(h.n, 6);
	CU_ASSERT_STRING_EQUAL(h.lines[0], "Host: 127.0.0.1:4567");
	CU_ASSERT_STRING_EQUAL(h.lines[1], "Content-Type: application/x-amz-json-1.1");
	CU_ASSERT_STRING_EQUAL(h.lines[2], "X-Amz-Target: Kinesis_20131202.PutRecords");
	CU_ASSERT_STRING_EQUAL(h.lines[3], "X-Amz-Date: 20251201T000000Z");
	snprintf(want, sizeof(want), "Authorization: %s", sig.authorization);
	CU_ASSERT_STRING_EQUAL(h.lines[4], want);
	CU_ASSERT_PTR_NOT_NULL(strstr(h.lines[4], "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target"));
	CU_ASSERT_STRING_EQUAL(h.lines[5], "X-Amz-Security-Token: TOKEN");
	CU_ASSERT_PTR_NULL(h.lines[6]);
	ks_aws_headers_clean(&h);
	ks_sigv4_result_clean(&sig);

	/* No token, no target: the STS form. */
	keys.session_token = NULL;
	call.target = NULL;
	call.service = "sts";
	call.content_type = "application/x-www-form-urlencoded";
	CU_ASSERT_EQUAL_FATAL(ks_aws_sign(&call, &keys, now, &h, &err), 0);
	CU_ASSERT_EQUAL(h.n, 4);
	CU_ASSERT_STRING_EQUAL(h.lines[1], "Content-Type: application/x-www-form-urlencoded");
	CU_ASSERT_PTR_NOT_NULL(strstr(h.lines[3], "/eu-west-1/sts/aws4_request, SignedHeaders=content-type;host;x-amz-date,"));
	ks_aws_headers_clean(&h);
}

static void check_error(const char *body, const char *type, const char *message)
{
	ks_aws_error e;

	ks_aws_error_parse(body, body ? strlen(body) : 0, &e);
	CU_ASSERT_STRING_EQUAL(e.type, type);
	CU_ASSERT_STRING_EQUAL(e.message, message);
}

static void test_errors(void)
{
	check_error("{\"__type\":\"com.amazonaws.kinesis#ResourceNotFoundException\",\"message\":\"Stream s1 not found\"}",
		    "ResourceNotFoundException", "Stream s1 not found");
	check_error("{\"__type\":\"AccessDeniedException\",\"Message\":\"User is not authorized\"}",
		    "AccessDeniedException", "User is not authorized");
	check_error("{\"__type\":\"InternalFailure\"}", "InternalFailure", "");
	check_error("<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type>"
		    "<Code>AccessDenied</Code><Message>Not authorized to perform sts:AssumeRole</Message></Error>"
		    "<RequestId>r-1</RequestId></ErrorResponse>",
		    "AccessDenied", "Not authorized to perform sts:AssumeRole");
	check_error("<html>502 Bad Gateway</html>", "", "");
	check_error("", "", "");
	check_error(NULL, "", "");
	/* A refused signature: the first sentence and the hint, not the echoed canonical request. */
	check_error("{\"__type\":\"InvalidSignatureException\",\"message\":\"The request signature we calculated does "
		    "not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult "
		    "the service documentation for details.\\n\\nThe Canonical String for this request should have been\\n"
		    "'POST\\n/\\n\\nhost:kinesis.us-east-1.amazonaws.com\\nx-amz-security-token:FwoGZXIvYXdzEXAMPLE\\n'\\n\\n"
		    "The String-to-Sign should have been\\n'AWS4-HMAC-SHA256\\n20260101T000000Z\\n'\\n\"}",
		    "InvalidSignatureException", "The request signature we calculated does not match the signature you "
		    "provided. (kinesink: check the AWS secret access key, the region aws.region and this machine's clock)");
	check_error("<ErrorResponse><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code><Message>The request "
		    "signature we calculated does not match the signature you provided.\n\nThe canonical request "
		    "should have been 'POST /'</Message></Error><RequestId>r-2</RequestId></ErrorResponse>",
		    "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you "
		    "provided. (kinesink: check the AWS secret access key, the region aws.region and this machine's clock)");
	check_error("{\"__type\":\"InvalidSignatureException\",\"message\":\"Signature expired: 20260101T000000Z is now "
		    "earlier than 20260101T000500Z (20260101T001000Z - 5 min.)\"}", "InvalidSignatureException",
		    "Signature expired: 20260101T000000Z is now earlier than 20260101T000500Z (20260101T001000Z - 5 min.) "
		    "(kinesink: check the AWS secret access key, the region aws.region and this machine's clock)");
	/* Any other message is kept whole. */
	check_error("{\"__type\":\"AccessDeniedException\",\"message\":\"User: arn:aws:sts::1:assumed-role/r is not "
		    "authorized. Ask your admin.\"}", "AccessDeniedException",
		    "User: arn:aws:sts::1:assumed-role/r is not authorized. Ask your admin.");
	CU_ASSERT_STRING_EQUAL(ks_aws_short_type("a#b#C"), "C");
	CU_ASSERT_STRING_EQUAL(ks_aws_short_type(NULL), "");
}

int main(void)
{
	static const tu_test tests[] = {
		{ "endpoint by region", test_endpoint_by_region },
		{ "endpoint URLs as signed", test_url },
		{ "signed header lines", test_signed_headers },
		{ "errors of JSON and XML answers", test_errors },
		{ NULL, NULL },
	};

	return tu_main("aws", tests);
}
