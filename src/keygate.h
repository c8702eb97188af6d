/**
 * @file keygate.h
 * @brief The per-key gate of the Kinesis writer (ordering=key): for each partition key it holds,
 *        the one record that may be queued or in flight (the key's active record) and a FIFO of
 *        the later records of that key. A later record becomes active only once the earlier one
 *        was released (acknowledged or failed), so neither a partial failure nor a retry can
 *        reorder a key. With KPL aggregation the waiting records may instead join the active
 *        one's aggregate (ks_keygate_gather), in their order.
 *
 * The gate never sends, retries or frees a record that is active: those belong to the writer.
 * It owns only the records waiting behind an active one.
 */
#ifndef KS_KEYGATE_H
#define KS_KEYGATE_H

#include <stddef.h>

#include "transform.h"

/** A FIFO of records linked through ks_record.next, with its count and bytes (keys plus data). */
typedef struct ks_rqueue {
	ks_record *head, *tail;
	size_t n;
	size_t bytes;
} ks_rqueue;

/** @brief Append @p r (its next link is overwritten). */
void ks_rqueue_push(ks_rqueue *q, ks_record *r);
/** @brief Take the first record, or NULL when empty. */
ks_record *ks_rqueue_pop(ks_rqueue *q);

typedef struct ks_keygate ks_keygate_t;

/**
 * @brief An empty gate. @returns the gate (caller destroys) or NULL when out of memory.
 * @locality the writer's thread (the gate is not locked)
 */
ks_keygate_t *ks_keygate_new(void);
/** @brief Free the gate and the records waiting in it (not the active ones); NULL is fine. */
void ks_keygate_destroy(ks_keygate_t *g);

/**
 * @brief Hand @p rec to the gate.
 * @returns 1 when @p rec is now its key's active record (the caller may send it), 0 when it
 *          waits behind an earlier record of its key (the gate owns it until
 *          ks_keygate_release hands it back), KS_ERR_NOMEM (the caller keeps @p rec).
 */
int ks_keygate_admit(ks_keygate_t *g, ks_record *rec);

/**
 * @brief @p rec, the active record of its key, is done (the caller frees it after this call).
 * @returns the key's next record, now active and handed back to the caller to send, or NULL
 *          (the key is free again). NULL too when @p rec is not an active record.
 */
ks_record *ks_keygate_release(ks_keygate_t *g, const ks_record *rec);

/**
 * @brief KPL aggregation: move the records waiting behind @p head (the active record of its key)
 *        into @p head's aggregate (its `agg` chain, `agg_n`, `agg_cost`) in their order, while the
 *        aggregate stays a valid Kinesis record (1 MiB with its key) and within @p room bytes.
 * @returns how many records joined (0: @p head is not active, or nothing waits or fits).
 */
size_t ks_keygate_gather(ks_keygate_t *g, ks_record *head, size_t room);

/**
 * @brief ks_keygate_admit for each record of @p in, in their order: those that become active are
 *        appended to @p ready, the others wait in the gate. The table slot of each key is
 *        prefetched a few records ahead, so that the lookups' cache misses overlap.
 * @returns 0 (@p in is empty), or KS_ERR_NOMEM: the record that could not be admitted and those
 *          after it stay in @p in.
 */
int ks_keygate_admit_queue(ks_keygate_t *g, ks_rqueue *in, ks_rqueue *ready);

/**
 * @brief A hint that @p rec's key is looked up soon (ks_keygate_admit or ks_keygate_release):
 *        starts loading the table slot where that lookup begins, so that several lookups'
 *        cache misses overlap instead of stalling one after the other. Changes nothing.
 */
void ks_keygate_prefetch(const ks_keygate_t *g, const ks_record *rec);

/**
 * @brief The active record of @p rec's key (@p rec itself when it is active), or NULL when
 *        the key has none.
 */
ks_record *ks_keygate_active(const ks_keygate_t *g, const ks_record *rec);

/**
 * @brief Take the first record waiting behind @p active (the active record of its key): it is
 *        sent together with @p active (in its aggregate, after it) and is no longer the gate's.
 *        @p active stays the key's active record; releasing the taken one later does nothing.
 * @returns that record, or NULL when none waits (or @p active is not active).
 */
ks_record *ks_keygate_take_waiting(ks_keygate_t *g, const ks_record *active);

/** @brief The first record waiting behind @p active (still the gate's), or NULL. */
const ks_record *ks_keygate_peek_waiting(const ks_keygate_t *g, const ks_record *active);

/**
 * @brief Take every waiting record for which @p match says 1 out of the gate, appended to @p out
 *        (each key's in their order). Active records stay; a key whose waiters all went has none.
 * @returns how many were taken.
 */
size_t ks_keygate_take_matching(ks_keygate_t *g, ks_record_pred match, void *ud, ks_rqueue *out);

/**
 * @brief @p to, a record of @p from's key taken from behind it earlier (ks_keygate_take_waiting,
 *        ks_keygate_gather), becomes the key's active record in place of @p from, which is
 *        dropped unsent: the records still waiting stay behind @p to.
 * @returns 0, or -1 when @p from is not active (nothing changed).
 */
int ks_keygate_pass_active(ks_keygate_t *g, const ks_record *from, ks_record *to);

/** @brief Keys with an active record. */
size_t ks_keygate_keys(const ks_keygate_t *g);
/** @brief Records waiting behind an active one. */
size_t ks_keygate_waiting(const ks_keygate_t *g);

#endif
