/* Per-shard token buckets (ratelimit.h). */
#include "ratelimit.h"

#include <math.h>

static void refill(ks_bucket *b, int64_t now_ms)
{
	if (now_ms > b->last_ms) {
		b->tokens += (double)(now_ms - b->last_ms) * b->rate / 1000.0;
		if (b->tokens > b->cap)
			b->tokens = b->cap;
		b->last_ms = now_ms;
	}
}

void ks_bucket_init(ks_bucket *b, double rate, int64_t now_ms)
{
	b->rate = rate;
	b->cap = rate;
	b->tokens = rate;
	b->reserve = 0;
	b->last_ms = now_ms;
}

void ks_bucket_set_rate(ks_bucket *b, double rate, int64_t now_ms)
{
	double reserve_s = b->rate > 0 ? b->reserve / b->rate : 0;

	refill(b, now_ms);
	b->rate = rate;
	b->cap = rate;
	b->reserve = rate * reserve_s;
	if (b->tokens > b->cap)
		b->tokens = b->cap;
}

void ks_limiter_init(ks_shard_limiter *l, double percent, int64_t now_ms)
{
	ks_bucket_init(&l->records, KS_SHARD_RECORDS_PER_S * percent / 100.0, now_ms);
	ks_bucket_init(&l->bytes, KS_SHARD_BYTES_PER_S * percent / 100.0, now_ms);
}

void ks_limiter_reserve(ks_shard_limiter *l, double seconds)
{
	l->records.reserve = l->records.rate * seconds;
	l->bytes.reserve = l->bytes.rate * seconds;
}

/* What must be in the bucket before @p n is taken (and its reserve left): a take larger than the
 * bucket needs it full. */
static double needed(const ks_bucket *b, double n)
{
	return n + b->reserve < b->cap ? n + b->reserve : b->cap;
}

int ks_limiter_take(ks_shard_limiter *l, size_t bytes, int64_t now_ms)
{
	refill(&l->records, now_ms);
	refill(&l->bytes, now_ms);
	if (l->records.tokens < needed(&l->records, 1.0) || l->bytes.tokens < needed(&l->bytes, (double)bytes))
		return 0;
	l->records.tokens -= 1.0;
	l->bytes.tokens -= (double)bytes;
	return 1;
}

static int64_t wait_for(const ks_bucket *b, double n)
{
	double missing = needed(b, n) - b->tokens;

	return missing <= 0 ? 0 : (int64_t)ceil(missing * 1000.0 / b->rate);
}

int64_t ks_limiter_wait_ms(ks_shard_limiter *l, size_t bytes, int64_t now_ms)
{
	int64_t a, b;

	refill(&l->records, now_ms);
	refill(&l->bytes, now_ms);
	a = wait_for(&l->records, 1.0);
	b = wait_for(&l->bytes, (double)bytes);
	return a > b ? a : b;
}
