/*
 * The worker's reports: the progress line every stats.interval.ms, and a backfill's figures,
 * sampled at most every KS_PROGRESS_SAMPLE_MS and, on a terminal, drawn as the status line
 * under the log (shorter than the terminal is wide, or a wrapped line could not be redrawn in
 * place).
 */
#include "status.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "log.h"

void ks_status_init(ks_status *st, ks_metrics *m, ks_offsets_t *offs, ks_router_t *router, ks_consumer_t *cons,
		    int backfill, int64_t now_ms)
{
	const char *term = getenv("TERM");

	memset(st, 0, sizeof(*st));
	st->m = m;
	st->offs = offs;
	st->router = router;
	st->cons = cons;
	st->backfill = backfill;
	/* A terminal that can erase a line (not TERM=dumb: an editor's shell buffer, for one). */
	st->tty = backfill && isatty(STDERR_FILENO) && !(term && strcmp(term, "dumb") == 0);
	st->last_ms = now_ms;
	ks_progress_init(&st->prog);
}

/* Columns of the terminal on stderr, 0 when unknown. */
static int term_width(void)
{
	struct winsize ws;

	return ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 ? ws.ws_col : 0;
}

/* A backfill's figures, sampled when due (now with @p force); @p text (may be NULL) gets them. */
static void backfill_tick(ks_status *st, int64_t now, int force, char *text, size_t size)
{
	char line[256];
	ks_backfill b;
	int cols;

	if (!st->backfill)
		return;
	if (force || ks_progress_due(&st->prog, now)) {
		ks_offsets_backfill(st->offs, &b);
		ks_progress_update(&st->prog, &b, now);
		if (st->tty) {
			cols = term_width();
			memcpy(line, "backfill: ", 11);
			ks_progress_format(&st->prog, line + 10, sizeof(line) - 10);
			if (cols > 1 && (size_t)cols <= sizeof(line))
				line[cols - 1] = '\0';
			ks_log_status(line);
		}
	}
	if (text)
		ks_progress_format(&st->prog, text, size);
}

static void progress_line(ks_status *st, int64_t now)
{
	uint64_t consumed = __atomic_load_n(&st->m->records_consumed, __ATOMIC_RELAXED), bad = 0;
	double secs = (double)(now - st->last_ms) / 1000.0;
	char figures[256] = "", behind[48] = "";
	int64_t behind_ms = ks_offsets_behind_ms(st->offs, ks_wall_ms());
	int i;

	for (i = 0; i < KS_BAD_NON_ROW; i++)
		bad += __atomic_load_n(&st->m->records_bad[i], __ATOMIC_RELAXED);
	if (behind_ms >= 0 && !st->backfill) { /* a backfill's figures say it */
		memcpy(behind, ", ", 3);
		ks_progress_behind_text(behind_ms, behind + 2, sizeof(behind) - 2);
		strcat(behind, " behind");
	}
	backfill_tick(st, now, 1, figures, sizeof(figures));
	ks_info("pipeline", "progress: consumed %" PRIu64 " (%.0f/s), put %" PRIu64 ", retried %" PRIu64
			    ", bad %" PRIu64 ", in flight %zu records / %zu bytes, %d partitions%s%s%s%s",
		consumed, secs > 0 ? (double)(consumed - st->last_consumed) / secs : 0.0,
		__atomic_load_n(&st->m->records_put_ok, __ATOMIC_RELAXED),
		__atomic_load_n(&st->m->records_retried, __ATOMIC_RELAXED), bad,
		ks_router_records(st->router), ks_router_bytes(st->router), ks_offsets_count(st->offs), behind,
		ks_consumer_bp_paused(st->cons) ? ", paused (backpressure)" : "", figures[0] ? "; backfill: " : "",
		figures);
	st->last_ms = now;
	st->last_consumed = consumed;
}

void ks_status_tick(ks_status *st, int64_t now_ms, int interval_ms)
{
	if (interval_ms > 0 && now_ms - st->last_ms >= interval_ms)
		progress_line(st, now_ms);
	else
		backfill_tick(st, now_ms, 0, NULL, 0);
}

void ks_status_backfill(ks_status *st, int64_t now_ms, char *text, size_t size)
{
	backfill_tick(st, now_ms, 1, text, size);
}

void ks_status_end(ks_status *st)
{
	if (st->tty)
		ks_log_status(NULL);
}
