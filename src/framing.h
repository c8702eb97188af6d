/**
 * @file framing.h
 * @brief The schema-registry framings a Kafka value or key may carry before its payload:
 *        Confluent's (byte 0 = 0, 4-byte big-endian schema id) and the AWS Glue Schema
 *        Registry's (byte 0 = 3, byte 1 = compression: 0 none or 5 zlib, bytes 2..17 = the
 *        schema version id, a UUID, big-endian), and the inflation of a zlib-compressed Glue
 *        payload with a bound. No state, no network: the registries are elsewhere.
 */
#ifndef KS_FRAMING_H
#define KS_FRAMING_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

#define KS_CONFLUENT_HEADER_LEN 5
#define KS_GLUE_HEADER_LEN 18
#define KS_GLUE_HEADER_VERSION 3
#define KS_GLUE_COMPRESSION_NONE 0
#define KS_GLUE_COMPRESSION_ZLIB 5

typedef enum ks_framing { KS_FRAMING_NONE = 0, KS_FRAMING_CONFLUENT, KS_FRAMING_GLUE } ks_framing;

/** A framed message taken apart; the payload is borrowed from the message. */
typedef struct ks_frame {
	ks_framing framing;
	int32_t schema_id;          /**< Confluent: the schema id */
	uint8_t version_id[16];     /**< Glue: the schema version id, as on the wire */
	int compressed;             /**< Glue: the payload is zlib-compressed */
	const uint8_t *payload;
	size_t payload_len;
} ks_frame;

/**
 * @brief Take a Glue-framed message apart.
 * @returns 0; KS_ERR_BADREC with @p err's text saying what and its reason: too_short (under 18
 *          bytes), bad_header (byte 0 is not 3), bad_compression (byte 1 is neither 0 nor 5).
 * @locality any thread
 */
int ks_frame_glue(const void *p, size_t n, ks_frame *out, ks_errbuf *err);

/**
 * @brief Take a Confluent-framed message apart.
 * @returns 0; KS_ERR_BADREC (reasons too_short, bad_magic).
 * @locality any thread
 */
int ks_frame_confluent(const void *p, size_t n, ks_frame *out, ks_errbuf *err);

/**
 * @brief A JSON message, framed or not: byte 0 = 0 is Confluent's framing, 3 is Glue's (neither
 *        can start JSON text), anything else is unframed (@p out->framing KS_FRAMING_NONE, the
 *        payload the whole message).
 * @returns 0; KS_ERR_BADREC when the first byte names a framing the message does not hold.
 * @locality any thread
 */
int ks_frame_json(const void *p, size_t n, ks_frame *out, ks_errbuf *err);

/**
 * @brief The payload of @p f: as it is, or inflated into @p buf (reset first) when compressed,
 *        never past @p max bytes.
 * @returns 0 with *@p out / *@p out_len (borrowed from the message or from @p buf);
 *          KS_ERR_BADREC with reason bad_compression (not a whole zlib stream, or bytes after
 *          it) or too_large (it inflates past @p max); KS_ERR_NOMEM.
 * @locality any thread
 */
int ks_frame_payload(const ks_frame *f, size_t max, ks_buf *buf, const uint8_t **out, size_t *out_len,
		     ks_errbuf *err);

/** @brief A version id as text: 8-4-4-4-12 lowercase hex digits and a NUL (37 bytes). */
void ks_uuid_str(const uint8_t id[16], char out[37]);

/** @brief Parse the 8-4-4-4-12 hex text @p s into @p id. @returns 0, or -1 when it is not one. */
int ks_uuid_parse(const char *s, uint8_t id[16]);

#endif
