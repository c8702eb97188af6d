#!/bin/sh
# Builds each libFuzzer target with clang (ASan + UBSan) and runs it for FUZZ_SECONDS
# (default 20) from its seed corpus; any crash, leak or sanitizer report fails the run.
set -eu
cd "$(dirname "$0")/../.."
top=$(pwd)
secs=${FUZZ_SECONDS:-20}
CC=$(command -v clang-14 || command -v clang)
out=build/fuzz
lib=$out/lib
mkdir -p "$lib"
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
# The library is built by the project's own build, in a directory of its own, with coverage
# instrumentation (fuzzer-no-link) and the sanitizers: whatever sources it has, the targets get.
if [ ! -f "$lib/Makefile" ]; then
	(cd "$lib" && "$top/configure" CC="$CC" CFLAGS="-g -O1 -fsanitize=fuzzer-no-link $san" \
		LDFLAGS="$san" > configure.log 2>&1) || { tail -n 20 "$lib/configure.log"; echo "fuzz: configure FAILED"; exit 1; }
fi
make -s -C "$lib" -j2 src/libkinesink.a > "$lib/make.log" 2>&1 || { tail -n 40 "$lib/make.log"; echo "fuzz: library build FAILED"; exit 1; }
# The libraries it links with, as the build knows them (its DEPS_LIBS).
libs=$(make -s -C "$lib" --no-print-directory --eval='ks-print-deps-libs: ; @echo $(DEPS_LIBS)' ks-print-deps-libs)
deps_cflags=$(make -s -C "$lib" --no-print-directory --eval='ks-print-deps-cflags: ; @echo $(DEPS_CFLAGS)' ks-print-deps-cflags)
flags="-g -O1 -fsanitize=fuzzer $san -D_GNU_SOURCE -I$top/src -I$lib $deps_cflags"
# Avro C leaks small allocations on some of its own error paths (not reachable once kinesink's
# bounds check passed and the body is well formed); those leaks are inside libavro, not ours.
printf 'leak:libavro.so\n' > "$out/lsan.supp"
status=0
for t in debezium_json json avro glue create_sink; do
	def=FUZZ_$(echo "$t" | tr a-z A-Z)
	$CC $flags -D"$def" -o "$out/fuzz_$t" tests/fuzz/fuzz_decode.c "$lib/src/libkinesink.a" $libs
	mkdir -p "$out/corpus_$t"
	cp tests/fuzz/corpus/$t/* "$out/corpus_$t/"
	echo "fuzz_$t: ${secs}s"
	if ! KS_SRCDIR=$top ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$out/lsan.supp "$out/fuzz_$t" -max_total_time="$secs" -max_len=65536 \
		-print_final_stats=0 -artifact_prefix="$out/" "$out/corpus_$t" > "$out/fuzz_$t.log" 2>&1; then
		tail -n 40 "$out/fuzz_$t.log"
		echo "fuzz_$t: FAILED"
		status=1
	else
		grep -E '^#[0-9]+.*DONE' "$out/fuzz_$t.log" | tail -n 1 || true
	fi
done
exit $status
