/**
 * @file decode_avro.h
 * @brief Debezium Avro in the Confluent wire format (magic byte, schema id, body), or the body
 *        of an AWS Glue Schema Registry framing (its version id given), to the JSON a Debezium
 *        JSON converter would have produced. Schemas come from a Schema Registry or Glue client
 *        that may be shared; what is built from them (Avro C schema and value, the compiled
 *        plan, the Kafka Connect form) belongs to one ks_avro_decoder, one per thread.
 */
#ifndef KS_DECODE_AVRO_H
#define KS_DECODE_AVRO_H

#include <jansson.h>
#include <stddef.h>

#include "common.h"
#include "glue.h"
#include "registry.h"

typedef struct ks_avro_decoder ks_avro_decoder_t;

/**
 * @brief Create a decoder that takes its schemas from @p registry (borrowed: it must outlive
 *        the decoder, and may serve other decoders at the same time).
 * @returns decoder (caller destroys) or NULL with @p err set.
 * @locality any thread; the decoder is then used by one thread at a time
 */
ks_avro_decoder_t *ks_avro_decoder_new(ks_registry_t *registry, ks_errbuf *err);

/**
 * @brief Create a decoder that takes its schemas from the AWS Glue Schema Registry client
 *        @p glue (borrowed, as the registry of ks_avro_decoder_new).
 * @returns decoder (caller destroys) or NULL with @p err set.
 * @locality any thread; the decoder is then used by one thread at a time
 */
ks_avro_decoder_t *ks_avro_decoder_new_glue(ks_glue_t *glue, ks_errbuf *err);

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

/**
 * @brief Decode the Avro @p body (@p n bytes, unframed and inflated) written with AWS Glue schema
 *        version @p version_id, as ks_avro_decode (a decoder of ks_avro_decoder_new_glue).
 * @returns as ks_avro_decode; also KS_ERR_BADREC with reason wrong_format when the version's
 *          DataFormat is not AVRO, and unknown_schema when Glue does not know the id.
 * @locality the thread using @p a
 */
int ks_avro_decode_glue(ks_avro_decoder_t *a, const uint8_t version_id[16], const void *body, size_t n, json_t **out,
			json_t **connect_schema, ks_errbuf *err);

#endif
