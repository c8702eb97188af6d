/**
 * @file progress.h
 * @brief A backfill's progress (--exit-at-eof): how many records are done of the total known
 *        at assignment, the rate over the last seconds, the time left, and the partitions
 *        finished; and the text that shows them, in the periodic log line and on a terminal.
 *        Pure arithmetic on figures the caller gives, with the clock passed in: no I/O.
 */
#ifndef KS_PROGRESS_H
#define KS_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

/** The figures of a backfill at one moment (offsets.c sums them over the assigned partitions). */
typedef struct ks_backfill {
	int64_t done;     /**< records whose offsets may be committed (acknowledged, skipped, dead-lettered) */
	int64_t total;    /**< records from each measured partition's start to its end offset at assignment */
	int finished;     /**< partitions done up to their end offset */
	int assigned;     /**< partitions assigned */
	int unmeasured;   /**< assigned partitions whose start or end offset could not be read */
	int behind_known;  /**< 1: behind_ms is known */
	int64_t behind_ms; /**< how far behind the most behind partition is (ks_offsets_behind_ms) */
} ks_backfill;

/** A redraw at most this often, and the rate's samples this far apart. */
#define KS_PROGRESS_SAMPLE_MS 250
/** The rate is the progress over the last this many ms. */
#define KS_PROGRESS_WINDOW_MS 10000
#define KS_PROGRESS_SAMPLES (KS_PROGRESS_WINDOW_MS / KS_PROGRESS_SAMPLE_MS + 8)

/** The progress of one backfill, in the caller's storage (ks_progress_init; nothing to free). */
typedef struct ks_progress {
	ks_backfill last;          /* the figures of the last update */
	int64_t credited;          /* records done over the whole run: increases only */
	int64_t now_ms;            /* when the last update was taken */
	int64_t last_sample_ms;    /* -1: none yet */
	struct { int64_t ms, credited; } ring[KS_PROGRESS_SAMPLES];
	int head, n;
} ks_progress;

/** @brief Start with nothing done. @locality the caller's thread, as every ks_progress_* */
void ks_progress_init(ks_progress *pr);

/** @brief 1 when KS_PROGRESS_SAMPLE_MS passed since the last sample (or none was taken yet). */
int ks_progress_due(const ks_progress *pr, int64_t now_ms);

/**
 * @brief Take the figures @p b at @p now_ms. Progress counts for the rate only when @p b->done
 *        grows: a partition revoked takes its records out of done and total, not out of the
 *        rate. A sample is kept for the rate at most every KS_PROGRESS_SAMPLE_MS, and none while
 *        no partition is assigned (the wait for the group is not counted in the rate).
 */
void ks_progress_update(ks_progress *pr, const ks_backfill *b, int64_t now_ms);

/** @brief Records done per second over the last KS_PROGRESS_WINDOW_MS (0: not known yet). */
double ks_progress_rate(const ks_progress *pr);

/** @brief Seconds left at the current rate, rounded up: 0 when nothing is left, -1 when not known
 *  (rate 0, nothing assigned, or a partition not measured). */
int64_t ks_progress_eta_s(const ks_progress *pr);

/**
 * @brief How far behind, @p ms, as text: `0.4 s`, `42 s`, `12:03` (minutes), `5:02:03` (hours).
 * @returns the length written (truncated to @p size).
 */
size_t ks_progress_behind_text(int64_t ms, char *buf, size_t size);

/**
 * @brief The figures as text: `1234 of 5000 records (24.6 %), 812 records/s, ETA 0:05,
 *        1 of 4 partitions finished, 0.4 s behind` (`ETA --` while the rate is unknown; `, 1
 *        partition not measured` when an end offset could not be read; the seconds behind
 *        only when known; `waiting for partitions` while none is assigned). The percentage is rounded down, so
 *        100.0 % means everything is done. @returns the length written (truncated to @p size).
 */
size_t ks_progress_format(const ks_progress *pr, char *buf, size_t size);

#endif
