/**
 * @file http.h
 * @brief Small blocking HTTP client over a libcurl easy handle, for the control-plane calls
 *        (Schema Registry, STS, IMDS, container credentials, DescribeStreamSummary).
 *        The data path (PutRecords) goes through a ks_http_transport: requests started and
 *        answered asynchronously; ks_http_multi is the one over the libcurl multi interface.
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

/** Where and how a transport sends its requests. */
typedef struct ks_http_transport_opts {
	const char *url;             /**< every request goes to this URL */
	long timeout_ms;             /**< whole request */
	long connect_timeout_ms;
	const char *ca_file;         /**< NULL: system default */
	const char *proxy;           /**< NULL: libcurl's environment */
	size_t max_response;         /**< cap on an answer's body */
	int slots;                   /**< requests that may be in flight at once, numbered 0..slots-1 */
	void *ud;                    /**< the transport's own data, from its user (NULL for ks_http_multi) */
} ks_http_transport_opts;

/** A finished request, handed to the done callback of ks_http_transport.poll (all borrowed). */
typedef struct ks_http_answer {
	int slot;
	long status;                 /**< HTTP status; 0 when no answer arrived */
	const char *error;           /**< status 0: what failed, in short ("Timeout was reached") */
	const char *detail;          /**< status 0: what failed, in full; NULL: as error */
	const char *body;            /**< the answer's body (may be NULL when empty) */
	size_t body_len;
	const char *request_id;      /**< "" when the answer had none */
} ks_http_answer;

/**
 * An asynchronous HTTP POST transport as a function table, so that the writer can be driven by
 * a fake one in tests (aws-c-auth's seam). One request per slot at a time.
 */
typedef struct ks_http_transport {
	/** @returns the transport's state, or NULL with @p err set. */
	void *(*open)(const ks_http_transport_opts *opts, ks_errbuf *err);
	/**
	 * Start POSTing @p body (borrowed until the slot's answer was handed over) with the header
	 * lines @p headers (NULL-terminated, copied). @returns 0 or a ks_err with @p err set.
	 */
	int (*start)(void *t, int slot, const char *const *headers, const void *body, size_t len,
		     ks_errbuf *err);
	/**
	 * Wait up to @p timeout_ms for network activity, or for @p wake_fd (readable) when >= 0,
	 * then call @p done for each request that finished.
	 */
	void (*poll)(void *t, int timeout_ms, int wake_fd,
		     void (*done)(void *ud, const ks_http_answer *a), void *ud);
	/** Abandon the requests in flight and free @p t (NULL is fine). */
	void (*close)(void *t);
} ks_http_transport;

/** @brief The libcurl multi transport: kept-alive connections, HTTP/1.1, no 100-continue. */
extern const ks_http_transport ks_http_multi;

#endif
