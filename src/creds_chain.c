/*
 * The credentials provider: static keys from the configuration, else the standard chain in
 * its order (environment, the shared files' profile (creds_profile.c), container, IMDSv2),
 * optionally wrapped in STS AssumeRole, kept and refreshed five minutes before it expires.
 * The sources (creds.c, creds_profile.c and what it uses) are below it: they return
 * credentials and never call the chain.
 */
#include "creds.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws.h"
#include "creds_internal.h"
#include "log.h"

#define REFRESH_MARGIN_S 300

struct ks_creds {
	pthread_mutex_t lock;
	ks_credentials cur;   /* current snapshot (access_key_id NULL: none yet) */
	char *static_akid, *static_secret, *static_token;
	char *role_arn, *external_id, *region;
	ks_creds_net net;     /* region and timeout_ms, for every source that calls out */
	ks_metrics *metrics;
};

static int copy_creds(ks_credentials *dst, const ks_credentials *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->access_key_id = strdup(src->access_key_id);
	dst->secret_access_key = strdup(src->secret_access_key);
	dst->session_token = src->session_token ? strdup(src->session_token) : NULL;
	dst->expiration = src->expiration;
	memcpy(dst->source, src->source, sizeof(dst->source));
	if (!dst->access_key_id || !dst->secret_access_key || (src->session_token && !dst->session_token)) {
		ks_credentials_clean(dst);
		return KS_ERR_NOMEM;
	}
	return 0;
}

ks_creds_t *ks_creds_new(const ks_conf *conf, ks_metrics *metrics, ks_errbuf *err)
{
	ks_creds_t *p = calloc(1, sizeof(*p));

	if (!p) {
		ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory creating the credentials provider");
		return NULL;
	}
	pthread_mutex_init(&p->lock, NULL);
	p->metrics = metrics;
	p->net.timeout_ms = conf->connect_timeout_ms > 0 ? conf->connect_timeout_ms : 10000;
#define DUP(dst, src) do { if ((src) && !((dst) = strdup(src))) goto nomem; } while (0)
	DUP(p->static_akid, conf->access_key_id);
	DUP(p->static_secret, conf->secret_access_key);
	DUP(p->static_token, conf->session_token);
	DUP(p->role_arn, conf->role_arn);
	DUP(p->external_id, conf->role_external_id);
	DUP(p->region, conf->aws_region);
#undef DUP
	p->net.region = p->region;
	return p;
nomem:
	ks_creds_destroy(p);
	ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory creating the credentials provider");
	return NULL;
}

void ks_creds_destroy(ks_creds_t *p)
{
	if (!p)
		return;
	ks_credentials_clean(&p->cur);
	ks_creds_scrub_free(p->static_akid);
	ks_creds_scrub_free(p->static_secret);
	ks_creds_scrub_free(p->static_token);
	free(p->role_arn);
	ks_creds_scrub_free(p->external_id);
	free(p->region);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

/* Resolve base credentials through the chain; errors of sources that exist are kept. */
static int resolve_base(ks_creds_t *p, ks_credentials *out, ks_errbuf *err)
{
	char tried[2400], profile[1100];
	ks_errbuf e;
	int rc;

	if (p->static_akid && p->static_secret)
		return ks_creds_set(out, p->static_akid, p->static_secret, p->static_token, 0, "config");
	if (!ks_creds_profile_sources_env() && (rc = ks_creds_from_env(out)) != KS_ERR_NOTFOUND)
		return rc;
	ks_errbuf_clear(&e);
	if ((rc = ks_creds_from_profile(&p->net, out, profile, sizeof(profile), &e)) != KS_ERR_NOTFOUND)
		goto source_failed;
	if ((rc = ks_creds_from_container(&p->net, out, &e)) != KS_ERR_NOTFOUND)
		goto source_failed;
	if ((rc = ks_creds_from_imds(&p->net, out, &e)) == 0)
		return 0;
	snprintf(tried, sizeof(tried),
		 "no AWS credentials found: tried aws.credentials.* (not set), environment "
		 "(AWS_ACCESS_KEY_ID not set), %s, web identity (AWS_WEB_IDENTITY_TOKEN_FILE not set), "
		 "container (AWS_CONTAINER_CREDENTIALS_* not set), IMDS (%s)",
		 profile, e.text[0] ? e.text : "disabled");
	return ks_errbuf_set(err, KS_ERR_AUTH, "%s", tried);
source_failed:
	if (rc) {
		if (err)
			*err = e;
		return rc;
	}
	return 0;
}

int ks_creds_get(ks_creds_t *p, time_t now, ks_credentials *out, ks_errbuf *err)
{
	ks_credentials base = { 0 }, fresh = { 0 };
	int rc = 0;

	pthread_mutex_lock(&p->lock);
	if (p->cur.access_key_id && (!p->cur.expiration || p->cur.expiration - REFRESH_MARGIN_S > now))
		goto copy;

	rc = resolve_base(p, &base, err);
	if (rc == 0 && p->role_arn) {
		ks_creds_role role = { p->role_arn, p->external_id, NULL, 0 };

		rc = ks_creds_assume_role(&p->net, &role, &base, "assume-role", &fresh, err);
		ks_credentials_clean(&base);
	} else {
		fresh = base;
	}
	if (rc) {
		/* A failed refresh keeps old credentials that are still valid. */
		if (p->cur.access_key_id && p->cur.expiration > now) {
			ks_warn("creds", "refreshing credentials failed, using the current ones until they expire: %s",
				err ? err->text : "");
			rc = 0;
			goto copy;
		}
		if (rc != KS_ERR_NOMEM && rc != KS_ERR_AUTH && err)
			err->retriable = 1;
		pthread_mutex_unlock(&p->lock);
		return rc;
	}
	if (p->cur.access_key_id)
		KS_METRIC_ADD(p->metrics, credential_refreshes, 1);
	ks_credentials_clean(&p->cur);
	p->cur = fresh;
	ks_debug("creds", "credentials from %s%s", p->cur.source, p->cur.expiration ? " (temporary)" : "");
copy:
	rc = copy_creds(out, &p->cur);
	pthread_mutex_unlock(&p->lock);
	if (rc)
		ks_errbuf_set(err, rc, "out of memory copying credentials");
	return rc;
}

void ks_creds_invalidate(ks_creds_t *p)
{
	pthread_mutex_lock(&p->lock);
	/* Static keys cannot be refreshed; they are simply read again. */
	ks_credentials_clean(&p->cur);
	pthread_mutex_unlock(&p->lock);
}

int ks_creds_aws_perform(ks_creds_t *p, const ks_aws_call *call, const ks_http_request *req, ks_http_response *resp,
			 int *no_creds, ks_errbuf *err)
{
	ks_credentials cr;
	ks_sigv4_keys keys;
	int rc;

	memset(resp, 0, sizeof(*resp));
	*no_creds = 0;
	if ((rc = ks_creds_get(p, time(NULL), &cr, err))) {
		*no_creds = 1;
		return rc;
	}
	keys.access_key_id = cr.access_key_id;
	keys.secret_access_key = cr.secret_access_key;
	keys.session_token = cr.session_token;
	rc = ks_aws_perform(call, &keys, time(NULL), req, resp, err);
	ks_credentials_clean(&cr);
	return rc;
}
