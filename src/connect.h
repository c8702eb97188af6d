/**
 * @file connect.h
 * @brief `--check --connect`: beyond the offline validation, try every peer a run needs, once
 *        each, and print one line per check: the AWS credentials (which source of the chain gave
 *        them, never a secret), the Kafka brokers and the topics' partitions, the Schema Registry
 *        when the input needs one, and the stream (DescribeStreamSummary). Nothing is consumed,
 *        written or committed.
 */
#ifndef KS_CONNECT_H
#define KS_CONNECT_H

#include <stdio.h>

#include "conf.h"

/**
 * @brief Run the checks for @p conf, printing `ok   <check>: <what was found>` or
 *        `FAIL <check>: <what failed> -> <what to do>` (or `skip`) to @p out, one line each.
 * @returns 0 when every check passed, else the number of checks that failed or could not run.
 * @locality main thread (after curl_global_init)
 */
int ks_connect_run(const ks_conf *conf, FILE *out);

#endif
