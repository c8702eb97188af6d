/*
 * Arena: the jansson values of one message come from a lane's chunks and go back all at once.
 * Decoding a message builds a tree of small jansson objects, freed right after its records are
 * written; with malloc each one is a malloc and a free, and the lanes' frees contend in glibc.
 *
 * json_set_alloc_funcs is process-wide, so the choice is made per call from a thread-local
 * pointer: set only by a lane around one message, NULL everywhere else (librdkafka's threads,
 * the Schema Registry client, the dead-letter writer, the configuration), where jansson gets
 * malloc and free unchanged. A free looks whether the pointer lies in one of the open arena's
 * chunks (one, as a rule); if not, it is malloc's. Values allocated before the install are
 * malloc's too, so the install may come at any time.
 */
#include "arena.h"

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#define ALIGN 16
#define FIRST_CHUNK (64 * 1024)

typedef struct chunk {
	struct chunk *next;
	size_t size; /* bytes of data after the header */
} chunk;

/* The header is padded so the data that follows it is ALIGN-aligned. */
#define HDR ((sizeof(chunk) + ALIGN - 1) & ~(size_t)(ALIGN - 1))

struct ks_arena {
	chunk *chunks;    /* newest first; the last one is the base kept between messages */
	char *cur, *lim;  /* free space in chunks */
	size_t keep;
	size_t used;      /* handed out in this window */
};

static __thread ks_arena_t *open_arena;

static chunk *chunk_new(size_t size)
{
	chunk *c = malloc(HDR + size);

	if (c) {
		c->next = NULL;
		c->size = size;
	}
	return c;
}

static char *chunk_data(chunk *c)
{
	return (char *)c + HDR;
}

ks_arena_t *ks_arena_new(size_t keep)
{
	ks_arena_t *a = calloc(1, sizeof(*a));

	if (!a || !(a->chunks = chunk_new(FIRST_CHUNK))) {
		free(a);
		return NULL;
	}
	a->keep = keep < FIRST_CHUNK ? FIRST_CHUNK : keep;
	a->cur = chunk_data(a->chunks);
	a->lim = a->cur + FIRST_CHUNK;
	return a;
}

void ks_arena_destroy(ks_arena_t *a)
{
	chunk *c, *next;

	if (!a)
		return;
	for (c = a->chunks; c; c = next) {
		next = c->next;
		free(c);
	}
	free(a);
}

static void *arena_alloc(ks_arena_t *a, size_t n)
{
	size_t need;
	void *p;

	if (n > SIZE_MAX / 4)
		return NULL; /* malloc's to refuse */
	need = n ? (n + ALIGN - 1) & ~(size_t)(ALIGN - 1) : ALIGN;
	if ((size_t)(a->lim - a->cur) < need) {
		size_t size = a->chunks->size * 2;
		chunk *c;

		if (size < need)
			size = need;
		if (!(c = chunk_new(size)))
			return NULL;
		c->next = a->chunks;
		a->chunks = c;
		a->cur = chunk_data(c);
		a->lim = a->cur + size;
	}
	p = a->cur;
	a->cur += need;
	a->used += need;
	return p;
}

static int owns(const ks_arena_t *a, const void *p)
{
	const chunk *c;

	for (c = a->chunks; c; c = c->next) {
		const char *d = (const char *)c + HDR;

		if ((const char *)p >= d && (const char *)p < d + c->size)
			return 1;
	}
	return 0;
}

static void *ks_json_malloc(size_t n)
{
	ks_arena_t *a = open_arena;
	void *p;

	if (a && (p = arena_alloc(a, n)))
		return p;
	return malloc(n);
}

static void ks_json_free(void *p)
{
	ks_arena_t *a = open_arena;

	if (p && a && owns(a, p))
		return;
	free(p);
}

static void install(void)
{
	json_set_alloc_funcs(ks_json_malloc, ks_json_free);
}

void ks_arena_install(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, install);
}

void ks_arena_begin(ks_arena_t *a)
{
	open_arena = a;
}

/* Back to the base chunk alone; when the message needed more, the base grows to that (up to keep). */
static void reset(ks_arena_t *a)
{
	chunk *base = a->chunks, *next;
	size_t want = a->used;

	if (base->next) {
		while (base->next) {
			next = base->next;
			free(base);
			base = next;
		}
		if (want > base->size && want <= a->keep) {
			size_t size = base->size;
			chunk *bigger;

			while (size < want)
				size *= 2;
			if (size > a->keep)
				size = a->keep;
			if ((bigger = chunk_new(size))) {
				free(base);
				base = bigger;
			}
		}
		a->chunks = base;
	}
	a->cur = chunk_data(base);
	a->lim = a->cur + base->size;
	a->used = 0;
}

void ks_arena_end(void)
{
	ks_arena_t *a = open_arena;

	open_arena = NULL;
	if (a)
		reset(a);
}

ks_arena_t *ks_arena_suspend(void)
{
	ks_arena_t *a = open_arena;

	open_arena = NULL;
	return a;
}

void ks_arena_resume(ks_arena_t *a)
{
	open_arena = a;
}

int ks_arena_owns(const void *p)
{
	return open_arena && owns(open_arena, p);
}

size_t ks_arena_used(const ks_arena_t *a)
{
	return a->used;
}
