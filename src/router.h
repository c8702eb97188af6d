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
#include "kinesis.h"

/** One destination stream and its writer. */
typedef struct ks_dest {
	int route;              /**< index of its route (0: the implicit route of a one-stream configuration) */
	const char *route_name; /**< NULL for the implicit route */
	const ks_conf *conf;    /**< what the writer runs with (conf->stream: this stream) */
	ks_kinesis_t *kin;      /**< set by the start callback; destroyed by the router */
	ks_conf own;            /**< a template route's: a shallow copy of the route's with this stream */
} ks_dest;

/** Starts @p d's writer (d->kin) and anything else a new stream needs. @returns 0, or non-zero with @p err. */
typedef int (*ks_dest_start_fn)(void *opaque, ks_dest *d, ks_errbuf *err);

typedef struct ks_router ks_router_t;

/**
 * @brief The routes of @p conf (borrowed; none: one implicit route, @p conf itself), and the
 *        writers of every route that is not a template, each started by @p start.
 * @returns the router (caller destroys) or NULL with @p err set. @locality pipeline thread
 */
ks_router_t *ks_router_new(const ks_conf *conf, ks_dest_start_fn start, void *opaque, ks_errbuf *err);
/** @brief Destroy every writer and the router; NULL is fine. */
void ks_router_destroy(ks_router_t *r);

/** @brief Number of routes (at least 1). */
int ks_router_nroutes(const ks_router_t *r);
/** @brief Each route's configuration, ks_router_nroutes of them. */
const ks_conf *const *ks_router_confs(const ks_router_t *r);

/** @brief The route that takes @p topic, or -1 (none). @locality pipeline thread */
int ks_router_route(ks_router_t *r, const char *topic);
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
 * @brief ks_kinesis_revoke on every writer: no record for which @p revoked says 1 is sent from
 *        now on. @returns those still in flight, over every writer. @locality pipeline thread
 */
size_t ks_router_revoke(ks_router_t *r, ks_record_pred revoked, void *ud);
/** @brief ks_kinesis_revoked_inflight over every writer. */
size_t ks_router_revoked_inflight(const ks_router_t *r);
/**
 * @brief Drive every writer (ks_kinesis_poll), waiting at most @p timeout_ms, and for @p wake_fd
 *        when >= 0. @returns 0, or a writer's fatal error with @p err.
 */
int ks_router_poll(ks_router_t *r, int timeout_ms, int wake_fd, ks_errbuf *err);

#endif
