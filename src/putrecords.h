/**
 * @file putrecords.h
 * @brief The Kinesis PutRecords wire format: the request body built from a list of entries
 *        (partition key, optional explicit hash key, data) and the answer read back as one
 *        result per entry (accepted with its shard and sequence number, or failed with its
 *        error code, throttling told apart). No state and no network: the writer decides what
 *        to send and what to do with each result.
 */
#ifndef KS_PUTRECORDS_H
#define KS_PUTRECORDS_H

#include <stddef.h>

#include "common.h"

/** Service limits of one PutRecords request, and of a partition key (in Unicode characters). */
#define KS_PUT_MAX_ENTRIES 500
#define KS_PUT_MAX_BYTES (5 * 1024 * 1024)
/** A request's limit once the stream's records may be over 1 MiB (MaxRecordSizeInKiB > 1024). */
#define KS_PUT_MAX_LARGE_BYTES (10 * 1024 * 1024)
#define KS_PUT_MAX_KEY_CHARS 256

/** One entry of a request (all borrowed). */
typedef struct ks_put_entry {
	const char *pkey;
	size_t pkey_len;
	const char *explicit_hash_key;  /**< decimal 128-bit hash key, or NULL to hash pkey */
	const void *data;               /**< the record, or a KPL aggregate */
	size_t data_len;
} ks_put_entry;

/** @brief The bytes an entry counts against the request limit (partition key plus data). */
size_t ks_putrecords_entry_bytes(const ks_put_entry *e);

/**
 * @brief Check @p e against the per-record limits: a partition key of 1 to 256 Unicode
 *        characters (as Kinesis counts them: ks_key_chars, not bytes), partition key plus
 *        data at most @p max_record_bytes.
 * @returns 0 or KS_ERR_BADREC with reason "bad_key" / "too_large", a clear text and
 *          stage=produce in @p err.
 */
int ks_putrecords_check_entry(const ks_put_entry *e, size_t max_record_bytes, ks_errbuf *err);

size_t ks_putrecords_entry_bytes(const ks_put_entry *e);

/**
 * @brief The request member that names @p stream: "StreamARN" for a stream ARN (arn:...),
 *        else "StreamName".
 */
const char *ks_putrecords_stream_member(const char *stream);

/**
 * @brief Start the body of a PutRecords request to @p stream (a name or a stream ARN, named
 *        by ks_putrecords_stream_member) in @p body (reset first).
 *        Then ks_putrecords_add for each entry, ks_putrecords_end once.
 * @returns 0, KS_ERR_TOOBIG (over @p body's cap), KS_ERR_NOMEM.
 */
int ks_putrecords_begin(ks_buf *body, const char *stream);
/** @brief Append entry @p e, the @p index-th (from 0) of the request. @returns as begin. */
int ks_putrecords_add(ks_buf *body, const ks_put_entry *e, size_t index);
/** @brief Close the body. @returns as begin. */
int ks_putrecords_end(ks_buf *body);
/** @brief begin, add each of the @p n entries, end. @returns as begin. */
int ks_putrecords_build(ks_buf *body, const char *stream, const ks_put_entry *entries, size_t n);

/** What became of one entry. */
typedef enum ks_put_outcome {
	KS_PUT_ACCEPTED,
	KS_PUT_FAILED,     /**< rejected (InternalFailure, ...): may be sent again */
	KS_PUT_THROTTLED,  /**< rejected for throughput (ProvisionedThroughputExceeded, KMS, limits) */
} ks_put_outcome;

/** The result of one entry; strings are borrowed from the answer (valid until it is cleaned). */
typedef struct ks_put_result {
	ks_put_outcome outcome;
	const char *shard_id;       /**< accepted: "shardId-000000000001", "" when not read */
	const char *seq;            /**< accepted: the sequence number, "" when not read */
	const char *error_code;     /**< failed/throttled: "InternalFailure", ... */
	const char *error_message;  /**< failed/throttled: "" when none */
} ks_put_result;

/** A parsed PutRecords answer. */
typedef struct ks_put_answer {
	size_t n;              /**< entries */
	int fast;              /**< all accepted, known without parsing: no sequence numbers */
	char **shard_ids;      /**< fast, shard ids asked for: the n entries' ShardIds */
	struct json_t *root;   /**< otherwise the parsed answer */
	struct json_t *entries;
} ks_put_answer;

/**
 * @brief Read the answer @p body (@p len bytes) of a request of @p n entries.
 * @returns 0 (then ks_putrecords_result for each entry; clean @p a); KS_ERR_BADREC when the
 *          answer has no per-entry list of @p n results (nothing is known accepted).
 */
int ks_putrecords_parse(ks_put_answer *a, const char *body, size_t len, size_t n);
/**
 * @brief ks_putrecords_parse that also reads every accepted entry's ShardId when @p shard_ids:
 *        an answer that accepted all has them picked out in order without building a tree.
 */
int ks_putrecords_parse_as(ks_put_answer *a, const char *body, size_t len, size_t n, int shard_ids);
/** @brief The result of entry @p i (0 .. n-1) of a parsed answer. */
void ks_putrecords_result(const ks_put_answer *a, size_t i, ks_put_result *out);
void ks_putrecords_answer_clean(ks_put_answer *a);

/**
 * @brief Whether the PutRecords answer @p body accepted all of its @p n entries, told without
 *        building its JSON tree (which costs more than the rest of a record's way through
 *        kinesink): exactly one `"FailedRecordCount":0` (then `,` or `}`), no `"ErrorCode":"`,
 *        and n `"SequenceNumber":`. 0 means "parse it in full" (a failure, or another layout).
 */
int ks_putrecords_all_accepted(const char *body, size_t len, size_t n);

/** @brief Whether AWS error code @p code means throttling (of an entry or a whole request). */
int ks_putrecords_is_throttle(const char *code);

#endif
