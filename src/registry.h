/**
 * @file registry.h
 * @brief Confluent Schema Registry client: `GET /schemas/ids/{id}` over libcurl with basic
 *        auth, retries on 5xx and timeouts, results cached by id for the client's lifetime.
 *        One client serves every decode lane: lookups are thread-safe and a schema is fetched
 *        once even when several lanes ask for it at the same time. What a decoder builds from
 *        a schema (Avro C values, compiled plans) is the decoder's, not the cache's.
 */
#ifndef KS_REGISTRY_H
#define KS_REGISTRY_H

#include <jansson.h>
#include <stdint.h>

#include "common.h"
#include "conf.h"

typedef struct ks_registry ks_registry_t;

/**
 * A cached schema, immutable once returned and valid until ks_registry_destroy. Shared by every
 * thread: read it, never change it. jansson counts references atomically
 * (JSON_HAVE_ATOMIC_BUILTINS), so taking and dropping references to nodes of @c json from
 * several threads is safe; setting or deleting members is not.
 */
typedef struct ks_schema_entry {
	int32_t id;
	const char *text;  /**< the schema's JSON text, as the registry sent it */
	json_t *json;      /**< the same, parsed (read-only) */
} ks_schema_entry;

/**
 * @brief Create a client for @p conf's schema.registry.* settings.
 * @returns client (caller destroys, after every thread using it is done) or NULL with @p err set.
 * @locality any thread
 */
ks_registry_t *ks_registry_new(const ks_conf *conf, ks_errbuf *err);

/** @brief Free the client and every entry it returned; NULL is fine. */
void ks_registry_destroy(ks_registry_t *r);

/**
 * @brief Look up schema @p id: from the cache, or fetched from the registry (one fetch for all
 *        callers: a caller asking while another fetches the same id waits for its answer).
 * @returns 0 and a borrowed entry; KS_ERR_BADREC when the registry answered "schema not
 *          found" (HTTP 404 with error code 40403; reason unknown_schema, not cached: asked
 *          again next time), the schema is not Avro or not JSON (reason bad_schema): a bad
 *          record; KS_ERR_FATAL when the registry stayed unreachable, failing or answering a 404
 *          of its proxy (no 40403) after retries over schema.registry.timeout.ms.
 * @locality any thread
 */
int ks_registry_get(ks_registry_t *r, int32_t id, const ks_schema_entry **out, ks_errbuf *err);

/**
 * @brief Put schema @p id with JSON text @p schema_json into the cache without asking the
 *        registry (tests, fuzzing); an id already cached keeps its schema.
 * @returns 0 or KS_ERR_BADREC when the text is not JSON.
 * @locality any thread
 */
int ks_registry_put(ks_registry_t *r, int32_t id, const char *schema_json, ks_errbuf *err);

#endif
