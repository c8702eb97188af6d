/* The fake endpoint's shard model: see fakeshards.h. */
#include "fakeshards.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int grow(fk_stream *s, int more)
{
	fk_shard *n;
	int cap;

	if (s->n + more <= s->cap)
		return 0;
	cap = (s->n + more) * 2;
	if (!(n = realloc(s->shards, sizeof(*n) * (size_t)cap)))
		return -1;
	s->shards = n;
	s->cap = cap;
	return 0;
}

/* A new open shard at the end; its index. */
static int add_shard(fk_stream *s, fk_u128 lo, fk_u128 hi, int parent, int adjacent)
{
	fk_shard *sh = &s->shards[s->n];

	memset(sh, 0, sizeof(*sh));
	snprintf(sh->id, sizeof(sh->id), "shardId-%012d", s->n);
	sh->lo = lo;
	sh->hi = hi;
	sh->open = 1;
	sh->parent = parent;
	sh->adjacent = adjacent;
	sh->seq_start = *s->seq + 1;
	sh->rec_tokens = s->rec_limit;
	sh->byte_tokens = s->byte_limit;
	sh->refill_ms = -1;
	return s->n++;
}

static void close_shard(fk_stream *s, int i)
{
	s->shards[i].open = 0;
	s->shards[i].seq_end = *s->seq;
}

/* Split [lo, hi] into @n ranges as evenly as the service does, appending open shards. */
static int add_even(fk_stream *s, fk_u128 lo, fk_u128 hi, int n)
{
	fk_u128 width = (hi - lo) / (fk_u128)n + ((hi - lo) % (fk_u128)n + 1 == (fk_u128)n ? 1 : 0);
	int i;

	if (grow(s, n))
		return -1;
	for (i = 0; i < n; i++) {
		fk_u128 a = lo + width * (fk_u128)i, b = i == n - 1 ? hi : a + width - 1;

		add_shard(s, a, b, -1, -1);
	}
	return 0;
}

int fk_stream_init(fk_stream *s, int nshards, uint64_t *seq)
{
	double rl = s->rec_limit, bl = s->byte_limit;
	int limits = s->limits;
	fk_limit_model model = s->model;

	memset(s, 0, sizeof(*s));
	s->seq = seq;
	s->limits = limits;
	s->rec_limit = rl;
	s->byte_limit = bl;
	s->model = model;
	return add_even(s, 0, FK_HASH_MAX, nshards < 1 ? 1 : nshards);
}

void fk_stream_clean(fk_stream *s)
{
	free(s->shards);
	s->shards = NULL;
	s->n = s->cap = 0;
}

int fk_route(const fk_stream *s, fk_u128 h)
{
	int i, lo = 0, hi = s->n - 1;

	if (!s->resharded) {
		/* As created: every shard open, in hash-key order, covering the space. */
		while (lo < hi) {
			int mid = lo + (hi - lo) / 2;

			if (h > s->shards[mid].hi)
				lo = mid + 1;
			else
				hi = mid;
		}
		return s->n && h >= s->shards[lo].lo && h <= s->shards[lo].hi ? lo : -1;
	}
	for (i = 0; i < s->n; i++)
		if (s->shards[i].open && h >= s->shards[i].lo && h <= s->shards[i].hi)
			return i;
	return -1;
}

int fk_find(const fk_stream *s, const char *id)
{
	int i;

	for (i = 0; id && i < s->n; i++)
		if (strcmp(s->shards[i].id, id) == 0)
			return i;
	return -1;
}

/*
 * Token buckets holding one second of each limit, refilled continuously. A record larger than
 * the bucket (up to 10 MiB on streams with large records) is admitted when the bucket is full
 * and leaves it in debt, as the service describes its burst capacity for large records.
 */
static int take_bucket(const fk_stream *s, fk_shard *sh, size_t bytes, int64_t now_ms)
{
	double need = (double)bytes;

	if (sh->refill_ms >= 0 && now_ms > sh->refill_ms) {
		double dt = (double)(now_ms - sh->refill_ms) / 1000.0;

		sh->rec_tokens += dt * s->rec_limit;
		sh->byte_tokens += dt * s->byte_limit;
		if (sh->rec_tokens > s->rec_limit)
			sh->rec_tokens = s->rec_limit;
		if (sh->byte_tokens > s->byte_limit)
			sh->byte_tokens = s->byte_limit;
	}
	if (sh->refill_ms < now_ms)
		sh->refill_ms = now_ms;
	if (need > s->byte_limit)
		need = s->byte_limit;
	if (sh->rec_tokens < 1.0 || sh->byte_tokens < need)
		return 0;
	sh->rec_tokens -= 1.0;
	sh->byte_tokens -= (double)bytes;
	return 1;
}

/*
 * The service counting per calendar second: within one second of the clock a shard takes at most
 * the records limit and the bytes limit, whatever came in the second before. A record larger than
 * the bytes limit goes only as the first of its second.
 */
static int take_window(const fk_stream *s, fk_shard *sh, size_t bytes, int64_t now_ms)
{
	int64_t sec = now_ms / 1000;

	if (sec != sh->window_s) {
		sh->window_s = sec;
		sh->window_recs = 0;
		sh->window_bytes = 0;
	}
	if (sh->window_recs + 1.0 > s->rec_limit ||
	    (sh->window_bytes > 0 && sh->window_bytes + (double)bytes > s->byte_limit))
		return 0;
	sh->window_recs += 1.0;
	sh->window_bytes += (double)bytes;
	return 1;
}

int fk_admit(fk_stream *s, int i, size_t bytes, int64_t now_ms)
{
	fk_shard *sh = &s->shards[i];

	if (s->limits && !(s->model == FK_LIMIT_WINDOW ? take_window(s, sh, bytes, now_ms)
						      : take_bucket(s, sh, bytes, now_ms))) {
		sh->throttled++;
		return 0;
	}
	sh->accepted++;
	sh->bytes += bytes;
	sh->units += (bytes + 25 * 1024 - 1) / (25 * 1024);
	if (!sh->first_ms)
		sh->first_ms = now_ms;
	sh->last_ms = now_ms;
	return 1;
}

static int fail(const char **type, const char *t, char *msg, size_t mn, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static int fail(const char **type, const char *t, char *msg, size_t mn, const char *fmt, ...)
{
	va_list ap;

	*type = t;
	va_start(ap, fmt);
	vsnprintf(msg, mn, fmt, ap);
	va_end(ap);
	return -1;
}

int fk_split(fk_stream *s, const char *id, const char *new_start, const char **type, char *msg, size_t mn)
{
	int i = fk_find(s, id);
	fk_u128 at;

	if (i < 0 || !s->shards[i].open)
		return fail(type, "ResourceNotFoundException", msg, mn, "Could not find open shard %s", id ? id : "");
	if ((!new_start || ks_u128_parse(new_start, strlen(new_start), &at)) || at <= s->shards[i].lo || at > s->shards[i].hi)
		return fail(type, "InvalidArgumentException", msg, mn,
			    "NewStartingHashKey %s is not inside the shard's range (exclusive of its start)",
			    new_start ? new_start : "");
	if (grow(s, 2))
		return fail(type, "InternalFailure", msg, mn, "%s", "out of memory");
	close_shard(s, i);
	s->resharded = 1;
	add_shard(s, s->shards[i].lo, at - 1, i, -1);
	add_shard(s, at, s->shards[i].hi, i, -1);
	return 0;
}

int fk_merge(fk_stream *s, const char *a, const char *b, const char **type, char *msg, size_t mn)
{
	int i = fk_find(s, a), j = fk_find(s, b), lo, hi;

	if (i < 0 || !s->shards[i].open)
		return fail(type, "ResourceNotFoundException", msg, mn, "Could not find open shard %s", a ? a : "");
	if (j < 0 || !s->shards[j].open)
		return fail(type, "ResourceNotFoundException", msg, mn, "Could not find open shard %s", b ? b : "");
	lo = s->shards[i].lo < s->shards[j].lo ? i : j;
	hi = lo == i ? j : i;
	if (s->shards[lo].hi + 1 != s->shards[hi].lo)
		return fail(type, "InvalidArgumentException", msg, mn, "Shards %s are not adjacent", "to merge");
	if (grow(s, 1))
		return fail(type, "InternalFailure", msg, mn, "%s", "out of memory");
	close_shard(s, i);
	close_shard(s, j);
	s->resharded = 1;
	add_shard(s, s->shards[lo].lo, s->shards[hi].hi, i, j);
	return 0;
}

/* Uniform scaling: every open shard closes and @target shards split the space evenly; each new
 * shard's parent is the closed shard that held its starting hash key. */
int fk_update_count(fk_stream *s, int target, const char **type, char *msg, size_t mn)
{
	int old = s->n, i, k, *was_open;

	if (target < 1)
		return fail(type, "InvalidArgumentException", msg, mn, "%s", "TargetShardCount must be at least 1");
	if (!(was_open = calloc((size_t)old, sizeof(*was_open))))
		return fail(type, "InternalFailure", msg, mn, "%s", "out of memory");
	s->resharded = 1;
	for (i = 0; i < old; i++) {
		was_open[i] = s->shards[i].open;
		if (s->shards[i].open)
			close_shard(s, i);
	}
	if (add_even(s, 0, FK_HASH_MAX, target)) {
		free(was_open);
		return fail(type, "InternalFailure", msg, mn, "%s", "out of memory");
	}
	for (k = old; k < s->n; k++)
		for (i = 0; i < old; i++)
			if (was_open[i] && s->shards[k].lo >= s->shards[i].lo && s->shards[k].lo <= s->shards[i].hi)
				s->shards[k].parent = i;
	free(was_open);
	return 0;
}

int fk_open_count(const fk_stream *s)
{
	int i, n = 0;

	for (i = 0; i < s->n; i++)
		n += s->shards[i].open;
	return n;
}

json_t *fk_shard_json(const fk_stream *s, int i)
{
	const fk_shard *sh = &s->shards[i];
	char lo[40], hi[40], a[24], b[24];
	json_t *o = json_object(), *seq = json_object(), *range = json_object();

	ks_u128_format(sh->lo, lo);
	ks_u128_format(sh->hi, hi);
	json_object_set_new(o, "ShardId", json_string(sh->id));
	if (sh->parent >= 0)
		json_object_set_new(o, "ParentShardId", json_string(s->shards[sh->parent].id));
	if (sh->adjacent >= 0)
		json_object_set_new(o, "AdjacentParentShardId", json_string(s->shards[sh->adjacent].id));
	json_object_set_new(range, "StartingHashKey", json_string(lo));
	json_object_set_new(range, "EndingHashKey", json_string(hi));
	json_object_set_new(o, "HashKeyRange", range);
	snprintf(a, sizeof(a), "%020llu", (unsigned long long)sh->seq_start);
	json_object_set_new(seq, "StartingSequenceNumber", json_string(a));
	if (!sh->open) {
		snprintf(b, sizeof(b), "%020llu", (unsigned long long)sh->seq_end);
		json_object_set_new(seq, "EndingSequenceNumber", json_string(b));
	}
	json_object_set_new(o, "SequenceNumberRange", seq);
	return o;
}
