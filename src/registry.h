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
} ks_schema_entry;

ks_registry_t *ks_registry_new(const ks_conf *conf, ks_errbuf *err);
void ks_registry_destroy(ks_registry_t *r);

/**
 * @brief Look up schema @p id (from cache or the registry).
 * @returns 0 and a borrowed entry; KS_ERR_NOTFOUND when the registry answered 404 (a bad
 *          record); KS_ERR_FATAL when the registry stayed unreachable or failing after retries.
 */
int ks_registry_get(ks_registry_t *r, int32_t id, const ks_schema_entry **out, ks_errbuf *err);

#endif
