/*
 * Decode and transform, the CPU-heavy middle of the pipeline, spread over a few threads.
 * Each lane (thread) owns a decoder and a transform, so nothing is shared but the metrics
 * (atomic) and the Schema Registry cache (locked, consulted once per schema and lane). The pipeline thread starts a batch and goes on with its own work (handling the
 * batch before, the writer, Kafka); the lanes take it in chunks of CHUNK messages, and when the
 * pipeline thread finishes the batch it takes the chunks left itself, then waits for the ones
 * taken. Results land in their message's slot: in message order, and nothing after this stage
 * needs a lock.
 */
#include "prepare.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "consumer.h"
#include "glue.h"
#include "log.h"
#include "registry.h"

#define MIN_SPLIT 32 /* below this many messages a batch is not worth a thread hand-off */
#define CHUNK 16     /* messages a lane takes at a time */
#define ARENA_KEEP (1024 * 1024) /* a lane's arena keeps up to this between messages */

typedef struct lane {
	struct ks_preparer *pp;
	pthread_t th;
	int started;
	ks_decoder_t **dec; /* one per route */
	ks_transform_t **tr;
	ks_arena_t *arena; /* JSON input: the jansson values of the message being prepared */
} lane;

struct ks_preparer {
	int nlanes; /* lanes[0] is the caller's */
	lane *lanes;
	int nroutes;
	ks_registry_t **registry; /* per route, debezium-avro: the lanes' one schema cache */
	ks_glue_t **glue;         /* per route, schema.registry.type=glue: the lanes' one Glue client */
	int *headers;             /* per route, raw.envelope=kafka: decode needs the messages' headers */
	int *json;                /* per route, JSON input: its messages are prepared in the lane's arena */
	pthread_mutex_t mu;
	pthread_cond_t go, done;
	uint32_t gen;       /* the batch started last */
	ks_prepared *items; /* that batch, NULL once finished */
	int n, done_n;
	int quit;
	/* Next message to take: the batch's generation above, its index below. A lane that woke
	 * late for an older batch sees another generation and takes nothing. */
	uint64_t claim;
	/* The loop's two batches. */
	ks_prepared *batch;   /* being taken from the consumer */
	int nbatch;
	ks_prepared *pend;    /* taken before: on the lanes, then handled */
	int npend;
	size_t pend_bytes;
};

static void prepare_msg(lane *l, ks_prepared *it)
{
	ks_change change;
	ks_msg km;
	int n;

	it->outcome = KS_PREP_EVENT;
	it->op = KS_OP_NONE;
	it->n = 0;
	ks_errbuf_clear(&it->err);
	if (it->msg->err)
		return;
	ks_consumer_msg(it->msg, l->pp->headers[it->route], &km);
	if ((n = ks_decoder_decode(l->dec[it->route], &km, &change, &it->err))) {
		it->outcome = n == KS_ERR_BADREC ? KS_PREP_BAD : KS_PREP_FATAL;
		if (n != KS_ERR_BADREC && !it->err.text[0])
			ks_errbuf_set(&it->err, n, "%s", ks_err_str(n));
		it->err.stage = KS_STAGE_DECODE;
		return;
	}
	it->op = change.op;
	if (change.op == KS_OP_TOMBSTONE || change.op == KS_OP_TRUNCATE || change.op == KS_OP_MESSAGE) {
		it->outcome = change.op == KS_OP_TOMBSTONE ? KS_PREP_SKIP_TOMBSTONE : KS_PREP_NON_ROW;
		ks_change_clean(&change);
		return;
	}
	n = ks_transform_apply(l->tr[it->route], &change, it->recs, &it->err);
	ks_change_clean(&change);
	if (n == KS_ERR_BADREC) {
		it->outcome = KS_PREP_BAD;
	} else if (n < 0) {
		it->outcome = KS_PREP_FATAL;
		ks_errbuf_set(&it->err, n, "transform failed: %s", ks_err_str(n));
		it->err.stage = KS_STAGE_TRANSFORM;
	} else {
		it->outcome = KS_PREP_RECORDS;
		it->n = n;
	}
}

/* Everything jansson allocates for one message comes from the lane's arena (when it has one)
 * and goes back at once: the change is cleaned and its records are plain malloc. */
static void prepare_one(lane *l, ks_prepared *it)
{
	ks_arena_begin(l->pp->json[it->route] ? l->arena : NULL);
	prepare_msg(l, it);
	ks_arena_end();
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

static int same_str(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/*
 * The Glue client of an earlier route that reads the same registry the same way as route @p r,
 * or NULL: routes share one, so a version id is fetched once per process (the credentials are
 * the process's, not a route's).
 */
static ks_glue_t *glue_of(struct ks_preparer *pp, const ks_conf *const *routes, int r)
{
	const ks_conf *a = routes[r];
	int k;

	for (k = 0; k < r; k++) {
		const ks_conf *b = routes[k];

		if (pp->glue[k] && same_str(a->glue_region ? a->glue_region : a->aws_region,
					    b->glue_region ? b->glue_region : b->aws_region) &&
		    same_str(a->glue_endpoint, b->glue_endpoint) && a->registry_timeout_ms == b->registry_timeout_ms &&
		    a->request_timeout_ms == b->request_timeout_ms && a->connect_timeout_ms == b->connect_timeout_ms &&
		    same_str(a->ssl_ca_location, b->ssl_ca_location) && same_str(a->http_proxy, b->http_proxy))
			return pp->glue[k];
	}
	return NULL;
}

ks_preparer_t *ks_preparer_new(const ks_conf *conf, ks_metrics *metrics, ks_errbuf *err)
{
	return ks_preparer_new_routes(conf, &conf, 1, metrics, err);
}

ks_preparer_t *ks_preparer_new_routes(const ks_conf *conf, const ks_conf *const *routes, int nroutes,
				      ks_metrics *metrics, ks_errbuf *err)
{
	struct ks_preparer *pp = calloc(1, sizeof(*pp));
	int i, r, n = 1, json_routes = 0;

	/* Raw bytes have nothing to decode: handing them to a lane costs more than it saves. */
	for (r = 0; r < nroutes; r++)
		if (routes[r]->input_format != KS_INPUT_RAW && conf->decode_threads > 0)
			n = conf->decode_threads;
	if (!pp || !(pp->lanes = calloc((size_t)n, sizeof(*pp->lanes))) ||
	    !(pp->batch = calloc(KS_PREP_BATCH_MAX, sizeof(*pp->batch))) ||
	    !(pp->pend = calloc(KS_PREP_BATCH_MAX, sizeof(*pp->pend))) ||
	    !(pp->registry = calloc((size_t)nroutes, sizeof(*pp->registry))) ||
	    !(pp->glue = calloc((size_t)nroutes, sizeof(*pp->glue))) ||
	    !(pp->headers = calloc((size_t)nroutes, sizeof(*pp->headers))) ||
	    !(pp->json = calloc((size_t)nroutes, sizeof(*pp->json)))) {
		if (pp) {
			free(pp->lanes);
			free(pp->batch);
			free(pp->pend);
			free(pp->registry);
			free(pp->glue);
			free(pp->headers);
	free(pp->json);
		}
		free(pp);
		ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
		return NULL;
	}
	pp->nlanes = n;
	pp->nroutes = nroutes;
	pthread_mutex_init(&pp->mu, NULL);
	pthread_cond_init(&pp->go, NULL);
	pthread_cond_init(&pp->done, NULL);
	for (r = 0; r < nroutes; r++) {
		pp->headers[r] = routes[r]->raw_envelope != KS_ENVELOPE_NONE;
		if (routes[r]->registry_type == KS_REGISTRY_GLUE && routes[r]->input_format != KS_INPUT_RAW) {
			if (!(pp->glue[r] = glue_of(pp, routes, r)) && !(pp->glue[r] = ks_glue_new(routes[r], NULL, metrics, err)))
				goto fail;
		} else if (routes[r]->input_format == KS_INPUT_DEBEZIUM_AVRO && !(pp->registry[r] = ks_registry_new(routes[r], err)))
			goto fail;
		/* Avro decoding fills the Schema Registry cache and the decoder's plans as it goes: its
		 * jansson values outlive the message, so only JSON input uses the arenas. */
		pp->json[r] = routes[r]->input_format == KS_INPUT_DEBEZIUM_JSON || routes[r]->input_format == KS_INPUT_JSON;
		if (pp->json[r])
			json_routes++;
	}
	if (json_routes)
		ks_arena_install();
	for (i = 0; i < n; i++) {
		lane *l = &pp->lanes[i];

		l->pp = pp;
		if (!(l->dec = calloc((size_t)nroutes, sizeof(*l->dec))) || !(l->tr = calloc((size_t)nroutes, sizeof(*l->tr))) ||
		    (json_routes && !(l->arena = ks_arena_new(ARENA_KEEP)))) {
			ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
			goto fail;
		}
		for (r = 0; r < nroutes; r++) {
			ks_decoder_sources src = { pp->registry[r], pp->glue[r], 0 };

			if (!(l->dec[r] = ks_decoder_new_sources(routes[r], metrics, &src, err)) ||
			    !(l->tr[r] = ks_transform_new(routes[r], err)))
				goto fail;
		}
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
	int i, k;

	if (!pp)
		return;
	ks_preparer_drop(pp); /* while the lanes still work: the batch on them is finished first */
	for (i = 0; i < pp->nbatch; i++)
		rd_kafka_message_destroy(pp->batch[i].msg);
	pthread_mutex_lock(&pp->mu);
	pp->quit = 1;
	pthread_cond_broadcast(&pp->go);
	pthread_mutex_unlock(&pp->mu);
	for (i = 0; i < pp->nlanes; i++) {
		if (pp->lanes[i].started)
			pthread_join(pp->lanes[i].th, NULL);
		for (k = 0; k < pp->nroutes && pp->lanes[i].tr; k++)
			ks_transform_destroy(pp->lanes[i].tr[k]);
		for (k = 0; k < pp->nroutes && pp->lanes[i].dec; k++)
			ks_decoder_destroy(pp->lanes[i].dec[k]);
		free(pp->lanes[i].tr);
		free(pp->lanes[i].dec);
		ks_arena_destroy(pp->lanes[i].arena);
	}
	for (k = 0; k < pp->nroutes; k++) {
		int j, shared = 0;

		ks_registry_destroy(pp->registry[k]);
		for (j = 0; j < k; j++)
			shared |= pp->glue[j] == pp->glue[k];
		if (!shared)
			ks_glue_destroy(pp->glue[k]);
	}
	free(pp->registry);
	free(pp->glue);
	free(pp->headers);
	free(pp->json);
	pthread_mutex_destroy(&pp->mu);
	pthread_cond_destroy(&pp->go);
	pthread_cond_destroy(&pp->done);
	free(pp->batch);
	free(pp->pend);
	free(pp->lanes);
	free(pp);
}

/* ---- the loop's two batches --------------------------------------------------------------------- */

void ks_preparer_take(ks_preparer_t *pp, rd_kafka_message_t *msg)
{
	ks_preparer_take_route(pp, msg, 0);
}

void ks_preparer_take_route(ks_preparer_t *pp, rd_kafka_message_t *msg, int route)
{
	pp->batch[pp->nbatch].route = route >= 0 && route < pp->nroutes ? route : 0;
	pp->batch[pp->nbatch++].msg = msg;
}

int ks_preparer_taking(const ks_preparer_t *pp)
{
	return pp->nbatch;
}

int ks_preparer_held(const ks_preparer_t *pp, size_t *bytes)
{
	if (bytes)
		*bytes = pp->pend_bytes;
	return pp->npend;
}

static void handle(ks_prepared *items, int n, ks_prepared_fn fn, void *opaque)
{
	int i;

	for (i = 0; i < n; i++) {
		fn(opaque, &items[i]);
		rd_kafka_message_destroy(items[i].msg);
	}
}

void ks_preparer_advance(ks_preparer_t *pp, ks_prepared_fn fn, void *opaque)
{
	ks_prepared *t = pp->pend;
	int n = pp->nbatch, npend = pp->npend, i;
	size_t bytes = 0;

	ks_preparer_finish(pp);
	for (i = 0; i < n; i++)
		bytes += pp->batch[i].msg->len + pp->batch[i].msg->key_len;
	if (n)
		ks_preparer_start(pp, pp->batch, n);
	/* The lanes have the new batch in pp->batch: swap before handling, so that whatever the
	 * handler does sees a consistent state. */
	pp->pend = pp->batch;
	pp->npend = n;
	pp->pend_bytes = bytes;
	pp->batch = t;
	pp->nbatch = 0;
	handle(t, npend, fn, opaque);
}

void ks_preparer_flush(ks_preparer_t *pp, ks_prepared_fn fn, void *opaque)
{
	int n;

	ks_preparer_advance(pp, fn, opaque);
	ks_preparer_finish(pp);
	n = pp->npend;
	pp->npend = 0;
	pp->pend_bytes = 0;
	handle(pp->pend, n, fn, opaque);
}

void ks_preparer_drop(ks_preparer_t *pp)
{
	int i, k;

	ks_preparer_finish(pp);
	for (i = 0; i < pp->npend; i++) {
		for (k = 0; k < pp->pend[i].n; k++)
			ks_record_destroy(pp->pend[i].recs[k]);
		rd_kafka_message_destroy(pp->pend[i].msg);
	}
	pp->npend = 0;
	pp->pend_bytes = 0;
}
