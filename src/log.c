/* Logging: one line per event, text or JSON, to stderr. */
#include "log.h"
#include "common.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

int ks_log_threshold = KS_LOG_INFO;
static int log_json;

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

	if (log_json) {
		ks_buf b;

		ks_buf_init(&b, 8192);
		ks_buf_printf(&b, "{\"ts\":\"%s.%03dZ\",\"level\":\"%s\",\"module\":", stamp,
			      (int)(tv.tv_usec / 1000), level_names[level]);
		ks_buf_json_str(&b, fac, strlen(fac));
		ks_buf_puts(&b, ",\"msg\":");
		ks_buf_json_str(&b, msg, strlen(msg));
		ks_buf_puts(&b, "}\n");
		if (b.data)
			fputs(b.data, stderr);
		ks_buf_clean(&b);
	} else {
		/* One fprintf per line: stdio locks the stream, so lines of threads do not mix. */
		fprintf(stderr, "%s.%03dZ %-5s [%s] %s\n", stamp, (int)(tv.tv_usec / 1000),
			level_names[level], fac, msg);
	}
}
