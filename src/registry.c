/*
 * Schema Registry client: GET {url}/schemas/ids/{id}, basic auth, retries on 5xx, 429, a 404
 * that is not the registry's (no error code 40403: a proxy, a registry restoring) and network
 * errors within schema.registry.timeout.ms, then a fatal error; schemas cached by id as their
 * JSON text and tree. Only the registry's "schema not found" (40403) makes a record bad, and
 * that is not cached: the id is asked again when a record names it again.
 * One client is shared by the decode lanes: its entries are in a schema_cache.c cache keyed by
 * the id's 4 bytes, which fetches each id once (a second lane asking for an id being fetched
 * waits for that fetch) and remembers no failure. Entries never change once made and live as
 * long as the client, so the pointers handed out need no lock to read.
 */
#include "registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "schema_cache.h"

struct ks_registry {
	char *url;
	char *userpwd;        /* "user:password" or NULL */
	int timeout_ms;
	ks_schema_cache_t *cache;  /* of ks_schema_entry, keyed by the int32_t id's bytes */
};

static void entry_free(void *p)
{
	ks_schema_entry *e = p;

	if (!e)
		return;
	json_decref(e->json);
	free((char *)e->text);
	free(e);
}

ks_registry_t *ks_registry_new(const ks_conf *conf, ks_errbuf *err)
{
	ks_registry_t *r = calloc(1, sizeof(*r));
	size_t len;

	if (!r)
		goto nomem;
	if (!(r->cache = ks_schema_cache_new(sizeof(int32_t), entry_free)))
		goto nomem;
	if (!(r->url = strdup(conf->registry_url ? conf->registry_url : "")))
		goto nomem;
	len = strlen(r->url);
	while (len && r->url[len - 1] == '/')
		r->url[--len] = '\0';
	if (conf->registry_username) {
		size_t n = strlen(conf->registry_username) + 2 +
			   (conf->registry_password ? strlen(conf->registry_password) : 0);

		if (!(r->userpwd = malloc(n)))
			goto nomem;
		snprintf(r->userpwd, n, "%s:%s", conf->registry_username,
			 conf->registry_password ? conf->registry_password : "");
	}
	r->timeout_ms = conf->registry_timeout_ms > 0 ? conf->registry_timeout_ms : 10000;
	return r;
nomem:
	ks_registry_destroy(r);
	ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory creating the Schema Registry client");
	return NULL;
}

void ks_registry_destroy(ks_registry_t *r)
{
	if (!r)
		return;
	ks_schema_cache_destroy(r->cache);
	free(r->url);
	if (r->userpwd) {
		memset(r->userpwd, 0, strlen(r->userpwd));
		free(r->userpwd);
	}
	free(r);
}

/* Fill new entry @p e (its id set) with @p text, taken over, and its parse. */
static int fill(ks_schema_entry *e, char *text, ks_errbuf *err)
{
	json_error_t jerr;
	int id = (int)e->id;

	e->text = text;
	if (!(e->json = json_loads(text, JSON_DECODE_ANY, &jerr)))
		return ks_errbuf_set(err, KS_ERR_BADREC, "schema id %d is not JSON: %s", id, jerr.text);
	return 0;
}

int ks_registry_put(ks_registry_t *r, int32_t id, const char *schema_json, ks_errbuf *err)
{
	ks_schema_entry *e = calloc(1, sizeof(*e));
	char *text = strdup(schema_json);
	int rc;

	if (!e || !text) {
		free(e);
		free(text);
		return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
	}
	e->id = id;
	if ((rc = fill(e, text, err))) {
		entry_free(e);
		return rc;
	}
	return ks_schema_cache_put(r->cache, &id, e, err);
}

/*
 * Whether a 404 is the registry's own "schema not found": its JSON error body with error_code
 * 40403. Only that makes a record bad; any other 404 says nothing about the schema.
 */
static int registry_not_found(const ks_http_response *resp)
{
	json_t *root = json_loadb(resp->body.data ? resp->body.data : "", resp->body.len, 0, NULL);
	json_t *code = json_object_get(root, "error_code");
	int yes = json_is_integer(code) && json_integer_value(code) == 40403;

	json_decref(root);
	return yes;
}

/* One GET; 0 with the schema text (caller frees), or an error code with @p err. */
static int fetch(ks_registry_t *r, int32_t id, char **schema_out, ks_errbuf *err, int *retriable)
{
	char url[2048];
	ks_http_request req = { 0 };
	ks_http_response resp;
	const char *hdrs[] = { "Accept: application/vnd.schemaregistry.v1+json, application/json", NULL };
	int rc;

	*retriable = 0;
	snprintf(url, sizeof(url), "%s/schemas/ids/%d", r->url, (int)id);
	req.method = "GET";
	req.url = url;
	req.headers = hdrs;
	req.userpwd = r->userpwd;
	req.timeout_ms = r->timeout_ms;
	req.connect_timeout_ms = r->timeout_ms < 5000 ? r->timeout_ms : 5000;
	if ((rc = ks_http_perform(&req, &resp, err))) {
		*retriable = 1;
		ks_http_response_clean(&resp);
		return rc;
	}
	if (resp.status == 200) {
		json_t *root = json_loadb(resp.body.data ? resp.body.data : "", resp.body.len, 0, NULL);
		const char *s = json_string_value(json_object_get(root, "schema"));
		const char *type = json_string_value(json_object_get(root, "schemaType"));

		if (type && strcmp(type, "AVRO") != 0)
			rc = ks_errbuf_set(err, KS_ERR_BADREC, "schema id %d is a %s schema, not Avro", (int)id, type);
		else if (!s)
			rc = ks_errbuf_set(err, KS_ERR_FATAL, "Schema Registry %s answered without a \"schema\" for id %d",
					   r->url, (int)id);
		else if (!(*schema_out = strdup(s)))
			rc = ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
		json_decref(root);
	} else if (resp.status == 404 && registry_not_found(&resp)) {
		rc = ks_errbuf_set(err, KS_ERR_NOTFOUND,
				   "unknown schema id %d (Schema Registry answered 404, error code 40403)", (int)id);
	} else if (resp.status == 404) {
		/* Not the registry's own answer: a proxy or load balancer with no route to it, or a
		 * registry still starting or restoring. The schema may well exist. */
		*retriable = 1;
		rc = ks_errbuf_set(err, KS_ERR_TRANSIENT,
				   "%s answered HTTP 404 for schema id %d without the Schema Registry's error code 40403 (a proxy, or a registry not serving yet?)",
				   r->url, (int)id);
	} else if (resp.status >= 500 || resp.status == 429) {
		*retriable = 1;
		rc = ks_errbuf_set(err, KS_ERR_TRANSIENT, "Schema Registry %s answered HTTP %ld for schema id %d",
				   r->url, resp.status, (int)id);
	} else {
		rc = ks_errbuf_set(err, KS_ERR_FATAL,
				   "Schema Registry %s answered HTTP %ld for schema id %d%s", r->url, resp.status, (int)id,
				   resp.status == 401 || resp.status == 403 ? ": check schema.registry.username and password" : "");
	}
	ks_http_response_clean(&resp);
	return rc;
}

/* GET with retries until schema.registry.timeout.ms: 0 and the text (caller frees), or an error. */
static int fetch_retrying(ks_registry_t *r, int32_t id, char **text, ks_errbuf *err)
{
	int64_t deadline = ks_now_ms() + r->timeout_ms, backoff = 100;
	int rc, retriable, attempt = 0;

	for (;;) {
		attempt++;
		rc = fetch(r, id, text, err, &retriable);
		if (rc == 0 || !retriable)
			return rc;
		if (ks_now_ms() + backoff >= deadline) {
			char last[sizeof(err->text)];

			snprintf(last, sizeof(last), "%s", err ? err->text : "");
			return ks_errbuf_set(err, KS_ERR_FATAL,
					     "Schema Registry %s unreachable: %d attempts over schema.registry.timeout.ms (%d ms) failed to fetch schema id %d; last error: %s",
					     r->url, attempt, r->timeout_ms, (int)id, last);
		}
		ks_warn("registry", "fetching schema id %d failed (%s), retrying in %lld ms", (int)id,
			err ? err->text : "", (long long)backoff);
		usleep((useconds_t)backoff * 1000);
		backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
	}
}

/*
 * The cache's fetch of @p idp (an int32_t's bytes), by the one lane fetching it: the schema, or a
 * bad record for a schema the registry does not know (not cached: asked again next time) or
 * that is not JSON.
 */
static int fetch_entry(void *opaque, const void *idp, void **entry, ks_errbuf *err)
{
	ks_registry_t *r = opaque;
	ks_schema_entry *e = calloc(1, sizeof(*e));
	char *text = NULL;
	int32_t id;
	int rc;

	if (!e)
		return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
	memcpy(&id, idp, sizeof(id));
	e->id = id;
	rc = fetch_retrying(r, id, &text, err);
	if (rc == 0) {
		rc = fill(e, text, err); /* takes text over */
		if (rc == KS_ERR_BADREC)
			ks_errbuf_reason(err, "bad_schema");
	} else if (rc == KS_ERR_NOTFOUND) {
		ks_errbuf_reason(err, "unknown_schema");
		err->code = rc = KS_ERR_BADREC;
	}
	if (rc) {
		entry_free(e);
		return rc;
	}
	*entry = e;
	return 0;
}

int ks_registry_get(ks_registry_t *r, int32_t id, const ks_schema_entry **out, ks_errbuf *err)
{
	void *e;
	int rc = ks_schema_cache_get(r->cache, &id, fetch_entry, r, &e, err);

	*out = e;
	return rc;
}
