/* Logging: one line per event, text or JSON, to stderr. */
#include "log.h"
#include "common.h"
#include "scrub.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

int ks_log_threshold = KS_LOG_INFO;
static int log_json;

/* stderr is the process's one terminal: what is shown under its log is the logger's to know,
 * like the threshold above. Guarded by the lock, as every write while a status line shows. */
static pthread_mutex_t status_lock = PTHREAD_MUTEX_INITIALIZER;
static char status_line[512];

static const char *const level_names[] = { "ERROR", "WARN", "INFO", "DEBUG" };

int ks_log_level_from_syslog(int level)
{
	return level <= 3 ? KS_LOG_ERROR : level <= 4 ? KS_LOG_WARN : level <= 6 ? KS_LOG_INFO : KS_LOG_DEBUG;
}

void ks_log_setup(int level, int json)
{
	if (level < KS_LOG_ERROR)
		level = KS_LOG_ERROR;
	if (level > KS_LOG_DEBUG)
		level = KS_LOG_DEBUG;
	ks_log_threshold = level;
	log_json = json;
}

void ks_log_write(int level, const char *fac, const char *fmt, ...)
{
	char msg[2048], stamp[40];
	struct timeval tv;
	struct tm tm;
	va_list ap;

	if (level < 0 || level > KS_LOG_DEBUG)
		level = KS_LOG_INFO;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Every line, whatever its level or source (a peer's error, librdkafka's log), is scrubbed of
	 * the secrets the process holds; a secret cut by the line's cap is caught by its prefix. */
	ks_scrub_str(msg, sizeof(msg));

	if (log_json) {
		ks_buf b;

		ks_buf_init(&b, 8192);
		ks_buf_printf(&b, "{\"ts\":\"%s.%03dZ\",\"level\":\"%s\",\"module\":", stamp,
			      (int)(tv.tv_usec / 1000), level_names[level]);
		ks_buf_json_str(&b, fac, strlen(fac));
		ks_buf_puts(&b, ",\"msg\":");
		ks_buf_json_str(&b, msg, strlen(msg));
		ks_buf_puts(&b, "}\n");
		pthread_mutex_lock(&status_lock);
		if (b.data)
			fprintf(stderr, "%s%s%s", status_line[0] ? "\r\033[K" : "", b.data, status_line);
		pthread_mutex_unlock(&status_lock);
		ks_buf_clean(&b);
	} else {
		/* One fprintf per line: stdio locks the stream, so lines of threads do not mix; a
		 * status line is erased before and drawn again after, in the same write. */
		pthread_mutex_lock(&status_lock);
		fprintf(stderr, "%s%s.%03dZ %-5s [%s] %s\n%s", status_line[0] ? "\r\033[K" : "", stamp,
			(int)(tv.tv_usec / 1000), level_names[level], fac, msg, status_line);
		pthread_mutex_unlock(&status_lock);
	}
}

void ks_log_status(const char *text)
{
	pthread_mutex_lock(&status_lock);
	if (text && *text) {
		snprintf(status_line, sizeof(status_line), "%s", text);
		ks_scrub_str(status_line, sizeof(status_line));
		/* \033[K: what a longer line drawn before left is cleared. */
		fprintf(stderr, "\r%s\033[K", status_line);
	} else if (status_line[0]) {
		status_line[0] = '\0';
		fputs("\r\033[K", stderr);
	}
	fflush(stderr);
	pthread_mutex_unlock(&status_lock);
}
