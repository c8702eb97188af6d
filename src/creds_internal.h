/**
 * @file creds_internal.h
 * @brief What the credential sources share inside the provider (not a public interface):
 *        making a credentials snapshot, STS calls (AssumeRole, AssumeRoleWithWebIdentity), the environment, container
 *        and IMDS sources that a profile's `credential_source` names, the shared profile
 *        files, credential_process and IAM Identity Center (SSO). One file per source:
 *        creds.c (the snapshot, STS, environment, container, IMDS), creds_profile.c (profiles,
 *        role chaining, web identity), creds_process.c, creds_sso.c. Calls go down only:
 *        creds_chain.c (the chain) uses creds_profile.c and creds.c; creds_profile.c uses
 *        creds_process.c, creds_sso.c and creds.c; those two use creds.c; creds.c none of them.
 */
#ifndef KS_CREDS_INTERNAL_H
#define KS_CREDS_INTERNAL_H

#include <stddef.h>
#include <time.h>

#include "common.h"
#include "creds.h"

/** How the network sources call out: STS region and the HTTP timeout. */
typedef struct ks_creds_net {
	const char *region;  /**< "us-east-1" when NULL */
	int timeout_ms;
} ks_creds_net;

/** @brief Scrub and free a string holding a secret (NULL is fine). */
void ks_creds_scrub_free(char *s);

/**
 * @brief Fill @p c from the given strings (copied; an empty @p token is none).
 * @returns 0 or KS_ERR_NOMEM.
 */
int ks_creds_set(ks_credentials *c, const char *akid, const char *secret, const char *token, time_t exp,
		 const char *source);

/** @brief ISO 8601 "2026-11-24T03:00:00Z" (fractions and "UTC" allowed) to time_t; 0 when unparsable. */
time_t ks_creds_parse_time(const char *s);

/** @brief Append "k=v" (v percent-encoded as in a form or a query) to @p b, with "&" when not first. */
int ks_creds_form_append(ks_buf *b, const char *k, const char *v);

/** An STS AssumeRole request. */
typedef struct ks_creds_role {
	const char *role_arn;
	const char *external_id;   /**< NULL: none */
	const char *session_name;  /**< NULL: "kinesink-<time>" */
	int duration_s;            /**< 0: the role's default */
} ks_creds_role;

/**
 * @brief STS AssumeRole for @p role signed with @p base; the result is named @p source.
 * @returns 0; KS_ERR_AUTH (refused) or KS_ERR_TRANSIENT with @p err set ("cannot assume role ARN: ...").
 * @locality any thread (blocking)
 */
int ks_creds_assume_role(const ks_creds_net *net, const ks_creds_role *role, const ks_credentials *base,
			 const char *source, ks_credentials *out, ks_errbuf *err);

/**
 * @brief STS AssumeRoleWithWebIdentity (unsigned) for @p role_arn with the token read from
 *        @p token_file (read again at each call: the issuer rotates it); @p session NULL or
 *        empty: "kinesink-<time>". The result is named @p source; errors begin with it.
 * @returns 0; KS_ERR_AUTH (unreadable file, refused) or KS_ERR_TRANSIENT with @p err set.
 * @locality any thread (blocking)
 */
int ks_creds_web_identity(const ks_creds_net *net, const char *token_file, const char *role_arn,
			  const char *session, const char *source, ks_credentials *out, ks_errbuf *err);

/** @brief AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN. @returns 0, KS_ERR_NOTFOUND. */
int ks_creds_from_env(ks_credentials *out);
/** @brief The container endpoint (AWS_CONTAINER_CREDENTIALS_*). @returns 0, KS_ERR_NOTFOUND, or an error. */
int ks_creds_from_container(const ks_creds_net *net, ks_credentials *out, ks_errbuf *err);
/** @brief EC2 IMDSv2. @returns 0, KS_ERR_NOTFOUND (disabled), or an error. */
int ks_creds_from_imds(const ks_creds_net *net, ks_credentials *out, ks_errbuf *err);

/**
 * @brief The profile AWS_PROFILE names ("default" when unset) from the shared files: role_arn
 *        with source_profile / credential_source, SSO, static keys, credential_process, in the
 *        SDKs' order. @p tried receives a description for the "nothing found" message.
 * @returns 0; KS_ERR_NOTFOUND when the profile has none of these; else an error with @p err set.
 */
int ks_creds_from_profile(const ks_creds_net *net, ks_credentials *out, char *tried, size_t tn, ks_errbuf *err);

/**
 * @brief 1 when AWS_PROFILE names a profile whose role_arn takes its source credentials from the
 *        environment (credential_source = Environment): that profile is then resolved before the
 *        environment's keys, which it would otherwise never be.
 */
int ks_creds_profile_sources_env(void);

/**
 * @brief Run @p command (a profile's credential_process, split into words as a POSIX shell
 *        would, run without one) and read its JSON. Errors never hold its standard output.
 * @returns 0 or KS_ERR_AUTH with @p err set.
 */
int ks_creds_process(const char *profile, const char *command, ks_credentials *out, ks_errbuf *err);

/** The SSO settings of a profile (legacy sso_start_url/sso_region, or an sso_session section). */
typedef struct ks_creds_sso {
	const char *profile;
	const char *session_name;  /**< NULL: legacy profile */
	const char *start_url;
	const char *region;
	const char *account_id;
	const char *role_name;
} ks_creds_sso;

/**
 * @brief IAM Identity Center: the token `aws sso login` cached (an sso-session's refreshed with
 *        SSO OIDC CreateToken and written back when it expires within 15 minutes), then the
 *        portal's GetRoleCredentials (AWS_ENDPOINT_URL_SSO and AWS_ENDPOINT_URL_SSO_OIDC
 *        override the endpoints).
 * @returns 0; KS_ERR_AUTH (no or expired token that cannot be refreshed, refused) or
 *          KS_ERR_TRANSIENT with @p err set.
 */
int ks_creds_from_sso(const ks_creds_net *net, const ks_creds_sso *sso, ks_credentials *out, ks_errbuf *err);

#endif
