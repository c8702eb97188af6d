/*
 * credential_process: a profile's command, split into words as a POSIX shell would split them
 * (quotes and backslashes, no expansion) and run without a shell, as the AWS SDKs do. Its
 * standard output is JSON: {"Version": 1, "AccessKeyId", "SecretAccessKey", "SessionToken",
 * "Expiration"}. The output is bounded, the process has PROCESS_TIMEOUT_S to finish, and no
 * error message holds what it printed on its standard output (its credentials).
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "creds_internal.h"
#include "signals.h"

#define PROCESS_TIMEOUT_S 60
#define MAX_STDOUT (64 * 1024)
#define MAX_STDERR 4096
#define MAX_ARGS 64

extern char **environ;

/* Split @p cmd into @p argv (words written into @p words, same size as cmd + 1). */
static int split_words(const char *cmd, char *words, char **argv, int max)
{
	const char *s = cmd;
	char *w = words;
	int argc = 0;

	for (;;) {
		int in_word = 0;

		while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
			s++;
		if (!*s)
			break;
		if (argc >= max - 1)
			return -1;
		argv[argc++] = w;
		while (*s && (in_word || !(*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))) {
			if (*s == '\'') {
				for (s++; *s && *s != '\''; s++)
					*w++ = *s;
				if (!*s++)
					return -2;
			} else if (*s == '"') {
				for (s++; *s && *s != '"'; s++) {
					if (*s == '\\' && s[1] && strchr("\\\"$`\n", s[1]))
						s++;
					*w++ = *s;
				}
				if (!*s++)
					return -2;
			} else if (*s == '\\' && s[1]) {
				*w++ = s[1];
				s += 2;
			} else {
				*w++ = *s++;
			}
		}
		*w++ = '\0';
	}
	argv[argc] = NULL;
	return argc;
}

/* Read both pipes until they close, the bound is passed or the deadline. @returns 0, -1 timeout, -2 too big. */
static int read_all(int ofd, int efd, ks_buf *out, ks_buf *errb)
{
	struct pollfd pf[2] = { { ofd, POLLIN, 0 }, { efd, POLLIN, 0 } };
	time_t deadline = time(NULL) + PROCESS_TIMEOUT_S;
	char chunk[4096];

	while (pf[0].fd >= 0 || pf[1].fd >= 0) {
		time_t left = deadline - time(NULL);
		int i, n;

		if (left <= 0)
			return -1;
		n = poll(pf, 2, (int)left * 1000);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 ? -1 : -2;
		for (i = 0; i < 2; i++) {
			ssize_t r;

			if (pf[i].fd < 0 || !pf[i].revents)
				continue;
			r = read(pf[i].fd, chunk, sizeof(chunk));
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				pf[i].fd = -1;
				continue;
			}
			if (i == 0 && ks_buf_append(out, chunk, (size_t)r)) {
				OPENSSL_cleanse(chunk, sizeof(chunk));
				return -2;
			}
			if (i == 1 && errb->len < MAX_STDERR)
				ks_buf_append(errb, chunk, (size_t)r > MAX_STDERR - errb->len ? MAX_STDERR - errb->len
											       : (size_t)r);
		}
	}
	OPENSSL_cleanse(chunk, sizeof(chunk));
	return 0;
}

/* The last non-empty line of the process's standard error, for the message. */
static void last_line(const ks_buf *b, char *out, size_t n)
{
	size_t end = b->len, start;

	while (end && (b->data[end - 1] == '\n' || b->data[end - 1] == '\r'))
		end--;
	for (start = end; start && b->data[start - 1] != '\n'; start--)
		;
	snprintf(out, n, "%.*s", (int)(end - start), b->data ? b->data + start : "");
}

static int parse_output(const char *profile, const ks_buf *o, ks_credentials *out, ks_errbuf *err)
{
	json_error_t je;
	json_t *j = json_loadb(o->data ? o->data : "", o->len, 0, &je);
	json_t *ver;
	const char *akid, *secret, *token, *exp;
	char source[32];
	int rc;

	/* Neither je.text nor the output is quoted: both may hold the credentials. */
	if (!j || !json_is_object(j)) {
		json_decref(j);
		return ks_errbuf_set(err, KS_ERR_AUTH, "profile '%s': credential_process printed %zu bytes that are "
				     "not a JSON object (line %d); it must print {\"Version\": 1, \"AccessKeyId\": ..., "
				     "\"SecretAccessKey\": ...}", profile, o->len, j ? 1 : je.line);
	}
	ver = json_object_get(j, "Version");
	akid = json_string_value(json_object_get(j, "AccessKeyId"));
	secret = json_string_value(json_object_get(j, "SecretAccessKey"));
	token = json_string_value(json_object_get(j, "SessionToken"));
	exp = json_string_value(json_object_get(j, "Expiration"));
	snprintf(source, sizeof(source), "process:%.20s", profile);
	if (!json_is_integer(ver) || json_integer_value(ver) != 1)
		rc = ks_errbuf_set(err, KS_ERR_AUTH, "profile '%s': credential_process output has %s \"Version\"; "
				   "only 1 is supported", profile, ver ? "an unsupported" : "no");
	else if (!akid || !*akid || !secret || !*secret)
		rc = ks_errbuf_set(err, KS_ERR_AUTH, "profile '%s': credential_process output lacks %s",
				   profile, akid && *akid ? "SecretAccessKey" : "AccessKeyId");
	else if (exp && !ks_creds_parse_time(exp))
		rc = ks_errbuf_set(err, KS_ERR_AUTH, "profile '%s': credential_process output has an Expiration "
				   "that is not an ISO 8601 time", profile);
	else
		rc = ks_creds_set(out, akid, secret, token, exp ? ks_creds_parse_time(exp) : 0, source);
	json_decref(j);
	return rc;
}

int ks_creds_process(const char *profile, const char *command, ks_credentials *out, ks_errbuf *err)
{
	char *words = malloc(strlen(command) + 1), *argv[MAX_ARGS], msg[300];
	int op[2] = { -1, -1 }, ep[2] = { -1, -1 }, argc, rc, status = 0;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t sa;
	ks_buf o, e;
	pid_t pid;

	if (!words)
		return ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
	argc = split_words(command, words, argv, MAX_ARGS);
	if (argc <= 0) {
		free(words);
		return ks_errbuf_set(err, KS_ERR_AUTH, "profile '%s': credential_process %s", profile,
				     argc == -2 ? "has an unterminated quote" : argc == -1 ? "has too many words"
				     : "is empty");
	}
	if (pipe2(op, O_CLOEXEC) || pipe2(ep, O_CLOEXEC)) {
		rc = ks_errbuf_set(err, KS_ERR_AUTH, "profile '%s': credential_process: pipe: %s", profile,
				   strerror(errno));
		goto out_fds;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, op[1], 1);
	posix_spawn_file_actions_adddup2(&fa, ep[1], 2);
	/* The program starts with the signals kinesink blocks (it takes them on a thread) unblocked. */
	posix_spawnattr_init(&sa);
	if (!(rc = ks_signals_child_attr(&sa)))
		rc = posix_spawnp(&pid, argv[0], &fa, &sa, argv, environ);
	posix_spawnattr_destroy(&sa);
	posix_spawn_file_actions_destroy(&fa);
	close(op[1]);
	close(ep[1]);
	op[1] = ep[1] = -1;
	if (rc) {
		rc = ks_errbuf_set(err, KS_ERR_AUTH, "profile '%s': cannot run credential_process %s: %s", profile,
				   argv[0], strerror(rc));
		goto out_fds;
	}
	ks_buf_init(&o, MAX_STDOUT);
	ks_buf_init(&e, MAX_STDERR + 1);
	rc = read_all(op[0], ep[0], &o, &e);
	if (rc)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	last_line(&e, msg, sizeof(msg));
	if (rc == -1)
		rc = ks_errbuf_set(err, KS_ERR_AUTH, "profile '%s': credential_process %s did not finish within %d s; "
				   "killed", profile, argv[0], PROCESS_TIMEOUT_S);
	else if (rc)
		rc = ks_errbuf_set(err, KS_ERR_AUTH, "profile '%s': credential_process %s printed more than %d "
				   "bytes; killed", profile, argv[0], MAX_STDOUT);
	else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		rc = ks_errbuf_set(err, KS_ERR_AUTH, "profile '%s': credential_process %s %s %d%s%s", profile,
				   argv[0], WIFEXITED(status) ? "exited with status" : "was killed by signal",
				   WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
				   msg[0] ? "; it said: " : "", msg);
	else
		rc = parse_output(profile, &o, out, err);
	if (o.data)
		OPENSSL_cleanse(o.data, o.len);
	ks_buf_clean(&o);
	ks_buf_clean(&e);
out_fds:
	for (argc = 0; argc < 2; argc++) {
		if (op[argc] >= 0)
			close(op[argc]);
		if (ep[argc] >= 0)
			close(ep[argc]);
	}
	free(words);
	return rc;
}
