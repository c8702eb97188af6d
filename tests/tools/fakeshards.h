/*
 * The shard model of the tests' fake Kinesis endpoint: a stream's shards with their hash-key
 * ranges, routing of a record by MD5(partition key) or ExplicitHashKey as Kinesis does, per-shard
 * write limits (token buckets holding one second, or counts per calendar second), and resharding
 * (SplitShard, MergeShards, UpdateShardCount).
 * Not thread-safe: the endpoint holds its lock around every call.
 */
#ifndef FK_SHARDS_H
#define FK_SHARDS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "shardmap.h" /* hash keys: MD5 of a partition key, 128-bit decimal text */

typedef ks_u128 fk_u128;

#define FK_HASH_MAX (~(fk_u128)0)

typedef struct fk_shard {
	char id[32];         /* shardId-000000000000 */
	fk_u128 lo, hi;      /* HashKeyRange, inclusive */
	int open;
	int parent;          /* index or -1 */
	int adjacent;        /* index or -1 (merges) */
	uint64_t seq_start, seq_end;
	double rec_tokens, byte_tokens;
	int64_t refill_ms;
	int64_t window_s;        /* FK_LIMIT_WINDOW: the calendar second counted, and its use */
	double window_recs, window_bytes;
	uint64_t accepted, bytes, throttled, units;
	int64_t first_ms, last_ms; /* first and last accepted entry, 0 before any */
} fk_shard;

/* How the per-shard limits are counted. */
typedef enum fk_limit_model {
	FK_LIMIT_BUCKET, /* token buckets holding one second, refilled continuously */
	FK_LIMIT_WINDOW  /* at most a second's limit within each calendar second */
} fk_limit_model;

typedef struct fk_stream {
	fk_shard *shards;
	int n, cap;
	int limits;              /* enforce per-shard write limits */
	double rec_limit;        /* records per second per shard */
	double byte_limit;       /* bytes per second per shard */
	fk_limit_model model;
	int resharded;           /* set by a reshard: shards no longer all open in hash-key order (routing scans) */
	uint64_t *seq;           /* the endpoint's sequence counter */
} fk_stream;

/* N shards splitting the hash space evenly (as CreateStream does). 0 or -1 (out of memory). */
int fk_stream_init(fk_stream *s, int nshards, uint64_t *seq);
void fk_stream_clean(fk_stream *s);

/* The open shard whose range holds @h: its index, or -1 (never, for a sound map). */
int fk_route(const fk_stream *s, fk_u128 h);
/* Find a shard by id: index or -1. */
int fk_find(const fk_stream *s, const char *id);
/* Count a write of @bytes to shard @i against its limits (s->model): 1 accepted, 0 throttled. */
int fk_admit(fk_stream *s, int i, size_t bytes, int64_t now_ms);

/* Resharding. 0, or -1 with the service's error type and message in @type / @msg. */
int fk_split(fk_stream *s, const char *id, const char *new_start, const char **type, char *msg, size_t mn);
int fk_merge(fk_stream *s, const char *a, const char *b, const char **type, char *msg, size_t mn);
int fk_update_count(fk_stream *s, int target, const char **type, char *msg, size_t mn);

int fk_open_count(const fk_stream *s);
/* The JSON of shard i as ListShards answers it (new reference). */
json_t *fk_shard_json(const fk_stream *s, int i);

#endif
