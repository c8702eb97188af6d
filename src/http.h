/**
 * @file http.h
 * @brief Small blocking HTTP client over a libcurl easy handle, for the control-plane calls
 *        (Schema Registry, STS, IMDS, container credentials, DescribeStreamSummary).
 *        The data path (PutRecords) uses the multi interface in kinesis.c instead.
 */
#ifndef KS_HTTP_H
#define KS_HTTP_H

#include <stddef.h>

#include "common.h"

typedef struct ks_http_request {
	const char *method;          /**< "GET", "POST", "PUT" */
	const char *url;
	const char *const *headers;  /**< "Name: value" strings, NULL-terminated, or NULL */
	const void *body;
	size_t body_len;
	const char *userpwd;         /**< "user:password" for basic auth, or NULL */
	long timeout_ms;             /**< whole request; 0: 30 s */
	long connect_timeout_ms;     /**< 0: 10 s */
	const char *ca_file;         /**< NULL: system default */
	const char *ca_key;          /**< the config key that sets ca_file, named by a certificate error */
	const char *proxy;           /**< NULL: libcurl's environment */
	size_t max_response;         /**< cap on the body kept; 0: 4 MiB */
} ks_http_request;

typedef struct ks_http_response {
	long status;                 /**< HTTP status, 0 when no answer */
	ks_buf body;
	char request_id[128];        /**< x-amzn-RequestId / x-amz-request-id when present */
} ks_http_response;

/**
 * @brief Perform @p req once. @returns 0 when an HTTP answer arrived (any status); KS_ERR_IO
 *        or KS_ERR_TIMEOUT with @p err saying what failed (curl's text, the URL without
 *        credentials). Caller cleans @p resp with ks_http_response_clean.
 * @locality any thread
 */
int ks_http_perform(const ks_http_request *req, ks_http_response *resp, ks_errbuf *err);
void ks_http_response_clean(ks_http_response *resp);

/**
 * @brief If header line @p line (@p len bytes, as curl hands it over) is x-amzn-RequestId or
 *        x-amz-request-id, copy its trimmed value to @p out. @returns 1 when it was one.
 */
int ks_http_request_id_header(const char *line, size_t len, char *out, size_t outlen);

#endif
