/*
 * Routes at run time. A Kafka topic is matched against the routes once (first route wins) and
 * remembered; its records go to its route's writer, or for a template route (stream
 * `mirror-${topic}`) to a writer of its own, started on the topic's first record. Each writer
 * has its own ks_conf (the route's), so the writer, the decoder and the transform never know
 * there are routes.
 */
#include "router.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "stream.h"

#define SHARED_WAIT_MS 5 /* several writers hold records: the longest an answer to one waits */

/* A topic seen: which route takes it and, once known, where its records go. */
typedef struct topic_ent {
	char *topic;
	int route;
	ks_dest *d;
} topic_ent;

struct ks_router {
	const ks_conf *conf;
	ks_creds_t *creds;
	ks_metrics *m;
	ks_router_fatal_fn fatal;
	void *opaque;
	const ks_conf **rconf; /* conf->route[i].conf, or the one implicit route, conf itself */
	int nroutes;
	ks_dest **dests;       /* every writer, in the order they were started */
	int ndests;
	ks_dest **route_dest;  /* per route: its writer (NULL for a template route) */
	topic_ent *topics;
	int ntopics, last;
};

static void dest_destroy(ks_dest *d)
{
	if (!d)
		return;
	ks_kinesis_destroy(d->kin);
	if (d->conf == &d->own)
		free(d->own.stream);
	free(d);
}

/* A record of @p opaque's (a ks_dest) stream acknowledged: its latency, then the router's owner. */
/* A record of @p opaque's (a ks_dest) stream acknowledged: its latency, and its offset done. */
static void dest_acked(void *opaque, ks_record *rec, const char *shard, const char *seq)
{
	ks_dest *d = opaque;

	(void)shard;
	(void)seq;
	ks_latency_observe(d->latency, rec->kafka_ts_ms, ks_wall_ms());
	ks_ptrack_ack(rec->origin, rec->offset);
}

/* Never acknowledged: its offset is never committed, the worker stops. */
static void dest_failed(void *opaque, ks_record *rec, const ks_errbuf *err)
{
	ks_dest *d = opaque;
	char tag[128], msg[1024];

	ks_ptrack_drop(rec->origin, rec->offset);
	snprintf(msg, sizeof(msg), "%s%s [%d] @%lld: %s", ks_router_tag(d->router, d->route, tag, sizeof(tag)),
		 ks_ptrack_topic(rec->origin), (int)ks_ptrack_partition(rec->origin), (long long)rec->offset, err->text);
	d->router->fatal(d->router->opaque, msg);
}

/* A record of a revoked partition that the writer will not send: never committed. */
static void dest_dropped(void *opaque, ks_record *rec)
{
	(void)opaque;
	ks_ptrack_drop(rec->origin, rec->offset);
}

/* @p d's writer, the stream's record size limit and its shard map. @returns 0, or 1 with @p err. */
static int start_writer(ks_router_t *r, ks_dest *d, ks_errbuf *err)
{
	ks_kinesis_cbs cbs = { dest_acked, dest_failed, d, dest_dropped };
	const ks_conf *c = d->conf;
	ks_stream_info info;
	ks_shardmap_t *shards;
	ks_errbuf lerr;

	d->router = r;
	d->latency = ks_metrics_stream_latency(r->m, c->stream);
	if (!(d->kin = ks_kinesis_new(c, r->creds, r->m, &cbs, err)) ||
	    ks_stream_describe_info(c, r->creds, r->m, &info, err))
		return 1;
	ks_kinesis_set_max_record_bytes(d->kin, info.max_record_bytes);
	if (ks_kinesis_set_distribution(d->kin, info.distribution, err))
		return 1;
	ks_errbuf_clear(&lerr);
	if (ks_stream_list_shards(c, r->creds, &shards, &lerr) == KS_ERR_NOMEM) {
		*err = lerr;
		return 1;
	} else if (shards) {
		ks_info("pipeline", "stream '%s' has %d open shards", c->stream, ks_shardmap_count(shards));
		if (ks_kinesis_set_shardmap(d->kin, shards)) {
			ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
			return 1;
		}
	} else {
		ks_warn("pipeline", "%s: writing on without the shard map", lerr.text);
	}
	ks_info("pipeline", "stream '%s' in %s is ready (records up to %zu KiB)", c->stream, c->aws_region,
		info.max_record_bytes >> 10);
	return 0;
}

/* A new writer for @p route: to @p stream (a template's, for one topic), or NULL: the route's. */
static ks_dest *add_dest(ks_router_t *r, int route, const char *stream, ks_errbuf *err)
{
	ks_dest *d = calloc(1, sizeof(*d)), **n;

	if (!d || !(n = realloc(r->dests, sizeof(*n) * (size_t)(r->ndests + 1)))) {
		free(d);
		ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
		return NULL;
	}
	r->dests = n;
	d->route = route;
	d->route_name = r->conf->n_route ? r->conf->route[route].name : NULL;
	d->conf = r->rconf[route];
	if (stream) {
		d->own = *r->rconf[route]; /* borrowed strings: only stream is its own */
		d->conf = &d->own;
		if (!(d->own.stream = strdup(stream))) {
			free(d);
			ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
			return NULL;
		}
	}
	if (start_writer(r, d, err)) {
		dest_destroy(d);
		return NULL;
	}
	r->dests[r->ndests++] = d;
	return d;
}

ks_router_t *ks_router_new(const ks_conf *conf, ks_creds_t *creds, ks_metrics *m, ks_router_fatal_fn fatal,
			   void *opaque, ks_errbuf *err)
{
	ks_router_t *r = calloc(1, sizeof(*r));
	int i;

	if (!r)
		goto nomem;
	r->conf = conf;
	r->creds = creds;
	r->m = m;
	r->fatal = fatal;
	r->opaque = opaque;
	r->nroutes = conf->n_route ? conf->n_route : 1;
	if (!(r->rconf = calloc((size_t)r->nroutes, sizeof(*r->rconf))) ||
	    !(r->route_dest = calloc((size_t)r->nroutes, sizeof(*r->route_dest))))
		goto nomem;
	for (i = 0; i < r->nroutes; i++)
		r->rconf[i] = conf->n_route ? conf->route[i].conf : conf;
	for (i = 0; i < r->nroutes; i++) {
		if (conf->n_route && conf->route[i].is_template)
			continue;
		if (!(r->route_dest[i] = add_dest(r, i, NULL, err))) {
			if (conf->n_route)
				ks_errbuf_prefix(err, "route '%s'", conf->route[i].name);
			ks_router_destroy(r);
			return NULL;
		}
	}
	return r;
nomem:
	ks_router_destroy(r);
	ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
	return NULL;
}

void ks_router_destroy(ks_router_t *r)
{
	int i;

	if (!r)
		return;
	for (i = 0; i < r->ndests; i++)
		dest_destroy(r->dests[i]);
	for (i = 0; i < r->ntopics; i++)
		free(r->topics[i].topic);
	free(r->topics);
	free(r->dests);
	free(r->route_dest);
	free(r->rconf);
	free(r);
}

int ks_router_nroutes(const ks_router_t *r)
{
	return r->nroutes;
}

const ks_conf *const *ks_router_confs(const ks_router_t *r)
{
	return r->rconf;
}

const char *ks_router_tag(const ks_router_t *r, int route, char *buf, size_t n)
{
	if (!r->conf->n_route || route < 0 || route >= r->nroutes)
		return "";
	snprintf(buf, n, "route '%s': ", r->conf->route[route].name);
	return buf;
}

/* The entry of @p topic, made on first sight with the route that takes it (-1: none). */
static topic_ent *topic_of(ks_router_t *r, const char *topic)
{
	topic_ent *n;
	int i;

	if (r->last < r->ntopics && !strcmp(r->topics[r->last].topic, topic))
		return &r->topics[r->last];
	for (i = 0; i < r->ntopics; i++)
		if (!strcmp(r->topics[i].topic, topic))
			return &r->topics[r->last = i];
	if (!(n = realloc(r->topics, sizeof(*n) * (size_t)(r->ntopics + 1))))
		return NULL;
	r->topics = n;
	n = &n[r->ntopics];
	if (!(n->topic = strdup(topic)))
		return NULL;
	n->route = r->conf->n_route ? ks_conf_route_find(r->conf, topic) : 0;
	n->d = n->route >= 0 ? r->route_dest[n->route] : NULL;
	r->last = r->ntopics++;
	return n;
}

/* The route that takes @p topic, or -1 (none). */
static int route_of(ks_router_t *r, const char *topic)
{
	topic_ent *t = topic_of(r, topic);

	return t ? t->route : -1;
}

int ks_router_route_msg(ks_router_t *r, const char *topic, int32_t partition, int64_t offset, ks_errbuf *err)
{
	int route = route_of(r, topic);

	if (route < 0)
		ks_errbuf_set(err, KS_ERR_CONFIG, "%s [%d] @%lld: topic '%s' matches no route: add a route for it, or "
			      "narrow topic (the subscription)", topic, (int)partition, (long long)offset, topic);
	return route;
}

ks_dest *ks_router_dest(ks_router_t *r, const char *topic, ks_errbuf *err)
{
	topic_ent *t = topic_of(r, topic);
	const char *name;
	char stream[512];

	if (!t) {
		ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
		return NULL;
	}
	if (t->d)
		return t->d;
	if (t->route < 0) {
		ks_errbuf_set(err, KS_ERR_CONFIG, "topic '%s' matches no route: add a route for it, or narrow topic", topic);
		return NULL;
	}
	name = r->conf->route[t->route].name;
	if (ks_conf_route_stream(&r->conf->route[t->route], topic, stream, sizeof(stream), err))
		return NULL;
	ks_info("pipeline", "route '%s': topic '%s' goes to stream '%s'", name, topic, stream);
	if (!(t->d = add_dest(r, t->route, stream, err)))
		ks_errbuf_prefix(err, "route '%s': topic '%s'", name, topic);
	return t->d;
}

size_t ks_router_records(const ks_router_t *r)
{
	size_t n = 0;
	int i;

	for (i = 0; i < r->ndests; i++)
		n += ks_kinesis_inflight_records(r->dests[i]->kin);
	return n;
}

size_t ks_router_bytes(const ks_router_t *r)
{
	size_t n = 0;
	int i;

	for (i = 0; i < r->ndests; i++)
		n += ks_kinesis_inflight_bytes(r->dests[i]->kin);
	return n;
}

void ks_router_flush(ks_router_t *r)
{
	int i;

	for (i = 0; i < r->ndests; i++)
		ks_kinesis_flush(r->dests[i]->kin);
}

/* The origins (partition trackers) of revoked partitions, for ks_kinesis_revoke. */
typedef struct origin_set {
	void *const *v;
	int n;
} origin_set;

static int from_origins(void *ud, const ks_record *rec)
{
	const origin_set *o = ud;
	int i;

	for (i = 0; i < o->n; i++)
		if (rec->origin == o->v[i])
			return 1;
	return 0;
}

int ks_router_revoke(ks_router_t *r, void *const *origins, int n, int64_t until, ks_errbuf *err)
{
	origin_set o = { origins, n };
	size_t inflight = 0;
	int i;

	for (i = 0; i < r->ndests; i++)
		inflight += ks_kinesis_revoke(r->dests[i]->kin, from_origins, &o);
	while (inflight && ks_now_ms() < until) {
		if (ks_router_poll(r, 50, -1, err))
			return err->code ? err->code : KS_ERR_FATAL;
		for (inflight = 0, i = 0; i < r->ndests; i++)
			inflight += ks_kinesis_revoked_inflight(r->dests[i]->kin);
	}
	return 0;
}

/*
 * Each writer has its own connections, so only one can be waited on: the one holding records
 * (with the wake fd, as with a single writer). When several hold records the wait is cut to
 * SHARED_WAIT_MS, the longest an answer to another then waits.
 */
int ks_router_poll(ks_router_t *r, int timeout_ms, int wake_fd, ks_errbuf *err)
{
	int i, busy = 0, waiter = 0;

	if (r->ndests == 0) {
		struct pollfd pfd = { .fd = wake_fd, .events = POLLIN };

		if (timeout_ms > 0)
			poll(&pfd, wake_fd >= 0 ? 1 : 0, timeout_ms);
		return 0;
	}
	for (i = 0; i < r->ndests; i++) {
		if (ks_kinesis_inflight_records(r->dests[i]->kin)) {
			busy++;
			waiter = i;
		}
	}
	if (busy > 1 && timeout_ms > SHARED_WAIT_MS)
		timeout_ms = SHARED_WAIT_MS;
	for (i = 0; i < r->ndests; i++)
		if (i != waiter && ks_kinesis_poll(r->dests[i]->kin, 0, -1, err))
			goto fail;
	i = waiter;
	if (ks_kinesis_poll(r->dests[i]->kin, timeout_ms, wake_fd, err))
		goto fail;
	return 0;
fail:
	if (r->ndests > 1)
		ks_errbuf_prefix(err, "stream '%s'", r->dests[i]->conf->stream);
	return KS_ERR_FATAL;
}
