/*
 * KPL aggregation: many user records in one Kinesis record, in the format the Kinesis Producer
 * Library writes and the KCL de-aggregates: magic F3 89 9A C2, a protobuf AggregatedRecord
 * (protobuf-c, from kpl.proto), then the MD5 of the protobuf bytes.
 */
#include "kpl.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "kpl.pb-c.h"

static const unsigned char kpl_magic[4] = { 0xf3, 0x89, 0x9a, 0xc2 };

static int md5(const void *p, size_t n, unsigned char out[16])
{
	unsigned int len = 16;

	return EVP_Digest(p, n, out, &len, EVP_md5(), NULL) == 1 ? 0 : -1;
}

size_t ks_kpl_record_cost(const ks_record *rec)
{
	/* data and key with their tags and varint lengths, plus the record's own framing. */
	return rec->data_len + rec->pkey_len + 32;
}

int ks_kpl_encode(ks_record *const *recs, size_t n, ks_buf *out)
{
	AggregatedRecord agg = AGGREGATED_RECORD__INIT;
	Record *rows = calloc(n ? n : 1, sizeof(*rows));
	Record **rowp = calloc(n ? n : 1, sizeof(*rowp));
	char **keys = calloc(n ? n : 1, sizeof(*keys));
	unsigned char digest[16];
	size_t i, j, nkeys = 0, len;
	int r = KS_ERR_NOMEM;

	if (!rows || !rowp || !keys)
		goto out;
	for (i = 0; i < n; i++) {
		/* One table entry per distinct partition key. */
		for (j = 0; j < nkeys && strcmp(keys[j], recs[i]->pkey) != 0; j++)
			;
		if (j == nkeys)
			keys[nkeys++] = recs[i]->pkey;
		record__init(&rows[i]);
		rows[i].partition_key_index = j;
		rows[i].data.data = recs[i]->data;
		rows[i].data.len = recs[i]->data_len;
		rowp[i] = &rows[i];
	}
	agg.n_partition_key_table = nkeys;
	agg.partition_key_table = keys;
	agg.n_records = n;
	agg.records = rowp;
	len = aggregated_record__get_packed_size(&agg);
	if ((r = ks_buf_reserve(out, len + KS_KPL_OVERHEAD)))
		goto out;
	memcpy(out->data + out->len, kpl_magic, 4);
	aggregated_record__pack(&agg, (uint8_t *)out->data + out->len + 4);
	if (md5(out->data + out->len + 4, len, digest)) {
		r = KS_ERR_NOMEM;
		goto out;
	}
	memcpy(out->data + out->len + 4 + len, digest, 16);
	out->len += len + KS_KPL_OVERHEAD;
	out->data[out->len] = '\0';
	r = 0;
out:
	free(rows);
	free(rowp);
	free(keys);
	return r;
}

int ks_kpl_decode(const void *p, size_t n,
		  void (*fn)(void *ud, const char *pkey, size_t pkey_len, const void *data, size_t len), void *ud)
{
	const unsigned char *b = p;
	unsigned char digest[16];
	AggregatedRecord *agg;
	size_t i;

	if (n < KS_KPL_OVERHEAD || memcmp(b, kpl_magic, 4) != 0)
		return KS_ERR_BADREC;
	if (md5(b + 4, n - KS_KPL_OVERHEAD, digest) || memcmp(digest, b + n - 16, 16) != 0)
		return KS_ERR_BADREC;
	if (!(agg = aggregated_record__unpack(NULL, n - KS_KPL_OVERHEAD, b + 4)))
		return KS_ERR_BADREC;
	for (i = 0; i < agg->n_records; i++) {
		const Record *rec = agg->records[i];

		if (rec->partition_key_index >= agg->n_partition_key_table) {
			aggregated_record__free_unpacked(agg, NULL);
			return KS_ERR_BADREC;
		}
		fn(ud, agg->partition_key_table[rec->partition_key_index],
		   strlen(agg->partition_key_table[rec->partition_key_index]), rec->data.data, rec->data.len);
	}
	i = agg->n_records;
	aggregated_record__free_unpacked(agg, NULL);
	return (int)i;
}

int ks_kpl_encode_chain(ks_record *head, ks_buf *out)
{
	size_t n = 0;
	ks_record *r, **recs;
	int rc;

	for (r = head; r; r = r->agg)
		n++;
	if (!(recs = calloc(n ? n : 1, sizeof(*recs))))
		return KS_ERR_NOMEM;
	for (n = 0, r = head; r; r = r->agg)
		recs[n++] = r;
	rc = ks_kpl_encode(recs, n, out);
	free(recs);
	return rc;
}
