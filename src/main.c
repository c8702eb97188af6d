/* kinesink: the command line. Parses options, loads the configuration, runs the pipeline. */
#include "config.h"

#include <curl/curl.h>
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "connect.h"
#include "consumer.h"
#include "dlq.h"
#include "log.h"
#include "pipeline.h"
#include "preview.h"
#include "scrub.h"
#include "signals.h"

static void usage(FILE *out)
{
	fputs("Usage: kinesink -c FILE [-X key=value]... [--check [--connect]] [--exit-at-eof] [-v|-q]\n"
	      "       kinesink -c FILE [-X key=value]... --preview N [--from-beginning] [--preview-format text|json]\n"
	      "       kinesink -e \"CREATE SINK name FROM topic WITH (...)\" [-X key=value]...\n"
	      "       kinesink --version | --help | --help-config\n"
	      "\n"
	      "Moves Kafka change streams (Debezium JSON/Avro, JSON, raw) into an AWS Kinesis data stream.\n"
	      "\n"
	      "  -c, --config FILE   properties file (key = value) or a CREATE SINK statement\n"
	      "  -e, --execute SQL   a CREATE SINK ... WITH (...) statement\n"
	      "  -X key=value        set a property (later ones win; kafka.* goes to librdkafka)\n"
	      "      --check         validate, print the configuration (secrets redacted), exit\n"
	      "      --connect       with --check: also reach every peer once (credentials and their source,\n"
	      "                      Kafka brokers and topic partitions, Schema Registry, the stream), one\n"
	      "                      line per check; exit 1 when one fails\n"
	      "      --exit-at-eof   exit 0 once every partition is at its end, acknowledged and committed\n"
	      "      --preview N     decode and transform up to N messages as a run would and print each\n"
	      "                      record's partition key and data (or what errors.policy would do with a\n"
	      "                      bad one); sends nothing to Kinesis, commits nothing, joins no group\n"
	      "                      (reads the group's committed offsets); stops at the partitions' end\n"
	      "      --from-beginning   with --preview: start at the first offset, not the committed one\n"
	      "      --preview-format text|json   one line per record (default), or one JSON object\n"
	      "  -v, --verbose       more logging (repeatable);  -q, --quiet: errors only\n"
	      "      --help-config   list every configuration property\n"
	      "      --version       print the version\n"
	      "\n"
	      "Exit status: 0 done, 1 runtime failure, 2 usage or configuration error.\n",
	      out);
}

/* An exit message that carries what a check or a peer said: "kinesink: TEXT", scrubbed. */
static void say(const char *text)
{
	char line[4096];

	snprintf(line, sizeof(line), "kinesink: %s\n", text);
	ks_scrub_str(line, sizeof(line));
	fputs(line, stderr);
}

static void print_errors(const ks_conf_errors *e)
{
	int i;

	for (i = 0; i < e->n; i++)
		say(e->msgs[i]);
}

/*
 * --check: what librdkafka would refuse at start (its cross-property rules run in rd_kafka_new),
 * for the consumer and the dead-letter producer, offline and in start-up's words.
 */
static int check_kafka(const ks_conf *conf)
{
	ks_errbuf e;
	int n = 0;

	ks_errbuf_clear(&e);
	if (ks_consumer_check(conf, &e)) {
		say(e.text);
		n++;
	}
	ks_errbuf_clear(&e);
	if (conf->errors_policy == KS_POLICY_DLQ && ks_dlq_check(conf, &e)) {
		say(e.text);
		n++;
	}
	if (n)
		fprintf(stderr, "kinesink: configuration invalid (%d error%s)\n", n, n == 1 ? "" : "s");
	return n;
}

enum { OPT_CHECK = 256, OPT_EXIT_AT_EOF, OPT_VERSION, OPT_HELP_CONFIG, OPT_MAN, OPT_CONNECT, OPT_PREVIEW,
       OPT_FROM_BEGINNING, OPT_PREVIEW_FORMAT };

/* --preview N: a positive count. @returns 0 or -1. */
static int parse_count(const char *s, long *out)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (end == s || *end || v <= 0)
		return -1;
	*out = v;
	return 0;
}

/* What the command line asked for. */
typedef struct cli {
	const char *file, *sql;
	char **xs; /* -X key=value, in order (pointers into argv) */
	int nx, check, exit_at_eof, verbosity, quiet, connect, from_beginning, preview_json;
	long preview;
} cli;

/*
 * Options and their combinations. @returns -1 to go on, or the exit status when the command
 * line was answered here (--help, --version, ...: 0) or is wrong (2, message printed).
 */
static int parse_args(int argc, char **argv, cli *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "execute", required_argument, NULL, 'e' },
		{ "check", no_argument, NULL, OPT_CHECK },
		{ "exit-at-eof", no_argument, NULL, OPT_EXIT_AT_EOF },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "help-config", no_argument, NULL, OPT_HELP_CONFIG },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "man", no_argument, NULL, OPT_MAN },
		{ "connect", no_argument, NULL, OPT_CONNECT },
		{ "preview", required_argument, NULL, OPT_PREVIEW },
		{ "from-beginning", no_argument, NULL, OPT_FROM_BEGINNING },
		{ "preview-format", required_argument, NULL, OPT_PREVIEW_FORMAT },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "c:e:X:vqh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': o->file = optarg; break;
		case 'e': o->sql = optarg; break;
		case 'X': {
			char **n = realloc(o->xs, sizeof(*o->xs) * (size_t)(o->nx + 1));

			if (!n) {
				fprintf(stderr, "kinesink: out of memory\n");
				return 2;
			}
			o->xs = n;
			o->xs[o->nx++] = optarg;
			break;
		}
		case OPT_CHECK: o->check = 1; break;
		case OPT_EXIT_AT_EOF: o->exit_at_eof = 1; break;
		case OPT_CONNECT: o->connect = 1; break;
		case OPT_FROM_BEGINNING: o->from_beginning = 1; break;
		case OPT_PREVIEW:
			if (parse_count(optarg, &o->preview)) {
				fprintf(stderr, "kinesink: --preview expects a number of messages > 0, got '%s'\n", optarg);
				return 2;
			}
			break;
		case OPT_PREVIEW_FORMAT:
			if (strcmp(optarg, "text") != 0 && strcmp(optarg, "json") != 0) {
				fprintf(stderr, "kinesink: --preview-format is text or json, got '%s'\n", optarg);
				return 2;
			}
			o->preview_json = strcmp(optarg, "json") == 0;
			break;
		case 'v': o->verbosity++; break;
		case 'q': o->quiet = 1; break;
		case 'h': usage(stdout); return 0;
		case OPT_HELP_CONFIG: ks_conf_help(stdout); return 0;
		case OPT_MAN: ks_conf_man(stdout); return 0;
		case OPT_VERSION:
			printf("kinesink %s (librdkafka %s, %s)\n", PACKAGE_VERSION, rd_kafka_version_str(),
			       curl_version());
			return 0;
		default:
			fprintf(stderr, "kinesink: try 'kinesink --help'\n");
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "kinesink: unexpected argument '%s'; try 'kinesink --help'\n", argv[optind]);
		return 2;
	}
	if ((o->connect && !o->check) || ((o->from_beginning || o->preview_json) && !o->preview) ||
	    (o->preview && (o->check || o->exit_at_eof))) {
		fprintf(stderr, "kinesink: %s; try 'kinesink --help'\n",
			o->connect && !o->check ? "--connect goes with --check"
			: !o->preview ? "--from-beginning and --preview-format go with --preview"
				      : "--preview does not go with --check or --exit-at-eof");
		return 2;
	}
	if (!o->file == !o->sql) {
		fprintf(stderr, "kinesink: %s; try 'kinesink --help'\n",
			o->file ? "give either -c FILE or -e STATEMENT, not both" : "a configuration is required: -c FILE or -e \"CREATE SINK ...\"");
		return 2;
	}
	return -1;
}

/*
 * The configuration: the file or statement, then -X in order, then the cross-field rules and the
 * consumer's defaults. @returns 0, or 2 with every problem printed (@p conf cleaned).
 */
static int load_conf(const cli *o, ks_conf *conf)
{
	ks_conf_errors errs = { 0 };
	int i, rc;

	ks_conf_init(conf);
	rc = o->file ? ks_conf_load_file(conf, o->file, &errs) : ks_conf_load_sql(conf, o->sql, "-e", &errs);
	for (i = 0; i < o->nx; i++) {
		char *eq = strchr(o->xs[i], '='), key[256];

		if (!eq || eq == o->xs[i] || (size_t)(eq - o->xs[i]) >= sizeof(key)) {
			fprintf(stderr, "kinesink: -X expects key=value, got '%s'\n", o->xs[i]);
			rc = KS_ERR_CONFIG;
			continue;
		}
		memcpy(key, o->xs[i], (size_t)(eq - o->xs[i]));
		key[eq - o->xs[i]] = '\0';
		if (ks_conf_set(conf, key, eq + 1, "-X", 0, &errs))
			rc = KS_ERR_CONFIG;
	}
	conf->exit_at_eof = o->exit_at_eof;
	/* A statement that did not parse to its end leaves keys unread: finalize would only add noise. */
	if (rc != KS_ERR_SYNTAX && ks_conf_finalize(conf, &errs))
		rc = KS_ERR_CONFIG;
	if (!rc && ks_consumer_conf_defaults(conf, &errs)) {
		fprintf(stderr, "kinesink: out of memory adding the Kafka defaults\n");
		rc = KS_ERR_NOMEM;
	}
	if (rc) {
		print_errors(&errs);
		fprintf(stderr, "kinesink: configuration invalid (%d error%s)\n", errs.n, errs.n == 1 ? "" : "s");
		ks_conf_errors_clean(&errs);
		ks_conf_clean(conf);
		return 2;
	}
	ks_conf_errors_clean(&errs);
	return 0;
}

/* --check [--connect]: librdkafka's verdict, the effective configuration, then each peer once. */
static int run_check(const cli *o, const ks_conf *conf)
{
	FILE *out;
	int rc = 0;

	if (check_kafka(conf))
		return 2;
	/* What the checks print, peers' answers included, goes out scrubbed. */
	if (!(out = ks_scrub_stream(stdout))) {
		say("out of memory");
		return 1;
	}
	ks_conf_dump(conf, out);
	if (o->connect) {
		/* Beyond the offline validation: each peer tried once, one line per check. */
		curl_global_init(CURL_GLOBAL_DEFAULT);
		fputs("\n", out);
		rc = ks_connect_run(conf, out) ? 1 : 0;
		curl_global_cleanup();
	}
	fclose(out);
	return rc;
}

/*
 * A run, or --preview: logging, signals, then the pipeline or the preview until done or stopped.
 * The signals are taken on their own thread, started before any other (libcurl's, librdkafka's,
 * libmicrohttpd's, the lanes'): none of those ever runs a handler. After the first, the worker
 * has shutdown.timeout.ms to finish what is in flight, then KS_CLOSE_BOUND_MS to commit and
 * leave its group; past that, the signal thread ends it.
 */
static int run(const cli *o, const ks_conf *conf)
{
	ks_stop stop = KS_STOP_INIT;
	ks_signals_t *sig;
	ks_errbuf err;
	int rc;

	ks_log_setup(o->quiet ? KS_LOG_ERROR : conf->log_level + o->verbosity, conf->log_format == KS_LOGFMT_JSON);
	ks_errbuf_clear(&err);
	if (!(sig = ks_signals_start(&stop, (int64_t)conf->shutdown_timeout_ms + KS_CLOSE_BOUND_MS + 5000, &err))) {
		say(err.text);
		return 1;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);

	if (o->preview) {
		ks_preview_opts po = { o->preview, o->from_beginning, o->preview_json ? KS_PREVIEW_JSON : KS_PREVIEW_TEXT, 0 };
		FILE *out = ks_scrub_stream(stdout);

		if (!out)
			ks_errbuf_set(&err, KS_ERR_NOMEM, "out of memory");
		if (!out || (rc = ks_preview_run(conf, &po, out, &stop, &err))) {
			ks_errbuf_prefix(&err, "preview");
			say(err.text);
			rc = 1;
		}
		if (out)
			fclose(out);
	} else {
		rc = ks_pipeline_run(conf, &stop);
	}
	if (rc & KS_PIPELINE_LEFT) {
		/* The Kafka client is left as it is: its threads may still run, so nothing is torn
		 * down. What was acknowledged is committed; the rest is read again. */
		fflush(NULL);
		_exit(rc & 0xff);
	}
	ks_signals_destroy(sig);
	curl_global_cleanup();
	return rc;
}

int main(int argc, char **argv)
{
	cli o = { 0 };
	ks_conf conf;
	int rc;

	ks_signals_hold(1); /* a run takes them on its own thread; other commands let them act */
	if ((rc = parse_args(argc, argv, &o)) < 0)
		rc = load_conf(&o, &conf) ? 2 : -1;
	free(o.xs);
	if (rc >= 0) /* answered, or refused, without a configuration to run */
		return rc;
	if (o.check)
		ks_signals_hold(0);
	rc = o.check ? run_check(&o, &conf) : run(&o, &conf);
	ks_conf_clean(&conf);
	return rc;
}
