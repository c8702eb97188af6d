/**
 * @file conf.h
 * @brief kinesink's configuration: one declarative property table drives parsing
 *        (properties file or `CREATE SINK ... WITH (...)`), validation, `--help-config`,
 *        `--check` (secrets redacted) and the man page. Implemented by conf.c (table, store),
 *        conf_parse.c (loaders), conf_check.c (the rules), conf_route.c (routes, ks_conf_set,
 *        ks_conf_finalize) and conf_doc.c (printed forms).
 */
#ifndef KS_CONF_H
#define KS_CONF_H

#include <stdint.h>
#include <stdio.h>

#include "common.h"

typedef enum ks_sink_type {
	KS_TYPE_APPEND_ONLY = 0,
	KS_TYPE_DEBEZIUM,
	KS_TYPE_UPSERT,
} ks_sink_type;

typedef enum ks_input_format {
	KS_INPUT_DEBEZIUM_JSON = 0,
	KS_INPUT_DEBEZIUM_AVRO,
	KS_INPUT_JSON,
	KS_INPUT_RAW,
} ks_input_format;

/** raw.envelope: what a raw record's data is. */
typedef enum ks_raw_envelope {
	KS_ENVELOPE_NONE = 0, /**< the value bytes as they are */
	KS_ENVELOPE_KAFKA,    /**< a JSON object of the whole Kafka record (topic ... headers, value) */
} ks_raw_envelope;

/** schema.registry.type: where schemas come from. */
typedef enum ks_registry_type {
	KS_REGISTRY_CONFLUENT = 0, /**< a Confluent Schema Registry at schema.registry.url */
	KS_REGISTRY_GLUE,          /**< the AWS Glue Schema Registry (GetSchemaVersion) */
} ks_registry_type;

typedef enum ks_ordering { KS_ORDERING_KEY = 0, KS_ORDERING_NONE } ks_ordering;
typedef enum ks_aggregation { KS_AGG_NONE = 0, KS_AGG_KPL } ks_aggregation;
typedef enum ks_errors_policy { KS_POLICY_FAIL = 0, KS_POLICY_SKIP, KS_POLICY_DLQ } ks_errors_policy;
typedef enum ks_log_format { KS_LOGFMT_TEXT = 0, KS_LOGFMT_JSON } ks_log_format;

/** One `kafka.*` property, handed to librdkafka without the prefix. */
typedef struct ks_kv {
	char *key;   /**< without "kafka." */
	char *value;
	int line;    /**< where it was set (0: command line / default) */
} ks_kv;

struct ks_conf;

/** One `route.NAME.KEY = value` as written (or one key of a CREATE SINK statement's route). */
typedef struct ks_route_kv {
	char *key;            /**< the property, without "route.NAME." */
	char *value;
	char origin[128];     /**< file, "-X", ... */
	int line;             /**< 0: not from a file line */
} ks_route_kv;

/**
 * One route: the Kafka topics it matches and the stream it writes them to, with its own
 * output settings; every other key is the top-level one. Routes match in the order of
 * `routes`: the first route whose topic matches a Kafka topic takes it.
 */
typedef struct ks_route {
	char *name;
	ks_route_kv *kv;      /**< the route's own keys, as written */
	int n_kv;
	struct ks_conf *conf; /**< after ks_conf_finalize: the top-level configuration with the route's keys
			       *   applied (its topic the route's, no routes of its own) */
	void *re;             /**< topic is a ^regex: its compiled form (regex_t), else NULL */
	int is_template;      /**< stream holds ${topic}: one stream per matching topic */
} ks_route;

/**
 * The effective configuration. Strings are owned by the struct (NULL when unset).
 * Numbers are in the unit their property name says.
 */
typedef struct ks_conf {
	/* The reference's keys. */
	char *connector;                 /**< must be "kinesis" */
	char *stream;
	char *aws_region;
	char *endpoint;                  /**< NULL: https://kinesis.<region>.amazonaws.com(.cn) */
	char *access_key_id;             /**< secret */
	char *secret_access_key;         /**< secret */
	char *session_token;             /**< secret */
	char *role_arn;
	char *role_external_id;          /**< secret */
	ks_sink_type type;
	int force_append_only;
	char *primary_key;               /**< as written; see pk_cols */
	char **pk_cols;                  /**< parsed: trimmed, empty parts skipped, NULL-terminated */
	int n_pk_cols;

	/* Input. */
	char *topic;                     /**< comma-separated list, or ^regex */
	char *sink_name;                 /**< from CREATE SINK, informational */
	ks_input_format input_format;
	ks_raw_envelope raw_envelope;    /**< input.format=raw only */
	char *registry_url;
	char *registry_username;
	char *registry_password;         /**< secret */
	int registry_timeout_ms;
	ks_registry_type registry_type;
	char *glue_region;               /**< NULL: aws_region */
	char *glue_endpoint;             /**< NULL: https://glue.<region>.amazonaws.com(.cn) */

	/* Kinesis writer. */
	int batch_max_records;           /**< 1..500 */
	int batch_max_bytes;             /**< 1..5 MiB, keys plus data */
	int batch_linger_ms;
	int max_inflight_requests;
	int max_inflight_records;
	int64_t max_inflight_bytes;
	int decode_threads;              /**< decode + transform threads, the pipeline's included */
	int retry_backoff_ms;
	int retry_backoff_max_ms;
	int64_t delivery_timeout_ms;     /**< 0: retry forever */
	int request_timeout_ms;
	int connect_timeout_ms;
	char *ssl_ca_location;           /**< CA bundle file for HTTPS (NULL: system default) */
	char *http_proxy;                /**< NULL: libcurl's environment (https_proxy, ...) */
	ks_ordering ordering;
	ks_aggregation aggregation;
	int aggregation_max_bytes;       /**< an aggregate's partition key plus data */
	int64_t aggregation_max_records; /**< user records per aggregate */
	int rate_limit_percent;          /**< of the per-shard limits; 0: not limited */
	int64_t shards_refresh_ms;       /**< shard map listed again this often; 0: only when answers say so */
	int debezium_tombstones;

	/* Delivery engine. */
	ks_errors_policy errors_policy;
	char *errors_dlq_topic;
	int offsets_commit_interval_ms;
	int rebalance_drain_ms;
	int shutdown_timeout_ms;

	/* Operability. */
	char *metrics_listen;            /**< "host:port" or "off" */
	int stats_interval_ms;
	ks_log_format log_format;
	int log_level;                   /**< ks_log_level */

	/* Passed to librdkafka as is (the consumer's group.id and bootstrap.servers defaults are
	 * added by ks_consumer_conf_defaults once the configuration is final). */
	ks_kv *kafka;
	int n_kafka;

	/* kafka.aws.*: Amazon MSK IAM authentication (kafka.sasl.mechanism = AWS_MSK_IAM); not librdkafka's. */
	char *kafka_aws_region;          /**< the cluster's region (default: from the broker host names, else aws.region) */
	char *kafka_role_arn;            /**< role for the Kafka side (default: aws.credentials.role.arn) */
	char *kafka_role_external_id;    /**< secret */

	/* Routing: `routes = a, b` with route.a.* keys, or several CREATE SINK statements in one file. */
	char *routes;                    /**< the route names as written, in match order */
	ks_route *route;                 /**< in `routes` order once finalized; none: one implicit route, this */
	int n_route;

	/* Command-line switches (not properties). */
	int exit_at_eof;

	/* Where each table property was last set (index = table position); for messages. */
	struct ks_conf_where {
		int set;       /**< 1 once set by a file, statement or -X */
		int line;      /**< 0: not from a file line */
		char origin[128];
	} where[64];
} ks_conf;

/** @brief Fill @p c with every property's default. Caller cleans with ks_conf_clean. */
void ks_conf_init(ks_conf *c);
/** @brief Free everything @p c owns. */
void ks_conf_clean(ks_conf *c);

/**
 * Error list: parsing and validation report every problem, not just the first.
 * Each entry is a complete line such as `sink.conf:3: unknown key 'strem' (did you mean 'stream'?)`.
 */
typedef struct ks_conf_errors {
	char **msgs;
	int n;
} ks_conf_errors;
void ks_conf_errors_clean(ks_conf_errors *e);

/**
 * @brief Set one property by name. @p origin/@p line say where it came from for messages
 *        ("sink.conf", 3; "-X", 0). @returns 0, or KS_ERR_CONFIG with a message added to @p errs.
 */
int ks_conf_set(ks_conf *c, const char *key, const char *value, const char *origin, int line,
		ks_conf_errors *errs);

/**
 * @brief Load a file: `key = value` lines, or a `CREATE SINK` statement (detected by content).
 * @returns 0, KS_ERR_CONFIG (messages in @p errs), or KS_ERR_SYNTAX for a statement syntax error.
 */
int ks_conf_load_file(ks_conf *c, const char *path, ks_conf_errors *errs);

/**
 * @brief Load a `CREATE SINK [IF NOT EXISTS] name FROM topic WITH (k = 'v', ...)
 *        [FORMAT f ENCODE e [(k = 'v', ...)]] [;]` statement. @p origin names it in messages.
 * @returns 0; KS_ERR_CONFIG when options are invalid; KS_ERR_SYNTAX on a syntax error (the
 *          statement was not read to its end: skip ks_conf_finalize, its errors would be noise).
 */
int ks_conf_load_sql(ks_conf *c, const char *sql, const char *origin, ks_conf_errors *errs);

/**
 * @brief Cross-field rules and required keys (the one `finalize` step). Call after all
 *        sources were loaded. @returns 0 or KS_ERR_CONFIG (all problems in @p errs).
 */
int ks_conf_finalize(ks_conf *c, ks_conf_errors *errs);

/** @brief Print the effective configuration, secrets redacted, one `key = value` a line. */
void ks_conf_dump(const ks_conf *c, FILE *out);

/** @brief Print every property with type, default, range and description (`--help-config`). */
void ks_conf_help(FILE *out);

/** @brief Print the property table as man(7) source (for kinesink.1). */
void ks_conf_man(FILE *out);

/**
 * @brief The first route of @p c whose topic matches @p topic (a literal list member, or the
 *        route's ^regex). @returns its index, or -1 (none matches, or @p c has no routes).
 */
int ks_conf_route_find(const ks_conf *c, const char *topic);

/**
 * @brief The stream route @p r writes @p topic to: its stream, with `${topic}` replaced by
 *        @p topic when it is a template. @returns 0, or KS_ERR_CONFIG with @p err when the
 *        result is not a valid stream name (1 to 128 of [a-zA-Z0-9_.-]) or too long.
 */
int ks_conf_route_stream(const ks_route *r, const char *topic, char *out, size_t n, ks_errbuf *err);

/** @brief Name of a sink type ("append-only", "debezium", "upsert"). */
const char *ks_conf_type_str(ks_sink_type t);
/** @brief 1 if @p c's input carries updates/deletes (every Debezium input). */
int ks_conf_input_is_cdc(const ks_conf *c);

#endif
