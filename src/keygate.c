/*
 * The per-key gate: an open-addressing hash table (linear probing, no tombstones) of the keys
 * that have an active record, each with the FIFO of the records waiting behind it.
 */
#include "keygate.h"

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

/* One partition key the gate holds: its active record and the ones waiting behind it. */
typedef struct kslot {
	uint64_t hash;
	const ks_record *active;  /* NULL: empty slot */
	ks_rqueue waiting;
} kslot;

struct ks_keygate {
	kslot *keys;
	size_t cap, n;
	size_t waiting;
};

static kslot *key_find(const ks_keygate_t *g, const ks_record *r)
{
	size_t mask = g->cap - 1, i = (size_t)r->key_hash & mask;

	for (;; i = (i + 1) & mask) {
		kslot *s = &g->keys[i];

		if (!s->active)
			return s;
		if (s->hash == r->key_hash && s->active->pkey_len == r->pkey_len &&
		    memcmp(s->active->pkey, r->pkey, r->pkey_len) == 0)
			return s;
	}
}

static int key_grow(ks_keygate_t *g)
{
	size_t ncap = g->cap ? g->cap * 2 : 1024, i;
	kslot *old = g->keys, *n = calloc(ncap, sizeof(*n));
	size_t ocap = g->cap;

	if (!n)
		return KS_ERR_NOMEM;
	g->keys = n;
	g->cap = ncap;
	for (i = 0; i < ocap; i++)
		if (old[i].active)
			*key_find(g, old[i].active) = old[i];
	free(old);
	return 0;
}

/* Remove a slot with backward-shift deletion (linear probing keeps no tombstones). */
static void key_remove(ks_keygate_t *g, kslot *s)
{
	size_t mask = g->cap - 1, i = (size_t)(s - g->keys), j = i;

	for (;;) {
		size_t home;

		j = (j + 1) & mask;
		if (!g->keys[j].active)
			break;
		home = (size_t)g->keys[j].hash & mask;
		/* Move j into the hole at i when its home is not cyclically in (i, j]. */
		if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
			g->keys[i] = g->keys[j];
			i = j;
		}
	}
	memset(&g->keys[i], 0, sizeof(g->keys[i]));
	g->n--;
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
	for (i = 0; i < g->cap; i++)
		while ((r = ks_rqueue_pop(&g->keys[i].waiting)))
			ks_record_destroy(r);
	free(g->keys);
	free(g);
}

int ks_keygate_admit(ks_keygate_t *g, ks_record *rec)
{
	kslot *s;

	if (g->n * 2 >= g->cap && key_grow(g))
		return KS_ERR_NOMEM;
	s = key_find(g, rec);
	if (s->active) {
		/* Its key is busy: wait behind the records of that key. */
		ks_rqueue_push(&s->waiting, rec);
		g->waiting++;
		return 0;
	}
	s->hash = rec->key_hash;
	s->active = rec;
	g->n++;
	return 1;
}

ks_record *ks_keygate_release(ks_keygate_t *g, const ks_record *rec)
{
	kslot *s = key_find(g, rec);
	ks_record *next;

	if (s->active != rec)
		return NULL;
	if (!(next = ks_rqueue_pop(&s->waiting))) {
		key_remove(g, s);
		return NULL;
	}
	g->waiting--;
	s->active = next;
	return next;
}

size_t ks_keygate_gather(ks_keygate_t *g, ks_record *head, size_t room)
{
	kslot *s = key_find(g, head);
	ks_record *tail = head;
	size_t cost = KS_KPL_OVERHEAD + head->pkey_len + 16 + ks_kpl_record_cost(head), joined = 0;

	/* An aggregate goes as it was first made: nobody joins it later. */
	if (s->active != head || head->agg)
		return 0;
	while (s->waiting.head) {
		size_t more = ks_kpl_record_cost(s->waiting.head);

		if (head->pkey_len + cost + more > KS_MAX_RECORD_BYTES || head->pkey_len + cost + more > room)
			break;
		tail->agg = ks_rqueue_pop(&s->waiting);
		tail = tail->agg;
		tail->agg = NULL;
		cost += more;
		head->agg_n++;
		g->waiting--;
		joined++;
	}
	if (head->agg)
		head->agg_cost = cost;
	return joined;
}

size_t ks_keygate_keys(const ks_keygate_t *g)
{
	return g->n;
}

size_t ks_keygate_waiting(const ks_keygate_t *g)
{
	return g->waiting;
}
