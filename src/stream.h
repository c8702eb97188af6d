/**
 * @file stream.h
 * @brief The Kinesis stream as the service describes it (control plane), apart from the
 *        writer: DescribeStreamSummary at start-up and for --check --connect.
 */
#ifndef KS_STREAM_H
#define KS_STREAM_H

#include "common.h"
#include "conf.h"
#include "creds.h"
#include "metrics.h"

/**
 * @brief DescribeStreamSummary of conf->stream: it exists and is ACTIVE or UPDATING; sets
 *        kinesis_reachable in @p m (may be NULL). @p creds is borrowed.
 * @returns 0; KS_ERR_FATAL / KS_ERR_AUTH with a message naming stream, region, endpoint and the
 *          AWS request id; KS_ERR_IO when the endpoint cannot be reached or answers 5xx.
 * @locality any thread (blocking)
 */
int ks_stream_describe(const ks_conf *conf, ks_creds_t *creds, ks_metrics *m, ks_errbuf *err);

#endif
