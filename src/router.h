/**
 * @file router.h
 * @brief Routes at run time: which route takes a Kafka topic, and the Kinesis writer of the
 *        stream its records go to (one per route, or per topic for a template route, started
 *        on the topic's first record). Also drives every writer as one.
 */
#ifndef KS_ROUTER_H
#define KS_ROUTER_H

#include <stddef.h>

#include "common.h"
#include "conf.h"
#include "creds.h"
#include "kinesis.h"
#include "metrics.h"
#include "offsets.h"

/** One destination stream and its writer. */
typedef struct ks_dest {
	int route;              /**< index of its route (0: the implicit route of a one-stream configuration) */
	const char *route_name; /**< NULL for the implicit route */
	const ks_conf *conf;    /**< what the writer runs with (conf->stream: this stream) */
	ks_kinesis_t *kin;      /**< its writer, started and destroyed by the router */
	ks_stream_latency *latency; /**< its stream's latency figures (ks_metrics_stream_latency) */
	struct ks_router *router;   /**< the router it belongs to */
	ks_conf own;            /**< a template route's: a shallow copy of the route's with this stream */
} ks_dest;

typedef struct ks_router ks_router_t;

/** A writer cannot deliver a record (@p msg says which and why): the worker stops. */
typedef void (*ks_router_fatal_fn)(void *opaque, const char *msg);

/**
 * @brief The routes of @p conf (borrowed; none: one implicit route, @p conf itself), and the
 *        writers of every route that is not a template, started now. A writer's start-up:
 *        the writer (signing with @p creds, counting in @p m; borrowed), whose acknowledgements
 *        go to each record's partition tracker (its origin, a ks_ptrack_t: acknowledged, or
 *        dropped when never delivered, then @p fatal) with its stream's latency observed, the stream's record size limit (DescribeStreamSummary) and its shard map
 *        (ListShards: a worker allowed PutRecords but not ListShards writes on without one).
 * @returns the router (caller destroys) or NULL with @p err set. @locality pipeline thread
 */
ks_router_t *ks_router_new(const ks_conf *conf, ks_creds_t *creds, ks_metrics *m, ks_router_fatal_fn fatal,
			   void *opaque, ks_errbuf *err);
/** @brief Destroy every writer and the router; NULL is fine. */
void ks_router_destroy(ks_router_t *r);

/** @brief Number of routes (at least 1). */
int ks_router_nroutes(const ks_router_t *r);
/** @brief Each route's configuration, ks_router_nroutes of them. */
const ks_conf *const *ks_router_confs(const ks_router_t *r);

/**
 * @brief The route that takes the message of @p topic [@p partition] @p offset, or -1 with what
 *        to do in @p err when none does. @locality pipeline thread
 */
int ks_router_route_msg(ks_router_t *r, const char *topic, int32_t partition, int64_t offset, ks_errbuf *err);
/**
 * @brief The writer for the records of @p topic, started now for a template route's new topic.
 * @returns it, or NULL with @p err (no route takes the topic, or the stream cannot start).
 * @locality pipeline thread
 */
ks_dest *ks_router_dest(ks_router_t *r, const char *topic, ks_errbuf *err);
/** @brief "route 'NAME': " into @p buf when there are routes, else "". @returns the text. */
const char *ks_router_tag(const ks_router_t *r, int route, char *buf, size_t n);

/** @brief Records held by every writer. */
size_t ks_router_records(const ks_router_t *r);
/** @brief Bytes held by every writer. */
size_t ks_router_bytes(const ks_router_t *r);
/** @brief ks_kinesis_flush on every writer. */
void ks_router_flush(ks_router_t *r);
/**
 * @brief Revoked partitions: no record whose origin is one of the @p n @p origins is sent from
 *        now on by any writer (ks_kinesis_revoke: those not sent are dropped, through each
 *        writer's dropped callback), and those in flight, which could still land after the
 *        partitions' new owner's records, are awaited, driving every writer, until @p until at
 *        most. @returns 0, or a writer's fatal error with @p err. @locality pipeline thread
 */
int ks_router_revoke(ks_router_t *r, void *const *origins, int n, int64_t until, ks_errbuf *err);
/**
 * @brief Drive every writer (ks_kinesis_poll), waiting at most @p timeout_ms, and for @p wake_fd
 *        when >= 0. @returns 0, or a writer's fatal error with @p err.
 */
int ks_router_poll(ks_router_t *r, int timeout_ms, int wake_fd, ks_errbuf *err);

#endif
