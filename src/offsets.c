/*
 * Offsets: a ring of {offset, pending} entries per partition, in offset order. Acks decrement
 * an entry's pending count (found by binary search); done entries are popped from the front,
 * and the committable offset is the first entry still pending, or the last tracked offset + 1.
 *
 * The registry below keeps the trackers of the assigned partitions and commits what they
 * acknowledged. Only the pipeline thread changes trackers; the metrics thread reads the values
 * a tracker publishes with atomics (committable, last acked, committed, paused), never its
 * ring, and the registry's lock only guards the array of trackers (assign, revoke).
 */
#include "offsets.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

typedef struct entry {
	int64_t offset;
	int32_t pending;
	int64_t ts;            /* the message's Kafka timestamp (ms since the epoch), 0 none */
} entry;

struct ks_ptrack {
	char *topic;
	int32_t partition;
	entry *ring;
	size_t cap, head, n;
	int64_t last_tracked;  /* -1: none */
	int64_t outstanding;   /* acks still expected over all entries */
	int64_t taken_ts;      /* timestamp of the message just taken, for its entry (0 none) */
	int64_t bf_start;      /* the backfill's range (ks_offsets_measure), -1 unmeasured */
	int64_t bf_end;
	int64_t commit_sent;   /* last offset sent in a commit (confirmed or not), -1 none */
	/* Published for the metrics thread (atomics). */
	int64_t committable;   /* -1: nothing done yet */
	int64_t last_acked;
	int64_t committed;     /* last offset Kafka confirmed committed, -1 none */
	int64_t oldest_ts;     /* timestamp of the first message not done: 0 none, -1 it has none */
	int64_t last_ts;       /* timestamp of the last message taken that had one, 0 none */
	int eof;               /* the consumer reached the partition's end */
	int paused;
};

ks_ptrack_t *ks_ptrack_new(const char *topic, int32_t partition)
{
	ks_ptrack_t *p = calloc(1, sizeof(*p));

	if (!p || !(p->topic = strdup(topic))) {
		free(p);
		return NULL;
	}
	p->partition = partition;
	p->last_tracked = -1;
	p->last_acked = -1;
	p->committable = -1;
	p->committed = -1;
	p->commit_sent = -1;
	p->bf_start = p->bf_end = -1;
	return p;
}

void ks_ptrack_destroy(ks_ptrack_t *p)
{
	if (!p)
		return;
	free(p->ring);
	free(p->topic);
	free(p);
}

int64_t ks_ptrack_pending_acks(const ks_ptrack_t *p)
{
	return p->outstanding;
}

static entry *at(const ks_ptrack_t *p, size_t i)
{
	return &p->ring[(p->head + i) & (p->cap - 1)];
}

/* Done entries leave the front; what may be committed is published for the metrics thread. */
static void pop_done(ks_ptrack_t *p)
{
	while (p->n && at(p, 0)->pending <= 0) {
		p->head = (p->head + 1) & (p->cap - 1);
		p->n--;
	}
	STORE(p->committable, p->n ? at(p, 0)->offset : p->last_tracked >= 0 ? p->last_tracked + 1 : -1);
	STORE(p->oldest_ts, p->n ? at(p, 0)->ts > 0 ? at(p, 0)->ts : -1 : 0);
}

int ks_ptrack_add(ks_ptrack_t *p, int64_t offset, int pending)
{
	int64_t ts = p->taken_ts;

	if (offset <= p->last_tracked)
		return KS_ERR_ORDER;
	p->last_tracked = offset;
	p->taken_ts = 0;
	if (pending <= 0 && p->n == 0) {
		pop_done(p); /* done at once, nothing earlier pending: no entry needed */
		return 0;
	}
	if (p->n == p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : 256, i;
		entry *nr = malloc(ncap * sizeof(*nr));

		if (!nr)
			return KS_ERR_NOMEM;
		for (i = 0; i < p->n; i++)
			nr[i] = *at(p, i);
		free(p->ring);
		p->ring = nr;
		p->cap = ncap;
		p->head = 0;
	}
	p->ring[(p->head + p->n) & (p->cap - 1)] = (entry){ offset, pending, ts };
	p->n++;
	p->outstanding += pending > 0 ? pending : 0;
	pop_done(p);
	return 0;
}

static entry *find(ks_ptrack_t *p, int64_t offset)
{
	size_t lo = 0, hi = p->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		entry *e = at(p, mid);

		if (e->offset == offset)
			return e;
		if (e->offset < offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

void ks_ptrack_ack(ks_ptrack_t *p, int64_t offset)
{
	entry *e = find(p, offset);

	if (!e || e->pending <= 0)
		return;
	e->pending--;
	p->outstanding--;
	if (offset > p->last_acked)
		STORE(p->last_acked, offset);
	pop_done(p);
}

void ks_ptrack_drop(ks_ptrack_t *p, int64_t offset)
{
	entry *e = find(p, offset);

	if (!e || e->pending <= 0)
		return;
	/* Never done: the offset stays pending, only the expectation of an ack goes. */
	p->outstanding--;
}

int64_t ks_ptrack_committable(const ks_ptrack_t *p)
{
	return LOAD(p->committable);
}

const char *ks_ptrack_topic(const ks_ptrack_t *p)
{
	return p->topic;
}

int32_t ks_ptrack_partition(const ks_ptrack_t *p)
{
	return p->partition;
}

int64_t ks_ptrack_last_acked(const ks_ptrack_t *p)
{
	return LOAD(p->last_acked);
}

void ks_ptrack_set_eof(ks_ptrack_t *p, int eof)
{
	STORE(p->eof, eof);
}

void ks_ptrack_taken(ks_ptrack_t *p, int64_t ts_ms)
{
	STORE(p->eof, 0);
	p->taken_ts = ts_ms > 0 ? ts_ms : 0;
	if (ts_ms > 0)
		STORE(p->last_ts, ts_ms);
}

int64_t ks_ptrack_behind_ms(const ks_ptrack_t *p, int64_t ahead, int64_t now_ms)
{
	int64_t oldest = LOAD(p->oldest_ts), last = LOAD(p->last_ts);

	if (oldest > 0)
		return now_ms > oldest ? now_ms - oldest : 0;
	if (oldest == 0 && (ahead == 0 || LOAD(p->eof) || (ahead < 0 && last > 0)))
		return 0; /* everything taken is done, and nothing is (known to be) left to read */
	/* Records left to read (or the oldest waiting one has no timestamp): the destination has
	 * everything up to the last message taken, and nothing newer. */
	if (last > 0)
		return now_ms > last ? now_ms - last : 0;
	return -1;
}

void ks_ptrack_set_range(ks_ptrack_t *p, int64_t start, int64_t end)
{
	p->bf_start = start;
	p->bf_end = end > start ? end : start;
}

/* ---- the registry ---------------------------------------------------------------------------- */

/* After a commit failure that says the group is rebalancing, periodic commits wait for the next
 * assignment, or COMMIT_HOLD_MAX_MS at most. */
#define COMMIT_HOLD_MAX_MS 30000

struct ks_offsets {
	pthread_mutex_t lock;         /* parts[] (not the trackers) is read by the metrics thread */
	ks_ptrack_t **parts;          /* assigned partitions */
	int nparts, capparts;
	ks_ptrack_t **retired;        /* revoked, waiting for their last acks */
	int nretired, capretired;
	ks_ptrack_t *last;            /* lookup cache */
	rd_kafka_t *rk;
	ks_metrics *m;
	int64_t commit_hold_until;    /* a commit met a rebalance: wait for the next assignment */
};

ks_offsets_t *ks_offsets_new(ks_metrics *m)
{
	ks_offsets_t *o = calloc(1, sizeof(*o));

	if (!o)
		return NULL;
	pthread_mutex_init(&o->lock, NULL);
	o->m = m;
	return o;
}

void ks_offsets_destroy(ks_offsets_t *o)
{
	int i;

	if (!o)
		return;
	for (i = 0; i < o->nparts; i++)
		ks_ptrack_destroy(o->parts[i]);
	for (i = 0; i < o->nretired; i++)
		ks_ptrack_destroy(o->retired[i]);
	free(o->parts);
	free(o->retired);
	pthread_mutex_destroy(&o->lock);
	free(o);
}

void ks_offsets_set_consumer(ks_offsets_t *o, rd_kafka_t *rk)
{
	pthread_mutex_lock(&o->lock);
	o->rk = rk;
	pthread_mutex_unlock(&o->lock);
}

static int push_ptr(ks_ptrack_t ***arr, int *n, int *cap, ks_ptrack_t *p)
{
	if (*n == *cap) {
		int ncap = *cap ? *cap * 2 : 16;
		ks_ptrack_t **na = realloc(*arr, sizeof(*na) * (size_t)ncap);

		if (!na)
			return KS_ERR_NOMEM;
		*arr = na;
		*cap = ncap;
	}
	(*arr)[(*n)++] = p;
	return 0;
}

static int is(const ks_ptrack_t *t, const char *topic, int32_t partition)
{
	return t->partition == partition && strcmp(t->topic, topic) == 0;
}

ks_ptrack_t *ks_offsets_find(ks_offsets_t *o, const char *topic, int32_t partition)
{
	int i;

	if (o->last && is(o->last, topic, partition))
		return o->last;
	for (i = 0; i < o->nparts; i++)
		if (is(o->parts[i], topic, partition))
			return o->last = o->parts[i];
	return NULL;
}

int ks_offsets_count(const ks_offsets_t *o)
{
	return o->nparts;
}

rd_kafka_topic_partition_list_t *ks_offsets_list(const ks_offsets_t *o)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(o->nparts ? o->nparts : 1);
	int i;

	for (i = 0; l && i < o->nparts; i++)
		rd_kafka_topic_partition_list_add(l, o->parts[i]->topic, o->parts[i]->partition);
	return l;
}

void ks_offsets_set_paused(ks_offsets_t *o, int paused)
{
	int i;

	for (i = 0; i < o->nparts; i++)
		STORE(o->parts[i]->paused, paused);
}

int ks_offsets_all_at_eof(const ks_offsets_t *o)
{
	int i;

	if (o->nparts == 0)
		return 0;
	for (i = 0; i < o->nparts; i++)
		if (!LOAD(o->parts[i]->eof))
			return 0;
	return 1;
}

int ks_offsets_all_committed(const ks_offsets_t *o)
{
	int i;

	for (i = 0; i < o->nparts; i++) {
		int64_t off = LOAD(o->parts[i]->committable);

		if (off >= 0 && LOAD(o->parts[i]->committed) < off)
			return 0;
	}
	return 1;
}

int ks_offsets_work_left(ks_offsets_t *o, const rd_kafka_topic_partition_list_t *parts)
{
	int i;

	for (i = 0; i < parts->cnt; i++) {
		ks_ptrack_t *t = ks_offsets_find(o, parts->elems[i].topic, parts->elems[i].partition);

		if (t && (t->bf_end < 0 || t->bf_start < t->bf_end))
			return 1;
	}
	return 0;
}

int ks_offsets_pending(ks_offsets_t *o, const rd_kafka_topic_partition_list_t *parts)
{
	int i;

	for (i = 0; i < parts->cnt; i++) {
		ks_ptrack_t *t = ks_offsets_find(o, parts->elems[i].topic, parts->elems[i].partition);

		if (t && t->outstanding > 0)
			return 1;
	}
	return 0;
}

int ks_offsets_assign(ks_offsets_t *o, const rd_kafka_topic_partition_list_t *parts)
{
	int i, rc = 0;

	o->commit_hold_until = 0;
	pthread_mutex_lock(&o->lock);
	for (i = 0; i < parts->cnt; i++) {
		ks_ptrack_t *t;

		if (ks_offsets_find(o, parts->elems[i].topic, parts->elems[i].partition))
			continue;
		if (!(t = ks_ptrack_new(parts->elems[i].topic, parts->elems[i].partition)) ||
		    push_ptr(&o->parts, &o->nparts, &o->capparts, t)) {
			ks_ptrack_destroy(t);
			rc = KS_ERR_NOMEM;
			break;
		}
	}
	pthread_mutex_unlock(&o->lock);
	KS_METRIC_SET(o->m, assigned_partitions, (int64_t)o->nparts);
	return rc;
}

void ks_offsets_revoke(ks_offsets_t *o, const rd_kafka_topic_partition_list_t *parts)
{
	int i, j;

	pthread_mutex_lock(&o->lock);
	for (i = 0; i < parts->cnt; i++) {
		for (j = 0; j < o->nparts; j++) {
			ks_ptrack_t *t = o->parts[j];

			if (!is(t, parts->elems[i].topic, parts->elems[i].partition))
				continue;
			if (t->outstanding > 0)
				ks_info("pipeline", "%s [%d] revoked with %lld records unacknowledged: the next owner reads them again",
					t->topic, (int)t->partition, (long long)t->outstanding);
			if (push_ptr(&o->retired, &o->nretired, &o->capretired, t))
				ks_ptrack_destroy(t); /* cannot happen with pending acks: they were 0 or memory is gone */
			o->parts[j] = o->parts[--o->nparts];
			break;
		}
	}
	o->last = NULL;
	pthread_mutex_unlock(&o->lock);
	KS_METRIC_SET(o->m, assigned_partitions, (int64_t)o->nparts);
	ks_offsets_sweep(o);
}

void ks_offsets_sweep(ks_offsets_t *o)
{
	int i, k = 0;

	for (i = 0; i < o->nretired; i++) {
		if (o->retired[i]->outstanding == 0)
			ks_ptrack_destroy(o->retired[i]);
		else
			o->retired[k++] = o->retired[i];
	}
	o->nretired = k;
}

/* ---- commits ----------------------------------------------------------------------------------- */

void ks_offsets_on_committed(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
	ks_offsets_t *o = opaque;
	int i;

	for (i = 0; offsets && i < offsets->cnt; i++) {
		const rd_kafka_topic_partition_t *tp = &offsets->elems[i];
		ks_ptrack_t *t = ks_offsets_find(o, tp->topic, tp->partition);

		if (!t || tp->offset < 0)
			continue;
		if (!err && !tp->err) {
			if (tp->offset > t->committed)
				STORE(t->committed, tp->offset);
			ks_debug("offsets", "committed %s [%d] @%" PRId64, tp->topic, tp->partition, tp->offset);
		} else if (t->commit_sent == tp->offset) {
			rd_kafka_resp_err_t e = tp->err ? tp->err : err;

			t->commit_sent = t->committed;
			/* The group is rebalancing: a commit now would only fail again (and a stale
			 * generation makes librdkafka give the assignment up); wait for its outcome. */
			if (e == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS || e == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION ||
			    e == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID)
				o->commit_hold_until = ks_now_ms() + COMMIT_HOLD_MAX_MS;
			ks_debug("offsets", "commit of %s [%d] @%" PRId64 " failed (%s): sending it again", tp->topic,
				 tp->partition, tp->offset, rd_kafka_err2str(e));
		}
	}
}

int ks_offsets_commit(ks_offsets_t *o, int sync, int force)
{
	rd_kafka_topic_partition_list_t *l;
	rd_kafka_resp_err_t e;
	int i;

	if (!o->rk || (!force && !sync && ks_now_ms() < o->commit_hold_until)) /* revoke and shutdown try anyway */
		return 1;
	l = rd_kafka_topic_partition_list_new(o->nparts ? o->nparts : 1);
	for (i = 0; i < o->nparts; i++) {
		ks_ptrack_t *t = o->parts[i];
		int64_t off = ks_ptrack_committable(t);

		if (off < 0 || (!force && off <= t->commit_sent))
			continue;
		rd_kafka_topic_partition_list_add(l, t->topic, t->partition)->offset = off;
		/* Sent, not yet committed: on_committed says, and a failure is sent again. */
		t->commit_sent = off;
	}
	if (l->cnt > 0) {
		e = rd_kafka_commit(o->rk, l, sync ? 0 : 1);
		if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
			ks_warn("offsets", "commit failed: %s (the offsets will be committed again)", rd_kafka_err2str(e));
		if (sync)
			ks_offsets_on_committed(e, l, o);
	}
	rd_kafka_topic_partition_list_destroy(l);
	return 0;
}

/* ---- metrics ------------------------------------------------------------------------------------ */

/*
 * How far behind each of the first @p n assigned partitions is at wall-clock @p now
 * (ks_ptrack_behind_ms) into @p behind, and the lag of each (high watermark minus the committable
 * offset, -1 unknown) into @p lag when not NULL. What is left to read is measured from the
 * consumer's position, which steps over transaction markers (the committable offset stays
 * before a trailing one); before the first message, from the committable offset.
 */
static void measure_parts(const ks_offsets_t *o, int n, int64_t now, int64_t *behind, int64_t *lag)
{
	rd_kafka_topic_partition_list_t *l = NULL;
	int i;

	if (o->rk && n > 0 && (l = rd_kafka_topic_partition_list_new(n))) {
		for (i = 0; i < n; i++)
			rd_kafka_topic_partition_list_add(l, o->parts[i]->topic, o->parts[i]->partition);
		if (rd_kafka_position(o->rk, l)) {
			rd_kafka_topic_partition_list_destroy(l);
			l = NULL;
		}
	}
	for (i = 0; i < n; i++) {
		const ks_ptrack_t *t = o->parts[i];
		int64_t lo = -1, hi = -1, pos = ks_ptrack_committable(t), committed = LOAD(t->committed), ahead;

		if (o->rk)
			rd_kafka_get_watermark_offsets(o->rk, t->topic, t->partition, &lo, &hi);
		if (pos < 0)
			pos = committed;
		if (lag)
			lag[i] = hi >= 0 && pos >= 0 ? hi - pos : -1;
		if (l && l->elems[i].err == 0 && l->elems[i].offset > pos)
			pos = l->elems[i].offset;
		ahead = hi >= 0 && pos >= 0 ? hi > pos ? hi - pos : 0 : -1;
		behind[i] = ks_ptrack_behind_ms(t, ahead, now);
	}
	if (l)
		rd_kafka_topic_partition_list_destroy(l);
}

int64_t ks_offsets_behind_ms(const ks_offsets_t *o, int64_t now_ms)
{
	int64_t worst = -1, *behind;
	int i;

	if (o->nparts == 0 || !(behind = malloc(sizeof(*behind) * (size_t)o->nparts)))
		return -1;
	measure_parts(o, o->nparts, now_ms, behind, NULL);
	for (i = 0; i < o->nparts; i++)
		if (behind[i] > worst)
			worst = behind[i];
	free(behind);
	return worst;
}

int ks_offsets_partition_stats(void *opaque, ks_partition_stat *out, int max)
{
	ks_offsets_t *o = opaque;
	int64_t *behind, *lag;
	int i, n;

	pthread_mutex_lock(&o->lock);
	n = o->nparts < max ? o->nparts : max;
	behind = malloc(sizeof(*behind) * (size_t)(n ? n : 1));
	lag = malloc(sizeof(*lag) * (size_t)(n ? n : 1));
	if (!behind || !lag)
		n = 0;
	measure_parts(o, n, ks_wall_ms(), behind, lag);
	for (i = 0; i < n; i++) {
		ks_ptrack_t *t = o->parts[i];

		snprintf(out[i].topic, sizeof(out[i].topic), "%s", t->topic);
		out[i].partition = t->partition;
		out[i].committed = LOAD(t->committed);
		out[i].last_acked = ks_ptrack_last_acked(t);
		out[i].paused = LOAD(t->paused);
		out[i].lag = lag[i];
		out[i].behind_ms = behind[i];
	}
	pthread_mutex_unlock(&o->lock);
	free(behind);
	free(lag);
	return n;
}

/* ---- a backfill's progress ---------------------------------------------------------------------- */

/* Where the consumer starts a partition without a committed offset: auto.offset.reset. */
static int resets_to_end(rd_kafka_t *rk)
{
	char v[32];
	size_t n = sizeof(v);

	if (rd_kafka_conf_get(rd_kafka_conf(rk), "auto.offset.reset", v, &n) != RD_KAFKA_CONF_OK)
		return 0;
	return strcmp(v, "largest") == 0 || strcmp(v, "latest") == 0 || strcmp(v, "end") == 0;
}

void ks_offsets_measure(ks_offsets_t *o, const rd_kafka_topic_partition_list_t *parts, int timeout_ms)
{
	rd_kafka_topic_partition_list_t *c;
	rd_kafka_resp_err_t e;
	int i, to_end;

	if (!o->rk || !parts->cnt || !(c = rd_kafka_topic_partition_list_copy(parts)))
		return;
	to_end = resets_to_end(o->rk);
	e = rd_kafka_committed(o->rk, c, timeout_ms);
	for (i = 0; i < c->cnt; i++) {
		rd_kafka_topic_partition_t *tp = &c->elems[i];
		ks_ptrack_t *t = ks_offsets_find(o, tp->topic, tp->partition);
		rd_kafka_resp_err_t pe = e ? e : tp->err;
		int64_t lo = -1, hi = -1, start;

		if (!t)
			continue;
		if (!pe)
			pe = rd_kafka_query_watermark_offsets(o->rk, tp->topic, tp->partition, &lo, &hi, timeout_ms);
		if (pe) {
			ks_warn("offsets", "cannot read the offsets of %s [%d] (%s): its records are left out of the "
					   "backfill's progress", tp->topic, (int)tp->partition, rd_kafka_err2str(pe));
			continue;
		}
		/* No committed offset, or one out of range: the consumer starts where the reset says. */
		start = tp->offset;
		if (start < lo || start > hi)
			start = to_end ? hi : lo;
		ks_ptrack_set_range(t, start, hi);
		ks_debug("offsets", "%s [%d]: backfill from %" PRId64 " to %" PRId64, tp->topic, (int)tp->partition,
			 start, hi);
	}
	rd_kafka_topic_partition_list_destroy(c);
}

void ks_offsets_backfill(const ks_offsets_t *o, ks_backfill *out)
{
	int i;

	memset(out, 0, sizeof(*out));
	out->behind_ms = ks_offsets_behind_ms(o, ks_wall_ms());
	out->behind_known = out->behind_ms >= 0;
	for (i = 0; i < o->nparts; i++) {
		const ks_ptrack_t *t = o->parts[i];
		int64_t work = t->bf_end - t->bf_start, pos = LOAD(t->committable), committed = LOAD(t->committed);
		int64_t done;
		/* At its end with nothing pending: whatever offsets are left were no records. */
		int drained = LOAD(t->eof) && t->n == 0;

		out->assigned++;
		if (t->bf_end < 0) {
			out->unmeasured++;
			out->finished += drained;
			continue;
		}
		if (committed > pos)
			pos = committed;
		done = pos < 0 ? 0 : pos - t->bf_start;
		if (done < 0)
			done = 0;
		if (done >= work || drained) {
			done = work;
			out->finished++;
		}
		out->total += work;
		out->done += done;
	}
}
