/*
 * Configuration: the route table. `routes = a, b` names the routes in match order and
 * `route.a.KEY = value` sets route a's own keys (or one CREATE SINK statement per route in one
 * file, see conf_parse.c). At ks_conf_finalize each route gets its own ks_conf: a copy of the
 * top-level one with the route's keys applied, checked by the same rules as a one-stream
 * configuration. Everything after the configuration (writer, transform) then sees one stream.
 * Here too the entry points that know about routes: ks_conf_set (route.* keys to their route,
 * the rest to conf.c) and ks_conf_finalize (conf_check.c's rules on the top level, then routes).
 */
#include "config.h"
#include "conf.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "conf_table.h"

#define TEMPLATE "${topic}"
#define STREAM_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"

/* What a route may set: where its records come from and go, and how they are made and sent.
 * The rest (Kafka, credentials, error policy, in-flight bounds, metrics) is the process's. */
static const char *const route_keys[] = {
	"topic", "stream", "aws.region", "endpoint", "type", "force_append_only", "primary_key",
	"input.format", "raw.envelope", "schema.registry.url", "schema.registry.username",
	"schema.registry.password", "schema.registry.timeout.ms", "schema.registry.type",
	"schema.registry.glue.region", "schema.registry.glue.endpoint", "debezium.tombstones", "ordering",
	"aggregation", "batch.max.records", "batch.max.bytes", "batch.linger.ms", "max.inflight.requests",
	"retry.backoff.ms", "retry.backoff.max.ms", "delivery.timeout.ms", "request.timeout.ms", NULL,
};

int ks_conf_route_key(const char *key)
{
	int i;

	for (i = 0; route_keys[i]; i++)
		if (strcmp(route_keys[i], key) == 0)
			return 1;
	return 0;
}

const char *const *ks_conf_route_keys(void)
{
	return route_keys;
}

/* "topic, stream, ... or request.timeout.ms", for messages. @returns @p out. */
static const char *route_keys_text(char *out, size_t n)
{
	size_t len = 0;
	int i;

	out[0] = '\0';
	for (i = 0; route_keys[i] && len < n; i++)
		len += (size_t)snprintf(out + len, n - len, "%s%s", i ? (route_keys[i + 1] ? ", " : " or ") : "",
					route_keys[i]);
	return out;
}

static int valid_name(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > 64)
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
			return 0;
	return 1;
}

static ks_route *route_get(ks_conf *c, const char *name, size_t n)
{
	ks_route *r;
	int i;

	for (i = 0; i < c->n_route; i++)
		if (strlen(c->route[i].name) == n && strncmp(c->route[i].name, name, n) == 0)
			return &c->route[i];
	if (!(r = realloc(c->route, sizeof(*r) * (size_t)(c->n_route + 1))))
		return NULL;
	c->route = r;
	r = &c->route[c->n_route];
	memset(r, 0, sizeof(*r));
	if (!(r->name = strndup(name, n)))
		return NULL;
	c->n_route++;
	return r;
}

int ks_conf_route_set(ks_conf *c, const char *name, const char *key, const char *value, const char *origin, int line,
		      ks_conf_errors *errs)
{
	char at[256];
	ks_route_kv *kv;
	ks_route *r;
	int i;

	ks_conf_where_str(at, sizeof(at), origin, line);
	if (!valid_name(name, strlen(name))) {
		ks_conf_add_err(errs, "%s: route name '%s' must be 1 to 64 letters, digits, '_' or '-'", at, name);
		return KS_ERR_CONFIG;
	}
	if (!ks_conf_route_key(key)) {
		const char *s = ks_conf_suggest(key);
		char keys[1024];

		if (strncmp(key, "kafka.", 6) != 0 && s && strcmp(s, key) != 0 && ks_conf_route_key(s))
			ks_conf_add_err(errs, "route '%s': %s: unknown key '%s' (did you mean '%s'?)", name, at, key, s);
		else
			ks_conf_add_err(errs, "route '%s': %s: '%s' cannot be set per route: set it once at the top level "
					      "(a route may set %s)",
					name, at, key, route_keys_text(keys, sizeof(keys)));
		return KS_ERR_CONFIG;
	}
	if (!(r = route_get(c, name, strlen(name))))
		return KS_ERR_NOMEM;
	for (i = 0; i < r->n_kv && strcmp(r->kv[i].key, key) != 0; i++)
		;
	if (i == r->n_kv) {
		if (!(kv = realloc(r->kv, sizeof(*kv) * (size_t)(r->n_kv + 1))))
			return KS_ERR_NOMEM;
		r->kv = kv;
		memset(&kv[i], 0, sizeof(kv[i]));
		if (!(kv[i].key = strdup(key)))
			return KS_ERR_NOMEM;
		r->n_kv++;
	} else {
		OPENSSL_cleanse(r->kv[i].value, strlen(r->kv[i].value));
		free(r->kv[i].value);
	}
	kv = &r->kv[i];
	if (!(kv->value = strdup(value)))
		return KS_ERR_NOMEM;
	snprintf(kv->origin, sizeof(kv->origin), "%s", origin ? origin : "?");
	kv->line = line;
	return 0;
}

int ks_conf_set(ks_conf *c, const char *key, const char *value, const char *origin, int line,
		ks_conf_errors *errs)
{
	if (strncmp(key, "route.", 6) == 0)
		return ks_conf_route_set_dotted(c, key + 6, value, origin, line, errs);
	return ks_conf_set_key(c, key, value, origin, line, errs);
}

/* route.NAME.KEY: the name has no dots, the key may. */
int ks_conf_route_set_dotted(ks_conf *c, const char *rest, const char *value, const char *origin, int line,
			     ks_conf_errors *errs)
{
	const char *dot = strchr(rest, '.');
	char name[80], at[256];

	if (!dot || dot == rest || !dot[1] || (size_t)(dot - rest) >= sizeof(name)) {
		ks_conf_where_str(at, sizeof(at), origin, line);
		ks_conf_add_err(errs, "%s: 'route.%s' is not a route key: write route.NAME.KEY, e.g. route.orders.stream", at,
				rest);
		return KS_ERR_CONFIG;
	}
	memcpy(name, rest, (size_t)(dot - rest));
	name[dot - rest] = '\0';
	return ks_conf_route_set(c, name, dot + 1, value, origin, line, errs);
}

/* A copy of @p src's properties (not its kafka.* keys, topic or routes): a route's starting point. */
static int copy_base(ks_conf *dst, const ks_conf *src)
{
	int i;

	memset(dst, 0, sizeof(*dst));
	for (i = 0; i < KS_CONF_NPROPS; i++) {
		const ks_conf_prop *p = &ks_conf_props[i];

		switch (p->type) {
		case KS_CONF_P_STR: {
			const char *v = *KS_CONF_FIELD(src, p, char *);

			if (v && strcmp(p->name, "topic") != 0 && strcmp(p->name, "routes") != 0 &&
			    !(*KS_CONF_FIELD(dst, p, char *) = strdup(v)))
				return KS_ERR_NOMEM;
			break;
		}
		case KS_CONF_P_INT64:
			*KS_CONF_FIELD(dst, p, int64_t) = *KS_CONF_FIELD(src, p, int64_t);
			break;
		default:
			*KS_CONF_FIELD(dst, p, int) = *KS_CONF_FIELD(src, p, int);
			break;
		}
		dst->where[i] = src->where[i];
	}
	dst->exit_at_eof = src->exit_at_eof;
	for (i = 0; i < KS_CONF_NPROPS; i++)
		if (!strcmp(ks_conf_props[i].name, "topic") || !strcmp(ks_conf_props[i].name, "routes"))
			dst->where[i].set = 0;
	return 0;
}

/* Messages about route @p r start with its name, whichever key or rule they are about. */
static void move_errs(ks_conf_errors *to, ks_conf_errors *from, const char *route)
{
	int i;

	for (i = 0; i < from->n; i++)
		ks_conf_add_err(to, "route '%s': %s", route, from->msgs[i]);
	ks_conf_errors_clean(from);
}

/* topic: one ^regex (compiled as librdkafka reads a subscription's), or a list of names. */
static void route_topic(ks_route *r, ks_conf_errors *errs)
{
	const char *t = r->conf->topic;
	char at[256], msg[256];
	int e;

	if (!t || t[0] != '^')
		return;
	ks_conf_at(r->conf, "topic", at, sizeof(at));
	if (strchr(t, ',')) {
		ks_conf_add_err(errs, "%s: topic '%s' is a regex with a ',': the subscription is a comma-separated list, so "
				      "a route's regex cannot hold one (write {1,3} as a repetition by hand)",
				at, t);
		return;
	}
	if (!(r->re = malloc(sizeof(regex_t)))) {
		ks_conf_add_err(errs, "out of memory");
		return;
	}
	if ((e = regcomp(r->re, t, REG_EXTENDED | REG_NOSUB))) {
		regerror(e, r->re, msg, sizeof(msg));
		free(r->re);
		r->re = NULL;
		ks_conf_add_err(errs, "%s: topic '%s' is not a valid regex: %s", at, t, msg);
	}
}

/* stream: a name, an ARN, or a template with ${topic}: checked with a stand-in topic. */
static void route_stream(ks_route *r, ks_conf_errors *errs)
{
	const char *s = r->conf->stream, *d = s ? strstr(s, "${") : NULL;
	char at[256];

	if (!d)
		return;
	ks_conf_at(r->conf, "stream", at, sizeof(at));
	if (strncmp(d, TEMPLATE, strlen(TEMPLATE)) != 0 || strstr(d + strlen(TEMPLATE), "${")) {
		ks_conf_add_err(errs, "%s: stream '%s': the only placeholder a stream template may hold is ${topic}, once", at,
				s);
		return;
	}
	r->is_template = 1;
}

static int route_index(const ks_conf *c, const char *name)
{
	int i;

	for (i = 0; i < c->n_route; i++)
		if (!strcmp(c->route[i].name, name))
			return i;
	return -1;
}

/* The routes in `routes` order; a route.* key of a route `routes` does not name is an error. */
static int order_routes(ks_conf *c, ks_conf_errors *errs)
{
	ks_route *sorted;
	char *list, *tok, *save = NULL, at[256];
	int n = 0, i, k, rc = 0;

	ks_conf_at(c, "routes", at, sizeof(at));
	if (!c->routes) {
		char kat[256];

		ks_conf_where_str(kat, sizeof(kat), c->route[0].kv[0].origin, c->route[0].kv[0].line);
		ks_conf_add_err(errs, "route '%s': %s: route.%s.%s is set but routes is not: list the routes in match order, e.g. routes = %s",
				c->route[0].name, kat, c->route[0].name, c->route[0].kv[0].key, c->route[0].name);
		return KS_ERR_CONFIG;
	}
	if (!(list = strdup(c->routes)) || !(sorted = calloc((size_t)c->n_route + 64, sizeof(*sorted)))) {
		free(list);
		return KS_ERR_NOMEM;
	}
	for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *t = ks_conf_trim(tok);

		if (!*t)
			continue;
		if (!valid_name(t, strlen(t))) {
			ks_conf_add_err(errs, "%s: routes: route name '%s' must be 1 to 64 letters, digits, '_' or '-'", at, t);
			rc = KS_ERR_CONFIG;
			continue;
		}
		for (k = 0; k < n && strcmp(sorted[k].name, t); k++)
			;
		if (k < n) {
			ks_conf_add_err(errs, "%s: routes names route '%s' twice", at, t);
			rc = KS_ERR_CONFIG;
			continue;
		}
		if ((i = route_index(c, t)) < 0) {
			ks_conf_add_err(errs, "%s: routes names route '%s' but no route.%s.* key is set: give it at least route.%s.topic",
					at, t, t, t);
			rc = KS_ERR_CONFIG;
			continue;
		}
		if (n >= c->n_route)
			break;
		sorted[n] = c->route[i];
		c->route[i].name = (char *)""; /* moved */
		n++;
	}
	free(list);
	for (i = 0; i < c->n_route; i++) {
		if (c->route[i].name[0]) {
			char kat[256];

			ks_conf_where_str(kat, sizeof(kat), c->route[i].kv[0].origin, c->route[i].kv[0].line);
			ks_conf_add_err(errs, "route '%s': %s: route.%s.%s is set but routes (%s) does not name route '%s': add it, or fix the name",
					c->route[i].name, kat, c->route[i].name, c->route[i].kv[0].key, c->routes,
					c->route[i].name);
			sorted[n++] = c->route[i]; /* kept for cleaning */
			rc = KS_ERR_CONFIG;
		}
	}
	if (n == 0 && rc == 0) {
		ks_conf_add_err(errs, "%s: routes is empty: name at least one route", at);
		rc = KS_ERR_CONFIG;
	}
	free(c->route);
	c->route = sorted;
	c->n_route = n;
	return rc;
}

/* A literal topic of a later route that an earlier route already takes would never be used. */
static void check_overlaps(ks_conf *c, ks_conf_errors *errs)
{
	int i, k;

	for (i = 0; i < c->n_route; i++) {
		char *list, *tok, *save = NULL, at[256];
		ks_route *r = &c->route[i];

		if (r->re || !r->conf->topic || !(list = strdup(r->conf->topic)))
			continue;
		ks_conf_at(r->conf, "topic", at, sizeof(at));
		for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			char *t = ks_conf_trim(tok);

			if (*t && (k = ks_conf_route_find(c, t)) >= 0 && k < i)
				ks_conf_add_err(errs, "route '%s': %s: topic '%s' is already taken by route '%s' (topic %s), listed "
						      "before it: routes match in order and the first wins; remove it from one of them",
						r->name, at, t, c->route[k].name, c->route[k].conf->topic);
		}
		free(list);
	}
}

/* Top-level topic with routes: the subscription, each of its names taken by some route. Else
 * the subscription is every route's topics. */
static void subscription(ks_conf *c, ks_conf_errors *errs)
{
	ks_buf b;
	char *list, *tok, *save = NULL, at[256];
	int i;

	if (c->topic && ks_conf_is_set(c, "topic")) {
		ks_conf_at(c, "topic", at, sizeof(at));
		if (c->topic[0] == '^' || !(list = strdup(c->topic)))
			return; /* a regex subscription: its topics are matched as they come */
		for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			char *t = ks_conf_trim(tok);

			if (*t && ks_conf_route_find(c, t) < 0)
				ks_conf_add_err(errs, "%s: topic '%s' matches no route: add a route whose topic names or matches it, or remove it from topic",
						at, t);
		}
		free(list);
		return;
	}
	ks_buf_init(&b, 1 << 20);
	for (i = 0; i < c->n_route; i++)
		if (c->route[i].conf->topic && ((i && ks_buf_puts(&b, ",")) || ks_buf_puts(&b, c->route[i].conf->topic)))
			break;
	free(c->topic);
	c->topic = b.data ? strdup(b.data) : NULL;
	ks_buf_clean(&b);
}

/* Order the routes as `routes` says, build and check each route's configuration, and work out
 * the subscription. @returns 0 or KS_ERR_CONFIG. */
static int routes_finalize(ks_conf *c, ks_conf_errors *errs)
{
	int before = errs ? errs->n : 0, i, k;

	if (c->n_route == 0) {
		char at[256];

		ks_conf_add_err(errs, "%s: routes = %s but no route.NAME.* key is set: give each route at least route.NAME.topic and a stream",
				ks_conf_at(c, "routes", at, sizeof(at)), c->routes);
		return KS_ERR_CONFIG;
	}
	if (order_routes(c, errs))
		return KS_ERR_CONFIG;
	for (i = 0; i < c->n_route; i++) {
		ks_route *r = &c->route[i];
		ks_conf_errors mine = { 0 };

		if (!(r->conf = malloc(sizeof(*r->conf))) || copy_base(r->conf, c)) {
			ks_conf_add_err(errs, "out of memory");
			return KS_ERR_NOMEM;
		}
		for (k = 0; k < r->n_kv; k++)
			ks_conf_set(r->conf, r->kv[k].key, r->kv[k].value, r->kv[k].origin, r->kv[k].line, &mine);
		if (!r->conf->topic || !*r->conf->topic)
			ks_conf_add_err(&mine, "missing route.%s.topic: the Kafka topic(s) this route reads (names, or one ^regex)",
					r->name);
		else
			route_topic(r, &mine);
		if (!mine.n) {
			route_stream(r, &mine);
			ks_conf_check_output(r->conf, &mine);
		}
		move_errs(errs, &mine, r->name);
	}
	if (errs && errs->n > before)
		return KS_ERR_CONFIG;
	check_overlaps(c, errs);
	subscription(c, errs);
	/* The process's own AWS calls (STS, MSK IAM) need a region: the first route's when none is set. */
	if ((!c->aws_region || !*c->aws_region) && c->route[0].conf->aws_region) {
		free(c->aws_region);
		if (!(c->aws_region = strdup(c->route[0].conf->aws_region)))
			return KS_ERR_NOMEM;
	}
	return errs && errs->n > before ? KS_ERR_CONFIG : 0;
}

int ks_conf_finalize(ks_conf *c, ks_conf_errors *errs)
{
	int before = errs ? errs->n : 0;
	char at[256];

	if (c->stream && strstr(c->stream, "${"))
		ks_conf_add_err(errs, "%s: stream '%s' is a template: ${topic} only means something in a route's stream (route.NAME.stream)",
				ks_conf_at(c, "stream", at, sizeof(at)), c->stream);
	if (c->routes || c->n_route) {
		ks_conf_check_process(c, errs);
		if ((errs ? errs->n : 0) == before)
			routes_finalize(c, errs);
	} else {
		ks_conf_check_all(c, errs);
	}
	return (errs ? errs->n : 0) > before ? KS_ERR_CONFIG : 0;
}
/* ---- at run time -------------------------------------------------------------------------------- */

static int in_list(const char *list, const char *topic)
{
	size_t n = strlen(topic);
	const char *p = list;

	while (*p) {
		const char *e;
		size_t len;

		while (*p == ' ' || *p == ',')
			p++;
		e = p + strcspn(p, ",");
		len = (size_t)(e - p);
		while (len && p[len - 1] == ' ')
			len--;
		if (len == n && len && !strncmp(p, topic, n))
			return 1;
		p = e;
	}
	return 0;
}

int ks_conf_route_find(const ks_conf *c, const char *topic)
{
	int i;

	for (i = 0; i < c->n_route; i++) {
		const ks_route *r = &c->route[i];

		if (!r->conf || !r->conf->topic)
			continue;
		if (r->re ? regexec(r->re, topic, 0, NULL, 0) == 0 : in_list(r->conf->topic, topic))
			return i;
	}
	return -1;
}

int ks_conf_route_stream(const ks_route *r, const char *topic, char *out, size_t n, ks_errbuf *err)
{
	const char *s = r->conf->stream, *d = r->is_template ? strstr(s, TEMPLATE) : NULL;
	const char *name;
	int len;

	if (!d)
		len = snprintf(out, n, "%s", s);
	else
		len = snprintf(out, n, "%.*s%s%s", (int)(d - s), s, topic, d + strlen(TEMPLATE));
	if (len < 0 || (size_t)len >= n)
		return ks_errbuf_set(err, KS_ERR_CONFIG, "route '%s': stream '%s' for topic '%s' is too long", r->name, s,
				     topic);
	name = strncmp(out, "arn:", 4) == 0 && strrchr(out, '/') ? strrchr(out, '/') + 1 : out;
	if (!*name || strlen(name) > 128 || strspn(name, STREAM_CHARS) < strlen(name))
		return ks_errbuf_set(err, KS_ERR_CONFIG,
				     "route '%s': topic '%s' gives stream name '%s' (from %s): a stream name is 1 to 128 "
				     "letters, digits, '_', '.' or '-'",
				     r->name, topic, name, s);
	return 0;
}
