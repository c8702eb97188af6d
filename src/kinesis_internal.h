/**
 * @file kinesis_internal.h
 * @brief The writer's state, shared by kinesis.c (the state machine: batches, requests, answers,
 *        retries) and kinesis_shards.c (its shard-aware side: records through the shard queues,
 *        ListShards again while running, aggregates that landed outside their records' range).
 *        Not for other modules: they use kinesis.h.
 */
#ifndef KS_KINESIS_INTERNAL_H
#define KS_KINESIS_INTERNAL_H

#include "aws.h"
#include "keygate.h"
#include "kinesis.h"
#include "putrecords.h"
#include "shards.h"

typedef struct request {
	ks_buf body;
	ks_record **recs;
	size_t n;
	int64_t start_ms;
	int busy;
} request;

/* An aggregate accepted by a shard the map did not know: decided after the next listing. */
typedef struct landed_wait {
	struct landed_wait *next;
	ks_record *unit;
	char shard[64];
	char seq[128];
} landed_wait;

struct ks_kinesis {
	const ks_conf *conf;
	char *url;
	ks_aws_url aws_url;    /* host and path as signed */
	ks_creds_t *creds;
	ks_metrics *metrics;
	ks_kinesis_cbs cbs;
	const ks_http_transport *tp;
	void *t;
	int64_t (*now_ms)(void *ud);
	void *clock_ud;
	request *reqs;
	int nreqs;
	int busy;

	ks_rqueue incoming;    /* ordering=key: submitted, not yet through the gate */
	ks_rqueue ready;       /* may be sent now */
	ks_rqueue retry;       /* waiting for their backoff */
	ks_keygate_t *gate;    /* ordering=key */
	size_t held_records;
	size_t held_bytes;
	int flush;
	uint64_t rng;

	ks_buf kpl;            /* aggregation=kpl: one aggregate being encoded */
	size_t max_record_bytes;   /* the stream's (DescribeStreamSummary), 1 MiB until told */
	size_t max_request_bytes;  /* 5 MiB; 10 MiB once records may be over 1 MiB */

	/* Shard-aware (rate.limit.percent or aggregation=kpl, once a shard map is known). */
	ks_shards_t *sh;
	int64_t shard_wake;    /* when a queued unit may go next */
	landed_wait *verdicts; /* aggregates that landed in a shard the map does not know yet */
	int list_slot;         /* the transport slot of ListShards */
	int list_busy;
	int list_page;
	ks_buf list_body;
	ks_shardmap_t *list_map;
	char list_next[4096];
	int want_refresh;      /* an answer named another shard than predicted */
	int list_failures;     /* listings failed in a row (the first is logged) */
	int open_shards;       /* of the map in use: its share of kinesink_stream_open_shards */
	int64_t next_refresh_ms;
	int64_t last_list_ms;

	size_t revoked_held;   /* records marked by ks_kinesis_revoke, still held (in flight) */
	size_t dropped_revoked; /* records dropped since the writer started: their partition was revoked */

	int expired_retry;     /* an ExpiredTokenException was answered: credentials refreshed once */
	int fatal;
	ks_errbuf fatal_err;
};


/* Whether records go by shard: a map is known and limits or aggregation asked for. */
static inline int ks_kinesis_sharded(const ks_kinesis_t *k)
{
	return k->sh && ks_shards_map(k->sh);
}
static inline int64_t ks_kinesis_now(const ks_kinesis_t *k)
{
	return k->now_ms(k->clock_ud);
}

/* Without a map, how often the writer tries to list the shards: shards.refresh.ms, or a minute. */
static inline int64_t ks_kinesis_relist_ms(const ks_conf *conf)
{
	return conf->shards_refresh_ms > 0 ? conf->shards_refresh_ms : 60000;
}

/* kinesis.c */

/** @brief The signed header lines of a Kinesis call of @p target with @p body. */
int ks_kinesis_sign(ks_kinesis_t *k, const char *target, const ks_buf *body, ks_aws_headers *out, ks_errbuf *err);
/** @brief Stop: ks_kinesis_poll reports @p e from now on. */
void ks_kinesis_set_fatal(ks_kinesis_t *k, const ks_errbuf *e);
/** @brief @p rec's unit is done (acknowledged or failed): its keys' next records go, it is freed. */
void ks_kinesis_release(ks_kinesis_t *k, ks_record *rec, int64_t now);
/** @brief Acknowledge every record of @p unit (accepted by @p shard_id) and release it. @returns how many. */
size_t ks_kinesis_ack_unit(ks_kinesis_t *k, ks_record *unit, const char *shard_id, const char *seq, int64_t now);

/**
 * @brief Take the records marked revoked off chain @p r (linked by `agg`), dropping them: their
 *        keys go on with their next record in @p r, or else with the next one waiting in the gate
 *        (appended to @p released, to be queued by the caller).
 * @returns the records kept, in their order (NULL: none).
 */
ks_record *ks_kinesis_strip_revoked(ks_kinesis_t *k, ks_record *r, ks_rqueue *released);
/** @brief Queue @p rec, its key's active record again: for its shard, or ready to send. */
void ks_kinesis_requeue_active(ks_kinesis_t *k, ks_record *rec, int64_t now);
/** @brief Whether a record of unit @p u is marked revoked. */
int ks_kinesis_has_revoked(const ks_kinesis_t *k, const ks_record *u);

/* kinesis_shards.c */

/** @brief The shard queues could not take a record: the writer stops. */
void ks_kinesis_shards_nomem(ks_kinesis_t *k);
/** @brief Queue @p rec (its key's active record, or any with ordering=none) for its predicted shard. */
void ks_kinesis_route(ks_kinesis_t *k, ks_record *rec);
/** @brief The records submitted since the last poll through the gate to their shards. */
void ks_kinesis_admit_sharded(ks_kinesis_t *k);
/**
 * @brief An accepted unit's ShardId against its prediction.
 * @returns 1 when it may be acknowledged now (records outside the landed shard's range were sent
 *          again), 0 when it waits for the next listing (the writer holds it).
 */
int ks_kinesis_check_landed(ks_kinesis_t *k, ks_record *unit, const ks_put_result *res, int64_t now);
/** @brief Decide now the aggregates waiting for a listing that hold records marked revoked. */
void ks_kinesis_decide_revoked(ks_kinesis_t *k, int64_t now);
/** @brief Start a listing of the shards when one is asked for or due. */
void ks_kinesis_maybe_list(ks_kinesis_t *k, int64_t now);
/** @brief A ListShards answer (the transport's last slot). */
void ks_kinesis_handle_list(ks_kinesis_t *k, const ks_http_answer *a, int64_t now);
/** @brief When the shard side needs the writer awake next (INT64_MAX: never). */
int64_t ks_kinesis_shards_wake(const ks_kinesis_t *k);

#endif
