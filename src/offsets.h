/**
 * @file offsets.h
 * @brief Per-partition offset tracking: which Kafka offsets may be committed. A message's offset
 *        is done once every record made from it was acknowledged by Kinesis, or it was skipped or
 *        dead-lettered on purpose; the committable offset is the first offset not yet done (Kafka
 *        commits "the next offset to read"). Acks may arrive in any order. The registry of the
 *        assigned partitions commits them, and gives /metrics their stats.
 */
#ifndef KS_OFFSETS_H
#define KS_OFFSETS_H

#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "common.h"
#include "metrics.h"
#include "progress.h"

typedef struct ks_ptrack ks_ptrack_t;

/**
 * @brief Track a newly assigned partition. @returns tracker or NULL on allocation failure.
 * @locality pipeline thread
 */
ks_ptrack_t *ks_ptrack_new(const char *topic, int32_t partition);

/** @brief Free the tracker; NULL is fine. */
void ks_ptrack_destroy(ks_ptrack_t *p);
/** @brief Acks still expected (records in flight, dead-letters unconfirmed). */
int64_t ks_ptrack_pending_acks(const ks_ptrack_t *p);

/**
 * @brief Start tracking message @p offset, which waits for @p pending acks (0: done already).
 *        Offsets must grow; gaps are fine.
 * @returns 0, KS_ERR_NOMEM, or KS_ERR_ORDER when @p offset does not grow (a bug upstream).
 */
int ks_ptrack_add(ks_ptrack_t *p, int64_t offset, int pending);

/** @brief One ack (record acknowledged, skipped, or dead-lettered) for message @p offset. */
void ks_ptrack_ack(ks_ptrack_t *p, int64_t offset);

/**
 * @brief One of message @p offset's records will never be acked (dropped at shutdown). The
 *        offset stays uncommittable.
 */
void ks_ptrack_drop(ks_ptrack_t *p, int64_t offset);

/** @brief Offset to commit now (first offset not done), or -1 when nothing was done yet.
 *  @locality any thread */
int64_t ks_ptrack_committable(const ks_ptrack_t *p);

/** Accessors. topic and partition never change; the others may be read from any thread. */
const char *ks_ptrack_topic(const ks_ptrack_t *p);
int32_t ks_ptrack_partition(const ks_ptrack_t *p);
/** @brief Highest offset acked so far (-1: none). @locality any thread */
int64_t ks_ptrack_last_acked(const ks_ptrack_t *p);
/** @brief The consumer reached the partition's end (1) or gave a message since (0). */
void ks_ptrack_set_eof(ks_ptrack_t *p, int eof);
/**
 * @brief The consumer gave a message whose Kafka timestamp is @p ts_ms (<= 0: none): the
 *        partition is not at its end, and the entry the next ks_ptrack_add makes carries
 *        @p ts_ms, so that how far behind the partition is can be told. @locality pipeline thread
 */
void ks_ptrack_taken(ks_ptrack_t *p, int64_t ts_ms);
/**
 * @brief How far behind the partition is at wall-clock @p now_ms (ms since the epoch), in ms:
 *        the age of the oldest message taken and not yet done (acknowledged, skipped or
 *        dead-lettered); with every message taken done, 0 when nothing is left to read
 *        (@p ahead, the messages between the consumer's position and the partition's end, is
 *        0, or the consumer is at the end) and else the age of the last message taken. Ages
 *        are of Kafka timestamps, never below 0. @p ahead is -1 when not known (no fetch
 *        answered yet): 0 if a message was taken and done, else not known. @returns -1 when
 *        not known (no message with a timestamp taken yet). @locality any thread
 */
int64_t ks_ptrack_behind_ms(const ks_ptrack_t *p, int64_t ahead, int64_t now_ms);
/**
 * @brief A backfill's work on the partition (--exit-at-eof): from offset @p start (where the
 *        consumer begins) to @p end (the end offset when assigned). @locality pipeline thread
 */
void ks_ptrack_set_range(ks_ptrack_t *p, int64_t start, int64_t end);

/*
 * The registry of assigned partitions, with the commits of what they acknowledged. Called from
 * the pipeline thread, except ks_offsets_partition_stats (the metrics thread): the registry's
 * lock guards the list of trackers against assignment changes, and what the metrics thread
 * reads of a tracker is published with atomics, so a tracker's ring grows without the lock.
 */
typedef struct ks_offsets ks_offsets_t;

/** @brief An empty registry. @p m (may be NULL) gets the assigned_partitions gauge. NULL: no memory. */
ks_offsets_t *ks_offsets_new(ks_metrics *m);
/** @brief Free the registry and every tracker; NULL is fine. */
void ks_offsets_destroy(ks_offsets_t *o);
/**
 * @brief The consumer that commits (and gives watermarks to the stats); NULL detaches it
 *        before it is destroyed. @locality pipeline thread, before or after the metrics thread reads
 */
void ks_offsets_set_consumer(ks_offsets_t *o, rd_kafka_t *rk);

/** @brief The tracker of an assigned partition, or NULL (borrowed). */
ks_ptrack_t *ks_offsets_find(ks_offsets_t *o, const char *topic, int32_t partition);
/** @brief Partitions assigned now. */
int ks_offsets_count(const ks_offsets_t *o);
/** @brief A new list of the assigned partitions (caller destroys); NULL: no memory. */
rd_kafka_topic_partition_list_t *ks_offsets_list(const ks_offsets_t *o);
/** @brief Mark every assigned partition paused (1) or fetching (0), for the stats. */
void ks_offsets_set_paused(ks_offsets_t *o, int paused);
/** @brief 1 when at least one partition is assigned and every one is at its end. */
int ks_offsets_all_at_eof(const ks_offsets_t *o);
/**
 * @brief 1 when Kafka confirmed the commit of every assigned partition's committable offset.
 *        A commit refused while the group rebalances (a stale generation) leaves it 0 until it
 *        is sent again and confirmed.
 */
int ks_offsets_all_committed(const ks_offsets_t *o);
/**
 * @brief 1 when one of @p parts (assigned and measured by ks_offsets_measure) has records left
 *        to read, or could not be measured.
 */
int ks_offsets_work_left(ks_offsets_t *o, const rd_kafka_topic_partition_list_t *parts);
/** @brief 1 when a partition of @p parts still waits for acks. */
int ks_offsets_pending(ks_offsets_t *o, const rd_kafka_topic_partition_list_t *parts);

/**
 * @brief Track the partitions of @p parts not tracked yet; a new assignment also ends the
 *        hold a rebalance put on commits. @returns 0 or KS_ERR_NOMEM.
 */
int ks_offsets_assign(ks_offsets_t *o, const rd_kafka_topic_partition_list_t *parts);
/**
 * @brief Stop tracking @p parts: their trackers are kept (retired) until the acks of their
 *        records still in flight arrived, then freed by ks_offsets_sweep.
 */
void ks_offsets_revoke(ks_offsets_t *o, const rd_kafka_topic_partition_list_t *parts);
/** @brief Free the retired trackers no record points at any more. */
void ks_offsets_sweep(ks_offsets_t *o);

/**
 * @brief Commit every partition whose committable offset moved (all of them with @p force);
 *        @p sync waits for Kafka's answer. After a commit that met a rebalance, periodic
 *        commits wait for the next assignment (30 s at most); sync ones are sent anyway.
 * @returns 0, or 1 when held back (nothing sent).
 */
int ks_offsets_commit(ks_offsets_t *o, int sync, int force);
/**
 * @brief The outcome of a commit (ks_committed_fn, opaque is the registry): confirmed offsets
 *        become committed, a failed one is sent again by the next commit.
 */
void ks_offsets_on_committed(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *offsets, void *opaque);

/**
 * @brief Read from Kafka where the backfill of each partition of @p parts starts (its committed
 *        offset, else where auto.offset.reset sends the consumer) and ends (its high watermark
 *        now), for ks_offsets_backfill. Blocks for the answers, @p timeout_ms at most per request;
 *        a partition that cannot be read is left unmeasured (with a warning).
 * @locality pipeline thread (the rebalance callback, right after the assignment)
 */
void ks_offsets_measure(ks_offsets_t *o, const rd_kafka_topic_partition_list_t *parts, int timeout_ms);
/**
 * @brief The backfill's figures over the partitions assigned now: per partition, done is its
 *        committable (or committed) offset minus its start, up to its end; it is finished when
 *        that reaches the end, or when the consumer is at its end with nothing pending (the last
 *        offsets were no records, e.g. transaction markers).
 * @locality pipeline thread
 */
void ks_offsets_backfill(const ks_offsets_t *o, ks_backfill *out);

/**
 * @brief How far behind the most behind assigned partition is at wall-clock @p now_ms
 *        (ks_ptrack_behind_ms, with the consumer's position and the high watermarks librdkafka
 *        last saw), in ms; -1 when no partition is assigned or none is known.
 * @locality pipeline thread
 */
int64_t ks_offsets_behind_ms(const ks_offsets_t *o, int64_t now_ms);

/**
 * @brief Fill @p out with up to @p max partitions' lag, seconds behind and offsets (ks_partition_stats_fn,
 *        opaque is the registry). @returns how many. @locality the metrics thread
 */
int ks_offsets_partition_stats(void *opaque, ks_partition_stat *out, int max);

#endif
