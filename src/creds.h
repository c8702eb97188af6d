/**
 * @file creds.h
 * @brief AWS credentials: static keys from the configuration, else the standard chain
 *        (environment, the AWS_PROFILE profile of the shared credentials/config files: role_arn
 *        with source_profile or credential_source, web identity (the profile's or the
 *        environment's), IAM Identity Center (its sso-session token refreshed), static keys,
 *        credential_process; container credentials, EC2 IMDSv2), optionally
 *        wrapped in STS AssumeRole.
 *        Temporary credentials are refreshed before they expire.
 *
 * Test seams are the standard AWS environment variables: AWS_ENDPOINT_URL_STS,
 * AWS_EC2_METADATA_SERVICE_ENDPOINT, AWS_CONTAINER_CREDENTIALS_FULL_URI,
 * AWS_ENDPOINT_URL_SSO, AWS_ENDPOINT_URL_SSO_OIDC, AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE,
 * HOME (the SSO token cache); the clock is passed in.
 */
#ifndef KS_CREDS_H
#define KS_CREDS_H

#include <time.h>

#include "aws.h"
#include "common.h"
#include "conf.h"
#include "metrics.h"

/** A snapshot of credentials; owned by the caller of ks_creds_get (ks_credentials_clean). */
typedef struct ks_credentials {
	char *access_key_id;
	char *secret_access_key;
	char *session_token;  /**< NULL: none */
	time_t expiration;    /**< 0: does not expire */
	char source[32];      /**< "config", "environment", "profile:NAME", "role:NAME", "sso:NAME",
				   "process:NAME", "web-identity", "web-identity:NAME", "container", "imds", "assume-role" */
} ks_credentials;
void ks_credentials_clean(ks_credentials *c);

typedef struct ks_creds ks_creds_t;

/**
 * @brief Create the provider for @p conf. No network is used here.
 * @returns provider (caller destroys) or NULL with @p err set.
 */
ks_creds_t *ks_creds_new(const ks_conf *conf, ks_metrics *metrics, ks_errbuf *err);
void ks_creds_destroy(ks_creds_t *p);

/**
 * @brief Copy current credentials into @p out, resolving or refreshing them first when
 *        missing or expiring within 5 minutes of @p now (a blocking HTTP call then).
 * @returns 0; KS_ERR_AUTH when no source in the chain has credentials (the message lists
 *          what was tried); KS_ERR_TRANSIENT when a refresh failed but may work later.
 * @locality any thread (internally locked)
 */
int ks_creds_get(ks_creds_t *p, time_t now, ks_credentials *out, ks_errbuf *err);

/** @brief Forget cached credentials so the next get refreshes (after ExpiredTokenException). */
void ks_creds_invalidate(ks_creds_t *p);

/**
 * @brief Sign @p call with @p p's current credentials (ks_creds_get) and send it (aws.c's
 *        ks_aws_perform): the credentials and the signature are taken at the time of the call.
 * @returns 0 with the answer in @p resp (clean it; zeroed first, whatever happens) whatever its
 *          status; else the error of ks_creds_get with *@p no_creds set to 1, or the
 *          transport's (*@p no_creds 0), with @p err.
 * @locality any thread (blocking)
 */
int ks_creds_aws_perform(ks_creds_t *p, const ks_aws_call *call, const ks_http_request *req, ks_http_response *resp,
			 int *no_creds, ks_errbuf *err);

#endif
