/*
 * Configuration, printed: the effective values for --check (secrets redacted), the property
 * list for --help-config and the man page's CONFIGURATION section, all from the one table.
 */
#include "config.h"
#include "conf.h"

#include <stdio.h>
#include <string.h>

#include "conf_table.h"

/* ---- output ----------------------------------------------------------------------------- */

static void value_str(const ks_conf *c, const ks_conf_prop *p, char *out, size_t n)
{
	switch (p->type) {
	case KS_CONF_P_STR: {
		char *const *f = KS_CONF_FIELD(c, p, char *);

		if (*f && !p->secret)
			ks_url_redact(*f, out, n);
		else
			snprintf(out, n, "%s", *f ? "[redacted]" : "");
		break;
	}
	case KS_CONF_P_BOOL: snprintf(out, n, "%s", *KS_CONF_FIELD(c, p, int) ? "true" : "false"); break;
	case KS_CONF_P_INT: snprintf(out, n, "%d", *KS_CONF_FIELD(c, p, int)); break;
	case KS_CONF_P_INT64: snprintf(out, n, "%lld", (long long)*KS_CONF_FIELD(c, p, int64_t)); break;
	case KS_CONF_P_ENUM: snprintf(out, n, "%s", p->enums[*KS_CONF_FIELD(c, p, int)]); break;
	}
}

/* Each route: what it reads and writes, then every key it sets or differs in from the top level. */
static void dump_routes(const ks_conf *c, FILE *out)
{
	const char *const *keys = ks_conf_route_keys();
	char v[1024], top[1024];
	int i, k, j;

	for (i = 0; i < c->n_route; i++) {
		const ks_route *r = &c->route[i];

		if (!r->conf)
			continue;
		fprintf(out, "# route %d of %d: %s%s\n", i + 1, c->n_route, r->conf->topic && r->conf->topic[0] == '^' ? "topics matching " : "topic ",
			r->conf->topic);
		for (k = 0; keys[k]; k++) {
			const ks_conf_prop *p = NULL;

			for (j = 0; j < KS_CONF_NPROPS; j++)
				if (!strcmp(ks_conf_props[j].name, keys[k]))
					p = &ks_conf_props[j];
			if (!p || (p->type == KS_CONF_P_STR && !*KS_CONF_FIELD(r->conf, p, char *)))
				continue;
			value_str(r->conf, p, v, sizeof(v));
			value_str(c, p, top, sizeof(top));
			/* topic, stream and type always; the rest where the route's differs */
			if (strcmp(keys[k], "topic") && strcmp(keys[k], "stream") && strcmp(keys[k], "type") &&
			    !strcmp(v, top) && (p->type != KS_CONF_P_ENUM || r->conf->where[j].set == c->where[j].set))
				continue;
			fprintf(out, "route.%s.%s = %s%s\n", r->name, keys[k], v,
				!strcmp(keys[k], "stream") && r->is_template ? "  # one stream per topic" : "");
		}
	}
}

void ks_conf_dump(const ks_conf *c, FILE *out)
{
	char v[1024];
	int i;

	if (c->sink_name)
		fprintf(out, "# sink %s\n", c->sink_name);
	for (i = 0; i < KS_CONF_NPROPS; i++) {
		const ks_conf_prop *p = &ks_conf_props[i];

		if (p->type == KS_CONF_P_STR && !*KS_CONF_FIELD(c, p, char *))
			continue;
		if (p->type == KS_CONF_P_ENUM && !p->def && !c->where[i].set)
			continue;
		value_str(c, p, v, sizeof(v));
		fprintf(out, "%s = %s\n", p->name, v);
	}
	for (i = 0; i < c->n_kafka; i++)
		fprintf(out, "kafka.%s = %s\n", c->kafka[i].key,
			ks_conf_kafka_key_secret(c->kafka[i].key) ? "[redacted]" : c->kafka[i].value);
	dump_routes(c, out);
}

/*
 * Where AWS credentials come from without aws.credentials.* keys, in the order the code tries
 * them: resolve_base (creds_chain.c), then resolve for the AWS_PROFILE profile (creds_profile.c).
 */
static const char *const credential_chain[] = {
	"aws.credentials.access_key_id and secret_access_key (with session_token) when set. Otherwise the first "
	"source of this chain that has credentials; one that exists but fails stops the search with its reason:",
	"1. the environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN (skipped when the profile "
	"of step 2 has role_arn with credential_source = Environment: that role takes them as its source);",
	"2. the profile AWS_PROFILE names (default when unset) in ~/.aws/credentials and ~/.aws/config "
	"(AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE), in this order: role_arn with source_profile or "
	"credential_source (STS AssumeRole); web identity (web_identity_token_file with role_arn, or "
	"AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN, even without profile files: STS AssumeRoleWithWebIdentity); "
	"IAM Identity Center (sso_session or sso_start_url: the token aws sso login cached); the static keys of "
	"the credentials file; credential_process; the static keys of the config file;",
	"3. container credentials: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or AWS_CONTAINER_CREDENTIALS_FULL_URI;",
	"4. EC2 instance metadata (IMDSv2), unless AWS_EC2_METADATA_DISABLED = true.",
	"aws.credentials.role.arn then assumes a role on top of what was found (kafka.aws.credentials.role.arn "
	"instead, for the MSK IAM tokens).",
	NULL,
};

static void type_desc(const ks_conf_prop *p, char *out, size_t n)
{
	switch (p->type) {
	case KS_CONF_P_STR: snprintf(out, n, "string"); break;
	case KS_CONF_P_BOOL: snprintf(out, n, "true|false"); break;
	case KS_CONF_P_INT:
	case KS_CONF_P_INT64: snprintf(out, n, "integer %lld..%lld", (long long)p->min, (long long)p->max); break;
	case KS_CONF_P_ENUM: {
		size_t len = 0;
		int i;

		out[0] = '\0';
		for (i = 0; p->enums[i]; i++)
			len += (size_t)snprintf(out + len, len < n ? n - len : 0, "%s%s", i ? "|" : "", p->enums[i]);
		break;
	}
	}
}

void ks_conf_help(FILE *out)
{
	char t[256];
	int i;

	fprintf(out, "Configuration properties (file `key = value`, CREATE SINK ... WITH (key = 'value'), or -X key=value):\n\n");
	for (i = 0; i < KS_CONF_NPROPS; i++) {
		type_desc(&ks_conf_props[i], t, sizeof(t));
		fprintf(out, "%-36s %s%s%s%s\n    %s\n", ks_conf_props[i].name, t, ks_conf_props[i].def ? ", default " : "",
			ks_conf_props[i].def ? ks_conf_props[i].def : "", ks_conf_props[i].secret ? ", secret (redacted)" : "",
			ks_conf_props[i].doc);
	}
	fprintf(out, "%-36s string\n    A key of route NAME (named in routes), overriding the top-level one for the topics it matches. Routes may set:",
		"route.NAME.KEY");
	for (i = 0; ks_conf_route_keys()[i]; i++)
		fprintf(out, "%s %s", i ? "," : "", ks_conf_route_keys()[i]);
	fprintf(out, ".\n");
	fprintf(out, "%-36s string\n    Any librdkafka consumer property (kafka.bootstrap.servers, kafka.group.id, kafka.security.protocol, ...), passed as is.\n",
		"kafka.*");
	fprintf(out, "\nAWS credentials:\n");
	for (i = 0; credential_chain[i]; i++)
		fprintf(out, "    %s\n", credential_chain[i]);
}

/* man(7) escapes: a leading '.' or '\'' and backslashes. */
static void man_text(FILE *out, const char *s)
{
	if (*s == '.' || *s == '\'')
		fputs("\\&", out);
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\e", out);
		else if (*s == '-')
			fputs("\\-", out);
		else
			fputc(*s, out);
	}
}

void ks_conf_man(FILE *out)
{
	char t[256];
	int i;

	fputs(".TH KINESINK 1 \"\" \"kinesink " PACKAGE_VERSION "\" \"User Commands\"\n"
	      ".SH NAME\nkinesink \\- move Kafka change streams into AWS Kinesis Data Streams\n"
	      ".SH SYNOPSIS\n.B kinesink\n\\-c \\fIFILE\\fR [\\-X \\fIkey=value\\fR]... [\\-\\-check [\\-\\-connect]] [\\-\\-exit\\-at\\-eof] [\\-v|\\-q]\n.br\n"
	      ".B kinesink\n\\-c \\fIFILE\\fR [\\-X \\fIkey=value\\fR]... \\-\\-preview \\fIN\\fR [\\-\\-from\\-beginning] "
	      "[\\-\\-preview\\-format text|json]\n.br\n"
	      ".B kinesink\n\\-e \\(dqCREATE SINK ... WITH (...)\\(dq [\\-X \\fIkey=value\\fR]...\n.br\n"
	      ".B kinesink\n\\-\\-version | \\-\\-help | \\-\\-help\\-config\n"
	      ".SH DESCRIPTION\nkinesink consumes Kafka topics as a consumer group, decodes Debezium JSON or Avro change events, "
	      "plain JSON or raw bytes, turns them into append\\-only, debezium or upsert records and writes them to a "
	      "Kinesis data stream with PutRecords. A Kafka offset is committed only after Kinesis acknowledged every "
	      "record up to it.\n"
	      ".SH EXIT STATUS\n0 done (signal or \\-\\-exit\\-at\\-eof), 1 runtime failure, 2 usage or configuration error.\n"
	      ".SH CONFIGURATION\n", out);
	for (i = 0; i < KS_CONF_NPROPS; i++) {
		type_desc(&ks_conf_props[i], t, sizeof(t));
		fputs(".TP\n.B ", out);
		man_text(out, ks_conf_props[i].name);
		fputs("\n(", out);
		man_text(out, t);
		if (ks_conf_props[i].def) {
			fputs(", default ", out);
			man_text(out, ks_conf_props[i].def);
		}
		fputs(")\n", out);
		man_text(out, ks_conf_props[i].doc);
		fputc('\n', out);
	}
	fputs(".TP\n.B route.NAME.KEY\nA key of route NAME (named in routes), overriding the top\\-level one for the topics it matches. Routes may set:", out);
	for (i = 0; ks_conf_route_keys()[i]; i++) {
		fputs(i ? ", " : " ", out);
		man_text(out, ks_conf_route_keys()[i]);
	}
	fputs(".\n", out);
	fputs(".TP\n.B kafka.*\nAny librdkafka consumer property, passed as is.\n"
	      ".SH SIGNALS\nSIGTERM and SIGINT stop consuming, finish records in flight (up to shutdown.timeout.ms), "
	      "commit what was acknowledged, leave the group (within 10 s, also during a rebalance) and exit 0. "
	      "A second SIGTERM or SIGINT exits 1 at once: what was not committed is read again by the partitions' "
	      "next owner.\n", out);
	fputs(".SH AWS CREDENTIALS\n", out);
	for (i = 0; credential_chain[i]; i++) {
		fputs(i ? ".PP\n" : "", out);
		man_text(out, credential_chain[i]);
		fputc('\n', out);
	}
}