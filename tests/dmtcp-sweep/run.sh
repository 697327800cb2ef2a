#!/bin/bash
# dmtcp-sweep: the small checkpoint test programs of DMTCP's test suite (dmtcp/dmtcp, test/)
# checkpointed mid-run by stasis. Not part of make test; see README.md for the sources.
#
#   run.sh [NAME...]     no NAME: every test of the table below
#
# For each test: build it from $DMTCP_TESTS/src (once), run it for 5 s without C/R (the
# baseline), then run it again: 2 s, `stasis dump -t ROOT -D DIR --shell-job -o dump.log -v4`
# (plus the test's options), `stasis restore -D DIR --shell-job -d -o restore.log -v4`, 3 s.
# Every test runs under reaper.c (a child subreaper: the root of the dumped tree, so that a
# test whose first process exits still is one tree), in a session of its own, in a work
# directory of its own (LD_LIBRARY_PATH the bin dir; cwd; TMPDIR: $DMTCP_TMP/NAME.b or .c), stdin a FIFO it holds open both ways (reads block
# as under autotest.py's open pipe), stdout and stderr one file, line-buffered (stdbuf -oL:
# most tests print counters with printf and no fflush; the output shows their progress).
# Verdict: ok | DUMPFAIL | RESTFAIL | BAD | KFAIL | SKIP and the reason:
#   BAD: after the restore the tree has fewer processes than before the dump (or a count
#   autotest.py does not allow), or its output stopped growing while the baseline's grew in
#   the same window, or its output after the dump has an error/assert/abort line the
#   baseline's has not. KFAIL: the baseline itself ends with a count autotest.py does not allow.
# Environment: STASIS (the tree's build/stasis), DMTCP_TESTS (/work/dmtcp-tests: src/*.c,
#   bin/, results/NAME/{base.out,out (their last 64 KiB),cr/img.N/{dump,restore}.log}), DMTCP_RUN (2) and
#   DMTCP_AFTER (3) seconds after each restore, DMTCP_CYCLES (1; 2: dump the restored tree
#   again and restore it again, as autotest.py does), DMTCP_TMP (/tmp/dmtcp-sweep), DMTCP_RESULTS ($DMTCP_TESTS/results). Summary: $DMTCP_TESTS/results/summary.tsv.
set -u
here=$(cd "$(dirname "$0")" && pwd)
STASIS=${STASIS:-$(cd "$here/../.." && pwd)/build/stasis}
DT=${DMTCP_TESTS:-/work/dmtcp-tests}
RUN=${DMTCP_RUN:-2}
AFTER=${DMTCP_AFTER:-3}
CYCLES=${DMTCP_CYCLES:-1} # dump+restore cycles (autotest.py does 2)
BIN=$DT/bin
RES=${DMTCP_RESULTS:-$DT/results}
# TMPDIR of a test (short: file2 and shared-memory2 want 3 names of 19 bytes in 100)
TMPROOT=${DMTCP_TMP:-/tmp/dmtcp-sweep}
mkdir -p "$BIN" "$RES"

# NAME|SOURCE|ALLOWED PROCESS COUNTS (autotest.py's)|ARGS|DUMP+RESTORE OPTIONS
# ARGS: words. The count is of live processes below the reaper. (alarm ends itself after 15 s
# of its own time: with two cycles and a loaded machine it may get there; zoo itimers checks
# that a restore keeps an alarm's remaining time.)
TESTS='
dmtcp1|dmtcp1|1||
dmtcp2|dmtcp2|1||
dmtcp3|dmtcp3|1||
dmtcp4|dmtcp4|1||
alarm|alarm|1 0||
sched_test|sched_test|2||
dmtcp5|dmtcp5|2||
gettid|gettid|1||
file1|file1|1||--ghost-limit 1G
file2|file2|1||--ghost-limit 1G
stat|stat|1||
gettimeofday|gettimeofday|1||
sigchild|sigchild|1||
shared-fd1|shared-fd1|2||
shared-fd2|shared-fd2|2||
stale-fd|stale-fd|2||
rlimit-restore|rlimit-restore|1||
rlimit-nofile|rlimit-nofile|2||
procfd1|procfd1|2||
popen1|popen1|1 2 3 4 5||
poll|poll|1||
epoll1|epoll1|2||--tcp-established
epoll2|epoll1|2|--use-epoll-create1|--tcp-established
environ|environ|1||
forkexec|forkexec|2||
vfork1|vfork1|1 2 3 4|(see sweep_one)|
vfork2|vfork1|2 3 4|(see sweep_one)|
realpath|realpath|1||
pthread1|pthread1|1||
pthread2|pthread2|1||
pthread3|pthread2|1|80|
pthread4|pthread4|1||
pthread5|pthread5|1||
waitpid|waitpid|2||
client-server|client-server|2||--tcp-established
shared-memory1|shared-memory1|2||
shared-memory2|shared-memory2|2||
sysv-shm1|sysv-shm1|2||
sysv-shm2|sysv-shm2|2||
sysv-sem|sysv-sem|2||
sysv-msg|sysv-msg|2||
cma|cma|2||
posix-mq1|posix-mq1|2||
pty1|pty1|2||
pty2|pty2|2||
timer1|timer1|1||
clock|clock|1||
inotify1|inotify1|1||
bash|/bin/bash|2|(see sweep_one)|
mremap|mremap|1||
mmap-noreserve|mmap-noreserve|1||
heap-growth|heap-growth|1||
posix-mq2|posix-mq2|2||
timer2|timer2|1||
exec-repeat|exec-repeat|1|a|
pthread_atfork1|pthread_atfork1|2||
dlopen1|dlopen1|1||
'

build() { # SOURCE: bin/SOURCE from src/SOURCE.c or .cpp
	local s=$1
	[ -x "$BIN/$s" ] && [ "$BIN/$s" -nt "$DT/src/$s.c" ] && return 0
	local extra=
	case $s in
	heap-growth) extra=-no-pie ;; # (as DMTCP builds it)
	pthread_atfork1)              # (linked with the library its -DLIB build makes)
		gcc -O1 -g -w -fPIC -shared -DLIB -o "$BIN/libpthread_atfork.so" "$DT/src/$s.c" -pthread || return 1
		extra="-L$BIN -lpthread_atfork" ;;
	dlopen1) # (the two libraries it dlopens in turn, found through LD_LIBRARY_PATH)
		gcc -O1 -g -w -fPIC -shared -DLIB1 -o "$BIN/libdlopen-lib1.so" "$DT/src/$s.c" &&
			gcc -O1 -g -w -fPIC -shared -DLIB2 -o "$BIN/libdlopen-lib2.so" "$DT/src/$s.c" || return 1
		extra=-ldl ;;
	esac
	if [ -f "$DT/src/$s.c" ]; then
		gcc -O1 -g -w -pthread -o "$BIN/$s" "$DT/src/$s.c" $extra -lrt -lutil
	elif [ -f "$DT/src/$s.cpp" ]; then
		g++ -O1 -g -w -pthread -o "$BIN/$s" "$DT/src/$s.cpp" -lrt -lutil
	else
		return 1
	fi
}

# live (not zombie) processes below PID, one pid a line
descendants() {
	ps -e -o pid=,ppid=,stat= | awk -v root="$1" '
		{ pp[$1] = $2; st[$1] = $3 }
		END {
			n = 1; q[1] = root; seen[root] = 1
			for (i = 1; i <= n; i++)
				for (p in pp)
					if (pp[p] == q[i] && !(p in seen)) { seen[p] = 1; q[++n] = p }
			for (i = 2; i <= n; i++) if (st[q[i]] !~ /^Z/) print q[i]
		}'
}
# the number of live processes below the reaper ROOT; their pids are added to $SEEN
count() { descendants "$1" | tee -a "$SEEN" | wc -l; }
killtree() { # ROOT: SIGKILL the root and everything below it, by pid
	local p
	for p in $1 $(descendants "$1"); do kill -KILL "$p" 2>/dev/null; done
}
ipc_ids() { ipcs -q -s -m 2>/dev/null | awk '$2 ~ /^[0-9]+$/ { print $2 }' | sort; }
# Remove the System V objects the test made, and only those (others may be running tests
# too): new since the list in $1, and either a segment whose creator was one of the test's
# processes (seen in $2) or a semaphore set or queue of the keys sysv-sem and sysv-msg use
# (9977, 9978; 9979 a segment).
ipc_clean() {
	local id
	rm -f /dev/mqueue/dmtcp-mq-* # (posix-mq1/2's queues)
	for id in $(comm -13 "$1" <(ipc_ids)); do
		if ipcs -m -p | awk -v id="$id" '$1 == id { print $3 }' | grep -qxF -f "$2" 2>/dev/null ||
			ipcs -m | awk -v id="$id" '$2 == id { print $1 }' | grep -qx 0x000026fb; then
			ipcrm -m "$id" 2>/dev/null
		elif ipcs -s | awk -v id="$id" '$2 == id { print $1 }' | grep -qxE '0x000026f9|0x000026fa'; then
			ipcrm -s "$id" 2>/dev/null
		elif ipcs -q | awk -v id="$id" '$2 == id { print $1 }' | grep -qx 0x000026f9; then
			ipcrm -q "$id" 2>/dev/null
		fi
	done
}
# the first error line of FILE or stdin, in their first and last MiB (file1 writes 30 MB/s,
# all one line)
errors_in() {
	local f=${1:-} t=
	[ -n "$f" ] || { t=$(mktemp) && cat >"$t" && f=$t; } || return
	{ head -c 1048576 "$f"; echo; tail -c 1048576 "$f"; } |
		grep -a -m1 -iE 'error|assert|abort|fail|mismatch|bug' 2>/dev/null | cut -c1-160
	[ -z "$t" ] || rm -f "$t"
}
allowed() { local n=$1 a; for a in $2; do [ "$n" = "$a" ] && return 0; done; return 1; }

start() { # WD TMP PROG [ARG...]: start under the reaper in WD; prints the reaper's pid
	local wd=$1 tmp=$2
	shift 2
	rm -f "$wd/stdin" "$wd/pid"
	rm -rf "$tmp"
	mkdir -p "$tmp"
	mkfifo "$wd/stdin"
	(cd "$wd" && TMPDIR=$tmp LD_LIBRARY_PATH=$BIN exec setsid -f sh -c 'echo $$ >pid; exec "$@"' sh \
		stdbuf -oL -eL "$BIN/reaper" "$@" 0<>"$wd/stdin" >"$wd/out" 2>&1)
	sleep 0.2
	cat "$wd/pid"
}
size() { stat -c %s "$1" 2>/dev/null || echo 0; }

sweep_one() {
	local name=$1 src=$2 counts=$3 args=$4 opts=$5
	local d=$RES/$name prog pid n0 n1 bn0 bn1 s0 s1 bs0 bs1 rc err berr ipc
	rm -rf "$d"
	mkdir -p "$d/base" "$d/cr/img"
	if [ "${src:0:1}" = / ]; then
		prog=$src
		[ -x "$prog" ] || { echo "$name SKIP $prog not installed"; return; }
	else
		build "$src" 2>"$d/build.err" || { echo "$name SKIP does not build: $(head -n1 "$d/build.err")"; return; }
		prog=$BIN/$src
	fi
	# vfork1, vfork2 and bash take arguments with spaces and '|'; others a list of words
	case $name in
	vfork1) set -- 'ls | wc' ;;
	vfork2) set -- 'while true; do date; sleep 1; done' ;;
	bash) set -- --norc -c 'ls; sleep 30; ls' ;;
	*) set -- $args ;;
	esac
	ipc=$d/ipc.before
	ipc_ids >"$ipc"
	SEEN=$d/pids.seen
	: >"$SEEN"

	# baseline: 5 s without C/R
	pid=$(start "$d/base" "$TMPROOT/$name.b" "$prog" "$@")
	sleep "$RUN"
	bn0=$(count "$pid") bs0=$(size "$d/base/out")
	sleep "$AFTER"
	bn1=$(count "$pid") bs1=$(size "$d/base/out")
	killtree "$pid"
	ipc_clean "$ipc" "$SEEN"
	berr=$(errors_in "$d/base/out")
	tail -c 65536 "$d/base/out" >"$d/base.out" 2>/dev/null && rm -f "$d/base/out" # (dmtcp2 writes 100 MB/s)

	# C/R, $CYCLES times (autotest.py: 2); the verdict is of the first cycle that goes wrong
	pid=$(start "$d/cr" "$TMPROOT/$name.c" "$prog" "$@")
	sleep "$RUN"
	local c img cyc
	for c in $(seq "$CYCLES"); do
		img=$d/cr/img.$c
		cyc=$([ "$CYCLES" -gt 1 ] && echo " (cycle $c)")
		mkdir -p "$img"
		n0=$(count "$pid")
		"$STASIS" dump -t "$pid" -D "$img" --shell-job -o dump.log -v4 $opts >"$d/dump.err" 2>&1
		rc=$?
		if [ $rc -ne 0 ]; then
			killtree "$pid"
			ipc_clean "$ipc" "$SEEN"
			echo "$name DUMPFAIL$cyc (exit $rc) $(grep -h -m1 -E 'Error|ERROR|error' "$img/dump.log" "$d/dump.err" | head -n 1 | cut -c1-200)"
			return
		fi
		s0=$(size "$d/cr/out")
		"$STASIS" restore -D "$img" --shell-job -d -o restore.log -v4 $opts >"$d/restore.err" 2>&1
		rc=$?
		if [ $rc -ne 0 ]; then
			killtree "$pid"
			ipc_clean "$ipc" "$SEEN"
			echo "$name RESTFAIL$cyc (exit $rc) $(grep -h -m1 -E 'Error|ERROR|error' "$img/restore.log" "$d/restore.err" | head -n 1 | cut -c1-200)"
			return
		fi
		sleep "$AFTER"
		n1=$(count "$pid") s1=$(size "$d/cr/out")
		[ "$n1" -lt "$n0" ] || ! allowed "$n1" "$counts" && break
		[ "$bs1" -gt "$bs0" ] && [ "$s1" -le "$s0" ] && break
		[ -z "$berr" ] && [ -n "$(tail -c +$((s0 + 1)) "$d/cr/out" | head -c 8388608 | errors_in)" ] && break
	done
	killtree "$pid"
	ipc_clean "$ipc" "$SEEN"
	rm -rf "$TMPROOT/$name.b" "$TMPROOT/$name.c"
	err=$(tail -c +$((s0 + 1)) "$d/cr/out" | head -c 8388608 | errors_in)
	tail -c 65536 "$d/cr/out" >"$d/out" 2>/dev/null && rm -f "$d/cr/out"

	if ! allowed "$bn1" "$counts"; then
		echo "$name KFAIL without C/R the test has $bn1 processes after 5 s (allowed: $counts)${berr:+; $berr}"
	elif [ "$n1" -lt "$n0" ] || ! allowed "$n1" "$counts"; then
		echo "$name BAD$cyc $n0 processes before the dump, $n1 after the restore${err:+; $err}"
	elif [ -n "$err" ] && [ -z "$berr" ]; then
		echo "$name BAD$cyc error after the restore: $err"
	elif [ "$bs1" -gt "$bs0" ] && [ "$s1" -le "$s0" ]; then
		echo "$name BAD$cyc output stopped after the restore ($s0 bytes at the dump, $s1 after ${AFTER} s; baseline $bs0 -> $bs1)"
	else
		echo "$name ok $n1 processes; output $s0 -> $s1 bytes (baseline $bs0 -> $bs1)"
	fi
}

# (rebuilt only when changed: a running test maps it, and a restore checks it is unchanged)
if ! [ "$BIN/reaper" -nt "$here/reaper.c" ]; then
	cc -O2 -Wall -Werror -o "$BIN/reaper.new" "$here/reaper.c" && mv "$BIN/reaper.new" "$BIN/reaper" || exit 1
fi
[ $# -gt 0 ] || set -- $(echo "$TESTS" | cut -d'|' -f1)
: >"$RES/summary.tsv.new"
for t in "$@"; do
	line=$(echo "$TESTS" | grep "^$t|") || { echo "$t SKIP not in the table"; continue; }
	IFS='|' read -r name src counts args opts <<<"$line"
	r=$(sweep_one "$name" "$src" "$counts" "$args" "$opts")
	echo "$r"
	echo "$r" | sed 's/ /\t/; s/ /\t/' >>"$RES/summary.tsv.new"
done
mv "$RES/summary.tsv.new" "$RES/summary.tsv"
