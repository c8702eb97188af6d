/*
 * Offsets: a ring of {offset, pending} entries per partition, in offset order. Acks decrement
 * an entry's pending count (found by binary search); done entries are popped from the front,
 * and the committable offset is the first entry still pending, or the last tracked offset + 1.
 */
#include "offsets.h"

#include <stdlib.h>
#include <string.h>

typedef struct entry {
	int64_t offset;
	int32_t pending;
} entry;

struct ks_ptrack {
	char *topic;
	int32_t partition;
	entry *ring;
	size_t cap, head, n;
	int64_t last_tracked;  /* -1: none */
	int64_t last_acked;
	int64_t outstanding;   /* acks still expected over all entries */
	int released;
	ks_ptrack_state state;
};

ks_ptrack_t *ks_ptrack_new(const char *topic, int32_t partition)
{
	ks_ptrack_t *p = calloc(1, sizeof(*p));

	if (!p || !(p->topic = strdup(topic))) {
		free(p);
		return NULL;
	}
	p->partition = partition;
	p->last_tracked = -1;
	p->last_acked = -1;
	p->state.committed = -1;
	p->state.commit_sent = -1;
	return p;
}

void ks_ptrack_destroy(ks_ptrack_t *p)
{
	if (!p)
		return;
	free(p->ring);
	free(p->topic);
	free(p);
}

void ks_ptrack_release(ks_ptrack_t *p)
{
	if (p)
		p->released = 1;
}

int64_t ks_ptrack_pending_acks(const ks_ptrack_t *p)
{
	return p->outstanding;
}

static entry *at(const ks_ptrack_t *p, size_t i)
{
	return &p->ring[(p->head + i) & (p->cap - 1)];
}

static void pop_done(ks_ptrack_t *p)
{
	while (p->n && at(p, 0)->pending <= 0) {
		p->head = (p->head + 1) & (p->cap - 1);
		p->n--;
	}
}

int ks_ptrack_add(ks_ptrack_t *p, int64_t offset, int pending)
{
	if (offset <= p->last_tracked)
		return KS_ERR_CONFIG;
	p->last_tracked = offset;
	if (pending <= 0 && p->n == 0)
		return 0; /* done at once, nothing earlier pending: no entry needed */
	if (p->n == p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : 256, i;
		entry *nr = malloc(ncap * sizeof(*nr));

		if (!nr)
			return KS_ERR_NOMEM;
		for (i = 0; i < p->n; i++)
			nr[i] = *at(p, i);
		free(p->ring);
		p->ring = nr;
		p->cap = ncap;
		p->head = 0;
	}
	p->ring[(p->head + p->n) & (p->cap - 1)] = (entry){ offset, pending };
	p->n++;
	p->outstanding += pending > 0 ? pending : 0;
	return 0;
}

static entry *find(ks_ptrack_t *p, int64_t offset)
{
	size_t lo = 0, hi = p->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		entry *e = at(p, mid);

		if (e->offset == offset)
			return e;
		if (e->offset < offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

void ks_ptrack_ack(ks_ptrack_t *p, int64_t offset)
{
	entry *e = find(p, offset);

	if (!e || e->pending <= 0)
		return;
	e->pending--;
	p->outstanding--;
	if (offset > p->last_acked)
		p->last_acked = offset;
	pop_done(p);
}

void ks_ptrack_drop(ks_ptrack_t *p, int64_t offset)
{
	entry *e = find(p, offset);

	if (!e || e->pending <= 0)
		return;
	/* Never done: the offset stays pending, only the expectation of an ack goes. */
	p->outstanding--;
}

int64_t ks_ptrack_committable(const ks_ptrack_t *p)
{
	if (p->n)
		return at(p, 0)->offset;
	return p->last_tracked >= 0 ? p->last_tracked + 1 : -1;
}

const char *ks_ptrack_topic(const ks_ptrack_t *p)
{
	return p->topic;
}

int32_t ks_ptrack_partition(const ks_ptrack_t *p)
{
	return p->partition;
}

int ks_ptrack_released(const ks_ptrack_t *p)
{
	return p->released;
}

int64_t ks_ptrack_last_acked(const ks_ptrack_t *p)
{
	return p->last_acked;
}

ks_ptrack_state *ks_ptrack_state_of(ks_ptrack_t *p)
{
	return &p->state;
}
