/*
 * Signals on one thread: SIGTERM and SIGINT are blocked in every thread and read from a
 * signalfd here. The first asks the loops to stop; this thread then bounds the shutdown, so a
 * worker stuck anywhere (a peer that does not answer, a Kafka client that does not close) still
 * ends. A second signal ends the process at once.
 */
#include "signals.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "log.h"

struct ks_signals {
	ks_stop *stop;
	int64_t bound_ms;
	int sfd;          /* the signalfd of SIGTERM and SIGINT */
	int quit[2];      /* ks_signals_destroy writes 'q' to quit[1], ks_stop_bound 'b' */
	sigset_t old;     /* the caller's mask before */
	pthread_t thread;
};

/* Logged and flushed, then gone: nothing is torn down, nothing more committed. */
static void end_now(const char *why)
{
	ks_err_log("signals", "%s: exiting now; offsets not yet committed are read again by the partitions' next owner",
		   why);
	fflush(NULL);
	_exit(1);
}

static const char *signame(uint32_t sig)
{
	return sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : "a signal";
}

static void *run(void *arg)
{
	ks_signals_t *s = arg;
	int64_t deadline = 0;
	int taken = 0;
	char why[128];
	const char *bound = "";

	for (;;) {
		struct pollfd pfd[2] = { { s->sfd, POLLIN, 0 }, { s->quit[0], POLLIN, 0 } };
		int64_t now = ks_now_ms();
		int timeout = deadline ? (deadline > now ? (int)(deadline - now) : 0) : -1;
		struct signalfd_siginfo si;
		int64_t asked;
		int n = poll(pfd, 2, timeout);

		if (n < 0 && errno != EINTR)
			return NULL;
		if (pfd[1].revents) {
			char c = 'q';

			if (read(s->quit[0], &c, 1) != 1 || c == 'q')
				return NULL;
		}
		/* ks_stop_bound: an earlier bound wins */
		asked = __atomic_load_n(&s->stop->bound_at, __ATOMIC_ACQUIRE);
		if (asked && (!deadline || asked < deadline)) {
			deadline = asked;
			bound = "the worker's own shutdown did not end in time";
		}
		if (n > 0 && (pfd[0].revents & POLLIN) && read(s->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			if (taken++) {
				snprintf(why, sizeof(why), "%s again", signame(si.ssi_signo));
				end_now(why);
			}
			ks_info("signals", "%s: stopping (send it again to stop at once)", signame(si.ssi_signo));
			__atomic_store_n(&s->stop->requested, 1, __ATOMIC_RELEASE);
			if (s->bound_ms > 0 && (!deadline || ks_now_ms() + s->bound_ms < deadline)) {
				deadline = ks_now_ms() + s->bound_ms;
				snprintf(why, sizeof(why), "the shutdown did not end within %lld ms of %s",
					 (long long)s->bound_ms, signame(si.ssi_signo));
				bound = why;
			}
		}
		if (deadline && ks_now_ms() >= deadline)
			end_now(bound);
	}
}

void ks_signals_hold(int hold)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(hold ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL);
}

ks_signals_t *ks_signals_start(ks_stop *stop, int64_t bound_ms, ks_errbuf *err)
{
	ks_signals_t *s = calloc(1, sizeof(*s));
	sigset_t set;
	int e;

	if (!s) {
		ks_errbuf_set(err, KS_ERR_NOMEM, "out of memory");
		return NULL;
	}
	s->stop = stop;
	s->bound_ms = bound_ms;
	s->sfd = s->quit[0] = s->quit[1] = -1;
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if ((e = pthread_sigmask(SIG_BLOCK, &set, &s->old)) != 0 || (s->sfd = signalfd(-1, &set, SFD_CLOEXEC)) < 0 ||
	    pipe(s->quit) != 0 || (e = pthread_create(&s->thread, NULL, run, s)) != 0) {
		ks_errbuf_set(err, KS_ERR_IO, "cannot set up signal handling: %s", strerror(e ? e : errno));
		if (s->quit[0] >= 0) {
			close(s->quit[0]);
			close(s->quit[1]);
		}
		if (s->sfd >= 0)
			close(s->sfd);
		pthread_sigmask(SIG_SETMASK, &s->old, NULL);
		free(s);
		return NULL;
	}
	__atomic_store_n(&stop->wake, s->quit[1], __ATOMIC_RELEASE);
	return s;
}

void ks_stop_bound(ks_stop *s, int64_t ms)
{
	int64_t at = ks_now_ms() + ms, cur = __atomic_load_n(&s->bound_at, __ATOMIC_ACQUIRE);
	int fd = __atomic_load_n(&s->wake, __ATOMIC_ACQUIRE);

	if (fd < 0 || (cur && cur <= at))
		return;
	__atomic_store_n(&s->bound_at, at, __ATOMIC_RELEASE);
	if (write(fd, "b", 1) != 1)
		ks_warn("signals", "cannot bound the shutdown: %s", strerror(errno));
}

void ks_signals_destroy(ks_signals_t *s)
{
	if (!s)
		return;
	__atomic_store_n(&s->stop->wake, -1, __ATOMIC_RELEASE);
	if (write(s->quit[1], "q", 1) == 1)
		pthread_join(s->thread, NULL);
	close(s->quit[0]);
	close(s->quit[1]);
	close(s->sfd);
	/* The signals stay blocked: one arriving now, as the process ends, is not taken. */
	free(s);
}

int ks_signals_child_attr(posix_spawnattr_t *attr)
{
	sigset_t none, def;
	int e;

	sigemptyset(&none);
	sigemptyset(&def);
	sigaddset(&def, SIGPIPE);
	if ((e = posix_spawnattr_setsigmask(attr, &none)) || (e = posix_spawnattr_setsigdefault(attr, &def)))
		return e;
	return posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
}
