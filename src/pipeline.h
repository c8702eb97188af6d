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
 * @returns the process exit code: 0 done, 1 runtime failure; with KS_PIPELINE_LEFT when the Kafka
 *          consumer could not be closed and destroyed (ks_consumer_close; acknowledged offsets
 *          committed): its threads may still run, so the caller ends the process at once, with
 *          the status in the low byte, without tearing anything down.
 * @locality main thread
 */
int ks_pipeline_run(const ks_conf *conf, ks_stop *stop);

/** In ks_pipeline_run's status: end the process without tearing down. */
#define KS_PIPELINE_LEFT 0x100

#endif
