/**
 * @file msk_iam.h
 * @brief Amazon MSK IAM authentication (`kafka.sasl.mechanism = AWS_MSK_IAM`): SASL/OAUTHBEARER
 *        whose token is a SigV4-presigned `kafka-cluster:Connect` request for the cluster's
 *        region, base64url-encoded, as the AWS MSK IAM SASL signer libraries make it.
 *
 * The token is a pure function of credentials, region and time (ks_msk_iam_token). The wiring
 * (ks_msk_iam_setup / _start / _destroy) gives librdkafka a token when it asks for one: the
 * refresh requests arrive on the client's SASL queue, served by a thread of this module, and
 * are answered with rd_kafka_oauthbearer_set_token (librdkafka asks again at 80 % of the
 * token's lifetime). Tokens and secrets are never logged.
 */
#ifndef KS_MSK_IAM_H
#define KS_MSK_IAM_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>
#include <time.h>

#include "common.h"
#include "conf.h"
#include "creds.h"

/** Lifetime of the presigned request (X-Amz-Expires), as the AWS signer libraries use. */
#define KS_MSK_IAM_EXPIRES_S 900

/** A token and when it stops being valid. */
typedef struct ks_msk_token {
	char *token;         /**< base64url without padding; secret (ks_msk_token_clean wipes it) */
	int64_t expiry_ms;   /**< ms since the epoch: the presign expiry, or the credentials' own if sooner */
} ks_msk_token;
void ks_msk_token_clean(ks_msk_token *t);

/**
 * @brief Make the token for @p region at @p now from @p creds: the presigned URL
 *        `https://kafka.<region>.amazonaws.com/?Action=kafka-cluster%3AConnect&X-Amz-...`
 *        (@p expires seconds), then `&User-Agent=kinesink/<version>`, base64url without padding.
 * @returns 0; KS_ERR_AUTH when @p creds have expired at @p now; KS_ERR_NOMEM.
 * @locality any thread
 */
int ks_msk_iam_token(const ks_credentials *creds, const char *region, time_t now, int expires,
		     ks_msk_token *out, ks_errbuf *err);

/** @brief 1 if @p conf asks for MSK IAM (kafka.sasl.mechanism or kafka.sasl.mechanisms = AWS_MSK_IAM). */
int ks_msk_iam_enabled(const ks_conf *conf);

/**
 * @brief The region the token is signed for: kafka.aws.region; else the one in the broker
 *        host names (b-1.x.y.kafka.REGION.amazonaws.com, boot-x.c1.kafka-serverless.REGION.amazonaws.com);
 *        else aws.region. @returns where it came from ("kafka.aws.region", "bootstrap.servers",
 *        "aws.region"), or NULL when none is known.
 */
const char *ks_msk_iam_region(const ks_conf *conf, char *out, size_t n);

typedef struct ks_msk_iam ks_msk_iam_t;

/**
 * @brief When @p conf asks for MSK IAM, set on @p kc what ks_msk_iam_setup sets (sasl.mechanisms
 *        OAUTHBEARER, security.protocol SASL_SSL unless set, the SASL queue and its refresh
 *        event), with the same errors, but no token source: the configuration a client really
 *        gets, for a check that creates one offline (ks_consumer_check, ks_dlq_check).
 *        Else nothing. @returns 0, or KS_ERR_CONFIG with @p err set.
 * @locality any thread
 */
int ks_msk_iam_conf(rd_kafka_conf_t *kc, const ks_conf *conf, ks_errbuf *err);

/**
 * @brief When @p conf asks for MSK IAM, prepare @p kc for it (sasl.mechanism OAUTHBEARER,
 *        security.protocol SASL_SSL unless set, the SASL queue) and create the token source
 *        in @p *out; else set @p *out to NULL. Call after the kafka.* properties were set on
 *        @p kc, before rd_kafka_new. The credentials come from the chain of the Kinesis side,
 *        with the kafka.aws.credentials.role.* overrides. No network is used here.
 * @returns 0, or KS_ERR_CONFIG / KS_ERR_NOMEM with @p err set.
 * @locality the thread creating the client
 */
int ks_msk_iam_setup(rd_kafka_conf_t *kc, const ks_conf *conf, ks_msk_iam_t **out, ks_errbuf *err);

/**
 * @brief Give @p rk its first token now (a blocking credential fetch when needed) and serve
 *        its refresh requests from then on. NULL @p m: nothing to do.
 * @returns 0; KS_ERR_AUTH (no credentials) or KS_ERR_TRANSIENT with @p err set.
 * @locality the thread that created @p rk, right after rd_kafka_new
 */
int ks_msk_iam_start(ks_msk_iam_t *m, rd_kafka_t *rk, ks_errbuf *err);

/**
 * @brief Record that a broker refused the client's SASL authentication (librdkafka's
 *        RD_KAFKA_RESP_ERR__AUTHENTICATION with @p reason). NULL @p m: nothing to do.
 * @locality any thread (librdkafka's error callback)
 */
void ks_msk_iam_auth_error(ks_msk_iam_t *m, const char *reason);

/**
 * @brief Whether authentication failed (see ks_msk_iam_auth_error); the message in @p err
 *        says so and what to check. @returns 0 or KS_ERR_AUTH.
 * @locality any thread
 */
int ks_msk_iam_failed(ks_msk_iam_t *m, ks_errbuf *err);

/** @brief Stop serving refreshes and free @p m; before rd_kafka_destroy. NULL is fine. */
void ks_msk_iam_destroy(ks_msk_iam_t *m);

#endif
