/*
 * IAM Identity Center (SSO) profiles: the access token `aws sso login` cached in
 * ~/.aws/sso/cache/<SHA-1 of the sso_session name, or of the start URL for a legacy profile>.json
 * ({"accessToken", "expiresAt"}), then the portal's GetRoleCredentials
 * (GET /federation/credentials?role_name=R&account_id=A with x-amz-sso_bearer_token; no SigV4),
 * as the AWS SDKs do. The portal's endpoint is https://portal.sso.REGION.amazonaws.com, or
 * AWS_ENDPOINT_URL_SSO.
 *
 * An sso-session's token that expires within 15 minutes is refreshed as the SDKs' SSO token
 * provider does: SSO OIDC CreateToken (grant_type refresh_token, with the cached refreshToken,
 * clientId and clientSecret while registrationExpiresAt has not passed) at
 * https://oidc.REGION.amazonaws.com/token (or AWS_ENDPOINT_URL_SSO_OIDC), the new token written
 * back to the cache file atomically. Without them (or for a legacy sso_start_url profile) an
 * expired token means logging in again.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "aws.h"
#include "creds_internal.h"
#include "http.h"
#include "log.h"
#include "scrub.h"

/* Refresh a cached token this long before it expires, as the AWS SDKs' SSO token provider. */
#define REFRESH_WINDOW_S (15 * 60)

static void login_hint(const ks_creds_sso *sso, char *out, size_t n)
{
	if (sso->session_name)
		snprintf(out, n, "run `aws sso login --sso-session %s` (or --profile %s)", sso->session_name,
			 sso->profile);
	else
		snprintf(out, n, "run `aws sso login --profile %s`", sso->profile);
}

/* The cache file of @p sso's token: ~/.aws/sso/cache/<SHA-1 hex of the session name or start URL>.json. */
static int cache_path(const ks_creds_sso *sso, char *dir, size_t dn, char *path, size_t pn, ks_errbuf *err)
{
	const char *key = sso->session_name ? sso->session_name : sso->start_url, *home = getenv("HOME");
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	char hex[2 * EVP_MAX_MD_SIZE + 1];

	if (!EVP_Digest(key, strlen(key), md, &mdlen, EVP_sha1(), NULL))
		return ks_errbuf_set(err, KS_ERR_AUTH, "profile '%s': cannot hash the SSO cache key", sso->profile);
	for (i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	snprintf(dir, dn, "%s/.aws/sso/cache", home ? home : "");
	snprintf(path, pn, "%s/%s.json", dir, hex);
	return 0;
}

static const char *jstr(const json_t *j, const char *key)
{
	const char *v = json_string_value(json_object_get(j, key));

	return v && *v ? v : NULL;
}

/* Scrub every string value of @p j (a token cache entry, an OIDC answer) before it is freed. */
static void scrub_decref(json_t *j)
{
	const char *k;
	json_t *v;

	json_object_foreach(j, k, v)
		if (json_is_string(v))
			OPENSSL_cleanse((void *)json_string_value(v), json_string_length(v));
	json_decref(j);
}

/* The secrets of a token cache entry or an OIDC answer, scrubbed from every text from now on. */
static void scrub_register(const json_t *j)
{
	ks_scrub_add(jstr(j, "accessToken"), 0);
	ks_scrub_add(jstr(j, "refreshToken"), 0);
	ks_scrub_add(jstr(j, "clientSecret"), 0);
}

static void iso_time(time_t t, char *out, size_t n)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/*
 * Why the token @p j cannot be refreshed ("" when it can): an sso-session's cache entry holds the
 * client registration (clientId, clientSecret, registrationExpiresAt) and a refreshToken.
 */
static void not_refreshable(const ks_creds_sso *sso, const json_t *j, time_t now, char *why, size_t n)
{
	const char *reg = jstr(j, "registrationExpiresAt");

	if (!sso->session_name)
		snprintf(why, n, "a profile with sso_start_url (no sso_session) cannot refresh it");
	else if (!jstr(j, "refreshToken") || !jstr(j, "clientId") || !jstr(j, "clientSecret") || !reg)
		snprintf(why, n, "it holds no %s", !jstr(j, "refreshToken") ? "refreshToken" :
			 !jstr(j, "clientId") ? "clientId" : !jstr(j, "clientSecret") ? "clientSecret" : "registrationExpiresAt");
	else if (ks_creds_parse_time(reg) <= now)
		snprintf(why, n, "its client registration expired at %s", reg);
	else
		why[0] = '\0';
}

/*
 * SSO OIDC CreateToken with the refresh token of cache entry @p old; on success @p out is the new
 * cache entry, as the AWS SDKs write it (the registration kept, refreshToken only when the
 * answer has one).
 */
static int create_token(const ks_creds_net *net, const ks_creds_sso *sso, const json_t *old, time_t now,
			json_t **out, ks_errbuf *err)
{
	char *base = ks_aws_endpoint("oidc", sso->region, getenv("AWS_ENDPOINT_URL_SSO_OIDC"));
	const char *hdrs[] = { "Content-Type: application/json", NULL };
	json_t *req_j = json_pack("{s:s, s:s, s:s, s:s}", "clientId", jstr(old, "clientId"), "clientSecret",
				  jstr(old, "clientSecret"), "grantType", "refresh_token", "refreshToken",
				  jstr(old, "refreshToken"));
	char *body = req_j ? json_dumps(req_j, JSON_COMPACT) : NULL, expires[32];
	ks_http_request req = { .method = "POST", .headers = hdrs, .timeout_ms = net->timeout_ms };
	ks_http_response resp;
	json_t *a = NULL;
	ks_buf url;
	size_t blen;
	int rc;

	*out = NULL;
	if (req_j)
		scrub_decref(req_j);
	ks_buf_init(&url, 4096);
	blen = base ? strlen(base) : 0;
	while (blen && base[blen - 1] == '/')
		blen--;
	if (!base || !body || ks_buf_printf(&url, "%.*s/token", (int)blen, base)) {
		rc = ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
		goto out;
	}
	req.url = url.data;
	req.body = body;
	req.body_len = strlen(body);
	if ((rc = ks_http_perform(&req, &resp, err))) {
		ks_errbuf_prefix(err, "SSO OIDC CreateToken");
		goto out_resp;
	}
	a = resp.status == 200 && resp.body.data ? json_loads(resp.body.data, 0, NULL) : NULL;
	scrub_register(a);
	if (resp.status != 200) {
		json_t *e = resp.body.data ? json_loads(resp.body.data, 0, NULL) : NULL;
		ks_aws_error ae;

		ks_aws_error_parse(resp.body.data, resp.body.len, &ae);
		/* OIDC errors are {"error": "invalid_grant", "error_description": ...}. */
		rc = ks_errbuf_set(err, resp.status >= 500 ? KS_ERR_TRANSIENT : KS_ERR_AUTH,
				   "SSO OIDC CreateToken at %s answered HTTP %ld %s: %s (request id %s)", url.data,
				   resp.status, jstr(e, "error") ? jstr(e, "error") : ae.type,
				   jstr(e, "error_description") ? jstr(e, "error_description") : ae.message,
				   resp.request_id[0] ? resp.request_id : "none");
		json_decref(e);
	} else if (!jstr(a, "accessToken") || !json_is_integer(json_object_get(a, "expiresIn"))) {
		rc = ks_errbuf_set(err, KS_ERR_AUTH, "SSO OIDC CreateToken at %s: the answer has no accessToken and "
				   "expiresIn", url.data);
	} else {
		iso_time(now + (time_t)json_integer_value(json_object_get(a, "expiresIn")), expires, sizeof(expires));
		*out = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "startUrl", sso->start_url, "region",
				 sso->region, "accessToken", jstr(a, "accessToken"), "expiresAt", expires, "clientId",
				 jstr(old, "clientId"), "clientSecret", jstr(old, "clientSecret"),
				 "registrationExpiresAt", jstr(old, "registrationExpiresAt"));
		if (*out && jstr(a, "refreshToken"))
			json_object_set_new(*out, "refreshToken", json_string(jstr(a, "refreshToken")));
		if (!*out)
			rc = ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
	}
	if (resp.body.data)
		OPENSSL_cleanse(resp.body.data, resp.body.len);
out_resp:
	ks_http_response_clean(&resp);
out:
	if (a)
		scrub_decref(a);
	if (body) {
		OPENSSL_cleanse(body, strlen(body));
		free(body);
	}
	ks_buf_clean(&url);
	free(base);
	return rc;
}

/* Replace @p path by @p j atomically (a private temporary file in @p dir, synced, renamed). */
static int save_token(const char *dir, const char *path, const json_t *j, ks_errbuf *err)
{
	char tmp[1200], *text = json_dumps(j, JSON_PRESERVE_ORDER);
	size_t len = text ? strlen(text) : 0, off = 0;
	int fd, rc = 0;

	if (!text)
		return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
	snprintf(tmp, sizeof(tmp), "%s/kinesink-XXXXXX.tmp", dir);
	if ((fd = mkstemps(tmp, 4)) < 0) { /* mode 0600 */
		rc = ks_errbuf_set(err, KS_ERR_AUTH, "cannot write the refreshed SSO token next to %s: %s", path,
				   strerror(errno));
		goto out;
	}
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	if (off < len || fsync(fd) || close(fd) || rename(tmp, path)) {
		rc = ks_errbuf_set(err, KS_ERR_AUTH, "cannot write the refreshed SSO token to %s: %s", path,
				   strerror(errno));
		if (off < len)
			close(fd);
		unlink(tmp);
	}
out:
	OPENSSL_cleanse(text, len);
	free(text);
	return rc;
}

/*
 * Refresh the token of @p sso when it expires within REFRESH_WINDOW_S, as the AWS SDKs do; the
 * cache directory is locked meanwhile, so that providers refreshing at once (the Kinesis and the
 * Kafka side, other kinesink processes) use one refresh token once. *@p j is the entry read
 * before; on return it is the entry to use. A failed refresh is an error only once the token
 * has expired.
 */
static int maybe_refresh(const ks_creds_net *net, const ks_creds_sso *sso, const char *dir, const char *path,
			 json_t **j, const char *hint, ks_errbuf *err)
{
	time_t now = time(NULL), exp = ks_creds_parse_time(jstr(*j, "expiresAt"));
	json_t *fresh = NULL, *again;
	char why[200];
	ks_errbuf e;
	int dfd, rc;

	if (exp - now >= REFRESH_WINDOW_S)
		return 0;
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0)
		flock(dfd, LOCK_EX);
	/* Refreshed meanwhile by someone else? */
	if ((again = json_load_file(path, 0, NULL)))
		scrub_register(again);
	if (again && jstr(again, "accessToken") &&
	    ks_creds_parse_time(jstr(again, "expiresAt"))) {
		scrub_decref(*j);
		*j = again;
		again = NULL;
		exp = ks_creds_parse_time(jstr(*j, "expiresAt"));
	}
	if (again)
		scrub_decref(again);
	not_refreshable(sso, *j, now, why, sizeof(why));
	if (exp - now >= REFRESH_WINDOW_S || why[0]) {
		if (dfd >= 0)
			close(dfd);
		return exp > now ? 0 : ks_errbuf_set(err, KS_ERR_AUTH, "profile '%s': the SSO token cached in %s "
						     "expired at %s and %s; %s", sso->profile, path,
						     jstr(*j, "expiresAt"), why, hint);
	}
	ks_errbuf_clear(&e);
	if ((rc = create_token(net, sso, *j, now, &fresh, &e)) == 0) {
		ks_info("creds", "profile '%s': refreshed the SSO token of sso-session '%s' (valid until %s)",
			sso->profile, sso->session_name, jstr(fresh, "expiresAt"));
		ks_errbuf_clear(&e);
		if (save_token(dir, path, fresh, &e))
			ks_warn("creds", "profile '%s': %s; the refreshed token is used but not kept", sso->profile, e.text);
		scrub_decref(*j);
		*j = fresh;
	} else if (exp > now) {
		ks_warn("creds", "profile '%s': cannot refresh the SSO token of sso-session '%s' (%s); using the cached "
				 "one until it expires at %s", sso->profile, sso->session_name, e.text, jstr(*j, "expiresAt"));
		rc = 0;
	} else {
		rc = ks_errbuf_set(err, rc == KS_ERR_TRANSIENT || rc == KS_ERR_IO || rc == KS_ERR_TIMEOUT ?
				   KS_ERR_TRANSIENT : KS_ERR_AUTH, "profile '%s': the SSO token cached in %s expired at %s "
				   "and cannot be refreshed: %s; %s", sso->profile, path, jstr(*j, "expiresAt"), e.text, hint);
	}
	if (dfd >= 0)
		close(dfd); /* unlocks */
	return rc;
}

/* The cached token of @p sso into @p tok (scrubbed by the caller), refreshed first when due. */
static int cached_token(const ks_creds_net *net, const ks_creds_sso *sso, char *tok, size_t tn, ks_errbuf *err)
{
	char dir[1100], path[1300], hint[300];
	const char *access, *expires;
	json_error_t je;
	json_t *j;
	time_t exp;
	int rc;

	login_hint(sso, hint, sizeof(hint));
	if ((rc = cache_path(sso, dir, sizeof(dir), path, sizeof(path), err)))
		return rc;
	if (!(j = json_load_file(path, 0, &je)))
		return ks_errbuf_set(err, KS_ERR_AUTH, "profile '%s': no usable SSO token cached in %s (%s); %s",
				     sso->profile, path, je.line > 0 ? "not JSON" : "cannot read it", hint);
	scrub_register(j);
	access = jstr(j, "accessToken");
	expires = jstr(j, "expiresAt");
	exp = ks_creds_parse_time(expires);
	if (!access || !exp) {
		rc = ks_errbuf_set(err, KS_ERR_AUTH, "profile '%s': the SSO token cached in %s has no %s; %s",
				   sso->profile, path, access ? "valid expiresAt" : "accessToken", hint);
	} else if (!(rc = maybe_refresh(net, sso, dir, path, &j, hint, err))) {
		access = jstr(j, "accessToken");
		if (strlen(access) >= tn)
			rc = ks_errbuf_set(err, KS_ERR_AUTH, "profile '%s': the SSO token cached in %s is too long",
					   sso->profile, path);
		else
			snprintf(tok, tn, "%s", access);
	}
	scrub_decref(j);
	return rc;
}

static int parse_role_credentials(const ks_creds_sso *sso, const char *text, ks_credentials *out, ks_errbuf *err)
{
	json_t *j = json_loads(text, 0, NULL), *rc_j = json_object_get(j, "roleCredentials");
	const char *akid = json_string_value(json_object_get(rc_j, "accessKeyId"));
	const char *secret = json_string_value(json_object_get(rc_j, "secretAccessKey"));
	const char *token = json_string_value(json_object_get(rc_j, "sessionToken"));
	json_t *exp = json_object_get(rc_j, "expiration");
	char source[32];
	int rc;

	snprintf(source, sizeof(source), "sso:%.26s", sso->profile);
	if (!akid || !secret)
		rc = ks_errbuf_set(err, KS_ERR_AUTH, "profile '%s': the SSO portal's answer has no roleCredentials",
				   sso->profile);
	else /* expiration: milliseconds since the epoch */
		rc = ks_creds_set(out, akid, secret, token, json_is_number(exp) ?
				  (time_t)(json_number_value(exp) / 1000) : 0, source);
	json_decref(j);
	return rc;
}

int ks_creds_from_sso(const ks_creds_net *net, const ks_creds_sso *sso, ks_credentials *out, ks_errbuf *err)
{
	char tok[8192], hdr[8300], hint[300];
	const char *hdrs[2] = { hdr, NULL };
	char *base = ks_aws_endpoint("portal.sso", sso->region, getenv("AWS_ENDPOINT_URL_SSO"));
	ks_http_request req = { .method = "GET", .headers = hdrs, .timeout_ms = net->timeout_ms };
	ks_http_response resp;
	ks_buf url, q;
	size_t blen;
	int rc;

	if (!base)
		return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
	if ((rc = cached_token(net, sso, tok, sizeof(tok), err))) {
		free(base);
		return rc;
	}
	snprintf(hdr, sizeof(hdr), "x-amz-sso_bearer_token: %s", tok);
	OPENSSL_cleanse(tok, sizeof(tok));
	blen = strlen(base);
	while (blen && base[blen - 1] == '/')
		blen--;
	ks_buf_init(&q, 4096);
	ks_buf_init(&url, 8192);
	rc = ks_creds_form_append(&q, "role_name", sso->role_name) ||
	     ks_creds_form_append(&q, "account_id", sso->account_id) ||
	     ks_buf_printf(&url, "%.*s/federation/credentials?%s", (int)blen, base, q.data);
	ks_buf_clean(&q);
	free(base);
	if (rc) {
		OPENSSL_cleanse(hdr, sizeof(hdr));
		ks_buf_clean(&url);
		return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
	}
	req.url = url.data;
	rc = ks_http_perform(&req, &resp, err);
	OPENSSL_cleanse(hdr, sizeof(hdr));
	login_hint(sso, hint, sizeof(hint));
	if (rc == 0) {
		if (resp.status == 200) {
			rc = parse_role_credentials(sso, resp.body.data ? resp.body.data : "", out, err);
		} else {
			ks_aws_error e;

			ks_aws_error_parse(resp.body.data, resp.body.len, &e);
			rc = ks_errbuf_set(err, resp.status >= 500 ? KS_ERR_TRANSIENT : KS_ERR_AUTH,
					   "profile '%s': SSO GetRoleCredentials (account %s, role %s) at %.*s answered "
					   "HTTP %ld %s: %s (request id %s)%s%s", sso->profile, sso->account_id,
					   sso->role_name, (int)strcspn(url.data, "?"), url.data, resp.status, e.type,
					   e.message, resp.request_id[0] ? resp.request_id : "none",
					   resp.status == 401 ? "; " : "", resp.status == 401 ? hint : "");
		}
		if (resp.body.data)
			OPENSSL_cleanse(resp.body.data, resp.body.len);
	} else {
		ks_errbuf_prefix(err, "profile '%s': SSO GetRoleCredentials", sso->profile);
	}
	ks_http_response_clean(&resp);
	ks_buf_clean(&url);
	return rc;
}
