/*
 * AWS credentials: the snapshot (ks_credentials), STS (AssumeRole and
 * AssumeRoleWithWebIdentity), and the sources of the chain that need no files of their own
 * (environment, container, IMDSv2). The chain itself (creds_chain.c) and the profile sources
 * (creds_profile.c, creds_process.c, creds_sso.c) call these; nothing here calls them.
 */
#include "creds.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "aws.h"
#include "creds_internal.h"
#include "http.h"
#include "log.h"
#include "scrub.h"

void ks_creds_scrub_free(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

void ks_credentials_clean(ks_credentials *c)
{
	ks_creds_scrub_free(c->access_key_id);
	ks_creds_scrub_free(c->secret_access_key);
	ks_creds_scrub_free(c->session_token);
	memset(c, 0, sizeof(*c));
}

int ks_creds_set(ks_credentials *c, const char *akid, const char *secret, const char *token, time_t exp,
		 const char *source)
{
	memset(c, 0, sizeof(*c));
	/* Every source makes its snapshot here: the secrets are scrubbed from every text from now on. */
	ks_scrub_add(secret, 0);
	ks_scrub_add(token, 0);
	c->access_key_id = strdup(akid);
	c->secret_access_key = strdup(secret);
	c->session_token = token && *token ? strdup(token) : NULL;
	c->expiration = exp;
	snprintf(c->source, sizeof(c->source), "%s", source);
	if (!c->access_key_id || !c->secret_access_key || (token && *token && !c->session_token)) {
		ks_credentials_clean(c);
		return KS_ERR_NOMEM;
	}
	return 0;
}

/* ---- helpers ------------------------------------------------------------------------------ */

/* ISO 8601 "2026-11-24T03:00:00Z" (fractions and "UTC" allowed) to time_t; 0 when unparsable. */
time_t ks_creds_parse_time(const char *s)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (!s || sscanf(s, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
			 &tm.tm_min, &tm.tm_sec) != 6)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return timegm(&tm);
}

static int parse_sts_xml(const char *xml, const char *source, ks_credentials *out, ks_errbuf *err)
{
	char *akid = ks_aws_xml_value(xml, "AccessKeyId"), *secret = ks_aws_xml_value(xml, "SecretAccessKey");
	char *token = ks_aws_xml_value(xml, "SessionToken"), *exp = ks_aws_xml_value(xml, "Expiration");
	int rc;

	if (!akid || !secret)
		rc = ks_errbuf_set(err, KS_ERR_AUTH, "%s: the STS answer has no credentials", source);
	else
		rc = ks_creds_set(out, akid, secret, token, ks_creds_parse_time(exp), source);
	ks_creds_scrub_free(akid);
	ks_creds_scrub_free(secret);
	ks_creds_scrub_free(token);
	free(exp);
	return rc;
}

/* {"AccessKeyId","SecretAccessKey","Token","Expiration"} as IMDS and ECS serve them. */
static int parse_json_creds(const char *text, const char *source, ks_credentials *out, ks_errbuf *err)
{
	json_t *j = json_loads(text, 0, NULL);
	const char *akid, *secret, *token, *exp;
	int rc;

	if (!j)
		return ks_errbuf_set(err, KS_ERR_AUTH, "%s: the credentials answer is not JSON", source);
	akid = json_string_value(json_object_get(j, "AccessKeyId"));
	secret = json_string_value(json_object_get(j, "SecretAccessKey"));
	token = json_string_value(json_object_get(j, "Token"));
	exp = json_string_value(json_object_get(j, "Expiration"));
	if (!akid || !secret)
		rc = ks_errbuf_set(err, KS_ERR_AUTH, "%s: the credentials answer has no AccessKeyId/SecretAccessKey", source);
	else
		rc = ks_creds_set(out, akid, secret, token, ks_creds_parse_time(exp), source);
	json_decref(j);
	return rc;
}

int ks_creds_form_append(ks_buf *b, const char *k, const char *v)
{
	static const char digits[] = "0123456789ABCDEF";
	const char *p;
	int r = ks_buf_printf(b, "%s%s=", b->len ? "&" : "", k);

	for (p = v; !r && *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
			r = ks_buf_append(b, p, 1);
		} else {
			char e[3] = { '%', digits[c >> 4], digits[c & 15] };

			r = ks_buf_append(b, e, 3);
		}
	}
	return r;
}

static int sts_call(const ks_creds_net *net, const char *body, const ks_credentials *signer,
		    const char *source, ks_credentials *out, ks_errbuf *err)
{
	const char *region = net->region ? net->region : "us-east-1";
	char *url = ks_aws_endpoint("sts", region, getenv("AWS_ENDPOINT_URL_STS"));
	const char *unsigned_hdrs[] = { "Content-Type: application/x-www-form-urlencoded", NULL };
	ks_aws_headers signed_hdrs = { 0 };
	ks_http_request req = { 0 };
	ks_http_response resp;
	int rc;

	if (!url)
		return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
	req.headers = unsigned_hdrs;
	if (signer) {
		ks_aws_url u;
		ks_aws_call call = { "POST", &u, region, "sts", "application/x-www-form-urlencoded", NULL,
				     body, strlen(body) };
		ks_sigv4_keys keys = { signer->access_key_id, signer->secret_access_key, signer->session_token };

		ks_aws_url_parse(url, &u);
		if ((rc = ks_aws_sign(&call, &keys, time(NULL), &signed_hdrs, err))) {
			free(url);
			return rc;
		}
		req.headers = (const char *const *)signed_hdrs.lines;
	}
	req.method = "POST";
	req.url = url;
	req.body = body;
	req.body_len = strlen(body);
	req.timeout_ms = net->timeout_ms;
	rc = ks_http_perform(&req, &resp, err);
	if (rc == 0) {
		if (resp.status == 200) {
			rc = parse_sts_xml(resp.body.data ? resp.body.data : "", source, out, err);
		} else {
			ks_aws_error e;

			ks_aws_error_parse(resp.body.data, resp.body.len, &e);
			rc = ks_errbuf_set(err, resp.status >= 500 ? KS_ERR_TRANSIENT : KS_ERR_AUTH,
					   "%s: STS %s answered HTTP %ld %s: %s (request id %s)", source, url,
					   resp.status, e.type, e.message, resp.request_id[0] ? resp.request_id : "none");
		}
	} else {
		ks_errbuf_prefix(err, "%s", source);
	}
	ks_http_response_clean(&resp);
	ks_aws_headers_clean(&signed_hdrs);
	free(url);
	return rc;
}

/* ---- sources of the chain ------------------------------------------------------------------ */

int ks_creds_from_env(ks_credentials *out)
{
	const char *akid = getenv("AWS_ACCESS_KEY_ID"), *secret = getenv("AWS_SECRET_ACCESS_KEY");

	if (!akid || !*akid || !secret || !*secret)
		return KS_ERR_NOTFOUND;
	return ks_creds_set(out, akid, secret, getenv("AWS_SESSION_TOKEN"), 0, "environment");
}

int ks_creds_web_identity(const ks_creds_net *net, const char *token_file, const char *role_arn,
			  const char *session, const char *source, ks_credentials *out, ks_errbuf *err)
{
	char token[16384], sname[64];
	ks_buf body;
	size_t n;
	FILE *f;
	int rc;

	if (!(f = fopen(token_file, "r")))
		return ks_errbuf_set(err, KS_ERR_AUTH, "%s: cannot read the web identity token file %s: %s", source,
				     token_file, strerror(errno));
	n = fread(token, 1, sizeof(token) - 1, f);
	fclose(f);
	while (n && isspace((unsigned char)token[n - 1]))
		n--;
	token[n] = '\0';
	ks_scrub_add(token, 0);
	if (!session || !*session) {
		snprintf(sname, sizeof(sname), "kinesink-%ld", (long)time(NULL));
		session = sname;
	}
	ks_buf_init(&body, 64 * 1024);
	rc = ks_creds_form_append(&body, "Action", "AssumeRoleWithWebIdentity") ||
	     ks_creds_form_append(&body, "Version", "2011-06-15") || ks_creds_form_append(&body, "RoleArn", role_arn) ||
	     ks_creds_form_append(&body, "RoleSessionName", session) || ks_creds_form_append(&body, "WebIdentityToken", token);
	OPENSSL_cleanse(token, sizeof(token));
	if (rc) {
		ks_buf_clean(&body);
		return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
	}
	rc = sts_call(net, body.data, NULL, source, out, err);
	OPENSSL_cleanse(body.data, body.len);
	ks_buf_clean(&body);
	return rc;
}

static int http_get_creds(const ks_creds_net *net, const char *url, const char *const *headers, const char *source,
			  ks_credentials *out, ks_errbuf *err)
{
	ks_http_request req = { .method = "GET", .url = url, .headers = headers,
				.timeout_ms = net->timeout_ms, .connect_timeout_ms = 1000 };
	ks_http_response resp;
	int rc = ks_http_perform(&req, &resp, err);

	if (rc == 0) {
		if (resp.status == 200)
			rc = parse_json_creds(resp.body.data ? resp.body.data : "", source, out, err);
		else
			rc = ks_errbuf_set(err, KS_ERR_AUTH, "%s: %s answered HTTP %ld", source, url, resp.status);
	} else {
		ks_errbuf_prefix(err, "%s", source);
	}
	if (resp.body.data)
		OPENSSL_cleanse(resp.body.data, resp.body.len);
	ks_http_response_clean(&resp);
	return rc;
}

int ks_creds_from_container(const ks_creds_net *net, ks_credentials *out, ks_errbuf *err)
{
	const char *rel = getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	const char *tok = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	const char *tokfile = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	char url[2048], auth[4200] = "";
	const char *headers[2] = { NULL, NULL };
	int rc;

	if (rel && *rel)
		snprintf(url, sizeof(url), "http://169.254.170.2%s", rel);
	else if (full && *full)
		snprintf(url, sizeof(url), "%s", full);
	else
		return KS_ERR_NOTFOUND;
	if (tokfile && *tokfile) {
		FILE *f = fopen(tokfile, "r");
		char t[4096];
		size_t n = 0;

		if (f) {
			n = fread(t, 1, sizeof(t) - 1, f);
			fclose(f);
		}
		while (n && isspace((unsigned char)t[n - 1]))
			n--;
		t[n] = '\0';
		snprintf(auth, sizeof(auth), "Authorization: %s", t);
		OPENSSL_cleanse(t, sizeof(t));
	} else if (tok && *tok) {
		snprintf(auth, sizeof(auth), "Authorization: %s", tok);
	}
	if (auth[0]) {
		ks_scrub_add(auth + strlen("Authorization: "), 0);
		headers[0] = auth;
	}
	rc = http_get_creds(net, url, headers, "container", out, err);
	OPENSSL_cleanse(auth, sizeof(auth));
	return rc;
}

int ks_creds_from_imds(const ks_creds_net *net, ks_credentials *out, ks_errbuf *err)
{
	const char *disabled = getenv("AWS_EC2_METADATA_DISABLED");
	const char *base = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	const char *ttl_hdr[] = { "X-aws-ec2-metadata-token-ttl-seconds: 21600", NULL };
	char url[1024], tokhdr[1200], role[256];
	const char *hdrs[2] = { tokhdr, NULL };
	ks_http_request req = { .timeout_ms = 2000, .connect_timeout_ms = 1000 };
	ks_http_response resp;
	size_t blen;
	int rc;

	if (disabled && strcasecmp(disabled, "true") == 0)
		return KS_ERR_NOTFOUND;
	if (!base || !*base)
		base = "http://169.254.169.254";
	blen = strlen(base);
	while (blen && base[blen - 1] == '/')
		blen--;

	snprintf(url, sizeof(url), "%.*s/latest/api/token", (int)blen, base);
	req.method = "PUT";
	req.url = url;
	req.headers = ttl_hdr;
	if ((rc = ks_http_perform(&req, &resp, err))) {
		ks_errbuf_prefix(err, "imds");
		ks_http_response_clean(&resp);
		return rc;
	}
	if (resp.status != 200 || !resp.body.data) {
		rc = ks_errbuf_set(err, KS_ERR_AUTH, "imds: token request answered HTTP %ld", resp.status);
		ks_http_response_clean(&resp);
		return rc;
	}
	snprintf(tokhdr, sizeof(tokhdr), "X-aws-ec2-metadata-token: %s", resp.body.data);
	ks_scrub_add(resp.body.data, 0);
	ks_http_response_clean(&resp);

	snprintf(url, sizeof(url), "%.*s/latest/meta-data/iam/security-credentials/", (int)blen, base);
	req.method = "GET";
	req.headers = hdrs;
	if ((rc = ks_http_perform(&req, &resp, err))) {
		ks_errbuf_prefix(err, "imds");
		ks_http_response_clean(&resp);
		return rc;
	}
	if (resp.status != 200 || !resp.body.data || !resp.body.len) {
		rc = ks_errbuf_set(err, KS_ERR_AUTH, "imds: no IAM role attached to this instance (HTTP %ld)",
				   resp.status);
		ks_http_response_clean(&resp);
		return rc;
	}
	snprintf(role, sizeof(role), "%.*s", (int)strcspn(resp.body.data, "\r\n"), resp.body.data);
	ks_http_response_clean(&resp);
	snprintf(url, sizeof(url), "%.*s/latest/meta-data/iam/security-credentials/%s", (int)blen, base, role);
	rc = http_get_creds(net, url, hdrs, "imds", out, err);
	OPENSSL_cleanse(tokhdr, sizeof(tokhdr));
	return rc;
}

int ks_creds_assume_role(const ks_creds_net *net, const ks_creds_role *role, const ks_credentials *base,
			 const char *source, ks_credentials *out, ks_errbuf *err)
{
	char sname[64], dur[16];
	const char *session = role->session_name;
	ks_buf body;
	int rc;

	if (!session || !*session) {
		snprintf(sname, sizeof(sname), "kinesink-%ld", (long)time(NULL));
		session = sname;
	}
	snprintf(dur, sizeof(dur), "%d", role->duration_s);
	ks_buf_init(&body, 64 * 1024);
	rc = ks_creds_form_append(&body, "Action", "AssumeRole") || ks_creds_form_append(&body, "Version", "2011-06-15") ||
	     ks_creds_form_append(&body, "RoleArn", role->role_arn) || ks_creds_form_append(&body, "RoleSessionName", session) ||
	     (role->external_id && ks_creds_form_append(&body, "ExternalId", role->external_id)) ||
	     (role->duration_s > 0 && ks_creds_form_append(&body, "DurationSeconds", dur));
	if (rc) {
		ks_buf_clean(&body);
		return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
	}
	rc = sts_call(net, body.data, base, source, out, err);
	OPENSSL_cleanse(body.data, body.len);
	ks_buf_clean(&body);
	if (rc)
		ks_errbuf_prefix(err, "cannot assume role %s", role->role_arn);
	return rc;
}

