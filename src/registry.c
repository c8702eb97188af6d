/*
 * Schema Registry client: GET {url}/schemas/ids/{id}, basic auth, retries on 5xx, 429, a 404
 * that is not the registry's (no error code 40403: a proxy, a registry restoring) and network
 * errors within schema.registry.timeout.ms, then a fatal error; schemas cached by id as their
 * JSON text and tree. Only the registry's "schema not found" (40403) makes a record bad, and
 * that is not cached: the id is asked again when a record names it again.
 * One client is shared by the decode lanes: the cache is behind a mutex, and an id being fetched
 * has a pending slot, so a second lane asking for it waits for that fetch instead of sending its
 * own. Entries never change once filled in and live as long as the client, so the pointers
 * handed out need no lock to read.
 */
#include "registry.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http.h"
#include "log.h"

typedef struct slot {
	ks_schema_entry e;  /* filled in before pending drops to 0, then never changed */
	int pending;        /* 1 while one caller fetches it: the others wait on `fetched` */
	int waiters;        /* callers waiting for this fetch */
	int rc;             /* the fetch failed: its error, for the waiters (the slot left the cache) */
	ks_errbuf err;
} slot;

struct ks_registry {
	char *url;
	char *userpwd;        /* "user:password" or NULL */
	int timeout_ms;
	pthread_mutex_t mu;   /* guards slots, n, cap and each slot's pending */
	pthread_cond_t fetched;
	slot **slots;
	size_t n, cap;
};

static void slot_free(slot *s)
{
	if (!s)
		return;
	json_decref(s->e.json);
	free((char *)s->e.text);
	free(s);
}

ks_registry_t *ks_registry_new(const ks_conf *conf, ks_errbuf *err)
{
	ks_registry_t *r = calloc(1, sizeof(*r));
	size_t len;

	if (!r)
		goto nomem;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->fetched, NULL);
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
	for (i = 0; i < r->n; i++)
		slot_free(r->slots[i]);
	free(r->slots);
	free(r->url);
	if (r->userpwd) {
		memset(r->userpwd, 0, strlen(r->userpwd));
		free(r->userpwd);
	}
	pthread_cond_destroy(&r->fetched);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

/* With r->mu held. */
static slot *lookup(ks_registry_t *r, int32_t id)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		if (r->slots[i]->e.id == id)
			return r->slots[i];
	return NULL;
}

/* With r->mu held: @p s joins the cache (it is freed when that fails). */
static int add(ks_registry_t *r, slot *s, ks_errbuf *err)
{
	if (r->n == r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : 16;
		slot **ns = realloc(r->slots, ncap * sizeof(*ns));

		if (!ns) {
			slot_free(s);
			return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory caching a schema");
		}
		r->slots = ns;
		r->cap = ncap;
	}
	r->slots[r->n++] = s;
	return 0;
}

/* With r->mu held: take @p s out of the cache (a pending slot whose fetch failed). */
static void drop(ks_registry_t *r, slot *s)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		if (r->slots[i] == s) {
			r->slots[i] = r->slots[--r->n];
			break;
		}
}

/*
 * Fill pending or new slot @p s (its id set) with @p text, taken over, and its parse. Without the
 * lock: nobody reads more than the id of a pending slot.
 */
static int fill(slot *s, char *text, ks_errbuf *err)
{
	json_error_t jerr;
	int id = (int)s->e.id;

	s->e.text = text;
	if (!(s->e.json = json_loads(text, JSON_DECODE_ANY, &jerr)))
		return ks_errbuf_set(err, KS_ERR_BADREC, "schema id %d is not JSON: %s", id, jerr.text);
	return 0;
}

int ks_registry_put(ks_registry_t *r, int32_t id, const char *schema_json, ks_errbuf *err)
{
	slot *s = calloc(1, sizeof(*s));
	char *text = strdup(schema_json);
	int rc;

	if (!s || !text) {
		free(s);
		free(text);
		return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
	}
	s->e.id = id;
	if ((rc = fill(s, text, err))) {
		slot_free(s);
		return rc;
	}
	pthread_mutex_lock(&r->mu);
	if (lookup(r, id))
		slot_free(s);
	else
		rc = add(r, s, err);
	pthread_mutex_unlock(&r->mu);
	return rc;
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

/* With r->mu held: wait for the fetch of @p s by another caller and take its outcome. */
static int wait_fetch(ks_registry_t *r, slot *s, const ks_schema_entry **out, ks_errbuf *err)
{
	int rc;

	s->waiters++;
	while (s->pending)
		pthread_cond_wait(&r->fetched, &r->mu);
	s->waiters--;
	if (!(rc = s->rc)) {
		*out = &s->e;
		return 0;
	}
	if (err)
		*err = s->err;
	if (!s->waiters)
		slot_free(s); /* out of the cache already; the last waiter frees it */
	return rc;
}

int ks_registry_get(ks_registry_t *r, int32_t id, const ks_schema_entry **out, ks_errbuf *err)
{
	char *text = NULL;
	ks_errbuf ferr;
	slot *s;
	int rc;

	*out = NULL;
	pthread_mutex_lock(&r->mu);
	if ((s = lookup(r, id))) {
		if (s->pending) {
			rc = wait_fetch(r, s, out, err);
		} else {
			*out = &s->e;
			rc = 0;
		}
		pthread_mutex_unlock(&r->mu);
		return rc;
	}
	/* Not cached and nobody fetching it: this caller fetches, the others wait for it. */
	if (!(s = calloc(1, sizeof(*s)))) {
		pthread_mutex_unlock(&r->mu);
		return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
	}
	s->e.id = id;
	s->pending = 1;
	if ((rc = add(r, s, err))) {
		pthread_mutex_unlock(&r->mu);
		return rc;
	}
	pthread_mutex_unlock(&r->mu);

	ks_errbuf_clear(&ferr);
	rc = fetch_retrying(r, id, &text, &ferr);
	if (rc == 0) {
		rc = fill(s, text, &ferr); /* takes text over */
		if (rc == KS_ERR_BADREC)
			ks_errbuf_reason(&ferr, "bad_schema");
	} else if (rc == KS_ERR_NOTFOUND) {
		ks_errbuf_reason(&ferr, "unknown_schema");
		ferr.code = rc = KS_ERR_BADREC;
	}

	pthread_mutex_lock(&r->mu);
	s->pending = 0;
	if (rc) {
		/* Nothing cached: the waiters get this error, the next message with this id asks again. */
		drop(r, s);
		s->rc = rc;
		s->err = ferr;
		if (err)
			*err = ferr;
	} else {
		*out = &s->e;
	}
	pthread_cond_broadcast(&r->fetched);
	if (rc && !s->waiters)
		slot_free(s);
	pthread_mutex_unlock(&r->mu);
	return rc;
}
