/*
 * The per-key gate: an open-addressing hash table (linear probing, no tombstones) of the keys
 * that have an active record, and a second one of the FIFOs of the records waiting behind them.
 */
#include "keygate.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kpl.h"

void ks_rqueue_push(ks_rqueue *q, ks_record *r)
{
	r->next = NULL;
	if (q->tail)
		q->tail->next = r;
	else
		q->head = r;
	q->tail = r;
	q->n++;
	q->bytes += r->pkey_len + r->data_len;
}

ks_record *ks_rqueue_pop(ks_rqueue *q)
{
	ks_record *r = q->head;

	if (!r)
		return NULL;
	q->head = r->next;
	if (!q->head)
		q->tail = NULL;
	r->next = NULL;
	q->n--;
	q->bytes -= r->pkey_len + r->data_len;
	return r;
}

/*
 * The table of keys is what every record touches twice (admit and release), so its slots are
 * small: the key's hash and its active record, whose lowest pointer bit says that records wait
 * behind it (records are malloc'd, so that bit is otherwise 0). The FIFOs of the waiting records
 * are in a second table of only the keys that have some, looked at only when that bit is set.
 */
#define WAITERS ((uintptr_t)1)

typedef struct kslot {
	uint64_t hash;
	uintptr_t active;     /* the active record | WAITERS; 0: empty slot */
} kslot;

/* The records waiting behind one key's active record (all of that key). */
typedef struct wslot {
	uint64_t hash;
	ks_rqueue waiting;    /* head NULL: empty slot */
} wslot;

struct ks_keygate {
	kslot *keys;
	size_t cap, n;
	wslot *waits;
	size_t wcap, wn;
	size_t waiting;
};

static const ks_record *active_of(const kslot *s)
{
	return (const ks_record *)(s->active & ~WAITERS);
}

static int same_key(const ks_record *a, const ks_record *r)
{
	return a == r || (a->pkey_len == r->pkey_len && memcmp(a->pkey, r->pkey, r->pkey_len) == 0);
}

/* The slot of @p r's key, or the empty slot where it would go. */
static kslot *key_find(const ks_keygate_t *g, const ks_record *r)
{
	size_t mask = g->cap - 1, i = (size_t)r->key_hash & mask;

	for (;; i = (i + 1) & mask) {
		kslot *s = &g->keys[i];

		if (!s->active || (s->hash == r->key_hash && same_key(active_of(s), r)))
			return s;
	}
}

static wslot *wait_find(const ks_keygate_t *g, const ks_record *r)
{
	size_t mask = g->wcap - 1, i = (size_t)r->key_hash & mask;

	for (;; i = (i + 1) & mask) {
		wslot *w = &g->waits[i];

		if (!w->waiting.head || (w->hash == r->key_hash && same_key(w->waiting.head, r)))
			return w;
	}
}

static int key_grow(ks_keygate_t *g)
{
	size_t ncap = g->cap ? g->cap * 2 : 1024, i, ocap = g->cap;
	kslot *old = g->keys, *n = calloc(ncap, sizeof(*n));

	if (!n)
		return KS_ERR_NOMEM;
	g->keys = n;
	g->cap = ncap;
	for (i = 0; i < ocap; i++)
		if (old[i].active)
			*key_find(g, active_of(&old[i])) = old[i];
	free(old);
	return 0;
}

static int wait_grow(ks_keygate_t *g)
{
	size_t ncap = g->wcap ? g->wcap * 2 : 64, i, ocap = g->wcap;
	wslot *old = g->waits, *n = calloc(ncap, sizeof(*n));

	if (!n)
		return KS_ERR_NOMEM;
	g->waits = n;
	g->wcap = ncap;
	for (i = 0; i < ocap; i++)
		if (old[i].waiting.head)
			*wait_find(g, old[i].waiting.head) = old[i];
	free(old);
	return 0;
}

/* Whether the entry at @p j, whose home is @p home, may move into the hole at @p i: its home is
 * not cyclically in (i, j]. Linear probing's backward-shift deletion, which keeps no tombstones. */
static int may_fill(size_t i, size_t j, size_t home)
{
	return (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j);
}

static void key_remove(ks_keygate_t *g, kslot *s)
{
	size_t mask = g->cap - 1, i = (size_t)(s - g->keys), j = i;

	for (;;) {
		j = (j + 1) & mask;
		if (!g->keys[j].active)
			break;
		if (may_fill(i, j, (size_t)g->keys[j].hash & mask)) {
			g->keys[i] = g->keys[j];
			i = j;
		}
	}
	memset(&g->keys[i], 0, sizeof(g->keys[i]));
	g->n--;
}

static void wait_remove(ks_keygate_t *g, wslot *w)
{
	size_t mask = g->wcap - 1, i = (size_t)(w - g->waits), j = i;

	for (;;) {
		j = (j + 1) & mask;
		if (!g->waits[j].waiting.head)
			break;
		if (may_fill(i, j, (size_t)g->waits[j].hash & mask)) {
			g->waits[i] = g->waits[j];
			i = j;
		}
	}
	memset(&g->waits[i], 0, sizeof(g->waits[i]));
	g->wn--;
}

ks_keygate_t *ks_keygate_new(void)
{
	ks_keygate_t *g = calloc(1, sizeof(*g));

	if (g && key_grow(g)) {
		free(g);
		return NULL;
	}
	return g;
}

void ks_keygate_destroy(ks_keygate_t *g)
{
	size_t i;
	ks_record *r;

	if (!g)
		return;
	for (i = 0; i < g->wcap; i++)
		while ((r = ks_rqueue_pop(&g->waits[i].waiting)))
			ks_record_destroy(r);
	free(g->waits);
	free(g->keys);
	free(g);
}

int ks_keygate_admit(ks_keygate_t *g, ks_record *rec)
{
	kslot *s;
	wslot *w;

	if (g->n * 2 >= g->cap && key_grow(g))
		return KS_ERR_NOMEM;
	s = key_find(g, rec);
	if (!s->active) {
		s->hash = rec->key_hash;
		s->active = (uintptr_t)rec;
		g->n++;
		return 1;
	}
	/* Its key is busy: wait behind the records of that key. */
	if (g->wn * 2 >= g->wcap && wait_grow(g))
		return KS_ERR_NOMEM;
	w = wait_find(g, rec);
	if (!w->waiting.head) {
		w->hash = rec->key_hash;
		g->wn++;
	}
	ks_rqueue_push(&w->waiting, rec);
	s->active |= WAITERS;
	g->waiting++;
	return 0;
}

/* The FIFO of the records waiting behind @p s's active record (its WAITERS bit is set). */
static wslot *waiters_of(ks_keygate_t *g, const kslot *s)
{
	return wait_find(g, active_of(s));
}

/* @p w gave up its last record: the key has no waiters any more. */
static void waiters_gone(ks_keygate_t *g, kslot *s, wslot *w)
{
	wait_remove(g, w);
	s->active &= ~WAITERS;
}

ks_record *ks_keygate_release(ks_keygate_t *g, const ks_record *rec)
{
	kslot *s = key_find(g, rec);
	ks_record *next;
	wslot *w;

	if (active_of(s) != rec)
		return NULL;
	if (!(s->active & WAITERS)) {
		key_remove(g, s);
		return NULL;
	}
	w = waiters_of(g, s);
	next = ks_rqueue_pop(&w->waiting);
	g->waiting--;
	s->active = (uintptr_t)next | WAITERS;
	if (!w->waiting.head)
		waiters_gone(g, s, w);
	return next;
}

size_t ks_keygate_gather(ks_keygate_t *g, ks_record *head, size_t room)
{
	kslot *s = key_find(g, head);
	ks_record *tail = head;
	size_t cost = KS_KPL_OVERHEAD + head->pkey_len + 16 + ks_kpl_record_cost(head), joined = 0;
	wslot *w;

	/* An aggregate goes as it was first made: nobody joins it later. */
	if (active_of(s) != head || head->agg || !(s->active & WAITERS))
		return 0;
	w = waiters_of(g, s);
	while (w->waiting.head) {
		size_t more = ks_kpl_record_cost(w->waiting.head);

		if (head->pkey_len + cost + more > KS_MAX_RECORD_BYTES || head->pkey_len + cost + more > room)
			break;
		tail->agg = ks_rqueue_pop(&w->waiting);
		tail = tail->agg;
		tail->agg = NULL;
		cost += more;
		head->agg_n++;
		g->waiting--;
		joined++;
	}
	if (!w->waiting.head)
		waiters_gone(g, s, w);
	if (head->agg)
		head->agg_cost = cost;
	return joined;
}

ks_record *ks_keygate_active(const ks_keygate_t *g, const ks_record *rec)
{
	const kslot *s = key_find(g, rec);

	return (ks_record *)active_of(s);
}

ks_record *ks_keygate_take_waiting(ks_keygate_t *g, const ks_record *active)
{
	kslot *s = key_find(g, active);
	ks_record *r;
	wslot *w;

	if (active_of(s) != active || !(s->active & WAITERS))
		return NULL;
	w = waiters_of(g, s);
	r = ks_rqueue_pop(&w->waiting);
	g->waiting--;
	if (!w->waiting.head)
		waiters_gone(g, s, w);
	return r;
}

const ks_record *ks_keygate_peek_waiting(const ks_keygate_t *g, const ks_record *active)
{
	const kslot *s = key_find(g, active);

	if (active_of(s) != active || !(s->active & WAITERS))
		return NULL;
	return wait_find(g, active)->waiting.head;
}

size_t ks_keygate_take_matching(ks_keygate_t *g, ks_record_pred match, void *ud, ks_rqueue *out)
{
	size_t i = 0, taken = 0;

	while (i < g->wcap) {
		wslot *w = &g->waits[i];
		ks_rqueue keep = { 0 };
		ks_record *r, *gone = NULL;

		if (!w->waiting.head) {
			i++;
			continue;
		}
		while ((r = ks_rqueue_pop(&w->waiting))) {
			if (match(ud, r)) {
				gone = r;
				ks_rqueue_push(out, r);
				g->waiting--;
				taken++;
			} else {
				ks_rqueue_push(&keep, r);
			}
		}
		if (keep.head) {
			w->waiting = keep;
			i++;
			continue;
		}
		/* Its key has no waiters any more. The backward shift may move a later slot (not seen
		 * yet, or seen already when the run wraps around: filtering it again changes nothing)
		 * into this one, so it is looked at again. */
		key_find(g, gone)->active &= ~WAITERS;
		wait_remove(g, w);
	}
	return taken;
}

int ks_keygate_pass_active(ks_keygate_t *g, const ks_record *from, ks_record *to)
{
	kslot *s = key_find(g, from);

	if (active_of(s) != from)
		return -1;
	/* The waiters' slot is found by the key, which @p to shares. */
	s->active = (uintptr_t)to | (s->active & WAITERS);
	return 0;
}

/* How many records ahead the table slot of a key is prefetched. */
#define PREFETCH_AHEAD 8

int ks_keygate_admit_queue(ks_keygate_t *g, ks_rqueue *in, ks_rqueue *ready)
{
	ks_record *ahead = in->head, *r;
	int i, rc;

	for (i = 0; ahead && i < PREFETCH_AHEAD; i++, ahead = ahead->next)
		ks_keygate_prefetch(g, ahead);
	while ((r = in->head)) {
		ks_record *next = r->next;

		if (ahead) {
			ks_keygate_prefetch(g, ahead);
			ahead = ahead->next;
		}
		if ((rc = ks_keygate_admit(g, r)) < 0)
			return rc; /* still the head of @p in */
		/* Taken off @p in by hand: a record that waits in the gate was relinked already. */
		in->head = next;
		if (!next)
			in->tail = NULL;
		in->n--;
		in->bytes -= r->pkey_len + r->data_len;
		if (rc == 1)
			ks_rqueue_push(ready, r);
	}
	return 0;
}

void ks_keygate_prefetch(const ks_keygate_t *g, const ks_record *rec)
{
	__builtin_prefetch(&g->keys[(size_t)rec->key_hash & (g->cap - 1)]);
}

size_t ks_keygate_keys(const ks_keygate_t *g)
{
	return g->n;
}

size_t ks_keygate_waiting(const ks_keygate_t *g)
{
	return g->waiting;
}
