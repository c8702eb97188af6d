/*
 * SigV4 against AWS's published test suite, data-driven: tests/data/sigv4/<case>/request is the
 * raw request ("METHOD path?query", "Name:value" header lines, a blank line, the body), `authz`
 * the Authorization header AWS documents, and optionally `creq` / `sts` the canonical request and
 * string to sign. Credentials and scope are the suite's: AKIDEXAMPLE, us-east-1, service "service".
 */
#include <strings.h>
#include <time.h>

#include "sigv4.h"
#include "testutil.h"

static void run_case(const char *dir, const char *name)
{
	char *req = tu_read_in(dir, "request", NULL), *authz = tu_read_in(dir, "authz", NULL);
	char *creq = tu_read_in(dir, "creq", NULL), *sts = tu_read_in(dir, "sts", NULL);
	char *line, *save = NULL, *body, *method, *target, *query, host[256] = "";
	ks_header hs[32];
	int n = 0;
	struct tm tm;
	time_t when = 0;
	ks_sigv4_result res;
	ks_sigv4_keys keys = { "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", NULL };

	CU_ASSERT_PTR_NOT_NULL_FATAL(req);
	CU_ASSERT_PTR_NOT_NULL_FATAL(authz);
	body = strstr(req, "\n\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(body);
	*body = '\0';
	body += 2;
	method = strtok_r(req, " \n", &save);
	target = strtok_r(NULL, "\n", &save);
	query = strchr(target, '?');
	if (query)
		*query++ = '\0';
	while ((line = strtok_r(NULL, "\n", &save))) {
		char *colon = strchr(line, ':');

		*colon = '\0';
		if (!strcasecmp(line, "Host"))
			snprintf(host, sizeof(host), "%s", colon + 1);
		else if (!strcasecmp(line, "X-Amz-Date")) {
			memset(&tm, 0, sizeof(tm));
			strptime(colon + 1, "%Y%m%dT%H%M%SZ", &tm);
			when = timegm(&tm);
		} else if (n < 32) {
			hs[n++] = (ks_header){ line, colon + 1 };
		}
	}
	{
		ks_sigv4_request r = { method, host, target, query, hs, n, body, strlen(body), "us-east-1", "service" };

		CU_ASSERT_EQUAL_FATAL(ks_sigv4_sign(&r, &keys, when, &res), 0);
	}
	tu_chomp(authz);
	TU_ASSERT_STR(name, res.authorization, authz);
	if (creq) {
		tu_chomp(creq);
		TU_ASSERT_STR(name, res.canonical_request, creq);
	}
	if (sts) {
		tu_chomp(sts);
		TU_ASSERT_STR(name, res.string_to_sign, sts);
	}
	ks_sigv4_result_clean(&res);
	free(req);
	free(authz);
	free(creq);
	free(sts);
}

static void test_suite_vectors(void)
{
	CU_ASSERT(tu_each_case("sigv4", run_case) >= 3);
}

static void test_session_token_is_signed(void)
{
	ks_header ct = { "Content-Type", "application/x-amz-json-1.1" };
	ks_sigv4_request r = { "POST", "127.0.0.1:4567", "/", NULL, &ct, 1, "{}", 2, "us-east-1", "kinesis" };
	ks_sigv4_keys keys = { "AKID", "SECRET", "TOKEN" };
	ks_sigv4_result res;

	CU_ASSERT_EQUAL_FATAL(ks_sigv4_sign(&r, &keys, 1795000000, &res), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(res.canonical_request, "host:127.0.0.1:4567\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(res.canonical_request, "x-amz-security-token:TOKEN\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(res.authorization, "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token,"));
	/* Never the secret, in anything the signer returns. */
	CU_ASSERT_PTR_NULL(strstr(res.authorization, "SECRET"));
	CU_ASSERT_PTR_NULL(strstr(res.canonical_request, "SECRET"));
	CU_ASSERT_PTR_NULL(strstr(res.string_to_sign, "SECRET"));
	ks_sigv4_result_clean(&res);
}

int main(void)
{
	static const tu_test tests[] = {
		{ "AWS test-suite vectors (tests/data/sigv4)", test_suite_vectors },
		{ "session token is signed, secret never shown", test_session_token_is_signed },
		{ NULL, NULL },
	};

	return tu_main("sigv4", tests);
}
