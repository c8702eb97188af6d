/*
 * Decode and transform, the CPU-heavy middle of the pipeline, spread over a few threads.
 * Each lane (thread) owns a decoder and a transform, so nothing is shared but the metrics
 * (atomic). The pipeline thread starts a batch and goes on with its own work (handling the
 * batch before, the writer, Kafka); the lanes take it in chunks of CHUNK messages, and when the
 * pipeline thread finishes the batch it takes the chunks left itself, then waits for the ones
 * taken. Results land in their message's slot: in message order, and nothing after this stage
 * needs a lock.
 */
#include "prepare.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "consumer.h"
#include "log.h"

#define MIN_SPLIT 32 /* below this many messages a batch is not worth a thread hand-off */
#define CHUNK 16     /* messages a lane takes at a time */

typedef struct lane {
	struct ks_preparer *pp;
	pthread_t th;
	int started;
	ks_decoder_t *dec;
	ks_transform_t *tr;
} lane;

struct ks_preparer {
	int nlanes; /* lanes[0] is the caller's */
	lane *lanes;
	pthread_mutex_t mu;
	pthread_cond_t go, done;
	uint32_t gen;       /* the batch started last */
	ks_prepared *items; /* that batch, NULL once finished */
	int n, done_n;
	int quit;
	/* Next message to take: the batch's generation above, its index below. A lane that woke
	 * late for an older batch sees another generation and takes nothing. */
	uint64_t claim;
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
	if (n == KS_ERR_TOOBIG) /* over the output buffer, so far over Kinesis' limit: a bad record */
		n = ks_errbuf_badrec(&it->err, KS_STAGE_TRANSFORM, "too_large", km.topic, km.partition, km.offset,
				     "record too large: its output is over %d bytes, beyond Kinesis' 1 MiB (%d bytes) per record",
				     4 * KS_MAX_RECORD_BYTES, KS_MAX_RECORD_BYTES);
	if (n < 0)
		it->rc = n;
	else
		it->n = n;
}

/* Take chunks of batch @p gen until none is left; what was done is counted towards the batch. */
static void work(lane *l, uint32_t gen, ks_prepared *items, int n)
{
	struct ks_preparer *pp = l->pp;
	uint64_t v = __atomic_load_n(&pp->claim, __ATOMIC_ACQUIRE);
	int did = 0, i, lo;

	while ((uint32_t)(v >> 32) == gen && (lo = (int)(v & 0xffffffffu)) < n) {
		if (!__atomic_compare_exchange_n(&pp->claim, &v, v + CHUNK, 1, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			continue;
		for (i = lo; i < n && i < lo + CHUNK; i++, did++)
			prepare_one(l, &items[i]);
		v = __atomic_load_n(&pp->claim, __ATOMIC_ACQUIRE);
	}
	if (!did)
		return;
	pthread_mutex_lock(&pp->mu);
	pp->done_n += did;
	if (pp->done_n >= pp->n)
		pthread_cond_broadcast(&pp->done);
	pthread_mutex_unlock(&pp->mu);
}

static void *lane_main(void *arg)
{
	lane *l = arg;
	struct ks_preparer *pp = l->pp;
	uint32_t seen = 0;

	pthread_mutex_lock(&pp->mu);
	for (;;) {
		ks_prepared *items;
		int n;

		while (!pp->quit && (pp->gen == seen || !pp->items))
			pthread_cond_wait(&pp->go, &pp->mu);
		if (pp->quit)
			break;
		seen = pp->gen;
		items = pp->items;
		n = pp->n;
		pthread_mutex_unlock(&pp->mu);
		work(l, seen, items, n);
		pthread_mutex_lock(&pp->mu);
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

void ks_preparer_start(ks_preparer_t *pp, ks_prepared *items, int n)
{
	pthread_mutex_lock(&pp->mu);
	pp->items = items;
	pp->n = n;
	pp->done_n = 0;
	pp->gen++;
	__atomic_store_n(&pp->claim, (uint64_t)pp->gen << 32, __ATOMIC_RELEASE);
	if (pp->nlanes > 1 && n >= MIN_SPLIT)
		pthread_cond_broadcast(&pp->go);
	pthread_mutex_unlock(&pp->mu);
}

void ks_preparer_finish(ks_preparer_t *pp)
{
	if (!pp->items)
		return;
	work(&pp->lanes[0], pp->gen, pp->items, pp->n);
	pthread_mutex_lock(&pp->mu);
	while (pp->done_n < pp->n)
		pthread_cond_wait(&pp->done, &pp->mu);
	pp->items = NULL;
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
