/**
 * @file sigv4.h
 * @brief AWS Signature Version 4 (HMAC-SHA256 with OpenSSL). The time is passed in, so
 *        signatures are reproducible in tests.
 */
#ifndef KS_SIGV4_H
#define KS_SIGV4_H

#include <stddef.h>
#include <time.h>

#include "common.h"

/** A header to sign (name in any case; value is trimmed and folded when signing). */
typedef struct ks_header {
	const char *name;
	const char *value;
} ks_header;

/** What to sign. `host` includes a port when the URL has a non-default one. */
typedef struct ks_sigv4_request {
	const char *method;          /**< "POST" */
	const char *host;            /**< "kinesis.us-east-1.amazonaws.com", "127.0.0.1:4567" */
	const char *path;            /**< "/" (already URI-encoded as sent) */
	const char *query;           /**< raw query string without '?', or NULL */
	const ks_header *headers;    /**< extra headers to sign (content-type, x-amz-target, ...) */
	int n_headers;
	const void *payload;
	size_t payload_len;
	const char *region;
	const char *service;         /**< "kinesis", "sts" */
} ks_sigv4_request;

/** Credentials used to sign (borrowed strings). */
typedef struct ks_sigv4_keys {
	const char *access_key_id;
	const char *secret_access_key;
	const char *session_token;   /**< NULL: none */
} ks_sigv4_keys;

/** The signature and what went into it. Strings are owned: ks_sigv4_result_clean. */
typedef struct ks_sigv4_result {
	char amz_date[17];           /**< 20261124T023000Z: send as X-Amz-Date */
	char payload_hash[65];       /**< hex SHA-256 of the payload */
	char *authorization;         /**< value of the Authorization header */
	char *canonical_request;     /**< for tests and debug logs (contains no secret) */
	char *string_to_sign;
	char *url;                   /**< ks_sigv4_presign only: the presigned https:// URL */
} ks_sigv4_result;

/**
 * @brief Sign @p req at time @p now. Headers host and x-amz-date (and x-amz-security-token
 *        when a session token is given) are added to the signed set by the signer; the caller
 *        must send them with the values from @p out / @p keys.
 * @returns 0 or KS_ERR_NOMEM.
 * @locality any thread
 */
int ks_sigv4_sign(const ks_sigv4_request *req, const ks_sigv4_keys *keys, time_t now,
		  ks_sigv4_result *out);
void ks_sigv4_result_clean(ks_sigv4_result *r);

/**
 * @brief Presign @p req at time @p now (SigV4 query signing, as botocore's SigV4QueryAuth):
 *        the signature goes in the query string, valid @p expires seconds. The signed headers
 *        are host and @p req's headers; the payload must be empty. @p out->url is
 *        `https://<host><path>?<req's query>&X-Amz-Algorithm=...&X-Amz-Credential=...&X-Amz-Date=...
 *        &X-Amz-Expires=...&X-Amz-SignedHeaders=...[&X-Amz-Security-Token=...]&X-Amz-Signature=...`
 *        (the query's parameters re-encoded in their order, the others in this order).
 *        @p out->authorization is NULL. The URL carries the session token: never log it.
 * @returns 0, KS_ERR_NOMEM, or KS_ERR_CONFIG when @p expires is outside 1..604800 or a
 *          payload is given.
 * @locality any thread
 */
int ks_sigv4_presign(const ks_sigv4_request *req, const ks_sigv4_keys *keys, time_t now, int expires,
		     ks_sigv4_result *out);

#endif
