/*
 * The stream itself, as the service describes it: the control-plane calls a worker makes before
 * and besides writing (DescribeStreamSummary today), apart from the writer's state machine.
 */
#include "stream.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws.h"
#include "http.h"
#include "putrecords.h"

#define JSON_1_1 "application/x-amz-json-1.1"

/* RecordDistributionStrategy of StreamDescriptionSummary @p sum into @p out; read beside the
 * stream mode too, where a service might put it. */
static void distribution_of(json_t *sum, char *out, size_t n)
{
	json_t *strategy = json_object_get(sum, "RecordDistributionStrategy");

	if (!json_is_string(strategy))
		strategy = json_object_get(json_object_get(sum, "StreamModeDetails"), "RecordDistributionStrategy");
	snprintf(out, n, "%s", json_is_string(strategy) ? json_string_value(strategy) : "");
}

void ks_stream_summary_distribution(const char *json, size_t len, char *out, size_t n)
{
	json_t *root = json_loadb(json ? json : "", len, 0, NULL);

	distribution_of(json_object_get(root, "StreamDescriptionSummary"), out, n);
	json_decref(root);
}

/* The state of the stream from a DescribeStreamSummary answer. */
static int stream_state(const ks_conf *conf, const char *url, ks_metrics *m, const ks_http_response *resp,
			ks_stream_info *info, ks_errbuf *err)
{
	const char *rid = resp->request_id[0] ? resp->request_id : "none";
	json_t *root = json_loadb(resp->body.data ? resp->body.data : "", resp->body.len, 0, NULL);
	json_t *sum = json_object_get(root, "StreamDescriptionSummary");
	const char *status = json_string_value(json_object_get(sum, "StreamStatus"));
	json_t *kib = json_object_get(sum, "MaxRecordSizeInKiB");
	json_t *shards = json_object_get(sum, "OpenShardCount");
	ks_aws_error ae;
	int rc = 0;

	if (info) {
		snprintf(info->status, sizeof(info->status), "%s", status ? status : "");
		/* 1 to 10 MiB since UpdateMaxRecordSize; a stream that never changed it may not say. */
		info->max_record_bytes = json_is_integer(kib) && json_integer_value(kib) >= 1 &&
						 json_integer_value(kib) <= 10240
					 ? (size_t)json_integer_value(kib) * 1024
					 : 1024 * 1024;
		info->open_shards = json_is_integer(shards) ? (int)json_integer_value(shards) : -1;
		/* An on-demand stream's record distribution strategy (AUTO: partition keys ignored). */
		distribution_of(sum, info->distribution, sizeof(info->distribution));
	}

	if (resp->status == 200 && status && (strcmp(status, "ACTIVE") == 0 || strcmp(status, "UPDATING") == 0)) {
		KS_METRIC_SET(m, kinesis_reachable, 1);
	} else if (resp->status == 200) {
		rc = ks_errbuf_set(err, KS_ERR_FATAL,
				   "stream '%s' in region %s at %s is %s, not ACTIVE or UPDATING: wait until it is active (request id %s)",
				   conf->stream, conf->aws_region, url, status ? status : "in an unknown state", rid);
	} else {
		ks_aws_error_parse(resp->body.data, resp->body.len, &ae);
		rc = ks_errbuf_set(err, resp->status >= 500 ? KS_ERR_IO : KS_ERR_FATAL,
				   "DescribeStreamSummary of stream '%s' in region %s at %s failed: HTTP %ld %s: %s (AWS request id %s)",
				   conf->stream, conf->aws_region, url, resp->status,
				   ae.type[0] ? ae.type : "error", ae.message, rid);
	}
	json_decref(root);
	return rc;
}

int ks_stream_describe(const ks_conf *conf, ks_creds_t *creds, ks_metrics *m, ks_errbuf *err)
{
	return ks_stream_describe_info(conf, creds, m, NULL, err);
}

/*
 * One signed control-plane call: @p op ("DescribeStreamSummary") with the JSON @p body to the
 * stream's endpoint; the answer in @p resp (clean it) whatever its status. @returns 0, or the
 * transport's error prefixed with the stream, region and proxy.
 */
static int stream_call(const ks_conf *conf, ks_creds_t *creds, const char *url, const char *op, const ks_buf *body,
		       ks_http_response *resp, ks_errbuf *err)
{
	char target[64];
	ks_aws_url aws_url;
	ks_http_request req = { .url = url, .timeout_ms = conf->request_timeout_ms,
				.connect_timeout_ms = conf->connect_timeout_ms, .ca_file = conf->ssl_ca_location,
				.ca_key = "ssl.ca.location", .proxy = conf->http_proxy };
	ks_aws_call call = { "POST", &aws_url, conf->aws_region, "kinesis", JSON_1_1, target, body->data, body->len };
	char proxy[256] = "";
	int rc, no_creds;

	snprintf(target, sizeof(target), "Kinesis_20131202.%s", op);
	ks_aws_url_parse(url, &aws_url);
	rc = ks_creds_aws_perform(creds, &call, &req, resp, &no_creds, err);
	if (rc && !no_creds) {
		if (conf->http_proxy)
			ks_url_redact(conf->http_proxy, proxy, sizeof(proxy));
		ks_errbuf_prefix(err, "cannot reach Kinesis for stream '%s' in region %s%s%s", conf->stream,
				 conf->aws_region, proxy[0] ? " through proxy " : "", proxy);
	}
	return rc;
}

/* {"StreamName":"s1" or {"StreamARN":"arn:..." (left open). */
static int stream_member(ks_buf *body, const ks_conf *conf)
{
	return ks_buf_puts(body, "{\"") || ks_buf_puts(body, ks_putrecords_stream_member(conf->stream)) ||
	       ks_buf_puts(body, "\":") || ks_buf_json_str(body, conf->stream, strlen(conf->stream));
}

int ks_stream_describe_info(const ks_conf *conf, ks_creds_t *creds, ks_metrics *m, ks_stream_info *info,
			    ks_errbuf *err)
{
	char *url = ks_aws_endpoint("kinesis", conf->aws_region, conf->endpoint);
	ks_http_response resp;
	ks_buf body;
	int rc;

	if (!url)
		return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
	ks_buf_init(&body, 4096);
	if (stream_member(&body, conf) || ks_buf_puts(&body, "}")) {
		ks_buf_clean(&body);
		free(url);
		return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
	}
	rc = stream_call(conf, creds, url, "DescribeStreamSummary", &body, &resp, err);
	ks_buf_clean(&body);
	if (!rc)
		rc = stream_state(conf, url, m, &resp, info, err);
	ks_http_response_clean(&resp);
	free(url);
	return rc;
}

int ks_stream_describe_body(ks_buf *body, const ks_conf *conf)
{
	return stream_member(body, conf) || ks_buf_puts(body, "}") ? KS_ERR_NOMEM : 0;
}

int ks_stream_list_body(ks_buf *body, const ks_conf *conf, const char *next_token)
{
	/* The first page names the stream; the next ones only the token, as the service wants. */
	if (!next_token)
		return stream_member(body, conf) || ks_buf_puts(body, ",\"ShardFilter\":{\"Type\":\"AT_LATEST\"}}")
			       ? KS_ERR_NOMEM : 0;
	return ks_buf_puts(body, "{\"NextToken\":") || ks_buf_json_str(body, next_token, strlen(next_token)) ||
		       ks_buf_puts(body, "}") ? KS_ERR_NOMEM : 0;
}

/* The error of a ListShards answer that is not 200. */
static int list_failed(const ks_conf *conf, const char *url, const ks_http_response *resp, int page, ks_errbuf *err)
{
	ks_aws_error ae;

	ks_aws_error_parse(resp->body.data, resp->body.len, &ae);
	return ks_errbuf_set(err, resp->status >= 500 ? KS_ERR_IO : KS_ERR_FATAL,
			     "ListShards of stream '%s' in region %s at %s failed (page %d): HTTP %ld %s: %s (AWS request id %s)",
			     conf->stream, conf->aws_region, url, page, resp->status, ae.type[0] ? ae.type : "error",
			     ae.message, resp->request_id[0] ? resp->request_id : "none");
}

int ks_stream_list_shards(const ks_conf *conf, ks_creds_t *creds, ks_shardmap_t **out, ks_errbuf *err)
{
	char *url = ks_aws_endpoint("kinesis", conf->aws_region, conf->endpoint);
	ks_shardmap_t *map = ks_shardmap_new();
	char next[4096] = "";
	ks_http_response resp;
	ks_buf body;
	int rc = 0, page;

	*out = NULL;
	ks_buf_init(&body, 0);
	if (!url || !map)
		rc = ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
	for (page = 1; !rc && (page == 1 || next[0]); page++) {
		ks_buf_reset(&body);
		if (ks_stream_list_body(&body, conf, page == 1 ? NULL : next)) {
			rc = ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
			break;
		}
		if ((rc = stream_call(conf, creds, url, "ListShards", &body, &resp, err)))
			break;
		if (resp.status != 200)
			rc = list_failed(conf, url, &resp, page, err);
		else if ((rc = ks_shardmap_add_page(map, resp.body.data ? resp.body.data : "", resp.body.len, next,
						    sizeof(next), err)))
			ks_errbuf_prefix(err, "ListShards of stream '%s' in region %s, page %d", conf->stream,
					 conf->aws_region, page);
		ks_http_response_clean(&resp);
	}
	if (!rc && (rc = ks_shardmap_finish(map, err)))
		ks_errbuf_prefix(err, "shards of stream '%s' in region %s", conf->stream, conf->aws_region);
	ks_buf_clean(&body);
	free(url);
	if (rc) {
		ks_shardmap_destroy(map);
		return rc;
	}
	*out = map;
	return 0;
}
