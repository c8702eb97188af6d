/**
 * @file shardmap.h
 * @brief The stream's shard map: the open shards' hash-key ranges from ListShards, and the
 *        shard a record will land in, predicted as Kinesis routes it: MD5 of the partition key
 *        read as an unsigned 128-bit big-endian integer, or the record's explicit hash key.
 *        A map is immutable once finished; a refresh builds a new one and swaps it in.
 */
#ifndef KS_SHARDMAP_H
#define KS_SHARDMAP_H

#include <stddef.h>

#include "common.h"

/** A 128-bit hash key (GCC/Clang extension, as the service's keys are 0..2^128-1). */
typedef unsigned __int128 ks_u128;

#define KS_U128_MAX (~(ks_u128)0)
/** Longest decimal text of a hash key, with its NUL. */
#define KS_U128_STRLEN 40

/** One open shard. */
typedef struct ks_shard {
	char id[64];     /**< "shardId-000000000001" */
	ks_u128 start;   /**< StartingHashKey, inclusive */
	ks_u128 end;     /**< EndingHashKey, inclusive */
} ks_shard;

typedef struct ks_shardmap ks_shardmap_t;

/** @brief MD5 of @p key as Kinesis routes a record. @locality any thread */
ks_u128 ks_hash_key(const char *key, size_t n);

/**
 * @brief Parse decimal text (1 to 39 digits, at most 2^128-1).
 * @returns 0, or KS_ERR_BADREC when @p s is not such a number.
 */
int ks_u128_parse(const char *s, size_t n, ks_u128 *out);
/** @brief Decimal text of @p v into @p out. */
void ks_u128_format(ks_u128 v, char out[KS_U128_STRLEN]);

/** @brief An empty map to fill from ListShards pages. @returns NULL on allocation failure. */
ks_shardmap_t *ks_shardmap_new(void);
/** @brief Free; NULL is fine. */
void ks_shardmap_destroy(ks_shardmap_t *m);

/**
 * @brief Add the open shards of one ListShards answer (closed ones, with an
 *        EndingSequenceNumber, are skipped). @p next (@p next_cap bytes) receives the answer's
 *        NextToken, or "" on the last page.
 * @returns 0; KS_ERR_BADREC with @p err naming the field when the answer is not a ListShards
 *          answer; KS_ERR_TOOBIG when the token does not fit; KS_ERR_NOMEM.
 */
int ks_shardmap_add_page(ks_shardmap_t *m, const char *json, size_t len, char *next, size_t next_cap,
			 ks_errbuf *err);

/**
 * @brief Sort the shards and check that their ranges cover 0..2^128-1 with no gap and no
 *        overlap (what a consistent snapshot of a stream's open shards always does).
 * @returns 0, or KS_ERR_BADREC naming the first gap or overlap (a snapshot taken mid-reshard:
 *          keep the previous map and list again).
 */
int ks_shardmap_finish(ks_shardmap_t *m, ks_errbuf *err);

/** @brief Open shards in the map. */
int ks_shardmap_count(const ks_shardmap_t *m);
/** @brief Shard @p i (0..count-1), in hash-key order. Borrowed. */
const ks_shard *ks_shardmap_shard(const ks_shardmap_t *m, int i);
/** @brief Index of the shard holding @p hash (binary search); -1 on an empty map. */
int ks_shardmap_find(const ks_shardmap_t *m, ks_u128 hash);
/** @brief Index of the shard named @p id, or -1 (a shard the map does not know: it is stale). */
int ks_shardmap_index_of(const ks_shardmap_t *m, const char *id);

#endif
