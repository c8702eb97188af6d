/*
 * creds_get: resolve AWS credentials with kinesink's provider, for tests. Options:
 *   -X key=value   a configuration property (aws.credentials.*, aws.region, ...)
 *   --at N         call ks_creds_get at now+N seconds (repeatable; default once at +0)
 * Prints one line per call: "source=S akid=A token=yes|no expires_in=N refreshes=R", or
 * "error: TEXT". The secret key is never printed, only its SHA-256 prefix.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf.h"
#include "creds.h"
#include "metrics.h"

int main(int argc, char **argv)
{
	ks_metrics m;
	ks_conf conf;
	ks_creds_t *p;
	ks_errbuf err;
	long ats[16];
	int nat = 0, i;
	time_t now = time(NULL);

	memset(&m, 0, sizeof(m));
	ks_conf_init(&conf);
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-X") && i + 1 < argc) {
			char *eq = strchr(argv[++i], '=');

			*eq = '\0';
			if (ks_conf_set(&conf, argv[i], eq + 1, "-X", 0, NULL))
				return 2;
		} else if (!strcmp(argv[i], "--at") && i + 1 < argc && nat < 16) {
			ats[nat++] = atol(argv[++i]);
		} else {
			fprintf(stderr, "usage: creds_get [-X key=value]... [--at N]...\n");
			return 2;
		}
	}
	if (!nat)
		ats[nat++] = 0;
	if (!(p = ks_creds_new(&conf, &m, &err))) {
		printf("error: %s\n", err.text);
		return 1;
	}
	for (i = 0; i < nat; i++) {
		ks_credentials c;
		char hash[65];

		ks_errbuf_clear(&err);
		if (ks_creds_get(p, now + ats[i], &c, &err)) {
			printf("error: %s\n", err.text);
			continue;
		}
		ks_sha256_hex(c.secret_access_key, strlen(c.secret_access_key), hash);
		hash[12] = '\0';
		printf("source=%s akid=%s secret_sha256=%s token=%s expires_in=%ld refreshes=%llu\n", c.source,
		       c.access_key_id, hash, c.session_token ? "yes" : "no",
		       c.expiration ? (long)(c.expiration - now) : -1L, (unsigned long long)m.credential_refreshes);
		ks_credentials_clean(&c);
	}
	ks_creds_destroy(p);
	ks_conf_clean(&conf);
	return 0;
}
