/**
 * @file status.h
 * @brief What a running worker says of itself: the periodic progress line in the log
 *        (stats.interval.ms) and, in a backfill (--exit-at-eof), its figures, drawn live under
 *        the log when stderr is a terminal.
 */
#ifndef KS_STATUS_H
#define KS_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include "consumer.h"
#include "metrics.h"
#include "offsets.h"
#include "progress.h"
#include "router.h"

/** The worker's reports, in the caller's storage (ks_status_init; ks_status_end). */
typedef struct ks_status {
	ks_metrics *m;
	ks_offsets_t *offs;
	ks_router_t *router;
	ks_consumer_t *cons;
	int backfill;                 /* --exit-at-eof: the progress of the work known at assignment */
	int tty;                      /* ... drawn live on stderr, a terminal */
	int64_t last_ms;              /* the last progress line */
	uint64_t last_consumed;
	ks_progress prog;
} ks_status;

/**
 * @brief Report on the stages given (borrowed), from @p now_ms. @p backfill: a run with
 *        --exit-at-eof, whose figures are drawn live when stderr is a terminal that can erase a
 *        line. @locality the pipeline thread, as every ks_status_*
 */
void ks_status_init(ks_status *st, ks_metrics *m, ks_offsets_t *offs, ks_router_t *router, ks_consumer_t *cons,
		    int backfill, int64_t now_ms);

/** @brief The progress line when @p interval_ms passed since the last (0: never), else the live line when due. */
void ks_status_tick(ks_status *st, int64_t now_ms, int interval_ms);

/** @brief The backfill's figures now, as text into @p text (drawn live too). */
void ks_status_backfill(ks_status *st, int64_t now_ms, char *text, size_t size);

/** @brief The live line goes: what follows is the log alone. */
void ks_status_end(ks_status *st);

#endif
