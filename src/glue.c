/*
 * AWS Glue Schema Registry client: POST / with X-Amz-Target AWSGlue.GetSchemaVersion and
 * {"SchemaVersionId":"<uuid>"}, signed for service glue with the credential chain, through
 * aws.c's blocking call. A schema version id is immutable, so what Glue answers is kept for the
 * client's life, in a schema_cache.c cache keyed by the id's 16 bytes (as registry.c keeps
 * Confluent ids): each id is fetched once, a second lane asking for an id being fetched waits for
 * that fetch instead of sending its own, and no failure is remembered; entries never change once
 * made, so the pointers handed out need no lock to read.
 */
#include "glue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "aws.h"
#include "framing.h"
#include "http.h"
#include "log.h"
#include "schema_cache.h"

#define JSON_1_1 "application/x-amz-json-1.1"
#define TARGET "AWSGlue.GetSchemaVersion"
#define GRANT "allow glue:GetSchemaVersion to these credentials (on the registry and its schemas)"

struct ks_glue {
	char *url;
	char *region;
	ks_creds_t *creds;
	int own_creds;
	int timeout_ms;         /* schema.registry.timeout.ms: one fetch, retries included */
	int request_timeout_ms;
	int connect_timeout_ms;
	char *ca_file;
	char *proxy;
	ks_schema_cache_t *cache;  /* of ks_glue_schema, keyed by the 16 bytes of the version id */
};

static void schema_free(void *p)
{
	ks_glue_schema *e = p;

	if (!e)
		return;
	json_decref(e->json);
	free((char *)e->text);
	free(e);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

ks_glue_t *ks_glue_new(const ks_conf *conf, ks_creds_t *creds, ks_metrics *metrics, ks_errbuf *err)
{
	ks_glue_t *g = calloc(1, sizeof(*g));
	const char *region = conf->glue_region ? conf->glue_region : conf->aws_region;

	if (!g)
		goto nomem;
	if (!(g->cache = ks_schema_cache_new(16, schema_free)))
		goto nomem;
	if (!(g->region = strdup(region ? region : "")) || !(g->url = ks_aws_endpoint("glue", g->region, conf->glue_endpoint)))
		goto nomem;
	if ((conf->ssl_ca_location && !(g->ca_file = strdup(conf->ssl_ca_location))) ||
	    (conf->http_proxy && !(g->proxy = dup_or_null(conf->http_proxy))))
		goto nomem;
	g->timeout_ms = conf->registry_timeout_ms > 0 ? conf->registry_timeout_ms : 10000;
	g->request_timeout_ms = conf->request_timeout_ms > 0 && conf->request_timeout_ms < g->timeout_ms
					? conf->request_timeout_ms : g->timeout_ms;
	g->connect_timeout_ms = conf->connect_timeout_ms > 0 && conf->connect_timeout_ms < g->request_timeout_ms
					? conf->connect_timeout_ms : g->request_timeout_ms;
	if (!(g->creds = creds)) {
		if (!(g->creds = ks_creds_new(conf, metrics, err))) {
			ks_glue_destroy(g);
			return NULL;
		}
		g->own_creds = 1;
	}
	return g;
nomem:
	ks_glue_destroy(g);
	ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory creating the AWS Glue Schema Registry client");
	return NULL;
}

void ks_glue_destroy(ks_glue_t *g)
{
	if (!g)
		return;
	ks_schema_cache_destroy(g->cache);
	if (g->own_creds)
		ks_creds_destroy(g->creds);
	free(g->url);
	free(g->region);
	free(g->ca_file);
	free(g->proxy);
	free(g);
}

const char *ks_glue_endpoint(const ks_glue_t *g)
{
	return g->url;
}

/* Fill schema @p e (its id set) with @p format and @p text (taken over) and, for JSON-based formats, its parse. */
static int fill(ks_glue_schema *e, const char *format, char *text, ks_errbuf *err)
{
	json_error_t jerr;

	e->text = text;
	snprintf(e->format, sizeof(e->format), "%s", format);
	if (strcmp(format, "AVRO") && strcmp(format, "JSON"))
		return 0;
	if (!(e->json = json_loads(text, JSON_DECODE_ANY, &jerr))) {
		ks_errbuf_set(err, KS_ERR_BADREC, "AWS Glue schema version %s (%s) has a definition that is not JSON: %s",
			      e->id_text, format, jerr.text);
		ks_errbuf_reason(err, "bad_schema");
		return KS_ERR_BADREC;
	}
	return 0;
}

static ks_glue_schema *schema_new(const uint8_t id[16])
{
	ks_glue_schema *e = calloc(1, sizeof(*e));

	if (e) {
		memcpy(e->id, id, 16);
		ks_uuid_str(id, e->id_text);
	}
	return e;
}

int ks_glue_put(ks_glue_t *g, const uint8_t id[16], const char *format, const char *definition, ks_errbuf *err)
{
	ks_glue_schema *e = schema_new(id);
	char *text = strdup(definition);
	int rc;

	if (!e || !text) {
		free(e);
		free(text);
		return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
	}
	if ((rc = fill(e, format, text, err))) {
		schema_free(e);
		return rc;
	}
	return ks_schema_cache_put(g->cache, id, e, err);
}

/*
 * One signed GetSchemaVersion of @p id_text. 0 with the answer in @p resp (clean it) whatever its
 * status; a transport or credentials error otherwise (*retriable says whether to try again).
 */
static int call(ks_glue_t *g, const char *id_text, ks_http_response *resp, ks_errbuf *err, int *retriable)
{
	char body[80];
	ks_aws_url url;
	ks_http_request req = { .url = g->url, .timeout_ms = g->request_timeout_ms,
				.connect_timeout_ms = g->connect_timeout_ms, .ca_file = g->ca_file,
				.ca_key = "ssl.ca.location", .proxy = g->proxy };
	ks_aws_call c = { "POST", &url, g->region, "glue", JSON_1_1, TARGET, body, 0 };
	int rc, no_creds;

	*retriable = 0;
	c.body_len = (size_t)snprintf(body, sizeof(body), "{\"SchemaVersionId\":\"%s\"}", id_text);
	ks_aws_url_parse(g->url, &url);
	rc = ks_creds_aws_perform(g->creds, &c, &req, resp, &no_creds, err);
	if (rc && no_creds) {
		*retriable = rc == KS_ERR_TRANSIENT;
		ks_errbuf_prefix(err, "no credentials to call AWS Glue GetSchemaVersion");
	} else if (rc) {
		*retriable = 1;
		ks_errbuf_prefix(err, "cannot reach AWS Glue at %s (region %s)", g->url, g->region);
	}
	return rc;
}

static int auth_refused(const char *type)
{
	return !strcmp(type, "AccessDeniedException") || !strcmp(type, "UnrecognizedClientException") ||
	       !strcmp(type, "InvalidSignatureException") || !strcmp(type, "IncompleteSignature") ||
	       !strcmp(type, "InvalidClientTokenId") || !strcmp(type, "MissingAuthenticationTokenException") ||
	       !strcmp(type, "SignatureDoesNotMatch");
}

/*
 * What an answer means: 0 with the schema's format and definition (caller frees), or an error:
 * KS_ERR_NOTFOUND (EntityNotFoundException), KS_ERR_AUTH (refused), KS_ERR_TRANSIENT (throttled,
 * 5xx: *retriable), KS_ERR_FATAL.
 */
static int answer(ks_glue_t *g, const char *id_text, const ks_http_response *resp, char *format, size_t fsize,
		  char **text, ks_errbuf *err, int *retriable)
{
	const char *rid = resp->request_id[0] ? resp->request_id : "none";
	ks_aws_error ae;

	*retriable = 0;
	if (resp->status == 200) {
		json_t *root = json_loadb(resp->body.data ? resp->body.data : "", resp->body.len, 0, NULL);
		const char *def = json_string_value(json_object_get(root, "SchemaDefinition"));
		const char *fmt = json_string_value(json_object_get(root, "DataFormat"));
		int rc = 0;

		if (!def || !fmt)
			rc = ks_errbuf_set(err, KS_ERR_FATAL, "AWS Glue at %s answered GetSchemaVersion of %s without %s "
					   "(AWS request id %s): is schema.registry.glue.endpoint Glue's?", g->url, id_text,
					   def ? "a DataFormat" : "a SchemaDefinition", rid);
		else if (!(*text = strdup(def)))
			rc = ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
		else
			snprintf(format, fsize, "%s", fmt);
		json_decref(root);
		return rc;
	}
	ks_aws_error_parse(resp->body.data, resp->body.len, &ae);
	if (!strcmp(ae.type, "EntityNotFoundException"))
		return ks_errbuf_set(err, KS_ERR_NOTFOUND,
				     "unknown AWS Glue schema version id %s (GetSchemaVersion in region %s answered "
				     "EntityNotFoundException: %s; AWS request id %s)", id_text, g->region, ae.message, rid);
	if (!strcmp(ae.type, "AccessDeniedException"))
		return ks_errbuf_set(err, KS_ERR_AUTH,
				     "AWS Glue at %s denied GetSchemaVersion of schema version %s: %s (AWS request id %s) -> %s",
				     g->url, id_text, ae.message, rid, GRANT);
	if (!strcmp(ae.type, "ExpiredTokenException")) {
		ks_creds_invalidate(g->creds);
		*retriable = 1;
	} else if (resp->status >= 500 || resp->status == 429 || strstr(ae.type, "Throttl") ||
		   !strcmp(ae.type, "TooManyRequestsException") || !strcmp(ae.type, "InternalServiceException")) {
		*retriable = 1;
	}
	if (*retriable)
		return ks_errbuf_set(err, KS_ERR_TRANSIENT,
				     "AWS Glue at %s answered HTTP %ld %s for schema version %s: %s (AWS request id %s)", g->url,
				     resp->status, ae.type[0] ? ae.type : "error", id_text, ae.message, rid);
	return ks_errbuf_set(err, auth_refused(ae.type) ? KS_ERR_AUTH : KS_ERR_FATAL,
			     "AWS Glue at %s answered HTTP %ld %s for GetSchemaVersion of %s: %s (AWS request id %s)%s",
			     g->url, resp->status, ae.type[0] ? ae.type : "error", id_text, ae.message, rid,
			     auth_refused(ae.type) ? ": the credentials were refused -> check aws.credentials.* and the credential chain" : "");
}

/* One attempt: call and answer. */
static int fetch(ks_glue_t *g, const char *id_text, char *format, size_t fsize, char **text, ks_errbuf *err,
		 int *retriable)
{
	ks_http_response resp;
	int rc;

	rc = call(g, id_text, &resp, err, retriable);
	if (!rc)
		rc = answer(g, id_text, &resp, format, fsize, text, err, retriable);
	ks_http_response_clean(&resp);
	return rc;
}

/* Fetch with retries until schema.registry.timeout.ms: 0 with format and text (caller frees), or an error. */
static int fetch_retrying(ks_glue_t *g, const char *id_text, char *format, size_t fsize, char **text, ks_errbuf *err)
{
	int64_t deadline = ks_now_ms() + g->timeout_ms, backoff = 100;
	int rc, retriable, attempt = 0;

	for (;;) {
		attempt++;
		rc = fetch(g, id_text, format, fsize, text, err, &retriable);
		if (rc == 0 || !retriable)
			return rc;
		if (ks_now_ms() + backoff >= deadline) {
			char last[sizeof(err->text)];

			snprintf(last, sizeof(last), "%s", err->text);
			return ks_errbuf_set(err, KS_ERR_FATAL,
					     "AWS Glue Schema Registry at %s unavailable: %d attempts over schema.registry.timeout.ms "
					     "(%d ms) failed to get schema version %s; last error: %s",
					     g->url, attempt, g->timeout_ms, id_text, last);
		}
		ks_warn("glue", "getting schema version %s failed (%s), retrying in %lld ms", id_text, err->text,
			(long long)backoff);
		usleep((useconds_t)backoff * 1000);
		backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
	}
}

/*
 * The cache's fetch of version id @p id (16 bytes), by the one lane fetching it: the schema, or a
 * bad record for a version Glue does not know (not cached: asked again next time) or a JSON-based
 * definition that is not JSON, or a fatal error when access is denied.
 */
static int fetch_schema(void *opaque, const void *id, void **entry, ks_errbuf *err)
{
	ks_glue_t *g = opaque;
	ks_glue_schema *e = schema_new(id);
	char *text = NULL, format[16] = "";
	ks_arena_t *arena;
	int rc;

	if (!e)
		return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
	/* The schema outlives the message: never in the arena of the lane asking (a JSON route's
	 * lane has one open while it decodes). */
	arena = ks_arena_suspend();
	rc = fetch_retrying(g, e->id_text, format, sizeof(format), &text, err);
	if (rc == 0) {
		rc = fill(e, format, text, err); /* takes text over */
	} else if (rc == KS_ERR_NOTFOUND) {
		err->code = rc = KS_ERR_BADREC;
		err->fatal = 0;
		ks_errbuf_reason(err, "unknown_schema");
	} else if (rc == KS_ERR_AUTH) {
		err->code = rc = KS_ERR_FATAL; /* the worker stops: no record can be decoded */
		err->fatal = 1;
	}
	if (rc)
		schema_free(e);
	ks_arena_resume(arena);
	if (rc)
		return rc;
	*entry = e;
	return 0;
}

int ks_glue_get(ks_glue_t *g, const uint8_t id[16], const ks_glue_schema **out, ks_errbuf *err)
{
	void *e;
	int rc = ks_schema_cache_get(g->cache, id, fetch_schema, g, &e, err);

	*out = e;
	return rc;
}

int ks_glue_probe(ks_glue_t *g, const uint8_t id[16], ks_errbuf *err)
{
	char id_text[37], format[16], *text = NULL;
	int rc, retriable;

	ks_uuid_str(id, id_text);
	rc = fetch(g, id_text, format, sizeof(format), &text, err, &retriable);
	free(text);
	if (rc == KS_ERR_TRANSIENT)
		rc = KS_ERR_IO;
	return rc;
}
