/* One shard's adaptive write rate (shardrate.h). */
#include "shardrate.h"

void ks_shardrate_init(ks_shardrate *r, double ceiling, int64_t now_ms)
{
	r->ceiling = ceiling;
	r->rate = ceiling;
	r->before_cut = ceiling;
	r->last_cut_ms = INT64_MIN;
	r->last_raise_ms = now_ms;
}

int ks_shardrate_throttled(ks_shardrate *r, double share, int64_t now_ms)
{
	double floor = r->ceiling * KS_SHARDRATE_FLOOR;
	double cut = share < KS_SHARDRATE_CUT_MIN ? KS_SHARDRATE_CUT_MIN : share > KS_SHARDRATE_CUT_MAX ? KS_SHARDRATE_CUT_MAX : share;

	if (r->last_cut_ms != INT64_MIN && now_ms - r->last_cut_ms < KS_SHARDRATE_CUT_INTERVAL_MS)
		return 0;
	r->last_cut_ms = now_ms;
	r->last_raise_ms = now_ms;
	r->before_cut = r->rate;
	r->rate *= 1.0 - cut;
	if (r->rate < floor)
		r->rate = floor;
	return 1;
}

int ks_shardrate_accepted(ks_shardrate *r, int64_t now_ms)
{
	int64_t dt = now_ms - r->last_raise_ms;

	if (dt <= 0 || r->rate >= r->ceiling) {
		if (dt > 0)
			r->last_raise_ms = now_ms;
		return 0;
	}
	if (dt > 1000)
		dt = 1000;
	r->last_raise_ms = now_ms;
	if (r->rate < r->before_cut * KS_SHARDRATE_RECOVER) {
		r->rate += r->ceiling * KS_SHARDRATE_RAISE_FAST * (double)dt / 1000.0;
		if (r->rate > r->before_cut * KS_SHARDRATE_RECOVER)
			r->rate = r->before_cut * KS_SHARDRATE_RECOVER;
	} else {
		r->rate += r->ceiling * KS_SHARDRATE_RAISE * (double)dt / 1000.0;
	}
	if (r->rate > r->ceiling)
		r->rate = r->ceiling;
	return 1;
}
