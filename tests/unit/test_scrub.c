/* The scrubber: each form a secret travels in, found in text and replaced; what is left alone. */
#include <openssl/evp.h>
#include <pthread.h>

#include "scrub.h"
#include "testutil.h"

/* An AWS-like secret key and session token: '/', '+' and '=' make their encoded forms differ. */
static const char SECRET[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCY+EXAMPLEKEY";
static const char TOKEN[] = "IQoJb3JpZ2luX2VjEDoaCXVzLWVhc3QtMSJHMEUCIF/Tok+en/Part2==";

static char *scrubbed(const char *in)
{
	ks_buf b;

	ks_buf_init(&b, 0);
	CU_ASSERT_EQUAL_FATAL(ks_scrub_buf(in, strlen(in), &b), 0);
	if (!b.data)
		return strdup("");
	return b.data;
}

static void check(const char *in, const char *want)
{
	char *got = scrubbed(in);

	CU_ASSERT_STRING_EQUAL(got, want);
	if (strcmp(got, want))
		fprintf(stderr, "\n  in   '%s'\n  got  '%s'\n  want '%s'\n", in, got, want);
	free(got);
}

/* Standard base64 by OpenSSL (not our encoder); url: the URL-safe alphabet without padding. */
static char *ref_b64(const unsigned char *p, size_t n, int url)
{
	char *out = malloc(4 * ((n + 2) / 3) + 1), *c;

	EVP_EncodeBlock((unsigned char *)out, p, (int)n);
	if (url) {
		for (c = out; *c; c++)
			*c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
		if ((c = strchr(out, '=')))
			*c = '\0';
	}
	return out;
}

/* Percent-encoding of RFC 3986, written out independently of the scrubber's. */
static void ref_pct(const char *v, char *out)
{
	for (; *v; v++) {
		if (strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~", *v))
			*out++ = *v;
		else
			out += sprintf(out, "%%%02X", (unsigned char)*v);
	}
	*out = '\0';
}

static void test_nothing_registered_nothing_changed(void)
{
	ks_scrub_reset();
	CU_ASSERT_EQUAL(ks_scrub_forms(), 0);
	check("AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/us-east-1/kinesis", "AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/us-east-1/kinesis");
}

static void test_raw_value_anywhere(void)
{
	char in[512], want[512];

	ks_scrub_reset();
	ks_scrub_add(SECRET, 0);
	CU_ASSERT(ks_scrub_forms() > 0);
	snprintf(in, sizeof(in), "%s", SECRET);
	check(in, "[redacted]");
	snprintf(in, sizeof(in), "key=%s;again:%s.", SECRET, SECRET);
	check(in, "key=[redacted];again:[redacted].");
	/* Innocent text, and text sharing a short start with the secret, is left alone. */
	check("wJalr is not it, nor wJalrXUt", "wJalr is not it, nor wJalrXUt");
	snprintf(want, sizeof(want), "%s", "nothing secret here");
	check(want, "nothing secret here");
}

static void test_encoded_forms(void)
{
	char in[1024], enc[512], want[1024];

	ks_scrub_reset();
	ks_scrub_add(TOKEN, 0);
	ref_pct(TOKEN, enc);
	CU_ASSERT(strcmp(enc, TOKEN) != 0);
	snprintf(in, sizeof(in), "GET /?X-Amz-Security-Token=%s&X-Amz-Date=20260101T000000Z", enc);
	check(in, "GET /?X-Amz-Security-Token=[redacted]&X-Amz-Date=20260101T000000Z");

	/* As JSON carries it, and in a form where a space is '+'. */
	ks_scrub_reset();
	ks_scrub_add("pa\"ss word\\x", 0);
	check("{\"password\":\"pa\\\"ss word\\\\x\"}", "{\"password\":\"[redacted]\"}");
	check("password=pa%22ss+word%5Cx&user=u", "password=[redacted]&user=u");
	check("password=pa%22ss%20word%5Cx&user=u", "password=[redacted]&user=u");
	snprintf(want, sizeof(want), "%s", "pass word");
	check(want, "pass word");
}

/*
 * The secret at every byte alignment inside base64 and base64url text (OpenSSL's encoding of
 * junk + secret + junk), also percent-encoded first as inside an MSK IAM token: nothing of the
 * characters only the secret determines is left, not even a 9-character window.
 */
static void test_base64_every_alignment(void)
{
	const char *values[2] = { TOKEN, NULL };
	char pct_token[512];
	int v, a, url;

	ref_pct(TOKEN, pct_token);
	values[1] = pct_token;
	ks_scrub_reset();
	ks_scrub_add(TOKEN, 0);
	for (v = 0; v < 2; v++)
		for (a = 0; a < 6; a++)
			for (url = 0; url < 2; url++) {
				unsigned char raw[1024];
				size_t n = strlen(values[v]), total, start, end, k;
				char *enc, *got;

				memcpy(raw, "\x01\x02\x03\x04\x05\x06", (size_t)a);
				memcpy(raw + a, values[v], n);
				memcpy(raw + a + n, "&User-Agent=kinesink", 20);
				total = (size_t)a + n + 20;
				enc = ref_b64(raw, total, url);
				got = scrubbed(enc);
				CU_ASSERT_PTR_NOT_NULL(strstr(got, "[redacted]"));
				start = ((size_t)a * 8 + 5) / 6;
				end = ((size_t)a + n) * 8 / 6;
				for (k = start; k + 9 <= end; k++) {
					char window[10];

					memcpy(window, enc + k, 9);
					window[9] = '\0';
					CU_ASSERT_PTR_NULL(strstr(got, window));
					if (strstr(got, window)) {
						fprintf(stderr, "\n  value %d align %d url %d: '%s' left in '%s'\n", v, a, url,
							window, got);
						break;
					}
				}
				free(enc);
				free(got);
			}
}

/* "user:password" as its Basic header carries it, padding and all. */
static void test_basic_header(void)
{
	const char *userpwd = "registry-user:s3cret-Registry-Pw!";
	char *b64 = ref_b64((const unsigned char *)userpwd, strlen(userpwd), 0), in[512];

	ks_scrub_reset();
	ks_scrub_add(userpwd, KS_SCRUB_KEEP);
	snprintf(in, sizeof(in), "echo: Authorization: Basic %s\r\nHost: registry", b64);
	check(in, "echo: Authorization: Basic [redacted]\r\nHost: registry");
	free(b64);
}

/* A message cut by a buffer's cap leaves a prefix: 9 characters or more of one are scrubbed. */
static void test_prefix_cut_by_a_cap(void)
{
	char in[512];

	ks_scrub_reset();
	ks_scrub_add(SECRET, 0);
	snprintf(in, sizeof(in), "...should have been 'x-amz-security-token:%.9s", SECRET);
	check(in, "...should have been 'x-amz-security-token:[redacted]");
	snprintf(in, sizeof(in), "cut: %.20s (truncated)", SECRET);
	check(in, "cut: [redacted] (truncated)");
	snprintf(in, sizeof(in), "eight: %.8s", SECRET);
	check(in, "eight: wJalrXUt");
}

static void test_short_values_and_longest_match(void)
{
	ks_scrub_reset();
	ks_scrub_add("abc", 0);
	ks_scrub_add(NULL, 0);
	ks_scrub_add("", 0);
	CU_ASSERT_EQUAL(ks_scrub_forms(), 0);
	check("abc abc", "abc abc");
	/* One value inside another: the longer one is replaced whole. */
	ks_scrub_add("sessiontoken", 0);
	ks_scrub_add("sessiontoken-extended-value", 0);
	check("[sessiontoken-extended-value] [sessiontoken]", "[[redacted]] [[redacted]]");
	check("x", "x");
	check("", "");
}

/* Refreshed values beyond the cap forget the oldest; configured (kept) ones stay. */
static void test_bounded_oldest_forgotten(void)
{
	char v[64];
	int i;

	ks_scrub_reset();
	ks_scrub_add("configured-secret-value", KS_SCRUB_KEEP);
	for (i = 0; i <= KS_SCRUB_MAX_VALUES; i++) {
		snprintf(v, sizeof(v), "%04d-refreshed-token", i);
		ks_scrub_add(v, 0);
	}
	/* (The values differ in their first 9 characters: a prefix of another is scrubbed too.) */
	check("0000-refreshed-token", "0000-refreshed-token");
	snprintf(v, sizeof(v), "%04d-refreshed-token", KS_SCRUB_MAX_VALUES);
	check(v, "[redacted]");
	check("0001-refreshed-token", "[redacted]");
	check("configured-secret-value", "[redacted]");
	/* Known already: nothing changes, also when it comes again to be kept. */
	ks_scrub_add("0001-refreshed-token", KS_SCRUB_KEEP);
	ks_scrub_add("0001-refreshed-token", 0);
	check("0001-refreshed-token", "[redacted]");
}

static void test_in_place_and_cap(void)
{
	char s[32];

	ks_scrub_reset();
	ks_scrub_add("abcd", 0);
	snprintf(s, sizeof(s), "abcd abcd abcd abcd");
	ks_scrub_str(s, sizeof(s));
	/* Each replacement is longer than the value: the result is cut to the buffer. */
	CU_ASSERT_STRING_EQUAL(s, "[redacted] [redacted] [redacted");
	snprintf(s, sizeof(s), "no secret");
	ks_scrub_str(s, sizeof(s));
	CU_ASSERT_STRING_EQUAL(s, "no secret");
}

/* Lines reach the stream in pieces (a secret split across writes); each is scrubbed whole. */
static void test_stream_scrubs_whole_lines(void)
{
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len), *f;

	ks_scrub_reset();
	ks_scrub_add(SECRET, 0);
	f = ks_scrub_stream(mem);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fprintf(f, "FAIL kinesis: token %.10s", SECRET);
	fflush(f);
	fprintf(f, "%s -> check\nsecond ", SECRET + 10);
	fputs(SECRET, f);
	fclose(f);
	fclose(mem);
	CU_ASSERT_STRING_EQUAL(text, "FAIL kinesis: token [redacted] -> check\nsecond [redacted]");
	free(text);
}

static void test_userinfo(void)
{
	ks_scrub_reset();
	ks_scrub_add_userinfo("http://proxyuser:pr0xy%40pass@127.0.0.1:3128/");
	ks_scrub_add_userinfo("https://registry.example.com/subjects?x=a@b");
	ks_scrub_add_userinfo("not a url");
	check("pr0xy%40pass and pr0xy@pass", "[redacted] and [redacted]");
	check("proxyuser a@b", "proxyuser a@b");
}

/* Texts scrubbed on several threads while values arrive (ThreadSanitizer checks the locking). */
static void *scrub_lines(void *arg)
{
	int i, *bad = arg;

	for (i = 0; i < 2000; i++) {
		char line[256];

		snprintf(line, sizeof(line), "line %d: echoed %s back", i, SECRET);
		ks_scrub_str(line, sizeof(line));
		if (strstr(line, SECRET) || !strstr(line, "[redacted]"))
			(*bad)++;
	}
	return NULL;
}

static void test_threads(void)
{
	pthread_t t[4];
	int bad[4] = { 0 }, i;
	char v[64];

	ks_scrub_reset();
	ks_scrub_add(SECRET, KS_SCRUB_KEEP);
	for (i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, scrub_lines, &bad[i]);
	for (i = 0; i < 300; i++) {
		snprintf(v, sizeof(v), "msk-iam-token-%d-refreshed", i);
		ks_scrub_add(v, 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		CU_ASSERT_EQUAL(bad[i], 0);
	}
	ks_scrub_reset();
}

int main(void)
{
	static const tu_test tests[] = {
		{ "nothing registered, nothing changed", test_nothing_registered_nothing_changed },
		{ "a raw value anywhere", test_raw_value_anywhere },
		{ "percent-encoded, form and JSON forms", test_encoded_forms },
		{ "base64 and base64url at every alignment", test_base64_every_alignment },
		{ "a Basic header", test_basic_header },
		{ "a prefix cut by a cap", test_prefix_cut_by_a_cap },
		{ "short values ignored, the longest match wins", test_short_values_and_longest_match },
		{ "bounded: the oldest refreshed value forgotten", test_bounded_oldest_forgotten },
		{ "in place, cut to the buffer", test_in_place_and_cap },
		{ "a stream scrubs whole lines", test_stream_scrubs_whole_lines },
		{ "a URL's password", test_userinfo },
		{ "threads", test_threads },
		{ NULL, NULL },
	};

	return tu_main("scrub", tests);
}
