/*
 * What the writer's tests share: the configuration of a writer to stream s1 with static keys,
 * and the Data member of a PutRecords entry decoded.
 */
#ifndef KS_TEST_WRITERUTIL_H
#define KS_TEST_WRITERUTIL_H

#include <openssl/evp.h>
#include <string.h>

#include "testutil.h"

/* A writer's configuration: stream s1 in eu-west-1, static keys, then @p props (name, value, ..., NULL). */
static inline void wu_conf(ks_conf *c, const char *const *props)
{
	static const char *const base[] = { "stream", "s1", "aws.region", "eu-west-1",
					    "aws.credentials.access_key_id", "AKIDEXAMPLE",
					    "aws.credentials.secret_access_key", "secret", NULL };
	int i;

	ks_conf_init(c);
	for (i = 0; base[i]; i += 2)
		CU_ASSERT_EQUAL(ks_conf_set(c, base[i], base[i + 1], "t", 1, NULL), 0);
	for (i = 0; props && props[i]; i += 2)
		CU_ASSERT_EQUAL(ks_conf_set(c, props[i], props[i + 1], "t", 1, NULL), 0);
}

/* Base64 @p b64 decoded into @p out (large enough); @returns its length. */
static inline size_t wu_unbase64(const char *b64, unsigned char *out)
{
	size_t n = strlen(b64);
	int len = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)n);

	if (n >= 1 && b64[n - 1] == '=')
		len--;
	if (n >= 2 && b64[n - 2] == '=')
		len--;
	return len < 0 ? 0 : (size_t)len;
}

#endif
