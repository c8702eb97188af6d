/*
 * The scrubber: the secrets the process holds or has held, in the forms they travel in, and the
 * replacement of each by "[redacted]" in every text kinesink emits (scrub.h says which).
 *
 * The lookup is one pass over the text: a bit per pair of first bytes says whether any form
 * starts there; only then are the forms with that pair (sorted by it) compared. The registry is
 * rebuilt under the write lock when a value arrives, which is rare (start-up, a credentials
 * refresh, a new MSK IAM token); texts are scrubbed under the read lock.
 */
#include "scrub.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* Base64 text shorter than this is too likely to occur by chance in encoded data. */
#define B64_MIN 8

typedef struct form {
	char *s;        /* owned by its value */
	size_t len;
	unsigned key;   /* the first two bytes */
} form;

typedef struct value {
	char *v;
	int keep;
	form *forms;
	size_t n_forms;
} value;

/* Process-wide: see scrub.h. Everything below is guarded by lock; n_index is also published
 * atomically so that a text is copied without the lock while nothing is registered. */
static struct {
	pthread_rwlock_t lock;
	value *values; /* in the order they came */
	size_t n, cap, n_dynamic;
	form *index;   /* every form, by key */
	size_t n_index;
	unsigned char first[65536 / 8];
	atomic_size_t published;
} reg = { .lock = PTHREAD_RWLOCK_INITIALIZER };

static unsigned key_of(const char *s)
{
	return ((unsigned)(unsigned char)s[0] << 8) | (unsigned char)s[1];
}

static void free_forms(form *f, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		OPENSSL_cleanse(f[i].s, f[i].len);
		free(f[i].s);
	}
	free(f);
}

/* ---- the forms of a value ---------------------------------------------------------------- */

typedef struct forms {
	form *f;
	size_t n, cap;
	int nomem;
} forms;

/* Take @p s (a new string of @p len bytes) as a form unless shorter than @p min or already one. */
static void add_form(forms *fs, char *s, size_t len, size_t min)
{
	size_t i;

	if (!s) {
		fs->nomem = 1;
		return;
	}
	for (i = 0; i < fs->n && len >= min; i++)
		if (fs->f[i].len == len && memcmp(fs->f[i].s, s, len) == 0)
			break;
	if (len < min || i < fs->n) {
		OPENSSL_cleanse(s, len);
		free(s);
		return;
	}
	if (fs->n == fs->cap) {
		size_t cap = fs->cap ? fs->cap * 2 : 16;
		form *f = realloc(fs->f, cap * sizeof(*f));

		if (!f) {
			OPENSSL_cleanse(s, len);
			free(s);
			fs->nomem = 1;
			return;
		}
		fs->f = f;
		fs->cap = cap;
	}
	fs->f[fs->n++] = (form){ s, len, key_of(s) };
}

/* Percent-encoding as in a query string or a form (RFC 3986 unreserved characters kept). */
static char *pct(const char *v, size_t n, int plus, size_t *len)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = malloc(n * 3 + 1), *o = out;
	size_t i;

	if (!out)
		return NULL;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
		    c == '_' || c == '.' || c == '~') {
			*o++ = (char)c;
		} else if (plus && c == ' ') {
			*o++ = '+';
		} else {
			*o++ = '%';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	*o = '\0';
	*len = (size_t)(o - out);
	return out;
}

/* The value as it stands inside a JSON string (jansson's escapes), without the quotes. */
static char *json_escaped(const char *v, size_t n, size_t *len)
{
	ks_buf b;
	char *out;

	ks_buf_init(&b, 0);
	if (ks_buf_json_str(&b, v, n) || !b.data || b.len < 2) {
		ks_buf_clean(&b);
		return NULL;
	}
	out = ks_strndup(b.data + 1, b.len - 2);
	OPENSSL_cleanse(b.data, b.len);
	ks_buf_clean(&b);
	*len = out ? strlen(out) : 0;
	return out;
}

/*
 * The base64 characters that only @p v determines when it starts @p align bytes into a longer
 * encoded text (0..2): with @p full (align 0 only) the whole encoding, padded for the standard
 * alphabet. @p url: the URL-safe alphabet.
 */
static char *b64(const char *v, size_t n, size_t align, int url, int full, size_t *len)
{
	static const char std_abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	static const char url_abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const char *abc = url ? url_abc : std_abc;
	size_t total = align + n, nchars = (total * 8 + 5) / 6, start = (align * 8 + 5) / 6, end = total * 8 / 6, i;
	unsigned char *in = calloc(total + 2, 1);
	char *out = malloc(nchars + 4);

	if (!in || !out) {
		free(in);
		free(out);
		return NULL;
	}
	memcpy(in + align, v, n);
	for (i = 0; i < nchars; i++) {
		size_t bit = i * 6, byte = bit / 8, shift = bit % 8;
		unsigned w = ((unsigned)in[byte] << 8) | in[byte + 1];

		out[i] = abc[(w >> (10 - shift)) & 63];
	}
	OPENSSL_cleanse(in, total + 2);
	free(in);
	if (full) {
		start = 0;
		end = nchars;
		while (!url && end % 4)
			out[end++] = '=';
	}
	memmove(out, out + start, end - start);
	out[end - start] = '\0';
	*len = end - start;
	return out;
}

static void add_b64(forms *fs, const char *v, size_t n)
{
	size_t align, len = 0;
	int url;

	for (url = 0; url < 2; url++) {
		char *s = b64(v, n, 0, url, 1, &len);

		add_form(fs, s, len, B64_MIN);
		for (align = 0; align < 3; align++) {
			s = b64(v, n, align, url, 0, &len);
			add_form(fs, s, len, B64_MIN);
		}
	}
}

static void derive(forms *fs, const char *v, size_t n)
{
	size_t len = 0;
	char *p = pct(v, n, 0, &len), *s;

	add_form(fs, ks_strndup(v, n), n, KS_SCRUB_MIN);
	if (p)
		add_form(fs, ks_strndup(p, len), len, KS_SCRUB_MIN);
	/* (The length is read after the call that sets it: arguments have no order.) */
	s = pct(v, n, 1, &len);
	add_form(fs, s, len, KS_SCRUB_MIN);
	s = json_escaped(v, n, &len);
	add_form(fs, s, len, KS_SCRUB_MIN);
	add_b64(fs, v, n);
	if (p) {
		size_t plen = strlen(p);

		if (plen != n)
			add_b64(fs, p, plen);
		OPENSSL_cleanse(p, plen);
		free(p);
	} else {
		fs->nomem = 1;
	}
}

/* ---- the registry ------------------------------------------------------------------------- */

static int by_key(const void *a, const void *b)
{
	const form *x = a, *y = b;

	return x->key < y->key ? -1 : x->key > y->key;
}

/* The index and the first-pair bits from the values. Under the write lock. */
static int rebuild(void)
{
	size_t i, j, n = 0;
	form *idx;

	for (i = 0; i < reg.n; i++)
		n += reg.values[i].n_forms;
	if (!(idx = malloc((n ? n : 1) * sizeof(*idx))))
		return KS_ERR_NOMEM;
	n = 0;
	memset(reg.first, 0, sizeof(reg.first));
	for (i = 0; i < reg.n; i++)
		for (j = 0; j < reg.values[i].n_forms; j++) {
			idx[n] = reg.values[i].forms[j];
			reg.first[idx[n].key >> 3] |= (unsigned char)(1u << (idx[n].key & 7));
			n++;
		}
	qsort(idx, n, sizeof(*idx), by_key);
	free(reg.index);
	reg.index = idx;
	reg.n_index = n;
	atomic_store(&reg.published, n);
	return 0;
}

static void drop_value(size_t i)
{
	OPENSSL_cleanse(reg.values[i].v, strlen(reg.values[i].v));
	free(reg.values[i].v);
	free_forms(reg.values[i].forms, reg.values[i].n_forms);
	if (!reg.values[i].keep)
		reg.n_dynamic--;
	memmove(&reg.values[i], &reg.values[i + 1], (reg.n - i - 1) * sizeof(reg.values[0]));
	reg.n--;
}

void ks_scrub_add(const char *v, int flags)
{
	forms fs = { 0 };
	size_t i, n = v ? strlen(v) : 0;
	int known;
	char *copy;

	if (n < KS_SCRUB_MIN)
		return;
	/* Most calls bring a value already known (static keys resolved again): a read suffices. */
	pthread_rwlock_rdlock(&reg.lock);
	for (i = 0; i < reg.n && strcmp(reg.values[i].v, v) != 0; i++)
		;
	known = i < reg.n && (reg.values[i].keep || !(flags & KS_SCRUB_KEEP));
	pthread_rwlock_unlock(&reg.lock);
	if (known)
		return;
	derive(&fs, v, n);
	if (fs.nomem || !(copy = strdup(v))) {
		free_forms(fs.f, fs.n);
		return;
	}
	pthread_rwlock_wrlock(&reg.lock);
	for (i = 0; i < reg.n && strcmp(reg.values[i].v, v) != 0; i++)
		;
	if (i < reg.n) {
		/* Known: a configured value is now kept for the run. */
		if ((flags & KS_SCRUB_KEEP) && !reg.values[i].keep) {
			reg.values[i].keep = 1;
			reg.n_dynamic--;
		}
		goto done;
	}
	if (!(flags & KS_SCRUB_KEEP) && reg.n_dynamic >= KS_SCRUB_MAX_VALUES) {
		for (i = 0; reg.values[i].keep; i++)
			;
		drop_value(i);
	}
	if (reg.n == reg.cap) {
		size_t cap = reg.cap ? reg.cap * 2 : 16;
		value *nv = realloc(reg.values, cap * sizeof(*nv));

		if (!nv)
			goto done;
		reg.values = nv;
		reg.cap = cap;
	}
	reg.values[reg.n++] = (value){ copy, flags & KS_SCRUB_KEEP, fs.f, fs.n };
	if (!(flags & KS_SCRUB_KEEP))
		reg.n_dynamic++;
	copy = NULL;
	fs.f = NULL;
	fs.n = 0;
	if (rebuild())
		drop_value(reg.n - 1); /* the index stays the one before */
done:
	pthread_rwlock_unlock(&reg.lock);
	if (copy) {
		OPENSSL_cleanse(copy, n);
		free(copy);
	}
	free_forms(fs.f, fs.n);
}

static int hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

void ks_scrub_add_userinfo(const char *url)
{
	const char *h = url ? strstr(url, "://") : NULL, *end, *at, *colon;
	char *pw, *o;
	size_t i, n;

	if (!h)
		return;
	h += 3;
	end = h + strcspn(h, "/?#");
	for (at = NULL, colon = h; colon < end; colon++)
		if (*colon == '@')
			at = colon;
	if (!at || !(colon = memchr(h, ':', (size_t)(at - h))))
		return;
	n = (size_t)(at - colon - 1);
	if (!(pw = ks_strndup(colon + 1, n)))
		return;
	ks_scrub_add(pw, KS_SCRUB_KEEP);
	for (i = 0, o = pw; i < n; i++) {
		if (pw[i] == '%' && i + 2 < n && hexval(pw[i + 1]) >= 0 && hexval(pw[i + 2]) >= 0) {
			*o++ = (char)(hexval(pw[i + 1]) * 16 + hexval(pw[i + 2]));
			i += 2;
		} else {
			*o++ = pw[i];
		}
	}
	*o = '\0';
	ks_scrub_add(pw, KS_SCRUB_KEEP);
	OPENSSL_cleanse(pw, n);
	free(pw);
}

/* The first form of the index with @p key, or n_index. Under the read lock. */
static size_t lower_bound(unsigned key)
{
	size_t lo = 0, hi = reg.n_index;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (reg.index[mid].key < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* How many bytes at @p p (@p left of them) a form covers: whole, or a prefix of KS_SCRUB_PREFIX
 * or more; 0 when none. Under the read lock. */
static size_t match_at(const char *p, size_t left)
{
	unsigned key = key_of(p);
	size_t j, best = 0;

	if (!(reg.first[key >> 3] & (1u << (key & 7))))
		return 0;
	for (j = lower_bound(key); j < reg.n_index && reg.index[j].key == key; j++) {
		const form *f = &reg.index[j];
		size_t max = f->len < left ? f->len : left, l = 2;

		while (l < max && f->s[l] == p[l])
			l++;
		if ((l == f->len || l >= KS_SCRUB_PREFIX) && l > best)
			best = l;
	}
	return best;
}

int ks_scrub_buf(const char *in, size_t n, ks_buf *out)
{
	size_t i = 0, from = 0, m;
	int r = 0;

	if (!atomic_load(&reg.published))
		return ks_buf_append(out, in, n);
	pthread_rwlock_rdlock(&reg.lock);
	while (i + 1 < n && !r) {
		if (!(m = match_at(in + i, n - i))) {
			i++;
			continue;
		}
		if (!(r = ks_buf_append(out, in + from, i - from)))
			r = ks_buf_append(out, KS_SCRUB_MARK, sizeof(KS_SCRUB_MARK) - 1);
		i += m;
		from = i;
	}
	pthread_rwlock_unlock(&reg.lock);
	if (!r)
		r = ks_buf_append(out, in + from, n - from);
	return r;
}

void ks_scrub_str(char *s, size_t cap)
{
	size_t n;
	ks_buf b;

	if (!s || !cap || !atomic_load(&reg.published))
		return;
	n = strlen(s);
	ks_buf_init(&b, 0);
	if (ks_scrub_buf(s, n, &b) == 0 && b.data) {
		n = b.len < cap ? b.len : cap - 1;
		memcpy(s, b.data, n);
		s[n] = '\0';
	} else {
		/* Out of memory: nothing of it is shown rather than a secret. */
		snprintf(s, cap, "%s", KS_SCRUB_MARK);
	}
	if (b.data)
		OPENSSL_cleanse(b.data, b.len);
	ks_buf_clean(&b);
}

/* ---- a scrubbing stream ----------------------------------------------------------------------- */

typedef struct sstream {
	FILE *dest;
	ks_buf line;
} sstream;

static int put_scrubbed(sstream *s, size_t n)
{
	ks_buf b;
	int r;

	ks_buf_init(&b, 0);
	if (!(r = ks_scrub_buf(s->line.data, n, &b)) && b.len)
		fwrite(b.data, 1, b.len, s->dest);
	fflush(s->dest);
	ks_buf_clean(&b);
	memmove(s->line.data, s->line.data + n, s->line.len - n);
	s->line.len -= n;
	s->line.data[s->line.len] = '\0';
	return r;
}

static ssize_t s_write(void *cookie, const char *buf, size_t size)
{
	sstream *s = cookie;
	char *nl;

	if (ks_buf_append(&s->line, buf, size))
		return -1;
	for (nl = s->line.data + s->line.len; nl > s->line.data && nl[-1] != '\n'; nl--)
		;
	if (nl > s->line.data && put_scrubbed(s, (size_t)(nl - s->line.data)))
		return -1;
	return (ssize_t)size;
}

static int s_close(void *cookie)
{
	sstream *s = cookie;
	int r = s->line.len ? put_scrubbed(s, s->line.len) : 0;

	fflush(s->dest);
	ks_buf_clean(&s->line);
	free(s);
	return r ? -1 : 0;
}

FILE *ks_scrub_stream(FILE *dest)
{
	cookie_io_functions_t io = { NULL, s_write, NULL, s_close };
	sstream *s = calloc(1, sizeof(*s));
	FILE *f;

	if (!s)
		return NULL;
	s->dest = dest;
	ks_buf_init(&s->line, 0);
	if (!(f = fopencookie(s, "w", io))) {
		free(s);
		return NULL;
	}
	setvbuf(f, NULL, _IOLBF, BUFSIZ);
	return f;
}

size_t ks_scrub_forms(void)
{
	return atomic_load(&reg.published);
}

void ks_scrub_reset(void)
{
	pthread_rwlock_wrlock(&reg.lock);
	while (reg.n)
		drop_value(reg.n - 1);
	free(reg.values);
	free(reg.index);
	reg.values = NULL;
	reg.index = NULL;
	reg.cap = reg.n_index = reg.n_dynamic = 0;
	memset(reg.first, 0, sizeof(reg.first));
	atomic_store(&reg.published, 0);
	pthread_rwlock_unlock(&reg.lock);
}
