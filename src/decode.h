/**
 * @file decode.h
 * @brief Turn one Kafka message into a change (DESIGN.md, data model) or a precise error:
 *        Debezium JSON (with or without schema), Debezium Avro (Confluent wire format and a
 *        Schema Registry, or the AWS Glue Schema Registry's), plain JSON, raw bytes. JSON may
 *        come in Confluent's or Glue's framing, taken off before it is decoded.
 */
#ifndef KS_DECODE_H
#define KS_DECODE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "conf.h"
#include "metrics.h"

typedef enum ks_op {
	KS_OP_NONE = 0,
	KS_OP_CREATE,    /**< Debezium `c` */
	KS_OP_READ,      /**< Debezium `r` (snapshot): an insert */
	KS_OP_UPDATE,    /**< `u`: before and after */
	KS_OP_DELETE,    /**< `d`: before */
	KS_OP_TRUNCATE,  /**< `t`: not a row change */
	KS_OP_MESSAGE,   /**< `m`: not a row change */
	KS_OP_TOMBSTONE, /**< null value: Kafka compaction marker, skipped */
} ks_op;

/** @brief Debezium letter of an op ('c','r','u','d','t','m'; '-' for none/tombstone). */
char ks_op_char(ks_op op);

/** @brief "object", "array", "string", "integer", "number", "boolean" or "null" ("nothing" for NULL). */
const char *ks_json_type_name(const json_t *j);

struct rd_kafka_headers_s;

/** How a Kafka timestamp was set (librdkafka's rd_kafka_timestamp_type_t values). */
typedef enum ks_ts_type { KS_TS_NONE = 0, KS_TS_CREATE = 1, KS_TS_LOG_APPEND = 2 } ks_ts_type;

/** A Kafka message as the decoder sees it (all pointers borrowed). */
typedef struct ks_msg {
	const char *topic;
	int32_t partition;
	int64_t offset;
	const void *key;     /**< NULL: no key */
	size_t key_len;
	const void *value;   /**< NULL: tombstone */
	size_t value_len;
	int64_t timestamp;   /**< ms since the epoch (meaningful unless timestamp_type is KS_TS_NONE) */
	ks_ts_type timestamp_type;
	const struct rd_kafka_headers_s *headers; /**< NULL: none */
} ks_msg;

/**
 * A decoded change. JSON members are owned references (released by ks_change_clean), NULL
 * when absent; `raw`/`kafka_key` borrow the message's bytes and live as long as it does.
 */
typedef struct ks_change {
	ks_op op;
	json_t *before;
	json_t *after;       /**< for `json` input: the whole value (any JSON value) */
	json_t *source;
	json_t *schema;      /**< value schema in Kafka Connect JSON form, when the input had one */
	json_t *key;         /**< the key message's fields (an object), when the key is structured */
	int64_t ts_ms;
	int has_ts_ms;
	const void *raw;     /**< `raw` input: the value bytes untouched */
	size_t raw_len;
	const void *kafka_key;
	size_t kafka_key_len;
	const char *topic;   /**< borrowed coordinates */
	int32_t partition;
	int64_t offset;
	int64_t kafka_ts;    /**< the message's timestamp and its type */
	ks_ts_type kafka_ts_type;
	const struct rd_kafka_headers_s *headers; /**< borrowed; NULL: none */
} ks_change;

/** @brief Release what @p c owns and zero it. */
void ks_change_clean(ks_change *c);

typedef struct ks_decoder ks_decoder_t;
struct ks_registry;

/**
 * @brief Create a decoder for @p conf's `input.format` (the registry client too, for Avro).
 * @returns decoder (caller destroys) or NULL with @p err set.
 * @locality pipeline thread
 */
ks_decoder_t *ks_decoder_new(const ks_conf *conf, ks_metrics *metrics, ks_errbuf *err);

/**
 * @brief As ks_decoder_new, with the Schema Registry client @p registry (borrowed: it must
 *        outlive the decoder) shared with other decoders, so each schema is fetched once per
 *        process; NULL: the decoder makes its own. Ignored for formats other than debezium-avro.
 * @returns decoder (caller destroys) or NULL with @p err set.
 * @locality any thread; the decoder is then used by one thread at a time
 */
ks_decoder_t *ks_decoder_new_shared(const ks_conf *conf, ks_metrics *metrics, struct ks_registry *registry,
				    ks_errbuf *err);

struct ks_glue;

/** Where a decoder's schemas come from, and its bounds: shared by the decoders of a route. */
typedef struct ks_decoder_sources {
	struct ks_registry *registry; /**< debezium-avro with a Confluent registry (borrowed); NULL: the decoder's own */
	struct ks_glue *glue;         /**< schema.registry.type=glue (borrowed); NULL: the decoder's own */
	size_t max_inflate;           /**< the most a compressed Glue payload may inflate to (the most the
					   consumer may receive in a message); 0: from conf's kafka.* settings */
} ks_decoder_sources;

/**
 * @brief As ks_decoder_new, with the schema clients of @p src (borrowed: they must outlive the
 *        decoder) shared with other decoders, so each schema is fetched once per process; @p src
 *        NULL or its members NULL: the decoder makes its own.
 * @returns decoder (caller destroys) or NULL with @p err set.
 * @locality any thread; the decoder is then used by one thread at a time
 */
ks_decoder_t *ks_decoder_new_sources(const ks_conf *conf, ks_metrics *metrics, const ks_decoder_sources *src,
				     ks_errbuf *err);

/** @brief The Schema Registry client of a debezium-avro decoder (borrowed; NULL for other formats). */
struct ks_registry *ks_decoder_registry(ks_decoder_t *d);

/** @brief Free; NULL is fine. */
void ks_decoder_destroy(ks_decoder_t *d);

/**
 * @brief Decode @p msg into @p out (zeroed first; clean it with ks_change_clean).
 * @returns 0; KS_ERR_BADREC when the message is bad (@p err says topic [partition] @offset, what
 *          and where, with stage=decode and a short reason); KS_ERR_FATAL when decoding cannot go
 *          on for any message (e.g. the Schema Registry stays unreachable after its retries).
 */
int ks_decoder_decode(ks_decoder_t *d, const ks_msg *msg, ks_change *out, ks_errbuf *err);

/**
 * @brief How many messages had their Kafka Connect `schema` part recognised by its bytes instead
 *        of parsed (debezium-json: values and keys), since the decoder was made.
 * @locality the decoder's thread
 */
unsigned long ks_decoder_schemas_reused(const ks_decoder_t *d);

#endif
