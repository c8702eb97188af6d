/*
 * The schema-registry framings of a Kafka message: Confluent's and the AWS Glue Schema
 * Registry's, told apart by their first byte (neither 0 nor 3 can start JSON text, so a JSON
 * input may carry either or none). A Glue payload may be compressed with zlib (the Java
 * serializer's Deflater with its defaults: a zlib stream, RFC 1950): it is inflated here with a
 * bound, so a small message cannot become an unbounded allocation.
 */
#include "framing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

int ks_frame_glue(const void *p, size_t n, ks_frame *out, ks_errbuf *err)
{
	const uint8_t *b = p;

	memset(out, 0, sizeof(*out));
	if (n < KS_GLUE_HEADER_LEN)
		return ks_errbuf_bad(err, "too_short",
				     "message of %zu bytes is shorter than the 18-byte AWS Glue Schema Registry header (version "
				     "byte, compression byte, schema version id)", n);
	if (b[0] != KS_GLUE_HEADER_VERSION)
		return ks_errbuf_bad(err, "bad_header",
				     "header version byte is 0x%02x, expected 0x03: not in the AWS Glue Schema Registry wire format",
				     b[0]);
	if (b[1] != KS_GLUE_COMPRESSION_NONE && b[1] != KS_GLUE_COMPRESSION_ZLIB)
		return ks_errbuf_bad(err, "bad_compression",
				     "AWS Glue Schema Registry compression byte is 0x%02x, expected 0x00 (none) or 0x05 (zlib)", b[1]);
	out->framing = KS_FRAMING_GLUE;
	out->compressed = b[1] == KS_GLUE_COMPRESSION_ZLIB;
	memcpy(out->version_id, b + 2, 16);
	out->payload = b + KS_GLUE_HEADER_LEN;
	out->payload_len = n - KS_GLUE_HEADER_LEN;
	return 0;
}

int ks_frame_confluent(const void *p, size_t n, ks_frame *out, ks_errbuf *err)
{
	const uint8_t *b = p;

	memset(out, 0, sizeof(*out));
	if (n < KS_CONFLUENT_HEADER_LEN)
		return ks_errbuf_bad(err, "too_short",
				     "message of %zu bytes is shorter than the 5-byte Confluent header (magic byte and schema id)", n);
	if (b[0] != 0)
		return ks_errbuf_bad(err, "bad_magic", "magic byte is 0x%02x, expected 0x00: not in the Confluent wire format", b[0]);
	out->framing = KS_FRAMING_CONFLUENT;
	out->schema_id = (int32_t)((uint32_t)b[1] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 8 | b[4]);
	out->payload = b + KS_CONFLUENT_HEADER_LEN;
	out->payload_len = n - KS_CONFLUENT_HEADER_LEN;
	return 0;
}

int ks_frame_json(const void *p, size_t n, ks_frame *out, ks_errbuf *err)
{
	const uint8_t *b = p;

	if (n && b[0] == 0)
		return ks_frame_confluent(p, n, out, err);
	if (n && b[0] == KS_GLUE_HEADER_VERSION)
		return ks_frame_glue(p, n, out, err);
	memset(out, 0, sizeof(*out));
	out->payload = b;
	out->payload_len = n;
	return 0;
}

/* Why inflate() stopped with @p zr before the stream's end. */
static int inflate_failed(const z_stream *z, int zr, size_t in_len, ks_errbuf *err)
{
	if (zr == Z_MEM_ERROR)
		return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory inflating an AWS Glue Schema Registry payload");
	if (zr == Z_BUF_ERROR && z->avail_in == 0)
		return ks_errbuf_bad(err, "bad_compression", "AWS Glue Schema Registry payload is a truncated zlib stream (its %zu "
				     "compressed bytes end before the stream does)", in_len);
	return ks_errbuf_bad(err, "bad_compression", "AWS Glue Schema Registry payload is not valid zlib data: %s",
			     z->msg ? z->msg : "corrupt stream");
}

#define INFLATE_STEP (256 * 1024)

/* Room in @p b for @p need bytes and a NUL, growing by doubling but never past @p max + 1. */
static int grow(ks_buf *b, size_t need, size_t max)
{
	size_t ncap = b->cap ? b->cap : 4096;
	char *p;

	if (need + 1 <= b->cap)
		return 0;
	while (ncap < need + 1)
		ncap *= 2;
	if (ncap > max + 1)
		ncap = max + 1;
	if (!(p = realloc(b->data, ncap)))
		return KS_ERR_NOMEM;
	b->data = p;
	b->cap = ncap;
	return 0;
}

int ks_frame_payload(const ks_frame *f, size_t max, ks_buf *buf, const uint8_t **out, size_t *out_len,
		     ks_errbuf *err)
{
	unsigned char probe;
	z_stream z;
	int zr, rc = 0;

	if (!f->compressed) {
		*out = f->payload;
		*out_len = f->payload_len;
		return 0;
	}
	*out = NULL;
	*out_len = 0;
	if (f->payload_len > UINT32_MAX)
		return ks_errbuf_bad(err, "too_large", "compressed AWS Glue Schema Registry payload of %zu bytes is too large",
				     f->payload_len);
	ks_buf_reset(buf);
	memset(&z, 0, sizeof(z));
	if (inflateInit(&z) != Z_OK)
		return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory starting zlib");
	z.next_in = (Bytef *)(uintptr_t)f->payload;
	z.avail_in = (uInt)f->payload_len;
	for (;;) {
		size_t step = max - buf->len < INFLATE_STEP ? max - buf->len : INFLATE_STEP;

		if (step == 0) {
			/* At the bound: the stream must end without one more byte. */
			z.next_out = &probe;
			z.avail_out = 1;
			zr = inflate(&z, Z_NO_FLUSH);
			if (zr == Z_STREAM_END && z.avail_out == 1)
				break;
			rc = z.avail_out == 0 ? ks_errbuf_bad(err, "too_large", "compressed AWS Glue Schema Registry payload of %zu bytes "
							      "inflates past %zu bytes, the most the consumer may receive in a message",
							      f->payload_len, max)
					      : inflate_failed(&z, zr, f->payload_len, err);
			goto out;
		}
		if (grow(buf, buf->len + step, max)) {
			rc = ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory inflating an AWS Glue Schema Registry payload");
			goto out;
		}
		z.next_out = (Bytef *)buf->data + buf->len;
		z.avail_out = (uInt)step;
		zr = inflate(&z, Z_NO_FLUSH);
		buf->len += step - z.avail_out;
		if (zr == Z_STREAM_END)
			break;
		if (zr != Z_OK) {
			rc = inflate_failed(&z, zr, f->payload_len, err);
			goto out;
		}
	}
	if (z.avail_in != 0) {
		rc = ks_errbuf_bad(err, "bad_compression", "AWS Glue Schema Registry payload has %u bytes after the end of its zlib "
				   "stream", z.avail_in);
		goto out;
	}
	if (grow(buf, buf->len, max)) {
		rc = ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory inflating an AWS Glue Schema Registry payload");
		goto out;
	}
	buf->data[buf->len] = '\0';
	*out = (const uint8_t *)buf->data;
	*out_len = buf->len;
out:
	inflateEnd(&z);
	return rc;
}

void ks_uuid_str(const uint8_t id[16], char out[37])
{
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", id[0], id[1], id[2],
		 id[3], id[4], id[5], id[6], id[7], id[8], id[9], id[10], id[11], id[12], id[13], id[14], id[15]);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int ks_uuid_parse(const char *s, uint8_t id[16])
{
	int i = 0, hi, lo;
	size_t pos = 0;

	if (strlen(s) != 36)
		return -1;
	while (i < 16) {
		if (pos == 8 || pos == 13 || pos == 18 || pos == 23) {
			if (s[pos++] != '-')
				return -1;
			continue;
		}
		if ((hi = hexval(s[pos])) < 0 || (lo = hexval(s[pos + 1])) < 0)
			return -1;
		id[i++] = (uint8_t)(hi << 4 | lo);
		pos += 2;
	}
	return 0;
}
