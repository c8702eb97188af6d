/**
 * @file kpl.h
 * @brief KPL record aggregation (protobuf-c): many user records in one Kinesis record,
 *        readable by the KCL and the Kinesis consumer libraries that de-aggregate.
 *        Format: magic F3 89 9A C2, protobuf AggregatedRecord, MD5 of the protobuf bytes.
 */
#ifndef KS_KPL_H
#define KS_KPL_H

#include <stddef.h>

#include "common.h"
#include "transform.h"

/** Bytes the aggregate framing adds (magic + MD5). */
#define KS_KPL_OVERHEAD 20

/**
 * @brief Encode @p n records (their partition keys and data) as one aggregated record
 *        appended to @p out. @returns 0, KS_ERR_TOOBIG (over @p out's cap), KS_ERR_NOMEM.
 */
int ks_kpl_encode(ks_record *const *recs, size_t n, ks_buf *out);

/** @brief ks_kpl_encode of @p head and the records aggregated behind it (its `agg` chain). */
int ks_kpl_encode_chain(ks_record *head, ks_buf *out);

/** @brief Upper bound of the bytes one more record adds to an aggregate (for batching). */
size_t ks_kpl_record_cost(const ks_record *rec);

/**
 * @brief Decode an aggregated record (tests and tools): calls @p fn for each user record.
 * @returns number of records, or KS_ERR_BADREC when @p p is not a valid aggregate.
 */
int ks_kpl_decode(const void *p, size_t n,
		  void (*fn)(void *ud, const char *pkey, size_t pkey_len, const void *data, size_t len),
		  void *ud);

#endif
