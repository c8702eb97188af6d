/**
 * @file aws.h
 * @brief What every AWS call needs, whatever the service: the endpoint of a service in a
 *        region, the host and path of an endpoint URL as they are signed, the SigV4-signed
 *        header lines of a request, and the error an AWS answer carries (JSON `__type` /
 *        `message` of the JSON protocols, XML `<Code>` / `<Message>` of the query protocols).
 *        Used by the Kinesis writer and the credentials provider (STS). No state: callers pass
 *        host, path, region, service, target, body and keys.
 */
#ifndef KS_AWS_H
#define KS_AWS_H

#include <stddef.h>
#include <time.h>

#include "common.h"
#include "http.h"
#include "sigv4.h"

/**
 * @brief The endpoint URL of @p service in @p region: @p override when set (an `endpoint`
 *        property, AWS_ENDPOINT_URL_STS), else `https://SERVICE.REGION.amazonaws.com`, with
 *        `.cn` appended in the China regions (`cn-*`).
 * @returns a new string (caller frees) or NULL when out of memory.
 * @locality any thread
 */
char *ks_aws_endpoint(const char *service, const char *region, const char *override);

/** The parts of an endpoint URL a signature covers. */
typedef struct ks_aws_url {
	char host[256];    /**< as sent in Host and signed: a default port (:443, :80) dropped */
	const char *path;  /**< borrowed from the URL given; "/" when it has none */
} ks_aws_url;

/**
 * @brief Split @p url ("https://host[:port][/path]") into @p out. @p out->path points into @p url.
 * @locality any thread
 */
void ks_aws_url_parse(const char *url, ks_aws_url *out);

/** One signed AWS request, as much as the signature needs. */
typedef struct ks_aws_call {
	const char *method;            /**< "POST" */
	const ks_aws_url *url;
	const char *region;
	const char *service;           /**< signing name: "kinesis", "sts", "kafka-cluster" */
	const char *content_type;      /**< "application/x-amz-json-1.1", ...; NULL: none */
	const char *target;            /**< X-Amz-Target ("Kinesis_20131202.PutRecords"); NULL: none */
	const void *body;
	size_t body_len;
} ks_aws_call;

/** Header lines of a signed request: "Name: value" strings, NULL-terminated. */
typedef struct ks_aws_headers {
	char *lines[8];
	size_t n;
} ks_aws_headers;

/**
 * @brief Sign @p call with @p keys at @p now and write its header lines: Host, Content-Type,
 *        X-Amz-Target (those set), X-Amz-Date, Authorization and X-Amz-Security-Token (with a
 *        session token). Clean @p out with ks_aws_headers_clean, which scrubs it.
 * @returns 0 or KS_ERR_NOMEM with @p err set.
 * @locality any thread
 */
int ks_aws_sign(const ks_aws_call *call, const ks_sigv4_keys *keys, time_t now, ks_aws_headers *out,
		ks_errbuf *err);
void ks_aws_headers_clean(ks_aws_headers *h);

/**
 * @brief Sign @p call (whose url is @p req->url, parsed) with @p keys at @p now and perform it
 *        once with the transport settings of @p req (method, URL, body and headers are set here).
 * @returns as ks_http_perform: 0 when an answer arrived (any status; clean @p resp).
 * @locality any thread (blocking)
 */
int ks_aws_perform(const ks_aws_call *call, const ks_sigv4_keys *keys, time_t now, const ks_http_request *req,
		   ks_http_response *resp, ks_errbuf *err);

/** The error of an AWS answer. Both strings are "" when the answer does not say. */
typedef struct ks_aws_error {
	char type[128];     /**< "ResourceNotFoundException" (a JSON `__type` without its namespace) */
	char message[512];
} ks_aws_error;

/**
 * @brief Read the error out of an answer body: JSON (`__type`, `message` or `Message`) or XML
 *        (`<Code>`, `<Message>`). A body that is neither leaves both empty. A refused signature
 *        (InvalidSignatureException, SignatureDoesNotMatch, IncompleteSignature, or a message
 *        quoting the canonical request or string to sign) keeps the message's first sentence and
 *        kinesink's hint; the whole message (which echoes the canonical request, security token
 *        included) is logged at debug level only.
 * @locality any thread
 */
void ks_aws_error_parse(const char *body, size_t len, ks_aws_error *out);

/** @brief "com.amazonaws.kinesis#ResourceNotFoundException" -> "ResourceNotFoundException"; NULL -> "". */
const char *ks_aws_short_type(const char *type);

/**
 * @brief The text between `<tag>` and `</tag>` in the NUL-terminated XML @p xml (first match).
 * @returns a new string (caller frees) or NULL when absent.
 */
char *ks_aws_xml_value(const char *xml, const char *tag);

#endif
