#!/bin/bash
# Runs every fuzz target (build-fuzz/fuzz-*, built by `make fuzz-build`) for SECONDS each
# (default 30), from the seed corpus (fuzz/make-seeds.sh: real image sets, made once into
# build-fuzz/seeds; needs ./stasis) and the target's own corpus, kept between runs
# (build-fuzz/corpus/TARGET). A crash, a leak or an input that takes over 20 s fails the
# target; the input is kept in build-fuzz/crashes/TARGET (replay: build-fuzz/TARGET FILE).
#
#   fuzz/run-fuzz.sh [SECONDS] [TARGET...]
# Output: one line per target (executions, coverage, corpus), then "N passed, N failed".
set -u
cd "$(dirname "$0")/.." || exit 1
EACH=${1:-30}
shift $(($# > 0 ? 1 : 0))
B=build-fuzz
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
	for t in "$B"/fuzz-*; do [ -x "$t" ] && TARGETS+=("${t##*/}"); done
fi
if [ ${#TARGETS[@]} -eq 0 ]; then
	echo "FAIL fuzz: no targets in $B (make fuzz-build)"
	echo "0 passed, 1 failed"
	exit 1
fi
if [ ! -d "$B/seeds/restore" ] || [ -z "$(ls -A "$B/seeds/restore" 2>/dev/null)" ]; then
	rm -rf "$B/seeds"
	mkdir -p "$B"
	fuzz/make-seeds.sh "$B/seeds" >"$B/seeds.log" 2>&1
	tail -n 1 "$B/seeds.log"
fi
pass=0 fail=0
for t in "${TARGETS[@]}"; do
	corpus=$B/corpus/$t
	crashes=$B/crashes/$t
	log=$B/$t.log
	rm -rf "$crashes"
	mkdir -p "$corpus" "$crashes"
	# (the corpus directory first: libFuzzer adds to it and replaces its inputs by smaller ones)
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
		"$B/$t" -max_total_time="$EACH" -timeout=20 -rss_limit_mb=2048 -max_len=8388608 \
		-print_final_stats=1 -artifact_prefix="$crashes/" "$corpus" "$B/seeds/${t#fuzz-}" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1)
	if [ "$rc" -ne 0 ] || [ -n "$(ls -A "$crashes")" ]; then
		echo "FAIL $t: exit $rc after ${execs:-?} executions; kept: $(ls "$crashes" | head -n 3 | tr '\n' ' ')(log $log)"
		grep -aE '^==[0-9]+==ERROR|^SUMMARY|runtime error|ALARM|out-of-memory' "$log" | head -n 5 | sed 's/^/    /'
		fail=$((fail + 1))
	else
		echo "ok $t: ${execs:-?} executions in $EACH s, no crash ($cov, corpus $(find "$corpus" -type f | wc -l) inputs)"
		pass=$((pass + 1))
	fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
