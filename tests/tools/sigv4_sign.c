/*
 * sigv4_sign: kinesink's signer on the command line, for comparisons with botocore. Reads the
 * same JSON spec as botocore_sign.py on stdin and prints the canonical request, the string to
 * sign and the Authorization header, separated by lines of "----". With "expires" in the spec
 * the request is presigned and the third part is the presigned URL.
 */
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sigv4.h"

int main(void)
{
	json_error_t jerr;
	json_t *spec = json_loadf(stdin, 0, &jerr), *hdrs;
	const char *url, *b64, *host, *path, *q, *k;
	char hostbuf[512], pathbuf[4096];
	ks_header hs[32];
	ks_sigv4_request req;
	ks_sigv4_keys keys;
	ks_sigv4_result res;
	unsigned char *body;
	size_t blen = 0, n = 0;
	json_t *v;

	if (!spec) {
		fprintf(stderr, "sigv4_sign: %s\n", jerr.text);
		return 2;
	}
	url = json_string_value(json_object_get(spec, "url"));
	host = strstr(url, "://") + 3;
	path = strchr(host, '/');
	snprintf(hostbuf, sizeof(hostbuf), "%.*s", (int)(path ? path - host : (long)strlen(host)), host);
	/* Like curl: a default port is not part of the Host header. */
	if (strlen(hostbuf) > 3 && !strcmp(hostbuf + strlen(hostbuf) - 3, ":80") && !strncmp(url, "http:", 5))
		hostbuf[strlen(hostbuf) - 3] = '\0';
	if (strlen(hostbuf) > 4 && !strcmp(hostbuf + strlen(hostbuf) - 4, ":443") && !strncmp(url, "https:", 6))
		hostbuf[strlen(hostbuf) - 4] = '\0';
	snprintf(pathbuf, sizeof(pathbuf), "%s", path ? path : "/");
	q = strchr(pathbuf, '?');
	if (q)
		pathbuf[q - pathbuf] = '\0', q = path + (q - pathbuf) + 1;
	hdrs = json_object_get(spec, "headers");
	json_object_foreach(hdrs, k, v)
		if (n < 32)
			hs[n++] = (ks_header){ k, json_string_value(v) };
	b64 = json_string_value(json_object_get(spec, "body_b64"));
	body = malloc(b64 ? strlen(b64) : 1);
	if (b64 && *b64) {
		int len = EVP_DecodeBlock(body, (const unsigned char *)b64, (int)strlen(b64));
		size_t bl = strlen(b64);

		blen = (size_t)len - (bl && b64[bl - 1] == '=') - (bl > 1 && b64[bl - 2] == '=');
	}
	req = (ks_sigv4_request){ json_string_value(json_object_get(spec, "method")), hostbuf, pathbuf, q, hs, (int)n,
				  body, blen, json_string_value(json_object_get(spec, "region")),
				  json_string_value(json_object_get(spec, "service")) };
	keys = (ks_sigv4_keys){ json_string_value(json_object_get(spec, "akid")),
				json_string_value(json_object_get(spec, "secret")),
				json_string_value(json_object_get(spec, "token")) };
	if (json_object_get(spec, "expires")) {
		if (ks_sigv4_presign(&req, &keys, (time_t)json_integer_value(json_object_get(spec, "time")),
				     (int)json_integer_value(json_object_get(spec, "expires")), &res))
			return 1;
	} else if (ks_sigv4_sign(&req, &keys, (time_t)json_integer_value(json_object_get(spec, "time")), &res)) {
		return 1;
	}
	printf("%s\n----\n%s\n----\n%s\n", res.canonical_request, res.string_to_sign,
	       res.url ? res.url : res.authorization);
	ks_sigv4_result_clean(&res);
	free(body);
	json_decref(spec);
	return 0;
}
