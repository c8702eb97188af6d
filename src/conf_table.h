/**
 * @file conf_table.h
 * @brief The property table and the helpers the configuration's files share (conf.c owns
 *        them; conf_parse.c, conf_check.c and conf_doc.c use them). Not for the rest of the
 *        program: it goes through conf.h. The files call down only: conf.c (table, store) <-
 *        conf_check.c (the rules on one ks_conf) <- conf_route.c (routes, ks_conf_set,
 *        ks_conf_finalize) <- conf_parse.c, conf_doc.c.
 */
#ifndef KS_CONF_TABLE_H
#define KS_CONF_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"

/** How a property's text is stored in ks_conf. */
typedef enum ks_conf_ptype { KS_CONF_P_STR, KS_CONF_P_INT, KS_CONF_P_INT64, KS_CONF_P_BOOL, KS_CONF_P_ENUM } ks_conf_ptype;

/** One property: name, type, where it lives in ks_conf, default, range, documentation. */
typedef struct ks_conf_prop {
	const char *name;
	ks_conf_ptype type;
	size_t off;               /**< offset of the field in ks_conf */
	const char *def;          /**< default as text (NULL: unset) */
	int64_t min, max;
	const char *const *enums; /**< allowed values, index = stored int */
	int secret;
	const char *doc;
} ks_conf_prop;

/** The table, in documentation order; ks_conf.where[i] belongs to ks_conf_props[i]. */
extern const ks_conf_prop ks_conf_props[];
extern const int ks_conf_nprops;
#define KS_CONF_NPROPS ks_conf_nprops

/** The field of @p c that property @p p is stored in, as a T pointer. */
#define KS_CONF_FIELD(c, p, T) ((T *)(void *)((char *)(c) + (p)->off))

/** @brief Add one formatted message to @p e (NULL: dropped). @locality any thread */
void ks_conf_add_err(ks_conf_errors *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** @brief "origin:line", or "origin" when @p line is 0, into @p out. */
void ks_conf_where_str(char *out, size_t n, const char *origin, int line);

/** @brief Where property @p name was last set ("file:3", "-X"), or "configuration". @returns @p buf. */
const char *ks_conf_at(const ks_conf *c, const char *name, char *buf, size_t n);

/** @brief 1 if property @p name was set by a file, statement or -X (not just defaulted). */
int ks_conf_is_set(const ks_conf *c, const char *name);

/** @brief Trim white space at both ends, in place. @returns the trimmed start. */
char *ks_conf_trim(char *s);

/** @brief 1 if the librdkafka key @p k (without "kafka.") holds a secret. */
int ks_conf_kafka_key_secret(const char *k);

/** @brief Name of an input format ("debezium-json", ...). */
const char *ks_conf_input_str(ks_input_format f);
const char *ks_conf_envelope_str(ks_raw_envelope e);

/** @brief The property @p key is plausibly a typo of, or NULL. */
const char *ks_conf_suggest(const char *key);

/**
 * @brief ks_conf_set for a table property or a kafka.* key (librdkafka judges it); a route.*
 *        key is unknown here: ks_conf_set (conf_route.c) hands those to their route.
 * @returns 0, or KS_ERR_CONFIG with a message added to @p errs.
 */
int ks_conf_set_key(ks_conf *c, const char *key, const char *value, const char *origin, int line,
		    ks_conf_errors *errs);

/* ---- routes (conf_route.c, above conf.c and conf_check.c: it calls them, never the reverse) ---- */

/** @brief 1 if a route may set property @p key (route.NAME.KEY). */
int ks_conf_route_key(const char *key);
/** @brief The keys a route may set, NULL-terminated. */
const char *const *ks_conf_route_keys(void);
/** @brief Set key @p key of route @p name (created on first use). @returns 0 or KS_ERR_CONFIG (in @p errs). */
int ks_conf_route_set(ks_conf *c, const char *name, const char *key, const char *value, const char *origin, int line,
		      ks_conf_errors *errs);
/** @brief ks_conf_route_set for "NAME.KEY" (the text after "route."). */
int ks_conf_route_set_dotted(ks_conf *c, const char *rest, const char *value, const char *origin, int line,
			     ks_conf_errors *errs);

/* ---- rules (conf_check.c): on one ks_conf, problems added to errs; they call nothing above ---- */

/** @brief The rules of the keys a route may set (stream, topic, type, ...), on @p c alone. */
void ks_conf_check_output(ks_conf *c, ks_conf_errors *errs);
/** @brief The rules of the process's own keys (Kafka, credentials, error policy, metrics). */
void ks_conf_check_process(ks_conf *c, ks_conf_errors *errs);
/** @brief Every rule, in one order: a configuration without routes. */
void ks_conf_check_all(ks_conf *c, ks_conf_errors *errs);

#endif
