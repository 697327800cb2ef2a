#!/bin/bash
# Live migration: chains of pre-dumps, the page server, lazy restore, and the one-command
# front end (runtime-hook/stasis-migrate), each checked by its real outcome: programs that
# verify every byte of their memory after the restore, containers whose count goes on.
#
#   tests/migrate/run-migrate.sh [--keep] [CASE...]
#
# runc/pre-dump            runc 1.1 with stasis as its criu: `runc checkpoint --pre-dump`
#                          (criu's PRE_DUMP over the RPC, the container runs on), then
#                          `runc checkpoint --parent-path ../pre` (DUMP with parent_img): the
#                          dump keeps the unchanged pages in the pre-dump; `runc restore`: the
#                          count goes on
# runc/pre-dump-paused     the same with the container paused (`runc pause`) before the pre-dump:
#                          it does not count once until the restore, which goes on from its
#                          last count
# runc/page-server-lazy    `runc checkpoint --page-server` (criu's ps over the RPC): the pages on a
#                          page server; `runc restore --lazy-pages` from there: the count goes on
# podman/pre-checkpoint    Podman (through runc, stasis as its `criu` on PATH): a counting
#                          container checkpointed with --pre-checkpoint (it runs on), then
#                          --with-previous (a parent link, pages kept in the pre-checkpoint),
#                          restored with --import-previous: its log counts on without a gap
# page-server/dump        stasis page-server (--port 0: the port it took on stdout, --daemon)
#                          receives the pages of a dump of mem-anon; the other images copied
#                          over, the restore from there PASSes
# page-server/chain        a pre-dump and the dump of mem-dirty each to a page server of its own
#                          (the second's --prev-images-dir naming the first): the chain resolves
#                          on the servers' side, the restore PASSes
# page-server/bad-input    bytes that are not the protocol, a length out of bounds, an OPEN of
#                          pid 0: the server ends the session naming what was wrong (to the
#                          client too, for the OPEN), exits 1, keeps no file
# page-server/dies         the page server fails after the first pages (STASIS_FAULT): the dump
#                          fails naming the server, the program runs on unharmed, no images stay
# lazy/daemon              `stasis lazy-pages --daemon` serves `restore --lazy-pages` of mem-dirty
#                          (which forks, maps, unmaps and moves memory meanwhile): PASS
# lazy/page-server         restore --lazy-pages --page-server: the pages fetched from a page
#                          server that serves the images: PASS, the server served pages
# lazy/source-fails        the lazy source fails (STASIS_FAULT=lazy-source-fail): the restored
#                          tree is killed, never giving a verdict; the log names the image
# lazy/page-server-dies    the page server goes after its first answer: the tree is killed, the
#                          log names the page server
# lazy/server-killed       the lazy-pages server serves first touches only, then nothing, and is
#                          SIGKILLed: its guardian kills the tree, which never gave a verdict
# lazy/page-flipped       a bit flipped in every private anonymous page of the images: the
#                          lazy-pages server checks each page before copying it in; the tree is
#                          killed (the restore fails, or the tree dies after it), never giving a
#                          verdict; the log names the file and the page
# lazy/page-server-flipped the same images served by a page server: it refuses to serve a page
#                          that does not match its checksum, naming it; the tree is killed
# pre-dump/scattered       4 chains of 10 pre-dump rounds 50 ms apart, a dump and a restore, of
#                          the bench's dirtytarget (64 MiB, a fifth of it rewritten every 200 ms,
#                          random pages: rounds of about 1000 ranges of written pages, more than
#                          the kernel's PAGEMAP_SCAN buffer of 512 holds at once); every byte
#                          checked after the restore. Rounds must have reached over 512 ranges.
# migrate/namespaces       runtime-hook/stasis-migrate moves mem-dirty from a network namespace
#                          to another with a mount namespace of its own (the images on a tmpfs
#                          only it sees), the two joined by a veth pair: rounds until the pages
#                          written stop shrinking, the final dump's frozen time, a lazy restore;
#                          the program PASSes there, in the destination's namespaces
# Environment: STASIS (default ./stasis). Output: "ok"/"FAIL" lines, "N passed, N failed".

# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=../zoo/lib.sh
. "$(dirname "$0")/../zoo/lib.sh"
CASES=()
for a in "$@"; do
	case $a in
	--keep) ZOO_KEEP=1 ;;
	*) CASES+=("$a") ;;
	esac
done
RUNC_IDS=()
ZCAT=""

NETNS=()
HOLDER=""
PODMAN_CLEANUP=()
# (podman makes its parent cgroups, libpod_parent, on first use: removed after, once empty)
podman_cgroups() { ls -d /sys/fs/cgroup/*/libpod_parent /sys/fs/cgroup/libpod_parent 2>/dev/null; }
PODMAN_CGROUPS_BEFORE=" $(podman_cgroups | tr '\n' ' ') "
migrate_cleanup() {
	local p
	if [ ${#PODMAN_CLEANUP[@]} -gt 0 ]; then
		podman rm -f "${PODMAN_CLEANUP[0]}" >/dev/null 2>&1
		podman rmi "${PODMAN_CLEANUP[1]}" >/dev/null 2>&1
	fi
	for p in $(podman_cgroups); do
		[[ $PODMAN_CGROUPS_BEFORE == *" $p "* ]] || find "$p" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	[ -n "$HOLDER" ] && kill -KILL "$HOLDER" 2>/dev/null
	for p in "${NETNS[@]}"; do ip netns del "$p" 2>/dev/null; done
	for p in "${RUNC_IDS[@]}"; do
		runc --root "$ZOO_TMP/runc-state" kill "$p" KILL >/dev/null 2>&1
		runc --root "$ZOO_TMP/runc-state" delete -f "$p" >/dev/null 2>&1
	done
	zoo_cleanup
}
zoo_setup_tmp
trap migrate_cleanup EXIT
zoo_ready_or_exit

# Is case NAME selected (all are, by default)?
selected() {
	[ ${#CASES[@]} -eq 0 ] && return 0
	local c
	for c in "${CASES[@]}"; do [[ $1 == "$c"* ]] && return 0; done
	return 1
}
show() { show_tail "$@"; }
has() { grep -a -q -E -- "$2" "$1" 2>/dev/null; }

# ---- runc --------------------------------------------------------------------------------
# shellcheck source=../rpc/runc-lib.sh
. "$ZOO_ROOT/tests/rpc/runc-lib.sh"

# case_runc_predump [paused]: paused, the container is paused (`runc pause`) before the
# pre-dump and stays so until the checkpoint: it must not count once meanwhile
case_runc_predump() {
	local paused=${1:-}
	local CASE=runc/pre-dump${paused:+-$paused} d=$ZOO_TMP/runc-pre$paused id=stasis-migrate-pre$paused-$$
	local state=running n rc last first
	mkdir -p "$d/pre" "$d/img" "$d/work-pre" "$d/work"
	runc_bundle "$d" 0.2 || { result_fail "$CASE" "runc spec failed"; return; }
	RUNC_IDS+=("$id")
	(cd "$d/bundle" && "${RUNC[@]}" run -d "$id" </dev/null 2>&1) | cat >"$d/before.out" &
	if ! wait_until 20 numbers_in "$d/before.out" 3; then
		result_fail "$CASE" "the container does not count:" && show "$d/before.out"
		return
	fi
	if [ -n "$paused" ]; then
		"${RUNC[@]}" pause "$id" && state=paused
		sleep 0.5 # (a line written as it froze lands in the file)
	fi
	n=$(grep -c -E '^[0-9]+$' "$d/before.out")
	(cd "$d" && timeout -k 5 120 "${RUNC[@]}" checkpoint --pre-dump --image-path "$d/pre" \
		--work-path "$d/work-pre" "$id" >"$d/pre-dump.out" 2>&1)
	rc=$?
	if [ "$rc" != 0 ] || [ "$(runc_status "$id")" != "$state" ] || [ ! -s "$d/pre/inventory.img" ]; then
		result_fail "$CASE" "runc checkpoint --pre-dump exited $rc (container: $(runc_status "$id"), expected $state):"
		runc_logs "$d"
		return
	fi
	if [ -n "$paused" ]; then
		sleep 1
		if [ "$(grep -c -E '^[0-9]+$' "$d/before.out")" != "$n" ]; then
			result_fail "$CASE" "the paused container counted during or after the pre-dump ($n lines before, $(grep -c -E '^[0-9]+$' "$d/before.out") now)"
			return
		fi
	elif ! wait_until 10 numbers_in "$d/before.out" $((n + 3)); then
		result_fail "$CASE" "the container stopped counting after the pre-dump"
		return
	fi
	(cd "$d" && timeout -k 5 120 "${RUNC[@]}" checkpoint --parent-path ../pre --image-path "$d/img" \
		--work-path "$d/work" "$id" >"$d/checkpoint.out" 2>&1)
	rc=$?
	wait_until 10 test -z "$(runc_status "$id")"
	if [ "$rc" != 0 ] || [ -n "$(runc_status "$id")" ] || [ "$(readlink "$d/img/parent")" != ../pre ] ||
		! has "$d/work/dump.log" 'pages_in_parent_dump=[1-9]'; then
		result_fail "$CASE" "runc checkpoint --parent-path exited $rc (container: $(runc_status "$id"), parent link '$(readlink "$d/img/parent")'); expected pages kept in the pre-dump:"
		runc_logs "$d"
		return
	fi
	last=$(grep -E '^[0-9]+$' "$d/before.out" | tail -n 1)
	runc_restore "$d" "$id" "$d/img"
	rc=$RESTORE_RC
	if [ "$rc" != 0 ] || [ "$(runc_status "$id")" != running ] || ! wait_until 10 numbers_in "$d/after.out" 1; then
		result_fail "$CASE" "runc restore exited ${rc:-none} (container: $(runc_status "$id")):"
		runc_logs "$d"
		return
	fi
	first=$(grep -E '^[0-9]+$' "$d/after.out" | head -n 1)
	if [ "$first" != $((last + 1)) ]; then
		result_fail "$CASE" "the count went $last before the checkpoint, $first after the restore"
		return
	fi
	result_ok "$CASE (counted to $last${paused:+, paused before the pre-dump}, went on from $first; $(grep -a -o 'pages=[0-9]* .*pages_in_parent_dump=[0-9]*' "$d/work/dump.log"))"
}

# ---- the page server -------------------------------------------------------------------

# page_server OUT DIR [ARGS...]: a page server for DIR in the background; its port in PORT
page_server() {
	local out=$1 dir=$2
	shift 2
	PORT=$("$STASIS" page-server -D "$dir" --port 0 --daemon -o page-server.log -v4 --pidfile ps.pid \
		"$@" 2>"$out")
	[[ $PORT =~ ^[0-9]+$ ]]
}
# passes PID DIR: the restored program runs, and PASSes after SIGTERM (ZERR otherwise)
passes() {
	ZERR=""
	if ! proc_alive "$1"; then
		ZERR="the restored program $1 is not running"
		return 1
	fi
	sleep 0.3
	zoo_stop "$1" "$2" "$2/out" || return 1
	[[ $ZVERDICT == PASS* ]] || { ZERR="its verdict: $ZVERDICT"; return 1; }
}
# copy_images FROM TO: the files of the images directory that TO (a page server's) lacks
copy_images() {
	local f
	for f in "$1"/*; do
		[ -f "$f" ] && [ ! -e "$2/${f##*/}" ] && cp "$f" "$2/"
	done
	return 0
}

case_ps_dump() {
	local CASE=page-server/dump d=$ZOO_TMP/ps-dump pid
	mkdir -p "$d/src" "$d/dst"
	zoo_start mem-anon "$d" || { result_fail "$CASE" "$ZERR"; return; }
	pid=$ZPID
	if ! page_server "$d/ps.out" "$d/dst"; then
		result_fail "$CASE" "no page server" && show "$d/ps.out"
		kill_ours "$pid"
		return
	fi
	run_stasis "$d/dump.out" 60 dump -t "$pid" -D "$d/src" --page-server --address 127.0.0.1 \
		--port "$PORT" -o dump.log -v4
	if [ "$ZRC" != 0 ] || [ -e "$d/src/pages-$pid.img" ] || [ ! -s "$d/dst/pages-$pid.img" ] ||
		! wait_until 5 has "$d/dst/page-server.log" 'session with .* done: [1-9][0-9]* pages stored'; then
		result_fail "$CASE" "dump exited $ZRC; expected its pages on the server's side only:"
		show "$d/dump.out" "$d/src/dump.log" "$d/dst/page-server.log"
		kill_ours "$pid"
		return
	fi
	copy_images "$d/src" "$d/dst"
	wait_until 10 pid_free "$pid"
	run_stasis "$d/restore.out" 60 restore -D "$d/dst" -d -o restore.log -v4
	track_pid "$pid"
	if [ "$ZRC" != 0 ] || ! passes "$pid" "$d"; then
		result_fail "$CASE" "restore exited $ZRC; $ZERR"
		show "$d/restore.out" "$d/dst/restore.log"
		kill_ours "$pid"
		return
	fi
	result_ok "$CASE ($(grep -a -o '[0-9]* pages stored' "$d/dst/page-server.log"))"
}

case_ps_chain() {
	local CASE=page-server/chain d=$ZOO_TMP/ps-chain pid
	mkdir -p "$d/src/1" "$d/src/2" "$d/dst/1" "$d/dst/2"
	zoo_start mem-dirty "$d" || { result_fail "$CASE" "$ZERR"; return; }
	pid=$ZPID
	page_server "$d/ps1.out" "$d/dst/1" || { result_fail "$CASE" "no page server"; kill_ours "$pid"; return; }
	run_stasis "$d/pre.out" 60 pre-dump -t "$pid" -D "$d/src/1" --page-server --address 127.0.0.1 \
		--port "$PORT" -o pre-dump.log -v4
	local rc1=$ZRC
	sleep 0.3
	page_server "$d/ps2.out" "$d/dst/2" --prev-images-dir ../1 ||
		{ result_fail "$CASE" "no second page server"; kill_ours "$pid"; return; }
	run_stasis "$d/dump.out" 60 dump -t "$pid" -D "$d/src/2" --prev-images-dir ../1 --page-server \
		--address 127.0.0.1 --port "$PORT" -o dump.log -v4
	if [ "$rc1" != 0 ] || [ "$ZRC" != 0 ] || [ "$(readlink "$d/dst/2/parent")" != ../1 ] ||
		! has "$d/src/2/dump.log" 'pages_in_parent_dump=[1-9]'; then
		result_fail "$CASE" "pre-dump exited $rc1, dump $ZRC; expected the dump to keep pages in the pre-dump:"
		show "$d/pre.out" "$d/dump.out" "$d/src/2/dump.log" "$d/dst/2/page-server.log"
		kill_ours "$pid"
		return
	fi
	copy_images "$d/src/2" "$d/dst/2"
	wait_until 10 pid_free "$pid"
	run_stasis "$d/restore.out" 60 restore -D "$d/dst/2" -d -o restore.log -v4
	track_pid "$pid"
	if [ "$ZRC" != 0 ] || ! passes "$pid" "$d"; then
		result_fail "$CASE" "restore exited $ZRC; $ZERR"
		show "$d/restore.out" "$d/dst/2/restore.log"
		kill_ours "$pid"
		return
	fi
	result_ok "$CASE ($(grep -a -o 'pages=[0-9]* .*pages_in_parent_dump=[0-9]*' "$d/src/2/dump.log"))"
}

# send_raw PORT HEXBYTES... : a client that sends raw messages and prints what comes back
send_raw() {
	python3 - "$@" <<'PY'
import socket, struct, sys
port = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", port), timeout=10)
for msg in sys.argv[2:]:
    s.sendall(bytes.fromhex(msg))
got = b""
try:
    while True:
        b = s.recv(4096)
        if not b:
            break
        got += b
except OSError:
    pass
while len(got) >= 16:
    magic, typ, ln = struct.unpack("<IIQ", got[:16])
    body = got[16:16 + ln]
    print("answer type %d: %s" % (typ, body.decode("ascii", "replace") if typ == 3 else body.hex()))
    got = got[16 + ln:]
PY
}
msg() { # msg TYPE PAYLOAD-HEX: one message of the protocol, as hex
	python3 -c 'import struct,sys; p=bytes.fromhex(sys.argv[2]); print((struct.pack("<IIQ",0x31475053,int(sys.argv[1]),len(p))+p).hex())' "$1" "$2"
}

case_ps_bad_input() {
	local CASE=page-server/bad-input d=$ZOO_TMP/ps-bad why="" hello
	hello=$(msg 1 "0200000001000000") # version 2, role dump
	mkdir -p "$d/1" "$d/2" "$d/3"
	page_server "$d/ps1.out" "$d/1" && send_raw "$PORT" "$(echo -n 'garbage garbage!' | od -An -tx1 | tr -d ' \n')" >"$d/1.out"
	page_server "$d/ps2.out" "$d/2" && send_raw "$PORT" "$hello" "$(python3 -c 'import struct; print(struct.pack("<IIQ",0x31475053,5,5).hex())')0102030405" >"$d/2.out"
	page_server "$d/ps3.out" "$d/3" && send_raw "$PORT" "$hello" "$(msg 4 "$(printf "%048d" 0)")" >"$d/3.out"
	for k in 1 2 3; do
		wait_until 5 not_alive "$(cat "$d/$k/ps.pid" 2>/dev/null || echo 0)" || why="$why; server $k still runs"
	done
	has "$d/1/page-server.log" 'sent a bad message: magic 0x62726167 is not the page server.s' || why="$why; server 1 did not name the bad magic"
	has "$d/2/page-server.log" 'sent a bad message: PAGES \(type 5\) with a payload of 5 bytes' || why="$why; server 2 did not name the bad length"
	has "$d/3/page-server.log" 'sent a bad message: OPEN of pid 0, not a pid; the session ends' || why="$why; server 3 did not name the OPEN"
	has "$d/3.out" '^answer type 3: OPEN of pid 0, not a pid$' || why="$why; client 3 got no ERROR naming its OPEN"
	[ -z "$(ls "$d/1" "$d/2" "$d/3" | grep pages-)" ] || why="$why; a pages image stayed"
	if [ -n "$why" ]; then
		result_fail "$CASE" "${why#; }"
		show "$d/1/page-server.log" "$d/2/page-server.log" "$d/3/page-server.log" "$d/3.out"
	else
		result_ok "$CASE"
	fi
}

case_ps_dies() {
	local CASE=page-server/dies d=$ZOO_TMP/ps-dies pid
	mkdir -p "$d/src" "$d/dst"
	zoo_start mem-anon "$d" || { result_fail "$CASE" "$ZERR"; return; }
	pid=$ZPID
	STASIS_FAULT=page-server-after-pages page_server "$d/ps.out" "$d/dst" ||
		{ result_fail "$CASE" "no page server"; kill_ours "$pid"; return; }
	run_stasis "$d/dump.out" 60 dump -t "$pid" -D "$d/src" --page-server --address 127.0.0.1 \
		--port "$PORT" -o dump.log -v4
	if ! clean_failure "$ZRC" || ! has "$d/dump.out" "page server.*127\.0\.0\.1:$PORT" ||
		[ -n "$(ls "$d/src" | grep '\.img$')" ] || [ -n "$(ls "$d/dst" | grep '\.img$')" ] ||
		! target_survives "$CASE" "$pid" "$d"; then
		result_fail "$CASE" "dump exited $ZRC; expected a failure naming the page server, no images, the program unharmed ($ZERR):"
		show "$d/dump.out" "$d/dst/page-server.log"
		kill_ours "$pid"
		return
	fi
	result_ok "$CASE ($(grep -a -m1 -o 'Error: .*' "$d/dump.out" | cut -c1-110))"
}

# ---- lazy restore ------------------------------------------------------------------------

# dumped NAME DIR: the program started and dumped into DIR/img (PID in ZPID); ZERR if not
dumped() {
	mkdir -p "$2/img"
	zoo_start "$1" "$2" || return 1
	sleep 0.3
	run_stasis "$2/dump.out" 60 dump -t "$ZPID" -D "$2/img" -o dump.log -v4
	[ "$ZRC" = 0 ] || { ZERR="dump exited $ZRC"; return 1; }
	wait_until 10 pid_free "$ZPID"
}

case_lazy_daemon() {
	local CASE=lazy/daemon d=$ZOO_TMP/lazy-daemon pid
	dumped mem-dirty "$d" || { result_fail "$CASE" "$ZERR"; return; }
	pid=$ZPID
	"$STASIS" lazy-pages -D "$d/img" --daemon --pidfile lazy.pid -o lazy.log -v4 >"$d/lazy.out" 2>&1
	run_stasis "$d/restore.out" 60 restore -D "$d/img" -d --lazy-pages -o restore.log -v4
	track_pid "$pid"
	if [ "$ZRC" != 0 ] || ! has "$d/img/restore.log" 'through the lazy-pages server listening there' ||
		! passes "$pid" "$d" ||
		! wait_until 10 has "$d/img/lazy.log" 'lazy-pages: [0-9]* processes, [1-9][0-9]* pages copied in'; then
		result_fail "$CASE" "restore exited $ZRC; expected the daemon to serve it, and PASS ($ZERR):"
		show "$d/lazy.out" "$d/restore.out" "$d/img/restore.log" "$d/img/lazy.log"
		kill_ours "$pid"
		return
	fi
	result_ok "$CASE ($(grep -a -o 'lazy-pages: [0-9]* processes.*' "$d/img/lazy.log"))"
}

case_lazy_page_server() {
	local CASE=lazy/page-server d=$ZOO_TMP/lazy-ps pid
	dumped mem-anon "$d" || { result_fail "$CASE" "$ZERR"; return; }
	pid=$ZPID
	page_server "$d/ps.out" "$d/img" || { result_fail "$CASE" "no page server"; return; }
	run_stasis "$d/restore.out" 60 restore -D "$d/img" -d --lazy-pages --page-server \
		--address 127.0.0.1 --port "$PORT" -o restore.log -v4
	track_pid "$pid"
	if [ "$ZRC" != 0 ] || ! passes "$pid" "$d" ||
		! wait_until 10 has "$d/img/page-server.log" 'done: 0 pages stored, [1-9][0-9]* served'; then
		result_fail "$CASE" "restore exited $ZRC; expected pages served by the page server, and PASS ($ZERR):"
		show "$d/restore.out" "$d/img/restore.log" "$d/img/page-server.log"
		kill_ours "$pid"
		return
	fi
	result_ok "$CASE ($(grep -a -o '[0-9]* served' "$d/img/page-server.log"))"
}

# killed_without_verdict CASE PID DIR LOG REGEX: the restored tree is gone, never having
# printed a verdict, and LOG says why (REGEX)
killed_without_verdict() {
	local why=""
	wait_until 15 not_alive "$2" || why="the restored program $2 still runs"
	grep -a -q -E 'PASS|FAIL' "$3/out" && why="$why; it gave a verdict: $(tail -n 1 "$3/out")"
	wait_until 10 has "$4" "$5" || why="$why; the log does not say '$5'"
	if [ -n "$why" ]; then
		result_fail "$1" "${why#; }"
		show "$3/restore.out" "$4"
		kill_ours "$2"
		return
	fi
	result_ok "$1 ($(grep -a -m1 -o -E "$5" "$4" | cut -c1-120))"
}

case_lazy_source_fails() {
	local CASE=lazy/source-fails d=$ZOO_TMP/lazy-src
	dumped mem-anon "$d" || { result_fail "$CASE" "$ZERR"; return; }
	STASIS_FAULT=lazy-source-fail run_stasis "$d/restore.out" 60 restore -D "$d/img" -d --lazy-pages \
		-o restore.log -v4
	track_pid "$ZPID"
	kill -TERM "$ZPID" 2>/dev/null
	killed_without_verdict "$CASE" "$ZPID" "$d" "$d/img/restore.log" \
		"cannot read pages-$ZPID\.img .* injected failure|reading pages-$ZPID\.img .*injected failure"
	has "$d/img/restore.log" 'the restored tree cannot go on: it is killed' ||
		result_fail "$CASE" "restore.log does not say the tree is killed"
}

case_lazy_ps_dies() {
	local CASE=lazy/page-server-dies d=$ZOO_TMP/lazy-psd
	dumped mem-256m "$d" || { result_fail "$CASE" "$ZERR"; return; }
	STASIS_FAULT=page-server-after-get page_server "$d/ps.out" "$d/img" ||
		{ result_fail "$CASE" "no page server"; return; }
	run_stasis "$d/restore.out" 60 restore -D "$d/img" -d --lazy-pages --page-server \
		--address 127.0.0.1 --port "$PORT" -o restore.log -v4
	track_pid "$ZPID"
	kill -TERM "$ZPID" 2>/dev/null
	killed_without_verdict "$CASE" "$ZPID" "$d" "$d/img/restore.log" \
		"from the page server 127\.0\.0\.1:$PORT the restored tree cannot go on: it is killed"
}

case_lazy_server_killed() {
	local CASE=lazy/server-killed d=$ZOO_TMP/lazy-kill server
	dumped mem-256m "$d" || { result_fail "$CASE" "$ZERR"; return; }
	STASIS_FAULT=lazy-pages-stall run_stasis "$d/restore.out" 60 restore -D "$d/img" -d --lazy-pages \
		-o restore.log -v4
	track_pid "$ZPID"
	server=$(grep -a -o 'server pid [0-9]*' "$d/img/restore.log" | head -n 1 | cut -d' ' -f3)
	if [ "$ZRC" != 0 ] || [ -z "$server" ] || ! wait_until 10 has "$d/img/restore.log" 'lazy-pages-stall'; then
		result_fail "$CASE" "restore exited $ZRC, server pid '$server'"
		show "$d/restore.out" "$d/img/restore.log"
		kill_ours "$ZPID"
		return
	fi
	kill -TERM "$ZPID" 2>/dev/null # its checks touch every page: they wait on the server
	sleep 0.5
	[ "$(readlink "/proc/$server/exe")" = "$(readlink -f "$STASIS")" ] && kill -KILL "$server"
	killed_without_verdict "$CASE" "$ZPID" "$d" "$d/img/restore.log" \
		'the server died before every page was in; the restored tree is killed'
}

# flip_anon_pages DIR PID: one bit flipped in every page of pages-PID.img that a run of its
# private anonymous memory holds (what a lazy restore copies in; the rest is read before
# anything starts). Prints how many.
flip_anon_pages() {
	python3 - "$STASIS" "$1" "$2" <<'PY'
import json, subprocess, sys
stasis, d, pid = sys.argv[1:]
show = lambda f: json.loads(subprocess.run([stasis, "show", f"{d}/{f}"], capture_output=True, check=True).stdout)
vmas = show(f"mm-{pid}.img")["vmas"]
n = 0
with open(f"{d}/pages-{pid}.img", "r+b") as f:
    for r in show(f"pagemap-{pid}.img").get("runs", []):
        if r.get("chain_depth") or r.get("from_pid"):
            continue
        v = next((v for v in vmas if v["start"] <= r["vaddr"] < v["end"]), None)
        if not v or v["kind"] not in ("VMA_ANON_PRIVATE", 1):
            continue
        for p in range(r["nr_pages"]):
            f.seek(r["file_off"] + p * 4096 + 77)
            b = f.read(1)
            f.seek(r["file_off"] + p * 4096 + 77)
            f.write(bytes([b[0] ^ 1]))
            n += 1
print(n)
PY
}

case_lazy_flipped() {
	local CASE=lazy/page-flipped d=$ZOO_TMP/lazy-flip n
	dumped mem-anon "$d" || { result_fail "$CASE" "$ZERR"; return; }
	n=$(flip_anon_pages "$d/img" "$ZPID")
	[ "${n:-0}" -gt 0 ] || { result_fail "$CASE" "no private anonymous page to flip ($n)"; return; }
	run_stasis "$d/restore.out" 60 restore -D "$d/img" -d --lazy-pages -o restore.log -v4
	track_pid "$ZPID"
	kill -TERM "$ZPID" 2>/dev/null
	killed_without_verdict "$CASE" "$ZPID" "$d" "$d/img/restore.log" \
		"pages-$ZPID\.img: page [0-9]+ does not match its checksum"
	# (the lazy-pages server's copier found it: the restore may have returned by then, or not)
	has "$d/img/restore.log" 'lazy-pages: without its pages from the images in .* it is killed' ||
		result_fail "$CASE" "restore.log does not say the lazy-pages server killed the tree"
}

case_lazy_ps_flipped() {
	local CASE=lazy/page-server-flipped d=$ZOO_TMP/lazy-psflip n
	dumped mem-anon "$d" || { result_fail "$CASE" "$ZERR"; return; }
	n=$(flip_anon_pages "$d/img" "$ZPID")
	[ "${n:-0}" -gt 0 ] || { result_fail "$CASE" "no private anonymous page to flip ($n)"; return; }
	page_server "$d/ps.out" "$d/img" || { result_fail "$CASE" "no page server"; return; }
	run_stasis "$d/restore.out" 60 restore -D "$d/img" -d --lazy-pages --page-server \
		--address 127.0.0.1 --port "$PORT" -o restore.log -v4
	track_pid "$ZPID"
	kill -TERM "$ZPID" 2>/dev/null
	killed_without_verdict "$CASE" "$ZPID" "$d" "$d/img/page-server.log" \
		"pages-$ZPID\.img: page [0-9]+ .*does not match its checksum"
	has "$d/img/restore.log" "the page server's images are corrupted" ||
		result_fail "$CASE" "restore.log does not say the page server's images are corrupted"
}

if selected page-server; then
	case_ps_dump
	case_ps_chain
	case_ps_bad_input
	case_ps_dies
fi
if selected lazy; then
	case_lazy_daemon
	case_lazy_page_server
	case_lazy_source_fails
	case_lazy_ps_dies
	case_lazy_server_killed
	case_lazy_flipped
	case_lazy_ps_flipped
fi

# ---- the whole migration, between namespaces ------------------------------------------

# one_chain D: dirtytarget through 10 pre-dump rounds, a dump and a restore; 0 if it PASSes
one_chain() {
	local d=$1 prev="" r pid
	mkdir -p "$d"
	("$DIRTY" 64 100 "$d/verdict" "$d/resumed" >"$d/target.log" 2>&1 &)
	wait_until 10 has "$d/target.log" READY || { ZERR="dirtytarget did not start"; return 1; }
	pid=$(sed -n 's/^READY pid=\([0-9]*\).*/\1/p' "$d/target.log")
	track_pid "$pid"
	for r in $(seq 10); do
		mkdir -p "$d/$r"
		run_stasis "$d/$r.out" 60 pre-dump -t "$pid" -D "$d/$r" ${prev:+--prev-images-dir "../$prev"} \
			-o pre-dump.log -v4
		[ "$ZRC" = 0 ] || { ZERR="pre-dump round $r exited $ZRC"; show "$d/$r.out"; return 1; }
		prev=$r
		sleep 0.05
	done
	mkdir -p "$d/final"
	run_stasis "$d/dump.out" 60 dump -t "$pid" -D "$d/final" --prev-images-dir "../$prev" -o dump.log -v4
	[ "$ZRC" = 0 ] || { ZERR="the dump exited $ZRC"; show "$d/dump.out"; return 1; }
	wait_until 10 pid_free "$pid"
	run_stasis "$d/restore.out" 60 restore -D "$d/final" -d -o restore.log -v4
	[ "$ZRC" = 0 ] || { ZERR="the restore exited $ZRC"; show "$d/restore.out"; return 1; }
	sleep 0.3
	kill -TERM "$pid"
	wait_until 10 test -s "$d/verdict"
	ZVERDICT=$(cat "$d/verdict" 2>/dev/null)
	[[ $ZVERDICT == PASS* ]] || { ZERR="${ZVERDICT:-no verdict}"; kill_ours "$pid"; return 1; }
}

case_scattered() {
	local CASE=pre-dump/scattered d=$ZOO_TMP/scattered i most
	DIRTY=$ZOO_TMP/bench/dirtytarget
	if ! make -s -C "$ZOO_ROOT/tests/bench" BIN="$ZOO_TMP/bench" "$DIRTY" >"$ZOO_TMP/bench.out" 2>&1; then
		result_fail "$CASE" "cannot build dirtytarget"
		show "$ZOO_TMP/bench.out"
		return
	fi
	for i in 1 2 3 4; do
		if ! one_chain "$d/$i"; then
			result_fail "$CASE" "chain $i: $ZERR"
			return
		fi
	done
	most=$(cat "$d"/*/*/pre-dump.log "$d"/*/final/dump.log 2>/dev/null |
		sed -n 's/.*: \([0-9]*\) ranges of pages written since the parent dump/\1/p' | sort -n | tail -n 1)
	if [ "${most:-0}" -le 512 ]; then
		result_fail "$CASE" "the rounds had at most ${most:-0} ranges of written pages: not the case tested"
		return
	fi
	result_ok "$CASE (4 chains of 10 rounds, up to $most ranges written in a round; $(cut -c1-60 "$d/4/verdict"))"
}

if selected pre-dump; then
	case_scattered
fi

case_migrate_ns() {
	local CASE=migrate/namespaces d=$ZOO_TMP/migrate src=stasis-mig-src-$$ dst=stasis-mig-dst-$$
	local va=mga$$ vb=mgb$$ pid rc why=""
	mkdir -p "$d/work" "$d/dst-only" "$d/src"
	if ! ip netns add "$src" || ! ip netns add "$dst"; then
		result_fail "$CASE" "cannot make network namespaces"
		return
	fi
	NETNS+=("$src" "$dst")
	ip link add "$va" type veth peer name "$vb" && ip link set "$va" netns "$src" &&
		ip link set "$vb" netns "$dst" && ip -n "$src" addr add 10.251.0.1/30 dev "$va" &&
		ip -n "$dst" addr add 10.251.0.2/30 dev "$vb" && ip -n "$src" link set "$va" up &&
		ip -n "$dst" link set "$vb" up && ip -n "$src" link set lo up && ip -n "$dst" link set lo up ||
		{ result_fail "$CASE" "cannot join the namespaces with a veth pair"; return; }
	# the destination: its network namespace, and a mount namespace with a tmpfs only it sees
	ip netns exec "$dst" unshare -m --propagation private \
		sh -c "mount -t tmpfs stasis-mig '$d/dst-only' && exec sleep 600" </dev/null >/dev/null 2>&1 &
	HOLDER=$!
	disown
	if ! wait_until 10 grep -q "$d/dst-only" "/proc/$HOLDER/mountinfo"; then
		result_fail "$CASE" "no destination mount namespace"
		return
	fi
	# the source: the program and stasis-migrate in one shell of the source namespace
	ip netns exec "$src" bash -c '
		cd "$1/work" && (ZOO_PIDFILE="$1/pid" ZOO_TMPDIR="$1/work" setsid "$2" </dev/null >"$1/out" 2>"$1/err" &)
		for i in $(seq 200); do [ -s "$1/pid" ] && grep -q READY "$1/out" && break; sleep 0.05; done
		sleep 0.5
		exec "$3" -t "$(cat "$1/pid")" --dest-dir "$1/dst-only/images" --dest-address 10.251.0.2 \
			--dest-exec "nsenter -t $4 -m -n" --stasis "$5" --work "$1/src" -- --pidfile "$1/restored.pid"
	' migrate "$d" "$ZOO_BIN/mem-dirty" "$ZOO_ROOT/runtime-hook/stasis-migrate" "$HOLDER" \
		"$(readlink -f "$STASIS")" >"$d/migrate.out" 2>&1
	rc=$?
	pid=$(cat "$d/pid" 2>/dev/null)
	[ -n "$pid" ] && track_pid "$pid"
	[ "$rc" = 0 ] || why="stasis-migrate exited $rc"
	has "$d/migrate.out" '^stasis-migrate: round 1: [0-9]+ pages written' || why="$why; no rounds said"
	has "$d/migrate.out" 'final dump: [0-9]+ pages written, frozen for [0-9.]+ ms' || why="$why; no frozen time said"
	[ "$(cat "$d/restored.pid" 2>/dev/null)" = "$pid" ] || why="$why; the restore's pidfile says '$(cat "$d/restored.pid" 2>/dev/null)', not $pid"
	[ "$(readlink "/proc/$pid/ns/net")" = "$(readlink "/proc/$HOLDER/ns/net")" ] ||
		why="$why; the restored program is not in the destination's network namespace"
	[ "$(readlink "/proc/$pid/ns/mnt")" = "$(readlink "/proc/$HOLDER/ns/mnt")" ] ||
		why="$why; the restored program is not in the destination's mount namespace"
	[ ! -e "$d/dst-only/images" ] || why="$why; the destination's images are seen from here"
	if [ -z "$why" ] && ! passes "$pid" "$d"; then
		why="the program on the destination: $ZERR"
	fi
	if [ -n "$why" ]; then
		result_fail "$CASE" "${why#; }"
		show "$d/migrate.out" "$d/src/final/dump.log" "$d/err"
		kill_ours "$pid"
		return
	fi
	result_ok "$CASE ($(grep -c ' round ' "$d/migrate.out") rounds, $(grep -o 'frozen for [0-9.]* ms' "$d/migrate.out"))"
	sed 's/^/    /' "$d/migrate.out"
}

if selected migrate; then
	case_migrate_ns
fi

# runc checkpoint --page-server (criu's ps over the RPC): the pages on a page server, the rest
# in the image path; runc restore --lazy-pages (lazy_pages over the RPC) from there
case_runc_ps_lazy() {
	local CASE=runc/page-server-lazy d=$ZOO_TMP/runc-ps id=stasis-migrate-ps-$$ rc last first
	mkdir -p "$d/img" "$d/dst" "$d/work"
	runc_bundle "$d" 0.2 || { result_fail "$CASE" "runc spec failed"; return; }
	RUNC_IDS+=("$id")
	(cd "$d/bundle" && "${RUNC[@]}" run -d "$id" </dev/null 2>&1) | cat >"$d/before.out" &
	if ! wait_until 20 numbers_in "$d/before.out" 3; then
		result_fail "$CASE" "the container does not count:" && show "$d/before.out"
		return
	fi
	page_server "$d/ps.out" "$d/dst" || { result_fail "$CASE" "no page server"; return; }
	(cd "$d" && timeout -k 5 120 "${RUNC[@]}" checkpoint --page-server "127.0.0.1:$PORT" \
		--image-path "$d/img" --work-path "$d/work" "$id" >"$d/checkpoint.out" 2>&1)
	rc=$?
	wait_until 10 test -z "$(runc_status "$id")"
	if [ "$rc" != 0 ] || [ -n "$(runc_status "$id")" ] || ls "$d/img" | grep -q '^pages-[1-9]' ||
		! ls "$d/dst" | grep -q '^pages-[1-9]'; then
		result_fail "$CASE" "runc checkpoint --page-server exited $rc; expected the pages on the server only:"
		runc_logs "$d"
		show "$d/dst/page-server.log"
		return
	fi
	copy_images "$d/img" "$d/dst"
	last=$(grep -E '^[0-9]+$' "$d/before.out" | tail -n 1)
	runc_restore "$d" "$id" "$d/dst" --lazy-pages
	rc=$RESTORE_RC
	if [ "$rc" != 0 ] || [ "$(runc_status "$id")" != running ] || ! wait_until 10 numbers_in "$d/after.out" 1 ||
		! wait_until 10 has "$d/work/restore.log" 'lazy-pages: [0-9]* processes, [0-9]* pages copied in'; then
		result_fail "$CASE" "runc restore --lazy-pages exited ${rc:-none} (container: $(runc_status "$id")):"
		runc_logs "$d"
		return
	fi
	first=$(grep -E '^[0-9]+$' "$d/after.out" | head -n 1)
	if [ "$first" != $((last + 1)) ]; then
		result_fail "$CASE" "the count went $last before the checkpoint, $first after the restore"
		return
	fi
	result_ok "$CASE (counted to $last, went on from $first; $(grep -a -o 'lazy-pages: [0-9]* processes.*' "$d/work/restore.log"))"
}

# podman container checkpoint --pre-checkpoint, then --with-previous, restore --import-previous
# (Podman runs runc, runc runs `criu` from PATH: stasis there). The container counts on its
# stdout: no number is missing or repeated in its log after the restore.
case_podman() {
	local CASE=podman/pre-checkpoint d=$ZOO_TMP/podman name=stasis-migrate-$$ img why="" last a
	img=localhost/stasis-migrate-$$:test
	mkdir -p "$d/bin" "$d/rootfs/bin" "$d/rootfs/proc" "$d/rootfs/sys" "$d/rootfs/dev" "$d/rootfs/tmp"
	ln -s "$(readlink -f "$STASIS")" "$d/bin/criu"
	cp "$(command -v busybox)" "$d/rootfs/bin/busybox"
	for a in sh sleep echo; do ln -s busybox "$d/rootfs/bin/$a"; done
	local P=(env "PATH=$d/bin:$PATH" timeout -k 5 120 podman)
	PODMAN_CLEANUP=("$name" "$img")
	tar -C "$d/rootfs" -c . | "${P[@]}" import - "$img" >"$d/import.out" 2>&1 &&
		"${P[@]}" run -d --name "$name" --network none --ulimit nofile=1024:1024 \
			--ulimit nproc=4096:4096 "$img" \
			sh -c 'i=0; while true; do i=$((i+1)); echo $i; sleep 0.2; done' >"$d/run.out" 2>&1 ||
		{ result_fail "$CASE" "podman import/run failed:"; show "$d/import.out" "$d/run.out"; return; }
	count() { "${P[@]}" logs "$name" 2>/dev/null | grep -c -E '^[0-9]+$'; }
	counted() { [ "$(count)" -ge "$1" ]; }
	wait_until 20 counted 5 || why="the container does not count"
	[ -z "$why" ] && ! "${P[@]}" container checkpoint --pre-checkpoint --export "$d/pre.tar" "$name" >"$d/pre.out" 2>&1 &&
		why="checkpoint --pre-checkpoint failed"
	[ -z "$why" ] && [ "$("${P[@]}" inspect -f '{{.State.Status}}' "$name")" != running ] &&
		why="the container stopped at the pre-checkpoint"
	sleep 1
	[ -z "$why" ] && ! "${P[@]}" container checkpoint --with-previous --export "$d/full.tar" "$name" >"$d/full.out" 2>&1 &&
		why="checkpoint --with-previous failed"
	if [ -z "$why" ]; then
		mkdir -p "$d/full" && tar -C "$d/full" -xf "$d/full.tar" 2>/dev/null
		[ "$(readlink "$d/full/checkpoint/parent")" = ../pre-checkpoint ] ||
			why="the checkpoint has no parent link to the pre-checkpoint"
		"$STASIS" show "$d/full/checkpoint" 2>/dev/null | grep -q '"chain_depth": 1' ||
			why="$why; the checkpoint keeps no page in the pre-checkpoint"
	fi
	last=$(count)
	[ -z "$why" ] && "${P[@]}" rm -f "$name" >/dev/null 2>&1
	[ -z "$why" ] && ! "${P[@]}" container restore --import "$d/full.tar" --import-previous "$d/pre.tar" \
		>"$d/restore.out" 2>&1 && why="restore --import-previous failed"
	[ -z "$why" ] && ! wait_until 20 counted $((last + 3)) && why="the count did not go on after the restore"
	local seq
	seq=$("${P[@]}" logs "$name" 2>/dev/null | grep -E '^[0-9]+$' | awk 'NR != $1 {print "at line " NR ": " $1; exit}')
	[ -z "$why" ] && [ -n "$seq" ] && why="the count is not 1, 2, 3... in the container's log ($seq)"
	local after
	after=$(count)
	"${P[@]}" rm -f "$name" >/dev/null 2>&1
	"${P[@]}" rmi "$img" >/dev/null 2>&1
	PODMAN_CLEANUP=()
	if [ -n "$why" ]; then
		result_fail "$CASE" "$why"
		show "$d/pre.out" "$d/full.out" "$d/restore.out"
		return
	fi
	result_ok "$CASE (counted to $last before the checkpoint, on to $after after)"
}

if selected podman; then
	if command -v podman >/dev/null && command -v busybox >/dev/null; then
		case_podman
	else
		echo "# podman/pre-checkpoint: no podman here (the Docker/Podman end-to-end tests cover it)"
	fi
fi

if selected runc; then
	if ! command -v runc >/dev/null || ! command -v busybox >/dev/null || ldd "$(command -v busybox)" >/dev/null 2>&1; then
		result_fail runc "needs runc and a static busybox (make setup installs runc and busybox-static)"
	else
		case_runc_predump
		case_runc_predump paused
		case_runc_ps_lazy
	fi
fi

summary
