/*
 * Schema Registry client: GET {url}/schemas/ids/{id}, basic auth, retries on 5xx and network
 * errors within schema.registry.timeout.ms, schemas parsed by Avro C and cached by id.
 */
#include "registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http.h"
#include "log.h"

struct ks_registry {
	char *url;
	char *userpwd;        /* "user:password" or NULL */
	int timeout_ms;
	ks_schema_entry **entries;
	size_t n, cap;
};

/* Frees what an entry holds (its decoding state is filled by decode_avro.c). */
static void ks_avro_entry_free(ks_schema_entry *e)
{
	if (e->value_ready)
		avro_value_decref(&e->value);
	if (e->iface)
		avro_value_iface_decref(e->iface);
	if (e->schema)
		avro_schema_decref(e->schema);
	json_decref(e->connect_schema);
	ks_avro_plan_free(e->plan);
	json_decref(e->names);
	json_decref(e->json);
}

ks_registry_t *ks_registry_new(const ks_conf *conf, ks_errbuf *err)
{
	ks_registry_t *r = calloc(1, sizeof(*r));
	size_t len;

	if (!r)
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
	size_t i;

	if (!r)
		return;
	for (i = 0; i < r->n; i++) {
		ks_avro_entry_free(r->entries[i]);
		free(r->entries[i]);
	}
	free(r->entries);
	free(r->url);
	if (r->userpwd) {
		memset(r->userpwd, 0, strlen(r->userpwd));
		free(r->userpwd);
	}
	free(r);
}

static ks_schema_entry *lookup(ks_registry_t *r, int32_t id)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		if (r->entries[i]->id == id)
			return r->entries[i];
	return NULL;
}

int ks_registry_put(ks_registry_t *r, int32_t id, const char *schema_json, ks_errbuf *err)
{
	ks_schema_entry *e, **ne;
	json_error_t jerr;

	if (lookup(r, id))
		return 0;
	if (!(e = calloc(1, sizeof(*e))))
		return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
	e->id = id;
	if (!(e->json = json_loads(schema_json, JSON_DECODE_ANY, &jerr))) {
		free(e);
		return ks_errbuf_set(err, KS_ERR_BADREC, "schema id %d is not JSON: %s", (int)id, jerr.text);
	}
	if (avro_schema_from_json_length(schema_json, strlen(schema_json), &e->schema)) {
		ks_errbuf_set(err, KS_ERR_BADREC, "schema id %d is not a valid Avro schema: %s", (int)id, avro_strerror());
		json_decref(e->json);
		free(e);
		return KS_ERR_BADREC;
	}
	if (!(e->iface = avro_generic_class_from_schema(e->schema))) {
		ks_errbuf_set(err, KS_ERR_BADREC, "schema id %d: %s", (int)id, avro_strerror());
		ks_avro_entry_free(e);
		free(e);
		return KS_ERR_BADREC;
	}
	if (avro_generic_value_new(e->iface, &e->value)) {
		ks_errbuf_set(err, KS_ERR_NOMEM, "schema id %d: %s", (int)id, avro_strerror());
		ks_avro_entry_free(e);
		free(e);
		return KS_ERR_NOMEM;
	}
	e->value_ready = 1;
	if (r->n == r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : 16;

		if (!(ne = realloc(r->entries, ncap * sizeof(*ne)))) {
			ks_avro_entry_free(e);
			free(e);
			return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
		}
		r->entries = ne;
		r->cap = ncap;
	}
	r->entries[r->n++] = e;
	return 0;
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
	} else if (resp.status == 404) {
		rc = ks_errbuf_set(err, KS_ERR_NOTFOUND, "unknown schema id %d (Schema Registry answered 404)", (int)id);
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

int ks_registry_get(ks_registry_t *r, int32_t id, const ks_schema_entry **out, ks_errbuf *err)
{
	int64_t deadline = ks_now_ms() + r->timeout_ms, backoff = 100;
	char *text = NULL;
	int rc, retriable, attempt = 0;

	if ((*out = lookup(r, id)))
		return 0;
	for (;;) {
		attempt++;
		rc = fetch(r, id, &text, err, &retriable);
		if (rc == 0 || !retriable)
			break;
		if (ks_now_ms() + backoff >= deadline) {
			char last[sizeof(err->text)];

			snprintf(last, sizeof(last), "%s", err ? err->text : "");
			ks_errbuf_set(err, KS_ERR_FATAL,
				      "Schema Registry %s unreachable: %d attempts over schema.registry.timeout.ms (%d ms) failed to fetch schema id %d; last error: %s",
				      r->url, attempt, r->timeout_ms, (int)id, last);
			return KS_ERR_FATAL;
		}
		ks_warn("registry", "fetching schema id %d failed (%s), retrying in %lld ms", (int)id,
			err ? err->text : "", (long long)backoff);
		usleep((useconds_t)backoff * 1000);
		backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
	}
	if (rc == KS_ERR_NOTFOUND) {
		ks_errbuf_reason(err, "unknown_schema");
		if (err)
			err->code = KS_ERR_BADREC;
		return KS_ERR_BADREC;
	}
	if (rc)
		return rc;
	rc = ks_registry_put(r, id, text, err);
	free(text);
	if (rc == KS_ERR_BADREC)
		ks_errbuf_reason(err, "bad_schema");
	if (rc == 0)
		*out = lookup(r, id);
	return rc;
}
