/* Shared helpers: error codes and struct, capped buffers, clock, hashing. */
#include "common.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *ks_err_str(int err)
{
	switch (err) {
	case KS_OK: return "success";
	case KS_ERR_NOMEM: return "out of memory";
	case KS_ERR_CONFIG: return "invalid configuration";
	case KS_ERR_BADREC: return "bad record";
	case KS_ERR_TRANSIENT: return "temporary failure";
	case KS_ERR_FATAL: return "fatal error";
	case KS_ERR_IO: return "I/O error";
	case KS_ERR_NOTFOUND: return "not found";
	case KS_ERR_TIMEOUT: return "timed out";
	case KS_ERR_TOOBIG: return "size limit exceeded";
	case KS_ERR_AUTH: return "authentication failed";
	case KS_ERR_ORDER: return "called out of order";
	case KS_ERR_SYNTAX: return "syntax error";
	default: return "unknown error";
	}
}

const char *ks_stage_str(ks_stage stage)
{
	switch (stage) {
	case KS_STAGE_DECODE: return "decode";
	case KS_STAGE_TRANSFORM: return "transform";
	case KS_STAGE_PRODUCE: return "produce";
	default: return "none";
	}
}

void ks_errbuf_clear(ks_errbuf *e)
{
	if (!e)
		return;
	e->code = 0;
	e->retriable = 0;
	e->fatal = 0;
	e->stage = KS_STAGE_NONE;
	e->reason[0] = '\0';
	e->text[0] = '\0';
}

int ks_errbuf_set(ks_errbuf *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (!e)
		return code;
	e->code = code;
	e->retriable = code == KS_ERR_TRANSIENT || code == KS_ERR_IO || code == KS_ERR_TIMEOUT;
	e->fatal = code == KS_ERR_FATAL || code == KS_ERR_AUTH;
	va_start(ap, fmt);
	vsnprintf(e->text, sizeof(e->text), fmt, ap);
	va_end(ap);
	return code;
}

void ks_errbuf_prefix(ks_errbuf *e, const char *fmt, ...)
{
	char pre[256], old[sizeof(e->text)];
	va_list ap;
	ks_buf b;

	if (!e)
		return;
	va_start(ap, fmt);
	vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	memcpy(old, e->text, sizeof(old));
	/* Keep as much of both as fits; the old text is cut first. */
	ks_buf_init(&b, sizeof(e->text) - 1);
	if (ks_buf_printf(&b, "%s: ", pre) == 0)
		ks_buf_append(&b, old, strnlen(old, b.max - b.len));
	if (b.data)
		memcpy(e->text, b.data, b.len + 1);
	ks_buf_clean(&b);
}

int ks_errbuf_badrec(ks_errbuf *e, ks_stage stage, const char *reason, const char *topic, int32_t partition,
		     int64_t offset, const char *fmt, ...)
{
	char text[600], why[sizeof(e->reason)];
	va_list ap;

	if (!e)
		return KS_ERR_BADREC;
	/* The reason may point into e itself: copy it before e is rewritten. */
	snprintf(why, sizeof(why), "%s", reason);
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	ks_errbuf_set(e, KS_ERR_BADREC, "%s [%d] @%lld: %s", topic ? topic : "?", (int)partition, (long long)offset, text);
	e->stage = stage;
	ks_errbuf_reason(e, why);
	return KS_ERR_BADREC;
}

int ks_errbuf_bad(ks_errbuf *e, const char *reason, const char *fmt, ...)
{
	char text[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	ks_errbuf_set(e, KS_ERR_BADREC, "%s", text);
	ks_errbuf_reason(e, reason);
	return KS_ERR_BADREC;
}

void ks_errbuf_reason(ks_errbuf *e, const char *reason)
{
	if (e)
		snprintf(e->reason, sizeof(e->reason), "%s", reason);
}

void ks_buf_init(ks_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max ? max : SIZE_MAX - 1;
}

void ks_buf_clean(ks_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void ks_buf_reset(ks_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

int ks_buf_reserve(ks_buf *b, size_t extra)
{
	size_t need, ncap;
	char *p;

	if (extra > b->max - b->len)
		return KS_ERR_TOOBIG;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 256;
	while (ncap < need)
		ncap *= 2;
	p = realloc(b->data, ncap);
	if (!p)
		return KS_ERR_NOMEM;
	b->data = p;
	b->cap = ncap;
	return 0;
}

int ks_buf_append(ks_buf *b, const void *p, size_t n)
{
	int r = ks_buf_reserve(b, n);

	if (r)
		return r;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int ks_buf_puts(ks_buf *b, const char *s)
{
	return ks_buf_append(b, s, strlen(s));
}

int ks_buf_printf(ks_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, r;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return KS_ERR_IO;
	if ((r = ks_buf_reserve(b, (size_t)n)))
		return r;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

int ks_buf_base64(ks_buf *b, const void *p, size_t n)
{
	size_t out = 4 * ((n + 2) / 3);
	int r;

	if ((r = ks_buf_reserve(b, out)))
		return r;
	/* EVP_EncodeBlock takes an int length; records are at most 1 MiB, batches 5 MiB. */
	if (n)
		EVP_EncodeBlock((unsigned char *)b->data + b->len, p, (int)n);
	b->len += out;
	b->data[b->len] = '\0';
	return 0;
}

int ks_buf_json_str(ks_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, start = 0;
	int r;

	if ((r = ks_buf_reserve(b, n + 2)))
		return r;
	b->data[b->len++] = '"';
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[7];
		size_t elen = 2;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		if ((r = ks_buf_append(b, s + start, i - start)))
			return r;
		esc[0] = '\\';
		switch (c) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		default:
			esc[1] = 'u'; esc[2] = '0'; esc[3] = '0';
			esc[4] = hex[c >> 4]; esc[5] = hex[c & 15];
			elen = 6;
		}
		if ((r = ks_buf_append(b, esc, elen)))
			return r;
		start = i + 1;
	}
	if ((r = ks_buf_append(b, s + start, n - start)))
		return r;
	return ks_buf_append(b, "\"", 1);
}

int64_t ks_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ks_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ks_sha256_hex(const void *p, size_t n, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[SHA256_DIGEST_LENGTH];
	int i;

	SHA256(p, n, md);
	for (i = 0; i < SHA256_DIGEST_LENGTH; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
}

char *ks_strndup(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (!p)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void ks_url_redact(const char *url, char *out, size_t outlen)
{
	const char *scheme = strstr(url, "://");
	const char *host = scheme ? scheme + 3 : url;
	size_t hostlen = strcspn(host, "/?#");
	const char *at = memchr(host, '@', hostlen);

	if (scheme && at)
		snprintf(out, outlen, "%.*s[redacted]%s", (int)(host - url), url, at);
	else
		snprintf(out, outlen, "%s", url);
}

#if defined(__SANITIZE_THREAD__)
#include <errno.h>
#include <pthread.h>
#include <threads.h>

/*
 * ThreadSanitizer (gcc 12, clang 14) intercepts pthread_create but not C11's thrd_create, by
 * which librdkafka starts its threads: those would run without TSan's per-thread state and
 * crash in its allocator. In a --enable-tsan build only, thrd_create, thrd_join and
 * thrd_detach are their pthread counterparts (glibc's own are, with the int result carried in
 * the pointer), which TSan sees.
 */
typedef struct c11_start {
	thrd_start_t fn;
	void *arg;
} c11_start;

static void *c11_trampoline(void *p)
{
	c11_start s = *(c11_start *)p;

	free(p);
	return (void *)(intptr_t)s.fn(s.arg);
}

int thrd_create(thrd_t *thr, thrd_start_t fn, void *arg)
{
	c11_start *s = malloc(sizeof(*s));
	int e;

	if (!s)
		return thrd_nomem;
	s->fn = fn;
	s->arg = arg;
	if ((e = pthread_create(thr, NULL, c11_trampoline, s))) {
		free(s);
		return e == ENOMEM ? thrd_nomem : thrd_error;
	}
	return thrd_success;
}

int thrd_join(thrd_t thr, int *res)
{
	void *r;

	if (pthread_join(thr, &r))
		return thrd_error;
	if (res)
		*res = (int)(intptr_t)r;
	return thrd_success;
}

int thrd_detach(thrd_t thr)
{
	return pthread_detach(thr) ? thrd_error : thrd_success;
}
#endif

size_t ks_key_chars(const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i, chars = 0;

	for (i = 0; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			chars += s[i] >= 0xf0 ? 2 : 1;
	return chars;
}
