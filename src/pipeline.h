/**
 * @file pipeline.h
 * @brief The running worker: consumer -> decode -> transform -> Kinesis writer -> offsets,
 *        with ack-tied commits, backpressure, the error policy, rebalances and shutdown.
 */
#ifndef KS_PIPELINE_H
#define KS_PIPELINE_H

#include <signal.h>

#include "conf.h"

/**
 * @brief Run until @p stop becomes non-zero (SIGTERM/SIGINT), a fatal error, or — with
 *        conf->exit_at_eof — every assigned partition is at its end with everything acknowledged
 *        and committed.
 * @returns the process exit code: 0 done, 1 runtime failure.
 * @locality main thread
 */
int ks_pipeline_run(const ks_conf *conf, volatile sig_atomic_t *stop);

#endif
