/*
 * Configuration sources: properties files (`key = value` lines) and `CREATE SINK ... WITH (...)`
 * statements. Each key goes through ks_conf_set; this file only finds keys, values and lines.
 */
#include "config.h"
#include "conf.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf_table.h"

/* ---- properties files ---------------------------------------------------------------- */

static int load_properties(ks_conf *c, char *text, const char *origin, ks_conf_errors *errs)
{
	int line = 0, rc = 0;
	char *save = NULL, *l;

	/* strtok_r would skip empty lines and lose the count: split by hand. */
	for (l = text; l; l = save) {
		char *eq, *key, *val;

		save = strchr(l, '\n');
		if (save)
			*save++ = '\0';
		line++;
		l = ks_conf_trim(l);
		if (!*l || *l == '#')
			continue;
		if (!(eq = strchr(l, '='))) {
			char at[256];

			ks_conf_where_str(at, sizeof(at), origin, line);
			ks_conf_add_err(errs, "%s: expected 'key = value', got '%.60s'", at, l);
			rc = KS_ERR_CONFIG;
			continue;
		}
		*eq = '\0';
		key = ks_conf_trim(l);
		val = ks_conf_trim(eq + 1);
		if (ks_conf_set(c, key, val, origin, line, errs))
			rc = KS_ERR_CONFIG;
	}
	return rc;
}

/* ---- CREATE SINK statements ---------------------------------------------------------- */

typedef enum { T_END, T_WORD, T_STR, T_QIDENT, T_PUNCT } toktype;

typedef struct lexer {
	const char *s;
	size_t pos;
	int line;
	toktype type;
	int tline;        /* line where the current token starts */
	ks_buf text;      /* current token's text (unquoted) */
	char punct;
	const char *origin;
	ks_conf_errors *errs;
	int failed;
	/* Several statements: each is a route named by its sink; the keys a route cannot set are
	 * the process's, and every statement that sets one must agree. */
	int multi;
	const char *sink;  /* the statement's sink name */
	ks_route_kv *seen; /* process keys set so far: value, and the sink in origin */
	int n_seen;
} lexer;

static void lex_error(lexer *lx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void lex_error(lexer *lx, const char *fmt, ...)
{
	char msg[512], at[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ks_conf_where_str(at, sizeof(at), lx->origin, lx->tline);
	ks_conf_add_err(lx->errs, "%s: %s", at, msg);
	lx->failed = 1;
}

static void lex_next(lexer *lx)
{
	const char *s = lx->s;
	char q;

	ks_buf_reset(&lx->text);
	for (;;) {
		while (s[lx->pos] && isspace((unsigned char)s[lx->pos])) {
			if (s[lx->pos] == '\n')
				lx->line++;
			lx->pos++;
		}
		if (s[lx->pos] == '-' && s[lx->pos + 1] == '-') {
			while (s[lx->pos] && s[lx->pos] != '\n')
				lx->pos++;
			continue;
		}
		if (s[lx->pos] == '/' && s[lx->pos + 1] == '*') {
			lx->pos += 2;
			while (s[lx->pos] && !(s[lx->pos] == '*' && s[lx->pos + 1] == '/')) {
				if (s[lx->pos] == '\n')
					lx->line++;
				lx->pos++;
			}
			if (s[lx->pos])
				lx->pos += 2;
			continue;
		}
		break;
	}
	lx->tline = lx->line;
	if (!s[lx->pos]) {
		lx->type = T_END;
		return;
	}
	if (s[lx->pos] == '\'' || s[lx->pos] == '"') {
		q = s[lx->pos++];
		for (;;) {
			char ch = s[lx->pos];

			if (!ch) {
				lex_error(lx, "unterminated %s starting here",
					  q == '\'' ? "string" : "quoted identifier");
				lx->type = T_END;
				return;
			}
			if (ch == q) {
				if (s[lx->pos + 1] == q) { /* '' and "" escape the quote */
					ks_buf_append(&lx->text, &q, 1);
					lx->pos += 2;
					continue;
				}
				lx->pos++;
				break;
			}
			if (ch == '\n')
				lx->line++;
			ks_buf_append(&lx->text, &ch, 1);
			lx->pos++;
		}
		lx->type = q == '\'' ? T_STR : T_QIDENT;
		if (!lx->text.data)
			ks_buf_append(&lx->text, "", 0);
		return;
	}
	if (isalnum((unsigned char)s[lx->pos]) || s[lx->pos] == '_' || s[lx->pos] == '^' ||
	    s[lx->pos] == '-' || s[lx->pos] == '+') {
		size_t start = lx->pos;

		/* Words include dots (aws.region) and the characters of bare numbers. */
		while (isalnum((unsigned char)s[lx->pos]) || s[lx->pos] == '_' || s[lx->pos] == '.' ||
		       s[lx->pos] == '-' || s[lx->pos] == '^' || s[lx->pos] == '+' || s[lx->pos] == '$')
			lx->pos++;
		ks_buf_append(&lx->text, s + start, lx->pos - start);
		lx->type = T_WORD;
		return;
	}
	lx->punct = s[lx->pos++];
	lx->type = T_PUNCT;
}

static int is_kw(const lexer *lx, const char *kw)
{
	return lx->type == T_WORD && strcasecmp(lx->text.data, kw) == 0;
}

static int is_punct(const lexer *lx, char p)
{
	return lx->type == T_PUNCT && lx->punct == p;
}

static const char *tok_desc(const lexer *lx, char *buf, size_t n)
{
	switch (lx->type) {
	case T_END: return "the end of the statement";
	case T_PUNCT: snprintf(buf, n, "'%c'", lx->punct); return buf;
	default: snprintf(buf, n, "'%.40s'", lx->text.data); return buf;
	}
}

static int expect_kw(lexer *lx, const char *kw)
{
	char d[64];

	if (!is_kw(lx, kw)) {
		lex_error(lx, "expected %s, found %s", kw, tok_desc(lx, d, sizeof(d)));
		return -1;
	}
	lex_next(lx);
	return 0;
}

/* One key of a statement: the top level's, or with several statements its route's. */
static int sql_set(lexer *lx, ks_conf *c, const char *key, const char *value, int line)
{
	ks_route_kv *n;
	char at[256];
	int i;

	if (!lx->multi)
		return ks_conf_set(c, key, value, lx->origin, line, lx->errs);
	if (ks_conf_route_key(key))
		return ks_conf_route_set(c, lx->sink, key, value, lx->origin, line, lx->errs);
	for (i = 0; i < lx->n_seen; i++) {
		if (strcmp(lx->seen[i].key, key) != 0)
			continue;
		if (strcmp(lx->seen[i].value, value) == 0)
			return 0;
		ks_conf_where_str(at, sizeof(at), lx->origin, line);
		ks_conf_add_err(lx->errs, "%s: sink '%s' sets %s differently from sink '%s' (line %d): the statements of one "
					  "file share one Kafka consumer and one AWS identity, so the keys a route cannot set "
					  "must agree (or be set in one statement only)",
				at, lx->sink, key, lx->seen[i].origin, lx->seen[i].line);
		return KS_ERR_CONFIG;
	}
	if (!(n = realloc(lx->seen, sizeof(*n) * (size_t)(lx->n_seen + 1))))
		return KS_ERR_NOMEM;
	lx->seen = n;
	n = &n[lx->n_seen];
	memset(n, 0, sizeof(*n));
	if (!(n->key = strdup(key)) || !(n->value = strdup(value))) {
		free(n->key);
		free(n->value);
		return KS_ERR_NOMEM;
	}
	snprintf(n->origin, sizeof(n->origin), "%s", lx->sink);
	n->line = line;
	lx->n_seen++;
	return ks_conf_set(c, key, value, lx->origin, line, lx->errs);
}

/* ( key = 'value' [, ...] ) */
static int parse_options(lexer *lx, ks_conf *c)
{
	char d[64];
	int rc = 0;

	if (!is_punct(lx, '(')) {
		lex_error(lx, "expected '(', found %s", tok_desc(lx, d, sizeof(d)));
		return -1;
	}
	lex_next(lx);
	if (is_punct(lx, ')')) {
		lex_next(lx);
		return 0;
	}
	for (;;) {
		char *key;
		int kline = lx->tline;

		if (lx->type != T_WORD && lx->type != T_QIDENT && lx->type != T_STR) {
			lex_error(lx, "expected an option name, found %s", tok_desc(lx, d, sizeof(d)));
			return -1;
		}
		if (!(key = strdup(lx->text.data)))
			return KS_ERR_NOMEM;
		lex_next(lx);
		if (!is_punct(lx, '=')) {
			lex_error(lx, "expected '=' after option '%s', found %s", key, tok_desc(lx, d, sizeof(d)));
			free(key);
			return -1;
		}
		lex_next(lx);
		if (lx->type != T_STR && lx->type != T_WORD) {
			lex_error(lx, "expected a quoted value for option '%s', found %s", key,
				  tok_desc(lx, d, sizeof(d)));
			free(key);
			return -1;
		}
		if (sql_set(lx, c, key, lx->text.data, kline))
			rc = KS_ERR_CONFIG;
		free(key);
		lex_next(lx);
		if (is_punct(lx, ',')) {
			lex_next(lx);
			if (is_punct(lx, ')')) { /* tolerate a trailing comma */
				lex_next(lx);
				return rc;
			}
			continue;
		}
		if (is_punct(lx, ')')) {
			lex_next(lx);
			return rc;
		}
		lex_error(lx, "expected ',' or ')' after option '%s' value, found %s", "", tok_desc(lx, d, sizeof(d)));
		return -1;
	}
}

/* CREATE SINK [IF NOT EXISTS] name [FROM topic] WITH (...) [FORMAT f ENCODE JSON [(...)]]; the
 * lexer stands on its first word and is left after it. @returns 0, KS_ERR_CONFIG, or -1 on a
 * syntax error (reported). */
static int parse_statement(lexer *lx, ks_conf *c, ks_buf *names)
{
	char d[64];
	int rc = 0;

	if (expect_kw(lx, "CREATE") || expect_kw(lx, "SINK"))
		return -1;
	if (is_kw(lx, "IF")) {
		lex_next(lx);
		if (expect_kw(lx, "NOT") || expect_kw(lx, "EXISTS"))
			return -1;
	}
	if (lx->type != T_WORD && lx->type != T_QIDENT) {
		lex_error(lx, "expected the sink name after CREATE SINK, found %s", tok_desc(lx, d, sizeof(d)));
		return -1;
	}
	if (lx->multi) {
		if (ks_buf_reserve(names, lx->text.len + 2) || ks_buf_puts(names, names->len ? "," : "") ||
		    ks_buf_puts(names, lx->text.data))
			return KS_ERR_NOMEM;
		lx->sink = names->data + names->len - lx->text.len;
	} else {
		free(c->sink_name);
		c->sink_name = strdup(lx->text.data);
	}
	lex_next(lx);
	if (is_kw(lx, "FROM")) {
		int tline;

		lex_next(lx);
		tline = lx->tline;
		if (lx->type != T_WORD && lx->type != T_QIDENT) {
			lex_error(lx, "expected a topic name after FROM, found %s", tok_desc(lx, d, sizeof(d)));
			return -1;
		}
		if (sql_set(lx, c, "topic", lx->text.data, tline))
			rc = KS_ERR_CONFIG;
		lex_next(lx);
	} else if (is_kw(lx, "AS")) {
		lex_error(lx, "CREATE SINK ... AS SELECT is not supported: name the Kafka topic with FROM topic");
		return -1;
	}
	if (expect_kw(lx, "WITH"))
		return -1;
	if ((rc = parse_options(lx, c) ? KS_ERR_CONFIG : rc), lx->failed)
		return -1;
	if (is_kw(lx, "FORMAT")) {
		static const char *const fmts[][2] = {
			{ "PLAIN", "append-only" }, { "UPSERT", "upsert" }, { "DEBEZIUM", "debezium" },
		};
		size_t i;
		int found = 0, fline;

		lex_next(lx);
		fline = lx->tline;
		for (i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
			if (is_kw(lx, fmts[i][0])) {
				if (sql_set(lx, c, "type", fmts[i][1], fline))
					rc = KS_ERR_CONFIG;
				found = 1;
			}
		}
		if (!found) {
			lex_error(lx, "FORMAT must be PLAIN, UPSERT or DEBEZIUM, found %s", tok_desc(lx, d, sizeof(d)));
			return -1;
		}
		lex_next(lx);
		if (expect_kw(lx, "ENCODE"))
			return -1;
		if (!is_kw(lx, "JSON")) {
			lex_error(lx, "ENCODE must be JSON (kinesink writes JSON), found %s", tok_desc(lx, d, sizeof(d)));
			return -1;
		}
		lex_next(lx);
		if (is_punct(lx, '(')) {
			if (parse_options(lx, c))
				rc = KS_ERR_CONFIG;
			if (lx->failed)
				return -1;
		}
	}
	return rc;
}

/* Statements in @p sql: CREATE at the start or after a ';' (a pass of the lexer alone). */
static int count_statements(const char *sql)
{
	ks_conf_errors scratch = { 0 };
	lexer lx = { .s = sql, .line = 1, .origin = "", .errs = &scratch };
	int n = 0, start = 1;

	ks_buf_init(&lx.text, 1 << 20);
	for (lex_next(&lx); lx.type != T_END; lex_next(&lx)) {
		if (start && is_kw(&lx, "CREATE"))
			n++;
		start = is_punct(&lx, ';');
	}
	ks_buf_clean(&lx.text);
	ks_conf_errors_clean(&scratch);
	return n;
}

int ks_conf_load_sql(ks_conf *c, const char *sql, const char *origin, ks_conf_errors *errs)
{
	lexer lx = { .s = sql, .line = 1, .origin = origin, .errs = errs };
	ks_buf names;
	char d[64];
	int rc = 0, r, i, first_line = 1;

	ks_buf_init(&lx.text, 1 << 20);
	ks_buf_init(&names, 1 << 20);
	lx.multi = count_statements(sql) > 1;
	lex_next(&lx);
	first_line = lx.tline;
	for (;;) {
		if ((r = parse_statement(&lx, c, &names)) < 0 && r != KS_ERR_CONFIG)
			goto fail;
		if (r)
			rc = KS_ERR_CONFIG;
		if (is_punct(&lx, ';'))
			lex_next(&lx);
		if (lx.type == T_END)
			break;
		if (!lx.multi || !is_kw(&lx, "CREATE")) {
			lex_error(&lx, "unexpected %s after the statement", tok_desc(&lx, d, sizeof(d)));
			goto fail;
		}
	}
	if (lx.multi) {
		/* Each sink is a route, matched in the order of the statements. */
		char *list = strdup(names.data), *tok, *save = NULL;
		ks_buf uniq;

		ks_buf_init(&uniq, 1 << 20);
		for (tok = list ? strtok_r(list, ",", &save) : NULL; tok; tok = strtok_r(NULL, ",", &save)) {
			char at[256];
			size_t k = 0, len = strlen(tok);
			int dup = 0;

			for (k = 0; uniq.data && k + len <= uniq.len; k++)
				dup |= (k == 0 || uniq.data[k - 1] == ',') && !strncmp(uniq.data + k, tok, len) &&
				       (k + len == uniq.len || uniq.data[k + len] == ',');
			if (dup) {
				ks_conf_where_str(at, sizeof(at), origin, 0);
				ks_conf_add_err(errs, "%s: two statements create sink '%s': each sink is a route and needs a name of its own",
						at, tok);
				rc = KS_ERR_CONFIG;
			} else if ((uniq.len && ks_buf_puts(&uniq, ",")) || ks_buf_puts(&uniq, tok)) {
				rc = KS_ERR_NOMEM;
			}
		}
		free(list);
		ks_buf_reset(&names);
		if (uniq.data)
			ks_buf_puts(&names, uniq.data);
		ks_buf_clean(&uniq);
		if (ks_conf_set(c, "routes", names.data, origin, first_line, errs))
			rc = KS_ERR_CONFIG;
	}
	goto done;
fail:
	rc = KS_ERR_SYNTAX;
done:
	for (i = 0; i < lx.n_seen; i++) {
		OPENSSL_cleanse(lx.seen[i].value, strlen(lx.seen[i].value));
		free(lx.seen[i].key);
		free(lx.seen[i].value);
	}
	free(lx.seen);
	ks_buf_clean(&names);
	ks_buf_clean(&lx.text);
	return rc;
}

static int looks_like_sql(const char *text)
{
	const char *p = text;

	for (;;) {
		while (isspace((unsigned char)*p))
			p++;
		if (p[0] == '-' && p[1] == '-') {
			while (*p && *p != '\n')
				p++;
			continue;
		}
		break;
	}
	return strncasecmp(p, "CREATE", 6) == 0 && (isspace((unsigned char)p[6]) || !p[6]);
}

int ks_conf_load_file(ks_conf *c, const char *path, ks_conf_errors *errs)
{
	ks_buf b;
	char chunk[8192];
	size_t n;
	FILE *f;
	int rc;

	if (!(f = fopen(path, "r"))) {
		ks_conf_add_err(errs, "%s: cannot open: %s", path, strerror(errno));
		return KS_ERR_CONFIG;
	}
	ks_buf_init(&b, 16u << 20);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (ks_buf_append(&b, chunk, n)) {
			ks_conf_add_err(errs, "%s: file too large (over 16 MiB)", path);
			fclose(f);
			ks_buf_clean(&b);
			return KS_ERR_CONFIG;
		}
	}
	fclose(f);
	if (!b.data)
		ks_buf_append(&b, "", 0);
	if (looks_like_sql(b.data))
		rc = ks_conf_load_sql(c, b.data, path, errs);
	else
		rc = load_properties(c, b.data, path, errs);
	OPENSSL_cleanse(b.data, b.len);
	ks_buf_clean(&b);
	return rc;
}