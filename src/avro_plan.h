/**
 * @file avro_plan.h
 * @brief An Avro schema's JSON compiled into what decoding a message needs: the kind of every
 *        type, decimal scales, fixed sizes, enum symbol counts and the types below it, with
 *        named types resolved (a named record that refers to itself is one node pointing at
 *        itself). Avro C does not keep logical types or Debezium's connect.* attributes, so they
 *        are read here. A plan belongs to one decoder (not thread-safe).
 */
#ifndef KS_AVRO_PLAN_H
#define KS_AVRO_PLAN_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef enum ks_avro_kind {
	KS_AVRO_INVALID, KS_AVRO_NULL, KS_AVRO_BOOLEAN, KS_AVRO_INT, KS_AVRO_LONG, KS_AVRO_FLOAT,
	KS_AVRO_DOUBLE, KS_AVRO_STRING, KS_AVRO_BYTES, KS_AVRO_FIXED, KS_AVRO_ENUM, KS_AVRO_RECORD,
	KS_AVRO_ARRAY, KS_AVRO_MAP, KS_AVRO_UNION,
} ks_avro_kind;

/** One type of the schema. */
typedef struct ks_avro_node {
	ks_avro_kind kind;
	int scale;                 /**< bytes and fixed: decimal scale, else -1 */
	int64_t size;              /**< fixed: byte size; enum: number of symbols */
	size_t n;                  /**< record fields, union branches; 1 for array items and map values */
	struct ks_avro_node **sub; /**< the types below, n of them */
	const json_t *src;         /**< the schema JSON object it was compiled from (named types) */
	struct ks_avro_node *next; /**< every node of the plan, for freeing */
} ks_avro_node;

typedef struct ks_avro_plan ks_avro_plan;

/**
 * @brief Compile @p schema (borrowed: read, never changed, and it must outlive the plan; it may
 *        be shared with other threads).
 * @returns plan (caller frees) or NULL when out of memory.
 */
ks_avro_plan *ks_avro_plan_new(json_t *schema);

/** @brief Free; NULL is fine. */
void ks_avro_plan_free(ks_avro_plan *p);

/** @brief The schema's top type (borrowed). */
const ks_avro_node *ks_avro_plan_root(const ks_avro_plan *p);

/** Where a body failed the bounds check. */
typedef struct ks_avro_where {
	size_t pos;              /**< byte of the body where it stopped */
	const char *fields[16];  /**< the record fields it was in, innermost first (borrowed) */
	int nfields;
} ks_avro_where;

/**
 * @brief Walk binary body @p body of @p n bytes against the plan. Avro C sizes its buffers from
 *        length prefixes before it knows whether the bytes are there, so a hostile message could
 *        make it allocate gigabytes; after this check every length fits in what is left.
 * @returns 0 when every length, count, union branch and enum symbol fits; -1 with @p where set.
 */
int ks_avro_plan_check(const ks_avro_plan *p, const void *body, size_t n, ks_avro_where *where);

/** @brief The schema in Kafka Connect JSON form (the debezium output's "schema"); new reference. */
json_t *ks_avro_plan_connect(const ks_avro_plan *p);

#endif
