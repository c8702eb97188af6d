/**
 * @file pipeline.h
 * @brief The running worker: consumer -> decode -> transform -> Kinesis writer -> offsets,
 *        with ack-tied commits, backpressure, the error policy, rebalances and shutdown.
 */
#ifndef KS_PIPELINE_H
#define KS_PIPELINE_H

#include "conf.h"
#include "signals.h"

/**
 * @brief Run until @p stop becomes non-zero (SIGTERM/SIGINT), a fatal error, or — with
 *        conf->exit_at_eof — every assigned partition is at its end with everything acknowledged
 *        and committed.
 * @returns the process exit code: 0 done, 1 runtime failure; or KS_PIPELINE_ABANDONED when the
 *          Kafka consumer did not close within KS_CLOSE_BOUND_MS (acknowledged offsets committed):
 *          its threads may still run, so the caller ends the process without tearing down.
 * @locality main thread
 */
int ks_pipeline_run(const ks_conf *conf, ks_stop *stop);

/** ks_pipeline_run's status when the process must end without tearing down (exit status 1). */
#define KS_PIPELINE_ABANDONED 0x101

#endif
