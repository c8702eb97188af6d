/*
 * A backfill's progress: the figures offsets.c sums, a rate over a sliding window of samples,
 * the time left at that rate, and their text. The clock is the caller's (tests use a fake one).
 *
 * The rate counts only growth of "done": a revoked partition takes its records out of done and
 * total at once, which is no negative progress, and a partition assigned later starts at 0.
 */
#include "progress.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

void ks_progress_init(ks_progress *pr)
{
	memset(pr, 0, sizeof(*pr));
	pr->last_sample_ms = -1;
}

int ks_progress_due(const ks_progress *pr, int64_t now_ms)
{
	return pr->last_sample_ms < 0 || now_ms - pr->last_sample_ms >= KS_PROGRESS_SAMPLE_MS;
}

/* The i-th sample, oldest first. */
#define SAMPLE(pr, i) ((pr)->ring[((pr)->head + (i)) % KS_PROGRESS_SAMPLES])

void ks_progress_update(ks_progress *pr, const ks_backfill *b, int64_t now_ms)
{
	if (b->done > pr->last.done)
		pr->credited += b->done - pr->last.done;
	pr->last = *b;
	pr->now_ms = now_ms;
	if (b->assigned == 0) {
		pr->n = 0; /* no work yet (the group is being joined): that wait is no slowness */
		return;
	}
	if (!ks_progress_due(pr, now_ms))
		return;
	pr->last_sample_ms = now_ms;
	if (pr->n == KS_PROGRESS_SAMPLES) {
		pr->head = (pr->head + 1) % KS_PROGRESS_SAMPLES;
		pr->n--;
	}
	SAMPLE(pr, pr->n).ms = now_ms;
	SAMPLE(pr, pr->n).credited = pr->credited;
	pr->n++;
}

double ks_progress_rate(const ks_progress *pr)
{
	int i, base = -1;

	/* The oldest sample inside the window; else the newest before now (samples came rarely). */
	for (i = 0; i < pr->n; i++) {
		if (SAMPLE(pr, i).ms >= pr->now_ms)
			break;
		if (SAMPLE(pr, i).ms >= pr->now_ms - KS_PROGRESS_WINDOW_MS) {
			base = i;
			break;
		}
		base = i;
	}
	if (base < 0)
		return 0.0;
	return (double)(pr->credited - SAMPLE(pr, base).credited) * 1000.0 /
	       (double)(pr->now_ms - SAMPLE(pr, base).ms);
}

int64_t ks_progress_eta_s(const ks_progress *pr)
{
	int64_t left = pr->last.total - pr->last.done;
	double rate = ks_progress_rate(pr), s;

	if (left <= 0) /* nothing left, unless nothing is known */
		return pr->last.assigned > 0 && pr->last.unmeasured == 0 ? 0 : -1;
	if (rate <= 0.0)
		return -1;
	s = (double)left / rate;
	return (int64_t)s + ((double)(int64_t)s < s);
}

size_t ks_progress_behind_text(int64_t ms, char *buf, size_t size)
{
	int64_t s = ms / 1000;
	int n;

	if (ms < 0)
		n = snprintf(buf, size, "--");
	else if (ms < 10000)
		n = snprintf(buf, size, "%d.%d s", (int)(ms / 1000), (int)(ms / 100 % 10));
	else if (s < 60)
		n = snprintf(buf, size, "%d s", (int)s);
	else if (s < 3600)
		n = snprintf(buf, size, "%d:%02d", (int)(s / 60), (int)(s % 60));
	else
		n = snprintf(buf, size, "%" PRId64 ":%02d:%02d", s / 3600, (int)(s / 60 % 60), (int)(s % 60));
	if (n < 0)
		return 0;
	return (size_t)n < size ? (size_t)n : size ? size - 1 : 0;
}

size_t ks_progress_format(const ks_progress *pr, char *buf, size_t size)
{
	const ks_backfill *b = &pr->last;
	int64_t permille, eta = ks_progress_eta_s(pr);
	char etabuf[32];
	int n;

	if (b->assigned == 0) { /* before the group gave partitions: nothing is known */
		n = snprintf(buf, size, "waiting for partitions");
		goto out;
	}
	/* Rounded down: 100.0 % only once every record is done. */
	if (b->total > 0)
		permille = b->done >= b->total ? 1000 : b->done * 1000 / b->total;
	else
		permille = b->unmeasured == 0 ? 1000 : 0; /* nothing to do, unless it is not known */
	if (eta < 0)
		snprintf(etabuf, sizeof(etabuf), "--");
	else if (eta < 3600)
		snprintf(etabuf, sizeof(etabuf), "%d:%02d", (int)(eta / 60), (int)(eta % 60));
	else
		snprintf(etabuf, sizeof(etabuf), "%" PRId64 ":%02d:%02d", eta / 3600, (int)(eta / 60 % 60),
			 (int)(eta % 60));
	n = snprintf(buf, size, "%" PRId64 " of %" PRId64 " records (%d.%d %%), %.0f records/s, ETA %s, "
				"%d of %d partition%s finished",
		     b->done, b->total, (int)(permille / 10), (int)(permille % 10), ks_progress_rate(pr), etabuf,
		     b->finished, b->assigned, b->assigned == 1 ? "" : "s");
	if (b->unmeasured > 0 && n >= 0 && (size_t)n < size)
		n += snprintf(buf + n, size - (size_t)n, ", %d not measured", b->unmeasured);
	if (b->behind_known && n >= 0 && (size_t)n < size) {
		char behind[32];

		ks_progress_behind_text(b->behind_ms, behind, sizeof(behind));
		n += snprintf(buf + n, size - (size_t)n, ", %s behind", behind);
	}
out:
	if (n < 0)
		return 0;
	return (size_t)n < size ? (size_t)n : size ? size - 1 : 0;
}
