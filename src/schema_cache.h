/**
 * @file schema_cache.h
 * @brief The fetch-once cache of a schema registry client (registry.c for Confluent's,
 *        glue.c for AWS Glue's): entries keyed by an opaque id of a fixed length, kept for the
 *        cache's lifetime. One cache serves every decode lane: lookups are thread-safe, and an
 *        id is fetched once even when several lanes ask for it at the same time (the first
 *        fetches, the others wait for its outcome). A failed fetch is not remembered: its
 *        error goes to the lanes that waited for it and the id is fetched again when asked
 *        again. What an entry holds and how it is fetched are the client's.
 */
#ifndef KS_SCHEMA_CACHE_H
#define KS_SCHEMA_CACHE_H

#include <stddef.h>

#include "common.h"

typedef struct ks_schema_cache ks_schema_cache_t;

/** Frees an entry the cache was given (by a fetch or ks_schema_cache_put). */
typedef void ks_schema_cache_free_fn(void *entry);

/**
 * Fetches the entry of @p id (borrowed, the cache's id length): 0 with *@p entry (the cache
 * takes it over; never changed afterwards), or a negative ks_err code with @p err set and
 * nothing to free (what the fetch made on the way is its to free). Called by the one caller
 * fetching @p id, on its thread, without the cache's lock; @p opaque is the caller's.
 */
typedef int ks_schema_cache_fetch_fn(void *opaque, const void *id, void **entry, ks_errbuf *err);

/**
 * @brief A cache of ids @p id_len bytes long whose entries @p free_entry frees.
 * @returns cache (caller destroys, after every thread using it is done) or NULL (out of memory).
 * @locality any thread
 */
ks_schema_cache_t *ks_schema_cache_new(size_t id_len, ks_schema_cache_free_fn *free_entry);

/** @brief Free the cache and every entry in it; NULL is fine. */
void ks_schema_cache_destroy(ks_schema_cache_t *c);

/**
 * @brief The entry of @p id: from the cache; or, when another caller is fetching it, that
 *        fetch's outcome, waited for; or fetched here with @p fetch (@p opaque handed to it).
 * @returns 0 and a borrowed entry, valid until ks_schema_cache_destroy; the fetch's error code
 *          with @p err (the same for every caller that waited for it; nothing cached);
 *          KS_ERR_NOMEM.
 * @locality any thread
 */
int ks_schema_cache_get(ks_schema_cache_t *c, const void *id, ks_schema_cache_fetch_fn *fetch, void *opaque,
			void **out, ks_errbuf *err);

/**
 * @brief Put @p entry (taken over) for @p id into the cache without fetching; when @p id is
 *        cached or being fetched already, @p entry is freed and the cache keeps what it has.
 * @returns 0 or KS_ERR_NOMEM (@p entry freed).
 * @locality any thread
 */
int ks_schema_cache_put(ks_schema_cache_t *c, const void *id, void *entry, ks_errbuf *err);

#endif
