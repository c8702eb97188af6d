/* Helpers shared by the CUnit suites: files, data-driven case folders, a main(). */
#ifndef KS_TESTUTIL_H
#define KS_TESTUTIL_H

#ifdef KS_NO_CUNIT
#error "CUnit was not found when configure ran: install libcunit1-dev (apt-get install libcunit1-dev), then run configure again"
#endif

#include <CUnit/Basic.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "conf.h"

/* Whole file as a NUL-terminated string (NULL if missing); *len gets its size. */
static inline char *tu_read(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	if (buf) {
		buf[n] = '\0';
		if (len)
			*len = (size_t)n;
	}
	return buf;
}

static inline char *tu_read_in(const char *dir, const char *name, size_t *len)
{
	char path[8192];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return tu_read(path, len);
}

/* tests/data/<area>, from KS_SRCDIR (set by make check) or the source tree. */
static inline void tu_data_dir(const char *area, char *out, size_t n)
{
	const char *src = getenv("KS_SRCDIR");

	snprintf(out, n, "%s/tests/data/%s", src ? src : ".", area);
}

static int tu_cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Call fn(case_dir, case_name) for each folder of tests/data/<area>, sorted; returns the count. */
static inline int tu_each_case(const char *area, void (*fn)(const char *dir, const char *name))
{
	char base[4096], dir[4400], *names[1024];
	struct dirent *e;
	int n = 0, i;
	DIR *d;

	tu_data_dir(area, base, sizeof(base));
	if (!(d = opendir(base))) {
		CU_FAIL_FATAL("no test data folder");
		return 0;
	}
	while ((e = readdir(d)) && n < 1024) {
		struct stat st;

		snprintf(dir, sizeof(dir), "%s/%s", base, e->d_name);
		if (e->d_name[0] != '.' && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
			names[n++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, (size_t)n, sizeof(*names), tu_cmp_names);
	for (i = 0; i < n; i++) {
		snprintf(dir, sizeof(dir), "%s/%s", base, names[i]);
		fn(dir, names[i]);
		free(names[i]);
	}
	return n;
}

/* Strip one trailing newline (fixture files end with one). */
static inline void tu_chomp(char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n && s[n - 1] == '\n')
		s[n - 1] = '\0';
}

/*
 * Apply the `key=value` lines of text (a case's `config` or `set` file; modified in place) to c
 * with ks_conf_set from `origin`; a line without '=' fails the test. Returns the bitwise OR of
 * ks_conf_set's return codes: 0 when every line was accepted.
 */
static inline int tu_conf_lines(ks_conf *c, char *text, const char *origin, ks_conf_errors *errs)
{
	char *line, *save = NULL;
	int rc = 0;

	for (line = text ? strtok_r(text, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '=');

		CU_ASSERT_PTR_NOT_NULL_FATAL(eq);
		*eq = '\0';
		rc |= ks_conf_set(c, line, eq + 1, origin, 0, errs);
	}
	return rc;
}

/* Compare and, on mismatch, show both, naming the case. */
#define TU_ASSERT_STR(casename, got, want)                                                     \
	do {                                                                                   \
		if (strcmp((got), (want)) != 0) {                                              \
			fprintf(stderr, "\ncase %s:\n--- got\n%s\n--- want\n%s\n", (casename), \
				(got), (want));                                                \
			CU_FAIL("output differs from expected (see stderr)");                   \
		} else {                                                                       \
			CU_PASS("matches");                                                     \
		}                                                                              \
	} while (0)

typedef struct tu_test {
	const char *name;
	void (*fn)(void);
} tu_test;

/* Run one suite; exit status 0 only when every assertion passed. */
static inline int tu_main(const char *suite, const tu_test *tests)
{
	CU_pSuite s;
	unsigned failed;
	int i;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	s = CU_add_suite(suite, NULL, NULL);
	for (i = 0; tests[i].name; i++)
		CU_add_test(s, tests[i].name, tests[i].fn);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}

#endif
