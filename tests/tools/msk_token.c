/*
 * msk_token: kinesink's MSK IAM token on the command line, for the comparison with botocore.
 * Reads {"akid","secret","token","region","time","expiration"} (JSON) on stdin and prints
 * the token and its expiry in ms since the epoch, on two lines.
 */
#include <jansson.h>
#include <stdio.h>

#include "msk_iam.h"

int main(void)
{
	json_error_t jerr;
	json_t *spec = json_loadf(stdin, 0, &jerr);
	ks_credentials c = { 0 };
	ks_msk_token t;
	ks_errbuf err = { 0 };

	if (!spec) {
		fprintf(stderr, "msk_token: %s\n", jerr.text);
		return 2;
	}
	c.access_key_id = (char *)json_string_value(json_object_get(spec, "akid"));
	c.secret_access_key = (char *)json_string_value(json_object_get(spec, "secret"));
	c.session_token = (char *)json_string_value(json_object_get(spec, "token"));
	c.expiration = (time_t)json_integer_value(json_object_get(spec, "expiration"));
	if (ks_msk_iam_token(&c, json_string_value(json_object_get(spec, "region")),
			     (time_t)json_integer_value(json_object_get(spec, "time")), KS_MSK_IAM_EXPIRES_S, &t, &err)) {
		fprintf(stderr, "msk_token: %s\n", err.text);
		json_decref(spec);
		return 1;
	}
	printf("%s\n%lld\n", t.token, (long long)t.expiry_ms);
	ks_msk_token_clean(&t);
	json_decref(spec);
	return 0;
}
