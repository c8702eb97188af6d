/*
 * Configuration: the cross-field rules and required keys, checked on one ks_conf once every
 * source was loaded, every problem reported with where it was set. ks_conf_finalize
 * (conf_route.c) runs them on the top level and on each route's configuration.
 */
#include "config.h"
#include "conf.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf_table.h"

static int parse_pk(ks_conf *c)
{
	char *copy, *tok, *save = NULL;

	if (!c->primary_key)
		return 0;
	if (!(copy = strdup(c->primary_key)))
		return KS_ERR_NOMEM;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *t = ks_conf_trim(tok), **n;

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

/*
 * stream may be a stream ARN, arn:PARTITION:kinesis:REGION:ACCOUNT:stream/NAME: checked part by
 * part, its region taken for aws.region when that is not set, or checked against it.
 */
static void check_stream_arn(ks_conf *c, ks_conf_errors *errs)
{
	static const char *const partitions[] = { "aws", "aws-cn", "aws-us-gov" };
	const char *p = c->stream, *f[6];
	size_t len[6], i, k;
	char at[256], region[64];
	int known = 0;

	ks_conf_at(c, "stream", at, sizeof(at));
	/* six fields split on the first five colons: arn, partition, service, region, account, resource */
	for (i = 0; i < 6; i++) {
		const char *colon = i < 5 ? strchr(p, ':') : NULL;

		if (i < 5 && !colon) {
			ks_conf_add_err(errs, "%s: stream '%s' is not a stream ARN: expected arn:aws:kinesis:REGION:ACCOUNT:stream/NAME",
					at, c->stream);
			return;
		}
		f[i] = p;
		len[i] = colon ? (size_t)(colon - p) : strlen(p);
		p = colon ? colon + 1 : p + len[i];
	}
	for (k = 0; k < sizeof(partitions) / sizeof(partitions[0]); k++)
		known |= len[1] == strlen(partitions[k]) && !strncmp(f[1], partitions[k], len[1]);
	if (!known) {
		ks_conf_add_err(errs, "%s: stream ARN '%s' has partition '%.*s': expected aws, aws-cn or aws-us-gov",
				at, c->stream, (int)len[1], f[1]);
		return;
	}
	if (len[2] != 7 || strncmp(f[2], "kinesis", 7)) {
		ks_conf_add_err(errs, "%s: stream ARN '%s' is of service '%.*s': expected kinesis", at, c->stream,
				(int)len[2], f[2]);
		return;
	}
	if (!len[3] || len[3] >= sizeof(region) || strspn(f[3], "abcdefghijklmnopqrstuvwxyz0123456789-") < len[3]) {
		ks_conf_add_err(errs, "%s: stream ARN '%s' has region '%.*s': expected a region such as us-east-1",
				at, c->stream, (int)len[3], f[3]);
		return;
	}
	if (len[4] != 12 || strspn(f[4], "0123456789") < 12) {
		ks_conf_add_err(errs, "%s: stream ARN '%s' has account '%.*s': expected a 12-digit AWS account id",
				at, c->stream, (int)len[4], f[4]);
		return;
	}
	if (len[5] < 8 || strncmp(f[5], "stream/", 7) || len[5] - 7 > 128 ||
	    strspn(f[5] + 7, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") < len[5] - 7) {
		ks_conf_add_err(errs, "%s: stream ARN '%s' ends in '%.*s': expected stream/NAME, a name of 1 to 128 letters, digits, '_', '.' or '-'",
				at, c->stream, (int)len[5], f[5]);
		return;
	}
	memcpy(region, f[3], len[3]);
	region[len[3]] = '\0';
	if (!c->aws_region || !*c->aws_region) {
		free(c->aws_region);
		if (!(c->aws_region = strdup(region)))
			ks_conf_add_err(errs, "out of memory");
	} else if (strcmp(c->aws_region, region) != 0) {
		ks_conf_add_err(errs, "%s: stream ARN '%s' is in region %s but aws.region is %s: remove aws.region or make them agree",
				at, c->stream, region, c->aws_region);
	}
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
		if (ks_conf_is_set(c, keys[k]) && (!mech || strcasecmp(mech, "AWS_MSK_IAM") != 0))
			ks_conf_add_err(errs, "%s: %s is for Amazon MSK IAM authentication: it needs kafka.sasl.mechanism = AWS_MSK_IAM",
				ks_conf_at(c, keys[k], at, sizeof(at)), keys[k]);
	if (c->kafka_role_external_id && !c->kafka_role_arn)
		ks_conf_add_err(errs, "%s: kafka.aws.credentials.role.external_id needs kafka.aws.credentials.role.arn",
			ks_conf_at(c, "kafka.aws.credentials.role.external_id", at, sizeof(at)));
}

#define PROC 1 /* the process's keys */
#define OUT 2  /* the keys a route may set (its own stream, topic, output and writer) */

/* A template stream is checked with a stand-in topic. */
static void check_stream(ks_conf *c, ks_conf_errors *errs)
{
	char *tmpl = c->stream, *d = strstr(tmpl, "${topic}"), buf[512];

	if (!d) {
		check_stream_arn(c, errs);
		return;
	}
	snprintf(buf, sizeof(buf), "%.*st%s", (int)(d - tmpl), tmpl, d + 8);
	c->stream = buf;
	check_stream_arn(c, errs);
	c->stream = tmpl;
}

/* Every rule, in one order for every message list; @p what picks the process's rules, the
 * output's (a route's), or both (a one-stream configuration). One function over 100 lines on
 * purpose: the order of the rules is the order of the messages, which the tests pin. */
static void check(ks_conf *c, int what, ks_conf_errors *errs)
{
	char at[256];

	if (what & PROC) {
		if (!c->connector || strcasecmp(c->connector, "kinesis") != 0)
			ks_conf_add_err(errs, "%s: connector must be 'kinesis', got '%s' (kinesink only writes to Kinesis)",
				ks_conf_at(c, "connector", at, sizeof(at)), c->connector ? c->connector : "");
	}
	if (what & OUT) {
		if (!c->stream || !*c->stream)
			ks_conf_add_err(errs, "missing required key 'stream': name the Kinesis data stream to write to");
		if (c->stream && !strncmp(c->stream, "arn:", 4))
			check_stream(c, errs);
		else if (!c->aws_region || !*c->aws_region)
			ks_conf_add_err(errs, "missing required key 'aws.region': the AWS region of the stream, e.g. us-east-1 (or a stream ARN as stream)");
		if (!c->topic || !*c->topic)
			ks_conf_add_err(errs, "missing required key 'topic': the Kafka topic(s) to read (or CREATE SINK ... FROM topic)");
		if (!ks_conf_is_set(c, "type"))
			ks_conf_add_err(errs, "missing required key 'type': `type` must be append-only, debezium, or upsert");
	}
	if (what & PROC) {
		if (c->access_key_id && !c->secret_access_key)
			ks_conf_add_err(errs, "%s: aws.credentials.access_key_id is set but aws.credentials.secret_access_key is not: set both, or neither to use the AWS credential chain",
				ks_conf_at(c, "aws.credentials.access_key_id", at, sizeof(at)));
		if (c->secret_access_key && !c->access_key_id)
			ks_conf_add_err(errs, "%s: aws.credentials.secret_access_key is set but aws.credentials.access_key_id is not: set both, or neither to use the AWS credential chain",
				ks_conf_at(c, "aws.credentials.secret_access_key", at, sizeof(at)));
		if (c->session_token && !c->access_key_id)
			ks_conf_add_err(errs, "%s: aws.credentials.session_token needs aws.credentials.access_key_id and secret_access_key",
				ks_conf_at(c, "aws.credentials.session_token", at, sizeof(at)));
		if (c->role_external_id && !c->role_arn)
			ks_conf_add_err(errs, "%s: aws.credentials.role.external_id needs aws.credentials.role.arn",
				ks_conf_at(c, "aws.credentials.role.external_id", at, sizeof(at)));
	}
	if (what & OUT) {
		if (c->endpoint && strncmp(c->endpoint, "http://", 7) != 0 && strncmp(c->endpoint, "https://", 8) != 0)
			ks_conf_add_err(errs, "%s: endpoint must be an http:// or https:// URL, got '%s'",
				ks_conf_at(c, "endpoint", at, sizeof(at)), c->endpoint);

		if (c->primary_key) {
			if (parse_pk(c))
				ks_conf_add_err(errs, "out of memory parsing primary_key");
			else if (c->n_pk_cols == 0)
				ks_conf_add_err(errs, "%s: primary_key is empty: list the key columns separated by commas, e.g. primary_key = 'id'",
					ks_conf_at(c, "primary_key", at, sizeof(at)));
		}
		if (ks_conf_is_set(c, "type") && c->type == KS_TYPE_APPEND_ONLY && ks_conf_input_is_cdc(c) &&
		    !c->force_append_only)
			ks_conf_add_err(errs, "%s: The sink cannot be append-only. Please add \"force_append_only='true'\" in options to force the sink to be append-only. Notice that this will cause the sink executor to drop DELETE messages and convert UPDATE messages to INSERT. (input.format=%s carries updates and deletes)",
				ks_conf_at(c, "type", at, sizeof(at)), ks_conf_input_str(c->input_format));
		if (ks_conf_is_set(c, "type") && c->type == KS_TYPE_UPSERT && c->input_format == KS_INPUT_JSON &&
		    c->n_pk_cols == 0 && !c->primary_key)
			ks_conf_add_err(errs, "%s: type=upsert with input.format=json needs primary_key: plain JSON has no key message to take the key from",
				ks_conf_at(c, "type", at, sizeof(at)));
		if (ks_conf_is_set(c, "type") && c->type == KS_TYPE_DEBEZIUM && !ks_conf_input_is_cdc(c))
			ks_conf_add_err(errs, "%s: type=debezium needs a Debezium input (input.format=debezium-json or debezium-avro), got %s",
				ks_conf_at(c, "type", at, sizeof(at)), ks_conf_input_str(c->input_format));
		if (c->raw_envelope != KS_ENVELOPE_NONE && c->input_format != KS_INPUT_RAW)
			ks_conf_add_err(errs, "%s: raw.envelope=%s wraps raw records: it needs input.format=raw, got %s",
					ks_conf_at(c, "raw.envelope", at, sizeof(at)), ks_conf_envelope_str(c->raw_envelope),
					ks_conf_input_str(c->input_format));
		if (c->input_format == KS_INPUT_DEBEZIUM_AVRO && c->registry_type == KS_REGISTRY_CONFLUENT && !c->registry_url)
			ks_conf_add_err(errs, "%s: input.format=debezium-avro needs schema.registry.url (or schema.registry.type = glue for the AWS Glue Schema Registry)",
				ks_conf_at(c, "input.format", at, sizeof(at)));
		if (c->registry_type == KS_REGISTRY_GLUE && c->registry_url)
			ks_conf_add_err(errs, "%s: schema.registry.url is a Confluent Schema Registry's, but schema.registry.type = glue: remove one of them",
				ks_conf_at(c, "schema.registry.url", at, sizeof(at)));
		if (c->glue_endpoint && strncmp(c->glue_endpoint, "http://", 7) != 0 && strncmp(c->glue_endpoint, "https://", 8) != 0)
			ks_conf_add_err(errs, "%s: schema.registry.glue.endpoint must be an http:// or https:// URL, got '%s'",
				ks_conf_at(c, "schema.registry.glue.endpoint", at, sizeof(at)), c->glue_endpoint);
	}
	if (what & PROC) {
		if (c->errors_policy == KS_POLICY_DLQ && (!c->errors_dlq_topic || !*c->errors_dlq_topic))
			ks_conf_add_err(errs, "%s: errors.policy=dlq needs errors.dlq.topic: the Kafka topic that receives bad records",
				ks_conf_at(c, "errors.policy", at, sizeof(at)));
	}
	if (what & OUT) {
		if (c->retry_backoff_max_ms < c->retry_backoff_ms)
			ks_conf_add_err(errs, "%s: retry.backoff.max.ms (%d) must not be below retry.backoff.ms (%d)",
				ks_conf_at(c, "retry.backoff.max.ms", at, sizeof(at)), c->retry_backoff_max_ms,
				c->retry_backoff_ms);
		if (c->max_inflight_bytes < c->batch_max_bytes)
			ks_conf_add_err(errs, "%s: max.inflight.bytes (%lld) must be at least batch.max.bytes (%d)",
				ks_conf_at(c, "max.inflight.bytes", at, sizeof(at)), (long long)c->max_inflight_bytes,
				c->batch_max_bytes);
		if (c->aggregation == KS_AGG_KPL && c->ordering != KS_ORDERING_KEY)
			ks_conf_add_err(errs, "%s: aggregation=kpl packs the records of one key together in order: it needs ordering=key",
				ks_conf_at(c, "aggregation", at, sizeof(at)));
	}
	if (what & PROC) {
		if (c->metrics_listen && strcmp(c->metrics_listen, "off") != 0 && !strrchr(c->metrics_listen, ':'))
			ks_conf_add_err(errs, "%s: metrics.listen must be host:port or off, got '%s'",
				ks_conf_at(c, "metrics.listen", at, sizeof(at)), c->metrics_listen);
	}

	if (what & PROC)
		check_msk_iam(c, errs);
}

void ks_conf_check_output(ks_conf *c, ks_conf_errors *errs)
{
	check(c, OUT, errs);
}

void ks_conf_check_process(ks_conf *c, ks_conf_errors *errs)
{
	check(c, PROC, errs);
}

void ks_conf_check_all(ks_conf *c, ks_conf_errors *errs)
{
	check(c, PROC | OUT, errs);
}
