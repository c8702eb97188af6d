/**
 * @file common.h
 * @brief Error codes, the caller-supplied error struct, and the capped growable buffer
 *        every stage of kinesink shares.
 */
#ifndef KS_COMMON_H
#define KS_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/** Return codes: 0 is success, every failure is a negative ks_err. */
typedef enum ks_err {
	KS_OK = 0,
	KS_ERR_NOMEM = -1,     /**< allocation failed */
	KS_ERR_CONFIG = -2,    /**< configuration is invalid */
	KS_ERR_BADREC = -3,    /**< this record is bad; the error policy decides */
	KS_ERR_TRANSIENT = -4, /**< temporary failure: retry later */
	KS_ERR_FATAL = -5,     /**< cannot continue: stop the process */
	KS_ERR_IO = -6,        /**< I/O or network failure */
	KS_ERR_NOTFOUND = -7,  /**< the thing asked for does not exist */
	KS_ERR_TIMEOUT = -8,   /**< a deadline passed */
	KS_ERR_TOOBIG = -9,    /**< a size limit was exceeded */
	KS_ERR_AUTH = -11,     /**< credentials missing, expired or rejected */
	KS_ERR_ORDER = -12,    /**< called out of order (e.g. an offset that does not grow): a bug */
	KS_ERR_SYNTAX = -13,   /**< a statement could not be parsed to its end (configuration, not runtime) */
} ks_err;

/** @brief Human text of a ks_err code (static string). @locality any thread */
const char *ks_err_str(int err);

/** Where in the pipeline an error happened (DLQ header `kinesink.stage`). */
typedef enum ks_stage {
	KS_STAGE_NONE = 0,
	KS_STAGE_DECODE,
	KS_STAGE_TRANSFORM,
	KS_STAGE_PRODUCE,
} ks_stage;

/** @brief Name of a stage: "decode", "transform", "produce" (static string). */
const char *ks_stage_str(ks_stage stage);

/**
 * Caller-supplied error details (jansson's json_error_t): what failed, where, and whether
 * the caller may retry. `text` is complete and user-facing; it never holds a secret.
 */
typedef struct ks_errbuf {
	int code;       /**< ks_err */
	int retriable;  /**< 1: the same operation may succeed later: the caller tries again
			     (the dead-letter producer's full queue) instead of reading the code */
	int fatal;      /**< 1: the process must stop (KS_ERR_FATAL, KS_ERR_AUTH) */
	ks_stage stage; /**< where a bad record was found */
	char reason[48];/**< short machine-readable reason ("not_json", "too_large", ...) */
	char text[768]; /**< full message */
} ks_errbuf;

/** @brief Reset an error struct to "no error". */
void ks_errbuf_clear(ks_errbuf *e);

/**
 * @brief Fill @p e with @p code and a printf-style message; sets retriable for
 *        KS_ERR_TRANSIENT/IO/TIMEOUT and fatal for KS_ERR_FATAL/AUTH. @returns @p code.
 *        @p e may be NULL.
 */
int ks_errbuf_set(ks_errbuf *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/** @brief Prefix the existing text of @p e with a printf-style context ("ctx: old text"). */
void ks_errbuf_prefix(ks_errbuf *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/**
 * @brief Report a bad record: code KS_ERR_BADREC, text "topic [partition] @offset: <message>",
 *        @p stage and the short @p reason. @returns KS_ERR_BADREC.
 */
int ks_errbuf_badrec(ks_errbuf *e, ks_stage stage, const char *reason, const char *topic, int32_t partition,
		     int64_t offset, const char *fmt, ...) __attribute__((format(printf, 7, 8)));

/**
 * @brief Report a bad record where its coordinates are not known (a decoder's caller prefixes
 *        them): code KS_ERR_BADREC, the printf-style text (at most 600 bytes, leaving room for
 *        the prefix) and the short @p reason. @p e may be NULL. @returns KS_ERR_BADREC.
 * @locality any thread
 */
int ks_errbuf_bad(ks_errbuf *e, const char *reason, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/** @brief Set @p e->reason (truncated to fit). */
void ks_errbuf_reason(ks_errbuf *e, const char *reason);

/**
 * Growable byte buffer with a hard cap (curl's dynbuf): every buffer fed by the
 * network has one. Always NUL-terminated after a successful append.
 */
typedef struct ks_buf {
	char *data;
	size_t len;
	size_t cap;  /**< allocated bytes */
	size_t max;  /**< never grow past this many bytes of content (0 = SIZE_MAX) */
} ks_buf;

/** @brief Initialise caller storage with a content cap (0 = no cap). */
void ks_buf_init(ks_buf *b, size_t max);
/** @brief Free the content; the buffer may be reused after ks_buf_init. */
void ks_buf_clean(ks_buf *b);
/** @brief Forget the content, keep the allocation. */
void ks_buf_reset(ks_buf *b);
/** @brief Make room for @p extra more bytes. @returns 0, KS_ERR_TOOBIG past max, KS_ERR_NOMEM. */
int ks_buf_reserve(ks_buf *b, size_t extra);
/** @brief Append bytes. @returns 0, KS_ERR_TOOBIG, KS_ERR_NOMEM. */
int ks_buf_append(ks_buf *b, const void *p, size_t n);
/** @brief Append a C string. */
int ks_buf_puts(ks_buf *b, const char *s);
/** @brief Append printf-style text. */
int ks_buf_printf(ks_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** @brief Append @p n bytes as standard base64 (with padding). */
int ks_buf_base64(ks_buf *b, const void *p, size_t n);
/** @brief Append @p s as a JSON string literal (quotes and escapes). */
int ks_buf_json_str(ks_buf *b, const char *s, size_t n);

/** @brief Monotonic clock in milliseconds. @locality any thread */
int64_t ks_now_ms(void);
/** @brief Wall clock in milliseconds since the Unix epoch, the clock of Kafka's message
 *  timestamps (only for ages of records: it may jump). @locality any thread */
int64_t ks_wall_ms(void);
/** @brief Lowercase hex SHA-256 of @p p into @p out (65 bytes with NUL). */
void ks_sha256_hex(const void *p, size_t n, char out[65]);
/**
 * @brief Length of a UTF-8 partition key as Kinesis counts it, in characters: the service's
 *        strings are UTF-16, so a character outside the Basic Multilingual Plane (4 bytes in
 *        UTF-8) counts as two. Counted so, a key is never over the limit, whichever way the
 *        service counts such characters. @locality any thread
 */
size_t ks_key_chars(const void *p, size_t n);
/** @brief Duplicate @p n bytes as a NUL-terminated string; NULL on allocation failure. */
char *ks_strndup(const char *s, size_t n);
/** @brief @p url as it may appear in a message or `--check`: a `user:password@` part becomes
 *  `[redacted]@`; anything that is not a URL is copied as it is. */
void ks_url_redact(const char *url, char *out, size_t outlen);

#endif
