/* PutRecords bodies and answers. */
#include "putrecords.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

size_t ks_putrecords_entry_bytes(const ks_put_entry *e)
{
	return e->pkey_len + e->data_len;
}

int ks_putrecords_check_entry(const ks_put_entry *e, size_t max_record_bytes, ks_errbuf *err)
{
	size_t chars = ks_key_chars(e->pkey, e->pkey_len);
	char size[32];

	if (chars < 1 || chars > KS_PUT_MAX_KEY_CHARS) {
		ks_errbuf_set(err, KS_ERR_BADREC,
			      "partition key of %zu characters (%zu bytes): Kinesis allows 1 to %d Unicode characters",
			      chars, e->pkey_len, KS_PUT_MAX_KEY_CHARS);
		ks_errbuf_reason(err, "bad_key");
	} else if (e->pkey_len + e->data_len > max_record_bytes) {
		if (max_record_bytes % (1024 * 1024) == 0)
			snprintf(size, sizeof(size), "%zu MiB", max_record_bytes >> 20);
		else
			snprintf(size, sizeof(size), "%zu KiB", max_record_bytes >> 10);
		ks_errbuf_set(err, KS_ERR_BADREC,
			      "record too large: %zu bytes of data plus %zu of partition key exceed Kinesis' %s (%zu bytes) per record, the stream's maximum record size (MaxRecordSizeInKiB)",
			      e->data_len, e->pkey_len, size, max_record_bytes);
		ks_errbuf_reason(err, "too_large");
	} else {
		return 0;
	}
	if (err)
		err->stage = KS_STAGE_PRODUCE;
	return KS_ERR_BADREC;
}

const char *ks_putrecords_stream_member(const char *stream)
{
	/* A stream name is letters, digits, '_', '.' and '-': "arn:" can only start an ARN. */
	return strncmp(stream, "arn:", 4) == 0 ? "StreamARN" : "StreamName";
}

int ks_putrecords_begin(ks_buf *body, const char *stream)
{
	int r;

	ks_buf_reset(body);
	if ((r = ks_buf_puts(body, "{\"")) || (r = ks_buf_puts(body, ks_putrecords_stream_member(stream))) ||
	    (r = ks_buf_puts(body, "\":")) || (r = ks_buf_json_str(body, stream, strlen(stream))))
		return r;
	return ks_buf_puts(body, ",\"Records\":[");
}

int ks_putrecords_add(ks_buf *body, const ks_put_entry *e, size_t index)
{
	int r;

	if ((r = ks_buf_puts(body, index ? ",{\"Data\":\"" : "{\"Data\":\"")) ||
	    (r = ks_buf_base64(body, e->data, e->data_len)) ||
	    (r = ks_buf_puts(body, "\",\"PartitionKey\":")) ||
	    (r = ks_buf_json_str(body, e->pkey, e->pkey_len)))
		return r;
	if (e->explicit_hash_key &&
	    ((r = ks_buf_puts(body, ",\"ExplicitHashKey\":")) ||
	     (r = ks_buf_json_str(body, e->explicit_hash_key, strlen(e->explicit_hash_key)))))
		return r;
	return ks_buf_append(body, "}", 1);
}

int ks_putrecords_end(ks_buf *body)
{
	return ks_buf_puts(body, "]}");
}

int ks_putrecords_build(ks_buf *body, const char *stream, const ks_put_entry *entries, size_t n)
{
	size_t i;
	int r;

	if ((r = ks_putrecords_begin(body, stream)))
		return r;
	for (i = 0; i < n; i++)
		if ((r = ks_putrecords_add(body, &entries[i], i)))
			return r;
	return ks_putrecords_end(body);
}

int ks_putrecords_is_throttle(const char *code)
{
	return strcmp(code, "ProvisionedThroughputExceededException") == 0 ||
	       strcmp(code, "LimitExceededException") == 0 || strcmp(code, "KMSThrottlingException") == 0;
}

static size_t count_of(const char *body, size_t len, const char *needle)
{
	const char *p = body, *end = body + len, *hit;
	size_t n = 0, nl = strlen(needle);

	while (p && p < end && (hit = memmem(p, (size_t)(end - p), needle, nl))) {
		n++;
		p = hit + nl;
	}
	return n;
}

/* In well-formed JSON a `"` right before a `:` ends a string: these byte patterns only match
 * real members. */
int ks_putrecords_all_accepted(const char *body, size_t len, size_t n)
{
	static const char zero[] = "\"FailedRecordCount\":0";
	const char *hit;

	if (!body || count_of(body, len, "\"FailedRecordCount\":") != 1 ||
	    !(hit = memmem(body, len, zero, sizeof(zero) - 1)))
		return 0;
	hit += sizeof(zero) - 1;
	return hit < body + len && (*hit == ',' || *hit == '}') && count_of(body, len, "\"ErrorCode\":\"") == 0 &&
	       count_of(body, len, "\"SequenceNumber\":") == n;
}

int ks_putrecords_parse(ks_put_answer *a, const char *body, size_t len, size_t n)
{
	return ks_putrecords_parse_as(a, body, len, n, 0);
}

/* The n ShardIds of an answer that accepted all, in entry order: each `"ShardId":"` begins one
 * (no other string of such an answer can hold it: sequence numbers and shard ids are plain).
 * One block: n pointers, then the ids, each NUL-ended. */
static char **shard_ids_of(const char *body, size_t len, size_t n)
{
	static const char tag[] = "\"ShardId\":\"";
	const char *p = body, *end = body + len, *hit, *q;
	char **ids = malloc(n * sizeof(char *) + len + 1), *o = (char *)(ids + n);
	size_t i;

	for (i = 0; ids && i < n; i++) {
		if (!(hit = memmem(p, (size_t)(end - p), tag, sizeof(tag) - 1)))
			break;
		hit += sizeof(tag) - 1;
		if (!(q = memchr(hit, '"', (size_t)(end - hit))))
			break;
		ids[i] = o;
		memcpy(o, hit, (size_t)(q - hit));
		o += q - hit;
		*o++ = '\0';
		p = q + 1;
	}
	if (ids && (i < n || memmem(p, (size_t)(end - p), tag, sizeof(tag) - 1))) {
		free(ids);
		return NULL;
	}
	return ids;
}

int ks_putrecords_parse_as(ks_put_answer *a, const char *body, size_t len, size_t n, int shard_ids)
{
	memset(a, 0, sizeof(*a));
	a->n = n;
	if ((a->fast = ks_putrecords_all_accepted(body, len, n)) &&
	    (!shard_ids || (a->shard_ids = shard_ids_of(body, len, n))))
		return 0;
	a->fast = 0;
	a->root = json_loadb(body ? body : "", len, 0, NULL);
	a->entries = json_object_get(a->root, "Records");
	if (!json_is_array(a->entries) || json_array_size(a->entries) != n) {
		ks_putrecords_answer_clean(a);
		return KS_ERR_BADREC;
	}
	return 0;
}

void ks_putrecords_result(const ks_put_answer *a, size_t i, ks_put_result *out)
{
	json_t *e = a->fast ? NULL : json_array_get(a->entries, i); /* NULL: accepted, no details */
	json_t *code = json_object_get(e, "ErrorCode");

	if (a->fast && a->shard_ids) {
		memset(out, 0, sizeof(*out));
		out->outcome = KS_PUT_ACCEPTED;
		out->shard_id = a->shard_ids[i];
		out->seq = out->error_code = out->error_message = "";
		return;
	}

	memset(out, 0, sizeof(*out));
	/* kinesis-mock answers "ErrorCode":null for accepted entries: null is absent. */
	if (json_is_string(code)) {
		out->error_code = json_string_value(code);
		out->error_message = json_string_value(json_object_get(e, "ErrorMessage")) ?: "";
		out->outcome = ks_putrecords_is_throttle(out->error_code) ? KS_PUT_THROTTLED : KS_PUT_FAILED;
		out->shard_id = out->seq = "";
		return;
	}
	out->outcome = KS_PUT_ACCEPTED;
	out->shard_id = json_string_value(json_object_get(e, "ShardId")) ?: "";
	out->seq = json_string_value(json_object_get(e, "SequenceNumber")) ?: "";
	out->error_code = out->error_message = "";
}

void ks_putrecords_answer_clean(ks_put_answer *a)
{
	json_decref(a->root);
	a->root = a->entries = NULL;
	free(a->shard_ids);
	a->shard_ids = NULL;
}
