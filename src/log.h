/**
 * @file log.h
 * @brief Level-gated logging with a facility tag per module. Arguments are not evaluated
 *        when the level is off. Nothing secret is ever passed to these macros; what a peer
 *        said may be, and every line goes through the scrubber (scrub.h) before it is written.
 */
#ifndef KS_LOG_H
#define KS_LOG_H

typedef enum ks_log_level {
	KS_LOG_ERROR = 0,
	KS_LOG_WARN = 1,
	KS_LOG_INFO = 2,
	KS_LOG_DEBUG = 3,
} ks_log_level;

/** @brief Our level for a syslog level (librdkafka's log callback). @locality any thread */
int ks_log_level_from_syslog(int level);

/** Current threshold; set once at start-up by ks_log_setup (read-only afterwards). */
extern int ks_log_threshold;

/**
 * @brief Configure logging: level, and json=1 for one JSON object per line.
 * @locality main thread, before other threads start
 */
void ks_log_setup(int level, int json);

/** @brief Emit one line: `2026-11-24T02:40:00.123Z WARN  [kinesis] text`. @locality any thread */
void ks_log_write(int level, const char *fac, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/**
 * @brief Show @p text as a status line under the log on a terminal (NULL or "": take it away,
 *        leaving the cursor at the start of an empty line). Every log line written meanwhile
 *        goes above it: the line is erased, the log line written, the line drawn again, in one
 *        write, so the two never mix. The caller checks that stderr is a terminal.
 * @locality any thread
 */
void ks_log_status(const char *text);

#define ks_log(level, fac, ...)                                     \
	do {                                                        \
		if ((level) <= ks_log_threshold)                    \
			ks_log_write((level), (fac), __VA_ARGS__);  \
	} while (0)

#define ks_err_log(fac, ...)   ks_log(KS_LOG_ERROR, fac, __VA_ARGS__)
#define ks_warn(fac, ...)      ks_log(KS_LOG_WARN, fac, __VA_ARGS__)
#define ks_info(fac, ...)      ks_log(KS_LOG_INFO, fac, __VA_ARGS__)
#define ks_debug(fac, ...)     ks_log(KS_LOG_DEBUG, fac, __VA_ARGS__)

#endif
