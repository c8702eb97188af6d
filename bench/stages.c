/*
 * make bench, per stage: where a record's CPU goes before it reaches the writer, on one thread.
 *
 *     stages FILE [TYPE] [ROUNDS]
 *
 * FILE holds one message per line, "KEY<TAB>VALUE" (Debezium JSON). For each message, ROUNDS
 * times (default 20), it times jansson's json_loadb of the value alone (the floor of any decode
 * that builds jansson values, with malloc), then kinesink's decode, then decode and transform into
 * TYPE (default upsert), each message in a lane's arena as the pipeline does it. Prints
 * "parse US decode US decode+transform US" in µs per record.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "conf.h"
#include "decode.h"
#include "transform.h"

typedef struct line {
	char *key, *value;
	size_t key_len, value_len;
} line;

static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static line *load(const char *path, size_t *n)
{
	FILE *f = fopen(path, "r");
	line *v = NULL;
	size_t cap = 0, len = 0;
	char *buf = NULL;
	ssize_t got;

	*n = 0;
	if (!f)
		return NULL;
	while ((got = getline(&buf, &len, f)) > 0) {
		char *tab = strchr(buf, '\t');

		if (!tab)
			continue;
		if (*n == cap) {
			line *nv = realloc(v, (cap = cap ? cap * 2 : 1024) * sizeof(*v));

			if (!nv)
				break;
			v = nv;
		}
		buf[got - 1] = buf[got - 1] == '\n' ? '\0' : buf[got - 1];
		*tab = '\0';
		v[*n].key = strdup(buf);
		v[*n].key_len = strlen(buf);
		v[*n].value = strdup(tab + 1);
		v[*n].value_len = strlen(tab + 1);
		(*n)++;
	}
	free(buf);
	fclose(f);
	return v;
}

static ks_msg msg_of(const line *l, int64_t offset)
{
	ks_msg m = { "bench", 0, offset, l->key, l->key_len, l->value, l->value_len, 0, KS_TS_NONE, NULL };

	return m;
}

int main(int argc, char **argv)
{
	const char *type = argc > 2 ? argv[2] : "upsert";
	int rounds = argc > 3 ? atoi(argv[3]) : 20, r;
	ks_conf_errors errs = { 0 };
	ks_decoder_t *dec;
	ks_conf c;
	ks_transform_t *tr;
	ks_arena_t *arena;
	ks_errbuf err;
	double t0, parse, decode, all;
	size_t n, i, total;
	line *lines;

	if (argc < 2 || !(lines = load(argv[1], &n)) || !n) {
		fprintf(stderr, "usage: stages FILE [TYPE] [ROUNDS] (FILE: KEY<TAB>VALUE lines)\n");
		return 2;
	}
	ks_conf_init(&c);
	ks_conf_set(&c, "stream", "bench", "stages", 0, &errs);
	ks_conf_set(&c, "aws.region", "us-east-1", "stages", 0, &errs);
	ks_conf_set(&c, "topic", "bench", "stages", 0, &errs);
	ks_conf_set(&c, "input.format", "debezium-json", "stages", 0, &errs);
	ks_conf_set(&c, "type", type, "stages", 0, &errs);
	if (ks_conf_finalize(&c, &errs) || !(dec = ks_decoder_new(&c, NULL, &err)) || !(tr = ks_transform_new(&c, &err))) {
		fprintf(stderr, "stages: cannot set up type %s\n", type);
		return 1;
	}
	total = n * (size_t)rounds;

	t0 = cpu_now();
	for (r = 0; r < rounds; r++)
		for (i = 0; i < n; i++)
			json_decref(json_loadb(lines[i].value, lines[i].value_len, JSON_DECODE_ANY, NULL));
	parse = cpu_now() - t0;

	/* From here on jansson allocates as in the lanes (after the bare parse: that is malloc's). */
	ks_arena_install();
	if (!(arena = ks_arena_new(1024 * 1024))) {
		fprintf(stderr, "stages: out of memory\n");
		return 1;
	}

	t0 = cpu_now();
	for (r = 0; r < rounds; r++)
		for (i = 0; i < n; i++) {
			ks_msg m = msg_of(&lines[i], (int64_t)i);
			ks_change ch;

			ks_arena_begin(arena);
			if (ks_decoder_decode(dec, &m, &ch, &err) == 0)
				ks_change_clean(&ch);
			ks_arena_end();
		}
	decode = cpu_now() - t0;

	t0 = cpu_now();
	for (r = 0; r < rounds; r++)
		for (i = 0; i < n; i++) {
			ks_msg m = msg_of(&lines[i], (int64_t)i);
			ks_record *out[2];
			ks_change ch;
			int k, got;

			ks_arena_begin(arena);
			if (ks_decoder_decode(dec, &m, &ch, &err) == 0) {
				got = ks_transform_apply(tr, &ch, out, &err);
				for (k = 0; k < got; k++)
					ks_record_destroy(out[k]);
				ks_change_clean(&ch);
			}
			ks_arena_end();
		}
	all = cpu_now() - t0;

	printf("parse %.2f decode %.2f decode+transform %.2f\n", parse * 1e6 / (double)total,
	       decode * 1e6 / (double)total, all * 1e6 / (double)total);
	ks_transform_destroy(tr);
	ks_decoder_destroy(dec);
	ks_arena_destroy(arena);
	ks_conf_errors_clean(&errs);
	ks_conf_clean(&c);
	for (i = 0; i < n; i++) {
		free(lines[i].key);
		free(lines[i].value);
	}
	free(lines);
	return 0;
}
