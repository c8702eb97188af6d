/*
 * Shard queues of the Kinesis writer (shards.h): routing by predicted shard, per-shard token
 * buckets, KPL aggregates of the records bound for one shard, and the check of where an
 * aggregate landed.
 */
#include "shards.h"

#include <stdlib.h>
#include <string.h>

#include "kpl.h"
#include "metrics.h"
#include "putrecords.h"
#include "ratelimit.h"
#include "shardrate.h"

/* A shard's adaptive rates (shardrate.h): of records and of bytes. */
typedef struct rates {
	ks_shardrate records;
	ks_shardrate bytes;
	int answered, throttled; /* entries of the answer being read (ks_shards_answered) */
} rates;

/* A map and what is kept per shard while it is the current one. */
typedef struct shardset {
	ks_shardmap_t *map;
	int refs;               /* taken units predicted in it, plus one while current */
	ks_rqueue *units;       /* per shard; NULL once replaced */
	ks_shard_limiter *lim;  /* per shard; NULL once replaced */
	rates *rates;           /* per shard; NULL once replaced */
	struct ks_shard_counters **ctr; /* per shard, its metric series (held until the set goes) */
	int *touched;           /* shards with entries in the answer being read; NULL once replaced */
	int ntouched;
	ks_metrics *metrics;
} shardset;

struct ks_shards {
	ks_shards_opts o;
	shardset *cur;
	size_t queued;
	int rr;                 /* the shard ks_shards_take starts with, in turn */
	int solo;               /* no unit takes another key's records (ks_shards_set_solo) */
};

/* unit_open: a unit takes the records of any key, or only of its own (a solo unit). */
#define OPEN_ANY 1
#define OPEN_OWN 2

/* Seconds of each shard's rates kept in its buckets: between a take and the service's own take
 * lie the ready queue (batch.linger.ms at most, when not lingering for an aggregate), the request
 * slots and the transfer. */
#define LIMIT_RESERVE_S 0.1

/* What an aggregate's framing adds beyond its records' costs (as keygate.c counts it). */
#define AGG_BASE (KS_KPL_OVERHEAD + 16)

ks_shards_t *ks_shards_new(const ks_shards_opts *o)
{
	ks_shards_t *s = calloc(1, sizeof(*s));

	if (s)
		s->o = *o;
	return s;
}

static void set_unref(shardset *set)
{
	int i;

	if (set && --set->refs == 0) {
		/* The series of shards no later map names (closed ones) go with their last holder. */
		for (i = 0; set->ctr && i < ks_shardmap_count(set->map); i++)
			ks_metrics_shard_release(set->metrics, set->ctr[i]);
		ks_shardmap_destroy(set->map);
		free(set->units);
		free(set->lim);
		free(set->rates);
		free(set->ctr);
		free(set->touched);
		free(set);
	}
}

void ks_shards_free_chain(ks_record *r)
{
	while (r) {
		ks_record *next = r->agg;

		ks_record_destroy(r);
		r = next;
	}
}

void ks_shards_destroy(ks_shards_t *s)
{
	int i;
	ks_record *u;

	if (!s)
		return;
	if (s->cur) {
		for (i = 0; i < ks_shardmap_count(s->cur->map); i++)
			while ((u = ks_rqueue_pop(&s->cur->units[i]))) {
				set_unref(s->cur);
				ks_shards_free_chain(u);
			}
		set_unref(s->cur);
	}
	free(s);
}

void ks_shards_set_max_record_bytes(ks_shards_t *s, size_t max_record_bytes)
{
	s->o.max_record_bytes = max_record_bytes;
}

const ks_shardmap_t *ks_shards_map(const ks_shards_t *s)
{
	return s->cur ? s->cur->map : NULL;
}

size_t ks_shards_queued(const ks_shards_t *s)
{
	return s->queued;
}

static ks_u128 hash_of(ks_record *r)
{
	if (!r->hash_key_ok) {
		r->hash_key = ks_hash_key(r->pkey, r->pkey_len);
		r->hash_key_ok = 1;
	}
	return r->hash_key;
}

/* The most an aggregate may hold: partition key plus data. */
static size_t agg_room(const ks_shards_t *s)
{
	return s->o.agg_max_bytes < s->o.max_record_bytes ? s->o.agg_max_bytes : s->o.max_record_bytes;
}

/* Whether @p n more records costing @p cost fit in open unit @p u. */
static int fits(const ks_shards_t *s, const ks_record *u, size_t n, size_t cost)
{
	return s->o.aggregate && u->unit_open && u->agg_n + 1 + n <= s->o.agg_max_records &&
	       u->pkey_len + u->agg_cost + cost <= agg_room(s);
}

/* Close @p u when nothing more can join it. */
static void close_if_full(const ks_shards_t *s, ks_record *u)
{
	if (!s->o.aggregate || u->agg_n + 1 >= s->o.agg_max_records || u->pkey_len + u->agg_cost >= agg_room(s))
		u->unit_open = 0;
}

/* Append chain @p first..@p last (@p n records costing @p cost) to unit @p u. */
static void append(ks_record *u, ks_record *first, ks_record *last, size_t n, size_t cost)
{
	ks_record *r;

	for (r = first; r; r = r->agg)
		r->unit = u;
	(u->agg_tail ? u->agg_tail : u)->agg = first;
	u->agg_tail = last;
	u->agg_n += n;
	u->agg_cost += cost;
}

/* Queue one key's records (@p g and those chained behind it) for their shard; @p solo: in a unit
 * of their own that no other key joins. */
static void add_group(ks_shards_t *s, ks_record *g, int solo)
{
	int idx = ks_shardmap_find(s->cur->map, hash_of(g));
	ks_rqueue *q = &s->cur->units[idx];
	ks_record *last = g, *r, *open = !solo && q->tail && q->tail->unit_open == OPEN_ANY ? q->tail : NULL;
	size_t n = 0, cost = ks_kpl_record_cost(g);

	for (r = g->agg; r; r = r->agg) {
		r->hash_key = g->hash_key;
		r->hash_key_ok = 1;
		cost += ks_kpl_record_cost(r);
		n++;
		last = r;
	}
	if (open && fits(s, open, n + 1, cost)) {
		append(open, g, last, n + 1, cost);
		close_if_full(s, open);
		return;
	}
	if (open)
		open->unit_open = 0;
	/* A unit of its own: the key's records, the first one heading it. */
	g->unit = g;
	g->agg_n = 0;
	g->agg_cost = AGG_BASE + ks_kpl_record_cost(g);
	g->agg_tail = NULL;
	g->unit_open = solo ? OPEN_OWN : OPEN_ANY;
	g->shardset = s->cur;
	g->shard = idx;
	s->cur->refs++;
	if (g->agg) {
		r = g->agg;
		g->agg = NULL;
		append(g, r, last, n, cost - ks_kpl_record_cost(g));
	}
	close_if_full(s, g);
	ks_rqueue_push(q, g);
	s->queued++;
}

int ks_shards_add(ks_shards_t *s, ks_record *rec)
{
	if (!s->cur)
		return KS_ERR_NOMEM;
	hash_of(rec);
	add_group(s, rec, s->solo);
	return 0;
}

void ks_shards_set_solo(ks_shards_t *s, int solo)
{
	s->solo = solo;
}

/* Take the records of @p first's key off @p *rest (in their order) and chain them behind it. */
static ks_record *take_key(ks_record *first, ks_record **rest)
{
	ks_record **pp = rest, *tail = first, *r;

	first->agg = NULL;
	while ((r = *pp)) {
		if (r->key_hash == first->key_hash && r->pkey_len == first->pkey_len &&
		    memcmp(r->pkey, first->pkey, r->pkey_len) == 0) {
			*pp = r->agg;
			tail->agg = r;
			tail = r;
			r->agg = NULL;
		} else {
			pp = &r->agg;
		}
	}
	return first;
}

static int add_chain(ks_shards_t *s, ks_record *chain, int solo)
{
	if (!s->cur) {
		ks_shards_free_chain(chain);
		return KS_ERR_NOMEM;
	}
	while (chain) {
		ks_record *first = chain;

		chain = chain->agg;
		first->agg_n = 0;
		first->agg_tail = NULL;
		hash_of(first);
		add_group(s, take_key(first, &chain), solo);
	}
	return 0;
}

int ks_shards_add_chain(ks_shards_t *s, ks_record *chain)
{
	return add_chain(s, chain, s->solo);
}

int ks_shards_add_chain_solo(ks_shards_t *s, ks_record *chain)
{
	return add_chain(s, chain, 1);
}

int ks_shards_can_join(const ks_shards_t *s, const ks_record *in, const ks_record *rec)
{
	const ks_record *u = in->unit;

	return u && u->shardset == s->cur && fits(s, u, 1, ks_kpl_record_cost(rec));
}

void ks_shards_join(ks_shards_t *s, const ks_record *in, ks_record *rec)
{
	ks_record *u = in->unit;

	rec->agg = NULL;
	rec->hash_key = in->hash_key; /* the same key's: @p in was routed by it */
	rec->hash_key_ok = in->hash_key_ok;
	append(u, rec, rec, 1, ks_kpl_record_cost(rec));
	close_if_full(s, u);
}

int ks_shards_retry(ks_shards_t *s, ks_record *unit)
{
	shardset *set = unit->shardset;
	ks_record *r;

	if (set == s->cur && set) {
		unit->unit_open = 0;
		ks_rqueue_push(&set->units[unit->shard], unit);
		s->queued++;
		return 0;
	}
	/* Its map was replaced: queued again by key, for the shards as they are now; each key's
	 * unit keeps the attempts (and so the backoff) of the unit it was in. */
	set_unref(set);
	unit->shardset = NULL;
	for (r = unit->agg; r; r = r->agg)
		r->attempts = unit->attempts;
	return ks_shards_add_chain(s, unit);
}

size_t ks_shards_extract(ks_shards_t *s, int (*take)(void *ud, ks_record *unit), void *ud, ks_rqueue *out)
{
	size_t taken = 0;
	int i;

	for (i = 0; s->cur && i < ks_shardmap_count(s->cur->map); i++) {
		ks_rqueue keep = { 0 };
		ks_record *u;

		while ((u = ks_rqueue_pop(&s->cur->units[i]))) {
			if (!take(ud, u)) {
				ks_rqueue_push(&keep, u);
				continue;
			}
			set_unref(s->cur);
			u->shardset = NULL;
			u->unit_open = 0;
			s->queued--;
			ks_rqueue_push(out, u);
			taken++;
		}
		s->cur->units[i] = keep;
	}
	return taken;
}

size_t ks_shards_unit_bytes(const ks_record *u)
{
	ks_put_entry e = { u->pkey, u->pkey_len, NULL, u->data, u->agg ? u->agg_cost : u->data_len };

	return ks_putrecords_entry_bytes(&e);
}

size_t ks_shards_take(ks_shards_t *s, int64_t now_ms, int flush, size_t max_units, ks_rqueue *out, int64_t *wake_ms)
{
	int n, i;
	size_t moved = 0;

	*wake_ms = INT64_MAX;
	if (!s->cur || !s->queued || !max_units)
		return 0;
	n = ks_shardmap_count(s->cur->map);
	for (i = 0; i < n && moved < max_units; i++) {
		int idx = (s->rr + i) % n;
		ks_rqueue *q = &s->cur->units[idx];
		ks_record *u;

		while ((u = q->head) && moved < max_units) {
			if (u->unit_open && !flush && now_ms - u->not_before_ms < s->o.linger_ms) {
				if (u->not_before_ms + s->o.linger_ms < *wake_ms)
					*wake_ms = u->not_before_ms + s->o.linger_ms;
				break;
			}
			if (s->o.rate_percent > 0 && !ks_limiter_take(&s->cur->lim[idx], ks_shards_unit_bytes(u), now_ms)) {
				int64_t w = now_ms + ks_limiter_wait_ms(&s->cur->lim[idx], ks_shards_unit_bytes(u), now_ms);

				if (w < *wake_ms)
					*wake_ms = w;
				break;
			}
			ks_rqueue_pop(q);
			u->unit_open = 0;
			/* A lone record leaves now; an aggregate keeps its first record's arrival. */
			if (!u->agg)
				u->not_before_ms = now_ms;
			ks_rqueue_push(out, u);
			s->queued--;
			moved++;
		}
	}
	s->rr = n ? (s->rr + 1) % n : 0;
	return moved;
}

/* Whether @p a and @p b list the same shards (ids and ranges, both in hash-key order). */
static int same_shards(const ks_shardmap_t *a, const ks_shardmap_t *b)
{
	int i, n = ks_shardmap_count(a);

	if (n != ks_shardmap_count(b))
		return 0;
	for (i = 0; i < n; i++) {
		const ks_shard *x = ks_shardmap_shard(a, i), *y = ks_shardmap_shard(b, i);

		if (x->start != y->start || x->end != y->end || strcmp(x->id, y->id) != 0)
			return 0;
	}
	return 1;
}

int ks_shards_set_map(ks_shards_t *s, ks_shardmap_t *map, int64_t now_ms)
{
	shardset *set, *old = s->cur;
	int n = ks_shardmap_count(map), i, j = 0;
	ks_record *chain = NULL, **tail = &chain, *u;

	/* The same shards as the map in use: nothing to route again. */
	if (old && same_shards(old->map, map)) {
		ks_shardmap_destroy(map);
		return 0;
	}
	set = calloc(1, sizeof(*set));
	if (!set || !(set->units = calloc((size_t)(n ? n : 1), sizeof(*set->units))) ||
	    !(set->lim = calloc((size_t)(n ? n : 1), sizeof(*set->lim))) ||
	    !(set->rates = calloc((size_t)(n ? n : 1), sizeof(*set->rates))) ||
	    !(set->ctr = calloc((size_t)(n ? n : 1), sizeof(*set->ctr))) ||
	    !(set->touched = calloc((size_t)(n ? n : 1), sizeof(*set->touched)))) {
		if (set) {
			free(set->units);
			free(set->lim);
			free(set->rates);
			free(set->ctr);
			free(set);
		}
		ks_shardmap_destroy(map);
		return KS_ERR_NOMEM;
	}
	set->map = map;
	set->refs = 1;
	set->metrics = s->o.metrics;
	for (i = 0; i < n; i++) {
		const ks_shard *sh = ks_shardmap_shard(map, i);
		int was = -1;

		/* Both maps are in hash-key order: a shard that stays starts where it did. */
		while (old && j < ks_shardmap_count(old->map) && ks_shardmap_shard(old->map, j)->start < sh->start)
			j++;
		if (old && j < ks_shardmap_count(old->map) && strcmp(ks_shardmap_shard(old->map, j)->id, sh->id) == 0)
			was = j;
		if (was >= 0) {
			set->lim[i] = old->lim[was];
			set->rates[i] = old->rates[was];
			set->rates[i].answered = set->rates[i].throttled = 0;
		} else {
			ks_limiter_init(&set->lim[i], s->o.rate_percent > 0 ? s->o.rate_percent : 100.0, now_ms);
			ks_shardrate_init(&set->rates[i].records, set->lim[i].records.rate, now_ms);
			ks_shardrate_init(&set->rates[i].bytes, set->lim[i].bytes.rate, now_ms);
		}
		set->ctr[i] = ks_metrics_shard_hold(s->o.metrics, s->o.stream ? s->o.stream : "", sh->id);
		if (s->o.rate_percent > 0)
			ks_metrics_shard_rate(set->ctr[i], set->rates[i].records.rate, set->rates[i].bytes.rate);
		/* Taken tokens reach the service later (the ready queue, the requests in flight). */
		ks_limiter_reserve(&set->lim[i], LIMIT_RESERVE_S);
	}
	/* The queued units, taken apart in shard order: each key's records stay in their order. */
	for (i = 0; old && i < ks_shardmap_count(old->map); i++)
		while ((u = ks_rqueue_pop(&old->units[i]))) {
			ks_record *r;

			set_unref(old);
			u->shardset = NULL;
			s->queued--;
			*tail = u;
			for (r = u; r->agg; r = r->agg)
				;
			tail = &r->agg;
		}
	s->cur = set;
	if (old) {
		free(old->units);
		free(old->lim);
		free(old->rates);
		free(old->touched);
		old->touched = NULL;
		old->ntouched = 0;
		old->units = NULL;
		old->lim = NULL;
		old->rates = NULL;
		set_unref(old);
	}
	return ks_shards_add_chain(s, chain);
}

void ks_shards_hash_key(const ks_record *unit, char out[KS_U128_STRLEN])
{
	ks_u128_format(unit->hash_key, out);
}

const char *ks_shards_predicted(const ks_record *unit)
{
	const shardset *set = unit->shardset;

	return set ? ks_shardmap_shard(set->map, unit->shard)->id : "";
}

void ks_shards_refund(ks_shards_t *s, const ks_record *unit, size_t exact_bytes)
{
	size_t charged = ks_shards_unit_bytes(unit);

	ks_bucket *b;

	if (s->o.rate_percent <= 0 || unit->shardset != s->cur || !s->cur || exact_bytes >= charged)
		return;
	/* As if only the exact bytes had been taken: never over what the bucket holds. */
	b = &s->cur->lim[unit->shard].bytes;
	b->tokens += (double)(charged - exact_bytes);
	if (b->tokens > b->cap)
		b->tokens = b->cap;
}

void ks_shards_split(ks_record *unit, ks_u128 start, ks_u128 end, ks_record **outside)
{
	ks_record **pp, *r, *last = unit, **otail = outside;

	*outside = NULL;
	for (pp = &unit->agg; (r = *pp);) {
		ks_u128 h = hash_of(r);

		if (h >= start && h <= end) {
			last = r;
			pp = &r->agg;
			continue;
		}
		*pp = r->agg;
		unit->agg_n--;
		r->agg = NULL;
		r->unit = NULL;
		*otail = r;
		otail = &r->agg;
	}
	unit->agg_tail = unit->agg ? last : NULL;
}

void ks_shards_keep_first_key(ks_record *unit, ks_record **outside)
{
	ks_u128 h = hash_of(unit);

	ks_shards_split(unit, h, h, outside);
}

void ks_shards_unit_done(ks_shards_t *s, ks_record *unit)
{
	(void)s;
	set_unref(unit->shardset);
	unit->shardset = NULL;
}

/* The buckets of shard @p i follow its adaptive rates. */
static void apply_rates(ks_shards_t *s, int i, int64_t now_ms)
{
	rates *r = &s->cur->rates[i];

	ks_bucket_set_rate(&s->cur->lim[i].records, r->records.rate, now_ms);
	ks_bucket_set_rate(&s->cur->lim[i].bytes, r->bytes.rate, now_ms);
	ks_metrics_shard_rate(s->cur->ctr[i], r->records.rate, r->bytes.rate);
}

/* Whether @p unit's answer speaks of a shard whose rates are in use. */
static int rated(const ks_shards_t *s, const ks_record *unit)
{
	return s->o.rate_percent > 0 && s->cur && unit->shardset == s->cur;
}

void ks_shards_answered(ks_shards_t *s, const ks_record *unit, int throttled)
{
	rates *r;

	if (!rated(s, unit))
		return;
	r = &s->cur->rates[unit->shard];
	if (!r->answered++)
		s->cur->touched[s->cur->ntouched++] = unit->shard;
	r->throttled += throttled != 0;
}

void ks_shards_answer_done(ks_shards_t *s, int64_t now_ms)
{
	int j;

	for (j = 0; s->cur && s->cur->touched && j < s->cur->ntouched; j++) {
		int i = s->cur->touched[j];
		rates *r = &s->cur->rates[i];
		int changed;

		if (r->throttled) {
			double share = (double)r->throttled / (double)r->answered;

			/* Which limit bound is not said: both rates go down. */
			changed = ks_shardrate_throttled(&r->records, share, now_ms) |
				  ks_shardrate_throttled(&r->bytes, share, now_ms);
		} else {
			changed = ks_shardrate_accepted(&r->records, now_ms) | ks_shardrate_accepted(&r->bytes, now_ms);
		}
		if (changed)
			apply_rates(s, i, now_ms);
		r->answered = r->throttled = 0;
	}
	if (s->cur)
		s->cur->ntouched = 0;
}

int ks_shards_rate(const ks_shards_t *s, const char *id, double *records_per_s, double *bytes_per_s)
{
	int i = s->cur ? ks_shardmap_index_of(s->cur->map, id) : -1;

	if (i < 0)
		return 0;
	*records_per_s = s->cur->rates[i].records.rate;
	*bytes_per_s = s->cur->rates[i].bytes.rate;
	return 1;
}

struct ks_shard_counters *ks_shards_counters_of(const ks_shards_t *s, const char *id, ks_u128 start)
{
	int i = s->cur ? ks_shardmap_find(s->cur->map, start) : -1;

	return i >= 0 && strcmp(ks_shardmap_shard(s->cur->map, i)->id, id) == 0 ? s->cur->ctr[i] : NULL;
}

struct ks_shard_counters *ks_shards_counters(const ks_record *unit)
{
	const shardset *set = unit->shardset;

	return set && set->ctr ? set->ctr[unit->shard] : NULL;
}
