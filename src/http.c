/* Blocking control-plane HTTP over a libcurl easy handle. */
#include "http.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	ks_http_response *resp = ud;

	/* Returning less than given makes curl fail the transfer: the cap is enforced. */
	if (ks_buf_append(&resp->body, p, size * n))
		return 0;
	return size * n;
}

int ks_http_request_id_header(const char *line, size_t len, char *out, size_t outlen)
{
	static const char *const names[] = { "x-amzn-requestid:", "x-amz-request-id:" };
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		size_t nl = strlen(names[i]);
		const char *v = line + nl;
		size_t vl = len - nl;

		if (len <= nl || strncasecmp(line, names[i], nl) != 0)
			continue;
		while (vl && (*v == ' ' || *v == '\t'))
			v++, vl--;
		while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
			vl--;
		snprintf(out, outlen, "%.*s", (int)vl, v);
		return 1;
	}
	return 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	ks_http_response *resp = ud;

	ks_http_request_id_header(p, size * n, resp->request_id, sizeof(resp->request_id));
	return size * n;
}

int ks_http_perform(const ks_http_request *req, ks_http_response *resp, ks_errbuf *err)
{
	struct curl_slist *hdrs = NULL, *tmp;
	char errtext[CURL_ERROR_SIZE] = "", url[512];
	CURLcode cc;
	CURL *h;
	int i, rc = 0;

	memset(resp, 0, sizeof(*resp));
	ks_buf_init(&resp->body, req->max_response ? req->max_response : 4u << 20);
	ks_url_redact(req->url, url, sizeof(url));

	if (!(h = curl_easy_init()))
		return ks_errbuf_set(err, KS_ERR_NOMEM, "cannot create an HTTP handle for %s", url);
	for (i = 0; req->headers && req->headers[i]; i++) {
		if (!(tmp = curl_slist_append(hdrs, req->headers[i]))) {
			rc = ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory building a request to %s", url);
			goto out;
		}
		hdrs = tmp;
	}
	/* kinesis-mock and some proxies stall on 100-continue: never ask for it. */
	if ((tmp = curl_slist_append(hdrs, "Expect:")))
		hdrs = tmp;

	curl_easy_setopt(h, CURLOPT_URL, req->url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errtext);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, resp);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, req->timeout_ms ? req->timeout_ms : 30000L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
			 req->connect_timeout_ms ? req->connect_timeout_ms : 10000L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	if (req->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, req->ca_file);
	if (req->proxy)
		curl_easy_setopt(h, CURLOPT_PROXY, req->proxy);
	if (req->userpwd) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
		curl_easy_setopt(h, CURLOPT_USERPWD, req->userpwd);
	}
	if (req->method && strcmp(req->method, "GET") != 0) {
		if (strcmp(req->method, "POST") == 0)
			curl_easy_setopt(h, CURLOPT_POST, 1L);
		else
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body ? (const char *)req->body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
	}

	cc = curl_easy_perform(h);
	if (cc != CURLE_OK) {
		char hint[320] = "";

		if ((cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE) && req->ca_key) {
			if (req->ca_file)
				snprintf(hint, sizeof(hint), " (check %s = %s)", req->ca_key, req->ca_file);
			else
				snprintf(hint, sizeof(hint), " (the system's CAs do not trust this server; set %s)",
					 req->ca_key);
		}
		rc = ks_errbuf_set(err, cc == CURLE_OPERATION_TIMEDOUT ? KS_ERR_TIMEOUT : KS_ERR_IO,
				   "%s %s failed: %s%s", req->method ? req->method : "GET", url,
				   errtext[0] ? errtext : curl_easy_strerror(cc), hint);
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
out:
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	return rc;
}

void ks_http_response_clean(ks_http_response *resp)
{
	ks_buf_clean(&resp->body);
}
