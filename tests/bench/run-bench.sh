#!/bin/bash
# stasis benchmark: checkpoint and restore throughput, measured against this
# machine's own memcpy bandwidth and write() speed, in the same run.
#
#   tests/bench/run-bench.sh [--reference-only]      (`make bench` at the top runs it)
#
# For each image directory (one on a real disk, one on tmpfs) and each scenario:
# start the target, `stasis dump` it (timed), `stasis restore -d` it (timed),
# let the restored target verify itself, and report. References: memcpy of a
# 512 MiB buffer (restore target: >= 60% of it) and plain write() of the same
# amount into the same directory (dump target: >= 60% of it).
#
# The exit status says only whether something broke (a dump or restore failed,
# or a restored program found its state wrong). A missed speed target is
# reported, never fatal.
#
# Environment:
#   STASIS            the binary (default: <repo>/stasis)
#   BENCH_MIB         memory of the memory scenario in MiB (default 1024)
#   BENCH_DISK_DIR    where the on-disk images go (default /var/tmp; must not be tmpfs)
#   BENCH_TMPFS_DIR   where the in-memory images go (default /dev/shm; must be tmpfs)
#   BENCH_SCENARIOS   scenarios to run, space-separated (default: tree1 memory tree100
#                     threads256 tcp10k cow9 fds100x1000 reserve1t; tree1, one small process,
#                     gives the fixed cost of a dump and of a restore)
#   BENCH_VERBOSITY   -v level for stasis (default 3: prints the stats lines)
#   BENCH_TIMEOUT     seconds allowed for each stasis command (default 300)

set -u
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=$HERE/bin
STASIS=${STASIS:-$ROOT/stasis}
MIB=${BENCH_MIB:-1024}
DISK_BASE=${BENCH_DISK_DIR:-/var/tmp}
TMPFS_BASE=${BENCH_TMPFS_DIR:-/dev/shm}
VERBOSITY=${BENCH_VERBOSITY:-3}
CMD_TIMEOUT=${BENCH_TIMEOUT:-300}
read -r -a SCENARIOS <<<"${BENCH_SCENARIOS:-tree1 memory tree100 threads256 tcp10k cow9 fds100x1000 reserve1t}"
TARGET_PCT=60            # dump >= 60% of write(); restore >= 60% of memcpy
MEMCPY_MIB=512
READY_TIMEOUT=120        # seconds for a target to set itself up
VERIFY_TIMEOUT=120       # seconds for a restored target to verify and exit

REFERENCE_ONLY=0
case "${1:-}" in
	--reference-only) REFERENCE_ONLY=1 ;;
	"") ;;
	-h|--help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) echo "usage: $0 [--reference-only]" >&2; exit 2 ;;
esac

# ---------------------------------------------------------------- helpers ---

now_us() { NOW_US=${EPOCHREALTIME/./}; }          # no fork: sets NOW_US
calc() { awk "BEGIN { printf \"%.${2:-2}f\", ($1) }"; }   # calc EXPR [DECIMALS]
ge() { awk "BEGIN { exit !(($1) >= ($2)) }"; }

# One-letter state of a process, X if it does not exist.
proc_state() {
	local s
	{ read -r s <"/proc/$1/stat"; } 2>/dev/null || { echo X; return; }
	s=${s##*) }
	echo "${s%% *}"
}

# True while PID runs (a zombie has exited: nobody may reap restored tasks here).
alive() {
	local st
	st=$(proc_state "$1")
	[ "$st" != X ] && [ "$st" != Z ]
}

# wait_gone PID SECONDS: true once PID has exited.
wait_gone() {
	local pid=$1 deadline
	now_us; deadline=$((NOW_US + $2 * 1000000))
	while alive "$pid"; do
		now_us; ((NOW_US > deadline)) && return 1
		sleep 0.05
	done
	return 0
}

# wait_line FILE REGEX SECONDS PID: true once FILE has a line matching REGEX;
# false on timeout or when PID exits first.
wait_line() {
	local file=$1 re=$2 pid=$4 deadline
	now_us; deadline=$((NOW_US + $3 * 1000000))
	until grep -qE -- "$re" "$file" 2>/dev/null; do
		alive "$pid" || { grep -qE -- "$re" "$file" 2>/dev/null; return; }
		now_us; ((NOW_US > deadline)) && return 1
		sleep 0.05
	done
	return 0
}

# wait_reaped PID SECONDS: true once PID is gone from /proc (free for a restore).
wait_reaped() {
	local deadline
	now_us; deadline=$((NOW_US + $2 * 1000000))
	while [ -e "/proc/$1" ]; do
		now_us; ((NOW_US > deadline)) && return 1
		sleep 0.02
	done
	return 0
}

# PIDs we started (or restored) that may still run; killed on exit.
declare -A LIVE_PIDS=()
track() { LIVE_PIDS[$1]=1; }
untrack() { unset "LIVE_PIDS[$1]"; }

# stop_all: kill every PID we started that still runs, reap it when it is ours.
stop_all() {
	local pid
	for pid in "${!LIVE_PIDS[@]}"; do
		alive "$pid" && kill -KILL "$pid" 2>/dev/null
		wait_gone "$pid" 10 || echo "bench: warning: PID $pid did not die" >&2
		wait "$pid" 2>/dev/null
		untrack "$pid"
	done
}

CLEAN_DIRS=()
SCRATCH=
KEEP_SCRATCH=0
cleanup() {
	local d
	stop_all
	for d in "${CLEAN_DIRS[@]}"; do
		[ -n "$d" ] && rm -rf -- "$d"
	done
	CLEAN_DIRS=()
	if [ -n "$SCRATCH" ]; then
		if ((KEEP_SCRATCH)); then
			echo "bench: logs of the failed runs kept in $SCRATCH"
		else
			rm -rf -- "$SCRATCH"
		fi
	fi
}
trap cleanup EXIT
trap 'echo; echo "bench: interrupted"; exit 130' INT TERM HUP

show_tail() {   # show_tail FILE TITLE
	[ -s "$1" ] || return 0
	echo "   --- $2 (last lines of $1) ---"
	tail -n 20 -- "$1" | sed 's/^/   | /'
}

# ------------------------------------------------------------- scenarios ---
#
# A scenario is one function, scenario_NAME, called in two phases:
#
#   scenario_NAME start WORK   Start the program(s) to checkpoint, in the
#                              background, and wait until they are set up.
#                              WORK is a scratch directory for logs. Set:
#                                S_PID    root task of the tree to dump
#                                S_CHILD  PID of our direct child (reaped after dump)
#                                S_DESC   one line saying what it is
#                              and track every PID started. Return non-zero
#                              (with S_VERDICT saying why) on failure.
#                              Optional: S_FDS (fds in the tree: the many-fds table)
#                              or S_TABLE=reserve (the reservation table), tasks (the
#                              tasks table).
#   scenario_NAME check WORK   After restore: make the restored program(s)
#                              verify their state and exit. Set S_VERDICT to
#                              "PASS ..." or "FAIL ..."; return 0 only on PASS.
#
# To add a scenario, write the function and name it in BENCH_SCENARIOS (or the
# default list above). The same dump/restore/report code runs every scenario.

scenario_memory() {
	local work=$2 i
	case $1 in
	start)
		S_DESC="1 process, $MIB MiB private anonymous memory, every byte non-zero"
		start_target "$work" memtarget "$MIB" "$work/verdict" || return 1
		S_PID=$(sed -n 's/^READY pid=\([0-9]*\).*/\1/p' "$work/target.log" | head -n 1)
		if [ "$S_PID" != "$S_CHILD" ]; then
			S_VERDICT="FAIL: target says PID '$S_PID', started as $S_CHILD"
			return 1
		fi
		;;
	check)
		rm -f -- "$work/verdict"
		# Let it settle back into sigwaitinfo() (state S) first, 10 s at most.
		for ((i = 0; i < 200; i++)); do
			[ "$(proc_state "$S_PID")" = S ] && break
			sleep 0.05
		done
		kill -TERM "$S_PID" 2>/dev/null
		if ! wait_gone "$S_PID" "$VERIFY_TIMEOUT"; then
			S_VERDICT="FAIL: restored target did not exit within ${VERIFY_TIMEOUT}s of SIGTERM"
			return 1
		fi
		untrack "$S_PID"
		if [ ! -s "$work/verdict" ]; then
			S_VERDICT="FAIL: restored target exited without a verdict (killed by SIGTERM? signal mask not restored?)"
			show_tail "$work/target.log" "target output"
			return 1
		fi
		S_VERDICT=$(head -n 1 -- "$work/verdict")
		[[ $S_VERDICT == "PASS pid=$S_PID "* ]] || {
			[[ $S_VERDICT == PASS* ]] && S_VERDICT="FAIL: wrong PID: $S_VERDICT"
			return 1
		}
		;;
	esac
}

# start_target WORK PROGRAM ARG...: tests/bench's PROGRAM ARG... started (S_PID), once it
# said READY; 1 and S_VERDICT if it did not
start_target() {
	local work=$1 prog=$2
	shift 2
	"$BIN/$prog" "$@" </dev/null >>"$work/target.log" 2>&1 &
	S_CHILD=$!
	disown "$S_CHILD"
	track "$S_CHILD"
	if ! wait_line "$work/target.log" '^READY pid=' "$READY_TIMEOUT" "$S_CHILD"; then
		S_VERDICT="FAIL: target did not get ready"
		show_tail "$work/target.log" "target output"
		return 1
	fi
	S_PID=$S_CHILD
}

# Many tasks: scenario_tasks KIND N PHASE WORK (tree: N processes; threads: N threads).
scenario_tasks() {
	local kind=$1 n=$2 phase=$3 work=$4
	case $phase in
	start)
		S_DESC="$n $([ "$kind" = tree ] && echo processes || echo threads in one process), each checking its own data"
		S_TASKS=$n S_TABLE=tasks
		start_target "$work" tasktarget "$kind" "$n" "$work/verdict" || return 1
		;;
	check)
		rm -f -- "$work/verdict"
		kill -TERM "$S_PID" 2>/dev/null
		if ! wait_gone "$S_PID" "$VERIFY_TIMEOUT"; then
			S_VERDICT="FAIL: restored target did not exit within ${VERIFY_TIMEOUT}s of SIGTERM"
			return 1
		fi
		untrack "$S_PID"
		S_VERDICT=$(head -n 1 -- "$work/verdict" 2>/dev/null)
		[[ $S_VERDICT == "PASS pid=$S_PID "* ]] || { S_VERDICT="FAIL: ${S_VERDICT:-no verdict}"; return 1; }
		;;
	esac
}
# TCP connections: scenario_tcp N PHASE WORK (N established connections over loopback, both
# ends in the tree: the clients' in its root, the servers' in the root's child, so that each
# process stays under the hard limit of open files; bytes in flight each way; dumped with
# --tcp-established). After the restore every end checks its bytes and one more message goes
# each way on every connection.
scenario_tcp() {
	local n=$1 phase=$2 work=$3
	case $phase in
	start)
		S_DESC="$n established TCP connections (loopback; clients in one process, servers in its child; 100 bytes unread each way)"
		S_DUMP_ARGS=(--tcp-established)
		S_TASKS=2 S_CONNS=$n
		start_target "$work" tcptarget "$n" "$work/verdict" || return 1
		;;
	check)
		rm -f -- "$work/verdict"
		kill -TERM "$S_PID" 2>/dev/null
		if ! wait_gone "$S_PID" "$VERIFY_TIMEOUT"; then
			S_VERDICT="FAIL: restored target did not exit within ${VERIFY_TIMEOUT}s of SIGTERM"
			return 1
		fi
		untrack "$S_PID"
		S_VERDICT=$(head -n 1 -- "$work/verdict" 2>/dev/null)
		[[ $S_VERDICT == "PASS pid=$S_PID "* ]] || { S_VERDICT="FAIL: ${S_VERDICT:-no verdict}"; return 1; }
		;;
	esac
}
# Memory shared copy-on-write: scenario_cow N MIB PHASE WORK (a root fills MIB MiB, then forks
# N-1 children that keep it). Before the check, the tree's memory: the sum of Rss and of Pss
# (smaps_rollup) over its processes; shared after restore, the Pss sum stays near MIB.
scenario_cow() {
	local n=$1 mib=$2 phase=$3 work=$4 pid kids rss=0 pss=0 r p
	case $phase in
	start)
		S_DESC="1 process filling $mib MiB and $((n - 1)) children forked after, sharing it copy-on-write"
		S_TASKS=$n
		start_target "$work" tasktarget cow "$n" "$work/verdict" "$mib" || return 1
		;;
	check)
		kids=$(cat "/proc/$S_PID/task/$S_PID/children" 2>/dev/null)
		for pid in "$S_PID" $kids; do
			r=$(sed -n 's/^Rss: *\([0-9]*\) kB/\1/p' "/proc/$pid/smaps_rollup" 2>/dev/null)
			p=$(sed -n 's/^Pss: *\([0-9]*\) kB/\1/p' "/proc/$pid/smaps_rollup" 2>/dev/null)
			rss=$((rss + ${r:-0})) pss=$((pss + ${p:-0}))
		done
		echo "   memory after restore: Rss $((rss / 1024)) MiB, Pss $((pss / 1024)) MiB summed over $((1 + $(wc -w <<<"$kids"))) processes"
		scenario_tasks tree "$n" check "$work"
		;;
	esac
}
# Many processes x many fds: scenario_fds N M PHASE WORK (a root opens M fds, a quarter each
# pipes, unix socket pairs, a file opened again and again and eventfds, and makes a tree of N
# processes that inherit them; each also holds two files of its own and pending signals).
# The figure is the frozen time per thousand fds: an fd of an open file met before must cost
# one identity check, not a dump of its own.
scenario_fds() {
	local n=$1 m=$2 phase=$3 work=$4
	case $phase in
	start)
		S_DESC="$n processes inheriting $m fds each (pipes, unix pairs, a file opened again and again, eventfds), pending signals"
		S_TASKS=$n
		start_target "$work" fdtarget "$n" "$m" "$work/verdict" "$work/fdtarget.data" || return 1
		S_FDS=$(sed -n 's/^READY .* fds=\([0-9]*\).*/\1/p' "$work/target.log" | head -n 1)
		;;
	check) scenario_tasks tree "$n" check "$work" ;;
	esac
}
# A runtime's address space reservation: scenario_reserve PHASE WORK (1 TiB PROT_NONE with three
# 64 KiB windows of data, and a child that inherits it). Dump and restore must not walk its
# 2^28 pages (the pagemap of every page at dump; a restored child walking its inherited copy).
scenario_reserve() {
	local phase=$1 work=$2
	case $phase in
	start)
		S_DESC="1 TiB PROT_NONE reservation with three 64 KiB windows of data, and a child inheriting it"
		S_TASKS=2 S_TABLE=reserve
		start_target "$work" reservetarget "$work/verdict" || return 1
		;;
	check) scenario_tasks tree 2 check "$work" ;;
	esac
}
scenario_fds100x1000() { scenario_fds 100 1000 "$@"; }
scenario_reserve1t() { scenario_reserve "$@"; }
scenario_cow9() { scenario_cow 9 256 "$@"; }
scenario_tcp10k() { scenario_tcp 10000 "$@"; }
scenario_tree1() { scenario_tasks tree 1 "$@"; }
scenario_tree100() { scenario_tasks tree 100 "$@"; }
scenario_threads256() { scenario_tasks threads 256 "$@"; }

# ------------------------------------------------------------ references ---

MEMCPY_GBPS=
measure_memcpy() {
	local out
	out=$("$BIN/memcpy-bw" "$MEMCPY_MIB" 7) || { echo "bench: memcpy-bw failed" >&2; return 1; }
	echo "   $(head -n 1 <<<"$out")"
	MEMCPY_GBPS=$(sed -n 's/^memcpy_gbps=//p' <<<"$out")
	[ -n "$MEMCPY_GBPS" ]
}

WRITE_GBPS=
measure_write() {   # measure_write DIR
	local out
	out=$("$BIN/write-bw" "$1" "$MIB" 4 3) || { echo "bench: write-bw in $1 failed" >&2; return 1; }
	echo "   $(head -n 1 <<<"$out")"
	WRITE_GBPS=$(sed -n 's/^write_gbps=//p' <<<"$out")
	[ -n "$WRITE_GBPS" ]
}

# ---------------------------------------------------------- one dump/restore

# Result rows, filled by run_case.
NROWS=0
R_SCN=() R_WHERE=() R_OK=() R_VERDICT=() R_FROZEN=() R_DUMP=() R_RESTORE=()
R_BYTES=() R_WRITE=() R_TASKS=() R_CONNS=() R_FDS=() R_TABLE=()

# stat_field LINE NAME: the value of NAME=... in a stats line, empty if absent.
stat_field() { sed -n "s/.*[[:space:]]$2=\([0-9][0-9.]*\).*/\1/p" <<<" $1" | head -n 1; }

# run_case SCENARIO WHERE IMGDIR WRITE_GBPS: one row of the table.
run_case() {
	local rc
	run_case_body "$@"
	rc=$?
	((rc)) && stop_all   # a failed case leaves nothing running
	rm -rf -- "$3"       # the images (its logs were copied to the scratch dir)
	return "$rc"
}

run_case_body() {
	local scn=$1 where=$2 imgdir=$3 write_gbps=$4
	local work rc t0 dump_wall_ms rest_wall_ms stats frozen dump_ms rest_ms bytes f
	local row=$NROWS
	NROWS=$((NROWS + 1))
	R_SCN[row]=$scn R_WHERE[row]=$where R_OK[row]=0 R_WRITE[row]=$write_gbps
	R_FROZEN[row]=n/a R_DUMP[row]='' R_RESTORE[row]='' R_BYTES[row]=''

	work=$(mktemp -d "$SCRATCH/$scn-$where.XXXXXX")
	mkdir -p -- "$imgdir"
	S_PID='' S_CHILD='' S_DESC='' S_VERDICT='' S_TASKS=1 S_CONNS=0 S_FDS=0 S_TABLE=''
	S_DUMP_ARGS=()

	echo
	echo "-- $scn, images on $where: $imgdir"
	if ! "scenario_$scn" start "$work"; then
		R_VERDICT[row]=${S_VERDICT:-FAIL: scenario did not start}
		echo "   ${R_VERDICT[row]}"
		return 1
	fi
	echo "   target: $S_DESC (PID $S_PID)"

	# --- dump
	now_us; t0=$NOW_US
	timeout -k 10 "$CMD_TIMEOUT" "$STASIS" dump -t "$S_PID" -D "$imgdir" "${S_DUMP_ARGS[@]}" \
		-o dump.log -v"$VERBOSITY" >"$work/dump.out" 2>&1
	rc=$?
	now_us; dump_wall_ms=$(calc "($NOW_US - $t0) / 1000" 1)
	cp -- "$imgdir/dump.log" "$work/dump.log" 2>/dev/null
	if ((rc != 0)); then
		R_VERDICT[row]="FAIL: stasis dump exited with status $rc$( ((rc == 124)) && echo " (timeout)")"
		echo "   ${R_VERDICT[row]}"
		if alive "$S_PID"; then echo "   (the target survived the failed dump, as it should)"
		else echo "   (the target did NOT survive the failed dump)"; fi
		show_tail "$work/dump.out" "dump output"
		show_tail "$work/dump.log" "dump log"
		return 1
	fi
	if ! wait_gone "$S_PID" 10; then
		R_VERDICT[row]="FAIL: target still running after stasis dump (it should be killed)"
		echo "   ${R_VERDICT[row]}"
		return 1
	fi
	wait "$S_CHILD" 2>/dev/null   # make sure it is reaped, or its PID stays taken
	untrack "$S_CHILD"
	if ! wait_reaped "$S_CHILD" 10; then
		R_VERDICT[row]="FAIL: PID $S_CHILD not reaped after the dump; cannot restore it"
		echo "   ${R_VERDICT[row]}"
		return 1
	fi
	echo "   dump: ${dump_wall_ms} ms wall; images: $(cd "$imgdir" && ls ./*.img | wc -l) files, $(du -sm "$imgdir" | cut -f1) MiB"

	# --- restore
	now_us; t0=$NOW_US
	timeout -k 10 "$CMD_TIMEOUT" "$STASIS" restore -D "$imgdir" -d \
		-o restore.log -v"$VERBOSITY" >"$work/restore.out" 2>&1
	rc=$?
	now_us; rest_wall_ms=$(calc "($NOW_US - $t0) / 1000" 1)
	cp -- "$imgdir/restore.log" "$work/restore.log" 2>/dev/null
	alive "$S_PID" && track "$S_PID"   # ours again, if it came back (even half-way)
	if ((rc != 0)); then
		R_VERDICT[row]="FAIL: stasis restore exited with status $rc$( ((rc == 124)) && echo " (timeout)")"
		echo "   ${R_VERDICT[row]}"
		alive "$S_PID" && echo "   (PID $S_PID runs anyway: a half-alive restore)"
		show_tail "$work/restore.out" "restore output"
		show_tail "$work/restore.log" "restore log"
		return 1
	fi
	if ! alive "$S_PID"; then
		R_VERDICT[row]="FAIL: stasis restore -d succeeded but PID $S_PID is not running (state $(proc_state "$S_PID"))"
		echo "   ${R_VERDICT[row]}"
		show_tail "$work/restore.log" "restore log"
		show_tail "$work/target.log" "target output"
		return 1
	fi
	echo "   restore: ${rest_wall_ms} ms wall; PID $S_PID runs again"

	# --- the restored program checks itself
	if ! "scenario_$scn" check "$work"; then
		R_VERDICT[row]=${S_VERDICT:-FAIL}
		echo "   verdict: ${R_VERDICT[row]}"
		return 1
	fi
	R_VERDICT[row]=$S_VERDICT
	echo "   verdict: $S_VERDICT"

	# --- figures: the engine's own stats when it prints them, else wall clock
	stats=$(cat -- "$work/dump.log" "$work/dump.out" 2>/dev/null | grep -a 'dump stats:' | tail -n 1)
	frozen=$(stat_field "$stats" frozen_ms)
	dump_ms=$(stat_field "$stats" total_ms)
	bytes=$(stat_field "$stats" image_bytes)
	stats=$(cat -- "$work/restore.log" "$work/restore.out" 2>/dev/null | grep -a 'restore stats:' | tail -n 1)
	rest_ms=$(stat_field "$stats" total_ms)
	if [ -z "$bytes" ]; then
		bytes=0
		for f in "$imgdir"/*.img; do
			[ -f "$f" ] && bytes=$((bytes + $(stat -c %s -- "$f")))
		done
	fi
	{ [ -n "$dump_ms" ] && ge "$dump_ms" 0.001; } || dump_ms=$dump_wall_ms
	{ [ -n "$rest_ms" ] && ge "$rest_ms" 0.001; } || rest_ms=$rest_wall_ms
	R_FROZEN[row]=${frozen:-n/a} R_DUMP[row]=$dump_ms R_RESTORE[row]=$rest_ms R_BYTES[row]=$bytes
	R_TASKS[row]=$S_TASKS R_CONNS[row]=$S_CONNS R_FDS[row]=${S_FDS:-0} R_TABLE[row]=$S_TABLE
	((R_FDS[row] > 0)) && R_TABLE[row]=fds
	R_OK[row]=1
	return 0
}

# ------------------------------------------------------------------- main ---

echo "stasis bench: $(uname -r), $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"

env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s --no-print-directory -C "$HERE" || { echo "bench: cannot build the bench programs" >&2; exit 1; }
SCRATCH=$(mktemp -d /tmp/stasis-bench-logs.XXXXXX)

if ((!REFERENCE_ONLY)); then
	if [ "$(id -u)" != 0 ]; then
		echo "bench: needs root (ptrace, clone3 with set_tid)" >&2
		exit 1
	fi
	if [ ! -x "$STASIS" ]; then
		echo "bench: no stasis binary at $STASIS (run make)" >&2
		exit 1
	fi
	for scn in "${SCENARIOS[@]}"; do
		declare -F "scenario_$scn" >/dev/null || { echo "bench: unknown scenario '$scn'" >&2; exit 2; }
	done
fi

echo
echo "== reference: memcpy"
measure_memcpy || exit 1

BROKEN=0
WHERES=() WHERE_WRITE=() WHERE_DIR=() WHERE_FS=()
for spec in "disk:$DISK_BASE" "tmpfs:$TMPFS_BASE"; do
	where=${spec%%:*} base=${spec#*:}
	fs=$(stat -f -c %T -- "$base" 2>/dev/null) || { echo; echo "== $where: $base does not exist, skipped"; continue; }
	if [ "$where" = disk ] && { [ "$fs" = tmpfs ] || [ "$fs" = ramfs ]; }; then
		echo; echo "== $where: $base is $fs, not a disk: skipped (set BENCH_DISK_DIR)"; continue
	fi
	if [ "$where" = tmpfs ] && [ "$fs" != tmpfs ]; then
		echo; echo "== $where: $base is $fs, not tmpfs: skipped (set BENCH_TMPFS_DIR)"; continue
	fi
	avail_kib=$(df -P -k -- "$base" | awk 'NR == 2 { print $4 }')
	need_kib=$((MIB * 1024 * 12 / 10 + 65536))
	if [ -z "$avail_kib" ] || ((avail_kib < need_kib)); then
		echo; echo "== $where: $base has ${avail_kib:-?} KiB free, needs $need_kib: skipped"; continue
	fi

	rundir=$(mktemp -d "$base/stasis-bench.XXXXXX") || { BROKEN=1; continue; }
	CLEAN_DIRS+=("$rundir")
	echo
	echo "== $where: $rundir ($fs)"
	measure_write "$rundir" || { BROKEN=1; continue; }
	WHERES+=("$where") WHERE_WRITE+=("$WRITE_GBPS") WHERE_DIR+=("$rundir") WHERE_FS+=("$fs")
done

if ((REFERENCE_ONLY)); then
	echo
	echo "reference only: memcpy ${MEMCPY_GBPS} GB/s$(for i in "${!WHERES[@]}"; do
		printf '; write() to %s %s GB/s' "${WHERES[i]}" "${WHERE_WRITE[i]}"; done)"
	exit "$BROKEN"
fi

for i in "${!WHERES[@]}"; do
	for scn in "${SCENARIOS[@]}"; do
		run_case "$scn" "${WHERES[i]}" "${WHERE_DIR[i]}/$scn" "${WHERE_WRITE[i]}" || BROKEN=1
	done
	rm -rf -- "${WHERE_DIR[i]}"
done

# ----------------------------------------------------------------- report ---

echo
# rows of the per-connection and per-task tables (the others, and failures, in the first)
NCONNROWS=0 NTASKROWS=0 NFDROWS=0 NRESROWS=0
for ((r = 0; r < NROWS; r++)); do
	((R_OK[r])) || continue
	if [ "${R_TABLE[r]}" = fds ]; then NFDROWS=$((NFDROWS + 1))
	elif [ "${R_TABLE[r]}" = reserve ]; then NRESROWS=$((NRESROWS + 1))
	elif ((R_CONNS[r] > 0)); then NCONNROWS=$((NCONNROWS + 1))
	elif ((R_TASKS[r] > 1)) || [ "${R_TABLE[r]}" = tasks ]; then NTASKROWS=$((NTASKROWS + 1)); fi
done
echo "== results (GB/s = 1e9 bytes/s; dump vs write() to the same directory, restore vs memcpy ${MEMCPY_GBPS} GB/s)"
((NROWS > NCONNROWS + NTASKROWS + NFDROWS + NRESROWS)) &&
	printf '%-10s %-6s %-7s %9s %9s %10s %10s  %-24s %s\n' \
		scenario images verdict frozen_ms dump_ms restore_ms image_MiB "dump GB/s (vs write)" "restore GB/s (vs memcpy)"
MET_ALL=1 NMEASURED=0
for ((r = 0; r < NROWS; r++)); do
	if ((!R_OK[r])); then
		v=${R_VERDICT[r]#FAIL}; v=${v#:}
		printf '%-10s %-6s %-7s %s\n' "${R_SCN[r]}" "${R_WHERE[r]}" FAIL "${v# }"
		continue
	fi
	b=${R_BYTES[r]}
	if ((R_TASKS[r] > 1 || R_CONNS[r] > 0)) || [ -n "${R_TABLE[r]}" ]; then
		continue # in the per-task, per-connection, many-fds or reservation table below
	fi
	NMEASURED=$((NMEASURED + 1))
	dgbps=$(calc "$b / (${R_DUMP[r]} * 1e6)")
	rgbps=$(calc "$b / (${R_RESTORE[r]} * 1e6)")
	dpct=$(calc "100 * $dgbps / ${R_WRITE[r]}" 0)
	rpct=$(calc "100 * $rgbps / $MEMCPY_GBPS" 0)
	if ge "$dpct" "$TARGET_PCT"; then dmet=met; else dmet="not met"; MET_ALL=0; fi
	if ge "$rpct" "$TARGET_PCT"; then rmet=met; else rmet="not met"; MET_ALL=0; fi
	printf '%-10s %-6s %-7s %9s %9s %10s %10s  %-24s %s\n' \
		"${R_SCN[r]}" "${R_WHERE[r]}" PASS "${R_FROZEN[r]}" "${R_DUMP[r]}" "${R_RESTORE[r]}" \
		"$(calc "$b / 1048576" 1)" \
		"$dgbps (${dpct}% $dmet)" "$rgbps (${rpct}% $rmet)"
done
if ((NCONNROWS)); then
	echo
	echo "== many connections (times per connection = total / connections)"
	printf '%-12s %-6s %-7s %6s %9s %9s %10s %14s %14s\n' scenario images verdict conns frozen_ms \
		dump_ms restore_ms dump_us/conn restore_us/conn
	for ((r = 0; r < NROWS; r++)); do
		((R_OK[r])) && ((R_CONNS[r] > 0)) || continue
		printf '%-12s %-6s %-7s %6s %9s %9s %10s %14s %14s\n' "${R_SCN[r]}" "${R_WHERE[r]}" PASS \
			"${R_CONNS[r]}" "${R_FROZEN[r]}" "${R_DUMP[r]}" "${R_RESTORE[r]}" \
			"$(calc "1000 * ${R_DUMP[r]} / ${R_CONNS[r]}" 1)" "$(calc "1000 * ${R_RESTORE[r]} / ${R_CONNS[r]}" 1)"
	done
fi
if ((NTASKROWS)); then
	echo
	echo "== tasks (times per task = total / tasks; one process: the fixed cost of a dump and a restore)"
	printf '%-12s %-6s %-7s %6s %9s %9s %10s %14s %14s\n' scenario images verdict tasks frozen_ms \
		dump_ms restore_ms dump_ms/task restore_ms/task
	for ((r = 0; r < NROWS; r++)); do
		((R_OK[r])) && ((R_CONNS[r] == 0)) || continue
		((R_TASKS[r] > 1)) && [ -z "${R_TABLE[r]}" ] || [ "${R_TABLE[r]}" = tasks ] || continue
		printf '%-12s %-6s %-7s %6s %9s %9s %10s %14s %14s\n' "${R_SCN[r]}" "${R_WHERE[r]}" PASS \
			"${R_TASKS[r]}" "${R_FROZEN[r]}" "${R_DUMP[r]}" "${R_RESTORE[r]}" \
			"$(calc "${R_DUMP[r]} / ${R_TASKS[r]}" 3)" "$(calc "${R_RESTORE[r]} / ${R_TASKS[r]}" 3)"
	done
fi
if ((NFDROWS)); then
	echo
	echo "== many processes x many fds (frozen time per thousand fds = frozen_ms * 1000 / fds)"
	printf '%-12s %-6s %-7s %6s %7s %9s %9s %10s %16s\n' scenario images verdict tasks fds frozen_ms \
		dump_ms restore_ms frozen_ms/1000fds
	for ((r = 0; r < NROWS; r++)); do
		((R_OK[r])) && [ "${R_TABLE[r]}" = fds ] || continue
		printf '%-12s %-6s %-7s %6s %7s %9s %9s %10s %16s\n' "${R_SCN[r]}" "${R_WHERE[r]}" PASS \
			"${R_TASKS[r]}" "${R_FDS[r]}" "${R_FROZEN[r]}" "${R_DUMP[r]}" "${R_RESTORE[r]}" \
			"$( [ "${R_FROZEN[r]}" = n/a ] && echo n/a || calc "1000 * ${R_FROZEN[r]} / ${R_FDS[r]}" 1)"
	done
fi
if ((NRESROWS)); then
	echo
	echo "== address space reservation (1 TiB PROT_NONE, a child inheriting it: no walk of its pages)"
	printf '%-12s %-6s %-7s %9s %9s %10s\n' scenario images verdict frozen_ms dump_ms restore_ms
	for ((r = 0; r < NROWS; r++)); do
		((R_OK[r])) && [ "${R_TABLE[r]}" = reserve ] || continue
		printf '%-12s %-6s %-7s %9s %9s %10s\n' "${R_SCN[r]}" "${R_WHERE[r]}" PASS \
			"${R_FROZEN[r]}" "${R_DUMP[r]}" "${R_RESTORE[r]}"
	done
fi
echo
for i in "${!WHERES[@]}"; do
	echo "reference: write() to ${WHERES[i]} (${WHERE_FS[i]}) ${WHERE_WRITE[i]} GB/s; memcpy ${MEMCPY_GBPS} GB/s"
done
echo "targets: dump >= ${TARGET_PCT}% of write() speed to the same directory, restore >= ${TARGET_PCT}% of memcpy bandwidth$( ((NMEASURED)) && ((MET_ALL)) && echo ": all met")"
echo "(frozen_ms, dump_ms, restore_ms come from stasis' own stats lines when it prints them; otherwise dump/restore are wall-clock times around the commands and frozen is n/a)"

if ((BROKEN)); then
	KEEP_SCRATCH=1
	echo
	echo "bench: SOMETHING BROKE (see FAIL above)"
	exit 1
fi
exit 0
