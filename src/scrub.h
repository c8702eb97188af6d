/**
 * @file scrub.h
 * @brief The one scrubber every text kinesink emits goes through: log lines, `--check`,
 *        `--check --connect` and `--preview` output, exit messages, dead-letter headers and the
 *        `/metrics` text. It replaces the values of the secrets the process holds or has held
 *        (registered where they arrive: configured secrets, resolved and refreshed AWS
 *        credentials, the MSK IAM token, SSO tokens, Basic credentials) with `[redacted]`, also
 *        when a peer echoes them back in an error. Nothing is scrubbed by pattern: only values
 *        registered here, in the forms they travel in.
 *
 * Each value is kept with its derived forms: percent-encoded (as in a query string or a form
 * body, a space also as `+`), JSON-escaped, and base64 and base64url (at each of the three byte
 * alignments inside a longer encoded text, of the value and of its percent-encoded form, as in
 * an MSK IAM token); the whole base64 with padding is what a Basic header carries. A form is
 * matched whole, or by any prefix longer than KS_SCRUB_PREFIX - 1 characters (a message cut at
 * a buffer's end must not leave the start of a secret). Values shorter than KS_SCRUB_MIN bytes
 * are not registered (they would mangle every text), nor base64 forms shorter than 8.
 *
 * The registry is process-wide, like the logger's stream: every thread that writes text (the
 * pipeline, decode lanes, librdkafka's threads, the metrics endpoint, the MSK token refresher)
 * reads it; it is read-mostly under a read-write lock. It holds KS_SCRUB_MAX_VALUES values that
 * were refreshed (the oldest forgotten first: an expired token) besides those kept for the whole
 * run (configured secrets), so its memory is bounded.
 */
#ifndef KS_SCRUB_H
#define KS_SCRUB_H

#include <stddef.h>
#include <stdio.h>

#include "common.h"

#define KS_SCRUB_MIN 4           /**< shortest value registered, in bytes */
#define KS_SCRUB_PREFIX 9        /**< a prefix of a form this long or longer is scrubbed too */
#define KS_SCRUB_MAX_VALUES 128  /**< refreshed values held at most (besides kept ones) */
#define KS_SCRUB_MARK "[redacted]"

/** Flags of ks_scrub_add. */
enum {
	KS_SCRUB_KEEP = 1, /**< never forgotten (a configured secret), not counted in KS_SCRUB_MAX_VALUES */
};

/**
 * @brief Register the secret @p value (copied, with its derived forms). NULL, a value already
 *        registered and one shorter than KS_SCRUB_MIN are ignored; out of memory too (nothing to
 *        report it to: the value stays unregistered).
 * @locality any thread
 */
void ks_scrub_add(const char *value, int flags);

/**
 * @brief Register the password of a URL's `user:password@` part (as written, and percent-decoded
 *        when that differs), kept for the run. A URL without one is ignored.
 * @locality any thread
 */
void ks_scrub_add_userinfo(const char *url);

/**
 * @brief Append @p n bytes of @p in to @p out with every registered form replaced by
 *        KS_SCRUB_MARK. @returns 0, or the error of ks_buf_append (then @p out holds a part).
 * @locality any thread
 */
int ks_scrub_buf(const char *in, size_t n, ks_buf *out);

/**
 * @brief Scrub the NUL-terminated @p s in place; the result is cut to @p cap - 1 bytes (a
 *        replacement can be longer than what it replaces).
 * @locality any thread
 */
void ks_scrub_str(char *s, size_t cap);

/**
 * @brief A stream that writes to @p dest every whole line written to it, scrubbed, and what is
 *        left at its close (fclose flushes @p dest and leaves it open). Line-buffered. A line is
 *        held until its newline, so it is scrubbed whole; NULL when out of memory.
 * @locality the thread that writes to it
 */
FILE *ks_scrub_stream(FILE *dest);

/** @brief Number of forms registered (tests; 0 also when nothing is registered). @locality any thread */
size_t ks_scrub_forms(void);

/** @brief Forget every value (tests). @locality any thread */
void ks_scrub_reset(void);

#endif
