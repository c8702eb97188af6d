/*
 * --preview N: a few messages through decode and transform (the preparer a run uses), shown
 * instead of sent. Reads by assignment, not subscription, so that a running fleet in the same
 * group is not rebalanced (see preview.h), and commits nothing.
 */
#include "preview.h"

#include <jansson.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "consumer.h"
#include "creds.h"
#include "kinesis.h"
#include "log.h"
#include "prepare.h"
#include "putrecords.h"
#include "stream.h"

#define DEFAULT_METADATA_TIMEOUT_MS 10000

const char *ks_preview_kafka_value(const ks_conf *conf, const char *key)
{
	const char *v = NULL;
	int i;

	for (i = 0; i < conf->n_kafka; i++) /* the last setting wins, as in librdkafka */
		if (strcmp(conf->kafka[i].key, key) == 0)
			v = conf->kafka[i].value;
	return v;
}

static const rd_kafka_metadata_topic_t *find_topic(const struct rd_kafka_metadata *md, const char *name)
{
	int i;

	for (i = 0; i < md->topic_cnt; i++)
		if (strcmp(md->topics[i].topic, name) == 0)
			return &md->topics[i];
	return NULL;
}

/* Add @p t's partitions to @p list, or say why it has none. */
static int add_topic(rd_kafka_topic_partition_list_t *list, const rd_kafka_metadata_topic_t *t,
		     const char *bootstrap, ks_errbuf *err)
{
	int i;

	if (t->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED)
		return ks_errbuf_set(err, KS_ERR_AUTH,
				     "topic '%s' on %s: not authorized to describe it -> grant the principal of kafka.sasl.* "
				     "Describe and Read on the topic", t->topic, bootstrap);
	if (t->err || t->partition_cnt == 0)
		return ks_errbuf_set(err, KS_ERR_NOTFOUND,
				     "topic '%s' does not exist on the cluster at %s (%s) -> create it, or fix the "
				     "'topic' property", t->topic, bootstrap,
				     t->err ? rd_kafka_err2str(t->err) : "no partitions");
	for (i = 0; i < t->partition_cnt; i++)
		rd_kafka_topic_partition_list_add(list, t->topic, t->partitions[i].id);
	return 0;
}

static int match_regex(rd_kafka_topic_partition_list_t *list, const struct rd_kafka_metadata *md,
		       const char *pattern, const char *bootstrap, ks_errbuf *err)
{
	regex_t re;
	int i, rc = 0, e;

	if ((e = regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB))) {
		char msg[256];

		regerror(e, &re, msg, sizeof(msg));
		return ks_errbuf_set(err, KS_ERR_CONFIG, "topic: '%s' is not a valid regular expression: %s",
				     pattern, msg);
	}
	/* Kafka's internal topics (__consumer_offsets, __transaction_state) are never data. */
	for (i = 0; i < md->topic_cnt && !rc; i++)
		if (regexec(&re, md->topics[i].topic, 0, NULL, 0) == 0 && strncmp(md->topics[i].topic, "__", 2) != 0)
			rc = add_topic(list, &md->topics[i], bootstrap, err);
	regfree(&re);
	if (!rc && list->cnt == 0)
		rc = ks_errbuf_set(err, KS_ERR_NOTFOUND,
				   "no topic on the cluster at %s matches '%s' -> create one, or fix the 'topic' property",
				   bootstrap, pattern);
	return rc;
}

int ks_preview_partitions(rd_kafka_t *rk, const ks_conf *conf, int timeout_ms, int *brokers,
			  rd_kafka_topic_partition_list_t **out, ks_errbuf *err)
{
	const char *bootstrap = ks_preview_kafka_value(conf, "bootstrap.servers");
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_partition_list_t *list;
	char *names, *tok, *save = NULL;
	rd_kafka_resp_err_t e;
	int rc = 0;

	*out = NULL;
	if (!bootstrap)
		bootstrap = "(kafka.bootstrap.servers unset)";
	if (timeout_ms <= 0)
		timeout_ms = DEFAULT_METADATA_TIMEOUT_MS;
	if ((e = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms)))
		return ks_errbuf_set(err, KS_ERR_IO,
				     "cannot reach the Kafka brokers at %s within %d s: %s -> check "
				     "kafka.bootstrap.servers, the network, and kafka.security.protocol / kafka.sasl.*",
				     bootstrap, (timeout_ms + 999) / 1000, rd_kafka_err2str(e));
	if (brokers)
		*brokers = md->broker_cnt;
	list = rd_kafka_topic_partition_list_new(16);
	if (conf->topic[0] == '^') {
		rc = match_regex(list, md, conf->topic, bootstrap, err);
	} else if (!(names = strdup(conf->topic))) {
		rc = ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
	} else {
		for (tok = strtok_r(names, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
			const rd_kafka_metadata_topic_t *t;

			while (*tok == ' ')
				tok++;
			tok[strcspn(tok, " ")] = '\0';
			if (!*tok)
				continue;
			if (*tok == '^') /* a route's regex, among the routes' topics */
				rc = match_regex(list, md, tok, bootstrap, err);
			else if ((t = find_topic(md, tok)))
				rc = add_topic(list, t, bootstrap, err);
			else
				rc = ks_errbuf_set(err, KS_ERR_NOTFOUND,
						   "topic '%s' does not exist on the cluster at %s -> create it, or fix "
						   "the 'topic' property", tok, bootstrap);
		}
		free(names);
	}
	rd_kafka_metadata_destroy(md);
	if (rc) {
		rd_kafka_topic_partition_list_destroy(list);
		return rc;
	}
	*out = list;
	return 0;
}

/* ---- output ------------------------------------------------------------------------------------ */

/* A destination stream and the largest record it takes (DescribeStreamSummary). */
typedef struct stream_limit {
	char name[512];
	size_t max_record_bytes;
} stream_limit;

typedef struct preview {
	const ks_conf *conf;
	const ks_preview_opts *o;
	FILE *out;
	long messages, records, bad, no_record;
	ks_creds_t *creds;     /* made on the first record that needs a stream's limit */
	stream_limit *limits;  /* each stream asked once */
	int n_limits;
} preview;

/* Text that is valid UTF-8 without control characters is shown as it is, anything else in base64. */
static int printable(const void *p, size_t n)
{
	const unsigned char *s = p;
	json_t *j;
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	if (!(j = json_stringn((const char *)p, n))) /* jansson rejects invalid UTF-8 */
		return 0;
	json_decref(j);
	return 1;
}

static void text_bytes(FILE *out, const void *p, size_t n)
{
	ks_buf b;

	if (printable(p, n)) {
		fwrite(p, 1, n, out);
		return;
	}
	ks_buf_init(&b, 0);
	if (ks_buf_base64(&b, p, n) == 0 && b.data)
		fprintf(out, "base64:%s", b.data);
	ks_buf_clean(&b);
}

/* Set @p name to @p p as a string when it is valid UTF-8, else to its base64 with name_base64: true. */
static void json_bytes(json_t *o, const char *name, const void *p, size_t n)
{
	json_t *s = json_stringn((const char *)p, n);
	char flag[64];
	ks_buf b;

	if (s) {
		json_object_set_new(o, name, s);
		return;
	}
	ks_buf_init(&b, 0);
	if (ks_buf_base64(&b, p, n) == 0)
		json_object_set_new(o, name, json_string(b.data ? b.data : ""));
	ks_buf_clean(&b);
	snprintf(flag, sizeof(flag), "%s_base64", name);
	json_object_set_new(o, flag, json_true());
}

static json_t *json_coords(const rd_kafka_message_t *m, ks_op op)
{
	char opc[2] = { ks_op_char(op), '\0' };

	return json_pack("{s:s, s:i, s:I, s:s}", "topic", rd_kafka_topic_name(m->rkt), "partition",
			 (int)m->partition, "offset", (json_int_t)m->offset, "op", opc);
}

static void json_emit(preview *pv, json_t *o)
{
	if (o) {
		json_dumpf(o, pv->out, JSON_COMPACT);
		fputc('\n', pv->out);
	}
	json_decref(o);
}

static void show_record(preview *pv, const rd_kafka_message_t *m, ks_op op, const ks_record *r)
{
	json_t *o;

	pv->records++;
	if (pv->o->format == KS_PREVIEW_TEXT) {
		fprintf(pv->out, "%s [%d] @%lld %c key=", rd_kafka_topic_name(m->rkt), (int)m->partition,
			(long long)m->offset, ks_op_char(op));
		text_bytes(pv->out, r->pkey, r->pkey_len);
		fputs(" data=", pv->out);
		text_bytes(pv->out, r->data, r->data_len);
		fputc('\n', pv->out);
		return;
	}
	if ((o = json_coords(m, op))) {
		json_bytes(o, "partition_key", r->pkey, r->pkey_len);
		json_bytes(o, "data", r->data, r->data_len);
	}
	json_emit(pv, o);
}

/* A message that makes no record, and never would (tombstones, Debezium 't'/'m' events). */
static void show_none(preview *pv, const rd_kafka_message_t *m, ks_op op, const char *reason, const char *why)
{
	json_t *o;

	pv->no_record++;
	if (pv->o->format == KS_PREVIEW_TEXT) {
		fprintf(pv->out, "%s [%d] @%lld %c no record: %s\n", rd_kafka_topic_name(m->rkt), (int)m->partition,
			(long long)m->offset, ks_op_char(op), why);
		return;
	}
	if ((o = json_coords(m, op))) {
		json_object_set_new(o, "verdict", json_string("no_record"));
		json_object_set_new(o, "reason", json_string(reason));
	}
	json_emit(pv, o);
}

/* What errors.policy would do with a bad record, in the words of the pipeline's bad_record. */
static void show_bad(preview *pv, const rd_kafka_message_t *m, ks_op op, const ks_errbuf *e)
{
	static const char *const verdicts[] = { "fail", "skip", "dlq" };
	const ks_conf *c = pv->conf;
	char what[320];
	json_t *o;

	pv->bad++;
	switch (c->errors_policy) {
	case KS_POLICY_SKIP:
		snprintf(what, sizeof(what), "would be skipped (errors.policy=skip)");
		break;
	case KS_POLICY_DLQ:
		snprintf(what, sizeof(what), "would be dead-lettered to %s (errors.policy=dlq)", c->errors_dlq_topic);
		break;
	case KS_POLICY_FAIL:
	default:
		snprintf(what, sizeof(what), "would stop the worker (errors.policy=fail)");
		break;
	}
	if (pv->o->format == KS_PREVIEW_TEXT) {
		fprintf(pv->out, "bad record (%s): %s -> %s\n", ks_stage_str(e->stage), e->text, what);
		return;
	}
	if ((o = json_coords(m, op))) {
		json_object_set_new(o, "stage", json_string(ks_stage_str(e->stage)));
		json_object_set_new(o, "reason", json_string(e->reason));
		json_object_set_new(o, "error", json_string(e->text));
		json_object_set_new(o, "verdict", json_string(verdicts[c->errors_policy]));
		if (c->errors_policy == KS_POLICY_DLQ)
			json_object_set_new(o, "dlq_topic", json_string(c->errors_dlq_topic));
	}
	json_emit(pv, o);
}

/*
 * The largest record the stream of @p m's route takes, as a run's writer learns it at start
 * (DescribeStreamSummary's MaxRecordSizeInKiB), asked once per stream, and only for a record
 * over the 1 MiB every stream takes (so that a preview needs no AWS access). When the stream cannot be
 * described (no credentials, not reachable), the preview goes on with the 1 MiB every stream takes
 * and says so once.
 */
static size_t stream_max_record(preview *pv, int route, const rd_kafka_message_t *m)
{
	const ks_conf *rc = pv->conf->n_route ? pv->conf->route[route].conf : pv->conf;
	char name[512];
	stream_limit *l;
	ks_stream_info info;
	ks_conf view;
	ks_errbuf e;
	int i, r;

	ks_errbuf_clear(&e);
	if (pv->conf->n_route ? ks_conf_route_stream(&pv->conf->route[route], rd_kafka_topic_name(m->rkt), name,
						      sizeof(name), &e)
			      : snprintf(name, sizeof(name), "%s", rc->stream) >= (int)sizeof(name))
		return KS_MAX_RECORD_BYTES; /* a run stops at this record's stream: not a size question */
	for (i = 0; i < pv->n_limits; i++)
		if (!strcmp(pv->limits[i].name, name))
			return pv->limits[i].max_record_bytes;
	if (!(l = realloc(pv->limits, sizeof(*l) * (size_t)(pv->n_limits + 1))))
		return KS_MAX_RECORD_BYTES;
	pv->limits = l;
	l = &pv->limits[pv->n_limits++];
	snprintf(l->name, sizeof(l->name), "%s", name);
	l->max_record_bytes = KS_MAX_RECORD_BYTES;
	view = *rc; /* shallow: only the stream differs, for a template route's topic */
	view.stream = l->name;
	if (!pv->creds && !(pv->creds = ks_creds_new(pv->conf, NULL, &e)))
		r = e.code;
	else
		r = ks_stream_describe_info(&view, pv->creds, NULL, &info, &e);
	if (r) {
		ks_warn("preview", "%s; records for stream '%s' are checked against 1 MiB, the size every stream takes",
			e.text, name);
		return l->max_record_bytes;
	}
	if (info.max_record_bytes >= KS_MAX_RECORD_BYTES && info.max_record_bytes <= KS_MAX_DATA_BYTES)
		l->max_record_bytes = info.max_record_bytes;
	ks_info("preview", "stream '%s' takes records up to %zu KiB", name, l->max_record_bytes >> 10);
	return l->max_record_bytes;
}

/*
 * One prepared message, judged as the pipeline's handle_prepared does: a bad record by decode
 * or transform, a message that makes no record, or records that must still pass the writer's
 * per-record check (against the stream's own record size) before they would be sent. @returns 0
 * or a fatal error.
 */
static int show(preview *pv, ks_prepared *it, ks_errbuf *err)
{
	const rd_kafka_message_t *m = it->msg;
	int i, rc = 0;

	switch (it->outcome) {
	case KS_PREP_BAD:
		show_bad(pv, m, it->op, &it->err);
		break;
	case KS_PREP_FATAL:
		rc = ks_errbuf_set(err, it->err.code == KS_ERR_NOMEM ? KS_ERR_NOMEM : KS_ERR_FATAL, "%s",
				   it->err.text[0] ? it->err.text : "decode or transform failed");
		break;
	case KS_PREP_SKIP_TOMBSTONE:
		show_none(pv, m, it->op, "tombstone", "tombstone (null value), nothing to send");
		break;
	case KS_PREP_NON_ROW:
		show_none(pv, m, it->op, "non_row_event", "not a row change, skipped whatever errors.policy says");
		break;
	case KS_PREP_RECORDS:
		if (it->n == 0)
			show_none(pv, m, it->op, "no_output", "the transform makes no record of it");
		break;
	case KS_PREP_EVENT:
	default:
		break;
	}
	for (i = 0; i < it->n; i++) {
		ks_put_entry entry = { it->recs[i]->pkey, it->recs[i]->pkey_len, NULL, it->recs[i]->data,
				       it->recs[i]->data_len };
		ks_errbuf e;
		int bad;

		ks_errbuf_clear(&e);
		/* Every stream takes 1 MiB: only a larger record needs its stream's own limit. */
		bad = !rc && ks_putrecords_check_entry(&entry, KS_MAX_RECORD_BYTES, &e) == KS_ERR_BADREC;
		if (bad && entry.pkey_len + entry.data_len > KS_MAX_RECORD_BYTES) {
			ks_errbuf_clear(&e);
			bad = ks_putrecords_check_entry(&entry, stream_max_record(pv, it->route, m), &e) == KS_ERR_BADREC;
		}
		if (bad) {
			e.stage = KS_STAGE_PRODUCE;
			ks_errbuf_prefix(&e, "%s [%d] @%lld", rd_kafka_topic_name(m->rkt), (int)m->partition,
					 (long long)m->offset);
			show_bad(pv, m, it->op, &e);
		} else if (!rc) {
			show_record(pv, m, it->op, it->recs[i]);
		}
		ks_record_destroy(it->recs[i]);
	}
	fflush(pv->out);
	return rc;
}

/* ---- the loop ---------------------------------------------------------------------------------- */

static int part_index(const rd_kafka_topic_partition_list_t *parts, const rd_kafka_message_t *m)
{
	const char *t = rd_kafka_topic_name(m->rkt);
	int i;

	for (i = 0; i < parts->cnt; i++)
		if (parts->elems[i].partition == m->partition && strcmp(parts->elems[i].topic, t) == 0)
			return i;
	return -1;
}

/* Start offsets: the beginning, or the group's committed offsets (else auto.offset.reset). */
static int start_offsets(rd_kafka_t *rk, const ks_conf *conf, rd_kafka_topic_partition_list_t *parts,
			 int from_beginning, int timeout_ms, ks_errbuf *err)
{
	rd_kafka_resp_err_t e;
	int i;

	for (i = 0; i < parts->cnt; i++)
		parts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
	if (from_beginning)
		return 0;
	if ((e = rd_kafka_committed(rk, parts, timeout_ms)))
		return ks_errbuf_set(err, KS_ERR_IO, "cannot read the committed offsets of group '%s': %s -> "
				     "check kafka.group.id, or use --from-beginning",
				     ks_preview_kafka_value(conf, "group.id"), rd_kafka_err2str(e));
	for (i = 0; i < parts->cnt; i++) {
		rd_kafka_topic_partition_t *p = &parts->elems[i];

		ks_debug("preview", "%s [%d]: committed offset %lld", p->topic, (int)p->partition, (long long)p->offset);
		if (p->offset < 0) /* nothing committed: where a run would start (auto.offset.reset) */
			p->offset = RD_KAFKA_OFFSET_STORED;
	}
	return 0;
}

static int consume(preview *pv, rd_kafka_t *rk, ks_preparer_t *pp, rd_kafka_topic_partition_list_t *parts,
		   const ks_stop *stop, ks_errbuf *err)
{
	char *at_end = calloc((size_t)parts->cnt, 1);
	int n_end = 0, rc = 0;

	if (!at_end)
		return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
	while (!rc && pv->messages < pv->o->max_messages && n_end < parts->cnt && !ks_stop_requested(stop) && !ferror(pv->out)) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
		int i;

		if (!m)
			continue;
		i = m->rkt ? part_index(parts, m) : -1;
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			if (i >= 0 && !at_end[i]) {
				at_end[i] = 1;
				n_end++;
			}
		} else if (m->err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || m->err == RD_KAFKA_RESP_ERR__FATAL) {
			rc = ks_errbuf_set(err, KS_ERR_IO, "Kafka: %s -> check kafka.bootstrap.servers and the network",
					   rd_kafka_message_errstr(m));
		} else if (m->err) {
			ks_warn("preview", "%s%s%s: %s", m->rkt ? rd_kafka_topic_name(m->rkt) : "", m->rkt ? " " : "",
				rd_kafka_err2name(m->err), rd_kafka_message_errstr(m));
		} else {
			ks_prepared it;

			if (i >= 0 && at_end[i]) { /* more arrived after the end was seen */
				at_end[i] = 0;
				n_end--;
			}
			memset(&it, 0, sizeof(it));
			it.msg = m;
			if (pv->conf->n_route && (it.route = ks_conf_route_find(pv->conf, rd_kafka_topic_name(m->rkt))) < 0)
				it.route = 0; /* the subscription is the routes' topics: not reached */
			ks_preparer_start(pp, &it, 1);
			ks_preparer_finish(pp);
			pv->messages++;
			rc = show(pv, &it, err);
		}
		rd_kafka_message_destroy(m);
	}
	free(at_end);
	return rc;
}

int ks_preview_run(const ks_conf *conf, const ks_preview_opts *o, FILE *out, const ks_stop *stop,
		   ks_errbuf *err)
{
	rd_kafka_topic_partition_list_t *parts = NULL;
	int timeout = o->metadata_timeout_ms > 0 ? o->metadata_timeout_ms : DEFAULT_METADATA_TIMEOUT_MS;
	preview pv = { conf, o, out, 0, 0, 0, 0, NULL, NULL, 0 };
	ks_preparer_t *pp = NULL;
	rd_kafka_resp_err_t e;
	rd_kafka_t *rk;
	int rc;

	if (!(rk = ks_consumer_new_reader(conf, 1, 0, err)))
		return err->code;
	if ((rc = ks_preview_partitions(rk, conf, timeout, NULL, &parts, err)) ||
	    (rc = start_offsets(rk, conf, parts, o->from_beginning, timeout, err)))
		goto done;
	if ((e = rd_kafka_assign(rk, parts))) {
		rc = ks_errbuf_set(err, KS_ERR_IO, "cannot assign the partitions of '%s': %s", conf->topic,
				   rd_kafka_err2str(e));
		goto done;
	}
	if (conf->n_route) { /* each message through its route's decoder and transform */
		const ks_conf **routes = calloc((size_t)conf->n_route, sizeof(*routes));
		int k;

		for (k = 0; routes && k < conf->n_route; k++)
			routes[k] = conf->route[k].conf;
		pp = routes ? ks_preparer_new_routes(conf, routes, conf->n_route, NULL, err) : NULL;
		if (!routes)
			ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
		free(routes);
	} else {
		pp = ks_preparer_new(conf, NULL, err);
	}
	if (!pp) {
		rc = err->code;
		goto done;
	}
	rc = consume(&pv, rk, pp, parts, stop, err);
	fprintf(stderr, "kinesink: preview: %ld message%s from %d partition%s: %ld record%s, %ld bad, %ld without "
		"a record; nothing was sent to Kinesis or committed\n", pv.messages, pv.messages == 1 ? "" : "s",
		parts->cnt, parts->cnt == 1 ? "" : "s", pv.records, pv.records == 1 ? "" : "s", pv.bad, pv.no_record);
done:
	ks_creds_destroy(pv.creds);
	free(pv.limits);
	ks_preparer_destroy(pp);
	if (parts)
		rd_kafka_topic_partition_list_destroy(parts);
	rd_kafka_consumer_close(rk);
	ks_consumer_destroy(rk);
	return rc;
}
