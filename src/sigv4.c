/*
 * AWS Signature Version 4: canonical request, string to sign, signing key, Authorization.
 * The time is an argument, so the same inputs always give the same signature.
 */
#include "sigv4.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void hex(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static void hmac(const void *key, size_t klen, const void *msg, size_t mlen, unsigned char out[32])
{
	unsigned int len = 32;

	HMAC(EVP_sha256(), key, (int)klen, msg, mlen, out, &len);
}

typedef struct hdr {
	char *name;   /* lowercased */
	char *value;  /* trimmed, inner whitespace runs folded to one space */
} hdr;

static int cmp_hdr(const void *a, const void *b)
{
	return strcmp(((const hdr *)a)->name, ((const hdr *)b)->name);
}

static char *lower_dup(const char *s)
{
	char *d = strdup(s), *p;

	if (d)
		for (p = d; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	return d;
}

static char *fold_dup(const char *s)
{
	size_t n = strlen(s), i, o = 0;
	char *d = malloc(n + 1);
	int space = 0;

	if (!d)
		return NULL;
	while (*s == ' ' || *s == '\t')
		s++;
	for (i = 0; s[i]; i++) {
		if (s[i] == ' ' || s[i] == '\t') {
			space = 1;
			continue;
		}
		if (space && o)
			d[o++] = ' ';
		space = 0;
		d[o++] = s[i];
	}
	d[o] = '\0';
	return d;
}

/* RFC 3986 unreserved characters stay; everything else is %XX (uppercase). */
static int uri_encode(ks_buf *b, const char *s, size_t n, int keep_slash)
{
	static const char digits[] = "0123456789ABCDEF";
	size_t i;
	int r = 0;

	for (i = 0; i < n && !r; i++) {
		unsigned char c = (unsigned char)s[i];

		if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
			r = ks_buf_append(b, &s[i], 1);
		} else {
			char e[3] = { '%', digits[c >> 4], digits[c & 15] };

			r = ks_buf_append(b, e, 3);
		}
	}
	return r;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decode %XX so a query that arrives already encoded is encoded exactly once. */
static char *uri_decode(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	size_t i, o = 0;

	if (!d)
		return NULL;
	for (i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
			d[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		} else {
			d[o++] = s[i];
		}
	}
	d[o] = '\0';
	return d;
}

typedef struct qparam {
	ks_buf kv; /* "encodedkey=encodedvalue" */
	size_t klen;
} qparam;

static int cmp_q(const void *a, const void *b)
{
	const qparam *x = a, *y = b;
	size_t n = x->klen < y->klen ? x->klen : y->klen;
	int c = memcmp(x->kv.data, y->kv.data, n);

	if (c)
		return c;
	if (x->klen != y->klen)
		return x->klen < y->klen ? -1 : 1;
	return strcmp(x->kv.data + x->klen, y->kv.data + y->klen);
}

static int canonical_query(ks_buf *out, const char *q)
{
	qparam *ps = NULL;
	size_t n = 0, i;
	const char *p = q;
	int r = 0;

	while (q && *p && !r) {
		const char *amp = strchr(p, '&'), *end = amp ? amp : p + strlen(p);
		const char *eq = memchr(p, '=', (size_t)(end - p));
		char *k, *v;
		qparam *np;

		if (end == p) {
			p = amp ? amp + 1 : end;
			continue;
		}
		if (!(np = realloc(ps, sizeof(*ps) * (n + 1)))) {
			r = KS_ERR_NOMEM;
			break;
		}
		ps = np;
		ks_buf_init(&ps[n].kv, 0);
		k = uri_decode(p, (size_t)((eq ? eq : end) - p));
		v = eq ? uri_decode(eq + 1, (size_t)(end - eq - 1)) : strdup("");
		if (!k || !v)
			r = KS_ERR_NOMEM;
		if (!r)
			r = uri_encode(&ps[n].kv, k, strlen(k), 0);
		ps[n].klen = ps[n].kv.len;
		if (!r)
			r = ks_buf_append(&ps[n].kv, "=", 1);
		if (!r)
			r = uri_encode(&ps[n].kv, v, strlen(v), 0);
		free(k);
		free(v);
		n++;
		p = amp ? amp + 1 : end;
	}
	if (!r && n)
		qsort(ps, n, sizeof(*ps), cmp_q);
	for (i = 0; i < n; i++) {
		if (!r && i)
			r = ks_buf_append(out, "&", 1);
		if (!r)
			r = ks_buf_append(out, ps[i].kv.data ? ps[i].kv.data : "", ps[i].kv.len);
		ks_buf_clean(&ps[i].kv);
	}
	free(ps);
	return r;
}

/* Hex HMAC-SHA256 signature of @p sts with the key derived from @p secret. */
static int derive_signature(const char *secret, const char *date, const char *region, const char *service,
			    const ks_buf *sts, char sighex[65])
{
	unsigned char k1[32], k2[32], k3[32], k4[32], sig[32];
	ks_buf key;

	ks_buf_init(&key, 0);
	if (ks_buf_printf(&key, "AWS4%s", secret)) {
		ks_buf_clean(&key);
		return KS_ERR_NOMEM;
	}
	hmac(key.data, key.len, date, 8, k1);
	hmac(k1, 32, region, strlen(region), k2);
	hmac(k2, 32, service, strlen(service), k3);
	hmac(k3, 32, "aws4_request", 12, k4);
	hmac(k4, 32, sts->data, sts->len, sig);
	hex(sig, 32, sighex);
	OPENSSL_cleanse(key.data, key.len);
	OPENSSL_cleanse(k1, sizeof(k1));
	OPENSSL_cleanse(k2, sizeof(k2));
	OPENSSL_cleanse(k3, sizeof(k3));
	OPENSSL_cleanse(k4, sizeof(k4));
	ks_buf_clean(&key);
	return 0;
}

/*
 * The headers to sign: the caller's, host, and @p n_extra more (@p extra holds name, value
 * pairs), names in lower case and values folded, sorted by name. @returns 0 or KS_ERR_NOMEM;
 * either way *out holds *n headers for free_headers.
 */
static int header_set(const ks_sigv4_request *req, const char *const *extra, int n_extra, hdr **out, int *n)
{
	hdr *h = calloc((size_t)(req->n_headers + 1 + n_extra), sizeof(*h));
	int i, k = 0;

	*out = h;
	*n = 0;
	if (!h)
		return KS_ERR_NOMEM;
	for (i = 0; i < req->n_headers; i++, k++)
		if (!(h[k].name = lower_dup(req->headers[i].name)) || !(h[k].value = fold_dup(req->headers[i].value)))
			goto fail;
	if (!(h[k].name = strdup("host")) || !(h[k].value = fold_dup(req->host)))
		goto fail;
	for (k++, i = 0; i < n_extra; i++, k++)
		if (!(h[k].name = strdup(extra[2 * i])) || !(h[k].value = fold_dup(extra[2 * i + 1])))
			goto fail;
	qsort(h, (size_t)k, sizeof(*h), cmp_hdr);
	*n = k;
	return 0;
fail:
	*n = k + 1; /* with the one partly filled (calloc'd: its NULLs free fine) */
	return KS_ERR_NOMEM;
}

static void free_headers(hdr *h, int n)
{
	int i;

	for (i = 0; h && i < n; i++) {
		free(h[i].name);
		free(h[i].value);
	}
	free(h);
}

/*
 * The canonical request of a header-signed request, from @p h (n headers, lower-case names,
 * sorted): method, path, query, headers (repeated names join their values with commas), the
 * signed header list (also into @p signed_hdrs) and the payload hash.
 */
static int canonical_request(const ks_sigv4_request *req, const hdr *h, int n, const char *payload_hash,
			     ks_buf *creq, ks_buf *signed_hdrs)
{
	const char *path = req->path && *req->path ? req->path : "/";
	int i;

	if (ks_buf_puts(creq, req->method) || ks_buf_append(creq, "\n", 1) ||
	    uri_encode(creq, path, strlen(path), 1) || ks_buf_append(creq, "\n", 1) ||
	    canonical_query(creq, req->query) || ks_buf_append(creq, "\n", 1))
		return KS_ERR_NOMEM;
	for (i = 0; i < n; i++) {
		/* Repeated header names join their values with commas. */
		if (i && strcmp(h[i].name, h[i - 1].name) == 0) {
			if (creq->len)
				creq->len--; /* drop the newline */
			if (ks_buf_printf(creq, ",%s\n", h[i].value))
				return KS_ERR_NOMEM;
			continue;
		}
		if (ks_buf_printf(creq, "%s:%s\n", h[i].name, h[i].value) ||
		    ks_buf_printf(signed_hdrs, "%s%s", signed_hdrs->len ? ";" : "", h[i].name))
			return KS_ERR_NOMEM;
	}
	if (ks_buf_printf(creq, "\n%s\n%s", signed_hdrs->data, payload_hash))
		return KS_ERR_NOMEM;
	return 0;
}

/* The string to sign for @p creq at @p amz_date (its first 8 characters are the date), into @p sts,
 * and the signature of it in hex. */
static int sign_request(const ks_sigv4_request *req, const char *secret, const char *amz_date, const ks_buf *creq,
			ks_buf *sts, char sighex[65])
{
	unsigned char digest[32];
	char date[9], creqhash[65];

	memcpy(date, amz_date, 8);
	date[8] = '\0';
	SHA256((const unsigned char *)creq->data, creq->len, digest);
	hex(digest, 32, creqhash);
	if (ks_buf_printf(sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", amz_date, date, req->region,
			  req->service, creqhash))
		return KS_ERR_NOMEM;
	return derive_signature(secret, date, req->region, req->service, sts, sighex);
}

int ks_sigv4_sign(const ks_sigv4_request *req, const ks_sigv4_keys *keys, time_t now,
		  ks_sigv4_result *out)
{
	unsigned char digest[32];
	char date[9], sighex[65];
	ks_buf creq, sts, auth, signed_hdrs;
	const char *extra[4];
	hdr *h = NULL;
	int n = 0, r = KS_ERR_NOMEM;
	struct tm tm;

	memset(out, 0, sizeof(*out));
	gmtime_r(&now, &tm);
	strftime(out->amz_date, sizeof(out->amz_date), "%Y%m%dT%H%M%SZ", &tm);
	memcpy(date, out->amz_date, 8);
	date[8] = '\0';
	SHA256(req->payload ? req->payload : (const void *)"", req->payload_len, digest);
	hex(digest, 32, out->payload_hash);

	ks_buf_init(&creq, 0);
	ks_buf_init(&sts, 0);
	ks_buf_init(&auth, 0);
	ks_buf_init(&signed_hdrs, 0);

	/* Headers: the caller's, plus host, x-amz-date and the session token. */
	extra[0] = "x-amz-date";
	extra[1] = out->amz_date;
	extra[2] = "x-amz-security-token";
	extra[3] = keys->session_token;
	if (header_set(req, extra, keys->session_token && *keys->session_token ? 2 : 1, &h, &n))
		goto out;
	if (canonical_request(req, h, n, out->payload_hash, &creq, &signed_hdrs))
		goto out;

	/* String to sign, signing key and signature. */
	if (sign_request(req, keys->secret_access_key, out->amz_date, &creq, &sts, sighex))
		goto out;
	if (ks_buf_printf(&auth, "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, Signature=%s",
			  keys->access_key_id, date, req->region, req->service, signed_hdrs.data, sighex))
		goto out;

	out->authorization = auth.data;
	out->canonical_request = creq.data;
	out->string_to_sign = sts.data;
	auth.data = creq.data = sts.data = NULL;
	r = 0;
out:
	free_headers(h, n);
	ks_buf_clean(&creq);
	ks_buf_clean(&sts);
	ks_buf_clean(&auth);
	ks_buf_clean(&signed_hdrs);
	return r;
}

void ks_sigv4_result_clean(ks_sigv4_result *r)
{
	free(r->authorization);
	free(r->canonical_request);
	free(r->string_to_sign);
	if (r->url) {
		OPENSSL_cleanse(r->url, strlen(r->url));
		free(r->url);
	}
	r->authorization = r->canonical_request = r->string_to_sign = r->url = NULL;
}

/* ---- query signing (presigned URLs) ----------------------------------------------------- */

/* Re-encode a raw query in its own order (decode each part, encode it once), as botocore
 * does with the operation parameters of a presigned URL. */
static int reencode_query(ks_buf *out, const char *q)
{
	const char *p = q;
	int r = 0;

	while (q && *p && !r) {
		const char *amp = strchr(p, '&'), *end = amp ? amp : p + strlen(p);
		const char *eq = memchr(p, '=', (size_t)(end - p));
		char *k, *v;

		if (end > p) {
			k = uri_decode(p, (size_t)((eq ? eq : end) - p));
			v = eq ? uri_decode(eq + 1, (size_t)(end - eq - 1)) : strdup("");
			if (!k || !v)
				r = KS_ERR_NOMEM;
			if (!r && out->len)
				r = ks_buf_append(out, "&", 1);
			if (!r)
				r = uri_encode(out, k, strlen(k), 0);
			if (!r)
				r = ks_buf_append(out, "=", 1);
			if (!r)
				r = uri_encode(out, v, strlen(v), 0);
			free(k);
			free(v);
		}
		p = amp ? amp + 1 : end;
	}
	return r;
}

static int add_param(ks_buf *q, const char *k, const char *v)
{
	if (q->len && ks_buf_append(q, "&", 1))
		return KS_ERR_NOMEM;
	if (ks_buf_printf(q, "%s=", k) || uri_encode(q, v, strlen(v), 0))
		return KS_ERR_NOMEM;
	return 0;
}

int ks_sigv4_presign(const ks_sigv4_request *req, const ks_sigv4_keys *keys, time_t now, int expires,
		     ks_sigv4_result *out)
{
	unsigned char digest[32];
	char date[9], sighex[65], num[16];
	const char *path = req->path && *req->path ? req->path : "/";
	ks_buf query, creq, sts, url, signed_hdrs, scope, listed;
	ks_sigv4_request signed_req;
	hdr *h = NULL;
	int n = 0, i, r = KS_ERR_NOMEM;
	struct tm tm;

	memset(out, 0, sizeof(*out));
	if (expires < 1 || expires > 604800 || req->payload_len)
		return KS_ERR_CONFIG;
	gmtime_r(&now, &tm);
	strftime(out->amz_date, sizeof(out->amz_date), "%Y%m%dT%H%M%SZ", &tm);
	memcpy(date, out->amz_date, 8);
	date[8] = '\0';
	SHA256((const unsigned char *)"", 0, digest);
	hex(digest, 32, out->payload_hash);
	ks_buf_init(&query, 0);
	ks_buf_init(&creq, 0);
	ks_buf_init(&sts, 0);
	ks_buf_init(&url, 0);
	ks_buf_init(&signed_hdrs, 0);
	ks_buf_init(&scope, 0);
	ks_buf_init(&listed, 0);

	/* Signed headers: host and the caller's (no x-amz-date: the date is a parameter). */
	if (header_set(req, NULL, 0, &h, &n))
		goto out;
	for (i = 0; i < n; i++)
		if ((!i || strcmp(h[i].name, h[i - 1].name)) &&
		    ks_buf_printf(&signed_hdrs, "%s%s", signed_hdrs.len ? ";" : "", h[i].name))
			goto out;

	/* The query: the caller's parameters, then the authentication parameters. */
	snprintf(num, sizeof(num), "%d", expires);
	if (reencode_query(&query, req->query) ||
	    ks_buf_printf(&scope, "%s/%s/%s/%s/aws4_request", keys->access_key_id, date, req->region, req->service) ||
	    add_param(&query, "X-Amz-Algorithm", "AWS4-HMAC-SHA256") || add_param(&query, "X-Amz-Credential", scope.data) ||
	    add_param(&query, "X-Amz-Date", out->amz_date) || add_param(&query, "X-Amz-Expires", num) ||
	    add_param(&query, "X-Amz-SignedHeaders", signed_hdrs.data) ||
	    (keys->session_token && *keys->session_token &&
	     add_param(&query, "X-Amz-Security-Token", keys->session_token)))
		goto out;

	/* Canonical request (of the request with the query just built) and string to sign. */
	signed_req = *req;
	signed_req.query = query.data;
	if (canonical_request(&signed_req, h, n, out->payload_hash, &creq, &listed) ||
	    sign_request(req, keys->secret_access_key, out->amz_date, &creq, &sts, sighex))
		goto out;

	if (ks_buf_printf(&url, "https://%s%s?%s&X-Amz-Signature=%s", req->host, path, query.data, sighex))
		goto out;
	out->url = url.data;
	out->canonical_request = creq.data;
	out->string_to_sign = sts.data;
	url.data = creq.data = sts.data = NULL;
	r = 0;
out:
	free_headers(h, n);
	ks_buf_clean(&listed);
	if (query.data)
		OPENSSL_cleanse(query.data, query.len);
	ks_buf_clean(&query);
	ks_buf_clean(&creq);
	ks_buf_clean(&sts);
	ks_buf_clean(&url);
	ks_buf_clean(&signed_hdrs);
	ks_buf_clean(&scope);
	return r;
}
