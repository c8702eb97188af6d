/**
 * @file offsets.h
 * @brief Per-partition offset tracking: which Kafka offsets may be committed. A message's offset
 *        is done once every record made from it was acknowledged by Kinesis, or it was skipped or
 *        dead-lettered on purpose; the committable offset is the first offset not yet done (Kafka
 *        commits "the next offset to read"). Acks may arrive in any order.
 */
#ifndef KS_OFFSETS_H
#define KS_OFFSETS_H

#include <stdint.h>

#include "common.h"

typedef struct ks_ptrack ks_ptrack_t;

/**
 * @brief Track a newly assigned partition (caller: ks_ptrack_release when revoked).
 * @returns tracker or NULL on allocation failure. @locality pipeline thread
 */
ks_ptrack_t *ks_ptrack_new(const char *topic, int32_t partition);

/**
 * @brief The assignment is gone (revoke, shutdown): nothing of it is committed any more. Acks
 *        of its records still in flight remain safe; the owner destroys the tracker once
 *        ks_ptrack_pending_acks is 0 (or at exit).
 */
void ks_ptrack_release(ks_ptrack_t *p);
/** @brief Free the tracker; NULL is fine. */
void ks_ptrack_destroy(ks_ptrack_t *p);
/** @brief Acks still expected (records in flight, dead-letters unconfirmed). */
int64_t ks_ptrack_pending_acks(const ks_ptrack_t *p);

/**
 * @brief Start tracking message @p offset, which waits for @p pending acks (0: done already).
 *        Offsets must grow; gaps are fine.
 * @returns 0, KS_ERR_NOMEM, or KS_ERR_CONFIG when @p offset does not grow (a bug upstream).
 */
int ks_ptrack_add(ks_ptrack_t *p, int64_t offset, int pending);

/** @brief One ack (record acknowledged, skipped, or dead-lettered) for message @p offset. */
void ks_ptrack_ack(ks_ptrack_t *p, int64_t offset);

/**
 * @brief One of message @p offset's records will never be acked (dropped at shutdown). The
 *        offset stays uncommittable.
 */
void ks_ptrack_drop(ks_ptrack_t *p, int64_t offset);

/** @brief Offset to commit now (first offset not done), or -1 when nothing was done yet. */
int64_t ks_ptrack_committable(const ks_ptrack_t *p);

/** Accessors. */
const char *ks_ptrack_topic(const ks_ptrack_t *p);
int32_t ks_ptrack_partition(const ks_ptrack_t *p);
int ks_ptrack_released(const ks_ptrack_t *p);
/** @brief Highest offset acked so far (-1: none). */
int64_t ks_ptrack_last_acked(const ks_ptrack_t *p);

/** Commit bookkeeping (what was last sent to Kafka) and flags the pipeline keeps per partition. */
typedef struct ks_ptrack_state {
	int64_t committed;   /**< last offset Kafka confirmed committed, -1 none */
	int64_t commit_sent; /**< last offset sent in a commit (confirmed or not), -1 none */
	int eof;             /**< the consumer reached the partition's end */
	int paused;
} ks_ptrack_state;
ks_ptrack_state *ks_ptrack_state_of(ks_ptrack_t *p);

#endif
