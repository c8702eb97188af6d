/**
 * @file registry.h
 * @brief Confluent Schema Registry client: `GET /schemas/ids/{id}` over libcurl with basic
 *        auth, retries on 5xx and timeouts, results cached by id for the process lifetime.
 */
#ifndef KS_REGISTRY_H
#define KS_REGISTRY_H

#include <avro.h>
#include <jansson.h>
#include <stdint.h>

#include "common.h"
#include "conf.h"

typedef struct ks_registry ks_registry_t;

/** A cached schema: parsed by Avro C, its JSON (for logicalType / connect.* attributes). Borrowed. */
typedef struct ks_schema_entry {
	int32_t id;
	avro_schema_t schema;
	json_t *json;               /**< the schema's JSON text, parsed */
	avro_value_iface_t *iface;  /**< generic value class for this schema */
	json_t *connect_schema;     /**< the Kafka Connect JSON form (built lazily, may be NULL) */
	json_t *names;              /**< named types of the schema JSON by full and short name (borrowed refs) */
	struct ks_avro_plan *plan;  /**< the schema compiled for decoding (built lazily, decode_avro.c) */
	avro_value_t value;         /**< one reusable value, reset between messages */
	int value_ready;
} ks_schema_entry;

ks_registry_t *ks_registry_new(const ks_conf *conf, ks_errbuf *err);
void ks_registry_destroy(ks_registry_t *r);

/**
 * @brief Look up schema @p id (from cache or the registry).
 * @returns 0 and a borrowed entry; KS_ERR_NOTFOUND when the registry answered 404 (a bad
 *          record); KS_ERR_FATAL when the registry stayed unreachable or failing after retries.
 */
int ks_registry_get(ks_registry_t *r, int32_t id, const ks_schema_entry **out, ks_errbuf *err);

/** @brief Free an entry's compiled plan (decode_avro.c). */
void ks_avro_plan_free(struct ks_avro_plan *p);

/**
 * @brief Put schema @p id with JSON text @p schema_json into the cache without asking the
 *        registry (tests, fuzzing). @returns 0 or KS_ERR_BADREC when the schema does not parse.
 */
int ks_registry_put(ks_registry_t *r, int32_t id, const char *schema_json, ks_errbuf *err);

/**
 * @brief Decode one Confluent-framed Avro message (magic byte, schema id, body) into the JSON
 *        a Debezium JSON converter would have produced. @p connect_schema (may be NULL) gets a
 *        new reference to the value schema in Kafka Connect JSON form.
 * @returns 0; KS_ERR_BADREC (err->text says what: too short, bad magic, unknown schema id,
 *          invalid body); KS_ERR_FATAL when the registry is unreachable.
 */
int ks_avro_decode(ks_registry_t *r, const void *p, size_t n, json_t **out,
		   json_t **connect_schema, ks_errbuf *err);

#endif
