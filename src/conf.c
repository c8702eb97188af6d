/*
 * Configuration: one declarative property table drives parsing (properties files and
 * CREATE SINK statements), validation, --help-config, --check and the man page.
 */
#include "config.h"
#include "conf.h"

#include <ctype.h>
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <openssl/crypto.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

typedef enum { P_STR, P_INT, P_INT64, P_BOOL, P_ENUM } ptype;

typedef struct prop {
	const char *name;
	ptype type;
	size_t off;
	const char *def;          /**< default as text (NULL: unset) */
	int64_t min, max;
	const char *const *enums; /**< allowed values, index = stored int */
	int secret;
	const char *doc;
} prop;

static const char *const e_type[] = { "append-only", "debezium", "upsert", NULL };
static const char *const e_input[] = { "debezium-json", "debezium-avro", "json", "raw", NULL };
static const char *const e_envelope[] = { "none", "kafka", NULL };
static const char *const e_ordering[] = { "key", "none", NULL };
static const char *const e_agg[] = { "none", "kpl", NULL };
static const char *const e_policy[] = { "fail", "skip", "dlq", NULL };
static const char *const e_logfmt[] = { "text", "json", NULL };
static const char *const e_loglevel[] = { "error", "warn", "info", "debug", NULL };

#define O(f) offsetof(ks_conf, f)
#define MIB (1024 * 1024)
#define I32 2147483647

static const prop props[] = {
	/* The reference's keys. */
	{ "connector", P_STR, O(connector), "kinesis", 0, 0, NULL, 0,
	  "Sink connector; must be 'kinesis'." },
	{ "stream", P_STR, O(stream), NULL, 0, 0, NULL, 0,
	  "Required. Name of the Kinesis data stream to write to." },
	{ "aws.region", P_STR, O(aws_region), NULL, 0, 0, NULL, 0,
	  "Required. AWS region of the stream, e.g. us-east-1." },
	{ "endpoint", P_STR, O(endpoint), NULL, 0, 0, NULL, 0,
	  "Kinesis endpoint URL; default https://kinesis.<region>.amazonaws.com (http:// allowed for emulators)." },
	{ "aws.credentials.access_key_id", P_STR, O(access_key_id), NULL, 0, 0, NULL, 1,
	  "Static AWS access key id; without it the standard AWS credential chain is used." },
	{ "aws.credentials.secret_access_key", P_STR, O(secret_access_key), NULL, 0, 0, NULL, 1,
	  "Static AWS secret access key (with access_key_id)." },
	{ "aws.credentials.session_token", P_STR, O(session_token), NULL, 0, 0, NULL, 1,
	  "Session token of temporary static credentials." },
	{ "aws.credentials.role.arn", P_STR, O(role_arn), NULL, 0, 0, NULL, 0,
	  "Role to assume with STS AssumeRole on top of the base credentials." },
	{ "aws.credentials.role.external_id", P_STR, O(role_external_id), NULL, 0, 0, NULL, 1,
	  "External id passed to STS AssumeRole." },
	{ "kafka.aws.region", P_STR, O(kafka_aws_region), NULL, 0, 0, NULL, 0,
	  "kafka.sasl.mechanism=AWS_MSK_IAM: region of the MSK cluster; default: from the broker host names, else aws.region." },
	{ "kafka.aws.credentials.role.arn", P_STR, O(kafka_role_arn), NULL, 0, 0, NULL, 0,
	  "kafka.sasl.mechanism=AWS_MSK_IAM: role to assume for Kafka instead of aws.credentials.role.arn." },
	{ "kafka.aws.credentials.role.external_id", P_STR, O(kafka_role_external_id), NULL, 0, 0, NULL, 1,
	  "External id passed to STS AssumeRole for kafka.aws.credentials.role.arn." },
	{ "type", P_ENUM, O(type), NULL, 0, 0, e_type, 0,
	  "Required. Output type: append-only, debezium or upsert (FORMAT PLAIN/DEBEZIUM/UPSERT in CREATE SINK)." },
	{ "force_append_only", P_BOOL, O(force_append_only), "false", 0, 0, NULL, 0,
	  "With type=append-only on a CDC input: turn UPDATEs into INSERTs and drop DELETEs." },
	{ "primary_key", P_STR, O(primary_key), NULL, 0, 0, NULL, 0,
	  "Comma-separated primary-key columns; default: the fields of the Kafka key message." },
	/* Input. */
	{ "topic", P_STR, O(topic), NULL, 0, 0, NULL, 0,
	  "Required. Kafka topic(s): comma-separated names or one ^regex (CREATE SINK ... FROM topic)." },
	{ "input.format", P_ENUM, O(input_format), "debezium-json", 0, 0, e_input, 0,
	  "How Kafka values are decoded: debezium-json, debezium-avro, json or raw." },
	{ "raw.envelope", P_ENUM, O(raw_envelope), "none", 0, 0, e_envelope, 0,
	  "input.format=raw: none writes the value bytes; kafka writes a JSON object of topic, partition, offset, timestamp, key, headers and value." },
	{ "schema.registry.url", P_STR, O(registry_url), NULL, 0, 0, NULL, 0,
	  "Schema Registry base URL (required for debezium-avro)." },
	{ "schema.registry.username", P_STR, O(registry_username), NULL, 0, 0, NULL, 0,
	  "Schema Registry basic-auth user." },
	{ "schema.registry.password", P_STR, O(registry_password), NULL, 0, 0, NULL, 1,
	  "Schema Registry basic-auth password." },
	{ "schema.registry.timeout.ms", P_INT, O(registry_timeout_ms), "10000", 100, 600000, NULL, 0,
	  "Time allowed to fetch one schema, retries included." },
	/* Kinesis writer. */
	{ "batch.max.records", P_INT, O(batch_max_records), "500", 1, 500, NULL, 0,
	  "Records per PutRecords request (Kinesis allows 500)." },
	{ "batch.max.bytes", P_INT, O(batch_max_bytes), "5242880", 1, 5 * MIB, NULL, 0,
	  "Bytes (partition keys plus data) per PutRecords request (Kinesis allows 5 MiB)." },
	{ "batch.linger.ms", P_INT, O(batch_linger_ms), "100", 0, 60000, NULL, 0,
	  "How long a batch may wait to fill before it is sent." },
	{ "max.inflight.requests", P_INT, O(max_inflight_requests), "8", 1, 256, NULL, 0,
	  "PutRecords requests in flight at once." },
	{ "max.inflight.records", P_INT, O(max_inflight_records), "5000", 1, 10000000, NULL, 0,
	  "Records held between Kafka and a Kinesis acknowledgement; past it partitions are paused." },
	{ "max.inflight.bytes", P_INT64, O(max_inflight_bytes), "16777216", MIB, (int64_t)64 * 1024 * MIB, NULL, 0,
	  "Bytes held between Kafka and a Kinesis acknowledgement; past it partitions are paused." },
	{ "decode.threads", P_INT, O(decode_threads), "2", 1, 64, NULL, 0,
	  "Threads that decode and transform messages (the pipeline's own among them); order is kept. Raw input uses one." },
	{ "retry.backoff.ms", P_INT, O(retry_backoff_ms), "100", 1, 600000, NULL, 0,
	  "First retry delay of a failed record (doubles, with jitter)." },
	{ "retry.backoff.max.ms", P_INT, O(retry_backoff_max_ms), "10000", 1, 3600000, NULL, 0,
	  "Largest retry delay." },
	{ "delivery.timeout.ms", P_INT64, O(delivery_timeout_ms), "300000", 0, (int64_t)30 * 24 * 3600 * 1000, NULL, 0,
	  "Give up on a record (and stop, exit 1) after retrying this long; 0 retries forever." },
	{ "request.timeout.ms", P_INT, O(request_timeout_ms), "30000", 100, 600000, NULL, 0,
	  "Time allowed for one HTTP request." },
	{ "connect.timeout.ms", P_INT, O(connect_timeout_ms), "10000", 100, 600000, NULL, 0,
	  "Time allowed to connect to an endpoint." },
	{ "ssl.ca.location", P_STR, O(ssl_ca_location), NULL, 0, 0, NULL, 0,
	  "CA bundle file for HTTPS (default: the system's)." },
	{ "http.proxy", P_STR, O(http_proxy), NULL, 0, 0, NULL, 0,
	  "HTTP(S) proxy URL (default: the https_proxy/no_proxy environment)." },
	{ "ordering", P_ENUM, O(ordering), "key", 0, 0, e_ordering, 0,
	  "key: never two records of one partition key in flight (order kept per key); none: faster." },
	{ "aggregation", P_ENUM, O(aggregation), "none", 0, 0, e_agg, 0,
	  "kpl: the records queued behind a key's record go with it in one KPL-aggregated Kinesis record (with ordering=key)." },
	{ "debezium.tombstones", P_BOOL, O(debezium_tombstones), "true", 0, 0, NULL, 0,
	  "type=debezium: emit an empty-data record after each delete." },
	/* Delivery engine. */
	{ "errors.policy", P_ENUM, O(errors_policy), "fail", 0, 0, e_policy, 0,
	  "A bad record stops the worker (fail), is logged and skipped (skip), or goes to errors.dlq.topic (dlq)." },
	{ "errors.dlq.topic", P_STR, O(errors_dlq_topic), NULL, 0, 0, NULL, 0,
	  "Kafka topic receiving bad records with errors.policy=dlq." },
	{ "offsets.commit.interval.ms", P_INT, O(offsets_commit_interval_ms), "5000", 10, 3600000, NULL, 0,
	  "How often acknowledged offsets are committed to Kafka." },
	{ "rebalance.drain.ms", P_INT, O(rebalance_drain_ms), "10000", 0, 600000, NULL, 0,
	  "On partition revoke, how long to wait for their records in flight." },
	{ "shutdown.timeout.ms", P_INT, O(shutdown_timeout_ms), "30000", 0, 600000, NULL, 0,
	  "On SIGTERM/SIGINT, how long to wait for records in flight." },
	/* Operability. */
	{ "metrics.listen", P_STR, O(metrics_listen), "127.0.0.1:9464", 0, 0, NULL, 0,
	  "host:port of the /metrics, /healthz, /readyz endpoint, or off." },
	{ "stats.interval.ms", P_INT, O(stats_interval_ms), "60000", 0, 86400000, NULL, 0,
	  "Interval of the progress log line; 0 disables it." },
	{ "log.format", P_ENUM, O(log_format), "text", 0, 0, e_logfmt, 0,
	  "text, or json (one object per line)." },
	{ "log.level", P_ENUM, O(log_level), "info", 0, 0, e_loglevel, 0,
	  "error, warn, info or debug (-v/-q adjust it)." },
};
#define NPROPS ((int)(sizeof(props) / sizeof(props[0])))

_Static_assert(sizeof(props) / sizeof(props[0]) <= sizeof(((ks_conf *)0)->where) /
		       sizeof(((ks_conf *)0)->where[0]),
	       "ks_conf.where must have a slot per property");

#define FIELD(c, p, T) ((T *)(void *)((char *)(c) + (p)->off))

static void add_err(ks_conf_errors *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_err(ks_conf_errors *e, const char *fmt, ...)
{
	char **n;
	va_list ap;
	ks_buf b;

	if (!e)
		return;
	ks_buf_init(&b, 4096);
	va_start(ap, fmt);
	{
		va_list ap2;
		int len;

		va_copy(ap2, ap);
		len = vsnprintf(NULL, 0, fmt, ap2);
		va_end(ap2);
		if (len >= 0 && ks_buf_reserve(&b, (size_t)len) == 0) {
			vsnprintf(b.data, (size_t)len + 1, fmt, ap);
			b.len = (size_t)len;
		}
	}
	va_end(ap);
	if (!b.data)
		return;
	n = realloc(e->msgs, sizeof(*n) * (size_t)(e->n + 1));
	if (!n) {
		ks_buf_clean(&b);
		return;
	}
	e->msgs = n;
	e->msgs[e->n++] = b.data;
}

void ks_conf_errors_clean(ks_conf_errors *e)
{
	int i;

	for (i = 0; i < e->n; i++)
		free(e->msgs[i]);
	free(e->msgs);
	e->msgs = NULL;
	e->n = 0;
}

/* "file:3" or "-X" for messages. */
static void where_str(char *out, size_t n, const char *origin, int line)
{
	if (line > 0)
		snprintf(out, n, "%s:%d", origin ? origin : "?", line);
	else
		snprintf(out, n, "%s", origin ? origin : "?");
}

static const prop *find_prop(const char *name)
{
	int i;

	for (i = 0; i < NPROPS; i++)
		if (strcmp(props[i].name, name) == 0)
			return &props[i];
	return NULL;
}

static int edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j;
	int row[128], prev, tmp;

	if (lb >= sizeof(row) / sizeof(row[0]))
		return 1000;
	for (j = 0; j <= lb; j++)
		row[j] = (int)j;
	for (i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = (int)i;
		for (j = 1; j <= lb; j++) {
			int cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
			int best = prev + cost;

			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			tmp = row[j];
			row[j] = best;
			prev = tmp;
		}
	}
	return row[lb];
}

static const char *suggest(const char *key)
{
	const char *best = NULL;
	int i, bestd = 1000;

	for (i = 0; i < NPROPS; i++) {
		int d = edit_distance(key, props[i].name);

		if (d < bestd) {
			bestd = d;
			best = props[i].name;
		}
	}
	/* Only suggest what is plausibly a typo. */
	return bestd <= 3 || (best && bestd <= (int)strlen(key) / 3) ? best : NULL;
}

static int parse_bool(const char *v, int *out)
{
	if (strcasecmp(v, "true") == 0) {
		*out = 1;
		return 0;
	}
	if (strcasecmp(v, "false") == 0) {
		*out = 0;
		return 0;
	}
	return -1;
}

static int parse_i64(const char *v, int64_t *out)
{
	char *end;
	long long x;

	errno = 0;
	x = strtoll(v, &end, 10);
	if (errno || end == v || *end)
		return -1;
	*out = x;
	return 0;
}

static void list_enums(char *out, size_t n, const char *const *e)
{
	size_t len = 0;
	int i;

	out[0] = '\0';
	for (i = 0; e[i]; i++)
		len += (size_t)snprintf(out + len, len < n ? n - len : 0, "%s%s",
					i ? (e[i + 1] ? ", " : " or ") : "", e[i]);
}

/* Store one typed value; value "" on an enum/number/bool is an error like any other. */
static int set_prop(ks_conf *c, const prop *p, const char *value, const char *at, ks_conf_errors *errs)
{
	int64_t n;
	int b, i;

	switch (p->type) {
	case P_STR: {
		char **f = FIELD(c, p, char *);
		char *dup = strdup(value);

		if (!dup)
			return KS_ERR_NOMEM;
		if (*f) {
			if (p->secret)
				OPENSSL_cleanse(*f, strlen(*f));
			free(*f);
		}
		*f = dup;
		return 0;
	}
	case P_BOOL:
		if (parse_bool(value, &b)) {
			if (strcmp(p->name, "force_append_only") == 0)
				add_err(errs, "%s: `force_append_only` must be true or false, got '%s'", at, value);
			else
				add_err(errs, "%s: %s must be true or false, got '%s'", at, p->name, value);
			return KS_ERR_CONFIG;
		}
		*FIELD(c, p, int) = b;
		return 0;
	case P_INT:
	case P_INT64:
		if (parse_i64(value, &n)) {
			add_err(errs, "%s: %s must be a whole number, got '%s'", at, p->name, value);
			return KS_ERR_CONFIG;
		}
		if (n < p->min || n > p->max) {
			add_err(errs, "%s: %s = %s is out of range: allowed %lld to %lld", at, p->name,
				value, (long long)p->min, (long long)p->max);
			return KS_ERR_CONFIG;
		}
		if (p->type == P_INT)
			*FIELD(c, p, int) = (int)n;
		else
			*FIELD(c, p, int64_t) = n;
		return 0;
	case P_ENUM:
		for (i = 0; p->enums[i]; i++) {
			if (strcasecmp(value, p->enums[i]) == 0) {
				*FIELD(c, p, int) = i;
				return 0;
			}
		}
		if (strcmp(p->name, "type") == 0) {
			/* The reference's wording. */
			add_err(errs, "%s: `type` must be append-only, debezium, or upsert (got '%s')", at, value);
		} else {
			char allowed[256];

			list_enums(allowed, sizeof(allowed), p->enums);
			add_err(errs, "%s: %s must be %s, got '%s'", at, p->name, allowed, value);
		}
		return KS_ERR_CONFIG;
	}
	return KS_ERR_CONFIG;
}

static int is_secret_kafka_key(const char *k)
{
	return strstr(k, "password") || strstr(k, "secret") || strstr(k, "sasl.oauthbearer.config") ||
	       strstr(k, "ssl.key.pem") || strstr(k, "ssl_key");
}

static int set_kafka(ks_conf *c, const char *key, const char *value, const char *at, int line,
		     ks_conf_errors *errs)
{
	char errstr[512];
	rd_kafka_conf_t *rk;
	ks_kv *n;
	int i;

	if (!*key) {
		add_err(errs, "%s: 'kafka.' needs a librdkafka property name after the prefix", at);
		return KS_ERR_CONFIG;
	}
	/* librdkafka is the authority on its own keys: let it judge, show its words. */
	rk = rd_kafka_conf_new();
	if (rd_kafka_conf_set(rk, key, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
		rd_kafka_conf_destroy(rk);
		add_err(errs, "%s: kafka.%s: %s", at, key, errstr);
		return KS_ERR_CONFIG;
	}
	rd_kafka_conf_destroy(rk);
	for (i = 0; i < c->n_kafka; i++) {
		if (strcmp(c->kafka[i].key, key) == 0) {
			char *v = strdup(value);

			if (!v)
				return KS_ERR_NOMEM;
			OPENSSL_cleanse(c->kafka[i].value, strlen(c->kafka[i].value));
			free(c->kafka[i].value);
			c->kafka[i].value = v;
			c->kafka[i].line = line;
			return 0;
		}
	}
	n = realloc(c->kafka, sizeof(*n) * (size_t)(c->n_kafka + 1));
	if (!n)
		return KS_ERR_NOMEM;
	c->kafka = n;
	n[c->n_kafka].key = strdup(key);
	n[c->n_kafka].value = strdup(value);
	n[c->n_kafka].line = line;
	if (!n[c->n_kafka].key || !n[c->n_kafka].value) {
		free(n[c->n_kafka].key);
		free(n[c->n_kafka].value);
		return KS_ERR_NOMEM;
	}
	c->n_kafka++;
	return 0;
}

int ks_conf_set(ks_conf *c, const char *key, const char *value, const char *origin, int line,
		ks_conf_errors *errs)
{
	char at[256];
	const prop *p;
	int r;

	where_str(at, sizeof(at), origin, line);
	if (strncmp(key, "kafka.", 6) == 0 && strncmp(key, "kafka.aws.", 10) != 0) /* kafka.aws.*: ours */
		return set_kafka(c, key + 6, value, at, line, errs);
	if (!(p = find_prop(key))) {
		const char *s = suggest(key);

		if (s)
			add_err(errs, "%s: unknown key '%s' (did you mean '%s'?)", at, key, s);
		else
			add_err(errs, "%s: unknown key '%s' (kinesink --help-config lists every key)", at, key);
		return KS_ERR_CONFIG;
	}
	if ((r = set_prop(c, p, value, at, errs)) == 0) {
		struct ks_conf_where *w = &c->where[p - props];

		w->set = 1;
		w->line = line;
		snprintf(w->origin, sizeof(w->origin), "%s", origin ? origin : "?");
	}
	return r;
}

void ks_conf_init(ks_conf *c)
{
	int i;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < NPROPS; i++)
		if (props[i].def)
			set_prop(c, &props[i], props[i].def, "default", NULL);
}

void ks_conf_clean(ks_conf *c)
{
	int i;

	for (i = 0; i < NPROPS; i++) {
		if (props[i].type == P_STR) {
			char **f = FIELD(c, &props[i], char *);

			if (*f && props[i].secret)
				OPENSSL_cleanse(*f, strlen(*f));
			free(*f);
		}
	}
	for (i = 0; i < c->n_pk_cols; i++)
		free(c->pk_cols[i]);
	free(c->pk_cols);
	for (i = 0; i < c->n_kafka; i++) {
		OPENSSL_cleanse(c->kafka[i].value, strlen(c->kafka[i].value));
		free(c->kafka[i].key);
		free(c->kafka[i].value);
	}
	free(c->kafka);
	free(c->sink_name);
	memset(c, 0, sizeof(*c));
}

/* ---- properties files ---------------------------------------------------------------- */

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int load_properties(ks_conf *c, char *text, const char *origin, ks_conf_errors *errs)
{
	int line = 0, rc = 0;
	char *save = NULL, *l;

	/* strtok_r would skip empty lines and lose the count: split by hand. */
	for (l = text; l; l = save) {
		char *eq, *key, *val;

		save = strchr(l, '\n');
		if (save)
			*save++ = '\0';
		line++;
		l = trim(l);
		if (!*l || *l == '#')
			continue;
		if (!(eq = strchr(l, '='))) {
			char at[256];

			where_str(at, sizeof(at), origin, line);
			add_err(errs, "%s: expected 'key = value', got '%.60s'", at, l);
			rc = KS_ERR_CONFIG;
			continue;
		}
		*eq = '\0';
		key = trim(l);
		val = trim(eq + 1);
		if (ks_conf_set(c, key, val, origin, line, errs))
			rc = KS_ERR_CONFIG;
	}
	return rc;
}

/* ---- CREATE SINK statements ---------------------------------------------------------- */

typedef enum { T_END, T_WORD, T_STR, T_QIDENT, T_PUNCT } toktype;

typedef struct lexer {
	const char *s;
	size_t pos;
	int line;
	toktype type;
	int tline;        /* line where the current token starts */
	ks_buf text;      /* current token's text (unquoted) */
	char punct;
	const char *origin;
	ks_conf_errors *errs;
	int failed;
} lexer;

static void lex_error(lexer *lx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void lex_error(lexer *lx, const char *fmt, ...)
{
	char msg[512], at[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	where_str(at, sizeof(at), lx->origin, lx->tline);
	add_err(lx->errs, "%s: %s", at, msg);
	lx->failed = 1;
}

static void lex_next(lexer *lx)
{
	const char *s = lx->s;
	char q;

	ks_buf_reset(&lx->text);
	for (;;) {
		while (s[lx->pos] && isspace((unsigned char)s[lx->pos])) {
			if (s[lx->pos] == '\n')
				lx->line++;
			lx->pos++;
		}
		if (s[lx->pos] == '-' && s[lx->pos + 1] == '-') {
			while (s[lx->pos] && s[lx->pos] != '\n')
				lx->pos++;
			continue;
		}
		if (s[lx->pos] == '/' && s[lx->pos + 1] == '*') {
			lx->pos += 2;
			while (s[lx->pos] && !(s[lx->pos] == '*' && s[lx->pos + 1] == '/')) {
				if (s[lx->pos] == '\n')
					lx->line++;
				lx->pos++;
			}
			if (s[lx->pos])
				lx->pos += 2;
			continue;
		}
		break;
	}
	lx->tline = lx->line;
	if (!s[lx->pos]) {
		lx->type = T_END;
		return;
	}
	if (s[lx->pos] == '\'' || s[lx->pos] == '"') {
		q = s[lx->pos++];
		for (;;) {
			char ch = s[lx->pos];

			if (!ch) {
				lex_error(lx, "unterminated %s starting here",
					  q == '\'' ? "string" : "quoted identifier");
				lx->type = T_END;
				return;
			}
			if (ch == q) {
				if (s[lx->pos + 1] == q) { /* '' and "" escape the quote */
					ks_buf_append(&lx->text, &q, 1);
					lx->pos += 2;
					continue;
				}
				lx->pos++;
				break;
			}
			if (ch == '\n')
				lx->line++;
			ks_buf_append(&lx->text, &ch, 1);
			lx->pos++;
		}
		lx->type = q == '\'' ? T_STR : T_QIDENT;
		if (!lx->text.data)
			ks_buf_append(&lx->text, "", 0);
		return;
	}
	if (isalnum((unsigned char)s[lx->pos]) || s[lx->pos] == '_' || s[lx->pos] == '^' ||
	    s[lx->pos] == '-' || s[lx->pos] == '+') {
		size_t start = lx->pos;

		/* Words include dots (aws.region) and the characters of bare numbers. */
		while (isalnum((unsigned char)s[lx->pos]) || s[lx->pos] == '_' || s[lx->pos] == '.' ||
		       s[lx->pos] == '-' || s[lx->pos] == '^' || s[lx->pos] == '+' || s[lx->pos] == '$')
			lx->pos++;
		ks_buf_append(&lx->text, s + start, lx->pos - start);
		lx->type = T_WORD;
		return;
	}
	lx->punct = s[lx->pos++];
	lx->type = T_PUNCT;
}

static int is_kw(const lexer *lx, const char *kw)
{
	return lx->type == T_WORD && strcasecmp(lx->text.data, kw) == 0;
}

static int is_punct(const lexer *lx, char p)
{
	return lx->type == T_PUNCT && lx->punct == p;
}

static const char *tok_desc(const lexer *lx, char *buf, size_t n)
{
	switch (lx->type) {
	case T_END: return "the end of the statement";
	case T_PUNCT: snprintf(buf, n, "'%c'", lx->punct); return buf;
	default: snprintf(buf, n, "'%.40s'", lx->text.data); return buf;
	}
}

static int expect_kw(lexer *lx, const char *kw)
{
	char d[64];

	if (!is_kw(lx, kw)) {
		lex_error(lx, "expected %s, found %s", kw, tok_desc(lx, d, sizeof(d)));
		return -1;
	}
	lex_next(lx);
	return 0;
}

/* ( key = 'value' [, ...] ) */
static int parse_options(lexer *lx, ks_conf *c)
{
	char d[64];
	int rc = 0;

	if (!is_punct(lx, '(')) {
		lex_error(lx, "expected '(', found %s", tok_desc(lx, d, sizeof(d)));
		return -1;
	}
	lex_next(lx);
	if (is_punct(lx, ')')) {
		lex_next(lx);
		return 0;
	}
	for (;;) {
		char *key;
		int kline = lx->tline;

		if (lx->type != T_WORD && lx->type != T_QIDENT && lx->type != T_STR) {
			lex_error(lx, "expected an option name, found %s", tok_desc(lx, d, sizeof(d)));
			return -1;
		}
		if (!(key = strdup(lx->text.data)))
			return KS_ERR_NOMEM;
		lex_next(lx);
		if (!is_punct(lx, '=')) {
			lex_error(lx, "expected '=' after option '%s', found %s", key, tok_desc(lx, d, sizeof(d)));
			free(key);
			return -1;
		}
		lex_next(lx);
		if (lx->type != T_STR && lx->type != T_WORD) {
			lex_error(lx, "expected a quoted value for option '%s', found %s", key,
				  tok_desc(lx, d, sizeof(d)));
			free(key);
			return -1;
		}
		if (ks_conf_set(c, key, lx->text.data, lx->origin, kline, lx->errs))
			rc = KS_ERR_CONFIG;
		free(key);
		lex_next(lx);
		if (is_punct(lx, ',')) {
			lex_next(lx);
			if (is_punct(lx, ')')) { /* tolerate a trailing comma */
				lex_next(lx);
				return rc;
			}
			continue;
		}
		if (is_punct(lx, ')')) {
			lex_next(lx);
			return rc;
		}
		lex_error(lx, "expected ',' or ')' after option '%s' value, found %s", "", tok_desc(lx, d, sizeof(d)));
		return -1;
	}
}

int ks_conf_load_sql(ks_conf *c, const char *sql, const char *origin, ks_conf_errors *errs)
{
	lexer lx = { .s = sql, .line = 1, .origin = origin, .errs = errs };
	char d[64];
	int rc = 0;

	ks_buf_init(&lx.text, 1 << 20);
	lex_next(&lx);
	if (expect_kw(&lx, "CREATE") || expect_kw(&lx, "SINK"))
		goto fail;
	if (is_kw(&lx, "IF")) {
		lex_next(&lx);
		if (expect_kw(&lx, "NOT") || expect_kw(&lx, "EXISTS"))
			goto fail;
	}
	if (lx.type != T_WORD && lx.type != T_QIDENT) {
		lex_error(&lx, "expected the sink name after CREATE SINK, found %s", tok_desc(&lx, d, sizeof(d)));
		goto fail;
	}
	free(c->sink_name);
	c->sink_name = strdup(lx.text.data);
	lex_next(&lx);
	if (is_kw(&lx, "FROM")) {
		int tline;

		lex_next(&lx);
		tline = lx.tline;
		if (lx.type != T_WORD && lx.type != T_QIDENT) {
			lex_error(&lx, "expected a topic name after FROM, found %s", tok_desc(&lx, d, sizeof(d)));
			goto fail;
		}
		if (ks_conf_set(c, "topic", lx.text.data, origin, tline, errs))
			rc = KS_ERR_CONFIG;
		lex_next(&lx);
	} else if (is_kw(&lx, "AS")) {
		lex_error(&lx, "CREATE SINK ... AS SELECT is not supported: name the Kafka topic with FROM topic");
		goto fail;
	}
	if (expect_kw(&lx, "WITH"))
		goto fail;
	if ((rc = parse_options(&lx, c) ? KS_ERR_CONFIG : rc), lx.failed)
		goto fail;
	if (is_kw(&lx, "FORMAT")) {
		static const char *const fmts[][2] = {
			{ "PLAIN", "append-only" }, { "UPSERT", "upsert" }, { "DEBEZIUM", "debezium" },
		};
		size_t i;
		int found = 0, fline;

		lex_next(&lx);
		fline = lx.tline;
		for (i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
			if (is_kw(&lx, fmts[i][0])) {
				if (ks_conf_set(c, "type", fmts[i][1], origin, fline, errs))
					rc = KS_ERR_CONFIG;
				found = 1;
			}
		}
		if (!found) {
			lex_error(&lx, "FORMAT must be PLAIN, UPSERT or DEBEZIUM, found %s", tok_desc(&lx, d, sizeof(d)));
			goto fail;
		}
		lex_next(&lx);
		if (expect_kw(&lx, "ENCODE"))
			goto fail;
		if (!is_kw(&lx, "JSON")) {
			lex_error(&lx, "ENCODE must be JSON (kinesink writes JSON), found %s", tok_desc(&lx, d, sizeof(d)));
			goto fail;
		}
		lex_next(&lx);
		if (is_punct(&lx, '(')) {
			if (parse_options(&lx, c))
				rc = KS_ERR_CONFIG;
			if (lx.failed)
				goto fail;
		}
	}
	if (is_punct(&lx, ';'))
		lex_next(&lx);
	if (lx.type != T_END) {
		lex_error(&lx, "unexpected %s after the statement", tok_desc(&lx, d, sizeof(d)));
		goto fail;
	}
	ks_buf_clean(&lx.text);
	return rc;
fail:
	ks_buf_clean(&lx.text);
	return KS_ERR_FATAL;
}

static int looks_like_sql(const char *text)
{
	const char *p = text;

	for (;;) {
		while (isspace((unsigned char)*p))
			p++;
		if (p[0] == '-' && p[1] == '-') {
			while (*p && *p != '\n')
				p++;
			continue;
		}
		break;
	}
	return strncasecmp(p, "CREATE", 6) == 0 && (isspace((unsigned char)p[6]) || !p[6]);
}

int ks_conf_load_file(ks_conf *c, const char *path, ks_conf_errors *errs)
{
	ks_buf b;
	char chunk[8192];
	size_t n;
	FILE *f;
	int rc;

	if (!(f = fopen(path, "r"))) {
		add_err(errs, "%s: cannot open: %s", path, strerror(errno));
		return KS_ERR_CONFIG;
	}
	ks_buf_init(&b, 16u << 20);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (ks_buf_append(&b, chunk, n)) {
			add_err(errs, "%s: file too large (over 16 MiB)", path);
			fclose(f);
			ks_buf_clean(&b);
			return KS_ERR_CONFIG;
		}
	}
	fclose(f);
	if (!b.data)
		ks_buf_append(&b, "", 0);
	if (looks_like_sql(b.data))
		rc = ks_conf_load_sql(c, b.data, path, errs);
	else
		rc = load_properties(c, b.data, path, errs);
	OPENSSL_cleanse(b.data, b.len);
	ks_buf_clean(&b);
	return rc;
}

/* ---- finalize -------------------------------------------------------------------------- */

static const char *at_of(const ks_conf *c, const char *name, char *buf, size_t n)
{
	const prop *p = find_prop(name);
	const struct ks_conf_where *w = p ? &c->where[p - props] : NULL;

	if (!w || !w->set)
		snprintf(buf, n, "configuration");
	else
		where_str(buf, n, w->origin, w->line);
	return buf;
}

static int is_set(const ks_conf *c, const char *name)
{
	const prop *p = find_prop(name);

	return p && c->where[p - props].set;
}

static int parse_pk(ks_conf *c)
{
	char *copy, *tok, *save = NULL;

	if (!c->primary_key)
		return 0;
	if (!(copy = strdup(c->primary_key)))
		return KS_ERR_NOMEM;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *t = trim(tok), **n;

		if (!*t)
			continue;
		n = realloc(c->pk_cols, sizeof(*n) * (size_t)(c->n_pk_cols + 2));
		if (!n) {
			free(copy);
			return KS_ERR_NOMEM;
		}
		c->pk_cols = n;
		if (!(c->pk_cols[c->n_pk_cols] = strdup(t))) {
			free(copy);
			return KS_ERR_NOMEM;
		}
		c->pk_cols[++c->n_pk_cols] = NULL;
	}
	free(copy);
	return 0;
}

int ks_conf_input_is_cdc(const ks_conf *c)
{
	return c->input_format == KS_INPUT_DEBEZIUM_JSON || c->input_format == KS_INPUT_DEBEZIUM_AVRO;
}

/* kafka.aws.* only mean something with kafka.sasl.mechanism = AWS_MSK_IAM. */
static void check_msk_iam(const ks_conf *c, ks_conf_errors *errs)
{
	static const char *const keys[] = { "kafka.aws.region", "kafka.aws.credentials.role.arn",
					     "kafka.aws.credentials.role.external_id" };
	const char *mech = NULL;
	char at[256];
	size_t k;
	int i;

	for (i = 0; i < c->n_kafka; i++)
		if (!strcmp(c->kafka[i].key, "sasl.mechanism") || !strcmp(c->kafka[i].key, "sasl.mechanisms"))
			mech = c->kafka[i].value;
	for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
		if (is_set(c, keys[k]) && (!mech || strcasecmp(mech, "AWS_MSK_IAM") != 0))
			add_err(errs, "%s: %s is for Amazon MSK IAM authentication: it needs kafka.sasl.mechanism = AWS_MSK_IAM",
				at_of(c, keys[k], at, sizeof(at)), keys[k]);
	if (c->kafka_role_external_id && !c->kafka_role_arn)
		add_err(errs, "%s: kafka.aws.credentials.role.external_id needs kafka.aws.credentials.role.arn",
			at_of(c, "kafka.aws.credentials.role.external_id", at, sizeof(at)));
}

int ks_conf_finalize(ks_conf *c, ks_conf_errors *errs)
{
	int before = errs ? errs->n : 0;
	char at[256];
	int i;

	if (!c->connector || strcasecmp(c->connector, "kinesis") != 0)
		add_err(errs, "%s: connector must be 'kinesis', got '%s' (kinesink only writes to Kinesis)",
			at_of(c, "connector", at, sizeof(at)), c->connector ? c->connector : "");
	if (!c->stream || !*c->stream)
		add_err(errs, "missing required key 'stream': name the Kinesis data stream to write to");
	if (!c->aws_region || !*c->aws_region)
		add_err(errs, "missing required key 'aws.region': the AWS region of the stream, e.g. us-east-1");
	if (!c->topic || !*c->topic)
		add_err(errs, "missing required key 'topic': the Kafka topic(s) to read (or CREATE SINK ... FROM topic)");
	if (!is_set(c, "type"))
		add_err(errs, "missing required key 'type': `type` must be append-only, debezium, or upsert");
	if (c->access_key_id && !c->secret_access_key)
		add_err(errs, "%s: aws.credentials.access_key_id is set but aws.credentials.secret_access_key is not: set both, or neither to use the AWS credential chain",
			at_of(c, "aws.credentials.access_key_id", at, sizeof(at)));
	if (c->secret_access_key && !c->access_key_id)
		add_err(errs, "%s: aws.credentials.secret_access_key is set but aws.credentials.access_key_id is not: set both, or neither to use the AWS credential chain",
			at_of(c, "aws.credentials.secret_access_key", at, sizeof(at)));
	if (c->session_token && !c->access_key_id)
		add_err(errs, "%s: aws.credentials.session_token needs aws.credentials.access_key_id and secret_access_key",
			at_of(c, "aws.credentials.session_token", at, sizeof(at)));
	if (c->role_external_id && !c->role_arn)
		add_err(errs, "%s: aws.credentials.role.external_id needs aws.credentials.role.arn",
			at_of(c, "aws.credentials.role.external_id", at, sizeof(at)));
	if (c->endpoint && strncmp(c->endpoint, "http://", 7) != 0 && strncmp(c->endpoint, "https://", 8) != 0)
		add_err(errs, "%s: endpoint must be an http:// or https:// URL, got '%s'",
			at_of(c, "endpoint", at, sizeof(at)), c->endpoint);

	if (c->primary_key) {
		if (parse_pk(c))
			add_err(errs, "out of memory parsing primary_key");
		else if (c->n_pk_cols == 0)
			add_err(errs, "%s: primary_key is empty: list the key columns separated by commas, e.g. primary_key = 'id'",
				at_of(c, "primary_key", at, sizeof(at)));
	}
	if (is_set(c, "type") && c->type == KS_TYPE_APPEND_ONLY && ks_conf_input_is_cdc(c) &&
	    !c->force_append_only)
		add_err(errs, "%s: The sink cannot be append-only. Please add \"force_append_only='true'\" in options to force the sink to be append-only. Notice that this will cause the sink executor to drop DELETE messages and convert UPDATE messages to INSERT. (input.format=%s carries updates and deletes)",
			at_of(c, "type", at, sizeof(at)), e_input[c->input_format]);
	if (is_set(c, "type") && c->type == KS_TYPE_UPSERT && c->input_format == KS_INPUT_JSON &&
	    c->n_pk_cols == 0 && !c->primary_key)
		add_err(errs, "%s: type=upsert with input.format=json needs primary_key: plain JSON has no key message to take the key from",
			at_of(c, "type", at, sizeof(at)));
	if (is_set(c, "type") && c->type == KS_TYPE_DEBEZIUM && !ks_conf_input_is_cdc(c))
		add_err(errs, "%s: type=debezium needs a Debezium input (input.format=debezium-json or debezium-avro), got %s",
			at_of(c, "type", at, sizeof(at)), e_input[c->input_format]);
	if (c->raw_envelope != KS_ENVELOPE_NONE && c->input_format != KS_INPUT_RAW)
		add_err(errs, "%s: raw.envelope=%s wraps raw records: it needs input.format=raw, got %s",
			at_of(c, "raw.envelope", at, sizeof(at)), e_envelope[c->raw_envelope], e_input[c->input_format]);
	if (c->input_format == KS_INPUT_DEBEZIUM_AVRO && !c->registry_url)
		add_err(errs, "%s: input.format=debezium-avro needs schema.registry.url",
			at_of(c, "input.format", at, sizeof(at)));
	if (c->errors_policy == KS_POLICY_DLQ && (!c->errors_dlq_topic || !*c->errors_dlq_topic))
		add_err(errs, "%s: errors.policy=dlq needs errors.dlq.topic: the Kafka topic that receives bad records",
			at_of(c, "errors.policy", at, sizeof(at)));
	if (c->retry_backoff_max_ms < c->retry_backoff_ms)
		add_err(errs, "%s: retry.backoff.max.ms (%d) must not be below retry.backoff.ms (%d)",
			at_of(c, "retry.backoff.max.ms", at, sizeof(at)), c->retry_backoff_max_ms,
			c->retry_backoff_ms);
	if (c->max_inflight_bytes < c->batch_max_bytes)
		add_err(errs, "%s: max.inflight.bytes (%lld) must be at least batch.max.bytes (%d)",
			at_of(c, "max.inflight.bytes", at, sizeof(at)), (long long)c->max_inflight_bytes,
			c->batch_max_bytes);
	if (c->aggregation == KS_AGG_KPL && c->ordering != KS_ORDERING_KEY)
		add_err(errs, "%s: aggregation=kpl packs the records of one key together in order: it needs ordering=key",
			at_of(c, "aggregation", at, sizeof(at)));
	if (c->metrics_listen && strcmp(c->metrics_listen, "off") != 0 && !strrchr(c->metrics_listen, ':'))
		add_err(errs, "%s: metrics.listen must be host:port or off, got '%s'",
			at_of(c, "metrics.listen", at, sizeof(at)), c->metrics_listen);

	check_msk_iam(c, errs);

	/* Kafka defaults the user did not override. */
	{
		static const char *const defs[][2] = {
			{ "group.id", "kinesink" },
			{ "bootstrap.servers", "localhost:9092" },
		};
		size_t d;

		for (d = 0; d < sizeof(defs) / sizeof(defs[0]); d++) {
			int found = 0;

			for (i = 0; i < c->n_kafka; i++)
				found |= strcmp(c->kafka[i].key, defs[d][0]) == 0;
			if (!found && set_kafka(c, defs[d][0], defs[d][1], "default", 0, errs))
				add_err(errs, "out of memory setting kafka.%s", defs[d][0]);
		}
	}
	return (errs ? errs->n : 0) > before ? KS_ERR_CONFIG : 0;
}

/* ---- output ----------------------------------------------------------------------------- */

static void value_str(const ks_conf *c, const prop *p, char *out, size_t n)
{
	switch (p->type) {
	case P_STR: {
		char *const *f = FIELD(c, p, char *);

		if (*f && !p->secret)
			ks_url_redact(*f, out, n);
		else
			snprintf(out, n, "%s", *f ? "[redacted]" : "");
		break;
	}
	case P_BOOL: snprintf(out, n, "%s", *FIELD(c, p, int) ? "true" : "false"); break;
	case P_INT: snprintf(out, n, "%d", *FIELD(c, p, int)); break;
	case P_INT64: snprintf(out, n, "%lld", (long long)*FIELD(c, p, int64_t)); break;
	case P_ENUM: snprintf(out, n, "%s", p->enums[*FIELD(c, p, int)]); break;
	}
}

void ks_conf_dump(const ks_conf *c, FILE *out)
{
	char v[1024];
	int i;

	if (c->sink_name)
		fprintf(out, "# sink %s\n", c->sink_name);
	for (i = 0; i < NPROPS; i++) {
		const prop *p = &props[i];

		if (p->type == P_STR && !*FIELD(c, p, char *))
			continue;
		if (p->type == P_ENUM && !p->def && !c->where[i].set)
			continue;
		value_str(c, p, v, sizeof(v));
		fprintf(out, "%s = %s\n", p->name, v);
	}
	for (i = 0; i < c->n_kafka; i++)
		fprintf(out, "kafka.%s = %s\n", c->kafka[i].key,
			is_secret_kafka_key(c->kafka[i].key) ? "[redacted]" : c->kafka[i].value);
}

static void type_desc(const prop *p, char *out, size_t n)
{
	switch (p->type) {
	case P_STR: snprintf(out, n, "string"); break;
	case P_BOOL: snprintf(out, n, "true|false"); break;
	case P_INT:
	case P_INT64: snprintf(out, n, "integer %lld..%lld", (long long)p->min, (long long)p->max); break;
	case P_ENUM: {
		size_t len = 0;
		int i;

		out[0] = '\0';
		for (i = 0; p->enums[i]; i++)
			len += (size_t)snprintf(out + len, len < n ? n - len : 0, "%s%s", i ? "|" : "", p->enums[i]);
		break;
	}
	}
}

void ks_conf_help(FILE *out)
{
	char t[256];
	int i;

	fprintf(out, "Configuration properties (file `key = value`, CREATE SINK ... WITH (key = 'value'), or -X key=value):\n\n");
	for (i = 0; i < NPROPS; i++) {
		type_desc(&props[i], t, sizeof(t));
		fprintf(out, "%-36s %s%s%s%s\n    %s\n", props[i].name, t, props[i].def ? ", default " : "",
			props[i].def ? props[i].def : "", props[i].secret ? ", secret (redacted)" : "",
			props[i].doc);
	}
	fprintf(out, "%-36s string\n    Any librdkafka consumer property (kafka.bootstrap.servers, kafka.group.id, kafka.security.protocol, ...), passed as is.\n",
		"kafka.*");
}

/* man(7) escapes: a leading '.' or '\'' and backslashes. */
static void man_text(FILE *out, const char *s)
{
	if (*s == '.' || *s == '\'')
		fputs("\\&", out);
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\e", out);
		else if (*s == '-')
			fputs("\\-", out);
		else
			fputc(*s, out);
	}
}

void ks_conf_man(FILE *out)
{
	char t[256];
	int i;

	fputs(".TH KINESINK 1 \"\" \"kinesink " PACKAGE_VERSION "\" \"User Commands\"\n"
	      ".SH NAME\nkinesink \\- move Kafka change streams into AWS Kinesis Data Streams\n"
	      ".SH SYNOPSIS\n.B kinesink\n\\-c \\fIFILE\\fR [\\-X \\fIkey=value\\fR]... [\\-\\-check [\\-\\-connect]] [\\-\\-exit\\-at\\-eof] [\\-v|\\-q]\n.br\n"
	      ".B kinesink\n\\-c \\fIFILE\\fR [\\-X \\fIkey=value\\fR]... \\-\\-preview \\fIN\\fR [\\-\\-from\\-beginning] "
	      "[\\-\\-preview\\-format text|json]\n.br\n"
	      ".B kinesink\n\\-e \\(dqCREATE SINK ... WITH (...)\\(dq [\\-X \\fIkey=value\\fR]...\n.br\n"
	      ".B kinesink\n\\-\\-version | \\-\\-help | \\-\\-help\\-config\n"
	      ".SH DESCRIPTION\nkinesink consumes Kafka topics as a consumer group, decodes Debezium JSON or Avro change events, "
	      "plain JSON or raw bytes, turns them into append\\-only, debezium or upsert records and writes them to a "
	      "Kinesis data stream with PutRecords. A Kafka offset is committed only after Kinesis acknowledged every "
	      "record up to it.\n"
	      ".SH EXIT STATUS\n0 done (signal or \\-\\-exit\\-at\\-eof), 1 runtime failure, 2 usage or configuration error.\n"
	      ".SH CONFIGURATION\n", out);
	for (i = 0; i < NPROPS; i++) {
		type_desc(&props[i], t, sizeof(t));
		fputs(".TP\n.B ", out);
		man_text(out, props[i].name);
		fputs("\n(", out);
		man_text(out, t);
		if (props[i].def) {
			fputs(", default ", out);
			man_text(out, props[i].def);
		}
		fputs(")\n", out);
		man_text(out, props[i].doc);
		fputc('\n', out);
	}
	fputs(".TP\n.B kafka.*\nAny librdkafka consumer property, passed as is.\n"
	      ".SH SIGNALS\nSIGTERM and SIGINT stop consuming, finish records in flight, commit and exit 0.\n", out);
}

const char *ks_conf_type_str(ks_sink_type t)
{
	return t <= KS_TYPE_UPSERT ? e_type[t] : "?";
}
