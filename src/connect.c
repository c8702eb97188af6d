/*
 * --check --connect: each peer of a run tried once, one line per check. The checks use the
 * code a run uses (the credential chain, a Kafka client with the kafka.* settings, the HTTP
 * client with the registry's settings, the writer's DescribeStreamSummary), so that passing
 * here means the same calls will pass at start-up.
 */
#include "connect.h"

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws.h"
#include "consumer.h"
#include "creds.h"
#include "glue.h"
#include "http.h"
#include "kinesis.h"
#include "preview.h"
#include "stream.h"

#define KAFKA_TIMEOUT_MS 10000

typedef struct checks {
	FILE *out;
	int failed;
} checks;

static void line(checks *c, const char *status, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void line(checks *c, const char *status, const char *what, const char *fmt, ...)
{
	va_list ap;

	if (strcmp(status, "ok") != 0 && strcmp(status, "skip") != 0)
		c->failed++;
	fprintf(c->out, "%-4s %s: ", status, what);
	va_start(ap, fmt);
	vfprintf(c->out, fmt, ap);
	va_end(ap);
	fputc('\n', c->out);
	fflush(c->out);
}

/* The access key id is not a secret, but it need not be shown either: its ends identify it. */
static void mask_key_id(const char *id, char *out, size_t n)
{
	size_t len = id ? strlen(id) : 0;

	if (len >= 12)
		snprintf(out, n, "%.4s****%s", id, id + len - 4);
	else
		snprintf(out, n, "****");
}

static ks_creds_t *check_credentials(checks *c, const ks_conf *conf)
{
	ks_credentials cr;
	ks_creds_t *p;
	ks_errbuf err;
	char id[32], expires[64] = "";

	ks_errbuf_clear(&err);
	memset(&cr, 0, sizeof(cr));
	if (!(p = ks_creds_new(conf, NULL, &err)) || ks_creds_get(p, time(NULL), &cr, &err)) {
		line(c, "FAIL", "credentials", "%s -> set aws.credentials.access_key_id and "
		     "aws.credentials.secret_access_key, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or AWS_PROFILE "
		     "with a shared credentials file, or run with an IAM role (web identity, container, EC2)",
		     err.text[0] ? err.text : "no credentials");
		ks_credentials_clean(&cr);
		ks_creds_destroy(p);
		return NULL;
	}
	mask_key_id(cr.access_key_id, id, sizeof(id));
	if (cr.expiration)
		snprintf(expires, sizeof(expires), ", temporary, expire in %ld min",
			 (long)(cr.expiration - time(NULL)) / 60);
	line(c, "ok", "credentials", "from %s (access key id %s%s)", cr.source, id, expires);
	ks_credentials_clean(&cr);
	return p;
}

static void check_kafka(checks *c, const ks_conf *conf)
{
	const char *bootstrap = ks_preview_kafka_value(conf, "bootstrap.servers");
	rd_kafka_topic_partition_list_t *parts = NULL;
	ks_buf topics;
	ks_errbuf err;
	rd_kafka_t *rk;
	int brokers = 0, i, j, n;

	ks_errbuf_clear(&err);
	if (!(rk = ks_consumer_new_reader(conf, 0, 1, &err))) {
		line(c, "FAIL", "kafka", "%s -> fix the kafka.* property named", err.text);
		return;
	}
	if (ks_preview_partitions(rk, conf, KAFKA_TIMEOUT_MS, &brokers, &parts, &err)) {
		/* Each message of ks_preview_partitions already ends in what to do. */
		line(c, "FAIL", "kafka", "%s", err.text);
	} else {
		ks_buf_init(&topics, 64 * 1024);
		for (i = 0; i < parts->cnt; i = j) {
			for (j = i, n = 0; j < parts->cnt && strcmp(parts->elems[j].topic, parts->elems[i].topic) == 0; j++)
				n++;
			ks_buf_printf(&topics, "%stopic '%s': %d partition%s", i ? ", " : "", parts->elems[i].topic, n,
				      n == 1 ? "" : "s");
		}
		line(c, "ok", "kafka", "%d broker%s at %s answered; %s", brokers, brokers == 1 ? "" : "s",
		     bootstrap ? bootstrap : "", topics.data ? topics.data : "");
		ks_buf_clean(&topics);
		rd_kafka_topic_partition_list_destroy(parts);
	}
	rd_kafka_consumer_close(rk);
	ks_consumer_destroy(rk);
}

/* GET /subjects: answers only when the registry is up and the credentials are accepted. */
static void check_registry(checks *c, const ks_conf *conf)
{
	const char *hdrs[] = { "Accept: application/vnd.schemaregistry.v1+json, application/json", NULL };
	ks_http_request req = { 0 };
	ks_http_response resp;
	char url[2048], shown[2048], *userpwd = NULL;
	size_t len;
	ks_errbuf err;
	json_t *body;

	if (!conf->registry_url) {
		if (conf->input_format == KS_INPUT_DEBEZIUM_AVRO)
			line(c, "FAIL", "schema registry", "input.format=debezium-avro needs one -> set schema.registry.url");
		else
			line(c, "skip", "schema registry", "not used by this input.format");
		return;
	}
	len = strlen(conf->registry_url);
	while (len && conf->registry_url[len - 1] == '/')
		len--;
	snprintf(url, sizeof(url), "%.*s/subjects", (int)len, conf->registry_url);
	ks_url_redact(url, shown, sizeof(shown));
	if (conf->registry_username) {
		size_t n = strlen(conf->registry_username) + strlen(conf->registry_password ? conf->registry_password : "") + 2;

		if ((userpwd = malloc(n)))
			snprintf(userpwd, n, "%s:%s", conf->registry_username,
				 conf->registry_password ? conf->registry_password : "");
	}
	req.method = "GET";
	req.url = url;
	req.headers = hdrs;
	req.userpwd = userpwd;
	req.timeout_ms = conf->registry_timeout_ms;
	req.connect_timeout_ms = conf->registry_timeout_ms < 5000 ? conf->registry_timeout_ms : 5000;
	req.max_response = 1 << 20;
	ks_errbuf_clear(&err);
	if (ks_http_perform(&req, &resp, &err)) {
		line(c, "FAIL", "schema registry", "cannot reach the registry: %s -> check schema.registry.url and the network",
		     err.text);
	} else if (resp.status == 401 || resp.status == 403) {
		line(c, "FAIL", "schema registry", "%s answered HTTP %ld: the credentials were %s -> check "
		     "schema.registry.username and schema.registry.password", shown, resp.status,
		     resp.status == 401 ? "refused" : "accepted but may not read subjects");
	} else if (resp.status != 200) {
		line(c, "FAIL", "schema registry", "%s answered HTTP %ld -> check that schema.registry.url is the "
		     "registry's base URL", shown, resp.status);
	} else {
		body = json_loadb(resp.body.data ? resp.body.data : "", resp.body.len, 0, NULL);
		if (json_is_array(body))
			line(c, "ok", "schema registry", "%s answered (%zu subject%s)", shown, json_array_size(body),
			     json_array_size(body) == 1 ? "" : "s");
		else
			line(c, "FAIL", "schema registry", "%s answered HTTP 200 without a list of subjects -> check "
			     "that schema.registry.url is a Confluent-compatible Schema Registry", shown);
		json_decref(body);
	}
	ks_http_response_clean(&resp);
	if (userpwd) {
		memset(userpwd, 0, strlen(userpwd));
		free(userpwd);
	}
}

/*
 * schema.registry.type = glue: GetSchemaVersion of a version id no registry holds, signed as a
 * run signs it. EntityNotFoundException proves that Glue was reached and that the credentials
 * may call GetSchemaVersion (Glue checks the permission first); access denied names what to grant.
 */
static void check_glue(checks *c, const ks_conf *conf, ks_creds_t *creds)
{
	static const uint8_t nobody[16] = { 0 };
	ks_glue_t *g;
	ks_errbuf err;
	int rc;

	ks_errbuf_clear(&err);
	if (!creds) {
		line(c, "skip", "glue schema registry", "not checked: GetSchemaVersion needs credentials");
		c->failed++;
		return;
	}
	if (!(g = ks_glue_new(conf, creds, NULL, &err))) {
		line(c, "FAIL", "glue schema registry", "%s", err.text);
		return;
	}
	rc = ks_glue_probe(g, nobody, &err);
	if (rc == 0 || rc == KS_ERR_NOTFOUND)
		line(c, "ok", "glue schema registry", "%s answered GetSchemaVersion (%s): reached, and the credentials may call "
		     "glue:GetSchemaVersion", ks_glue_endpoint(g), rc ? "EntityNotFoundException for a version id no registry holds" : "found");
	else if (rc == KS_ERR_IO || rc == KS_ERR_TIMEOUT)
		line(c, "FAIL", "glue schema registry", "%s -> check schema.registry.glue.region (or aws.region), "
		     "schema.registry.glue.endpoint, http.proxy and the network", err.text);
	else
		line(c, "FAIL", "glue schema registry", "%s", err.text);
	ks_glue_destroy(g);
}

/* The schema registry a configuration reads from, if any. */
static void check_schemas(checks *c, const ks_conf *conf, ks_creds_t *creds)
{
	if (conf->registry_type == KS_REGISTRY_GLUE && conf->input_format != KS_INPUT_RAW)
		check_glue(c, conf, creds);
	else if (conf->registry_url || conf->input_format == KS_INPUT_DEBEZIUM_AVRO)
		check_registry(c, conf);
}

static void check_kinesis(checks *c, const ks_conf *conf, ks_creds_t *creds)
{
	char *endpoint = ks_aws_endpoint("kinesis", conf->aws_region, conf->endpoint);
	ks_errbuf err;
	int rc;

	ks_errbuf_clear(&err);
	if (!creds) {
		line(c, "skip", "kinesis", "stream '%s' not checked: DescribeStreamSummary needs credentials", conf->stream);
		c->failed++;
	} else if ((rc = ks_stream_describe(conf, creds, NULL, &err)) == KS_ERR_IO || rc == KS_ERR_TIMEOUT) {
		line(c, "FAIL", "kinesis", "%s -> check endpoint, aws.region, http.proxy and the network", err.text);
	} else if (rc) {
		line(c, "FAIL", "kinesis", "%s -> check that the stream exists in that region ('stream', aws.region), "
		     "and that the credentials may call kinesis:DescribeStreamSummary and kinesis:PutRecords on it",
		     err.text);
	} else {
		line(c, "ok", "kinesis", "stream '%s' in region %s at %s is active (DescribeStreamSummary)", conf->stream,
		     conf->aws_region, endpoint ? endpoint : "");
	}
	free(endpoint);
}

int ks_connect_run(const ks_conf *conf, FILE *out)
{
	checks c = { out, 0 };
	ks_creds_t *creds;
	int i;

	creds = check_credentials(&c, conf);
	check_kafka(&c, conf);
	if (!conf->n_route) {
		if (conf->registry_type == KS_REGISTRY_GLUE && conf->input_format != KS_INPUT_RAW)
			check_glue(&c, conf, creds);
		else
			check_registry(&c, conf);
		check_kinesis(&c, conf, creds);
	}
	/* Routes: each route's registry and stream (a template's streams are known per topic only). */
	for (i = 0; i < conf->n_route; i++) {
		const ks_route *r = &conf->route[i];

		check_schemas(&c, r->conf, creds);
		if (r->is_template)
			line(&c, "skip", "kinesis", "route '%s': stream '%s' is a template: each topic's stream is checked when its first record comes",
			     r->name, r->conf->stream);
		else
			check_kinesis(&c, r->conf, creds);
	}
	ks_creds_destroy(creds);
	return c.failed;
}
