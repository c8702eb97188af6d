/**
 * @file decode_avro.h
 * @brief Debezium Avro in the Confluent wire format (magic byte, schema id, body) to the JSON a
 *        Debezium JSON converter would have produced. Schemas come from a Schema Registry
 *        client that may be shared; what is built from them (Avro C schema and value, the
 *        compiled plan, the Kafka Connect form) belongs to one ks_avro_decoder, one per thread.
 */
#ifndef KS_DECODE_AVRO_H
#define KS_DECODE_AVRO_H

#include <jansson.h>
#include <stddef.h>

#include "common.h"
#include "registry.h"

typedef struct ks_avro_decoder ks_avro_decoder_t;

/**
 * @brief Create a decoder that takes its schemas from @p registry (borrowed: it must outlive
 *        the decoder, and may serve other decoders at the same time).
 * @returns decoder (caller destroys) or NULL with @p err set.
 * @locality any thread; the decoder is then used by one thread at a time
 */
ks_avro_decoder_t *ks_avro_decoder_new(ks_registry_t *registry, ks_errbuf *err);

/** @brief Free; NULL is fine. */
void ks_avro_decoder_destroy(ks_avro_decoder_t *a);

/**
 * @brief Decode one Confluent-framed Avro message into @p out (a new reference). @p connect_schema
 *        (may be NULL) gets a new reference to the value schema in Kafka Connect JSON form.
 * @returns 0; KS_ERR_BADREC (err->text says what: too short, bad magic, unknown schema id,
 *          invalid schema, invalid body, with err->reason); KS_ERR_FATAL when the registry is
 *          unreachable.
 * @locality the thread using @p a
 */
int ks_avro_decode(ks_avro_decoder_t *a, const void *p, size_t n, json_t **out, json_t **connect_schema,
		   ks_errbuf *err);

#endif
