#!/bin/sh
# The whole test suite, as CI runs it: setup, a fresh build, every unit and integration test,
# the unit tests and the integration tests that move partitions again under AddressSanitizer +
# UndefinedBehaviorSanitizer, the unit tests and
# the integration tests that scrape /metrics (the metrics thread against the pipeline thread)
# and the shutdown tests (signals at random moments, workers leaving mid-rebalance) under
# ThreadSanitizer, and the extra suites in scripts/check.d/. Ends with one line
# "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
top=$(pwd)
jobs=$(nproc)

./scripts/setup.sh || exit 1
rm -rf build build-asan build-tsan
./autogen.sh >/dev/null 2>&1 || { echo "autogen failed"; exit 1; }

status=0
echo "== build"
./scripts/build.sh build || exit 1
echo "== make check"
(cd build && make -j"$jobs" check) || status=1

echo "== unit tests under ASan+UBSan"
./scripts/build.sh build-asan --enable-sanitizers CC=gcc || exit 1
unit=$(cd build-asan && find tests/unit -maxdepth 1 -type f -perm -u+x -name 'test_*' | sort | tr '\n' ' ')
[ -n "$unit" ] || { echo "no unit test programs in build-asan"; exit 1; }
# With them, the integration tests that move partitions while records are in flight (revokes,
# a worker killed, a fleet rebalancing): a tracker freed too early is a use-after-free there;
# and the Glue routes (schemas fetched from a lane, whose arena must not hold them).
asan_tests="$unit tests/integration/test_delivery.py tests/integration/test_routing.py tests/integration/test_policies.py tests/integration/test_glue.py"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	make -j"$jobs" check TESTS="$asan_tests") || status=1

echo "== unit tests and /metrics integration tests under ThreadSanitizer"
./scripts/build.sh build-tsan --enable-tsan CC=gcc || exit 1
# The peers are not under test: they run uninstrumented, from the plain build.
cp build/tests/tools/mockcluster build/tests/tools/fakekinesis build-tsan/tests/tools/ || exit 1
tsan_tests="$unit tests/integration/test_operability.py tests/integration/test_backpressure.py tests/integration/test_shutdown.py tests/integration/test_latency.py"
(cd build-tsan && TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 suppressions=$top/scripts/tsan.supp" \
	make -j"$jobs" check TESTS="$tsan_tests") || status=1

for s in scripts/check.d/*.sh; do
	[ -e "$s" ] || continue
	echo "== $s"
	sh "$s" || status=1
done

# Failing logs, so a red run says why.
for trs in $(find build build-asan build-tsan -name '*.trs' 2>/dev/null); do
	if grep -q '^:test-result: FAIL\|^:test-result: ERROR' "$trs"; then
		echo "---- ${trs%.trs}.log"
		tail -n 60 "${trs%.trs}.log"
	fi
done
pass=$(cat $(find build build-asan build-tsan -name '*.trs') /dev/null | grep -c '^:test-result: PASS')
fail=$(cat $(find build build-asan build-tsan -name '*.trs') /dev/null | grep -c '^:test-result: \(FAIL\|ERROR\|XPASS\)')
skip=$(cat $(find build build-asan build-tsan -name '*.trs') /dev/null | grep -c '^:test-result: SKIP')
if [ "$skip" -gt 0 ]; then
	echo "$pass passed, $fail failed, $skip skipped"
else
	echo "$pass passed, $fail failed"
fi
[ "$fail" -eq 0 ] && [ "$status" -eq 0 ]
