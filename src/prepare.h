/**
 * @file prepare.h
 * @brief Decode and transform a batch of Kafka messages on `decode.threads` threads (the
 *        caller's among them), each with its own decoder and transform; the results come back
 *        in message order, so everything after this stage stays single-threaded and ordered.
 */
#ifndef KS_PREPARE_H
#define KS_PREPARE_H

#include <librdkafka/rdkafka.h>

#include "common.h"
#include "conf.h"
#include "decode.h"
#include "metrics.h"
#include "transform.h"

/** What decode and transform made of a message: what the pipeline does with it. */
typedef enum ks_prep_outcome {
	KS_PREP_EVENT = 0,       /**< a consumer event (msg->err), not a message: nothing was done */
	KS_PREP_RECORDS,         /**< recs[0..n) to write (n may be 0: e.g. a delete append-only drops) */
	KS_PREP_SKIP_TOMBSTONE,  /**< an input tombstone: nothing to write, done */
	KS_PREP_NON_ROW,         /**< a Debezium truncate or message event (op says which): skipped */
	KS_PREP_BAD,             /**< a bad record (err: stage, reason, text): errors.policy decides */
	KS_PREP_FATAL,           /**< the worker cannot go on (err.text; err.stage: decode or transform) */
} ks_prep_outcome;

/** One message and what decode and transform made of it. */
typedef struct ks_prepared {
	rd_kafka_message_t *msg;  /**< in: the message (an error event is left alone) */
	int route;                /**< in: which route's decoder and transform (ks_preparer_new_routes) */
	ks_prep_outcome outcome;
	ks_op op;                 /**< the decoded change's operation */
	int n;                    /**< records made (0..2) */
	ks_record *recs[2];       /**< owned by the caller once returned */
	ks_errbuf err;
} ks_prepared;

typedef struct ks_preparer ks_preparer_t;

/**
 * @brief Start @p conf->decode_threads - 1 helper threads (none for raw input). NULL with @p err
 *        set on failure.
 */
ks_preparer_t *ks_preparer_new(const ks_conf *conf, ks_metrics *metrics, ks_errbuf *err);

/**
 * @brief ks_preparer_new with one decoder and transform per route on each lane, route i
 *        configured by @p routes[i] (borrowed: must outlive the preparer); @p conf gives the
 *        lanes (decode.threads; one when every route is raw). NULL with @p err set on failure.
 */
ks_preparer_t *ks_preparer_new_routes(const ks_conf *conf, const ks_conf *const *routes, int nroutes,
				      ks_metrics *metrics, ks_errbuf *err);

/**
 * @brief Hand @p items[0..n) (their msg set by the caller) to the helper threads and return at
 *        once; small batches, or a single lane, wait for ks_preparer_finish. One batch at a time:
 *        finish the one started before starting another. @p items must stay until finished.
 * @locality the pipeline thread
 */
void ks_preparer_start(ks_preparer_t *pp, ks_prepared *items, int n);

/**
 * @brief Complete the batch started last, the calling thread taking the messages no helper took
 *        yet; returns when every item is filled in. Nothing started: returns at once.
 * @locality the pipeline thread
 */
void ks_preparer_finish(ks_preparer_t *pp);

/** @brief Stop the helpers and free everything (messages still held too); NULL is fine. */
void ks_preparer_destroy(ks_preparer_t *pp);

/*
 * Two batches for the loop: the one being taken from the consumer, and the one before it, on
 * the lanes while the loop handles the batch before that and does its other work.
 */

/** Most messages in a batch. */
#define KS_PREP_BATCH_MAX 500

/** Handles one prepared message, in message order; the message is destroyed after the call. */
typedef void (*ks_prepared_fn)(void *opaque, ks_prepared *it);

/** @brief Add @p msg to the batch being taken (ks_preparer_taking() < KS_PREP_BATCH_MAX). */
void ks_preparer_take(ks_preparer_t *pp, rd_kafka_message_t *msg);
/** @brief ks_preparer_take for route @p route's decoder and transform. */
void ks_preparer_take_route(ks_preparer_t *pp, rd_kafka_message_t *msg, int route);
/** @brief Messages in the batch being taken. */
int ks_preparer_taking(const ks_preparer_t *pp);
/** @brief Messages on the lanes (taken, not yet handled); their bytes (key and value) in @p bytes
 *  unless NULL. */
int ks_preparer_held(const ks_preparer_t *pp, size_t *bytes);

/**
 * @brief Wait for the batch on the lanes, start the batch taken (if any) on them, and hand each
 *        message of the finished one to @p fn. @locality the pipeline thread
 */
void ks_preparer_advance(ks_preparer_t *pp, ks_prepared_fn fn, void *opaque);
/** @brief Hand everything taken so far to @p fn, in order (before a rebalance). */
void ks_preparer_flush(ks_preparer_t *pp, ks_prepared_fn fn, void *opaque);
/** @brief Drop the batch on the lanes unhandled (after a fatal error: never committed). */
void ks_preparer_drop(ks_preparer_t *pp);

#endif
