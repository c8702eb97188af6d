#!/bin/sh
# Builds each libFuzzer target with clang (ASan + UBSan) and runs it for FUZZ_SECONDS
# (default 20) from its seed corpus; any crash, leak or sanitizer report fails the run.
set -eu
cd "$(dirname "$0")/../.."
top=$(pwd)
secs=${FUZZ_SECONDS:-20}
CC=$(command -v clang-14 || command -v clang)
out=build/fuzz
mkdir -p "$out"
flags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D_GNU_SOURCE -I$top/src -I$top/build"
libs="$(pkg-config --cflags --libs rdkafka libcurl libcrypto avro-c jansson libmicrohttpd) -lpthread -lm"
srcs="src/decode.c src/decode_avro.c src/avro_plan.c src/registry.c src/transform.c src/conf.c src/common.c src/log.c src/http.c"
# Avro C leaks small allocations on some of its own error paths (not reachable once kinesink's
# bounds check passed and the body is well formed); those leaks are inside libavro, not ours.
printf 'leak:libavro.so\n' > "$out/lsan.supp"
status=0
for t in debezium_json json avro create_sink; do
	def=FUZZ_$(echo "$t" | tr a-z A-Z)
	$CC $flags -D"$def" -o "$out/fuzz_$t" tests/fuzz/fuzz_decode.c $srcs $libs
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
