/*
 * The shared files' profile (AWS_PROFILE, "default" when unset), in the order of the AWS SDKs'
 * chain: role_arn (AssumeRole on top of source_profile, itself resolved the same way, or of a
 * credential_source), web identity (web_identity_token_file with role_arn, the environment's
 * AWS_WEB_IDENTITY_TOKEN_FILE / AWS_ROLE_ARN overriding them: AssumeRoleWithWebIdentity), IAM
 * Identity Center (sso_session / sso_start_url), static keys of the credentials file,
 * credential_process, static keys of the config file. A source profile's own static keys come
 * before its role_arn and its web_identity_token_file, as the SDKs do, which lets a profile name
 * itself as its source_profile. Keys are read from the credentials file's [NAME] first, then from the config
 * file's [profile NAME] ([default] for the default profile).
 */
#include <ctype.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "creds_internal.h"

#define MAX_CHAIN 8  /* profiles in one source_profile chain */

typedef struct files {
	char cpath[1024], fpath[1024];
	char *owned[128];  /* values read, scrubbed and freed at the end */
	size_t n;
} files;

/* Look up @p key in [section] of an INI file; caller frees. */
static char *ini_get(const char *path, const char *section, const char *key)
{
	char line[4096], cur[256] = "";
	char *val = NULL;
	FILE *f = fopen(path, "r");

	if (!f)
		return NULL;
	while (!val && fgets(line, sizeof(line), f)) {
		char *s = line, *e, *eq;

		while (isspace((unsigned char)*s))
			s++;
		e = s + strlen(s);
		while (e > s && isspace((unsigned char)e[-1]))
			*--e = '\0';
		if (*s == '#' || *s == ';' || !*s)
			continue;
		if (*s == '[') {
			char *close = strchr(s, ']');

			if (close) {
				*close = '\0';
				snprintf(cur, sizeof(cur), "%s", s + 1);
			}
			continue;
		}
		if (strcmp(cur, section) != 0 || !(eq = strchr(s, '=')))
			continue;
		*eq = '\0';
		for (e = eq; e > s && isspace((unsigned char)e[-1]);)
			*--e = '\0';
		if (strcmp(s, key) == 0) {
			char *v = eq + 1;

			while (isspace((unsigned char)*v))
				v++;
			val = strdup(v);
		}
	}
	OPENSSL_cleanse(line, sizeof(line));
	fclose(f);
	return val;
}

static void home_path(char *out, size_t n, const char *env, const char *rel)
{
	const char *v = getenv(env), *home = getenv("HOME");

	if (v && *v)
		snprintf(out, n, "%s", v);
	else
		snprintf(out, n, "%s/%s", home ? home : "", rel);
}

static const char *keep(files *fs, char *v)
{
	if (v && fs->n < sizeof(fs->owned) / sizeof(fs->owned[0]))
		fs->owned[fs->n++] = v;
	else if (v) {
		ks_creds_scrub_free(v);
		v = NULL;
	}
	return v && *v ? v : NULL;
}

static void config_section(char *out, size_t n, const char *profile)
{
	/* The config file names non-default profiles "profile NAME". */
	if (strcmp(profile, "default") == 0)
		snprintf(out, n, "default");
	else
		snprintf(out, n, "profile %s", profile);
}

/* @p key of @p profile in the credentials file, else in the config file. */
static const char *prof_get(files *fs, const char *profile, const char *key)
{
	char section[300];
	const char *v = keep(fs, ini_get(fs->cpath, profile, key));

	if (v)
		return v;
	config_section(section, sizeof(section), profile);
	return keep(fs, ini_get(fs->fpath, section, key));
}

/* Static keys of @p profile in one file (config: 1 for the config file). */
static int static_keys(files *fs, const char *profile, int config, ks_credentials *out)
{
	char section[300], source[32];
	const char *akid, *secret, *token;

	if (config)
		config_section(section, sizeof(section), profile);
	else
		snprintf(section, sizeof(section), "%s", profile);
	akid = keep(fs, ini_get(config ? fs->fpath : fs->cpath, section, "aws_access_key_id"));
	secret = keep(fs, ini_get(config ? fs->fpath : fs->cpath, section, "aws_secret_access_key"));
	token = keep(fs, ini_get(config ? fs->fpath : fs->cpath, section, "aws_session_token"));
	if (!akid || !secret)
		return KS_ERR_NOTFOUND;
	snprintf(source, sizeof(source), "profile:%.20s", profile);
	return ks_creds_set(out, akid, secret, token, 0, source);
}

static int has_static(files *fs, const char *profile)
{
	return prof_get(fs, profile, "aws_access_key_id") || prof_get(fs, profile, "aws_secret_access_key");
}

static int from_sso(const ks_creds_net *net, files *fs, const char *profile, ks_credentials *out, ks_errbuf *err)
{
	ks_creds_sso sso = { .profile = profile };

	sso.session_name = prof_get(fs, profile, "sso_session");
	sso.account_id = prof_get(fs, profile, "sso_account_id");
	sso.role_name = prof_get(fs, profile, "sso_role_name");
	if (sso.session_name) {
		char section[300];

		snprintf(section, sizeof(section), "sso-session %s", sso.session_name);
		sso.start_url = keep(fs, ini_get(fs->fpath, section, "sso_start_url"));
		sso.region = keep(fs, ini_get(fs->fpath, section, "sso_region"));
		if (!sso.start_url || !sso.region)
			return ks_errbuf_set(err, KS_ERR_AUTH,
					     "profile '%s': sso_session '%s' needs a [%s] section with sso_start_url "
					     "and sso_region in %s", profile, sso.session_name, section, fs->fpath);
	} else {
		sso.start_url = prof_get(fs, profile, "sso_start_url");
		sso.region = prof_get(fs, profile, "sso_region");
	}
	if (!sso.start_url || !sso.region || !sso.account_id || !sso.role_name)
		return ks_errbuf_set(err, KS_ERR_AUTH,
				     "profile '%s' is an SSO profile but lacks %s%s%s%s; set them in %s (aws configure sso)",
				     profile, sso.start_url ? "" : "sso_start_url ", sso.region ? "" : "sso_region ",
				     sso.account_id ? "" : "sso_account_id ", sso.role_name ? "" : "sso_role_name",
				     fs->fpath);
	return ks_creds_from_sso(net, &sso, out, err);
}

static int resolve(const ks_creds_net *net, files *fs, const char **chain, int depth, int as_source,
		   ks_credentials *out, ks_errbuf *err);

static int from_credential_source(const ks_creds_net *net, const char *profile, const char *name,
				  ks_credentials *out, ks_errbuf *err)
{
	int rc;

	if (strcmp(name, "Environment") == 0)
		rc = ks_creds_from_env(out);
	else if (strcmp(name, "Ec2InstanceMetadata") == 0)
		rc = ks_creds_from_imds(net, out, err);
	else if (strcmp(name, "EcsContainer") == 0)
		rc = ks_creds_from_container(net, out, err);
	else
		return ks_errbuf_set(err, KS_ERR_AUTH,
				     "profile '%s': credential_source '%s' is not one of Environment, "
				     "Ec2InstanceMetadata, EcsContainer", profile, name);
	if (rc == KS_ERR_NOTFOUND)
		return ks_errbuf_set(err, KS_ERR_AUTH, "profile '%s': credential_source %s has no credentials",
				     profile, name);
	if (rc)
		ks_errbuf_prefix(err, "profile '%s': credential_source %s", profile, name);
	return rc;
}

static int loop_error(const char **chain, int depth, const char *next, ks_errbuf *err)
{
	char path[600] = "";
	size_t len = 0;
	int i;

	for (i = 0; i <= depth && len < sizeof(path); i++)
		len += (size_t)snprintf(path + len, sizeof(path) - len, "%s -> ", chain[i]);
	return ks_errbuf_set(err, KS_ERR_AUTH, "source_profile loop in the AWS config: %s%s; make the chain end "
			     "in a profile with credentials", path, next);
}

/* role_arn of @p chain[depth]: its source's credentials, then AssumeRole. */
static int via_role(const ks_creds_net *net, files *fs, const char **chain, int depth, const char *role_arn,
		    ks_credentials *out, ks_errbuf *err)
{
	const char *name = chain[depth];
	const char *src = prof_get(fs, name, "source_profile"), *csrc = prof_get(fs, name, "credential_source");
	const char *dur = prof_get(fs, name, "duration_seconds");
	ks_creds_role role = { role_arn, prof_get(fs, name, "external_id"), prof_get(fs, name, "role_session_name"),
			       dur ? atoi(dur) : 0 };
	ks_credentials base = { 0 };
	char source[32];
	int rc, i;

	if (src && csrc)
		return ks_errbuf_set(err, KS_ERR_AUTH, "profile '%s' sets both source_profile and credential_source; "
				     "keep one", name);
	if (!src && !csrc)
		return ks_errbuf_set(err, KS_ERR_AUTH, "profile '%s' has role_arn but neither source_profile nor "
				     "credential_source", name);
	if (csrc) {
		rc = from_credential_source(net, name, csrc, &base, err);
	} else {
		for (i = 0; i <= depth; i++)
			if (strcmp(chain[i], src) == 0 && (strcmp(src, name) != 0 || !has_static(fs, src)))
				return loop_error(chain, depth, src, err);
		if (depth + 1 >= MAX_CHAIN)
			return ks_errbuf_set(err, KS_ERR_AUTH, "profile '%s': source_profile chain longer than %d "
					     "profiles", name, MAX_CHAIN);
		chain[depth + 1] = src;
		rc = resolve(net, fs, chain, depth + 1, 1, &base, err);
		if (rc == KS_ERR_NOTFOUND)
			rc = ks_errbuf_set(err, KS_ERR_AUTH, "source_profile '%s' of profile '%s' has no credentials "
					   "(%s, %s)", src, name, fs->cpath, fs->fpath);
	}
	if (rc)
		return rc;
	snprintf(source, sizeof(source), "role:%.24s", name);
	rc = ks_creds_assume_role(net, &role, &base, source, out, err);
	ks_credentials_clean(&base);
	if (rc)
		ks_errbuf_prefix(err, "profile '%s'", name);
	return rc;
}

/*
 * web_identity_token_file with role_arn (and role_session_name): AssumeRoleWithWebIdentity, as
 * the environment's form. For the profile AWS_PROFILE names (@p use_env), the environment's
 * AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN and AWS_ROLE_SESSION_NAME override the profile's
 * keys one by one, as the SDKs merge them. @returns KS_ERR_NOTFOUND when there is no token file.
 */
static int from_web_identity(const ks_creds_net *net, files *fs, const char *profile, int use_env,
			     ks_credentials *out, ks_errbuf *err)
{
	const char *file = prof_get(fs, profile, "web_identity_token_file"), *role = prof_get(fs, profile, "role_arn");
	const char *session = prof_get(fs, profile, "role_session_name"), *v;
	char source[32];
	int rc, env_file = 0;

	if (use_env) {
		if ((v = getenv("AWS_WEB_IDENTITY_TOKEN_FILE")) && *v) {
			file = v;
			env_file = 1;
		}
		if ((v = getenv("AWS_ROLE_ARN")) && *v)
			role = v;
		if ((v = getenv("AWS_ROLE_SESSION_NAME")) && *v)
			session = v;
	}
	if (!file || (env_file && !role)) /* the environment's form needs both (creds.c) */
		return KS_ERR_NOTFOUND;
	if (!role)
		return ks_errbuf_set(err, KS_ERR_AUTH, "profile '%s' has web_identity_token_file but no role_arn; set "
				     "the role to assume in %s", profile, fs->fpath);
	if (env_file)
		snprintf(source, sizeof(source), "web-identity");
	else
		snprintf(source, sizeof(source), "web-identity:%.16s", profile);
	rc = ks_creds_web_identity(net, file, role, session, source, out, err);
	if (rc && !env_file)
		ks_errbuf_prefix(err, "profile '%s'", profile);
	return rc;
}

/*
 * The SDKs' order: for the profile AWS_PROFILE names, role_arn (without web_identity_token_file)
 * then web identity; for a source profile, its static keys first (which lets a profile name
 * itself as its source), then role_arn, then web identity without the environment.
 */
static int resolve(const ks_creds_net *net, files *fs, const char **chain, int depth, int as_source,
		   ks_credentials *out, ks_errbuf *err)
{
	const char *name = chain[depth];
	const char *role_arn = prof_get(fs, name, "role_arn"), *process;
	int rc, keys = as_source && has_static(fs, name);

	if (role_arn && !prof_get(fs, name, "web_identity_token_file") && !keys)
		return via_role(net, fs, chain, depth, role_arn, out, err);
	if (!keys && (rc = from_web_identity(net, fs, name, !as_source, out, err)) != KS_ERR_NOTFOUND)
		return rc;
	if (prof_get(fs, name, "sso_session") || prof_get(fs, name, "sso_start_url") ||
	    prof_get(fs, name, "sso_account_id"))
		return from_sso(net, fs, name, out, err);
	if ((rc = static_keys(fs, name, 0, out)) != KS_ERR_NOTFOUND)
		return rc;
	if ((process = prof_get(fs, name, "credential_process")))
		return ks_creds_process(name, process, out, err);
	return static_keys(fs, name, 1, out);
}

int ks_creds_profile_sources_env(void)
{
	const char *profile = getenv("AWS_PROFILE"), *role, *src;
	files *fs;
	int yes;

	if (!profile || !*profile || !(fs = calloc(1, sizeof(*fs))))
		return 0;
	home_path(fs->cpath, sizeof(fs->cpath), "AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
	home_path(fs->fpath, sizeof(fs->fpath), "AWS_CONFIG_FILE", ".aws/config");
	role = prof_get(fs, profile, "role_arn");
	src = prof_get(fs, profile, "credential_source");
	yes = role && src && strcmp(src, "Environment") == 0;
	while (fs->n)
		ks_creds_scrub_free(fs->owned[--fs->n]);
	free(fs);
	return yes;
}

int ks_creds_from_profile(const ks_creds_net *net, ks_credentials *out, char *tried, size_t tn, ks_errbuf *err)
{
	const char *chain[MAX_CHAIN];
	files *fs = calloc(1, sizeof(*fs));
	const char *profile = getenv("AWS_PROFILE");
	size_t i;
	int rc;

	if (!profile || !*profile)
		profile = "default";
	if (!fs)
		return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
	home_path(fs->cpath, sizeof(fs->cpath), "AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
	home_path(fs->fpath, sizeof(fs->fpath), "AWS_CONFIG_FILE", ".aws/config");
	snprintf(tried, tn, "profile '%.64s' (%.400s, %.400s)", profile, fs->cpath, fs->fpath);
	chain[0] = profile;
	rc = resolve(net, fs, chain, 0, 0, out, err);
	for (i = 0; i < fs->n; i++)
		ks_creds_scrub_free(fs->owned[i]);
	free(fs);
	return rc;
}
