/*
 * IAM Identity Center (SSO) profiles: the access token `aws sso login` cached in
 * ~/.aws/sso/cache/<SHA-1 of the sso_session name, or of the start URL for a legacy profile>.json
 * ({"accessToken", "expiresAt"}), then the portal's GetRoleCredentials
 * (GET /federation/credentials?role_name=R&account_id=A with x-amz-sso_bearer_token; no SigV4),
 * as the AWS SDKs do. The portal's endpoint is https://portal.sso.REGION.amazonaws.com, or
 * AWS_ENDPOINT_URL_SSO. An expired token is not refreshed here: the user logs in again.
 */
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws.h"
#include "creds_internal.h"
#include "http.h"

static void login_hint(const ks_creds_sso *sso, char *out, size_t n)
{
	if (sso->session_name)
		snprintf(out, n, "run `aws sso login --sso-session %s` (or --profile %s)", sso->session_name,
			 sso->profile);
	else
		snprintf(out, n, "run `aws sso login --profile %s`", sso->profile);
}

/* The cached token of @p sso into @p tok (scrubbed by the caller). */
static int cached_token(const ks_creds_sso *sso, char *tok, size_t tn, ks_errbuf *err)
{
	const char *key = sso->session_name ? sso->session_name : sso->start_url, *home = getenv("HOME");
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	char path[1200], hex[2 * EVP_MAX_MD_SIZE + 1], hint[300];
	const char *access, *expires;
	json_error_t je;
	json_t *j;
	time_t exp;
	int rc;

	login_hint(sso, hint, sizeof(hint));
	if (!EVP_Digest(key, strlen(key), md, &mdlen, EVP_sha1(), NULL))
		return ks_errbuf_set(err, KS_ERR_AUTH, "profile '%s': cannot hash the SSO cache key", sso->profile);
	for (i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	snprintf(path, sizeof(path), "%s/.aws/sso/cache/%s.json", home ? home : "", hex);
	if (!(j = json_load_file(path, 0, &je)))
		return ks_errbuf_set(err, KS_ERR_AUTH, "profile '%s': no usable SSO token cached in %s (%s); %s",
				     sso->profile, path, je.line > 0 ? "not JSON" : "cannot read it", hint);
	access = json_string_value(json_object_get(j, "accessToken"));
	expires = json_string_value(json_object_get(j, "expiresAt"));
	exp = ks_creds_parse_time(expires);
	if (!access || !*access || !exp)
		rc = ks_errbuf_set(err, KS_ERR_AUTH, "profile '%s': the SSO token cached in %s has no %s; %s",
				   sso->profile, path, access && *access ? "valid expiresAt" : "accessToken", hint);
	else if (exp <= time(NULL))
		rc = ks_errbuf_set(err, KS_ERR_AUTH, "profile '%s': the SSO token cached in %s expired at %s; %s",
				   sso->profile, path, expires, hint);
	else if (strlen(access) >= tn)
		rc = ks_errbuf_set(err, KS_ERR_AUTH, "profile '%s': the SSO token cached in %s is too long",
				   sso->profile, path);
	else
		rc = (snprintf(tok, tn, "%s", access), 0);
	if (access)
		OPENSSL_cleanse((void *)access, strlen(access));
	json_decref(j);
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
	if ((rc = cached_token(sso, tok, sizeof(tok), err))) {
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
