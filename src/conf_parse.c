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
		if (ks_conf_set(c, key, lx->text.data, lx->origin, kline, lx->errs))
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

int ks_conf_load_sql(ks_conf *c, const char *sql, const char *origin, ks_conf_errors *errs)
{
	lexer lx = { .s = sql, .line = 1, .origin = origin, .errs = errs };
	char d[64];
	int rc = 0;

	ks_buf_init(&lx.text, 1 << 20);
	lex_next(&lx);
	if (expect_kw(&lx, "CREATE") || expect_kw(&lx, "SINK"))
		goto fail;
	if (is_kw(&lx, "IF")) {
		lex_next(&lx);
		if (expect_kw(&lx, "NOT") || expect_kw(&lx, "EXISTS"))
			goto fail;
	}
	if (lx.type != T_WORD && lx.type != T_QIDENT) {
		lex_error(&lx, "expected the sink name after CREATE SINK, found %s", tok_desc(&lx, d, sizeof(d)));
		goto fail;
	}
	free(c->sink_name);
	c->sink_name = strdup(lx.text.data);
	lex_next(&lx);
	if (is_kw(&lx, "FROM")) {
		int tline;

		lex_next(&lx);
		tline = lx.tline;
		if (lx.type != T_WORD && lx.type != T_QIDENT) {
			lex_error(&lx, "expected a topic name after FROM, found %s", tok_desc(&lx, d, sizeof(d)));
			goto fail;
		}
		if (ks_conf_set(c, "topic", lx.text.data, origin, tline, errs))
			rc = KS_ERR_CONFIG;
		lex_next(&lx);
	} else if (is_kw(&lx, "AS")) {
		lex_error(&lx, "CREATE SINK ... AS SELECT is not supported: name the Kafka topic with FROM topic");
		goto fail;
	}
	if (expect_kw(&lx, "WITH"))
		goto fail;
	if ((rc = parse_options(&lx, c) ? KS_ERR_CONFIG : rc), lx.failed)
		goto fail;
	if (is_kw(&lx, "FORMAT")) {
		static const char *const fmts[][2] = {
			{ "PLAIN", "append-only" }, { "UPSERT", "upsert" }, { "DEBEZIUM", "debezium" },
		};
		size_t i;
		int found = 0, fline;

		lex_next(&lx);
		fline = lx.tline;
		for (i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
			if (is_kw(&lx, fmts[i][0])) {
				if (ks_conf_set(c, "type", fmts[i][1], origin, fline, errs))
					rc = KS_ERR_CONFIG;
				found = 1;
			}
		}
		if (!found) {
			lex_error(&lx, "FORMAT must be PLAIN, UPSERT or DEBEZIUM, found %s", tok_desc(&lx, d, sizeof(d)));
			goto fail;
		}
		lex_next(&lx);
		if (expect_kw(&lx, "ENCODE"))
			goto fail;
		if (!is_kw(&lx, "JSON")) {
			lex_error(&lx, "ENCODE must be JSON (kinesink writes JSON), found %s", tok_desc(&lx, d, sizeof(d)));
			goto fail;
		}
		lex_next(&lx);
		if (is_punct(&lx, '(')) {
			if (parse_options(&lx, c))
				rc = KS_ERR_CONFIG;
			if (lx.failed)
				goto fail;
		}
	}
	if (is_punct(&lx, ';'))
		lex_next(&lx);
	if (lx.type != T_END) {
		lex_error(&lx, "unexpected %s after the statement", tok_desc(&lx, d, sizeof(d)));
		goto fail;
	}
	ks_buf_clean(&lx.text);
	return rc;
fail:
	ks_buf_clean(&lx.text);
	return KS_ERR_SYNTAX;
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