/*
 * Deterministic JSON out of jansson values: compact, object members sorted bytewise, reals as
 * RisingWave's serde_json writes them. Every record's data and partition key goes through here.
 */
#include "json_write.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reals as RisingWave writes them ------------------------------------------------------ */

/*
 * RisingWave's JSON encoder is serde_json, whose numbers are written by the ryu crate: the
 * shortest digits that read back as the same double (among those, the nearest to the exact
 * value), laid out as ryu's format64 does (write_real). A float32 column reaches serde_json
 * widened to a double, so a double is all there is to write.
 */
typedef struct decimal {
	char d[20]; /* the significant digits, no trailing zeros */
	int n;      /* how many */
	int e;      /* decimal exponent of the first */
} decimal;

/*
 * @p v > 0 correctly rounded to @p n significant digits into @p d: does that text read back as
 * v? ("%g" is cheaper than "%e" in glibc and drops the trailing zeros itself.)
 */
static int round_to(double v, int n, decimal *d)
{
	char s[40];
	const char *p;
	int point = 0, seen_point = 0;

	snprintf(s, sizeof(s), "%.*g", n, v);
	d->n = 0;
	for (p = s; *p && *p != 'e'; p++) {
		if (*p == '.') {
			seen_point = 1;
		} else if (d->n || *p != '0') {
			d->d[d->n++] = *p;
			point += !seen_point;
		} else if (seen_point) {
			point--; /* a leading zero after the point: 0.00x */
		}
	}
	d->e = point - 1 + (*p ? atoi(p + 1) : 0);
	while (d->n > 1 && d->d[d->n - 1] == '0')
		d->n--;
	return strtod(s, NULL) == v;
}

/*
 * At a power of two the doubles below are twice as close as those above, so the nearest
 * 16-digit decimal (in @p d) may miss v while its neighbour on the far side still reads back.
 */
static int neighbour_reads_back(double v, decimal *d)
{
	unsigned long long m = 0;
	char s[40];
	int i;

	for (i = 0; i < 16; i++)
		m = m * 10 + (unsigned long long)(i < d->n ? d->d[i] - '0' : 0);
	for (i = 0; i < 2; i++) {
		unsigned long long c = i ? m + 1 : m - 1;

		if (c < 1000000000000000ULL || c > 9999999999999999ULL)
			continue; /* a carry or borrow: fewer digits, already tried */
		snprintf(s, sizeof(s), "%llue%d", c, d->e - 15);
		if (strtod(s, NULL) == v) {
			d->n = snprintf(d->d, sizeof(d->d), "%llu", c);
			while (d->n > 1 && d->d[d->n - 1] == '0')
				d->n--;
			return 1;
		}
	}
	return 0;
}

/*
 * Most reals in change events are short decimals (prices, amounts, measures): v = m / 10^k for
 * an integer m below 10^15 and k <= 15, all exact in a double. When the division m / 10^k (of two
 * exact doubles, so correctly rounded, as strtod rounds "m e-k") gives v back, the decimal m·10^-k
 * reads back as v, and with at most 15 digits it is the one shortest_digits would find (no two
 * decimals of up to 15 digits read back as the same double). Found without printf or strtod.
 */
static int few_digits(double v, decimal *d)
{
	static const double p10[] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7,
				      1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15 };
	char s[20];
	int k, n, z;

	for (k = 0; k < 16; k++) {
		double m = v * p10[k];
		unsigned long long u;

		if (!(m < 1e15))
			return 0;
		/* v * 10^k is rounded itself (0.3 * 10 is 3.0000000000000004): its nearest integer. */
		u = (unsigned long long)(m + 0.5);
		if (!u || (double)u / p10[k] != v)
			continue;
		for (n = 0; u; u /= 10)
			s[n++] = (char)('0' + u % 10); /* least significant first */
		for (z = 0; s[z] == '0'; z++)
			; /* trailing zeros: m >= 1 has a digit that is not */
		d->e = n - 1 - k;
		for (d->n = 0; d->n < n - z; d->n++)
			d->d[d->n] = s[n - 1 - d->n];
		return 1;
	}
	return 0;
}

/*
 * The shortest round-trip digits of finite @p v > 0. A decimal of up to 15 digits survives a
 * trip through a normal double (DBL_DIG), so one that reads back as v is v's 15-digit rounding
 * less its trailing zeros; past that, 16 digits (the nearest, or its neighbour), else 17.
 */
static void shortest_digits(double v, decimal *d)
{
	int n;

	if (few_digits(v, d))
		return;
	if (v < DBL_MIN) {
		/* Subnormals carry fewer digits: try each length (their neighbours are evenly spaced). */
		for (n = 1; !round_to(v, n, d); n++)
			;
	} else if (!round_to(v, 15, d) && !round_to(v, 16, d) && !neighbour_reads_back(v, d)) {
		round_to(v, 17, d);
	}
}

/*
 * ryu's layout, with kk the position of the decimal point (10^(kk-1) <= |v| < 10^kk): integers of
 * up to 16 digits as "1234000.0", other values with kk in 1..16 as "12.34", kk in -4..0 as
 * "0.001234", everything else in exponent form without '+' or padding: "1e16", "1.5e-7", "5e-324".
 */
static int write_real(ks_buf *b, double v)
{
	char out[48];
	decimal d;
	const char *digits;
	int len = 0, kk, i;

	if (!isfinite(v))
		return ks_buf_append(b, "null", 4); /* what serde_json writes (jansson never holds one) */
	if (signbit(v))
		out[len++] = '-';
	if (v == 0) {
		memcpy(out + len, "0.0", 3);
		return ks_buf_append(b, out, (size_t)len + 3);
	}
	shortest_digits(fabs(v), &d);
	digits = d.d;
	kk = d.e + 1;
	if (kk >= d.n && kk <= 16) {
		memcpy(out + len, digits, (size_t)d.n);
		len += d.n;
		for (i = d.n; i < kk; i++)
			out[len++] = '0';
		out[len++] = '.';
		out[len++] = '0';
	} else if (kk > 0 && kk <= 16) {
		memcpy(out + len, digits, (size_t)kk);
		len += kk;
		out[len++] = '.';
		memcpy(out + len, digits + kk, (size_t)(d.n - kk));
		len += d.n - kk;
	} else if (kk > -5 && kk <= 0) {
		out[len++] = '0';
		out[len++] = '.';
		for (i = kk; i < 0; i++)
			out[len++] = '0';
		memcpy(out + len, digits, (size_t)d.n);
		len += d.n;
	} else {
		out[len++] = digits[0];
		if (d.n > 1) {
			out[len++] = '.';
			memcpy(out + len, digits + 1, (size_t)(d.n - 1));
			len += d.n - 1;
		}
		len += snprintf(out + len, sizeof(out) - (size_t)len, "e%d", kk - 1);
	}
	return ks_buf_append(b, out, (size_t)len);
}

/* ---- deterministic JSON ------------------------------------------------------------------ */

/* Object members in key order: insertion sort for the usual few, qsort for many. */
typedef struct member {
	const char *key;
	size_t len;
	const json_t *value;
} member;

static int member_cmp(const void *a, const void *b)
{
	const member *x = a, *y = b;
	int c = memcmp(x->key, y->key, x->len < y->len ? x->len : y->len);

	return c ? c : (x->len > y->len) - (x->len < y->len);
}

static void sort_members(member *m, size_t n)
{
	size_t i, j;

	if (n > 16) {
		qsort(m, n, sizeof(*m), member_cmp);
		return;
	}
	for (i = 1; i < n; i++) {
		member t = m[i];

		for (j = i; j > 0 && member_cmp(&m[j - 1], &t) > 0; j--)
			m[j] = m[j - 1];
		m[j] = t;
	}
}

int ks_json_write_int(ks_buf *b, long long v)
{
	char s[24], *p = s + sizeof(s);
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--p = '-';
	return ks_buf_append(b, p, (size_t)(s + sizeof(s) - p));
}

int ks_json_write(ks_buf *b, const json_t *j)
{
	int r = 0;

	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		member stack[32], *m = stack;
		size_t n = json_object_size(j), i = 0;
		const char *k;
		size_t klen;
		json_t *v;

		if (n > sizeof(stack) / sizeof(stack[0]) && !(m = malloc(n * sizeof(*m))))
			return KS_ERR_NOMEM;
		json_object_keylen_foreach((json_t *)j, k, klen, v) {
			m[i].key = k;
			m[i].len = klen;
			m[i++].value = v;
		}
		sort_members(m, n);
		r = ks_buf_append(b, "{", 1);
		for (i = 0; i < n && !r; i++) {
			if (i && (r = ks_buf_append(b, ",", 1)))
				break;
			if ((r = ks_buf_json_str(b, m[i].key, m[i].len)) || (r = ks_buf_append(b, ":", 1)))
				break;
			r = ks_json_write(b, m[i].value);
		}
		if (!r)
			r = ks_buf_append(b, "}", 1);
		if (m != stack)
			free(m);
		return r;
	}
	case JSON_ARRAY: {
		size_t i;

		r = ks_buf_append(b, "[", 1);
		for (i = 0; i < json_array_size(j) && !r; i++) {
			if (i && (r = ks_buf_append(b, ",", 1)))
				break;
			r = ks_json_write(b, json_array_get(j, i));
		}
		return r ? r : ks_buf_append(b, "]", 1);
	}
	case JSON_STRING:
		return ks_buf_json_str(b, json_string_value(j), json_string_length(j));
	case JSON_INTEGER:
		return ks_json_write_int(b, (long long)json_integer_value(j));
	case JSON_REAL:
		return write_real(b, json_real_value(j));
	case JSON_TRUE:
		return ks_buf_append(b, "true", 4);
	case JSON_FALSE:
		return ks_buf_append(b, "false", 5);
	default:
		return ks_buf_append(b, "null", 4);
	}
}
