/*
 * The shard map (shardmap.h). Built from ListShards pages, then sorted and checked once; lookups
 * are a binary search over the sorted ranges, so a prediction costs one MD5 and log2(shards)
 * comparisons.
 */
#include "shardmap.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

struct ks_shardmap {
	ks_shard *shards;
	int n, cap;
};

ks_u128 ks_hash_key(const char *key, size_t n)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0, i;
	ks_u128 v = 0;

	EVP_Digest(key, n, md, &len, EVP_md5(), NULL);
	for (i = 0; i < 16 && i < len; i++)
		v = (v << 8) | md[i];
	return v;
}

int ks_u128_parse(const char *s, size_t n, ks_u128 *out)
{
	ks_u128 v = 0;
	size_t i;

	if (!s || n < 1 || n > 39)
		return KS_ERR_BADREC;
	for (i = 0; i < n; i++) {
		ks_u128 d;

		if (s[i] < '0' || s[i] > '9')
			return KS_ERR_BADREC;
		d = (ks_u128)(s[i] - '0');
		if (v > (KS_U128_MAX - d) / 10)
			return KS_ERR_BADREC;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

void ks_u128_format(ks_u128 v, char out[KS_U128_STRLEN])
{
	char tmp[KS_U128_STRLEN];
	int n = 0, i;

	do {
		tmp[n++] = (char)('0' + (int)(v % 10));
		v /= 10;
	} while (v);
	for (i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	out[n] = '\0';
}

ks_shardmap_t *ks_shardmap_new(void)
{
	return calloc(1, sizeof(ks_shardmap_t));
}

void ks_shardmap_destroy(ks_shardmap_t *m)
{
	if (!m)
		return;
	free(m->shards);
	free(m);
}

/* A hash key member of HashKeyRange as a number. */
static int range_key(json_t *range, const char *name, int idx, ks_u128 *out, ks_errbuf *err)
{
	json_t *v = json_object_get(range, name);

	if (!json_is_string(v) || ks_u128_parse(json_string_value(v), json_string_length(v), out))
		return ks_errbuf_set(err, KS_ERR_BADREC,
				     "ListShards answer: Shards[%d].HashKeyRange.%s is not a decimal hash key", idx, name);
	return 0;
}

int ks_shardmap_add_page(ks_shardmap_t *m, const char *json, size_t len, char *next, size_t next_cap,
			 ks_errbuf *err)
{
	json_error_t jerr;
	json_t *root = json_loadb(json ? json : "", len, 0, &jerr), *shards, *sh, *token;
	size_t i;
	int rc = 0;

	if (next_cap)
		next[0] = '\0';
	if (!root)
		return ks_errbuf_set(err, KS_ERR_BADREC, "ListShards answer is not JSON: %s (line %d, column %d)",
				     jerr.text, jerr.line, jerr.column);
	if (!json_is_array(shards = json_object_get(root, "Shards"))) {
		json_decref(root);
		return ks_errbuf_set(err, KS_ERR_BADREC, "ListShards answer without a Shards array");
	}
	json_array_foreach(shards, i, sh) {
		json_t *id = json_object_get(sh, "ShardId"), *range = json_object_get(sh, "HashKeyRange");
		ks_shard *s;

		/* closed: no record lands there any more (kinesis-mock says null for an open one) */
		if (json_is_string(json_object_get(json_object_get(sh, "SequenceNumberRange"), "EndingSequenceNumber")))
			continue;
		if (!json_is_string(id) || json_string_length(id) >= sizeof(s->id)) {
			rc = ks_errbuf_set(err, KS_ERR_BADREC, "ListShards answer: Shards[%zu].ShardId is missing or too long", i);
			break;
		}
		if (m->n == m->cap) {
			int cap = m->cap ? m->cap * 2 : 16;
			ks_shard *ns = realloc(m->shards, sizeof(*ns) * (size_t)cap);

			if (!ns) {
				rc = ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory reading the shard map");
				break;
			}
			m->shards = ns;
			m->cap = cap;
		}
		s = &m->shards[m->n];
		memcpy(s->id, json_string_value(id), json_string_length(id) + 1);
		if ((rc = range_key(range, "StartingHashKey", (int)i, &s->start, err)) ||
		    (rc = range_key(range, "EndingHashKey", (int)i, &s->end, err)))
			break;
		if (s->start > s->end) {
			rc = ks_errbuf_set(err, KS_ERR_BADREC, "ListShards answer: shard %s ends before it starts", s->id);
			break;
		}
		m->n++;
	}
	token = json_object_get(root, "NextToken");
	if (!rc && json_is_string(token)) {
		if (json_string_length(token) + 1 > next_cap)
			rc = ks_errbuf_set(err, KS_ERR_TOOBIG, "ListShards NextToken of %zu bytes does not fit",
					   json_string_length(token));
		else
			memcpy(next, json_string_value(token), json_string_length(token) + 1);
	}
	json_decref(root);
	return rc;
}

static int by_start(const void *a, const void *b)
{
	const ks_shard *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

int ks_shardmap_finish(ks_shardmap_t *m, ks_errbuf *err)
{
	char at[KS_U128_STRLEN];
	int i;

	if (m->n == 0)
		return ks_errbuf_set(err, KS_ERR_BADREC, "ListShards listed no open shard");
	qsort(m->shards, (size_t)m->n, sizeof(*m->shards), by_start);
	if (m->shards[0].start != 0)
		return ks_errbuf_set(err, KS_ERR_BADREC, "shard map starts at shard %s, not at hash key 0", m->shards[0].id);
	for (i = 1; i < m->n; i++) {
		if (m->shards[i - 1].end == KS_U128_MAX || m->shards[i].start != m->shards[i - 1].end + 1) {
			ks_u128_format(m->shards[i].start, at);
			return ks_errbuf_set(err, KS_ERR_BADREC, "shard map has a %s before shard %s (starting at %s)",
					     m->shards[i].start > m->shards[i - 1].end ? "gap" : "overlap", m->shards[i].id,
					     at);
		}
	}
	if (m->shards[m->n - 1].end != KS_U128_MAX)
		return ks_errbuf_set(err, KS_ERR_BADREC, "shard map ends at shard %s, before the last hash key",
				     m->shards[m->n - 1].id);
	return 0;
}

int ks_shardmap_count(const ks_shardmap_t *m)
{
	return m ? m->n : 0;
}

const ks_shard *ks_shardmap_shard(const ks_shardmap_t *m, int i)
{
	return i >= 0 && i < m->n ? &m->shards[i] : NULL;
}

int ks_shardmap_find(const ks_shardmap_t *m, ks_u128 hash)
{
	int lo = 0, hi;

	if (!m || m->n == 0)
		return -1;
	hi = m->n - 1;
	/* The last shard starting at or below the hash: the ranges are contiguous. */
	while (lo < hi) {
		int mid = lo + (hi - lo + 1) / 2;

		if (m->shards[mid].start <= hash)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

int ks_shardmap_index_of(const ks_shardmap_t *m, const char *id)
{
	int i;

	for (i = 0; m && id && i < m->n; i++)
		if (strcmp(m->shards[i].id, id) == 0)
			return i;
	return -1;
}
