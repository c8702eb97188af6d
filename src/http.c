/* Blocking control-plane HTTP over a libcurl easy handle. */
#include "http.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "scrub.h"

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
	/* Credentials sent in a URL or a Basic header are scrubbed from every text (scrub.h). */
	ks_scrub_add_userinfo(req->url);
	if (req->proxy) {
		ks_scrub_add_userinfo(req->proxy);
		curl_easy_setopt(h, CURLOPT_PROXY, req->proxy);
	}
	if (req->userpwd) {
		ks_scrub_add(req->userpwd, KS_SCRUB_KEEP);
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

/* ---- the libcurl multi transport (PutRecords) ------------------------------------------------ */

typedef struct mslot {
	CURL *easy;
	struct curl_slist *headers;
	ks_buf resp;
	int busy;
	char curl_err[CURL_ERROR_SIZE];
	char request_id[128];
} mslot;

typedef struct mtransport {
	CURLM *multi;
	mslot *slots;
	int n;
} mtransport;

static size_t m_on_body(char *p, size_t size, size_t n, void *ud)
{
	mslot *s = ud;

	return ks_buf_append(&s->resp, p, size * n) ? 0 : size * n;
}

static size_t m_on_header(char *p, size_t size, size_t n, void *ud)
{
	mslot *s = ud;

	ks_http_request_id_header(p, size * n, s->request_id, sizeof(s->request_id));
	return size * n;
}

static void m_close(void *tp)
{
	mtransport *t = tp;
	int i;

	if (!t)
		return;
	for (i = 0; t->slots && i < t->n; i++) {
		mslot *s = &t->slots[i];

		if (s->easy) {
			if (s->busy)
				curl_multi_remove_handle(t->multi, s->easy);
			curl_easy_cleanup(s->easy);
		}
		curl_slist_free_all(s->headers);
		ks_buf_clean(&s->resp);
	}
	free(t->slots);
	if (t->multi)
		curl_multi_cleanup(t->multi);
	free(t);
}

static void *m_open(const ks_http_transport_opts *o, ks_errbuf *err)
{
	mtransport *t = calloc(1, sizeof(*t));
	int i;

	if (!t || !(t->multi = curl_multi_init()))
		goto nomem;
	t->n = o->slots > 0 ? o->slots : 1;
	curl_multi_setopt(t->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)t->n);
	if (!(t->slots = calloc((size_t)t->n, sizeof(*t->slots))))
		goto nomem;
	for (i = 0; i < t->n; i++) {
		mslot *s = &t->slots[i];

		ks_buf_init(&s->resp, o->max_response ? o->max_response : 4u << 20);
		if (!(s->easy = curl_easy_init()))
			goto nomem;
		curl_easy_setopt(s->easy, CURLOPT_URL, o->url);
		curl_easy_setopt(s->easy, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(s->easy, CURLOPT_ERRORBUFFER, s->curl_err);
		curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, o->timeout_ms);
		curl_easy_setopt(s->easy, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
		curl_easy_setopt(s->easy, CURLOPT_TCP_KEEPALIVE, 1L);
		curl_easy_setopt(s->easy, CURLOPT_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
		curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, m_on_body);
		curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, s);
		curl_easy_setopt(s->easy, CURLOPT_HEADERFUNCTION, m_on_header);
		curl_easy_setopt(s->easy, CURLOPT_HEADERDATA, s);
		if (o->ca_file)
			curl_easy_setopt(s->easy, CURLOPT_CAINFO, o->ca_file);
		if (o->proxy) {
			ks_scrub_add_userinfo(o->proxy);
			curl_easy_setopt(s->easy, CURLOPT_PROXY, o->proxy);
		}
	}
	return t;
nomem:
	m_close(t);
	ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory creating HTTP handles");
	return NULL;
}

static int m_start(void *tp, int slot, const char *const *headers, const void *body, size_t len,
		   ks_errbuf *err)
{
	mtransport *t = tp;
	mslot *s = &t->slots[slot];
	struct curl_slist *l = NULL, *tmp;
	size_t i;

	for (i = 0; headers && headers[i]; i++) {
		if (!(tmp = curl_slist_append(l, headers[i])))
			goto nomem;
		l = tmp;
	}
	/* kinesis-mock and some proxies stall on 100-continue: never ask for it. */
	if (!(tmp = curl_slist_append(l, "Expect:")))
		goto nomem;
	l = tmp;
	curl_slist_free_all(s->headers);
	s->headers = l;
	ks_buf_reset(&s->resp);
	s->request_id[0] = '\0';
	s->curl_err[0] = '\0';
	curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->headers);
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, (const char *)body);
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	if (curl_multi_add_handle(t->multi, s->easy) != CURLM_OK)
		return ks_errbuf_set(err, KS_ERR_FATAL, "cannot start an HTTP request");
	s->busy = 1;
	return 0;
nomem:
	curl_slist_free_all(l);
	return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory building request headers");
}

static void m_poll(void *tp, int timeout_ms, int wake_fd, void (*done)(void *ud, const ks_http_answer *a),
		   void *ud)
{
	mtransport *t = tp;
	struct curl_waitfd wfd = { .fd = wake_fd, .events = CURL_WAIT_POLLIN };
	CURLMsg *msg;
	int running, left;

	if (timeout_ms > 0 || wake_fd >= 0)
		curl_multi_poll(t->multi, wake_fd >= 0 ? &wfd : NULL, wake_fd >= 0 ? 1 : 0, timeout_ms, NULL);
	curl_multi_perform(t->multi, &running);
	while ((msg = curl_multi_info_read(t->multi, &left))) {
		ks_http_answer a = { 0 };
		mslot *s = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
		curl_multi_remove_handle(t->multi, msg->easy_handle);
		s->busy = 0;
		a.slot = (int)(s - t->slots);
		if (msg->data.result == CURLE_OK)
			curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &a.status);
		else
			a.error = curl_easy_strerror(msg->data.result);
		a.detail = s->curl_err[0] ? s->curl_err : NULL;
		a.body = s->resp.data;
		a.body_len = s->resp.len;
		a.request_id = s->request_id;
		done(ud, &a);
	}
}

const ks_http_transport ks_http_multi = { m_open, m_start, m_poll, m_close };
