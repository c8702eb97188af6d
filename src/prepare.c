/*
 * Decode and transform, the CPU-heavy middle of the pipeline, spread over a few threads.
 * Each lane (thread) owns a decoder and a transform, so nothing is shared but the metrics
 * (atomic). The pipeline thread hands over a batch, works its own slice, and waits for the
 * others: results are in message order and nothing after this stage needs a lock.
 */
#include "prepare.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "consumer.h"
#include "log.h"

#define MIN_SPLIT 32 /* below this many messages a batch is not worth a thread hand-off */

typedef struct lane {
	struct ks_preparer *pp;
	pthread_t th;
	int started;
	ks_decoder_t *dec;
	ks_transform_t *tr;
	ks_prepared *items;
	int n;
} lane;

struct ks_preparer {
	int nlanes; /* lanes[0] is the caller's */
	lane *lanes;
	pthread_mutex_t mu;
	pthread_cond_t go, done;
	uint64_t gen;
	int pending;
	int quit;
};

static void prepare_one(lane *l, ks_prepared *it)
{
	ks_change change;
	ks_msg km;
	int n;

	it->rc = 0;
	it->transformed = 0;
	it->op = KS_OP_NONE;
	it->n = 0;
	ks_errbuf_clear(&it->err);
	if (it->msg->err)
		return;
	ks_consumer_msg(it->msg, &km);
	if ((it->rc = ks_decoder_decode(l->dec, &km, &change, &it->err)))
		return;
	it->op = change.op;
	if (change.op == KS_OP_TOMBSTONE || change.op == KS_OP_TRUNCATE || change.op == KS_OP_MESSAGE) {
		ks_change_clean(&change);
		return;
	}
	it->transformed = 1;
	n = ks_transform_apply(l->tr, &change, it->recs, &it->err);
	ks_change_clean(&change);
	if (n < 0)
		it->rc = n;
	else
		it->n = n;
}

static void run_lane(lane *l)
{
	int i;

	for (i = 0; i < l->n; i++)
		prepare_one(l, &l->items[i]);
}

static void *lane_main(void *arg)
{
	lane *l = arg;
	struct ks_preparer *pp = l->pp;
	uint64_t seen = 0;

	pthread_mutex_lock(&pp->mu);
	for (;;) {
		while (!pp->quit && pp->gen == seen)
			pthread_cond_wait(&pp->go, &pp->mu);
		if (pp->quit)
			break;
		seen = pp->gen;
		pthread_mutex_unlock(&pp->mu);
		run_lane(l);
		pthread_mutex_lock(&pp->mu);
		if (--pp->pending == 0)
			pthread_cond_signal(&pp->done);
	}
	pthread_mutex_unlock(&pp->mu);
	return NULL;
}

ks_preparer_t *ks_preparer_new(const ks_conf *conf, ks_metrics *metrics, ks_errbuf *err)
{
	struct ks_preparer *pp = calloc(1, sizeof(*pp));
	/* Raw bytes have nothing to decode: handing them to a lane costs more than it saves. */
	int i, n = conf->decode_threads > 0 && conf->input_format != KS_INPUT_RAW ? conf->decode_threads : 1;

	if (!pp || !(pp->lanes = calloc((size_t)n, sizeof(*pp->lanes)))) {
		free(pp);
		ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
		return NULL;
	}
	pp->nlanes = n;
	pthread_mutex_init(&pp->mu, NULL);
	pthread_cond_init(&pp->go, NULL);
	pthread_cond_init(&pp->done, NULL);
	for (i = 0; i < n; i++) {
		lane *l = &pp->lanes[i];

		l->pp = pp;
		if (!(l->dec = ks_decoder_new(conf, metrics, err)) || !(l->tr = ks_transform_new(conf, err)))
			goto fail;
		if (i > 0) {
			int e = pthread_create(&l->th, NULL, lane_main, l);

			if (e) {
				ks_errbuf_set(err, KS_ERR_IO, "cannot start a decode thread: %s", strerror(e));
				goto fail;
			}
			l->started = 1;
		}
	}
	return pp;
fail:
	ks_preparer_destroy(pp);
	return NULL;
}

void ks_preparer_run(ks_preparer_t *pp, ks_prepared *items, int n)
{
	int i, lanes = pp->nlanes, slice;

	if (lanes == 1 || n < MIN_SPLIT) {
		pp->lanes[0].items = items;
		pp->lanes[0].n = n;
		run_lane(&pp->lanes[0]);
		return;
	}
	slice = (n + lanes - 1) / lanes;
	pthread_mutex_lock(&pp->mu);
	for (i = 0; i < lanes; i++) {
		int lo = i * slice < n ? i * slice : n;

		pp->lanes[i].items = items + lo;
		pp->lanes[i].n = (lo + slice < n ? lo + slice : n) - lo;
	}
	pp->pending = lanes - 1;
	pp->gen++;
	pthread_cond_broadcast(&pp->go);
	pthread_mutex_unlock(&pp->mu);

	run_lane(&pp->lanes[0]);

	pthread_mutex_lock(&pp->mu);
	while (pp->pending > 0)
		pthread_cond_wait(&pp->done, &pp->mu);
	pthread_mutex_unlock(&pp->mu);
}

void ks_preparer_destroy(ks_preparer_t *pp)
{
	int i;

	if (!pp)
		return;
	pthread_mutex_lock(&pp->mu);
	pp->quit = 1;
	pthread_cond_broadcast(&pp->go);
	pthread_mutex_unlock(&pp->mu);
	for (i = 0; i < pp->nlanes; i++) {
		if (pp->lanes[i].started)
			pthread_join(pp->lanes[i].th, NULL);
		ks_transform_destroy(pp->lanes[i].tr);
		ks_decoder_destroy(pp->lanes[i].dec);
	}
	pthread_mutex_destroy(&pp->mu);
	pthread_cond_destroy(&pp->go);
	pthread_cond_destroy(&pp->done);
	free(pp->lanes);
	free(pp);
}
