/**
 * @file consumer.h
 * @brief The Kafka side: a librdkafka high-level consumer in a group, configured so that no
 *        offset is stored or committed behind kinesink's back, its log routed into ours, and its
 *        queue able to wake the pipeline's poll through a pipe; and, as the loop drives it, the
 *        group's rebalances, pausing under backpressure, fetch restarts and fatal errors.
 */
#ifndef KS_CONSUMER_H
#define KS_CONSUMER_H

#include <librdkafka/rdkafka.h>

#include "common.h"
#include "conf.h"
#include "decode.h"
#include "metrics.h"
#include "offsets.h"

/** Rebalance handler: assign or revoke @p parts (librdkafka's rebalance callback, forwarded). */
typedef void (*ks_rebalance_fn)(rd_kafka_t *rk, rd_kafka_resp_err_t err,
				rd_kafka_topic_partition_list_t *parts, void *opaque);

/** Commit result: @p offsets with a per-partition err (librdkafka's offset commit callback). */
typedef void (*ks_committed_fn)(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *offsets, void *opaque);

/**
 * @brief Create the consumer and subscribe to conf->topic. Defaults: group.id=kinesink,
 *        enable.auto.offset.store=false, enable.auto.commit=false (commits are explicit),
 *        partition.assignment.strategy=cooperative-sticky, enable.partition.eof with
 *        --exit-at-eof; every kafka.* key overrides them (except the two offset keys).
 *        @p wake_fd (>= 0) is written to whenever the consumer queue becomes non-empty.
 *        @p committed is told the outcome of every commit (from the consumer's poll).
 * @returns the handle (caller closes and destroys) or NULL with @p err set.
 */
rd_kafka_t *ks_consumer_new(const ks_conf *conf, ks_rebalance_fn rebalance, ks_committed_fn committed,
			    void *opaque, int wake_fd, ks_errbuf *err);

/**
 * @brief The consumer's librdkafka configuration exactly as ks_consumer_new builds it (defaults,
 *        kafka.* settings, the offset keys forced off), without callbacks.
 * @returns a configuration the caller owns, or NULL with @p err set.
 */
rd_kafka_conf_t *ks_consumer_conf_new(const ks_conf *conf, ks_errbuf *err);

/**
 * @brief Run librdkafka's own checks on @p kc (the cross-property rules of rd_kafka_new) without
 *        touching the network: the handle is made with no broker and destroyed at once.
 *        Consumes @p kc.
 * @returns 0, or KS_ERR_CONFIG with librdkafka's reason in @p errstr.
 */
int ks_consumer_try_offline(rd_kafka_type_t type, rd_kafka_conf_t *kc, char *errstr, size_t size);

/**
 * @brief Reject, offline, what ks_consumer_new would reject at start, with the same message.
 * @returns 0 or KS_ERR_CONFIG with @p err set.
 */
int ks_consumer_check(const ks_conf *conf, ks_errbuf *err);

/**
 * @brief A consumer with the same settings as ks_consumer_new's (kafka.* on kinesink's defaults,
 *        MSK IAM when configured) that reads by assignment, never commits and joins no group
 *        (--preview, --check --connect). @p eof enables partition EOF events; @p quiet turns
 *        librdkafka's own log off (the caller reports the outcome itself).
 * @returns the handle (caller: rd_kafka_consumer_close, then ks_consumer_destroy) or NULL with
 *          @p err set.
 */
rd_kafka_t *ks_consumer_new_reader(const ks_conf *conf, int eof, int quiet, ks_errbuf *err);

/**
 * @brief Add the consumer's defaults to @p c's kafka.* list where the configuration left them
 *        unset: group.id=kinesink, bootstrap.servers=localhost:9092. They go in the list (not
 *        only into librdkafka's configuration) because --check prints them and the dead-letter
 *        producer and --preview read them from there. Call once after ks_conf_finalize.
 * @returns 0, or ks_conf_set's error (KS_ERR_NOMEM).
 * @locality main thread, before anything reads @p c
 */
int ks_consumer_conf_defaults(ks_conf *c, ks_conf_errors *errs);

/** @brief Destroy a consumer made by ks_consumer_new (after rd_kafka_consumer_close); NULL is fine. */
void ks_consumer_destroy(rd_kafka_t *rk);

/** @brief The decoder's view of a Kafka message (pointers borrowed from @p m); its headers only
 *  when @p headers (librdkafka parses them on first asking). @locality any thread */
void ks_consumer_msg(const rd_kafka_message_t *m, int headers, ks_msg *out);

/*
 * The consumer as the loop drives it: the group's rebalances (the assignment goes to the
 * offsets registry), the pause of every partition under backpressure or at shutdown, and the
 * restart of stalled fetches with librdkafka before 2.1.
 */
typedef struct ks_consumer ks_consumer_t;

/** What the consumer asks of the loop, on the loop's thread (inside ks_consumer_poll). */
typedef struct ks_consumer_cbs {
	/** A rebalance begins: handle every message taken so far, as if one at a time. */
	void (*flush)(void *opaque);
	/** @p parts are revoked: let their records in flight finish, until @p deadline_ms at most. */
	void (*drain)(void *opaque, const rd_kafka_topic_partition_list_t *parts, int64_t deadline_ms);
	/** The worker cannot go on: @p msg says why. */
	void (*fatal)(void *opaque, const char *msg);
	void *opaque;
} ks_consumer_cbs;

/**
 * @brief Create the consumer (ks_consumer_new) for the partitions tracked by @p offs, and
 *        subscribe. @returns the handle (ks_consumer_close frees it) or NULL with @p err set.
 * @locality the pipeline thread, as every ks_consumer_* below
 */
ks_consumer_t *ks_consumer_start(const ks_conf *conf, ks_offsets_t *offs, ks_metrics *m,
				 const ks_consumer_cbs *cbs, int wake_fd, ks_errbuf *err);

/** @brief The next message or consumer event, without waiting; NULL when none is queued. */
rd_kafka_message_t *ks_consumer_poll(ks_consumer_t *c, int64_t now);

/**
 * @brief Past max.inflight.records / max.inflight.bytes (@p recs / @p bytes held now) the loop
 *        takes no message; lasting over a second, every partition is paused; at 75 % they are
 *        resumed. @returns 1 when no message may be taken now.
 */
int ks_consumer_backpressure(ks_consumer_t *c, size_t recs, size_t bytes, int64_t now);
/** @brief 1 while partitions are paused by backpressure. */
int ks_consumer_bp_paused(const ks_consumer_t *c);

/** @brief Note how full the prefetch queue is (call before taking messages). */
void ks_consumer_fetch_watch(ks_consumer_t *c);
/**
 * @brief The queue ran empty: restart the fetch of partitions with data left if it stalled.
 * @returns 0, or the ms to wait before looking again (too early to tell).
 */
int ks_consumer_nudge(ks_consumer_t *c, int64_t now);

/** @brief A consumer event instead of a message (msg->err): a partition's end is noted, an error
 *  librdkafka reports is logged. */
void ks_consumer_event(ks_consumer_t *c, const rd_kafka_message_t *msg);

/**
 * @brief A backfill done here (--exit-at-eof): leave the group (unsubscribe), serving the
 *        revocation from the polls. Partitions the group still gives this member meanwhile (its
 *        rebalance was under way, or another member left) are noted when they have records left.
 */
void ks_consumer_leave(ks_consumer_t *c, int64_t now);

/** @brief 1 between ks_consumer_leave and the member leaving or joining again. */
int ks_consumer_leaving(const ks_consumer_t *c);

/**
 * @brief Whether the member left: nothing assigned any more (or KS_CLOSE_BOUND_MS passed since
 *        ks_consumer_leave). When partitions with records left came while leaving, it joins the
 *        group again instead (0), so that they are finished: the last members of a backfilling
 *        fleet never all leave while partitions in between owners are unfinished.
 */
int ks_consumer_left(ks_consumer_t *c, int64_t now);

/** @brief Stop taking data: every partition paused, now and at later assignments. */
void ks_consumer_stop(ks_consumer_t *c);

/**
 * @brief A fatal consumer error (librdkafka's RD_KAFKA_RESP_ERR__FATAL, e.g. fenced by another
 *        member with the same group.instance.id), or a SASL authentication (MSK IAM or another
 *        mechanism) the brokers refused (ks_consumer_auth_failed). @returns 1 with @p err set to the real reason.
 */
int ks_consumer_fatal(ks_consumer_t *c, ks_errbuf *err);

/** The most ks_consumer_close takes to leave the group once it committed. */
#define KS_CLOSE_BOUND_MS 10000

/**
 * @brief Commit what was acknowledged, leave the group and free; NULL is fine. Bounded: the
 *        group is left first (unsubscribe, the revocation served here, without a drain: the
 *        loop has finished what it could), then the client closed asynchronously, within
 *        KS_CLOSE_BOUND_MS. librdkafka 2.0 can hang for ever closing a consumer whose
 *        cooperative rebalance is under way (confluentinc/librdkafka#4527): past the bound the
 *        client is left as it is.
 * @returns 0 (closed and freed); 1 when it closed but cannot be destroyed (librdkafka before
 *          2.2 aborts destroying a cooperative consumer that never had an assignment,
 *          confluentinc/librdkafka#4312); or KS_ERR_TIMEOUT when it did not close in time. In
 *          both latter cases its threads may still run and use what it was given (the offsets
 *          registry, the callbacks' state): the caller frees nothing and ends the process.
 */
int ks_consumer_close(ks_consumer_t *c);
/**
 * @brief Whether a broker refused the consumer's SASL authentication, AWS MSK IAM or any
 *        other mechanism (SCRAM, PLAIN, ...): a failure the worker cannot get past by retrying
 *        with the same credentials; librdkafka would retry forever. @returns 0, or KS_ERR_AUTH
 *        with the broker's reason and what to check in @p err.
 * @locality any thread
 */
int ks_consumer_auth_failed(rd_kafka_t *rk, ks_errbuf *err);

#endif
