/*
 * The writer's knowledge of the stream's shards while it runs (shardlist.h): the listing's
 * schedule and its backoff, the pages of a listing under way, and a table of every shard any map
 * named, by id (open addressing, linear probing; shards are only ever added).
 */
#include "shardlist.h"

#include <stdlib.h>
#include <string.h>

#include "aws.h"
#include "log.h"

/* Least time between the starts of two listings, whatever asks for them; and the first backoff. */
#define LIST_MIN_INTERVAL_MS 1000

typedef struct known {
	ks_shard sh;     /* id "": empty slot */
	uint64_t hash;
} known;

struct ks_shardlist {
	ks_shardlist_opts o;
	uint64_t rng;
	int have_map;
	int asked;              /* an answer named another shard: list soon */
	int busy;               /* a listing is under way */
	int failures;           /* listings failed in a row */
	int64_t outage_since;   /* when the first of them failed */
	int64_t last_start;     /* when the last listing started */
	int64_t next_refresh;   /* when the next periodic listing is due */
	int64_t retry_at;       /* after failures: no listing before */
	ks_shardmap_t *building;
	ks_shardmap_t *done;
	int page;
	char next[4096];
	known *tab;
	size_t cap, n;
};

ks_shardlist_t *ks_shardlist_new(const ks_shardlist_opts *o, int64_t now_ms)
{
	ks_shardlist_t *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->o = *o;
	l->rng = o->seed ? o->seed : 0x9e3779b97f4a7c15ULL;
	l->last_start = INT64_MIN / 2;
	l->next_refresh = now_ms + o->relist_ms;
	return l;
}

void ks_shardlist_destroy(ks_shardlist_t *l)
{
	if (!l)
		return;
	ks_shardmap_destroy(l->building);
	ks_shardmap_destroy(l->done);
	free(l->tab);
	free(l);
}

static uint64_t id_hash(const char *id)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *id; id++) {
		h ^= (unsigned char)*id;
		h *= 1099511628211ULL;
	}
	return h ^ (h >> 29);
}

/* The slot of shard @p id, or the empty slot where it would go. */
static known *slot_of(const ks_shardlist_t *l, const char *id, uint64_t h)
{
	size_t mask = l->cap - 1, i = (size_t)h & mask;

	for (;; i = (i + 1) & mask)
		if (!l->tab[i].sh.id[0] || (l->tab[i].hash == h && strcmp(l->tab[i].sh.id, id) == 0))
			return &l->tab[i];
}

static int remember(ks_shardlist_t *l, const ks_shard *sh)
{
	uint64_t h = id_hash(sh->id);
	known *k;

	if ((l->n + 1) * 2 > l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64, i, ocap = l->cap;
		known *old = l->tab, *tab = calloc(cap, sizeof(*tab));

		if (!tab)
			return KS_ERR_NOMEM;
		l->tab = tab;
		l->cap = cap;
		for (i = 0; i < ocap; i++)
			if (old[i].sh.id[0])
				*slot_of(l, old[i].sh.id, old[i].hash) = old[i];
		free(old);
	}
	k = slot_of(l, sh->id, h);
	if (!k->sh.id[0])
		l->n++;
	k->sh = *sh;
	k->hash = h;
	return 0;
}

static const ks_shard *known_shard(const ks_shardlist_t *l, const char *id)
{
	const known *k;

	if (!l->cap || !id || !*id)
		return NULL;
	k = slot_of(l, id, id_hash(id));
	return k->sh.id[0] ? &k->sh : NULL;
}

int ks_shardlist_use(ks_shardlist_t *l, const ks_shardmap_t *map, int64_t now_ms)
{
	int i, rc = 0;

	for (i = 0; i < ks_shardmap_count(map) && !rc; i++)
		rc = remember(l, ks_shardmap_shard(map, i));
	l->have_map = 1;
	l->next_refresh = now_ms + (l->o.refresh_ms > 0 ? l->o.refresh_ms : l->o.relist_ms);
	return rc;
}

/* When a listing may start at the earliest, and whether one is wanted at all (INT64_MAX: not). */
static int64_t due_at(const ks_shardlist_t *l)
{
	int64_t at, floor = l->last_start + LIST_MIN_INTERVAL_MS;

	if (l->busy)
		return INT64_MAX;
	if (l->asked)
		at = floor;
	else if (!l->have_map || l->o.refresh_ms > 0)
		at = l->next_refresh;
	else
		return INT64_MAX;
	if (at < floor)
		at = floor;
	return at < l->retry_at ? l->retry_at : at;
}

int ks_shardlist_due(const ks_shardlist_t *l, int64_t now_ms)
{
	return now_ms >= due_at(l);
}

int64_t ks_shardlist_wake(const ks_shardlist_t *l)
{
	return due_at(l);
}

int ks_shardlist_stale(const ks_shardlist_t *l)
{
	return l->asked;
}

int ks_shardlist_failures(const ks_shardlist_t *l)
{
	return l->failures;
}

int ks_shardlist_begin(ks_shardlist_t *l, int64_t now_ms)
{
	ks_shardmap_destroy(l->building);
	if (!(l->building = ks_shardmap_new()))
		return KS_ERR_NOMEM;
	l->page = 1;
	l->next[0] = '\0';
	l->busy = 1;
	l->last_start = now_ms;
	return 0;
}

const char *ks_shardlist_token(const ks_shardlist_t *l)
{
	return l->page > 1 ? l->next : NULL;
}

/* Equal jitter over a backoff that doubles from a second: at least half of it. */
static int64_t backoff_ms(ks_shardlist_t *l)
{
	int shift = l->failures < 20 ? l->failures - 1 : 19;
	int64_t b = (int64_t)LIST_MIN_INTERVAL_MS << (shift > 0 ? shift : 0), max = l->o.backoff_max_ms;

	if (max < LIST_MIN_INTERVAL_MS)
		max = LIST_MIN_INTERVAL_MS;
	if (b > max)
		b = max;
	l->rng ^= l->rng << 13;
	l->rng ^= l->rng >> 7;
	l->rng ^= l->rng << 17;
	return b / 2 + (int64_t)(l->rng % (uint64_t)(b / 2 + 1));
}

static void failed(ks_shardlist_t *l, const char *why, int64_t now_ms)
{
	int64_t wait;

	l->busy = 0;
	ks_shardmap_destroy(l->building);
	l->building = NULL;
	if (!l->failures++) {
		l->outage_since = now_ms;
		ks_warn("kinesis", "listing the shards of stream %s failed (page %d): %s; %s, trying again with backoff",
			l->o.stream, l->page, why, l->have_map ? "keeping the map in use" : "writing on without the shard map");
	}
	wait = backoff_ms(l);
	l->retry_at = now_ms + wait;
	ks_debug("kinesis", "listing the shards of stream %s failed %d times in a row: %s; next try in %lld ms",
		 l->o.stream, l->failures, why, (long long)wait);
}

void ks_shardlist_not_sent(ks_shardlist_t *l, const char *why, int64_t now_ms)
{
	failed(l, why, now_ms);
}

ks_list_step ks_shardlist_answer(ks_shardlist_t *l, long status, const char *body, size_t len, const char *neterr,
				 int64_t now_ms)
{
	ks_errbuf err;
	ks_aws_error ae;
	int rc;

	ks_errbuf_clear(&err);
	if (!l->busy || !l->building)
		return KS_LIST_FAILED;
	if (status != 200) {
		if (status) {
			ks_aws_error_parse(body, len, &ae);
			ks_errbuf_set(&err, KS_ERR_IO, "HTTP %ld %s: %s", status, ae.type[0] ? ae.type : "error",
				      ae.message[0] ? ae.message : "(no message)");
		} else {
			ks_errbuf_set(&err, KS_ERR_IO, "no answer: %s", neterr && *neterr ? neterr : "connection failed");
		}
		failed(l, err.text, now_ms);
		return KS_LIST_FAILED;
	}
	if ((rc = ks_shardmap_add_page(l->building, body, len, l->next, sizeof(l->next), &err))) {
		failed(l, err.text, now_ms);
		return KS_LIST_FAILED;
	}
	if (l->next[0]) {
		l->page++;
		return KS_LIST_NEXT;
	}
	/* A snapshot taken mid-reshard has a gap or an overlap: the map in use stays. */
	if ((rc = ks_shardmap_finish(l->building, &err)) || (rc = ks_shardlist_use(l, l->building, now_ms))) {
		failed(l, rc == KS_ERR_NOMEM ? "out of memory" : err.text, now_ms);
		return KS_LIST_FAILED;
	}
	if (l->failures)
		ks_info("kinesis", "listed the shards of stream %s again after %d failures over %lld ms", l->o.stream,
			l->failures, (long long)(now_ms - l->outage_since));
	l->failures = 0;
	l->retry_at = 0;
	l->asked = 0;
	l->busy = 0;
	ks_shardmap_destroy(l->done);
	l->done = l->building;
	l->building = NULL;
	return KS_LIST_DONE;
}

ks_shardmap_t *ks_shardlist_take_map(ks_shardlist_t *l)
{
	ks_shardmap_t *m = l->done;

	l->done = NULL;
	return m;
}

int ks_shardlist_range(const ks_shardlist_t *l, const char *id, ks_u128 *start, ks_u128 *end)
{
	const ks_shard *sh = known_shard(l, id);

	if (!sh)
		return 0;
	*start = sh->start;
	*end = sh->end;
	return 1;
}

ks_land ks_shardlist_landed(ks_shardlist_t *l, const char *predicted, const char *landed, int aggregate,
			    int may_hold, ks_u128 *start, ks_u128 *end)
{
	if (!predicted || !*predicted || !landed || !*landed || strcmp(predicted, landed) == 0)
		return KS_LAND_ACK;
	l->asked = 1;
	if (!aggregate)
		return KS_LAND_ACK; /* a record alone is where Kinesis put it by its own key */
	if (ks_shardlist_range(l, landed, start, end))
		return KS_LAND_RANGE;
	/* Held only while a listing can tell soon: not while they fail. */
	return may_hold && !l->failures ? KS_LAND_HOLD : KS_LAND_OTHER_KEYS;
}
