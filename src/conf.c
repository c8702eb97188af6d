/*
 * Configuration: the declarative property table and the store it drives (set, defaults, clean).
 * Parsing lives in conf_parse.c, the cross-field rules in conf_check.c, routes and the public
 * ks_conf_set / ks_conf_finalize in conf_route.c, the printed forms (--check, --help-config,
 * the man page) in conf_doc.c; they share conf_table.h and call this file, never the reverse.
 */
#include "config.h"
#include "conf.h"

#include <ctype.h>
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <openssl/crypto.h>
#include <regex.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf_table.h"
#include "scrub.h"

static const char *const e_type[] = { "append-only", "debezium", "upsert", NULL };
static const char *const e_input[] = { "debezium-json", "debezium-avro", "json", "raw", NULL };
static const char *const e_envelope[] = { "none", "kafka", NULL };
static const char *const e_registry[] = { "confluent", "glue", NULL };
static const char *const e_ordering[] = { "key", "none", NULL };
static const char *const e_agg[] = { "none", "kpl", NULL };
static const char *const e_policy[] = { "fail", "skip", "dlq", NULL };
static const char *const e_logfmt[] = { "text", "json", NULL };
static const char *const e_loglevel[] = { "error", "warn", "info", "debug", NULL };

#define O(f) offsetof(ks_conf, f)
#define MIB (1024 * 1024)
#define I32 2147483647

const ks_conf_prop ks_conf_props[] = {
	/* The reference's keys. */
	{ "connector", KS_CONF_P_STR, O(connector), "kinesis", 0, 0, NULL, 0,
	  "Sink connector; must be 'kinesis'." },
	{ "stream", KS_CONF_P_STR, O(stream), NULL, 0, 0, NULL, 0,
	  "Required. Name of the Kinesis data stream to write to, or its ARN (arn:aws:kinesis:REGION:ACCOUNT:stream/NAME)." },
	{ "aws.region", KS_CONF_P_STR, O(aws_region), NULL, 0, 0, NULL, 0,
	  "Required unless stream is an ARN (then its region). AWS region of the stream, e.g. us-east-1." },
	{ "endpoint", KS_CONF_P_STR, O(endpoint), NULL, 0, 0, NULL, 0,
	  "Kinesis endpoint URL; default https://kinesis.<region>.amazonaws.com (http:// allowed for emulators)." },
	{ "aws.credentials.access_key_id", KS_CONF_P_STR, O(access_key_id), NULL, 0, 0, NULL, 1,
	  "Static AWS access key id; without it the standard AWS credential chain is used." },
	{ "aws.credentials.secret_access_key", KS_CONF_P_STR, O(secret_access_key), NULL, 0, 0, NULL, 1,
	  "Static AWS secret access key (with access_key_id)." },
	{ "aws.credentials.session_token", KS_CONF_P_STR, O(session_token), NULL, 0, 0, NULL, 1,
	  "Session token of temporary static credentials." },
	{ "aws.credentials.role.arn", KS_CONF_P_STR, O(role_arn), NULL, 0, 0, NULL, 0,
	  "Role to assume with STS AssumeRole on top of the base credentials." },
	{ "aws.credentials.role.external_id", KS_CONF_P_STR, O(role_external_id), NULL, 0, 0, NULL, 1,
	  "External id passed to STS AssumeRole." },
	{ "kafka.aws.region", KS_CONF_P_STR, O(kafka_aws_region), NULL, 0, 0, NULL, 0,
	  "kafka.sasl.mechanism=AWS_MSK_IAM: region of the MSK cluster; default: from the broker host names, else aws.region." },
	{ "kafka.aws.credentials.role.arn", KS_CONF_P_STR, O(kafka_role_arn), NULL, 0, 0, NULL, 0,
	  "kafka.sasl.mechanism=AWS_MSK_IAM: role to assume for Kafka instead of aws.credentials.role.arn." },
	{ "kafka.aws.credentials.role.external_id", KS_CONF_P_STR, O(kafka_role_external_id), NULL, 0, 0, NULL, 1,
	  "External id passed to STS AssumeRole for kafka.aws.credentials.role.arn." },
	{ "type", KS_CONF_P_ENUM, O(type), NULL, 0, 0, e_type, 0,
	  "Required. Output type: append-only, debezium or upsert (FORMAT PLAIN/DEBEZIUM/UPSERT in CREATE SINK)." },
	{ "force_append_only", KS_CONF_P_BOOL, O(force_append_only), "false", 0, 0, NULL, 0,
	  "With type=append-only on a CDC input: turn UPDATEs into INSERTs and drop DELETEs." },
	{ "primary_key", KS_CONF_P_STR, O(primary_key), NULL, 0, 0, NULL, 0,
	  "Comma-separated primary-key columns; default: the fields of the Kafka key message." },
	/* Input. */
	{ "topic", KS_CONF_P_STR, O(topic), NULL, 0, 0, NULL, 0,
	  "Required. Kafka topic(s): comma-separated names or one ^regex (CREATE SINK ... FROM topic)." },
	{ "routes", KS_CONF_P_STR, O(routes), NULL, 0, 0, NULL, 0,
	  "Routing: route names in match order (the first route whose topic matches a Kafka topic takes it); each route sets route.NAME.topic, route.NAME.stream (may hold ${topic}) and any of the keys --help-config lists as routable." },
	{ "input.format", KS_CONF_P_ENUM, O(input_format), "debezium-json", 0, 0, e_input, 0,
	  "How Kafka values are decoded: debezium-json, debezium-avro, json or raw." },
	{ "raw.envelope", KS_CONF_P_ENUM, O(raw_envelope), "none", 0, 0, e_envelope, 0,
	  "input.format=raw: none writes the value bytes; kafka writes a JSON object of topic, partition, offset, timestamp, key, headers and value." },
	{ "schema.registry.url", KS_CONF_P_STR, O(registry_url), NULL, 0, 0, NULL, 0,
	  "Confluent Schema Registry base URL (required for debezium-avro unless schema.registry.type=glue)." },
	{ "schema.registry.username", KS_CONF_P_STR, O(registry_username), NULL, 0, 0, NULL, 0,
	  "Schema Registry basic-auth user." },
	{ "schema.registry.password", KS_CONF_P_STR, O(registry_password), NULL, 0, 0, NULL, 1,
	  "Schema Registry basic-auth password." },
	{ "schema.registry.timeout.ms", KS_CONF_P_INT, O(registry_timeout_ms), "10000", 100, 600000, NULL, 0,
	  "Time allowed to fetch one schema, retries included." },
	{ "schema.registry.type", KS_CONF_P_ENUM, O(registry_type), NULL, 0, 0, e_registry, 0,
	  "Where debezium-avro schemas come from: confluent (unset means it: schema.registry.url) or glue (the AWS Glue Schema Registry: GetSchemaVersion with the AWS credentials; JSON inputs then also check each framed value's DataFormat)." },
	{ "schema.registry.glue.region", KS_CONF_P_STR, O(glue_region), NULL, 0, 0, NULL, 0,
	  "schema.registry.type=glue: region of the registry; default aws.region." },
	{ "schema.registry.glue.endpoint", KS_CONF_P_STR, O(glue_endpoint), NULL, 0, 0, NULL, 0,
	  "schema.registry.type=glue: endpoint URL (a VPC endpoint); default https://glue.<region>.amazonaws.com." },
	/* Kinesis writer. */
	{ "batch.max.records", KS_CONF_P_INT, O(batch_max_records), "500", 1, 500, NULL, 0,
	  "Records per PutRecords request (Kinesis allows 500)." },
	{ "batch.max.bytes", KS_CONF_P_INT, O(batch_max_bytes), "5242880", 1, 5 * MIB, NULL, 0,
	  "Bytes (partition keys plus data) per PutRecords request (Kinesis allows 5 MiB)." },
	{ "batch.linger.ms", KS_CONF_P_INT, O(batch_linger_ms), "100", 0, 60000, NULL, 0,
	  "How long a batch may wait to fill before it is sent." },
	{ "max.inflight.requests", KS_CONF_P_INT, O(max_inflight_requests), "8", 1, 256, NULL, 0,
	  "PutRecords requests in flight at once." },
	{ "max.inflight.records", KS_CONF_P_INT, O(max_inflight_records), "5000", 1, 10000000, NULL, 0,
	  "Records held between Kafka and a Kinesis acknowledgement; past it partitions are paused." },
	{ "max.inflight.bytes", KS_CONF_P_INT64, O(max_inflight_bytes), "16777216", MIB, (int64_t)64 * 1024 * MIB, NULL, 0,
	  "Bytes held between Kafka and a Kinesis acknowledgement; past it partitions are paused." },
	{ "decode.threads", KS_CONF_P_INT, O(decode_threads), "2", 1, 64, NULL, 0,
	  "Threads that decode and transform messages (the pipeline's own among them); order is kept. Raw input uses one." },
	{ "retry.backoff.ms", KS_CONF_P_INT, O(retry_backoff_ms), "100", 1, 600000, NULL, 0,
	  "First retry delay of a failed record (doubles, with jitter)." },
	{ "retry.backoff.max.ms", KS_CONF_P_INT, O(retry_backoff_max_ms), "10000", 1, 3600000, NULL, 0,
	  "Largest retry delay." },
	{ "delivery.timeout.ms", KS_CONF_P_INT64, O(delivery_timeout_ms), "300000", 0, (int64_t)30 * 24 * 3600 * 1000, NULL, 0,
	  "Give up on a record (and stop, exit 1) after retrying this long; 0 retries forever." },
	{ "request.timeout.ms", KS_CONF_P_INT, O(request_timeout_ms), "30000", 100, 600000, NULL, 0,
	  "Time allowed for one HTTP request." },
	{ "connect.timeout.ms", KS_CONF_P_INT, O(connect_timeout_ms), "10000", 100, 600000, NULL, 0,
	  "Time allowed to connect to an endpoint." },
	{ "ssl.ca.location", KS_CONF_P_STR, O(ssl_ca_location), NULL, 0, 0, NULL, 0,
	  "CA bundle file for HTTPS (default: the system's)." },
	{ "http.proxy", KS_CONF_P_STR, O(http_proxy), NULL, 0, 0, NULL, 0,
	  "HTTP(S) proxy URL (default: the https_proxy/no_proxy environment)." },
	{ "ordering", KS_CONF_P_ENUM, O(ordering), "key", 0, 0, e_ordering, 0,
	  "key: never two records of one partition key in flight (order kept per key); none: faster." },
	{ "aggregation", KS_CONF_P_ENUM, O(aggregation), "none", 0, 0, e_agg, 0,
	  "kpl: the records bound for one shard go together in KPL-aggregated Kinesis records (a key's records in their order); without the shard map, a key's queued records." },
	{ "aggregation.max.bytes", KS_CONF_P_INT, O(aggregation_max_bytes), "51200", 64, 10 * MIB, NULL, 0,
	  "Largest aggregate (partition key plus data; at most the stream's record size), as the KPL's AggregationMaxSize." },
	{ "aggregation.max.records", KS_CONF_P_INT64, O(aggregation_max_records), "4294967295", 1, 4294967295LL, NULL, 0,
	  "User records per aggregate, as the KPL's AggregationMaxCount." },
	{ "rate.limit.percent", KS_CONF_P_INT, O(rate_limit_percent), "100", 0, 1000, NULL, 0,
	  "Records wait for their shard's share of the service limits (1,000 records/s, 1 MiB/s), in percent (the KPL's RateLimit): the most each shard is sent; a shard that throttles is sent less, then more again as it accepts (workers sharing a stream settle on shares of it); 0: not limited." },
	{ "shards.refresh.ms", KS_CONF_P_INT64, O(shards_refresh_ms), "60000", 0, (int64_t)24 * 3600 * 1000, NULL, 0,
	  "List the stream's shards again this often (also when an answer names another shard than predicted); 0: only then." },
	{ "debezium.tombstones", KS_CONF_P_BOOL, O(debezium_tombstones), "true", 0, 0, NULL, 0,
	  "type=debezium: emit an empty-data record after each delete." },
	/* Delivery engine. */
	{ "errors.policy", KS_CONF_P_ENUM, O(errors_policy), "fail", 0, 0, e_policy, 0,
	  "A bad record stops the worker (fail), is logged and skipped (skip), or goes to errors.dlq.topic (dlq)." },
	{ "errors.dlq.topic", KS_CONF_P_STR, O(errors_dlq_topic), NULL, 0, 0, NULL, 0,
	  "Kafka topic receiving bad records with errors.policy=dlq." },
	{ "offsets.commit.interval.ms", KS_CONF_P_INT, O(offsets_commit_interval_ms), "5000", 10, 3600000, NULL, 0,
	  "How often acknowledged offsets are committed to Kafka." },
	{ "rebalance.drain.ms", KS_CONF_P_INT, O(rebalance_drain_ms), "10000", 0, 600000, NULL, 0,
	  "On partition revoke, how long to wait for their records; then those not sent are dropped (the new owner reads them again) and those in flight awaited." },
	{ "shutdown.timeout.ms", KS_CONF_P_INT, O(shutdown_timeout_ms), "30000", 0, 600000, NULL, 0,
	  "On SIGTERM/SIGINT, how long to wait for records in flight (then up to 10 s more to commit and leave the group; a second signal stops at once)." },
	/* Operability. */
	{ "metrics.listen", KS_CONF_P_STR, O(metrics_listen), "127.0.0.1:9464", 0, 0, NULL, 0,
	  "host:port of the /metrics, /healthz, /readyz endpoint, or off." },
	{ "stats.interval.ms", KS_CONF_P_INT, O(stats_interval_ms), "60000", 0, 86400000, NULL, 0,
	  "Interval of the progress log line; 0 disables it." },
	{ "log.format", KS_CONF_P_ENUM, O(log_format), "text", 0, 0, e_logfmt, 0,
	  "text, or json (one object per line)." },
	{ "log.level", KS_CONF_P_ENUM, O(log_level), "info", 0, 0, e_loglevel, 0,
	  "error, warn, info or debug (-v/-q adjust it)." },
};
const int ks_conf_nprops = (int)(sizeof(ks_conf_props) / sizeof(ks_conf_props[0]));

_Static_assert(sizeof(ks_conf_props) / sizeof(ks_conf_props[0]) <= sizeof(((ks_conf *)0)->where) /
		       sizeof(((ks_conf *)0)->where[0]),
	       "ks_conf.where must have a slot per property");

void ks_conf_add_err(ks_conf_errors *e, const char *fmt, ...)
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
void ks_conf_where_str(char *out, size_t n, const char *origin, int line)
{
	if (line > 0)
		snprintf(out, n, "%s:%d", origin ? origin : "?", line);
	else
		snprintf(out, n, "%s", origin ? origin : "?");
}

static const ks_conf_prop *find_prop(const char *name)
{
	int i;

	for (i = 0; i < KS_CONF_NPROPS; i++)
		if (strcmp(ks_conf_props[i].name, name) == 0)
			return &ks_conf_props[i];
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

const char *ks_conf_suggest(const char *key)
{
	const char *best = NULL;
	int i, bestd = 1000;

	for (i = 0; i < KS_CONF_NPROPS; i++) {
		int d = edit_distance(key, ks_conf_props[i].name);

		if (d < bestd) {
			bestd = d;
			best = ks_conf_props[i].name;
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
static int set_prop(ks_conf *c, const ks_conf_prop *p, const char *value, const char *at, ks_conf_errors *errs)
{
	int64_t n;
	int b, i;

	switch (p->type) {
	case KS_CONF_P_STR: {
		char **f = KS_CONF_FIELD(c, p, char *);
		char *dup = strdup(value);

		if (!dup)
			return KS_ERR_NOMEM;
		if (p->secret) /* from now on scrubbed from every text, as is a URL's password */
			ks_scrub_add(dup, KS_SCRUB_KEEP);
		ks_scrub_add_userinfo(dup);
		if (*f) {
			if (p->secret)
				OPENSSL_cleanse(*f, strlen(*f));
			free(*f);
		}
		*f = dup;
		return 0;
	}
	case KS_CONF_P_BOOL:
		if (parse_bool(value, &b)) {
			if (strcmp(p->name, "force_append_only") == 0)
				ks_conf_add_err(errs, "%s: `force_append_only` must be true or false, got '%s'", at, value);
			else
				ks_conf_add_err(errs, "%s: %s must be true or false, got '%s'", at, p->name, value);
			return KS_ERR_CONFIG;
		}
		*KS_CONF_FIELD(c, p, int) = b;
		return 0;
	case KS_CONF_P_INT:
	case KS_CONF_P_INT64:
		if (parse_i64(value, &n)) {
			ks_conf_add_err(errs, "%s: %s must be a whole number, got '%s'", at, p->name, value);
			return KS_ERR_CONFIG;
		}
		if (n < p->min || n > p->max) {
			ks_conf_add_err(errs, "%s: %s = %s is out of range: allowed %lld to %lld", at, p->name,
				value, (long long)p->min, (long long)p->max);
			return KS_ERR_CONFIG;
		}
		if (p->type == KS_CONF_P_INT)
			*KS_CONF_FIELD(c, p, int) = (int)n;
		else
			*KS_CONF_FIELD(c, p, int64_t) = n;
		return 0;
	case KS_CONF_P_ENUM:
		for (i = 0; p->enums[i]; i++) {
			if (strcasecmp(value, p->enums[i]) == 0) {
				*KS_CONF_FIELD(c, p, int) = i;
				return 0;
			}
		}
		if (strcmp(p->name, "type") == 0) {
			/* The reference's wording. */
			ks_conf_add_err(errs, "%s: `type` must be append-only, debezium, or upsert (got '%s')", at, value);
		} else {
			char allowed[256];

			list_enums(allowed, sizeof(allowed), p->enums);
			ks_conf_add_err(errs, "%s: %s must be %s, got '%s'", at, p->name, allowed, value);
		}
		return KS_ERR_CONFIG;
	}
	return KS_ERR_CONFIG;
}

int ks_conf_kafka_key_secret(const char *k)
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
		ks_conf_add_err(errs, "%s: 'kafka.' needs a librdkafka property name after the prefix", at);
		return KS_ERR_CONFIG;
	}
	if (ks_conf_kafka_key_secret(key))
		ks_scrub_add(value, KS_SCRUB_KEEP);
	/* librdkafka is the authority on its own keys: let it judge, show its words. */
	rk = rd_kafka_conf_new();
	if (rd_kafka_conf_set(rk, key, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
		rd_kafka_conf_destroy(rk);
		ks_conf_add_err(errs, "%s: kafka.%s: %s", at, key, errstr);
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

int ks_conf_set_key(ks_conf *c, const char *key, const char *value, const char *origin, int line,
		    ks_conf_errors *errs)
{
	char at[256];
	const ks_conf_prop *p;
	int r;

	ks_conf_where_str(at, sizeof(at), origin, line);
	if (strncmp(key, "kafka.", 6) == 0 && strncmp(key, "kafka.aws.", 10) != 0) /* kafka.aws.*: ours */
		return set_kafka(c, key + 6, value, at, line, errs);
	if (!(p = find_prop(key))) {
		const char *s = ks_conf_suggest(key);

		if (s)
			ks_conf_add_err(errs, "%s: unknown key '%s' (did you mean '%s'?)", at, key, s);
		else
			ks_conf_add_err(errs, "%s: unknown key '%s' (kinesink --help-config lists every key)", at, key);
		return KS_ERR_CONFIG;
	}
	if ((r = set_prop(c, p, value, at, errs)) == 0) {
		struct ks_conf_where *w = &c->where[p - ks_conf_props];

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
	for (i = 0; i < KS_CONF_NPROPS; i++)
		if (ks_conf_props[i].def)
			set_prop(c, &ks_conf_props[i], ks_conf_props[i].def, "default", NULL);
}

static void route_clean(ks_route *r)
{
	int i;

	for (i = 0; i < r->n_kv; i++) {
		OPENSSL_cleanse(r->kv[i].value, strlen(r->kv[i].value));
		free(r->kv[i].key);
		free(r->kv[i].value);
	}
	free(r->kv);
	if (r->conf) {
		ks_conf_clean(r->conf);
		free(r->conf);
	}
	if (r->re) {
		regfree(r->re);
		free(r->re);
	}
	free(r->name);
}

void ks_conf_clean(ks_conf *c)
{
	int i;

	for (i = 0; i < KS_CONF_NPROPS; i++) {
		if (ks_conf_props[i].type == KS_CONF_P_STR) {
			char **f = KS_CONF_FIELD(c, &ks_conf_props[i], char *);

			if (*f && ks_conf_props[i].secret)
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
	for (i = 0; i < c->n_route; i++)
		route_clean(&c->route[i]);
	free(c->route);
	memset(c, 0, sizeof(*c));
}

/* ---- helpers shared by the conf_*.c files -------------------------------------------- */

char *ks_conf_trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

const char *ks_conf_at(const ks_conf *c, const char *name, char *buf, size_t n)
{
	const ks_conf_prop *p = find_prop(name);
	const struct ks_conf_where *w = p ? &c->where[p - ks_conf_props] : NULL;

	if (!w || !w->set)
		snprintf(buf, n, "configuration");
	else
		ks_conf_where_str(buf, n, w->origin, w->line);
	return buf;
}

int ks_conf_is_set(const ks_conf *c, const char *name)
{
	const ks_conf_prop *p = find_prop(name);

	return p && c->where[p - ks_conf_props].set;
}

int ks_conf_input_is_cdc(const ks_conf *c)
{
	return c->input_format == KS_INPUT_DEBEZIUM_JSON || c->input_format == KS_INPUT_DEBEZIUM_AVRO;
}

const char *ks_conf_envelope_str(ks_raw_envelope e)
{
	return e <= KS_ENVELOPE_KAFKA ? e_envelope[e] : "?";
}

const char *ks_conf_type_str(ks_sink_type t)
{
	return t <= KS_TYPE_UPSERT ? e_type[t] : "?";
}

const char *ks_conf_input_str(ks_input_format f)
{
	return f <= KS_INPUT_RAW ? e_input[f] : "?";
}