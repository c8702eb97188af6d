/*
 * The per-lane arena behind jansson's allocations: values made inside a window come from it and
 * go back at its end; values made outside it, on other threads, or while it is suspended are
 * malloc's and stay valid (and are freed by free: ASan and valgrind see a leak otherwise).
 */
#include <jansson.h>
#include <pthread.h>

#include "arena.h"
#include "testutil.h"

static void test_window(void)
{
	ks_arena_t *a = ks_arena_new(1 << 20);
	json_t *before, *in, *again;
	void *first;

	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	ks_arena_install();
	before = json_string("made before the window");
	ks_arena_begin(a);
	first = json_object();
	CU_ASSERT(ks_arena_owns(first));
	json_decref(first);
	in = json_loads("{\"a\":[1,2.5,\"x\"],\"b\":{\"c\":null}}", 0, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(in);
	CU_ASSERT(ks_arena_owns(in));
	CU_ASSERT(ks_arena_owns(json_object_get(in, "a")));
	CU_ASSERT(!ks_arena_owns(before));
	CU_ASSERT(ks_arena_used(a) > 0);
	json_decref(before); /* malloc's: freed by free inside the window */
	json_decref(in);
	ks_arena_end();
	CU_ASSERT_EQUAL(ks_arena_used(a), 0);
	CU_ASSERT(!ks_arena_owns(in)); /* no window open */

	/* The next window reuses the same memory. */
	ks_arena_begin(a);
	again = json_object();
	CU_ASSERT_PTR_EQUAL(again, first);
	json_decref(again);
	ks_arena_end();
	ks_arena_destroy(a);
}

static void test_suspend(void)
{
	ks_arena_t *a = ks_arena_new(1 << 20), *was;
	json_t *kept, *tmp;

	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	ks_arena_install();
	ks_arena_begin(a);
	tmp = json_string("message");
	was = ks_arena_suspend();
	CU_ASSERT_PTR_EQUAL(was, a);
	kept = json_pack("{s:s}", "cached", "outlives the message");
	CU_ASSERT(!ks_arena_owns(kept));
	ks_arena_resume(was);
	CU_ASSERT(ks_arena_owns(tmp));
	CU_ASSERT(!ks_arena_owns(kept));
	ks_arena_end();
	/* Overwrite what the arena gave, then read what was made while it was suspended. */
	ks_arena_begin(a);
	CU_ASSERT_PTR_NOT_NULL(json_pack("{s:s,s:i}", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "yyyyyyyyyyyyyyyyy", "z", 1));
	ks_arena_end();
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(kept, "cached")), "outlives the message");
	json_decref(kept);
	ks_arena_destroy(a);
}

static void *other_thread(void *arg)
{
	json_t *j = json_string("another thread's");

	*(int *)arg = ks_arena_owns(j);
	return j;
}

static void test_other_threads(void)
{
	ks_arena_t *a = ks_arena_new(1 << 20);
	pthread_t th;
	json_t *theirs;
	void *ret;
	int owned = -1;

	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	ks_arena_install();
	ks_arena_begin(a);
	CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, other_thread, &owned), 0);
	pthread_join(th, &ret);
	theirs = ret;
	CU_ASSERT_EQUAL(owned, 0);
	CU_ASSERT(!ks_arena_owns(theirs));
	ks_arena_end();
	CU_ASSERT_STRING_EQUAL(json_string_value(theirs), "another thread's");
	json_decref(theirs);
	ks_arena_destroy(a);
}

/* A message larger than the first chunk: more chunks, all given back, and the arena goes on. */
static void test_large(void)
{
	ks_arena_t *a = ks_arena_new(256 * 1024);
	size_t n = 3 << 20, round;
	char *text = malloc(n + 3);

	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	ks_arena_install();
	text[0] = '"';
	memset(text + 1, 'q', n);
	text[n + 1] = '"';
	text[n + 2] = '\0';
	for (round = 0; round < 3; round++) {
		json_t *s, *arr;
		size_t i;

		ks_arena_begin(a);
		s = json_loads(text, JSON_DECODE_ANY, NULL);
		CU_ASSERT_PTR_NOT_NULL_FATAL(s);
		CU_ASSERT_EQUAL(json_string_length(s), n);
		CU_ASSERT(ks_arena_owns(json_string_value(s)));
		arr = json_array();
		for (i = 0; i < 20000; i++)
			json_array_append_new(arr, json_integer((json_int_t)i));
		CU_ASSERT_EQUAL(json_integer_value(json_array_get(arr, 19999)), 19999);
		CU_ASSERT(ks_arena_used(a) > n);
		json_decref(arr);
		json_decref(s);
		ks_arena_end();
	}
	free(text);
	ks_arena_destroy(a);
}

int main(void)
{
	static const tu_test tests[] = {
		{ "values made in a window come from the arena, memory reused", test_window },
		{ "suspended: values are malloc's and outlive the window", test_suspend },
		{ "other threads get malloc while a lane's window is open", test_other_threads },
		{ "messages larger than a chunk", test_large },
		{ NULL, NULL },
	};

	return tu_main("arena", tests);
}
