#!/bin/bash
# Live connections through dump and restore, with a peer outside the tree that never
# reconnects (tests/net/peer.py). Traffic stays on loopback, or inside two network
# namespaces this script makes (a veth pair between them, addresses 10.231.7.1/2): never
# the host's network.
#
#   tests/net/run-net.sh [--keep] [--quick]
#
# Cases:
#   numbers          a server in the tree answers numbered requests streamed by a client
#                    outside it (loopback), across dump (--tcp-established) and restore: every
#                    answer right, no reset, no reconnect
#   numbers-30s      the same with the restore 30 s after the dump (skipped with --quick)
#   redis            redis-server in a network namespace of the test (an engine-owned one:
#                    --external net[INODE]:KEY, --join-ns net:PATH), a client in the other;
#                    dumped stopped (SIGSTOP) with the client's next request unread in its
#                    connection and redis-cli's, its PING sent, in the listener's accept queue:
#                    once continued after the restore, its event loop (epoll) must see and
#                    answer both
#   http             an HTTP/1.1 keep-alive server (python3 http.server) likewise
#   refuse           without --tcp-established the dump fails naming the connection, and the
#                    tree runs on
#   lock-dump-fail   a dump failing at its end (STASIS_FAULT=after-images) leaves no nftables
#                    table of stasis's, and the connection goes on
#   lock-dump-killed a dump with --leave-running killed (SIGKILL, at after-images: every
#                    connection in repair mode, the network locked) leaves no table of stasis's,
#                    and the connection goes on: what the dump put in repair mode leaves it
#   lock-restore-fail a restore that fails (STASIS_FAULT=restore-child, a tree of two) leaves
#                    only the dump's table; the next restore removes it and the client goes on
#   rerestore        zoo tcp-established (connections with both ends in the tree, half-closed
#                    too) dumped, restored, stopped (its connections close: their addresses in
#                    TIME_WAIT), and at once restored again from the same images: the second
#                    copy's connections work (it PASSes), where the repair-mode connect used to
#                    fail with EADDRNOTAVAIL for a minute
# Output: "ok NAME" / "FAIL NAME: why", then "N passed, N failed".

# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=../zoo/lib.sh
. "$(dirname "$0")/../zoo/lib.sh"

QUICK=0
for a in "$@"; do
	case $a in
	--keep | -k) ZOO_KEEP=1 ;;
	--quick) QUICK=1 ;;
	*) echo "unknown option $a" >&2; exit 2 ;;
	esac
done

PY=/usr/bin/python3
PEER=$ZOO_ROOT/tests/net/peer.py
NS_A=stasis-net-a-$$
NS_B=stasis-net-b-$$
zoo_setup_tmp
trap 'net_cleanup; zoo_cleanup' EXIT

net_cleanup() {
	ip netns del "$NS_A" 2>/dev/null
	ip netns del "$NS_B" 2>/dev/null
}

# stasis's tables for the tree of the case (SPID: the lock's and the dumped tree's names end
# in its root's pid), but those that were there before this test began: a dumped tree killed
# without its restore leaves its lock, and other runs of stasis lock their own trees
list_stasis_tables() { nft list tables 2>/dev/null | grep -o 'stasis-[a-z]*-[0-9-]*' | sort; }
TABLES_BEFORE=$(list_stasis_tables)
stasis_tables() {
	list_stasis_tables | grep -vxF -e "${TABLES_BEFORE:-none}" | grep -e "-${SPID:-none}\$" | tr '\n' ' '
}

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_server DIR KIND HOST PORT [NS]: the server (the tree) in the background, setsid
start_server() {
	local d=$1 kind=$2 host=$3 port=$4 ns=${5:-}
	local pre=()
	mkdir -p "$d"
	[ -n "$ns" ] && pre=(nsenter "--net=/run/netns/$ns")
	case $kind in
	redis)
		setsid "${pre[@]}" /usr/bin/redis-server --bind "$host" --port "$port" --save "" --appendonly no \
			--protected-mode no --daemonize no --dir "$d" </dev/null >"$d/server.out" 2>&1 &
		SPID=$!
		disown
		wait_until 10 sh -c "${pre[*]} redis-cli -h $host -p $port ping 2>/dev/null | grep -q PONG"
		;;
	*)
		setsid "${pre[@]}" $PY "$PEER" "$kind" "$host" "$port" "$d/ready" </dev/null >"$d/server.out" 2>&1 &
		SPID=$!
		disown
		wait_until 10 test -e "$d/ready"
		;;
	esac
	track_pid "$SPID"
}

# start_client DIR MODE HOST PORT [NS]
start_client() {
	local d=$1 ns=${5:-}
	local pre=()
	[ -n "$ns" ] && pre=(nsenter "--net=/run/netns/$ns")
	"${pre[@]}" $PY "$PEER" client "$2" "$3" "$4" "$d" </dev/null >"$d/client.out" 2>&1 &
	CPID=$!
	disown
	track_pid "$CPID"
}

count_of() { cat "$1/count" 2>/dev/null || echo 0; }
count_above() { [ "$(count_of "$1")" -gt "$2" ]; }

# the client must still be running with no error, and answer 20 more
client_goes_on() {
	local d=$1 before
	before=$(count_of "$d")
	if [ -e "$d/error" ] || ! proc_alive "$CPID"; then
		CLIENT_WHY="client failed: $(cat "$d/error" 2>/dev/null)"
		return 1
	fi
	if ! wait_until 90 count_above "$d" $((before + 20)); then
		CLIENT_WHY="client stuck at $(count_of "$d") answers: $(cat "$d/error" 2>/dev/null)"
		return 1
	fi
}

stop_client() {
	touch "$1/stop"
	wait_until 10 not_alive "$CPID"
	kill_ours "$CPID"
}

logs() { show_tail "$1/dump.out" "$1/img/dump.log" "$1/restore.out" "$1/img/restore.log" "$1/server.out" "$1/client.out"; }

# cr_case NAME KIND HOST PORT DELAY [NS_SERVER NS_CLIENT]
cr_case() {
	local name=$1 kind=$2 host=$3 port=$4 delay=$5 nss=${6:-} nsc=${7:-} d=$ZOO_TMP/$1 mode=$2
	local ext=() join=()
	[ "$kind" = server ] && mode=numbers
	start_server "$d" "$kind" "$host" "$port" "$nss" || { result_fail "$name" "server did not start"; logs "$d"; return; }
	start_client "$d" "$mode" "$host" "$port" "$nsc"
	if ! wait_until 10 count_above "$d" 50; then
		result_fail "$name" "client got no answers before the dump: $(cat "$d/error" 2>/dev/null)"
		logs "$d"
		return
	fi
	if [ -n "$nss" ]; then
		ext=(--external "net[$(stat -L -c %i "/run/netns/$nss")]:$nss")
		join=(--join-ns "net:/run/netns/$nss")
	fi
	mkdir -p "$d/img"
	local pre=()
	[ -n "$nsc" ] && pre=(nsenter "--net=/run/netns/$nsc")
	if [ "$kind" = redis ]; then # requests that wait unread: the server stopped
		kill -STOP "$SPID"
		"${pre[@]}" redis-cli -h "$host" -p "$port" PING </dev/null >"$d/ping.out" 2>&1 &
		PING_PID=$!
		sleep 0.3
	fi
	run_stasis "$d/dump.out" 60 dump -t "$SPID" -D "$d/img" --tcp-established "${ext[@]}" -o dump.log -v4
	if [ "$ZRC" != 0 ]; then
		result_fail "$name" "dump exited $ZRC"
		logs "$d"
		return
	fi
	if [ "$kind" = redis ] && { ! grep -q "ESTABLISHED): 0 bytes to send, 54 to read" "$d/img/dump.log" ||
		! grep -q "TCP listener $host:$port: 1 connections waiting to be accepted" "$d/img/dump.log"; }; then
		result_fail "$name" "the client's request was not unread, or redis-cli's connection not waiting to be accepted, at the dump"
		logs "$d"
		kill "$PING_PID"
		return
	fi
	wait_until 10 pid_free "$SPID"
	local tables
	tables=$(stasis_tables)
	[ -n "$nss" ] && tables=$(ip netns exec "$nss" nft list tables 2>/dev/null | grep -o 'stasis-[a-z]*-[0-9-]*' | tr '\n' ' ')
	if [[ $tables != *"stasis-dumped-"* ]]; then
		result_fail "$name" "no lock kept between dump and restore (tables: '$tables')"
		return
	fi
	sleep "$delay"
	run_stasis "$d/restore.out" 60 restore -D "$d/img" -d "${join[@]}" -o restore.log -v4
	if [ "$ZRC" != 0 ]; then
		result_fail "$name" "restore exited $ZRC"
		logs "$d"
		return
	fi
	track_pid "$SPID"
	local also=""
	if [ "$kind" = redis ]; then
		kill -CONT "$SPID"
		if ! wait_until 10 not_alive "$PING_PID" || ! grep -qx PONG "$d/ping.out"; then
			kill "$PING_PID" 2>/dev/null
			result_fail "$name" "the PING waiting in the accept queue at the dump got no answer ('$(cat "$d/ping.out")')"
			logs "$d"
			return
		fi
		also=", the request that waited unread and the PING that waited in the accept queue answered"
	fi
	if ! client_goes_on "$d"; then
		result_fail "$name" "$CLIENT_WHY"
		logs "$d"
		return
	fi
	tables=$(stasis_tables)
	[ -n "$nss" ] && tables="$tables$(ip netns exec "$nss" nft list tables 2>/dev/null | grep -o 'stasis-[a-z]*-[0-9-]*')"
	stop_client "$d"
	kill_ours "$SPID"
	if [ -n "$tables" ]; then
		result_fail "$name" "nftables tables left after the restore: $tables"
		return
	fi
	result_ok "$name (answers: $(count_of "$d"), restored after ${delay}s$also)"
}

# the two namespaces of the test, a veth pair between them
make_namespaces() {
	ip netns add "$NS_A" && ip netns add "$NS_B" &&
		ip link add "sa$$" netns "$NS_A" type veth peer name "sb$$" netns "$NS_B" &&
		ip -n "$NS_A" addr add 10.231.7.1/24 dev "sa$$" && ip -n "$NS_B" addr add 10.231.7.2/24 dev "sb$$" &&
		ip -n "$NS_A" link set lo up && ip -n "$NS_B" link set lo up &&
		ip -n "$NS_A" link set "sa$$" up && ip -n "$NS_B" link set "sb$$" up
}

case_refuse() {
	local d=$ZOO_TMP/refuse port
	port=$(free_port)
	start_server "$d" server 127.0.0.1 "$port" || { result_fail refuse "server did not start"; return; }
	start_client "$d" numbers 127.0.0.1 "$port"
	wait_until 10 count_above "$d" 5
	mkdir -p "$d/img"
	run_stasis "$d/dump.out" 60 dump -t "$SPID" -D "$d/img" -o dump.log
	if [ "$ZRC" = 0 ] || ! grep -q "TCP connection 127.0.0.1:$port -> 127.0.0.1:[0-9]* is ESTABLISHED: pass --tcp-established" "$d/dump.out"; then
		result_fail refuse "dump exited $ZRC without naming the connection"
		logs "$d"
	elif ! client_goes_on "$d"; then
		result_fail refuse "after the refused dump: $CLIENT_WHY"
	else
		result_ok "refuse ($(grep -o 'TCP connection.*ESTABLISHED' "$d/dump.out"))"
	fi
	stop_client "$d"
	kill_ours "$SPID"
}

# restore_and_stop D N: restore D/img (N-th time), SIGTERM the copy; 0 if it PASSed
restore_and_stop() {
	local d=$1 n=$2 rpid
	sed -i 's/PASS/pass/' "$d/out" # an earlier copy's verdict does not count (same size: fd 1's offset is restored)
	run_stasis "$d/restore$n.out" 60 restore -D "$d/img" -d --pidfile "$d/restored.pid" -o "restore$n.log" -v4
	if [ "$ZRC" != 0 ]; then
		ZERR="restore $n exited $ZRC: $(grep -h Error "$d/img/restore$n.log" | tail -n 2)"
		return 1
	fi
	rpid=$(cat "$d/restored.pid")
	track_pid "$rpid"
	zoo_stop "$rpid" "$d" "$d/out" || return 1
	[ "$ZVERDICT" = PASS ] || [[ $ZVERDICT == "PASS "* ]] || { ZERR="restore $n: $ZVERDICT"; return 1; }
}

case_rerestore() {
	local d=$ZOO_TMP/rerestore tw
	mkdir -p "$d/img"
	if ! build_zoo || ! zoo_start tcp-established "$d"; then
		result_fail rerestore "tcp-established did not start: $ZERR"
		return
	fi
	run_stasis "$d/dump.out" 60 dump -t "$ZPID" -D "$d/img" --tcp-established -o dump.log -v4
	if [ "$ZRC" != 0 ]; then
		result_fail rerestore "dump exited $ZRC"
		show_tail "$d/dump.out" "$d/img/dump.log"
		kill_ours "$ZPID"
		return
	fi
	wait_until 10 pid_free "$ZPID"
	if ! restore_and_stop "$d" 1 || ! restore_and_stop "$d" 2; then
		result_fail rerestore "$ZERR"
		show_tail "$d/img/restore1.log" "$d/img/restore2.log" "$d/out"
		return
	fi
	tw=$(grep -c "was in TIME_WAIT" "$d/img/restore2.log")
	if [ "$tw" -lt 1 ]; then
		result_fail rerestore "the second restore met no TIME_WAIT (the case proves nothing)"
		return
	fi
	result_ok "rerestore (restored again at once: $tw connections' TIME_WAIT cleared, PASS)"
}

case_lock_dump_fail() {
	local d=$ZOO_TMP/lock-dump-fail port
	port=$(free_port)
	start_server "$d" server 127.0.0.1 "$port" || { result_fail lock-dump-fail "server did not start"; return; }
	start_client "$d" numbers 127.0.0.1 "$port"
	wait_until 10 count_above "$d" 5
	mkdir -p "$d/img"
	STASIS_FAULT=after-images run_stasis "$d/dump.out" 60 dump -t "$SPID" -D "$d/img" --tcp-established -o dump.log -v4
	local tables
	tables=$(stasis_tables)
	if [ "$ZRC" = 0 ]; then
		result_fail lock-dump-fail "the dump did not fail"
	elif [ -n "$tables" ]; then
		result_fail lock-dump-fail "tables left: $tables"
	elif ! grep -q "TCP connections locked" "$d/img/dump.log" 2>/dev/null && ! grep -q "TCP connections locked" "$d/dump.out"; then
		result_fail lock-dump-fail "the dump never locked the network"
		logs "$d"
	elif ! client_goes_on "$d"; then
		result_fail lock-dump-fail "$CLIENT_WHY"
		logs "$d"
	else
		result_ok "lock-dump-fail (no table left, the connection goes on)"
	fi
	stop_client "$d"
	kill_ours "$SPID"
}

case_lock_dump_killed() {
	local d=$ZOO_TMP/lock-dump-killed port tables
	port=$(free_port)
	start_server "$d" server 127.0.0.1 "$port" || { result_fail lock-dump-killed "server did not start"; return; }
	start_client "$d" numbers 127.0.0.1 "$port"
	wait_until 10 count_above "$d" 5
	mkdir -p "$d/img"
	(STASIS_FAULT=kill-at:after-images "$STASIS" dump -t "$SPID" -D "$d/img" --tcp-established \
		--leave-running -o dump.log -v4 </dev/null >"$d/dump.out" 2>&1
	exit $?) 2>/dev/null
	local rc=$?
	tables=$(stasis_tables)
	if [ "$rc" != 137 ]; then
		result_fail lock-dump-killed "the dump was not killed (exit $rc)"
		logs "$d"
	elif ! grep -q "TCP connections locked" "$d/img/dump.log" "$d/dump.out" 2>/dev/null; then
		result_fail lock-dump-killed "the dump never locked the network"
		logs "$d"
	elif [ -n "$tables" ]; then
		result_fail lock-dump-killed "tables left: $tables"
	elif ! client_goes_on "$d"; then
		result_fail lock-dump-killed "$CLIENT_WHY"
		logs "$d"
	else
		result_ok "lock-dump-killed (no table left, the connection goes on)"
	fi
	stop_client "$d"
	kill_ours "$SPID"
}

case_lock_restore_fail() {
	local d=$ZOO_TMP/lock-restore-fail port kid
	port=$(free_port)
	mkdir -p "$d"
	# a tree of two: the server and a sleeping child (STASIS_FAULT=restore-child fails the last)
	setsid $PY -c "import os,sys,runpy
if os.fork() == 0:
    import time; time.sleep(10000)
sys.argv = ['peer.py', 'server', '127.0.0.1', '$port', '$d/ready']
runpy.run_path('$PEER', run_name='__main__')" </dev/null >"$d/server.out" 2>&1 &
	SPID=$!
	disown
	track_pid "$SPID"
	wait_until 10 test -e "$d/ready"
	kid=$(pgrep -P "$SPID" | head -n1) # a restore gives it back its pid
	track_pid "$kid"
	start_client "$d" numbers 127.0.0.1 "$port"
	wait_until 10 count_above "$d" 5
	mkdir -p "$d/img"
	run_stasis "$d/dump.out" 60 dump -t "$SPID" -D "$d/img" --tcp-established -o dump.log -v4
	[ "$ZRC" = 0 ] || { result_fail lock-restore-fail "dump exited $ZRC"; logs "$d"; return; }
	wait_until 10 pid_free "$SPID"
	STASIS_FAULT=restore-child run_stasis "$d/restore.out" 60 restore -D "$d/img" -d -o restore.log -v4
	local tables
	tables=$(stasis_tables)
	if [ "$ZRC" = 0 ]; then
		result_fail lock-restore-fail "the restore did not fail"
		kill_ours "$SPID"
	elif [ "$tables" != "stasis-dumped-$SPID " ]; then
		result_fail lock-restore-fail "after the failed restore the tables are '$tables', not the dump's only"
	else
		run_stasis "$d/restore.out" 60 restore -D "$d/img" -d -o restore2.log -v4
		track_pid "$SPID"
		if [ "$ZRC" != 0 ]; then
			result_fail lock-restore-fail "the second restore exited $ZRC"
			logs "$d"
		elif ! client_goes_on "$d"; then
			result_fail lock-restore-fail "$CLIENT_WHY"
		elif [ -n "$(stasis_tables)" ]; then
			result_fail lock-restore-fail "tables left after the second restore: $(stasis_tables)"
		else
			result_ok "lock-restore-fail (only the dump's table stayed, then none; the connection goes on)"
		fi
	fi
	stop_client "$d"
	kill_ours "$SPID"
	kill_ours "$kid"
}

if ! command -v nft >/dev/null; then
	stasis_tables() { echo ""; } # no way to look: the lock's own tests are then weaker
fi
cr_case numbers server 127.0.0.1 "$(free_port)" 0
[ "$QUICK" = 1 ] || cr_case numbers-30s server 127.0.0.1 "$(free_port)" 30
if make_namespaces; then
	cr_case redis redis 10.231.7.1 6379 0 "$NS_A" "$NS_B"
	cr_case http http 10.231.7.1 8080 0 "$NS_A" "$NS_B"
else
	result_fail namespaces "cannot make the test's network namespaces"
fi
case_refuse
case_rerestore
case_lock_dump_fail
case_lock_dump_killed
case_lock_restore_fail
summary
