/**
 * @file glue.h
 * @brief AWS Glue Schema Registry client: `AWSGlue.GetSchemaVersion` (JSON 1.1, SigV4 for
 *        service `glue`, the credential chain of the rest of kinesink) by schema version id,
 *        retried with backoff on throttling, 5xx and network errors within
 *        schema.registry.timeout.ms. A version id never changes what it names, so each is
 *        fetched once per client, and one client serves every decode lane: lookups are
 *        thread-safe and a lane asking for an id another lane is fetching waits for that fetch.
 */
#ifndef KS_GLUE_H
#define KS_GLUE_H

#include <jansson.h>
#include <stdint.h>

#include "common.h"
#include "conf.h"
#include "creds.h"
#include "metrics.h"

typedef struct ks_glue ks_glue_t;

/** A schema version as GetSchemaVersion told it; immutable, valid until ks_glue_destroy. */
typedef struct ks_glue_schema {
	uint8_t id[16];     /**< the schema version id */
	char id_text[37];   /**< the same as 8-4-4-4-12 hex text */
	char format[16];    /**< DataFormat: "AVRO", "JSON", "PROTOBUF" */
	const char *text;   /**< SchemaDefinition */
	json_t *json;       /**< SchemaDefinition parsed, for AVRO and JSON (read-only, shared); else NULL */
} ks_glue_schema;

/**
 * @brief A client for @p conf's schema.registry.glue.* settings (region: schema.registry.glue.region,
 *        else aws.region; endpoint: schema.registry.glue.endpoint, else Glue's in that region).
 *        @p creds (borrowed, may be NULL: the client makes its own provider from @p conf, the same
 *        chain and role) signs the calls. No network is used here.
 * @returns client (caller destroys, after every thread using it is done) or NULL with @p err set.
 * @locality any thread
 */
ks_glue_t *ks_glue_new(const ks_conf *conf, ks_creds_t *creds, ks_metrics *metrics, ks_errbuf *err);

/** @brief Free the client and every schema it returned; NULL is fine. */
void ks_glue_destroy(ks_glue_t *g);

/** @brief The endpoint URL the client calls (borrowed). */
const char *ks_glue_endpoint(const ks_glue_t *g);

/**
 * @brief Schema version @p id: from the cache, or fetched (one fetch for all callers).
 * @returns 0 and a borrowed schema; KS_ERR_BADREC when Glue answered EntityNotFoundException
 *          (reason unknown_schema, the text naming the id) or a definition that is not JSON for
 *          a JSON-based DataFormat (reason bad_schema); KS_ERR_FATAL when access is denied
 *          (the text names glue:GetSchemaVersion), the credentials are refused, or Glue stayed
 *          unreachable, throttling or failing for schema.registry.timeout.ms.
 * @locality any thread
 */
int ks_glue_get(ks_glue_t *g, const uint8_t id[16], const ks_glue_schema **out, ks_errbuf *err);

/**
 * @brief Put schema version @p id with DataFormat @p format and definition @p definition into
 *        the cache without asking Glue (tests, fuzzing); an id already cached keeps its schema.
 * @returns 0 or KS_ERR_BADREC when a JSON-based definition is not JSON.
 * @locality any thread
 */
int ks_glue_put(ks_glue_t *g, const uint8_t id[16], const char *format, const char *definition, ks_errbuf *err);

/**
 * @brief One GetSchemaVersion of @p id, without retries or cache: what --check --connect asks to
 *        prove that Glue is reached and the credentials may call it.
 * @returns 0 (the version exists), KS_ERR_NOTFOUND (EntityNotFoundException: reached and
 *          allowed), KS_ERR_AUTH (access denied or credentials refused), KS_ERR_IO /
 *          KS_ERR_TIMEOUT (not reached, or 5xx), KS_ERR_FATAL otherwise; @p err says which.
 * @locality any thread (blocking)
 */
int ks_glue_probe(ks_glue_t *g, const uint8_t id[16], ks_errbuf *err);

#endif
