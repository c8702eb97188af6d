/*
 * fakekinesis: a fast local Kinesis PutRecords endpoint for fault injection and benchmarks.
 * It enforces the service's request limits (so a writer that breaks them fails loudly),
 * optionally verifies SigV4 signatures, injects faults at a given rate, and logs every
 * entry it accepted, so tests can check exactly-once acceptance and per-key order.
 *
 *   fakekinesis [--port N] [--port-file F] [--log F] [--seed N]
 *               [--fail-rate R] [--http500-rate R] [--drop-rate R] [--throttle-rate R]
 *               [--expired-token N] [--verify-sigv4 AKID:SECRET --sigv4-verifier PY [--region R]]
 *               [--count-only] [--stream NAME]
 *               [--hold-file F] [--shards N] [--shard-limits] [--shard-records-per-sec N]
 *               [--shard-bytes-per-sec N] [--max-record-kib N] [--list-page N] [--auto]
 *               [--latency-ms MIN[:MAX]] [--accept-drop-rate R] [--list-shards-error TYPE[:N]]
 *
 * --auto: an on-demand stream with RecordDistributionStrategy AUTO (DescribeStreamSummary says
 * so): each entry goes to a shard picked at random, whatever its partition key or hash key.
 *
 * Rates are probabilities in 0..1: --fail-rate fails single entries with
 * ProvisionedThroughputExceededException, --http500-rate answers whole requests with 500,
 * --drop-rate closes the connection without an answer, --throttle-rate answers whole requests
 * with a 400 LimitExceededException. --expired-token N answers the first N requests with
 * ExpiredTokenException. --verify-sigv4 refuses (403 InvalidSignatureException) a request whose
 * signature botocore, run as --sigv4-verifier (tests/tools/sigv4_verify.py), does not find right
 * for that key in --region (us-east-1 unless given), the region this endpoint stands for.
 * --hold-file F throttles every PutRecords while the file F exists, so a
 * test can hold the writer back for as long as it needs and then let it go. --count-only skips decoding (benchmarks): entries are counted from
 * the JSON text. SIGTERM/SIGINT print the counters and exit.
 *
 * The service is not instant, and an answer can be lost after the work was done:
 * --latency-ms MIN[:MAX] accepts each PutRecords when it arrives and answers it MIN to MAX ms
 * (uniformly drawn) later, each connection on a thread of its own, so answers come back out of
 * order (and an answer that outlasts request.timeout.ms is lost after the entries were accepted); --accept-drop-rate R
 * accepts a request's entries (they are logged) and then closes the connection without an
 * answer, so the writer sends accepted entries again. --list-shards-error TYPE[:N] answers the
 * first N ListShards calls (every one without N) with HTTP 400 TYPE: AccessDeniedException (an
 * IAM policy without kinesis:ListShards) or LimitExceededException (the account's control-plane
 * rate).
 *
 * Limits and counters for benchmarks: --limit-model window|bucket says how --shard-limits counts:
 * per calendar second, as the service counts (window), or in token buckets holding one second
 * (bucket, the default). --stats-file F keeps the counters in F as JSON (rewritten whole every
 * 100 ms while they change, and at exit): per shard the entries accepted and throttled, bytes,
 * 25 KB payload units, and the first and last acceptance (ms since the epoch). With --shards N
 * above 1 or --shard-limits, --count-only still routes each entry to its shard by a scan of the
 * request text (no JSON parser), enforces the limits and answers with its shard's id.
 *
 * Shards (fakeshards.c): the stream has --shards N open shards splitting the hash-key space as
 * CreateStream does; each entry goes to the open shard holding MD5(PartitionKey) or its
 * ExplicitHashKey, and its answer names that shard. --shard-limits enforces the per-shard write
 * limits (1,000 records/s and 1 MiB/s, or the --shard-*-per-sec values) as token buckets holding
 * one second: entries over them fail with ProvisionedThroughputExceededException. ListShards
 * (paginated: NextToken, MaxResults, at most --list-page shards a page; ShardFilter AT_LATEST),
 * SplitShard, MergeShards and UpdateShardCount reshard the stream while it is written to, as the
 * service does; DescribeStreamSummary says OpenShardCount and MaxRecordSizeInKiB (--max-record-kib,
 * 1024 to 10240: records up to that size, requests up to 10 MiB once it is over 1024). Requests may
 * name the stream by StreamName or StreamARN. The accepted log has one line per entry:
 * sequence, partition key, data (base64), shard id, hash key (decimal).
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "fakeshards.h"

#define MAX_RECORDS 500
#define MAX_REQUEST_BYTES (5 * 1024 * 1024)
#define MAX_LARGE_REQUEST_BYTES (10 * 1024 * 1024)
#define ACCOUNT "123456789012"

static struct {
	double fail_rate, http500_rate, drop_rate, throttle_rate;
	int expired_token;
	const char *akid, *secret, *stream, *hold_file;
	const char *region, *verifier, *key;  /* --region, --sigv4-verifier, --verify-sigv4 */
	FILE *ver_to, *ver_from;               /* the verifier's stdin and stdout */
	pid_t ver_pid;
	pthread_mutex_t ver_lock;              /* one request at a time through the verifier */
	int count_only, auto_distribution;
	int max_record_kib, list_page;
	int latency_min, latency_max;       /* --latency-ms */
	double accept_drop_rate;            /* --accept-drop-rate */
	char list_error[64];                /* --list-shards-error TYPE, for list_error_left calls (-1: all) */
	int list_error_left;
	uint64_t accepted_dropped;
	fk_stream st;
	FILE *log;
	const char *stats_file;
	pthread_mutex_t lock;
	uint64_t rng, seq;
	uint64_t requests, accepted, failed_entries, http500, dropped, throttled, rejected, bytes;
} g = { .lock = PTHREAD_MUTEX_INITIALIZER, .ver_lock = PTHREAD_MUTEX_INITIALIZER, .region = "us-east-1" };

static volatile sig_atomic_t stop;

static void on_signal(int s)
{
	(void)s;
	stop = 1;
}

/* Deterministic with --seed; callers hold g.lock. */
static double chance(void)
{
	g.rng ^= g.rng << 13;
	g.rng ^= g.rng >> 7;
	g.rng ^= g.rng << 17;
	return (double)(g.rng >> 11) / (double)(1ULL << 53);
}

typedef struct conn {
	ks_buf body;
} conn;

static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, const char *body)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
	char rid[64];
	enum MHD_Result ret;

	snprintf(rid, sizeof(rid), "fake-%llu", (unsigned long long)__atomic_add_fetch(&g.requests, 0, __ATOMIC_RELAXED));
	MHD_add_response_header(r, "Content-Type", "application/x-amz-json-1.1");
	MHD_add_response_header(r, "x-amzn-RequestId", rid);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result error(struct MHD_Connection *c, unsigned status, const char *type, const char *msg)
{
	char body[1024];

	snprintf(body, sizeof(body), "{\"__type\":\"%s\",\"message\":\"%s\"}", type, msg);
	return respond(c, status, body);
}

static size_t b64_decoded_len(const char *s, size_t n)
{
	size_t pad = 0;

	if (n % 4)
		return (size_t)-1;
	if (n && s[n - 1] == '=')
		pad++;
	if (n > 1 && s[n - 2] == '=')
		pad++;
	return n / 4 * 3 - pad;
}

/*
 * --verify-sigv4: botocore checks each request's signature (tests/tools/sigv4_verify.py, a
 * process of its own fed one request a line), for the region this endpoint serves (--region),
 * not the one the request claims. The endpoint's own C would prove nothing about the project's
 * signer, which it shares.
 */
static int verifier_start(const char *script, const char *key)
{
	int in[2], out[2];
	pid_t pid;

	if (pipe(in) || pipe(out))
		return -1;
	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		char keyarg[1024];

		snprintf(keyarg, sizeof(keyarg), "%s", key);
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[0]), close(in[1]), close(out[0]), close(out[1]);
		execl("/usr/bin/python3", "python3", script, "--serve", "--region", g.region, "--service", "kinesis",
		      "--key", keyarg, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	g.ver_pid = pid;
	g.ver_to = fdopen(in[1], "w");
	g.ver_from = fdopen(out[0], "r");
	return g.ver_to && g.ver_from ? 0 : -1;
}

static enum MHD_Result add_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	(void)kind;
	json_object_set_new(cls, key, json_string(value ? value : ""));
	return MHD_YES;
}

/* 0 when botocore finds the signature right; else -1 and its reason in @p why. */
static int check_sigv4(struct MHD_Connection *c, const conn *cn, const char *path, char *why, size_t wn)
{
	const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
	json_t *headers = json_object(), *req;
	char url[512], line[896], *text, *b64;
	size_t n = cn->body.len;
	int ok;

	if (!(b64 = malloc(4 * ((n + 2) / 3) + 1))) {
		json_decref(headers);
		snprintf(why, wn, "out of memory");
		return -1;
	}
	EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)cn->body.data, (int)n);
	MHD_get_connection_values(c, MHD_HEADER_KIND, add_header, headers);
	snprintf(url, sizeof(url), "http://%s%s", host ? host : "localhost", path);
	req = json_pack("{s:s,s:s,s:o,s:s}", "method", "POST", "url", url, "headers", headers, "body_b64", b64);
	text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	free(b64);
	pthread_mutex_lock(&g.ver_lock);
	ok = text && fprintf(g.ver_to, "%s\n", text) > 0 && fflush(g.ver_to) == 0 && fgets(line, sizeof(line), g.ver_from);
	pthread_mutex_unlock(&g.ver_lock);
	free(text);
	if (!ok) {
		snprintf(why, wn, "the signature verifier (botocore) did not answer");
		return -1;
	}
	line[strcspn(line, "\n")] = '\0';
	if (strcmp(line, "OK") == 0)
		return 0;
	snprintf(why, wn, "%s", strncmp(line, "FAIL ", 5) == 0 ? line + 5 : line);
	return -1;
}

static const char *skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
		p++;
	return p;
}

/* The JSON string whose opening quote is at @p: the position after its closing quote, or NULL. */
static const char *scan_string(const char *p, const char *end)
{
	for (p++; p < end; p++) {
		if (*p == '\\')
			p++;
		else if (*p == '"')
			return p + 1;
	}
	return NULL;
}

static int hex4(const char *p, unsigned *u)
{
	int i;

	for (*u = 0, i = 0; i < 4; i++) {
		int c = p[i], d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
				   : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;

		if (d < 0)
			return -1;
		*u = *u << 4 | (unsigned)d;
	}
	return 0;
}

static size_t put_utf8(char *out, unsigned c)
{
	if (c < 0x80) {
		out[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		out[0] = (char)(0xC0 | c >> 6);
		out[1] = (char)(0x80 | (c & 0x3F));
		return 2;
	}
	if (c < 0x10000) {
		out[0] = (char)(0xE0 | c >> 12);
		out[1] = (char)(0x80 | (c >> 6 & 0x3F));
		out[2] = (char)(0x80 | (c & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | c >> 18);
	out[1] = (char)(0x80 | (c >> 12 & 0x3F));
	out[2] = (char)(0x80 | (c >> 6 & 0x3F));
	out[3] = (char)(0x80 | (c & 0x3F));
	return 4;
}

/* The inside [p, q) of a JSON string unescaped into @out (at most @cap bytes): its length, or
 * (size_t)-1 when it is malformed or longer. */
static size_t unescape(const char *p, const char *q, char *out, size_t cap)
{
	static const char from[] = "bfnrt\"\\/", to[] = "\b\f\n\r\t\"\\/";
	size_t n = 0;

	while (p < q) {
		unsigned c = (unsigned char)*p++, lo;
		const char *at;

		if (c == '\\' && p < q && *p == 'u') {
			if (q - p < 5 || hex4(p + 1, &c))
				return (size_t)-1;
			p += 5;
			if (c >= 0xD800 && c < 0xDC00 && q - p >= 6 && p[0] == '\\' && p[1] == 'u' && !hex4(p + 2, &lo) &&
			    lo >= 0xDC00 && lo < 0xE000) {
				c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00);
				p += 6;
			}
			if (n + 4 > cap)
				return (size_t)-1;
			n += put_utf8(out + n, c);
			continue;
		}
		if (c == '\\') {
			if (p >= q || !*p || !(at = strchr(from, *p)))
				return (size_t)-1;
			c = (unsigned char)to[at - from];
			p++;
		}
		if (n >= cap)
			return (size_t)-1;
		out[n++] = (char)c;
	}
	return n;
}

/* What --count-only needs of an entry to route and count it. */
typedef struct scanned {
	fk_u128 hash; /* ExplicitHashKey, or MD5 of the partition key */
	size_t bytes; /* decoded data and partition key */
} scanned;

static int member_is(const char *name, const char *name_end, const char *want)
{
	size_t n = strlen(want);

	return (size_t)(name_end - name) == n + 2 && memcmp(name + 1, want, n) == 0;
}

/* The entry object at @p of a PutRecords body: its hash key and size in @e. The position after it,
 * or NULL when it is not an object with PartitionKey and Data strings (and a sound ExplicitHashKey). */
static const char *scan_entry(const char *p, const char *end, scanned *e)
{
	const char *data = NULL, *data_end = NULL, *ehk = NULL, *ehk_end = NULL, *v;
	char key[1024];
	size_t key_len = (size_t)-1, escapes = 0, dl;

	p = skip_ws(p, end);
	if (p >= end || *p != '{')
		return NULL;
	p = skip_ws(p + 1, end);
	while (p < end && *p != '}') {
		const char *name = p, *name_end;

		if (*p != '"' || !(name_end = scan_string(p, end)))
			return NULL;
		p = skip_ws(name_end, end);
		if (p >= end || *p != ':')
			return NULL;
		v = p = skip_ws(p + 1, end);
		if (p < end && *p == '"') {
			if (!(p = scan_string(p, end)))
				return NULL;
			if (member_is(name, name_end, "PartitionKey"))
				key_len = unescape(v + 1, p - 1, key, sizeof(key));
			else if (member_is(name, name_end, "Data"))
				data = v + 1, data_end = p - 1;
			else if (member_is(name, name_end, "ExplicitHashKey"))
				ehk = v + 1, ehk_end = p - 1;
		} else {
			while (p < end && *p != ',' && *p != '}') /* null or a number: none of ours */
				p++;
		}
		p = skip_ws(p, end);
		if (p < end && *p == ',')
			p = skip_ws(p + 1, end);
	}
	if (p >= end || key_len == (size_t)-1 || key_len == 0 || !data)
		return NULL;
	for (v = data; v < data_end; v++) /* base64 text may escape its '/' */
		escapes += *v == '\\';
	if ((dl = b64_decoded_len(data, (size_t)(data_end - data) - escapes)) == (size_t)-1)
		return NULL;
	e->bytes = dl + key_len;
	if (ehk ? ks_u128_parse(ehk, (size_t)(ehk_end - ehk), &e->hash) != 0 : (e->hash = ks_hash_key(key, key_len), 0))
		return NULL;
	return p + 1;
}

/* The entries of a PutRecords body's Records array into @out (at most @cap): how many, or -1 when
 * the body is not one --count-only can read. */
static int scan_records(const char *body, size_t len, scanned *out, int cap)
{
	const char *end = body + len, *p = body ? strstr(body, "\"Records\"") : NULL;
	int n = 0;

	if (!p)
		return -1;
	p = skip_ws(p + 9, end);
	if (p >= end || *p != ':')
		return -1;
	p = skip_ws(p + 1, end);
	if (p >= end || *p != '[')
		return -1;
	for (p = skip_ws(p + 1, end); p < end && *p != ']';) {
		if (n >= cap || !(p = scan_entry(p, end, &out[n++])))
			return -1;
		p = skip_ws(p, end);
		if (p < end && *p == ',')
			p = skip_ws(p + 1, end);
	}
	return p < end ? n : -1;
}

/* --count-only with shards or limits: each entry routed to its shard and counted against its
 * limits, answered with that shard's id, with no JSON parser and no log. */
static enum MHD_Result put_records_routed(struct MHD_Connection *c, conn *cn)
{
	scanned *es = malloc(sizeof(*es) * (MAX_RECORDS + 1));
	int n, i, failed = 0;
	int64_t now = ks_now_ms();
	size_t total = 0;
	ks_buf out;
	enum MHD_Result ret;
	char num[16];

	if (!es)
		return error(c, 500, "InternalFailure", "out of memory");
	if ((n = scan_records(cn->body.data, cn->body.len, es, MAX_RECORDS + 1)) < 1 || n > MAX_RECORDS) {
		free(es);
		__atomic_add_fetch(&g.rejected, 1, __ATOMIC_RELAXED);
		return error(c, 400, "ValidationException", "Records must hold 1 to 500 entries, each with PartitionKey and Data");
	}
	ks_buf_init(&out, 0);
	ks_buf_puts(&out, "{\"FailedRecordCount\":@@@@@@@@@@,\"Records\":[");
	pthread_mutex_lock(&g.lock);
	for (i = 0; i < n; i++) {
		int sh = fk_route(&g.st, es[i].hash);

		if (i)
			ks_buf_append(&out, ",", 1);
		if (sh < 0 || !fk_admit(&g.st, sh, es[i].bytes, now)) {
			failed++;
			g.failed_entries++;
			ks_buf_printf(&out, "{\"ErrorCode\":\"ProvisionedThroughputExceededException\",\"ErrorMessage\":\"Rate exceeded for shard %s in stream %s under account %s.\"}",
				      sh < 0 ? "?" : g.st.shards[sh].id, g.stream ? g.stream : "s", ACCOUNT);
			continue;
		}
		g.accepted++;
		total += es[i].bytes;
		ks_buf_printf(&out, "{\"SequenceNumber\":\"%020llu\",\"ShardId\":\"%s\"}", (unsigned long long)++g.seq,
			      g.st.shards[sh].id);
	}
	g.bytes += total;
	pthread_mutex_unlock(&g.lock);
	ks_buf_puts(&out, "]}");
	snprintf(num, sizeof(num), "%-10d", failed); /* the count in the room left for it, blanks after */
	memcpy(strstr(out.data, "@@@@@@@@@@"), num, 10);
	ret = respond(c, 200, out.data);
	ks_buf_clean(&out);
	free(es);
	return ret;
}

static enum MHD_Result put_records_count_only(struct MHD_Connection *c, conn *cn)
{
	const char *p = cn->body.data;
	size_t n = 0;
	ks_buf out;
	enum MHD_Result ret;

	if (g.st.n > 1 || g.st.limits)
		return put_records_routed(c, cn);
	while ((p = strstr(p, "\"PartitionKey\":"))) {
		n++;
		p += 15;
	}
	if (n > MAX_RECORDS || cn->body.len > MAX_REQUEST_BYTES * 2)
		return error(c, 400, "ValidationException", "too many records or bytes");
	ks_buf_init(&out, 0);
	ks_buf_puts(&out, "{\"FailedRecordCount\":0,\"Records\":[");
	pthread_mutex_lock(&g.lock);
	for (size_t i = 0; i < n; i++)
		ks_buf_printf(&out, "%s{\"SequenceNumber\":\"%llu\",\"ShardId\":\"shardId-000000000000\"}", i ? "," : "",
			      (unsigned long long)++g.seq);
	g.accepted += n;
	g.bytes += cn->body.len;
	if (n) {
		g.st.shards[0].accepted += n;
		g.st.shards[0].last_ms = ks_now_ms();
		if (!g.st.shards[0].first_ms)
			g.st.shards[0].first_ms = g.st.shards[0].last_ms;
	}
	pthread_mutex_unlock(&g.lock);
	ks_buf_puts(&out, "]}");
	ret = respond(c, 200, out.data);
	ks_buf_clean(&out);
	return ret;
}

/* The stream a request names by StreamName or StreamARN: 0 when it is ours (any, without --stream). */
static int stream_ok(json_t *root)
{
	const char *name = json_string_value(json_object_get(root, "StreamName"));
	const char *arn = json_string_value(json_object_get(root, "StreamARN"));
	const char *slash;

	if (arn) {
		/* arn:aws:kinesis:REGION:ACCOUNT:stream/NAME */
		if (strncmp(arn, "arn:", 4) != 0 || !strstr(arn, ":kinesis:") || !(slash = strstr(arn, ":stream/")))
			return -1;
		if (name && strcmp(name, slash + 8) != 0)
			return -1;
		name = slash + 8;
	}
	if (!name)
		return -1;
	return g.stream && strcmp(name, g.stream) != 0 ? -1 : 0;
}

static size_t max_record_bytes(void)
{
	return (size_t)g.max_record_kib * 1024;
}

static size_t max_request_bytes(void)
{
	return g.max_record_kib > 1024 ? MAX_LARGE_REQUEST_BYTES : MAX_REQUEST_BYTES;
}

/* An entry's hash key: its ExplicitHashKey, or MD5 of its partition key. -1: a bad ExplicitHashKey. */
static int entry_hash(json_t *e, const char *key, fk_u128 *h)
{
	json_t *ehk = json_object_get(e, "ExplicitHashKey");

	if (ehk && !json_is_null(ehk))
		return json_is_string(ehk) && !ks_u128_parse(json_string_value(ehk), json_string_length(ehk), h) ? 0 : -1;
	*h = ks_hash_key(key, strlen(key));
	return 0;
}

/* Characters of a UTF-8 string, as Kinesis counts a partition key's length: UTF-16 units. */
static size_t utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			n += (unsigned char)*s >= 0xF0 ? 2 : 1;
	return n;
}

/* --latency-ms: the wait between the work done (entries accepted) and the answer sent. */
static void answer_latency(void)
{
	int ms;

	if (g.latency_max <= 0)
		return;
	pthread_mutex_lock(&g.lock);
	ms = g.latency_min + (int)(chance() * (g.latency_max - g.latency_min + 1));
	pthread_mutex_unlock(&g.lock);
	usleep((useconds_t)ms * 1000);
}

/* @p no_answer: the entries are accepted, then the connection is closed without an answer. */
static enum MHD_Result put_records(struct MHD_Connection *c, conn *cn, int no_answer)
{
	json_error_t jerr;
	json_t *root = json_loadb(cn->body.data ? cn->body.data : "", cn->body.len, 0, &jerr), *recs, *e;
	size_t i, n, total = 0;
	ks_buf out;
	enum MHD_Result ret;
	int failed = 0;
	int64_t now = ks_now_ms();
	char msg[256];

	if (!root)
		return error(c, 400, "SerializationException", jerr.text);
	recs = json_object_get(root, "Records");
	if (stream_ok(root)) {
		json_decref(root);
		return error(c, 400, "ResourceNotFoundException", "Stream not found");
	}
	n = json_array_size(recs);
	if (!json_is_array(recs) || n == 0 || n > MAX_RECORDS) {
		json_decref(root);
		__atomic_add_fetch(&g.rejected, 1, __ATOMIC_RELAXED);
		snprintf(msg, sizeof(msg), "Records must have between 1 and %d entries, got %zu", MAX_RECORDS, n);
		return error(c, 400, "ValidationException", msg);
	}
	json_array_foreach(recs, i, e) {
		const char *data = json_string_value(json_object_get(e, "Data"));
		const char *key = json_string_value(json_object_get(e, "PartitionKey"));
		size_t dl = data ? b64_decoded_len(data, strlen(data)) : (size_t)-1, kl = key ? strlen(key) : 0;
		size_t kc = key ? utf8_chars(key) : 0;
		fk_u128 h;

		if (dl == (size_t)-1 || kc < 1 || kc > 256 || dl + kl > max_record_bytes() || entry_hash(e, key, &h)) {
			json_decref(root);
			__atomic_add_fetch(&g.rejected, 1, __ATOMIC_RELAXED);
			snprintf(msg, sizeof(msg), "entry %zu: bad Data, PartitionKey or ExplicitHashKey (key %zu chars, data %zu bytes, record limit %zu)",
				 i, kc, dl, max_record_bytes());
			return error(c, 400, "ValidationException", msg);
		}
		total += dl + kl;
	}
	if (total > max_request_bytes()) {
		json_decref(root);
		__atomic_add_fetch(&g.rejected, 1, __ATOMIC_RELAXED);
		snprintf(msg, sizeof(msg), "request of %zu bytes exceeds %zu", total, max_request_bytes());
		return error(c, 400, "ValidationException", msg);
	}
	ks_buf_init(&out, 0);
	ks_buf_puts(&out, "{\"FailedRecordCount\":%FAILED%,\"Records\":[");
	pthread_mutex_lock(&g.lock);
	json_array_foreach(recs, i, e) {
		const char *key = json_string_value(json_object_get(e, "PartitionKey"));
		const char *data = json_string_value(json_object_get(e, "Data"));
		size_t bytes = b64_decoded_len(data, strlen(data)) + strlen(key);
		fk_u128 h = 0;
		int sh;
		char hs[40];

		entry_hash(e, key, &h);
		if (g.auto_distribution) /* the key and hash key are ignored: a shard at random */
			h = (fk_u128)(chance() * 18446744073709551616.0) << 64;
		sh = fk_route(&g.st, h);
		if (i)
			ks_buf_append(&out, ",", 1);
		if ((g.fail_rate > 0 && chance() < g.fail_rate) || !fk_admit(&g.st, sh, bytes, now)) {
			failed++;
			g.failed_entries++;
			ks_buf_printf(&out, "{\"ErrorCode\":\"ProvisionedThroughputExceededException\",\"ErrorMessage\":\"Rate exceeded for shard %s in stream %s under account %s.\"}",
				      g.st.shards[sh].id, g.stream ? g.stream : "s", ACCOUNT);
			continue;
		}
		g.seq++;
		g.accepted++;
		ks_u128_format(h, hs);
		if (g.log)
			fprintf(g.log, "%llu\t%s\t%s\t%s\t%s\n", (unsigned long long)g.seq, key, data, g.st.shards[sh].id, hs);
		ks_buf_printf(&out, "{\"SequenceNumber\":\"%020llu\",\"ShardId\":\"%s\"}", (unsigned long long)g.seq,
			      g.st.shards[sh].id);
	}
	if (g.log)
		fflush(g.log);
	g.bytes += total;
	pthread_mutex_unlock(&g.lock);
	ks_buf_puts(&out, "]}");
	{
		/* Fill in the count now that it is known. */
		char *at = strstr(out.data, "%FAILED%"), num[16];
		ks_buf fixed;

		snprintf(num, sizeof(num), "%d", failed);
		ks_buf_init(&fixed, 0);
		ks_buf_append(&fixed, out.data, (size_t)(at - out.data));
		ks_buf_puts(&fixed, num);
		ks_buf_puts(&fixed, at + 8);
		answer_latency();
		ret = no_answer ? MHD_NO : respond(c, 200, fixed.data);
		ks_buf_clean(&fixed);
	}
	ks_buf_clean(&out);
	json_decref(root);
	return ret;
}

static enum MHD_Result respond_json(struct MHD_Connection *c, json_t *o)
{
	char *text = json_dumps(o, JSON_COMPACT);
	enum MHD_Result ret = respond(c, 200, text ? text : "{}");

	free(text);
	json_decref(o);
	return ret;
}

static enum MHD_Result describe_summary(struct MHD_Connection *c)
{
	const char *name = g.stream ? g.stream : "s";
	char arn[256];
	json_t *sum;

	snprintf(arn, sizeof(arn), "arn:aws:kinesis:us-east-1:%s:stream/%s", ACCOUNT, name);
	pthread_mutex_lock(&g.lock);
	sum = json_pack("{s:{s:s,s:s,s:s,s:i,s:i,s:i,s:{s:s}}}", "StreamDescriptionSummary", "StreamName", name,
			"StreamARN", arn, "StreamStatus", "ACTIVE", "OpenShardCount", fk_open_count(&g.st),
			"MaxRecordSizeInKiB", g.max_record_kib, "RetentionPeriodHours", 24, "StreamModeDetails",
			"StreamMode", g.auto_distribution ? "ON_DEMAND" : "PROVISIONED");
	if (g.auto_distribution)
		json_object_set_new(json_object_get(sum, "StreamDescriptionSummary"), "RecordDistributionStrategy",
				    json_string("AUTO"));
	pthread_mutex_unlock(&g.lock);
	return respond_json(c, sum);
}

/* ListShards: a page of shards after NextToken or ExclusiveStartShardId. As the service does, a
 * NextToken carries the stream and may not come with StreamName / StreamARN. */
static enum MHD_Result list_shards(struct MHD_Connection *c, json_t *root)
{
	const char *token = json_string_value(json_object_get(root, "NextToken"));
	const char *after = json_string_value(json_object_get(root, "ExclusiveStartShardId"));
	const char *filter = json_string_value(json_object_get(json_object_get(root, "ShardFilter"), "Type"));
	json_int_t max = json_integer_value(json_object_get(root, "MaxResults"));
	int from = 0, i, latest = filter && strcmp(filter, "AT_LATEST") == 0, taken = 0;
	json_t *shards = json_array(), *o;

	if (token && (json_object_get(root, "StreamName") || json_object_get(root, "StreamARN"))) {
		json_decref(shards);
		return error(c, 400, "InvalidArgumentException", "NextToken and StreamName cannot be provided together.");
	}
	if (!token && stream_ok(root)) {
		json_decref(shards);
		return error(c, 400, "ResourceNotFoundException", "Stream not found");
	}
	if (token && sscanf(token, "fk-%d", &from) != 1) {
		json_decref(shards);
		return error(c, 400, "InvalidArgumentException", "Invalid NextToken.");
	}
	if (max <= 0 || max > 10000)
		max = 1000;
	if (g.list_page > 0 && max > g.list_page)
		max = g.list_page;
	pthread_mutex_lock(&g.lock);
	if (after)
		from = fk_find(&g.st, after) + 1;
	for (i = from; i < g.st.n && taken < max; i++) {
		if (latest && !g.st.shards[i].open)
			continue;
		json_array_append_new(shards, fk_shard_json(&g.st, i));
		taken++;
	}
	o = json_pack("{s:o}", "Shards", shards);
	if (i < g.st.n) {
		char next[32];

		snprintf(next, sizeof(next), "fk-%d", i);
		json_object_set_new(o, "NextToken", json_string(next));
	}
	pthread_mutex_unlock(&g.lock);
	return respond_json(c, o);
}

static enum MHD_Result reshard(struct MHD_Connection *c, const char *op, json_t *root)
{
	const char *type = NULL;
	char msg[256];
	int rc;

	if (stream_ok(root))
		return error(c, 400, "ResourceNotFoundException", "Stream not found");
	pthread_mutex_lock(&g.lock);
	if (strcmp(op, "SplitShard") == 0)
		rc = fk_split(&g.st, json_string_value(json_object_get(root, "ShardToSplit")),
			      json_string_value(json_object_get(root, "NewStartingHashKey")), &type, msg, sizeof(msg));
	else if (strcmp(op, "MergeShards") == 0)
		rc = fk_merge(&g.st, json_string_value(json_object_get(root, "ShardToMerge")),
			      json_string_value(json_object_get(root, "AdjacentShardToMerge")), &type, msg, sizeof(msg));
	else
		rc = fk_update_count(&g.st, (int)json_integer_value(json_object_get(root, "TargetShardCount")), &type, msg,
				     sizeof(msg));
	pthread_mutex_unlock(&g.lock);
	if (rc)
		return error(c, 400, type, msg);
	if (strcmp(op, "UpdateShardCount") == 0)
		return respond_json(c, json_pack("{s:I}", "TargetShardCount",
						 json_integer_value(json_object_get(root, "TargetShardCount"))));
	return respond(c, 200, "");
}

/* --list-shards-error: 1 when this ListShards is refused (its answer in @p ret). */
static int list_refused(struct MHD_Connection *c, enum MHD_Result *ret)
{
	const char *name = g.stream ? g.stream : "s";
	char msg[512];
	int refuse;

	pthread_mutex_lock(&g.lock);
	refuse = g.list_error[0] && g.list_error_left != 0;
	if (refuse && g.list_error_left > 0)
		g.list_error_left--;
	pthread_mutex_unlock(&g.lock);
	if (!refuse)
		return 0;
	if (strcmp(g.list_error, "AccessDeniedException") == 0)
		snprintf(msg, sizeof(msg),
			 "User: arn:aws:iam::%s:user/kinesink is not authorized to perform: kinesis:ListShards on resource: arn:aws:kinesis:us-east-1:%s:stream/%s because no identity-based policy allows the kinesis:ListShards action",
			 ACCOUNT, ACCOUNT, name);
	else
		snprintf(msg, sizeof(msg), "Rate exceeded for stream %s under account %s.", name, ACCOUNT);
	*ret = error(c, 400, g.list_error, msg);
	return 1;
}

/* The control-plane calls: 0 when @target is not one of them. */
static int control_call(struct MHD_Connection *c, conn *cn, const char *target, enum MHD_Result *ret)
{
	static const char pre[] = "Kinesis_20131202.";
	const char *op;
	json_t *root;

	if (!target || strncmp(target, pre, sizeof(pre) - 1) != 0)
		return 0;
	op = target + sizeof(pre) - 1;
	if (strcmp(op, "DescribeStreamSummary") && strcmp(op, "ListShards") && strcmp(op, "SplitShard") &&
	    strcmp(op, "MergeShards") && strcmp(op, "UpdateShardCount"))
		return 0;
	if (!(root = json_loadb(cn->body.data ? cn->body.data : "", cn->body.len, 0, NULL))) {
		*ret = error(c, 400, "SerializationException", "body is not JSON");
		return 1;
	}
	if (strcmp(op, "ListShards") == 0 && list_refused(c, ret)) {
		json_decref(root);
		return 1;
	}
	if (strcmp(op, "DescribeStreamSummary") == 0)
		*ret = stream_ok(root) ? error(c, 400, "ResourceNotFoundException", "Stream not found") : describe_summary(c);
	else
		*ret = strcmp(op, "ListShards") == 0 ? list_shards(c, root) : reshard(c, op, root);
	json_decref(root);
	return 1;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
				  const char *version, const char *upload, size_t *upload_len, void **state)
{
	conn *cn = *state;
	const char *target;
	char why[900];
	double r;
	enum MHD_Result ret;

	(void)cls;
	(void)version;
	if (!cn) {
		if (!(cn = calloc(1, sizeof(*cn))))
			return MHD_NO;
		ks_buf_init(&cn->body, 16u << 20);
		*state = cn;
		return MHD_YES;
	}
	if (*upload_len) {
		if (ks_buf_append(&cn->body, upload, *upload_len))
			return MHD_NO;
		*upload_len = 0;
		return MHD_YES;
	}
	if (strcmp(method, "POST") != 0)
		return error(c, 405, "UnknownOperationException", "POST only");
	target = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Amz-Target");
	if (!cn->body.data)
		ks_buf_append(&cn->body, "", 0);
	__atomic_add_fetch(&g.requests, 1, __ATOMIC_RELAXED);
	if (g.akid && check_sigv4(c, cn, url, why, sizeof(why)))
		return error(c, 403, "InvalidSignatureException", why);
	if (control_call(c, cn, target, &ret))
		return ret;
	if (!target || strcmp(target, "Kinesis_20131202.PutRecords") != 0)
		return error(c, 400, "UnknownOperationException", target ? target : "missing X-Amz-Target");

	if (g.hold_file && access(g.hold_file, F_OK) == 0) {
		__atomic_add_fetch(&g.throttled, 1, __ATOMIC_RELAXED);
		return error(c, 400, "LimitExceededException", "held back by --hold-file");
	}
	pthread_mutex_lock(&g.lock);
	r = chance();
	if (g.expired_token > 0) {
		g.expired_token--;
		pthread_mutex_unlock(&g.lock);
		return error(c, 400, "ExpiredTokenException", "The security token included in the request is expired");
	}
	pthread_mutex_unlock(&g.lock);
	if (r < g.drop_rate) {
		__atomic_add_fetch(&g.dropped, 1, __ATOMIC_RELAXED);
		return MHD_NO; /* the connection is closed without an answer */
	}
	r -= g.drop_rate;
	if (r >= 0 && r < g.http500_rate) {
		__atomic_add_fetch(&g.http500, 1, __ATOMIC_RELAXED);
		return error(c, 500, "InternalFailure", "injected failure");
	}
	r -= g.http500_rate;
	if (r >= 0 && r < g.throttle_rate) {
		__atomic_add_fetch(&g.throttled, 1, __ATOMIC_RELAXED);
		return error(c, 400, "LimitExceededException", "injected throttling");
	}
	if (g.accept_drop_rate > 0 && !g.count_only) {
		int no_answer;

		pthread_mutex_lock(&g.lock);
		no_answer = chance() < g.accept_drop_rate;
		g.accepted_dropped += (uint64_t)no_answer;
		pthread_mutex_unlock(&g.lock);
		return put_records(c, cn, no_answer);
	}
	ret = g.count_only ? put_records_count_only(c, cn) : put_records(c, cn, 0);
	return ret;
}

static void on_done(void *cls, struct MHD_Connection *c, void **state, enum MHD_RequestTerminationCode tc)
{
	conn *cn = *state;

	(void)cls;
	(void)c;
	(void)tc;
	if (cn) {
		ks_buf_clean(&cn->body);
		free(cn);
	}
	*state = NULL;
}

/* --stats-file: the counters as JSON, written whole and then renamed (a reader never sees half a
 * file), when they moved since @last. Returns what it wrote (to pass as @last next time). */
static uint64_t write_stats(const char *path, uint64_t last)
{
	json_t *o, *shards = json_array();
	uint64_t now;
	char tmp[4096], *text;
	FILE *f;
	int i;

	pthread_mutex_lock(&g.lock);
	now = g.accepted + g.failed_entries + __atomic_load_n(&g.requests, __ATOMIC_RELAXED);
	if (now == last && last) {
		pthread_mutex_unlock(&g.lock);
		json_decref(shards);
		return last;
	}
	for (i = 0; i < g.st.n; i++) {
		const fk_shard *sh = &g.st.shards[i];

		json_array_append_new(shards, json_pack("{s:s,s:b,s:I,s:I,s:I,s:I,s:I,s:I}", "id", sh->id, "open", sh->open,
							"accepted", (json_int_t)sh->accepted, "bytes", (json_int_t)sh->bytes,
							"units", (json_int_t)sh->units, "throttled", (json_int_t)sh->throttled,
							"first_ms", (json_int_t)sh->first_ms, "last_ms", (json_int_t)sh->last_ms));
	}
	o = json_pack("{s:s,s:b,s:f,s:f,s:I,s:I,s:I,s:I,s:o}", "limit_model",
		      g.st.model == FK_LIMIT_WINDOW ? "window" : "bucket", "limits", g.st.limits, "records_per_sec",
		      g.st.rec_limit, "bytes_per_sec", g.st.byte_limit, "requests",
		      (json_int_t)__atomic_load_n(&g.requests, __ATOMIC_RELAXED), "accepted", (json_int_t)g.accepted,
		      "failed_entries", (json_int_t)g.failed_entries, "bytes", (json_int_t)g.bytes, "shards", shards);
	pthread_mutex_unlock(&g.lock);
	text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (!text || !(f = fopen(tmp, "w"))) {
		free(text);
		return last;
	}
	fprintf(f, "%s\n", text);
	free(text);
	if (fclose(f) == 0)
		rename(tmp, path);
	return now ? now : 1;
}

int main(int argc, char **argv)
{
	const char *port_file = NULL, *log_path = NULL;
	struct sockaddr_in sa;
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *info;
	int port = 0, i, nshards = 1;
	struct sigaction act;

	g.rng = 88172645463325252ULL;
	g.max_record_kib = 1024;
	g.st.rec_limit = 1000;
	g.st.byte_limit = 1024 * 1024;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--count-only")) {
			g.count_only = 1;
			continue;
		}
		if (!strcmp(a, "--auto")) {
			g.auto_distribution = 1;
			continue;
		}
		if (!strcmp(a, "--shard-limits")) {
			g.st.limits = 1;
			continue;
		}
		if (!v) {
			fprintf(stderr, "fakekinesis: %s needs a value\n", a);
			return 2;
		}
		i++;
		if (!strcmp(a, "--port")) port = atoi(v);
		else if (!strcmp(a, "--port-file")) port_file = v;
		else if (!strcmp(a, "--log")) log_path = v;
		else if (!strcmp(a, "--seed")) g.rng = strtoull(v, NULL, 10) | 1;
		else if (!strcmp(a, "--fail-rate")) g.fail_rate = atof(v);
		else if (!strcmp(a, "--http500-rate")) g.http500_rate = atof(v);
		else if (!strcmp(a, "--drop-rate")) g.drop_rate = atof(v);
		else if (!strcmp(a, "--throttle-rate")) g.throttle_rate = atof(v);
		else if (!strcmp(a, "--expired-token")) g.expired_token = atoi(v);
		else if (!strcmp(a, "--stream")) g.stream = v;
		else if (!strcmp(a, "--hold-file")) g.hold_file = v;
		else if (!strcmp(a, "--shards")) nshards = atoi(v);
		else if (!strcmp(a, "--shard-records-per-sec")) g.st.rec_limit = atof(v);
		else if (!strcmp(a, "--shard-bytes-per-sec")) g.st.byte_limit = atof(v);
		else if (!strcmp(a, "--max-record-kib")) g.max_record_kib = atoi(v);
		else if (!strcmp(a, "--list-page")) g.list_page = atoi(v);
		else if (!strcmp(a, "--region")) g.region = v;
		else if (!strcmp(a, "--sigv4-verifier")) g.verifier = v;
		else if (!strcmp(a, "--accept-drop-rate")) g.accept_drop_rate = atof(v);
		else if (!strcmp(a, "--latency-ms")) {
			g.latency_min = g.latency_max = atoi(v);
			if (strchr(v, ':'))
				g.latency_max = atoi(strchr(v, ':') + 1);
			if (g.latency_min < 0 || g.latency_max < g.latency_min) {
				fprintf(stderr, "fakekinesis: --latency-ms MIN[:MAX], 0 <= MIN <= MAX\n");
				return 2;
			}
		} else if (!strcmp(a, "--list-shards-error")) {
			g.list_error_left = -1;
			if (sscanf(v, "%63[^:]:%d", g.list_error, &g.list_error_left) < 1 ||
			    (strcmp(g.list_error, "AccessDeniedException") && strcmp(g.list_error, "LimitExceededException"))) {
				fprintf(stderr, "fakekinesis: --list-shards-error AccessDeniedException|LimitExceededException[:N]\n");
				return 2;
			}
		}
		else if (!strcmp(a, "--stats-file")) g.stats_file = v;
		else if (!strcmp(a, "--limit-model")) {
			if (strcmp(v, "window") && strcmp(v, "bucket")) {
				fprintf(stderr, "fakekinesis: --limit-model window or bucket, not %s\n", v);
				return 2;
			}
			g.st.model = !strcmp(v, "window") ? FK_LIMIT_WINDOW : FK_LIMIT_BUCKET;
		}
		else if (!strcmp(a, "--verify-sigv4")) {
			char *colon = strchr(v, ':');

			if (!colon) {
				fprintf(stderr, "fakekinesis: --verify-sigv4 AKID:SECRET\n");
				return 2;
			}
			g.akid = ks_strndup(v, (size_t)(colon - v));
			g.secret = colon + 1;
			g.key = v;
		} else {
			fprintf(stderr, "fakekinesis: unknown option %s\n", a);
			return 2;
		}
	}
	if (nshards < 1 || g.max_record_kib < 1024 || g.max_record_kib > 10240 || g.st.rec_limit <= 0 ||
	    g.st.byte_limit <= 0) {
		fprintf(stderr, "fakekinesis: --shards >= 1, --max-record-kib 1024..10240, positive limits\n");
		return 2;
	}
	if (fk_stream_init(&g.st, nshards, &g.seq)) {
		fprintf(stderr, "fakekinesis: out of memory\n");
		return 1;
	}
	if (g.akid && (!g.verifier || verifier_start(g.verifier, g.key))) {
		fprintf(stderr, "fakekinesis: --verify-sigv4 needs --sigv4-verifier tests/tools/sigv4_verify.py%s\n",
			g.verifier ? " (it could not be started)" : "");
		return 2;
	}
	if (log_path && !(g.log = fopen(log_path, "w"))) {
		perror(log_path);
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (g.latency_max > 0) /* answers held back each on their own thread, not behind each other */
		d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG,
				     (uint16_t)port, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR,
				     (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT, 256u,
				     MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL, MHD_OPTION_END);
	else
		d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port, NULL, NULL,
				     on_request, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
				     MHD_OPTION_THREAD_POOL_SIZE, 2u, MHD_OPTION_CONNECTION_LIMIT, 256u,
				     MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL, MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "fakekinesis: cannot listen on 127.0.0.1:%d\n", port);
		return 1;
	}
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	port = info->port;
	if (port_file) {
		/* Written whole, then renamed: a reader never sees half a number. */
		char tmp[4096];
		FILE *f;

		snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
		if (!(f = fopen(tmp, "w")))
			return 1;
		fprintf(f, "%d\n", port);
		fclose(f);
		rename(tmp, port_file);
	}
	printf("PORT %d\n", port);
	fflush(stdout);
	memset(&act, 0, sizeof(act));
	act.sa_handler = on_signal;
	sigaction(SIGTERM, &act, NULL);
	sigaction(SIGINT, &act, NULL);
	signal(SIGPIPE, SIG_IGN); /* a verifier gone is an error answer, not the end */
	for (uint64_t seen = 0; !stop;) {
		if (!g.stats_file) {
			pause();
			continue;
		}
		seen = write_stats(g.stats_file, seen);
		usleep(100 * 1000);
	}
	MHD_stop_daemon(d);
	if (g.stats_file)
		write_stats(g.stats_file, 0);
	if (g.ver_to) {
		fclose(g.ver_to); /* end of input: the verifier exits */
		fclose(g.ver_from);
		waitpid(g.ver_pid, NULL, 0);
	}
	fprintf(stderr, "requests %llu accepted %llu failed_entries %llu http500 %llu dropped %llu throttled %llu rejected %llu bytes %llu accepted_dropped %llu\n",
		(unsigned long long)g.requests, (unsigned long long)g.accepted, (unsigned long long)g.failed_entries,
		(unsigned long long)g.http500, (unsigned long long)g.dropped, (unsigned long long)g.throttled,
		(unsigned long long)g.rejected, (unsigned long long)g.bytes, (unsigned long long)g.accepted_dropped);
	for (i = 0; i < g.st.n; i++)
		fprintf(stderr, "shard %s %s accepted %llu bytes %llu units %llu throttled %llu\n", g.st.shards[i].id,
			g.st.shards[i].open ? "open" : "closed", (unsigned long long)g.st.shards[i].accepted,
			(unsigned long long)g.st.shards[i].bytes, (unsigned long long)g.st.shards[i].units,
			(unsigned long long)g.st.shards[i].throttled);
	fk_stream_clean(&g.st);
	if (g.log)
		fclose(g.log);
	return 0;
}
