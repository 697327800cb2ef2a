#!/bin/bash
# tun/tap devices a tree made in a network namespace that is the engine's (as Docker and Podman
# hand theirs over: `--external net[INODE]:KEY` on dump, `--join-ns net:PATH` on restore), as a
# VPN in a container makes them. The tree: the zoo's tun program (tests/zoo/tun.c) started in
# namespace E of this script with ZOO_TUN_NETNS=keep: tun zt0 with 10.77.0.1/24 and a route
# 10.78.0.0/16 dev zt0, tap zp0, persistent tap zq0, multi-queue tap zm0 (two queues). It is dumped with E as the engine's, E is
# deleted, and the restore is given another namespace, as an engine makes a new one.
#
#   tests/net/run-tun-engine.sh [--keep]
#
# Cases ("ok NAME" / "FAIL NAME: why", then "N passed, N failed"):
#   tun-engine/restore      into a new namespace N1 (lo only): the program PASSes (its devices,
#                           files, address, route and traffic, tests/zoo/tun.c); N1 has zt0,
#                           zp0, zq0, zm0 and the route
#   tun-engine/renumbered   into N2, whose veth pair (the engine's interfaces) holds zt0's old
#                           index: the restore says zt0 gets another index, and zt0 has its
#                           address and route there (the program, which checks its indexes,
#                           is then killed)
#   tun-engine/name-taken   into N3, which has a tun (not a tap) zq0 already: the restore fails
#                           naming zq0, no process is left, N3 holds only what it held
#   tun-engine/there-already into N5, which has the persistent tap zq0 already (as the same
#                           namespace given back would): the restore uses it as it is (its log
#                           says so, zq0 keeps its index there) and makes zt0, zp0 and zm0
#   tun-engine/bridge       the program started in E2, where this script made bridge zb0
#                           (priority 4096, 10.79.0.1/24, a route 10.80.0.0/16 via 10.79.0.2)
#                           with ports zv0 (of an inner veth pair zv0/zv1) and, once the program
#                           is READY, its tap zp0: restored into N6, the program PASSes and N6
#                           has zb0 (a bridge, priority 4096, its address and route), zv0/zv1
#                           (a veth pair) and zp0 as its ports
#   tun-engine/fails-late   a tree of two (sh and the program) restored into N4 with its last
#                           process failing (STASIS_FAULT=restore-child) once it made the four
#                           devices (its log says so): no process is left, and they are gone

# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=../zoo/lib.sh
. "$(dirname "$0")/../zoo/lib.sh"

for a in "$@"; do
	case $a in
	--keep | -k) ZOO_KEEP=1 ;;
	*) echo "unknown option $a" >&2; exit 2 ;;
	esac
done

NS=stasis-tun-$$
NAMESPACES=()
zoo_setup_tmp
trap 'for n in "${NAMESPACES[@]}"; do ip netns del "$n" 2>/dev/null; done; zoo_cleanup' EXIT

make -s -C "$ZOO_DIR" bin/tun >/dev/null 2>&1
if [ ! -x "$ZOO_BIN/tun" ] || [ ! -c /dev/net/tun ]; then
	result_fail tun-engine "no $ZOO_BIN/tun (make -C tests/zoo) or no /dev/net/tun"
	summary
	exit 1
fi

new_ns() { ip netns add "$NS-$1" && NAMESPACES+=("$NS-$1") && echo "/run/netns/$NS-$1"; }
links_of() { ip -n "$NS-$1" -br link 2>/dev/null | awk '{ sub(/@.*/, "", $1); print $1 }' | sort | tr '\n' ' '; }
logs() { show_tail "$1/dump.out" "$1/img/dump.log" "$1/restore.out" "$1/img/restore.log" "$1/out"; }

# start_tree DIR NS [shell]: the program (alone, or under sh) in namespace NS; TPID its pid,
# RPID the tree's root
start_tree() {
	local d=$1 ns=$2
	mkdir -p "$d/w" "$d/img"
	local prog=("$ZOO_BIN/tun")
	[ "${3:-}" = shell ] && prog=(sh -c "$ZOO_BIN/tun; exit 0")
	(cd "$d/w" && ZOO_TUN_NETNS=keep ZOO_PIDFILE="$d/pidf" ZOO_TMPDIR="$d/w" \
		exec setsid nsenter "--net=/run/netns/$NS-$ns" "${prog[@]}") </dev/null >"$d/out" 2>&1 &
	disown
	wait_until 10 first_line_is_ready "$d/out" || return 1
	TPID=$(cat "$d/pidf")
	RPID=$TPID
	[ "${3:-}" = shell ] && RPID=$(awk '{ print $4 }' "/proc/$TPID/stat")
	track_pid "$TPID"
	[ "$RPID" != "$TPID" ] && track_pid "$RPID"
	return 0
}

# dump_tree DIR NS: dumped with NS as the engine's namespace, which is then deleted
dump_tree() {
	local d=$1 ns=$2
	run_stasis "$d/dump.out" 60 dump -t "$RPID" -D "$d/img" --shell-job \
		--external "net[$(stat -L -c %i "/run/netns/$NS-$ns")]:eng" -o dump.log -v4
	[ "$ZRC" = 0 ] || return 1
	wait_until 10 pid_free "$TPID"
	ip netns del "$NS-$ns"
}

# restore_into DIR NS: ZRC its exit status
restore_into() {
	run_stasis "$1/restore.out" 60 restore -D "$1/img" --shell-job -d --join-ns "net:/run/netns/$NS-$2" \
		-o restore.log -v4
}

# restored CASE DIR NS: restore_into; 0 with the program tracked again, or 1 with the failure said
restored() {
	restore_into "$2" "$3"
	if [ "$ZRC" != 0 ]; then
		result_fail "$1" "restore exited $ZRC"
		logs "$2"
		return 1
	fi
	track_pid "$TPID"
}

d=$ZOO_TMP/dumped
if ! new_ns e1 >/dev/null || ! start_tree "$d" e1; then
	result_fail tun-engine/start "the program is not READY"
	logs "$d"
	summary
	exit 1
fi
zt0_index=$(ip -n "$NS-e1" -o link show zt0 | cut -d: -f1)
if ! dump_tree "$d" e1; then
	result_fail tun-engine/dump "dump exited $ZRC"
	logs "$d"
	summary
	exit 1
fi

# ---- tun-engine/restore -----------------------------------------------------------------
new_ns n1 >/dev/null
if restored tun-engine/restore "$d" n1; then
	links=$(links_of n1)
	route=$(ip -n "$NS-n1" route show 10.78.0.0/16)
	kill -TERM "$TPID"
	wait_until 10 grep -qE '^(PASS|FAIL)' "$d/out"
	if [ "$links" != "lo zm0 zp0 zq0 zt0 " ] || [[ $route != *"dev zt0"* ]]; then
		result_fail tun-engine/restore "the new namespace has '$links', route '$route' (expected lo zm0 zp0 zq0 zt0 and 10.78.0.0/16 dev zt0)"
		logs "$d"
	elif ! grep -q '^PASS' "$d/out"; then
		result_fail tun-engine/restore "the program did not PASS: $(tail -n 1 "$d/out")"
		logs "$d"
	else
		result_ok "tun-engine/restore ($(grep '^PASS' "$d/out"))"
	fi
fi
wait_until 10 pid_free "$TPID"

# ---- tun-engine/renumbered --------------------------------------------------------------
new_ns n2 >/dev/null
ip -n "$NS-n2" link add eng0 type veth peer name eng1
taken=$(ip -n "$NS-n2" -o link | cut -d: -f1 | tr -d ' ' | grep -cx "$zt0_index")
if restored tun-engine/renumbered "$d" n2; then
	now=$(ip -n "$NS-n2" -o link show zt0 | cut -d: -f1)
	addr=$(ip -n "$NS-n2" -4 -o addr show dev zt0 | awk '{ print $4 }')
	route=$(ip -n "$NS-n2" route show 10.78.0.0/16)
	kill_ours "$TPID"
	if [ "$taken" != 1 ] || [ "$now" = "$zt0_index" ] || ! grep -q "index $zt0_index of tun/tap zt0 is taken.*it gets another" "$d/restore.out"; then
		result_fail tun-engine/renumbered "zt0 had index $zt0_index (taken in N2: $taken), has $now; the restore did not say it got another"
		logs "$d"
	elif [ "$addr" != 10.77.0.1/24 ] || [[ $route != *"dev zt0"* ]]; then
		result_fail tun-engine/renumbered "zt0 (index $now) has address '$addr', route '$route' (expected 10.77.0.1/24, 10.78.0.0/16 dev zt0)"
		logs "$d"
	else
		result_ok "tun-engine/renumbered (zt0 from index $zt0_index to $now, its address and route with it)"
	fi
fi
wait_until 10 pid_free "$TPID"

# ---- tun-engine/name-taken --------------------------------------------------------------
new_ns n3 >/dev/null
ip -n "$NS-n3" tuntap add dev zq0 mode tun
before=$(links_of n3)
restore_into "$d" n3
after=$(links_of n3)
if [ "$ZRC" = 0 ] || ! clean_failure "$ZRC" || ! grep -q "has an interface zq0 .*already" "$d/restore.out"; then
	result_fail tun-engine/name-taken "restore exited $ZRC without naming zq0"
	logs "$d"
elif ! pid_free "$TPID" || [ "$after" != "$before" ]; then
	result_fail tun-engine/name-taken "after the failed restore: pid $TPID $(pid_free "$TPID" && echo free || echo alive), N3 has '$after' (had '$before')"
else
	result_ok "tun-engine/name-taken (refused naming zq0; N3 holds '$after' as before)"
fi

# ---- tun-engine/there-already -------------------------------------------------------------
new_ns n5 >/dev/null
ip -n "$NS-n5" tuntap add dev zq0 mode tap pi user 4242
zq0_index=$(ip -n "$NS-n5" -o link show zq0 | cut -d: -f1)
if restored tun-engine/there-already "$d" n5; then
	links=$(links_of n5)
	now=$(ip -n "$NS-n5" -o link show zq0 | cut -d: -f1)
	kill_ours "$TPID"
	if ! grep -q "tun/tap zq0 is in the network namespace given for the tree already.*used as it is" "$d/img/restore.log" ||
		[ "$now" != "$zq0_index" ] || [ "$links" != "lo zm0 zp0 zq0 zt0 " ]; then
		result_fail tun-engine/there-already "N5 has '$links', zq0 index $now (was $zq0_index); the log did not say zq0 was used as it is"
		logs "$d"
	else
		result_ok "tun-engine/there-already (zq0 used as it is at index $now; zt0, zp0 and zm0 made)"
	fi
fi
wait_until 10 pid_free "$TPID"

# ---- tun-engine/bridge -------------------------------------------------------------------
# bridge_view NS: zb0's kind and priority, its ports, its address and route (one line each)
bridge_view() {
	ip -n "$NS-$1" -d -o link show zb0 2>/dev/null | grep -o 'bridge .*priority [0-9]*' | grep -o '^bridge\|priority [0-9]*' | tr '\n' ' '
	echo
	ip -n "$NS-$1" -o link show master zb0 2>/dev/null | awk '{ sub(/[@:].*/, "", $2); print $2 }' | sort | tr '\n' ' '
	echo
	ip -n "$NS-$1" -d -o link show zv1 2>/dev/null | grep -o 'veth'
	ip -n "$NS-$1" -4 -o addr show dev zb0 2>/dev/null | awk '{ print $4 }'
	ip -n "$NS-$1" route show 10.80.0.0/16 2>/dev/null
}
d=$ZOO_TMP/bridge
new_ns e3 >/dev/null
if ! ip -n "$NS-e3" link add zb0 type bridge priority 4096 stp_state 0 ||
	! ip -n "$NS-e3" link add zv0 type veth peer name zv1 || ! ip -n "$NS-e3" link set zv0 master zb0 ||
	! ip -n "$NS-e3" addr add 10.79.0.1/24 dev zb0 || ! ip -n "$NS-e3" link set zv0 up ||
	! ip -n "$NS-e3" link set zv1 up || ! ip -n "$NS-e3" link set zb0 up ||
	! ip -n "$NS-e3" route add 10.80.0.0/16 via 10.79.0.2 dev zb0 onlink; then
	result_fail tun-engine/bridge "cannot make bridge zb0 with its veth pair in $NS-e3"
elif ! start_tree "$d" e3 || ! ip -n "$NS-e3" link set zp0 master zb0; then
	result_fail tun-engine/bridge "the program is not READY, or zp0 cannot join zb0"
	logs "$d"
else
	bridge_view e3 >"$d/before"
	if ! dump_tree "$d" e3; then
		result_fail tun-engine/bridge "dump exited $ZRC"
		logs "$d"
	else
		new_ns n6 >/dev/null
		if restored tun-engine/bridge "$d" n6; then
			bridge_view n6 >"$d/after"
			kill -TERM "$TPID"
			wait_until 10 grep -qE '^(PASS|FAIL)' "$d/out"
			if ! cmp -s "$d/before" "$d/after" || [ "$(sed -n 2p "$d/after")" != "zp0 zv0 " ]; then
				result_fail tun-engine/bridge "N6 differs: $(diff "$d/before" "$d/after" | tr '\n' ' ') (ports: $(sed -n 2p "$d/after"))"
				logs "$d"
			elif ! grep -q '^PASS' "$d/out"; then
				result_fail tun-engine/bridge "the program did not PASS: $(tail -n 1 "$d/out")"
				logs "$d"
			else
				result_ok "tun-engine/bridge (zb0 $(head -n 1 "$d/after" | tr -s ' '), ports $(sed -n 2p "$d/after"), its address and route; the program PASSes)"
			fi
		fi
	fi
fi
wait_until 10 pid_free "$TPID"

# ---- tun-engine/fails-late --------------------------------------------------------------
d=$ZOO_TMP/two
new_ns e2 >/dev/null
if ! start_tree "$d" e2 shell || [ "$RPID" = "$TPID" ] || ! dump_tree "$d" e2; then
	result_fail tun-engine/fails-late "the tree of two did not start or dump (dump exit ${ZRC:-none})"
	logs "$d"
else
	new_ns n4 >/dev/null
	STASIS_FAULT=restore-child restore_into "$d" n4
	after=$(links_of n4)
	if [ "$ZRC" = 0 ] || ! clean_failure "$ZRC"; then
		result_fail tun-engine/fails-late "restore exited $ZRC (expected a clean failure)"
		logs "$d"
		track_pid "$TPID"
		track_pid "$RPID"
	elif [ "$(grep -c 'interface z[tpqm]0 (tun) made in the network namespace given' "$d/img/restore.log")" != 4 ]; then
		result_fail tun-engine/fails-late "the restore failed before it made the four devices (its log)"
		logs "$d"
	elif ! pid_free "$TPID" || ! pid_free "$RPID" || [ "$after" != "lo " ]; then
		result_fail tun-engine/fails-late "after the failed restore: N4 has '$after' (expected lo only), pids $RPID $TPID free: $(pid_free "$RPID" && echo y || echo n) $(pid_free "$TPID" && echo y || echo n)"
		logs "$d"
	else
		result_ok "tun-engine/fails-late (nothing left: N4 holds lo only)"
	fi
fi
summary
