#!/bin/bash
# stasis live migration benchmark (`make bench` runs it last): numbers and
# ratios, never a timed assertion; the exit status says only whether something broke (a
# step failed, or a moved program found its memory wrong).
#
#   tests/bench/migrate-bench.sh
#
# Every target is tests/bench/bin/dirtytarget: it rewrites a set share of its pages every
# second, notes the gap its own clock saw when it was frozen and restored (its downtime), and
# checks every byte of its memory at the end (PASS/FAIL).
#
# 1. iterative migration: a process of BENCH_MIGRATE_MIB MiB (1024) rewriting 5% of its
#    memory every second is moved with runtime-hook/stasis-migrate to this very host (page
#    servers on loopback, images under BENCH_DIR, /var/tmp): the rounds until the pages
#    written stop shrinking, the pages of each round, the final dump's frozen time (target
#    <= 50 ms), the program's downtime, the time until all of its memory is in;
# 2. against it, a plain dump and restore of the same kind of process, the images to the
#    local page cache and to a page server over loopback: frozen time, downtime, GB/s;
# 3. restore of a process of BENCH_LAZY_MIB MiB (4096), dumped once, at nice 19: plain,
#    then lazily (--lazy-pages) from the same images: from the start of the restore to the
#    program's first instruction (target for the lazy one <= 50 ms), and to all of its
#    memory present.
# Environment: STASIS, BENCH_MIGRATE_MIB, BENCH_LAZY_MIB, BENCH_DIR.
set -u
export LC_ALL=C
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=$HERE/bin
STASIS=$(readlink -f "${STASIS:-$ROOT/stasis}")
MIGRATE_MIB=${BENCH_MIGRATE_MIB:-1024}
LAZY_MIB=${BENCH_LAZY_MIB:-4096}
BASE=${BENCH_DIR:-/var/tmp}
PORT=$((20000 + $$ % 20000))
BROKEN=0
PIDS=()

now_ns() { echo "${EPOCHREALTIME/./}000"; }
calc() { awk "BEGIN { printf \"%.${2:-1}f\", ($1) }"; }
alive() { [ -e "/proc/$1" ] && [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" != Z ]; }
wait_for() { # wait_for SECONDS COMMAND...
	local n=$(($1 * 20))
	shift
	until "$@"; do
		n=$((n - 1))
		[ $n -gt 0 ] || return 1
		sleep 0.05
	done
}
ready() { grep -q '^READY pid=' "$1" 2>/dev/null; }
cleanup() {
	local p
	for p in "${PIDS[@]}"; do alive "$p" && kill -KILL "$p" 2>/dev/null; done
	[ -n "${WORK:-}" ] && rm -rf -- "$WORK"
}
trap cleanup EXIT
broke() { echo "   BROKEN: $*"; BROKEN=1; }

# start_target MIB PCT DIR [NICE...]: dirtytarget in the background; its pid in T
start_target() {
	local mib=$1 pct=$2 d=$3
	shift 3
	mkdir -p "$d"
	"$@" "$BIN/dirtytarget" "$mib" "$pct" "$d/verdict" "$d/resumed" </dev/null >"$d/target.log" 2>&1 &
	T=$!
	disown "$T"
	PIDS+=("$T")
	wait_for 300 ready "$d/target.log" || { broke "the target did not get ready"; return 1; }
}
# verdict DIR PID: SIGTERM, the program checks every byte
verdict() {
	kill -TERM "$2" 2>/dev/null
	wait_for 300 test -s "$1/verdict" || { broke "no verdict from pid $2"; return 1; }
	echo "   verdict: $(cat "$1/verdict")"
	grep -q '^PASS' "$1/verdict" || { BROKEN=1; return 1; }
}
# downtime DIR: the longest gap the program's own clock saw between two of its steps (the
# freeze to the restore; the stops of pre-dump rounds are shorter), in ms, or nothing
downtime() {
	wait_for 30 test -s "$1/resumed" &&
		sed -n 's/.*gap_ms=\([0-9.]*\).*/\1/p' "$1/resumed" | sort -g | tail -n 1
}
ratio() { if [ -n "$1" ] && [ -n "$2" ]; then calc "$1 / ($2 + 1e-9)" 2; else echo "?"; fi; }
stat_of() { sed -n "s/.*[[:space:]]$2=\([0-9][0-9.]*\).*/\1/p" <<<" $1" | head -n 1; }

make -s --no-print-directory -C "$HERE" || exit 1
WORK=$(mktemp -d "$BASE/stasis-migrate-bench.XXXXXX") || exit 1
echo "stasis migration bench: $(uname -r), $(nproc) cores; images under $WORK"

# ---- 1. iterative migration ----------------------------------------------------------------
echo
echo "== 1. moving a $MIGRATE_MIB MiB process that rewrites 5% of its memory every second"
d=$WORK/migrate
if start_target "$MIGRATE_MIB" 5 "$d"; then
	sleep 1
	"$ROOT/runtime-hook/stasis-migrate" -t "$T" --dest-dir "$d/dst" --dest-address 127.0.0.1 \
		--port "$PORT" --work "$d/src" --stasis "$STASIS" >"$d/migrate.out" 2>&1 ||
		broke "stasis-migrate failed"
	sed 's/^stasis-migrate: /   /' "$d/migrate.out"
	MIG_ROUNDS=$(grep -c ' round ' "$d/migrate.out")
	MIG_PAGES=$(sed -n 's/.* round [0-9]*: \([0-9]*\) pages.*/\1/p' "$d/migrate.out" | paste -sd, -)
	MIG_FINAL=$(sed -n 's/.*final dump: \([0-9]*\) pages.*/\1/p' "$d/migrate.out")
	MIG_FROZEN=$(sed -n 's/.*frozen for \([0-9.]*\) ms.*/\1/p' "$d/migrate.out")
	wait_for 120 grep -q 'lazy-pages: .* in [0-9.]* ms' "$d/dst/final/restore.log" &&
		echo "   $(grep -a -o 'lazy-pages: .* in [0-9.]* ms' "$d/dst/final/restore.log")"
	MIG_DOWN=$(downtime "$d")
	echo "   downtime (the program's clock): ${MIG_DOWN:-?} ms"
	verdict "$d" "$T"
	rm -rf -- "$d/src" "$d/dst"
fi

# ---- 2. plain dump and restore, to the local page cache and to a page server ----------------
echo
echo "== 2. plain dump and restore of the same: images to the local page cache, to a page server over loopback"
for how in local page-server; do
	d=$WORK/$how
	start_target "$MIGRATE_MIB" 5 "$d" || continue
	sleep 1
	mkdir -p "$d/img" "$d/dst"
	ps=()
	if [ "$how" = page-server ]; then
		"$STASIS" page-server -D "$d/dst" --port "$PORT" --daemon -o page-server.log >/dev/null 2>&1 ||
			{ broke "no page server"; continue; }
		ps=(--page-server --address 127.0.0.1 --port "$PORT")
	fi
	"$STASIS" dump -t "$T" -D "$d/img" "${ps[@]}" -o dump.log -v3 >"$d/dump.out" 2>&1 || broke "the $how dump failed"
	stats=$(grep -a 'dump stats:' "$d/img/dump.log" | tail -n 1)
	frozen=$(stat_of "$stats" frozen_ms)
	gbps=$(calc "$(stat_of "$stats" image_bytes) / ($(stat_of "$stats" total_ms) * 1e6)" 2)
	if [ "$how" = page-server ]; then
		for f in "$d/img"/*.img; do [ -e "$d/dst/${f##*/}" ] || cp "$f" "$d/dst/"; done
		mv "$d/img" "$d/img.local" && mv "$d/dst" "$d/img"
	fi
	wait_for 30 test ! -e "/proc/$T"
	"$STASIS" restore -D "$d/img" -d -o restore.log -v3 >"$d/restore.out" 2>&1 || broke "the $how restore failed"
	down=$(downtime "$d")
	echo "   $how: dump $(stat_of "$stats" total_ms) ms for $(calc "$(stat_of "$stats" image_bytes) / 1048576" 0) MiB: $gbps GB/s, frozen $frozen ms; downtime ${down:-?} ms"
	eval "GBPS_${how//-/_}=$gbps FROZEN_${how//-/_}=$frozen DOWN_${how//-/_}=$down"
	verdict "$d" "$T"
	rm -rf -- "$d/img" "$d/img.local"
done

# ---- 3. lazy restore of a big process against a plain one -----------------------------------
echo
echo "== 3. restore of a $LAZY_MIB MiB process (dumped once, at nice 19): plain, then lazy"
d=$WORK/lazy
NICE=(nice -n 19)
if start_target "$LAZY_MIB" 0 "$d" "${NICE[@]}"; then
	mkdir -p "$d/img"
	"${NICE[@]}" "$STASIS" dump -t "$T" -D "$d/img" -o dump.log -v3 >"$d/dump.out" 2>&1 ||
		broke "the dump failed"
	for how in plain lazy; do
		wait_for 30 test ! -e "/proc/$T"
		lazy=()
		[ "$how" = lazy ] && lazy=(--lazy-pages)
		rm -f "$d/resumed" "$d/verdict"
		t0=$(now_ns)
		"${NICE[@]}" "$STASIS" restore -D "$d/img" -d "${lazy[@]}" -o "restore-$how.log" -v3 \
			>"$d/restore.out" 2>&1 || { broke "the $how restore failed"; continue; }
		t1=$(now_ns)
		if [ "$how" = lazy ]; then
			# the server logs its last line once every page is in
			wait_for 600 grep -q 'lazy-pages: .* in [0-9.]* ms' "$d/img/restore-lazy.log" ||
				broke "the lazy-pages server never finished"
			echo "   $(grep -a -o 'lazy-pages: .* in [0-9.]* ms' "$d/img/restore-lazy.log")"
		fi
		t2=$(now_ns)
		wait_for 30 test -s "$d/resumed"
		resumed=$(sed -n '1s/resumed_ns=\([0-9]*\).*/\1/p' "$d/resumed")
		first=$(calc "(${resumed:-0} - $t0) / 1e6")
		all=$(calc "($t2 - $t0) / 1e6")
		echo "   $how: restore command $(calc "($t1 - $t0) / 1e6") ms; the program's first instruction $first ms after the restore started; all memory present after $all ms ($(calc "$LAZY_MIB / 1024 / (($t2 - $t0) / 1e9)" 2) GiB/s)"
		eval "FIRST_$how=$first ALL_$how=$all"
		verdict "$d" "$T"
	done
	rm -rf -- "$d/img"
fi

echo
echo "== results"
echo "iterative migration of $MIGRATE_MIB MiB at 5%/s: ${MIG_ROUNDS:-?} rounds (pages: ${MIG_PAGES:-?}), final dump ${MIG_FINAL:-?} pages, frozen ${MIG_FROZEN:-?} ms (target <= 50 ms), downtime ${MIG_DOWN:-?} ms"
echo "plain dump and restore of the same: frozen ${FROZEN_local:-?} ms, downtime ${DOWN_local:-?} ms; migration/plain: frozen $(ratio "${MIG_FROZEN:-}" "${FROZEN_local:-}"), downtime $(ratio "${MIG_DOWN:-}" "${DOWN_local:-}")"
echo "dump of $MIGRATE_MIB MiB: to a page server over loopback ${GBPS_page_server:-?} GB/s, to the local page cache ${GBPS_local:-?} GB/s (ratio $(ratio "${GBPS_page_server:-}" "${GBPS_local:-}"))"
echo "restore of $LAZY_MIB MiB: first instruction lazy ${FIRST_lazy:-?} ms (target <= 50 ms), plain ${FIRST_plain:-?} ms (lazy/plain $(ratio "${FIRST_lazy:-}" "${FIRST_plain:-}")); all memory present lazy ${ALL_lazy:-?} ms, plain ${ALL_plain:-?} ms"
((BROKEN)) && echo "bench: SOMETHING BROKE (see BROKEN above)"
exit "$BROKEN"
