/*
 * The parts of an AWS call that do not depend on the service: endpoint, signed headers, error
 * answers. The Kinesis writer and the STS calls of the credentials provider share them.
 */
#include "aws.h"

#include <ctype.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

char *ks_aws_endpoint(const char *service, const char *region, const char *override)
{
	ks_buf b;

	if (override && *override)
		return strdup(override);
	ks_buf_init(&b, 1024);
	if (ks_buf_printf(&b, "https://%s.%s.amazonaws.com%s", service, region ? region : "",
			  region && strncmp(region, "cn-", 3) == 0 ? ".cn" : "")) {
		ks_buf_clean(&b);
		return NULL;
	}
	return b.data;
}

void ks_aws_url_parse(const char *url, ks_aws_url *out)
{
	const char *h = strstr(url, "://"), *slash, *colon;
	int https = strncmp(url, "https://", 8) == 0;
	size_t hl;

	h = h ? h + 3 : url;
	slash = strchr(h, '/');
	hl = slash ? (size_t)(slash - h) : strlen(h);
	out->path = slash ? slash : "/";
	snprintf(out->host, sizeof(out->host), "%.*s", (int)hl, h);
	/* A default port is not part of the Host header curl would send. */
	colon = strrchr(out->host, ':');
	if (colon && ((https && strcmp(colon, ":443") == 0) || (!https && strcmp(colon, ":80") == 0)))
		out->host[colon - out->host] = '\0';
}

static int add_line(ks_aws_headers *h, const char *name, const char *value)
{
	size_t len = strlen(name) + strlen(value) + 3;

	if (h->n + 1 >= sizeof(h->lines) / sizeof(h->lines[0]) || !(h->lines[h->n] = malloc(len)))
		return KS_ERR_NOMEM;
	snprintf(h->lines[h->n++], len, "%s: %s", name, value);
	h->lines[h->n] = NULL;
	return 0;
}

int ks_aws_sign(const ks_aws_call *call, const ks_sigv4_keys *keys, time_t now, ks_aws_headers *out,
		ks_errbuf *err)
{
	ks_header hs[2];
	int nh = 0, rc;
	ks_sigv4_request sreq = { call->method, call->url->host, call->url->path, NULL, hs, 0, call->body,
				  call->body_len, call->region, call->service };
	ks_sigv4_result sig;

	memset(out, 0, sizeof(*out));
	if (call->content_type)
		hs[nh++] = (ks_header){ "Content-Type", call->content_type };
	if (call->target)
		hs[nh++] = (ks_header){ "X-Amz-Target", call->target };
	sreq.n_headers = nh;
	if (ks_sigv4_sign(&sreq, keys, now, &sig))
		return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory signing a request to %s", call->url->host);
	rc = add_line(out, "Host", call->url->host);
	if (!rc && call->content_type)
		rc = add_line(out, "Content-Type", call->content_type);
	if (!rc && call->target)
		rc = add_line(out, "X-Amz-Target", call->target);
	if (!rc)
		rc = add_line(out, "X-Amz-Date", sig.amz_date);
	if (!rc)
		rc = add_line(out, "Authorization", sig.authorization);
	if (!rc && keys->session_token)
		rc = add_line(out, "X-Amz-Security-Token", keys->session_token);
	ks_sigv4_result_clean(&sig);
	if (rc) {
		ks_aws_headers_clean(out);
		return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory building the headers of a request to %s",
				     call->url->host);
	}
	return 0;
}

void ks_aws_headers_clean(ks_aws_headers *h)
{
	size_t i;

	for (i = 0; i < h->n; i++) {
		OPENSSL_cleanse(h->lines[i], strlen(h->lines[i]));
		free(h->lines[i]);
	}
	memset(h, 0, sizeof(*h));
}

int ks_aws_perform(const ks_aws_call *call, const ks_sigv4_keys *keys, time_t now, const ks_http_request *req,
		   ks_http_response *resp, ks_errbuf *err)
{
	ks_http_request r = *req;
	ks_aws_headers h;
	int rc;

	memset(resp, 0, sizeof(*resp));
	if ((rc = ks_aws_sign(call, keys, now, &h, err)))
		return rc;
	r.method = call->method;
	r.headers = (const char *const *)h.lines;
	r.body = call->body;
	r.body_len = call->body_len;
	rc = ks_http_perform(&r, resp, err);
	ks_aws_headers_clean(&h);
	return rc;
}

const char *ks_aws_short_type(const char *t)
{
	const char *h = t ? strrchr(t, '#') : NULL;

	return h ? h + 1 : t ? t : "";
}

char *ks_aws_xml_value(const char *xml, const char *tag)
{
	char open[64], close[64];
	const char *a, *b;

	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	if (!(a = strstr(xml, open)))
		return NULL;
	a += strlen(open);
	if (!(b = strstr(a, close)))
		return NULL;
	return ks_strndup(a, (size_t)(b - a));
}

/*
 * A signature the service refused: AWS adds to its message the canonical request and the string
 * to sign it calculated (IAM user guide, "Troubleshoot signed requests"), and the canonical
 * request holds the X-Amz-Security-Token header. What helps is the first sentence and what to
 * check; the whole message goes to the debug log only (scrubbed, as every line).
 */
static int signature_refused(const char *type, const char *msg)
{
	return !strcmp(type, "InvalidSignatureException") || !strcmp(type, "SignatureDoesNotMatch") ||
	       !strcmp(type, "IncompleteSignatureException") || !strcmp(type, "IncompleteSignature") ||
	       strstr(msg, "Canonical String") || strstr(msg, "canonical request") || strstr(msg, "String-to-Sign");
}

static void set_message(ks_aws_error *out, const char *msg)
{
	size_t n;

	if (!signature_refused(out->type, msg)) {
		snprintf(out->message, sizeof(out->message), "%s", msg);
		return;
	}
	ks_debug("aws", "%s: the whole message: %s", out->type[0] ? out->type : "signature refused", msg);
	/* The first sentence: to a period ending it, or to the end of the first line. */
	for (n = 0; msg[n] && msg[n] != '\n' && !(msg[n] == '.' && (!msg[n + 1] || isspace((unsigned char)msg[n + 1])));
	     n++)
		;
	if (msg[n] == '.')
		n++;
	if (n > 300)
		n = 300;
	snprintf(out->message, sizeof(out->message), "%.*s%s(kinesink: check the AWS secret access key, the region "
		 "aws.region and this machine's clock)", (int)n, msg, n ? " " : "");
}

void ks_aws_error_parse(const char *body, size_t len, ks_aws_error *out)
{
	json_t *root;

	out->type[0] = out->message[0] = '\0';
	if (!body || !len)
		return;
	if ((root = json_loadb(body, len, 0, NULL))) {
		const char *msg = json_string_value(json_object_get(root, "message"));

		if (!msg)
			msg = json_string_value(json_object_get(root, "Message"));
		snprintf(out->type, sizeof(out->type), "%s",
			 ks_aws_short_type(json_string_value(json_object_get(root, "__type"))));
		set_message(out, msg ? msg : "");
		json_decref(root);
	} else {
		/* The XML of the query protocols (STS) is NUL-terminated text. */
		char *xml = ks_strndup(body, len), *code = xml ? ks_aws_xml_value(xml, "Code") : NULL;
		char *msg = xml ? ks_aws_xml_value(xml, "Message") : NULL;

		snprintf(out->type, sizeof(out->type), "%s", code ? code : "");
		set_message(out, msg ? msg : "");
		free(code);
		free(msg);
		free(xml);
	}
}
