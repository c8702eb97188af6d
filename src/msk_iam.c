/*
 * Amazon MSK IAM authentication: the token (a presigned kafka-cluster:Connect request) and its
 * delivery to librdkafka's SASL/OAUTHBEARER, refreshed when librdkafka asks.
 */
#include "config.h"
#include "msk_iam.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "scrub.h"
#include "sigv4.h"

/* After a failed refresh while the token in use is still good: try again this much later. */
#define RETRY_S 10

struct ks_msk_iam {
	ks_creds_t *creds;
	char region[64];
	const char *region_from;
	rd_kafka_t *rk;
	rd_kafka_queue_t *q;
	pthread_t thread;
	int running;
	int stop;              /* atomic */
	int64_t valid_until_ms;/* of the token librdkafka has; only the serving thread writes it after start */
	pthread_mutex_t lock;  /* failed, why */
	int failed;
	char why[512];
};

void ks_msk_token_clean(ks_msk_token *t)
{
	if (t->token) {
		OPENSSL_cleanse(t->token, strlen(t->token));
		free(t->token);
	}
	t->token = NULL;
}

/* Base64url without padding (RFC 4648 section 5), as the signer libraries encode the URL. */
static char *base64url(const char *s, size_t n)
{
	char *out = malloc(4 * ((n + 2) / 3) + 1), *p;
	int len;

	if (!out)
		return NULL;
	len = EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
	while (len > 0 && out[len - 1] == '=')
		len--;
	out[len] = '\0';
	for (p = out; *p; p++)
		*p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
	return out;
}

int ks_msk_iam_token(const ks_credentials *creds, const char *region, time_t now, int expires,
		     ks_msk_token *out, ks_errbuf *err)
{
	char host[128];
	ks_sigv4_request req = { "GET", host, "/", "Action=kafka-cluster%3AConnect", NULL, 0, NULL, 0, region,
				 "kafka-cluster" };
	ks_sigv4_keys keys = { creds->access_key_id, creds->secret_access_key, creds->session_token };
	ks_sigv4_result res;
	ks_buf url;
	int64_t until = ((int64_t)now + expires) * 1000;
	int r;

	memset(out, 0, sizeof(*out));
	if (creds->expiration && creds->expiration <= now)
		return ks_errbuf_set(err, KS_ERR_AUTH,
				     "MSK IAM: the AWS credentials (from %s) expired before a Kafka token could be signed",
				     creds->source);
	if (creds->expiration && (int64_t)creds->expiration * 1000 < until)
		until = (int64_t)creds->expiration * 1000;
	snprintf(host, sizeof(host), "kafka.%s.amazonaws.com", region);
	if ((r = ks_sigv4_presign(&req, &keys, now, expires, &res)))
		return ks_errbuf_set(err, r, "MSK IAM: cannot sign the kafka-cluster:Connect request for region %s: %s",
				     region, ks_err_str(r));
	ks_buf_init(&url, 0);
	if (ks_buf_printf(&url, "%s&User-Agent=kinesink/%s", res.url, PACKAGE_VERSION) ||
	    !(out->token = base64url(url.data, url.len)))
		r = ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory making the MSK IAM token");
	ks_scrub_add(out->token, 0); /* scrubbed from every text from now on */
	if (url.data)
		OPENSSL_cleanse(url.data, url.len);
	ks_buf_clean(&url);
	ks_sigv4_result_clean(&res);
	out->expiry_ms = until;
	return r;
}

static const char *kafka_value(const ks_conf *c, const char *key)
{
	int i;

	for (i = 0; i < c->n_kafka; i++)
		if (strcmp(c->kafka[i].key, key) == 0)
			return c->kafka[i].value;
	return NULL;
}

int ks_msk_iam_enabled(const ks_conf *conf)
{
	const char *m = kafka_value(conf, "sasl.mechanism");

	if (!m)
		m = kafka_value(conf, "sasl.mechanisms");
	return m && strcasecmp(m, "AWS_MSK_IAM") == 0;
}

/* The region label of an MSK broker host name: "...kafka.REGION.amazonaws.com" or
 * "...kafka-serverless.REGION.amazonaws.com". */
static int region_of_host(const char *h, size_t len, char *out, size_t n)
{
	static const char *const marks[] = { ".kafka-serverless.", ".kafka." };
	size_t m;

	for (m = 0; m < 2; m++) {
		const char *p = h, *end = h + len, *hit, *dot;

		while ((hit = memmem(p, (size_t)(end - p), marks[m], strlen(marks[m])))) {
			const char *reg = hit + strlen(marks[m]);

			dot = memchr(reg, '.', (size_t)(end - reg));
			if (dot && dot > reg && (size_t)(dot - reg) < n && (size_t)(end - dot) >= 14 &&
			    strncasecmp(dot, ".amazonaws.com", 14) == 0) {
				memcpy(out, reg, (size_t)(dot - reg));
				out[dot - reg] = '\0';
				return 1;
			}
			p = hit + 1;
		}
	}
	return 0;
}

const char *ks_msk_iam_region(const ks_conf *conf, char *out, size_t n)
{
	const char *list = kafka_value(conf, "bootstrap.servers");

	if (!list)
		list = kafka_value(conf, "metadata.broker.list");
	if (conf->kafka_aws_region && *conf->kafka_aws_region) {
		snprintf(out, n, "%s", conf->kafka_aws_region);
		return "kafka.aws.region";
	}
	while (list && *list) {
		size_t len = strcspn(list, ", ");
		const char *h = list, *scheme = memmem(list, len, "://", 3);

		if (scheme)
			h = scheme + 3;
		if (region_of_host(h, len - (size_t)(h - list), out, n))
			return "bootstrap.servers";
		list += len;
		list += strspn(list, ", ");
	}
	if (conf->aws_region && *conf->aws_region) {
		snprintf(out, n, "%s", conf->aws_region);
		return "aws.region";
	}
	return NULL;
}

/* What MSK IAM makes of @p kc, and the region the tokens are for (@p *from says where it came from). */
static int conf_apply(rd_kafka_conf_t *kc, const ks_conf *conf, char *region, size_t n, const char **from,
		      ks_errbuf *err)
{
	char errstr[256];

	if (!(*from = ks_msk_iam_region(conf, region, n)))
		return ks_errbuf_set(err, KS_ERR_CONFIG, "kafka.sasl.mechanism=AWS_MSK_IAM needs the cluster's region: "
							 "set kafka.aws.region");
	if (rd_kafka_conf_set(kc, "sasl.mechanisms", "OAUTHBEARER", errstr, sizeof(errstr)) ||
	    (!kafka_value(conf, "security.protocol") &&
	     rd_kafka_conf_set(kc, "security.protocol", "SASL_SSL", errstr, sizeof(errstr))))
		return ks_errbuf_set(err, KS_ERR_CONFIG, "kafka.sasl.mechanism=AWS_MSK_IAM: %s", errstr);
	/* The refresh requests go to a queue of their own that this module serves, as events:
	 * librdkafka's refresh callback would get the client's opaque, which belongs to its owner
	 * (the consumer's and the producer's enable no other event, which this would replace). */
	rd_kafka_conf_enable_sasl_queue(kc, 1);
	rd_kafka_conf_set_events(kc, RD_KAFKA_EVENT_OAUTHBEARER_TOKEN_REFRESH);
	return 0;
}

int ks_msk_iam_conf(rd_kafka_conf_t *kc, const ks_conf *conf, ks_errbuf *err)
{
	char region[64];
	const char *from;

	return ks_msk_iam_enabled(conf) ? conf_apply(kc, conf, region, sizeof(region), &from, err) : 0;
}

int ks_msk_iam_setup(rd_kafka_conf_t *kc, const ks_conf *conf, ks_msk_iam_t **out, ks_errbuf *err)
{
	ks_msk_iam_t *m;
	ks_conf view;

	*out = NULL;
	if (!ks_msk_iam_enabled(conf))
		return 0;
	if (!(m = calloc(1, sizeof(*m))))
		return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory setting up MSK IAM");
	pthread_mutex_init(&m->lock, NULL);
	if (conf_apply(kc, conf, m->region, sizeof(m->region), &m->region_from, err)) {
		ks_msk_iam_destroy(m);
		return err->code;
	}
	/* The Kinesis side's credential chain, with the Kafka side's role when one is set. */
	view = *conf;
	if (conf->kafka_role_arn) {
		view.role_arn = conf->kafka_role_arn;
		view.role_external_id = conf->kafka_role_external_id;
	}
	if (!(m->creds = ks_creds_new(&view, NULL, err))) {
		ks_msk_iam_destroy(m);
		return err->code;
	}
	ks_info("kafka", "MSK IAM authentication: tokens signed for region %s (from %s)", m->region, m->region_from);
	*out = m;
	return 0;
}

/* Sign a token and hand it to librdkafka. */
static int refresh(ks_msk_iam_t *m, ks_errbuf *err)
{
	ks_credentials c = { 0 };
	ks_msk_token t = { 0 };
	char errstr[512];
	time_t now = time(NULL);
	int r;

	if ((r = ks_creds_get(m->creds, now, &c, err)) == 0 &&
	    (r = ks_msk_iam_token(&c, m->region, now, KS_MSK_IAM_EXPIRES_S, &t, err)) == 0 &&
	    rd_kafka_oauthbearer_set_token(m->rk, t.token, t.expiry_ms, "kinesink", NULL, 0, errstr, sizeof(errstr)))
		r = ks_errbuf_set(err, KS_ERR_FATAL, "MSK IAM: librdkafka refused the token: %s", errstr);
	if (!r) {
		m->valid_until_ms = t.expiry_ms;
		ks_debug("kafka", "MSK IAM token for region %s (credentials from %s) valid for %lld s", m->region,
			 c.source, (long long)(t.expiry_ms / 1000 - now));
	} else {
		ks_errbuf_prefix(err, "cannot make the MSK IAM token for Kafka");
	}
	ks_msk_token_clean(&t);
	ks_credentials_clean(&c);
	return r;
}

static void *serve(void *arg)
{
	ks_msk_iam_t *m = arg;
	int64_t retry_at = 0;

	while (!__atomic_load_n(&m->stop, __ATOMIC_ACQUIRE)) {
		rd_kafka_event_t *ev = rd_kafka_queue_poll(m->q, 1000);
		int due = retry_at && ks_now_ms() >= retry_at;

		if (ev && rd_kafka_event_type(ev) == RD_KAFKA_EVENT_OAUTHBEARER_TOKEN_REFRESH)
			due = 1;
		if (ev)
			rd_kafka_event_destroy(ev);
		if (due && !__atomic_load_n(&m->stop, __ATOMIC_ACQUIRE)) {
			ks_errbuf err = { 0 };

			retry_at = 0;
			if (refresh(m, &err) == 0)
				continue;
			if (m->valid_until_ms - ks_now_ms() > 2 * RETRY_S * 1000) {
				/* The token in use is still good: say so and try again soon. */
				ks_warn("kafka", "%s; the current token stays valid for %lld s, retrying in %d s", err.text,
					(long long)((m->valid_until_ms - ks_now_ms()) / 1000), RETRY_S);
				retry_at = ks_now_ms() + RETRY_S * 1000;
			} else {
				/* librdkafka reports it (error callback) and asks again later. */
				rd_kafka_oauthbearer_set_token_failure(m->rk, err.text);
			}
		}
	}
	return NULL;
}

int ks_msk_iam_start(ks_msk_iam_t *m, rd_kafka_t *rk, ks_errbuf *err)
{
	int r;

	if (!m)
		return 0;
	m->rk = rk;
	if (!(m->q = rd_kafka_queue_get_sasl(rk)))
		return ks_errbuf_set(err, KS_ERR_FATAL, "MSK IAM: the Kafka client has no SASL queue");
	if ((r = refresh(m, err)))
		return r;
	if (pthread_create(&m->thread, NULL, serve, m))
		return ks_errbuf_set(err, KS_ERR_NOMEM, "MSK IAM: cannot start the token refresh thread");
	m->running = 1;
	return 0;
}

void ks_msk_iam_auth_error(ks_msk_iam_t *m, const char *reason)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	if (!m->failed)
		snprintf(m->why, sizeof(m->why), "%s", reason ? reason : "");
	m->failed = 1;
	pthread_mutex_unlock(&m->lock);
}

int ks_msk_iam_failed(ks_msk_iam_t *m, ks_errbuf *err)
{
	int r = 0;

	if (!m)
		return 0;
	pthread_mutex_lock(&m->lock);
	if (m->failed)
		r = ks_errbuf_set(err, KS_ERR_AUTH,
				  "Kafka SASL authentication with AWS MSK IAM failed: %s. Check that the AWS credentials "
				  "are valid and allowed kafka-cluster:Connect on the cluster, and that the cluster is in "
				  "region %s (taken from %s; kafka.aws.region sets it)",
				  m->why, m->region, m->region_from);
	pthread_mutex_unlock(&m->lock);
	return r;
}

void ks_msk_iam_destroy(ks_msk_iam_t *m)
{
	if (!m)
		return;
	__atomic_store_n(&m->stop, 1, __ATOMIC_RELEASE);
	if (m->running) {
		rd_kafka_queue_yield(m->q);
		pthread_join(m->thread, NULL);
	}
	if (m->q)
		rd_kafka_queue_destroy(m->q);
	ks_creds_destroy(m->creds);
	pthread_mutex_destroy(&m->lock);
	free(m);
}
