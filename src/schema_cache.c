/*
 * The fetch-once cache of the schema registry clients. The slots are behind a mutex, and an id
 * being fetched has a pending slot, so a second caller asking for it waits for that fetch
 * instead of starting its own. A fetch that failed takes its slot out of the cache at once (the
 * next caller asking for the id fetches again) and leaves its error in the slot for the callers
 * that waited; the last of them frees it. Entries never change once in a slot that is not
 * pending, and live as long as the cache, so the pointers handed out need no lock to read.
 */
#include "schema_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct slot {
	void *entry;          /* set before pending drops to 0, then never changed; NULL when the fetch failed */
	int pending;          /* 1 while one caller fetches it: the others wait on `fetched` */
	int waiters;          /* callers waiting for this fetch */
	int rc;               /* the fetch failed: its error, for the waiters (the slot left the cache) */
	ks_errbuf err;
	unsigned char id[];   /* the cache's id_len bytes */
} slot;

struct ks_schema_cache {
	size_t id_len;
	ks_schema_cache_free_fn *free_entry;
	pthread_mutex_t mu;   /* guards slots, n, cap and each slot's pending, waiters, rc, err */
	pthread_cond_t fetched;
	slot **slots;
	size_t n, cap;
};

static void slot_free(ks_schema_cache_t *c, slot *s)
{
	if (!s)
		return;
	if (s->entry)
		c->free_entry(s->entry);
	free(s);
}

static slot *slot_new(ks_schema_cache_t *c, const void *id)
{
	slot *s = calloc(1, sizeof(*s) + c->id_len);

	if (s)
		memcpy(s->id, id, c->id_len);
	return s;
}

ks_schema_cache_t *ks_schema_cache_new(size_t id_len, ks_schema_cache_free_fn *free_entry)
{
	ks_schema_cache_t *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->id_len = id_len;
	c->free_entry = free_entry;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->fetched, NULL);
	return c;
}

void ks_schema_cache_destroy(ks_schema_cache_t *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < c->n; i++)
		slot_free(c, c->slots[i]);
	free(c->slots);
	pthread_cond_destroy(&c->fetched);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

/* With c->mu held. */
static slot *lookup(ks_schema_cache_t *c, const void *id)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		if (memcmp(c->slots[i]->id, id, c->id_len) == 0)
			return c->slots[i];
	return NULL;
}

/* With c->mu held: @p s joins the cache (it is freed when that fails). */
static int add(ks_schema_cache_t *c, slot *s, ks_errbuf *err)
{
	if (c->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 16;
		slot **ns = realloc(c->slots, ncap * sizeof(*ns));

		if (!ns) {
			slot_free(c, s);
			return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory caching a schema");
		}
		c->slots = ns;
		c->cap = ncap;
	}
	c->slots[c->n++] = s;
	return 0;
}

/* With c->mu held: take @p s out of the cache (a pending slot whose fetch failed). */
static void drop(ks_schema_cache_t *c, slot *s)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		if (c->slots[i] == s) {
			c->slots[i] = c->slots[--c->n];
			break;
		}
}

int ks_schema_cache_put(ks_schema_cache_t *c, const void *id, void *entry, ks_errbuf *err)
{
	slot *s = slot_new(c, id);
	int rc = 0;

	if (!s) {
		c->free_entry(entry);
		return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
	}
	s->entry = entry;
	pthread_mutex_lock(&c->mu);
	if (lookup(c, id))
		slot_free(c, s);
	else
		rc = add(c, s, err);
	pthread_mutex_unlock(&c->mu);
	return rc;
}

/* With c->mu held: wait for the fetch of @p s by another caller and take its outcome. */
static int wait_fetch(ks_schema_cache_t *c, slot *s, void **out, ks_errbuf *err)
{
	int rc;

	s->waiters++;
	while (s->pending)
		pthread_cond_wait(&c->fetched, &c->mu);
	s->waiters--;
	if (!(rc = s->rc)) {
		*out = s->entry;
		return 0;
	}
	if (err)
		*err = s->err;
	if (!s->waiters)
		slot_free(c, s); /* out of the cache already; the last waiter frees it */
	return rc;
}

int ks_schema_cache_get(ks_schema_cache_t *c, const void *id, ks_schema_cache_fetch_fn *fetch, void *opaque,
			void **out, ks_errbuf *err)
{
	void *entry = NULL;
	ks_errbuf ferr;
	slot *s;
	int rc;

	*out = NULL;
	pthread_mutex_lock(&c->mu);
	if ((s = lookup(c, id))) {
		if (s->pending) {
			rc = wait_fetch(c, s, out, err);
		} else {
			*out = s->entry;
			rc = 0;
		}
		pthread_mutex_unlock(&c->mu);
		return rc;
	}
	/* Not cached and nobody fetching it: this caller fetches, the others wait for it. */
	if (!(s = slot_new(c, id))) {
		pthread_mutex_unlock(&c->mu);
		return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
	}
	s->pending = 1;
	if ((rc = add(c, s, err))) {
		pthread_mutex_unlock(&c->mu);
		return rc;
	}
	pthread_mutex_unlock(&c->mu);

	ks_errbuf_clear(&ferr);
	rc = fetch(opaque, s->id, &entry, &ferr);

	pthread_mutex_lock(&c->mu);
	s->pending = 0;
	if (rc) {
		/* Nothing cached: the waiters get this error, the next caller asking for this id fetches again. */
		drop(c, s);
		s->rc = rc;
		s->err = ferr;
		if (err)
			*err = ferr;
	} else {
		s->entry = entry;
		*out = entry;
	}
	pthread_cond_broadcast(&c->fetched);
	if (rc && !s->waiters)
		slot_free(c, s);
	pthread_mutex_unlock(&c->mu);
	return rc;
}
