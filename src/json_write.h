/**
 * @file json_write.h
 * @brief Deterministic JSON out of jansson values (record data and partition keys).
 */
#ifndef KS_JSON_WRITE_H
#define KS_JSON_WRITE_H

#include <jansson.h>

#include "common.h"

/**
 * @brief Append @p j to @p b as compact JSON with object keys sorted (byte for byte
 *        deterministic; reals as RisingWave's serde_json/ryu writes them: the shortest digits
 *        that read back the same, "100.0", "0.0001", "1e16", "1.5e-7", "5e-324").
 * @returns 0, KS_ERR_TOOBIG, KS_ERR_NOMEM.
 */
int ks_json_write(ks_buf *b, const json_t *j);

/** @brief Append @p v in decimal to @p b. @returns 0, KS_ERR_TOOBIG, KS_ERR_NOMEM. */
int ks_json_write_int(ks_buf *b, long long v);

#endif
