#!/bin/bash
# make demo: checkpoint a running program with stasis, let it die, bring it
# back, and check that it carries on where it stopped.
#
# The program (tests/demo/counter.c) writes "pid P count N" to a log file every
# 0.2 s and keeps N only in memory. After `stasis dump` and `stasis restore`
# the same PID must go on counting from N+1. Exits non-zero if it does not.
#
# Environment: STASIS (default <repo>/stasis), CC (default cc).

set -u
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
STASIS=${STASIS:-$ROOT/stasis}
CC=${CC:-cc}

if [ -t 1 ]; then B=$'\033[1m' G=$'\033[32m' R=$'\033[31m' N=$'\033[0m'; else B='' G='' R='' N=''; fi
step() { printf '\n%s%s%s\n' "$B" "$*" "$N"; }
say() { printf '    %s\n' "$*"; }
cmd() { printf '    %s$ %s%s\n' "$B" "$*" "$N"; }
indent() { sed 's/^/      /'; }

# A process that exited but was not reaped (restored tasks belong to PID 1,
# which may not reap) counts as gone.
alive() {
	local s
	{ read -r s <"/proc/$1/stat"; } 2>/dev/null || return 1
	s=${s##*) }
	s=${s%% *}
	[ "$s" != Z ] && [ "$s" != X ]
}
wait_gone() {   # wait_gone PID TENTHS_OF_SECONDS
	local i
	for ((i = 0; i < $2; i++)); do alive "$1" || return 0; sleep 0.1; done
	! alive "$1"
}
lines() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }

PID=
OURS=0          # 1 while PID is a counter we started or restored
DEMO=
KEEP=0
cleanup() {
	if ((OURS)) && [ -n "$PID" ] && alive "$PID"; then
		kill -KILL "$PID" 2>/dev/null
		wait_gone "$PID" 50
	fi
	if [ -n "$DEMO" ]; then
		if ((KEEP)); then echo "    (files kept for a look: $DEMO)"; else rm -rf -- "$DEMO"; fi
	fi
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted"; exit 130' INT TERM HUP

fail() {
	printf '\n%sDEMO FAILED:%s %s\n' "$R" "$N" "$*"
	KEEP=1
	exit 1
}
show_log() {   # show_log FILE: the end of a stasis log, after a failure
	[ -s "$1" ] || return 0
	say "last lines of $1:"
	tail -n 15 -- "$1" | indent
}

# ------------------------------------------------------------------------

echo "${B}stasis demo: checkpoint a running program, let it die, bring it back${N}"

[ "$(id -u)" = 0 ] || fail "stasis needs root (ptrace, clone3 with set_tid); run as root"
[ -x "$STASIS" ] || fail "no stasis binary at $STASIS (run make)"

DEMO=$(mktemp -d /tmp/stasis-demo.XXXXXX)
IMG=$DEMO/images
LOG=$DEMO/counter.log
mkdir -p "$IMG"

step "1. Build the counter program (tests/demo/counter.c)"
say "It appends \"pid P count N\" to a log file every 0.2 s; N lives only in its memory."
"$CC" -std=gnu11 -Wall -Wextra -Werror -O2 -o "$DEMO/counter" "$HERE/demo/counter.c" ||
	fail "cannot build the counter"

step "2. Start it and let it count"
"$DEMO/counter" "$LOG" </dev/null >>"$DEMO/counter.err" 2>&1 &
PID=$!
disown "$PID"   # bash reaps it quietly when the dump ends it
OURS=1
for ((i = 0; i < 50; i++)); do [ "$(lines "$LOG")" -ge 1 ] && break; alive "$PID" || break; sleep 0.1; done
[ "$(lines "$LOG")" -ge 1 ] || { cat "$DEMO/counter.err" 2>/dev/null; fail "the counter did not start"; }
say "counter runs as PID $PID, writing to $LOG"
sleep 2
say "after 2 seconds, the log ends with:"
tail -n 3 "$LOG" | indent

step "3. Checkpoint it: stasis dump (this also ends the process)"
cmd "stasis dump -t $PID -D $IMG -o dump.log -v4"
t0=${EPOCHREALTIME/./}
timeout -k 5 60 "$STASIS" dump -t "$PID" -D "$IMG" -o dump.log -v4 >"$DEMO/dump.out" 2>&1
rc=$?
t1=${EPOCHREALTIME/./}
if ((rc != 0)); then
	indent <"$DEMO/dump.out"
	show_log "$IMG/dump.log"
	alive "$PID" && say "(the counter survived the failed dump and still runs)"
	fail "stasis dump exited with status $rc"
fi
wait_gone "$PID" 50 || fail "PID $PID still runs after the dump; it should have been ended"
for ((i = 0; i < 50; i++)); do [ -e "/proc/$PID" ] || break; sleep 0.1; done
[ -e "/proc/$PID" ] && fail "PID $PID was not reaped after the dump; it cannot be restored"
OURS=0
say "done in $(( (t1 - t0) / 1000 )) ms. The images ($(du -sh "$IMG" | cut -f1) in all):"
(cd "$IMG" && echo *.img) | fold -s -w 72 | sed "s/ *$//" | indent
say "Is PID $PID still there?  $(if alive "$PID"; then echo yes; else echo "no: the process is gone."; fi)"

LAST_LINE=$(tail -n 1 "$LOG")
LAST=${LAST_LINE##* }
BEFORE=$(lines "$LOG")
[[ $LAST =~ ^[0-9]+$ ]] || fail "cannot read the last count from: $LAST_LINE"
sleep 1
[ "$(lines "$LOG")" = "$BEFORE" ] || fail "the log grew while the counter should be dead"
say "One second later the log still ends at count $LAST: nothing is counting."

step "4. Restore it: stasis restore -d (detach: the program lives on by itself)"
cmd "stasis restore -D $IMG -d -o restore.log -v4"
t0=${EPOCHREALTIME/./}
timeout -k 5 60 "$STASIS" restore -D "$IMG" -d -o restore.log -v4 >"$DEMO/restore.out" 2>&1
rc=$?
t1=${EPOCHREALTIME/./}
alive "$PID" && OURS=1
if ((rc != 0)); then
	indent <"$DEMO/restore.out"
	show_log "$IMG/restore.log"
	fail "stasis restore exited with status $rc"
fi
alive "$PID" || { show_log "$IMG/restore.log"; fail "restore succeeded but PID $PID is not running"; }
say "done in $(( (t1 - t0) / 1000 )) ms. Is PID $PID there again?  yes:"
ps -o pid,stat,cmd -p "$PID" | indent

for ((i = 0; i < 50; i++)); do [ "$(lines "$LOG")" -ge $((BEFORE + 3)) ] && break; sleep 0.1; done
say "the log around the checkpoint:"
{
	tail -n +"$((BEFORE - 1))" "$LOG" | head -n 2
	echo "-- checkpoint, ${B}process gone${N}, restore --"
	tail -n +"$((BEFORE + 1))" "$LOG" | head -n 3
} | indent

step "5. Check: did it carry on, or start again?"
NEW=$(( $(lines "$LOG") - BEFORE ))
((NEW >= 3)) || fail "the restored counter wrote $NEW lines in 5 s (expected about 25)"
expect=$((LAST + 1))
bad=
while read -r word1 pid word2 count; do
	if [ "$word1 $word2" != "pid count" ] || [ "$pid" != "$PID" ] || [ "$count" != "$expect" ]; then
		bad="expected \"pid $PID count $expect\", found \"$word1 $pid $word2 $count\""
		break
	fi
	expect=$((expect + 1))
done < <(tail -n +"$((BEFORE + 1))" "$LOG")
[ -z "$bad" ] || fail "the counter did not continue: $bad"
printf '    %sOK%s: before the checkpoint the last count was %s; after the restore, the same PID %s\n' \
	"$G" "$N" "$LAST" "$PID"
printf '    went on with %s, %s, %s, ...: it carried on where it stopped.\n' \
	"$((LAST + 1))" "$((LAST + 2))" "$((LAST + 3))"

step "6. Clean up"
kill -TERM "$PID" 2>/dev/null
wait_gone "$PID" 50 || kill -KILL "$PID" 2>/dev/null
OURS=0
say "stopped PID $PID and removed $DEMO"
exit 0
