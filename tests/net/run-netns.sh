#!/bin/bash
# A tree in a network namespace of its own, configured like a container's, through dump and
# restore: everything about the namespace is checked from inside it, and a client outside
# keeps its connection. Only namespaces this script makes are touched: "the outside" is a
# namespace of the test (OUT, a bridge brN with 10.231.9.1/24 and fd00:231:9::1/64), where
# stasis runs, as an engine would in the host's.
#
#   tests/net/run-netns.sh [--keep]
#
# The tree: tests/net/peer.py's numbered-request server on 10.231.9.2 and a child of it that
# sleeps, in their namespace:
#   links      lo; eth0, a veth whose other end vo$$ is a port of brN outside (MTU 1400, MACs
#              set); br0, a bridge (forward_delay 7 s, priority 4096) with vb and wb, ends of
#              inner veth pairs va/vb and wa/wb, as ports; vb with port options (hairpin,
#              learning off, isolated, cost, priority, mcast_flood off, wb its backup port);
#              va in group 5, its GSO and GRO sizes set, in dormant mode; eth0 with another name
#              (altname ctr-uplink); va and wa down, the rest up
#   bridge     br0's forwarding entries: static ones on vb (one sticky), a local one on br0
#              itself, those it made for its ports' MACs (its own MAC is its least port's, and
#              that entry its port's); permanent multicast group entries (IPv4, IPv6, MAC, and
#              an (S, G) one)
#   addresses  10.231.9.2/24 and 10.231.9.3/24 (secondary), fd00:231:9::2/64 on eth0,
#              10.231.10.1/24 on br0, then 10.231.10.2/24 on eth0 (whose index is lower: the
#              kernel lists its addresses first, but br0's prefix route comes first); eth0's
#              IPv6 token ::2:31:9:2
#   routes     default via 10.231.9.1; 192.168.231.0/24 via 10.231.9.1 in table 100 (metric
#              7); fd00:231:8::/64 via fd00:231:9::1 (metric 50); a blackhole
#   nexthops   11 via 10.231.9.1 on eth0, 12 on eth0, 13 a blackhole, 20 a group of 11 (weight 2)
#              and 12; routes to 10.231.77.0/24 by 20, to 10.231.78.0/24 by 13 (table 100)
#   rules      from 10.231.9.3 lookup 100 (pref 1000); IPv6 fwmark 7 lookup 100 (pref 2000)
#   neighbours 10.231.9.9 -> 02:31:09:00:00:09 permanent; a proxy entry for fd00:231:9::99
#   sysctls    ip_forward, somaxconn, tcp_keepalive_time, eth0's rp_filter and IPv6
#              hop_limit, br0's accept_dad, ...: every net.{core,ipv4,ipv6,unix} sysctl
#   nftables   an inet table (a base chain, an interval set, a map, a named counter with
#              values, a quota, rules with comments), an ip nat table (masquerade)
#   qdiscs     va: htb (r2q 5, default 20) with classes 1:1 > 1:10 (a pfifo under it), 1:20;
#              vb: tbf with a bfifo under it; br0: clsact; eth0: ingress
#   xfrm       IPsec policies: in (block, priority 10, a mark), fwd (a tunnel template, level
#              use), out (IPv6, TCP port 443, a transport template); the default for fwd block;
#              the IPv4 hash thresholds 24/16
#   xtables    legacy iptables (iptables-legacy): filter with a chain of its own, a REJECT, a
#              rule with counters set (-c) and a comment, a limit, FORWARD's policy DROP;
#              mangle (MARK), raw (NOTRACK); ip6tables' filter with counters set
#
# Cases ("ok NAME" / "FAIL NAME: why", then "N passed, N failed"):
#   netns/links, /bridge, /addresses, /routes, /nexthops, /rules, /neighbours, /sysctls, /qdiscs,
#                  /nftables, /xtables, /xfrm: that part of
#                  the namespace is the same, as its own tools show it from inside, after the
#                  restore as before the dump
#   netns/outer-end-gone  when the dump returns, the veth's outer end is gone already (the
#                  dump deleted the veth; its dying namespace would take it only later)
#   netns/outside  the outer end is back in OUT: same name, MAC, MTU, bridge, up
#   netns/client   the client outside answered on through dump and restore (no reset, no
#                  reconnect)
#   netns/accept-queue  a second client outside, connected and having written 30000 bytes,
#                  waited in the server's accept queue through dump and restore: the server
#                  accepts it afterwards, gets every byte (it answers their SHA-256), and the
#                  client saw no reset
#   netns/checks-can-fail  a change to each part after the restore is seen by its check
# Then the tree is dumped again (the client still connected):
#   netns/restore-fails-clean  a restore that fails before anything is made (the outer end's
#                  name is taken) leaves nothing in OUT
#   netns/restore-fails-late  a restore that fails once the namespace is made (the tree's last
#                  process fails, STASIS_FAULT=restore-child) leaves no outer end in OUT
#   netns/images-corrupt  the images made hostile: xtables.img (a hook's rules past the
#                  table's end; an entry longer than the table), xfrm.img (a policy of a socket's
#                  direction), net-fdb.img (a group entry's group cut short): the restore refuses
#                  each naming the image, before it makes anything
#   netns/veth-pair  restored with --veth-pair eth0=vr$$@brN: the outer end has its new name,
#                  is a port of brN, and the client goes on through it
#   netns/refuse-vxlan  a namespace with a vxlan fails the dump naming it; the tree runs on
#   netns/refuse-tc-filter  one with a tc filter (u32 under an htb) likewise
#   netns/refuse-nexthop-resilient  one with a resilient nexthop group likewise
#   netns/refuse-xfrm-socket-policy  one with a socket that has an IPsec policy of its own
#                  (IP_XFRM_POLICY, an IKE daemon's bypass) likewise
#   netns/refuse-xdp  one with an XDP program on an interface (tests/net/xdp-pass.c) likewise
#   netns/refuse-mdb-bridge-down  one with a bridge that holds a multicast group entry while
#                  it is down (a new bridge takes none then) likewise
#   netns/macvlan  a namespace with a macvlan on an inner veth and one on a device outside
#                  (ml$$ in OUT): after the restore both are as before (mode, MAC, MTU, state,
#                  lower device), with the outer one's address, which answers from OUT (a
#                  connection refused)
#   netns/macvlan-lower-gone  restored with --external macvlan[mvo]:NAME of a device OUT lacks:
#                  the restore fails naming it, and no process is left
#   netns/macvlan-external  restored with --external macvlan[mvo]:ml2$$: mvo is on that device

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

PY=/usr/bin/python3
PEER=$ZOO_ROOT/tests/net/peer.py
OUT=stasis-netns-out-$$
BR=brN$$
VO=vo$$
PORT=7319
zoo_setup_tmp
trap 'ip netns del "$OUT" 2>/dev/null; zoo_cleanup' EXIT

# run stasis as the engine would, in the outside namespace
ZOO_WRAP=(nsenter "--net=/run/netns/$OUT")
in_out() { ip netns exec "$OUT" "$@"; }
inside() { nsenter -t "$SPID" -n "$@"; }

make_outside() {
	ip netns add "$OUT" &&
		ip -n "$OUT" link set lo up &&
		ip -n "$OUT" link add "$BR" type bridge &&
		ip -n "$OUT" addr add 10.231.9.1/24 dev "$BR" &&
		ip -n "$OUT" addr add fd00:231:9::1/64 dev "$BR" nodad &&
		ip -n "$OUT" link set "$BR" up
}

# the server waits in its new namespace until configure has made it a container's
start_tree() {
	local d=$1
	mkdir -p "$d"
	setsid nsenter "--net=/run/netns/$OUT" unshare -n -- /bin/sh -c \
		"while [ ! -e '$d/go' ]; do sleep 0.05; done; exec $PY -c \"import os, sys, runpy, time
if os.fork() == 0:
    time.sleep(100000)
sys.argv = ['peer.py', 'server', '10.231.9.2', '$PORT', '$d/ready', '$d/w']
runpy.run_path('$PEER', run_name='__main__')\"" </dev/null >"$d/server.out" 2>&1 &
	SPID=$!
	disown
	track_pid "$SPID"
	wait_until 10 ns_of_its_own "$SPID"
}

# PID is in a network namespace of its own (unshare is done): neither OUT nor the host's
ns_of_its_own() {
	local ns
	ns=$(stat -L -c %i "/proc/$1/ns/net" 2>/dev/null) || return 1
	[ "$ns" != "$(stat -L -c %i "/run/netns/$OUT")" ] && [ "$ns" != "$(stat -L -c %i /proc/self/ns/net)" ]
}

configure() {
	local d=$1
	ns_of_its_own "$SPID" || return 1
	ip -n "$OUT" link add "$VO" address 02:31:09:00:00:01 type veth peer name eth0 \
		address 02:31:09:00:00:02 netns "/proc/$SPID/ns/net" || return 1
	ip -n "$OUT" link set "$VO" master "$BR" up || return 1
	inside sh -ec "
		ip link set lo up
		ip link set eth0 mtu 1400 up
		ip link add br0 type bridge forward_delay 700 priority 4096
		ip link add va type veth peer name vb
		ip link set vb master br0
		ip link add wa type veth peer name wb
		ip link set wb master br0
		ip link set vb type bridge_slave hairpin on learning off isolated on cost 7 priority 5 \
			mcast_flood off backup_port wb
		ip link set va group 5 gso_max_size 32000 gso_max_segs 100 gro_max_size 40000 mode dormant
		ip link property add dev eth0 altname ctr-uplink
		ip link set vb up
		ip link set wb up
		ip link set br0 up
		bridge fdb add 02:31:0a:00:00:11 dev vb master static
		bridge fdb add 02:31:0a:00:00:12 dev vb master static sticky
		bridge fdb add 02:31:0a:00:00:13 dev br0 self local
		bridge mdb add dev br0 port vb grp 239.1.1.1 permanent
		bridge mdb add dev br0 port wb grp ff0e::1 permanent
		bridge mdb add dev br0 port vb grp 01:02:03:04:05:06 permanent
		bridge mdb add dev br0 port vb grp 239.1.1.4 src 10.1.1.1 permanent
		ip addr add 10.231.9.2/24 dev eth0
		ip addr add 10.231.9.3/24 dev eth0
		ip addr add fd00:231:9::2/64 dev eth0 nodad
		ip token set ::2:31:9:2/64 dev eth0
		ip addr add 10.231.10.1/24 dev br0
		ip addr add 10.231.10.2/24 dev eth0
		ip route add default via 10.231.9.1
		ip route add 192.168.231.0/24 via 10.231.9.1 table 100 metric 7
		ip -6 route add fd00:231:8::/64 via fd00:231:9::1 metric 50
		ip route add blackhole 10.231.66.0/24
		ip nexthop add id 11 via 10.231.9.1 dev eth0
		ip nexthop add id 12 dev eth0
		ip nexthop add id 13 blackhole
		ip nexthop add id 20 group 11,2/12
		ip route add 10.231.77.0/24 nhid 20
		ip route add 10.231.78.0/24 nhid 13 table 100
		ip rule add from 10.231.9.3 table 100 pref 1000
		ip -6 rule add fwmark 7 table 100 pref 2000
		ip neigh add 10.231.9.9 lladdr 02:31:09:00:00:09 dev eth0 nud permanent
		ip -6 neigh add proxy fd00:231:9::99 dev eth0
		sysctl -qw net.ipv4.ip_forward=1 net.core.somaxconn=777 net.ipv4.tcp_keepalive_time=1234 \
			net.ipv4.conf.eth0.rp_filter=2 net.ipv6.conf.eth0.hop_limit=33 \
			net.ipv6.conf.br0.accept_dad=0 net.ipv4.ip_local_port_range='20000 40000'
		nft -f - <<'EOF'
table inet filt {
	counter stale { packets 123 bytes 4567 }
	quota q { over 10 mbytes }
	set blocked { type ipv4_addr; flags interval; elements = { 10.99.0.0/16, 10.98.1.1 } }
	map ports { type inet_service : verdict; elements = { 22 : accept, 23 : drop } }
	chain input {
		type filter hook input priority 0; policy accept;
		ip saddr @blocked counter drop
		tcp dport vmap @ports
		tcp dport 8 counter name stale accept comment \"never hit\"
		tcp dport 9 quota name q drop
	}
}
table ip nat {
	chain post { type nat hook postrouting priority 100; oifname \"eth0\" ip daddr 10.77.0.0/16 masquerade; }
}
EOF
		iptables-legacy -N SVC
		iptables-legacy -A SVC -p tcp --dport 9 -j REJECT --reject-with tcp-reset
		iptables-legacy -A INPUT -j SVC
		iptables-legacy -A INPUT -p tcp --dport 8 -c 123 4567 -m comment --comment never -j ACCEPT
		iptables-legacy -A INPUT -p icmp -m limit --limit 5/s -j ACCEPT
		iptables-legacy -P FORWARD DROP
		iptables-legacy -t mangle -A OUTPUT -p tcp --dport 5 -j MARK --set-mark 7
		iptables-legacy -t raw -A PREROUTING -p udp --dport 53 -j NOTRACK
		ip6tables-legacy -A INPUT -p tcp --dport 9 -c 5 6 -j REJECT
		tc qdisc add dev va root handle 1: htb default 20 r2q 5
		tc class add dev va parent 1: classid 1:1 htb rate 10mbit ceil 20mbit
		tc class add dev va parent 1:1 classid 1:10 htb rate 2mbit ceil 10mbit prio 1
		tc class add dev va parent 1:1 classid 1:20 htb rate 1mbit
		tc qdisc add dev va parent 1:10 handle 10: pfifo limit 50
		tc qdisc add dev vb root handle 2: tbf rate 1mbit burst 32kbit latency 400ms
		tc qdisc add dev vb parent 2:1 handle 21: bfifo limit 30000
		tc qdisc add dev br0 clsact
		tc qdisc add dev eth0 ingress
		ip xfrm policy add dir in action block src 10.9.0.0/16 dst 0.0.0.0/0 priority 10 mark 0x5 mask 0xff
		ip xfrm policy add dir fwd src 10.0.0.0/24 dst 10.0.1.0/24 \
			tmpl src 1.1.1.1 dst 2.2.2.2 proto esp reqid 5 mode tunnel level use
		ip xfrm policy add dir out src fd00::/64 dst fd01::/64 proto tcp dport 443 tmpl proto esp mode transport
		ip xfrm policy setdefault fwd block
		ip xfrm policy set hthresh4 24 16
	" >"$d/configure.out" 2>&1 || return 1
	touch "$d/go"
	wait_until 10 test -e "$d/ready" && KID=$(pgrep -P "$SPID" | head -n 1) && track_pid "$KID"
}

kill_tree() {
	kill_ours "$SPID"
	kill_ours "$KID"
	wait_until 10 pid_free "$SPID"
}

# snapshot DIR: each part of the namespace, as its tools show it from inside
snapshot() {
	local s=$1
	mkdir -p "$s"
	inside ip -o -d link | sed -E -e 's/@if[0-9]+//' -e 's/ +(hello|tcn|topology_change|gc|forward_delay|hold|message_age)_timer +[0-9.]+//g' >"$s/links"
	# (the entries configured, and the local ones the bridge makes for its ports' MACs, one of
	# which is its own: a bridge given a MAC would own it; those it learns are its own)
	{ inside bridge fdb show br br0 | grep -v self | grep -E 'permanent|static'; inside bridge mdb show | grep permanent; } |
		sort >"$s/bridge"
	{ inside ip addr | sed -E 's/@if[0-9]+//'; inside ip token list; } >"$s/addresses"
	{ inside ip route show table all; inside ip -6 route show table all; } >"$s/routes"
	inside ip nexthop show | sort >"$s/nexthops"
	{ inside ip rule; inside ip -6 rule; } >"$s/rules"
	{ inside ip neigh show nud permanent; inside ip -6 neigh show proxy; } >"$s/neighbours"
	inside sysctl -a 2>/dev/null | grep -E '^net\.(core|ipv4|ipv6|unix)\.' |
		grep -v -E '^net\.ipv4\.(route\.(gc_|flush)|tcp_fastopen_key)' >"$s/sysctls"
	# counters that traffic moves (inline ones) are not compared; named objects are
	inside nft list ruleset | sed -E 's/counter packets [0-9]+ bytes [0-9]+/counter/' >"$s/nftables"
	# (tc lists interfaces in the order they were registered: sorted)
	{ inside tc -d qdisc show; inside tc -d class show dev va; inside tc -d class show dev vb; } | sort >"$s/qdiscs"
	# legacy iptables: the counters of rules traffic meets move; those of dport 8 never do
	{ inside iptables-legacy-save -c; inside ip6tables-legacy-save -c; } | grep -v '^#' |
		sed -E '/dport 8 /!s/\[[0-9]+:[0-9]+\]/[]/' >"$s/xtables"
	# (in the kernel's order, newest first; with their indices)
	{ inside ip xfrm policy; inside ip -s xfrm policy | grep -E ' index '; inside ip xfrm policy getdefault
		inside ip -s -s xfrm policy count | grep thresholds; } >"$s/xfrm"
}

PARTS=(links bridge addresses routes nexthops rules neighbours sysctls qdiscs nftables xtables xfrm)

compare() { # compare BEFORE AFTER: one case per part
	for p in "${PARTS[@]}"; do
		if cmp -s "$1/$p" "$2/$p"; then
			result_ok "netns/$p ($(wc -l <"$1/$p") lines the same)"
		else
			result_fail "netns/$p" "differs after the restore: $(diff "$1/$p" "$2/$p" | head -n 6 | tr '\n' '|')"
		fi
	done
}

outer_end() { in_out ip -o link show "$1" 2>/dev/null | sed -E -e 's/^[0-9]+: //' -e 's/@if[0-9]+//' -e 's/ +link-netnsid [0-9]+//'; }

count_of() { cat "$1/count" 2>/dev/null || echo 0; }
count_above() { [ "$(count_of "$1")" -gt "$2" ]; }
client_goes_on() {
	local d=$1 before
	before=$(count_of "$d")
	proc_alive "$CPID" && [ ! -e "$d/error" ] && wait_until 90 count_above "$d" $((before + 20))
}

logs() { show_tail "$1/configure.out" "$1/dump.out" "$1/img/dump.log" "$1/restore.out" "$1/img/restore.log" "$1/server.out" "$1/client.out"; }

case_main() {
	local d=$ZOO_TMP/main
	start_tree "$d"
	if ! configure "$d"; then
		result_fail netns/setup "cannot configure the tree's namespace"
		logs "$d"
		return 1
	fi
	in_out "$PY" "$PEER" client numbers 10.231.9.2 $PORT "$d" </dev/null >"$d/client.out" 2>&1 &
	CPID=$!
	disown
	track_pid "$CPID"
	wait_until 10 count_above "$d" 50 || { result_fail netns/setup "the client got no answers"; logs "$d"; return 1; }
	# a second client, which the server does not accept before the dump
	mkdir -p "$d/w"
	in_out "$PY" "$PEER" waiter 10.231.9.2 $PORT 30000 "$d/w" </dev/null >"$d/waiter.out" 2>&1 &
	WPID=$!
	disown
	track_pid "$WPID"
	wait_until 10 test -e "$d/w/waiter-sent" || { result_fail netns/setup "the waiting client could not write"; logs "$d"; return 1; }
	sleep 1.5 # IPv6 duplicate address detection done: addresses as they stay
	snapshot "$d/before"
	local outer_before
	outer_before=$(outer_end "$VO")
	mkdir -p "$d/img"
	run_stasis "$d/dump.out" 60 dump -t "$SPID" -D "$d/img" --tcp-established -o dump.log -v4
	if [ "$ZRC" != 0 ]; then
		result_fail netns/dump "dump exited $ZRC"
		logs "$d"
		return 1
	fi
	# the veth went with the dump, not later with the dying namespace: its name is free for a
	# restore at once
	if in_out ip link show "$VO" >/dev/null 2>&1; then
		result_fail netns/outer-end-gone "the outer end $VO is still there when the dump returns"
	else
		result_ok "netns/outer-end-gone ($VO gone when the dump returned)"
	fi
	wait_until 10 pid_free "$SPID"
	run_stasis "$d/restore.out" 60 restore -D "$d/img" -d -o restore.log -v4
	if [ "$ZRC" != 0 ]; then
		result_fail netns/restore "restore exited $ZRC"
		logs "$d"
		return 1
	fi
	snapshot "$d/after"
	compare "$d/before" "$d/after"
	local outer_after
	outer_after=$(outer_end "$VO")
	if [ -n "$outer_after" ] && [ "$outer_after" = "$outer_before" ]; then
		result_ok "netns/outside ($outer_after)"
	else
		result_fail netns/outside "outer end was '$outer_before', is '$outer_after'"
	fi
	if client_goes_on "$d"; then
		result_ok "netns/client (answers: $(count_of "$d"))"
	else
		result_fail netns/client "client stuck at $(count_of "$d") answers: $(cat "$d/error" 2>/dev/null)"
		logs "$d"
	fi
	touch "$d/w/accept-now"
	wait_until 30 test -s "$d/w/result"
	if [ "$(cat "$d/w/result" 2>/dev/null)" = ok ] &&
		grep -q "1 connections waiting to be accepted taken" "$d/img/dump.log"; then
		result_ok "netns/accept-queue (the waiting client's 30000 bytes reached the server, which had not accepted it before the dump)"
	else
		result_fail netns/accept-queue "the waiting client says: $(cat "$d/w/result" 2>/dev/null || echo nothing)"
		logs "$d"
		show_tail "$d/waiter.out"
	fi

	# each check can fail: one change per part
	inside sh -c "ip link set va mtu 1300; ip addr del 10.231.10.1/24 dev br0; ip route del blackhole 10.231.66.0/24;
		ip rule del pref 1000; ip neigh del 10.231.9.9 dev eth0; ip nexthop del id 13; sysctl -qw net.core.somaxconn=778;
		nft delete rule ip nat post handle \$(nft -a list chain ip nat post | sed -n 's/.*masquerade.*handle //p')
		iptables-legacy -t mangle -F OUTPUT; tc class change dev va classid 1:20 htb rate 3mbit
		bridge fdb del 02:31:0a:00:00:11 dev vb master
		ip xfrm policy delete dir in src 10.9.0.0/16 dst 0.0.0.0/0 mark 0x5 mask 0xff"
	snapshot "$d/changed"
	local same=()
	for p in "${PARTS[@]}"; do
		cmp -s "$d/after/$p" "$d/changed/$p" && same+=("$p")
	done
	if [ ${#same[@]} = 0 ]; then
		result_ok "netns/checks-can-fail (a change to each of ${#PARTS[@]} parts was seen)"
	else
		result_fail netns/checks-can-fail "changes not seen in: ${same[*]}"
	fi
	IMG=$d/img2
	MAIN=$d
	mkdir -p "$IMG"
	run_stasis "$d/dump2.out" 60 dump -t "$SPID" -D "$IMG" --tcp-established -o dump.log -v4
	[ "$ZRC" = 0 ] || { result_fail netns/dump-again "dump exited $ZRC"; show_tail "$d/dump2.out"; return 1; }
	wait_until 10 pid_free "$SPID"
}

# the images restored with another name for the outer end, a port of the same bridge
case_veth_pair() {
	local d=$ZOO_TMP/veth-pair
	mkdir -p "$d"
	run_stasis "$d/restore.out" 60 restore -D "$IMG" -d --veth-pair "eth0=vr$$@$BR" -o "$d/restore.log" -v4
	local o
	o=$(outer_end "vr$$")
	if [ "$ZRC" != 0 ]; then
		result_fail netns/veth-pair "restore exited $ZRC: $(tail -n 3 "$d/restore.out")"
	elif [[ $o != *"master $BR "* ]] || [[ $o != *"state UP"* ]]; then
		result_fail netns/veth-pair "outer end: '$o'"
	elif ! client_goes_on "$MAIN"; then
		result_fail netns/veth-pair "the client is stuck at $(count_of "$MAIN") answers"
	else
		result_ok "netns/veth-pair (vr$$ in $BR; answers: $(count_of "$MAIN"))"
	fi
	touch "$MAIN/stop"
	wait_until 10 not_alive "$CPID"
	kill_tree
}

# the outer end's name is taken: the restore fails before anything, and leaves nothing; a
# restore that fails later removes the outer end it made
case_restore_fails() {
	local d=$ZOO_TMP/fails
	mkdir -p "$d"
	in_out ip link add "$VO" type bridge
	run_stasis "$d/restore.out" 60 restore -D "$IMG" -d -o "$d/restore.log" -v4
	local links
	links=$(in_out ip -o link | grep -c -E "vr$$|eth0|$VO@")
	if [ "$ZRC" = 0 ]; then
		result_fail netns/restore-fails-clean "the restore did not fail"
	elif ! grep -q "there is an interface $VO" "$d/restore.out"; then
		result_fail netns/restore-fails-clean "not said: $(tail -n 2 "$d/restore.out")"
	elif [ "$links" != 0 ] || pgrep -f "peer.py server 10.231.9.2 $PORT" >/dev/null; then
		result_fail netns/restore-fails-clean "left behind: $links interfaces, server $(pgrep -f "peer.py server 10.231.9.2")"
	else
		result_ok "netns/restore-fails-clean ($(grep -o "there is an interface $VO[^:]*" "$d/restore.out"))"
	fi
	in_out ip link del "$VO"
	STASIS_FAULT=restore-child run_stasis "$d/restore2.out" 60 restore -D "$IMG" -d -o "$d/restore2.log" -v4
	if [ "$ZRC" = 0 ]; then
		result_fail netns/restore-fails-late "the restore did not fail"
		kill_tree
	elif ! grep -q "injected failure restore-child" "$d/restore2.out"; then
		result_fail netns/restore-fails-late "failed otherwise: $(tail -n 2 "$d/restore2.out")"
	elif in_out ip link show "$VO" >/dev/null 2>&1; then
		result_fail netns/restore-fails-late "$VO is left in the outside namespace"
	else
		result_ok "netns/restore-fails-late (no $VO left)"
	fi
}

# images of the namespace made hostile (tests/crafted/craft.c): the restore refuses each, naming
# the image, before it makes anything
case_images_corrupt() {
	local d=$ZOO_TMP/images-corrupt c n=0 links said
	mkdir -p "$d"
	if ! make -s -C "$ZOO_ROOT/tests/crafted" >"$d/build.log" 2>&1; then
		result_fail netns/images-corrupt "cannot build tests/crafted/craft: $(tail -n 3 "$d/build.log")"
		return
	fi
	for c in xtables-hook-outside xtables-entry-overrun xfrm-socket-policy mdb-group-short; do
		case $c in
		xtables-*) said='image xtables\.img: table 0 \([a-z]+\) is invalid' ;;
		xfrm-*) said='image xfrm\.img: IPsec policy 0 is invalid' ;;
		mdb-*) said='image net-fdb\.img: multicast group entry 0 \(on interface [0-9]+\) is invalid' ;;
		esac
		cp -a "$IMG" "$d/$c"
		rm -f "$d/$c"/*.log
		if ! "$ZOO_ROOT/tests/crafted/bin/craft" "$d/$c" "$c" 0 2>"$d/$c.err"; then
			result_fail netns/images-corrupt "craft $c failed: $(cat "$d/$c.err")"
			return
		fi
		run_stasis "$d/$c.out" 60 restore -D "$d/$c" -d -o "$d/$c.log" -v4
		links=$(in_out ip -o link | grep -c -E "$VO|eth0")
		if [ "$ZRC" = 0 ]; then
			result_fail netns/images-corrupt "$c: the restore did not fail"
			kill_tree
			return
		elif ! grep -q -E "$said" "$d/$c.out"; then
			result_fail netns/images-corrupt "$c: not said: $(tail -n 2 "$d/$c.out")"
			return
		elif [ "$links" != 0 ] || grep -q "restore: legacy" "$d/$c.log"; then
			result_fail netns/images-corrupt "$c: refused only after it made something ($links interfaces)"
			return
		fi
		n=$((n + 1))
	done
	result_ok "netns/images-corrupt ($n hostile xtables.img, xfrm.img and net-fdb.img refused before anything was made)"
}

# case_refused NAME SETUP WHAT: a namespace set up by SETUP (run inside) fails the dump, which
# names WHAT; the tree runs on
case_refused() {
	local label=netns/refuse-$1 d=$ZOO_TMP/refuse-$1
	mkdir -p "$d/img"
	setsid nsenter "--net=/run/netns/$OUT" unshare -n -- "$PY" -c "${REFUSED_TREE:-import time; time.sleep(1000)}" \
		</dev/null >/dev/null 2>&1 &
	SPID=$!
	disown
	track_pid "$SPID"
	wait_until 10 ns_of_its_own "$SPID" || { result_fail "$label" "no namespace"; return; }
	inside sh -ec "$2"
	run_stasis "$d/dump.out" 60 dump -t "$SPID" -D "$d/img" -o dump.log
	if [ "$ZRC" = 0 ]; then
		result_fail "$label" "the dump did not fail"
	elif ! grep -q -F "$3" "$d/dump.out"; then
		result_fail "$label" "not named: $(tail -n 2 "$d/dump.out")"
	elif ! proc_alive "$SPID"; then
		result_fail "$label" "the tree is gone"
	else
		result_ok "$label ($3)"
	fi
	kill_ours "$SPID"
}

# the tree's macvlans as its own tools show them (the index of an outer lower device is OUT's)
# (their operational state is the kernel's to find again: not compared)
macvlans() { inside ip -o -d link show type macvlan | sed -E -e 's/^[0-9]+: //' -e 's/ +link-netnsid [0-9]+//' -e 's/ state [A-Z]+ / /' | sort; }

# a TCP connection from OUT to 10.232.0.2 (mvo) port 9 is refused: its answer came back
mvo_answers() {
	in_out "$PY" -c 'import socket, sys
try:
    socket.create_connection(("10.232.0.2", 9), timeout=3)
except ConnectionRefusedError:
    sys.exit(0)
sys.exit(1)' 2>/dev/null
}

# macvlan_tree: a sleeper in a namespace of its own with mv0 (bridge mode) on an inner veth and
# mvo (private mode, up, an address) on ml$$, a veth end in OUT (LXC's lxc.net.N.type = macvlan)
macvlan_tree() {
	setsid nsenter "--net=/run/netns/$OUT" unshare -n -- "$PY" -c 'import time; time.sleep(1000)' </dev/null >/dev/null 2>&1 &
	SPID=$!
	disown
	track_pid "$SPID"
	wait_until 10 ns_of_its_own "$SPID" &&
		in_out sh -ec "ip link add ml$$ up type veth peer name mp$$
			ip link set mp$$ up
			ip addr add 10.232.0.1/24 dev mp$$
			ip link add mvo link ml$$ address 02:31:0a:00:00:02 type macvlan mode private
			ip link set mvo netns $SPID" &&
		inside sh -ec 'ip link add dv1 type veth peer name dv2
			ip link add mv0 link dv1 address 02:31:0a:00:00:01 type macvlan mode bridge
			ip link set mvo mtu 1400 up
			ip addr add 10.232.0.2/24 dev mvo'
}

# macvlans made again: on the same devices (the outer one found by the name it had), then with
# --external macvlan[mvo]:OTHER on another device of OUT; a lower device OUT lacks fails the
# restore naming it, leaving no process
case_macvlan() {
	local d=$ZOO_TMP/macvlan before after idx
	mkdir -p "$d/img" "$d/img2"
	in_out ip link add ml2$$ type veth peer name mq$$
	if ! macvlan_tree; then
		result_fail netns/macvlan "cannot set the namespace up"
		kill_ours "$SPID"
		return
	fi
	before=$(macvlans)
	run_stasis "$d/dump.out" 60 dump -t "$SPID" -D "$d/img" -o dump.log -v4
	[ "$ZRC" = 0 ] || { result_fail netns/macvlan "dump exited $ZRC: $(tail -n 2 "$d/dump.out")"; kill_ours "$SPID"; return; }
	wait_until 10 pid_free "$SPID"
	run_stasis "$d/restore.out" 60 restore -D "$d/img" -d -o restore.log -v4
	after=$(macvlans)
	if [ "$ZRC" != 0 ]; then
		result_fail netns/macvlan "restore exited $ZRC: $(tail -n 2 "$d/restore.out")"
		return
	elif [ "$before" != "$after" ] || [ "$(echo "$after" | grep -c "macvlan mode")" != 2 ] ||
		! inside ip -o addr show dev mvo | grep -q 10.232.0.2/24; then
		result_fail netns/macvlan "was: $(echo "$before" | cut -c1-150 | tr '\n' '|') is: $(echo "$after" | cut -c1-150 | tr '\n' '|')"
	elif ! mvo_answers; then
		result_fail netns/macvlan "10.232.0.2 (mvo) does not answer from OUT through ml$$"
	else
		result_ok "netns/macvlan (mv0 on an inner veth, mvo on ml$$ outside: the same after the restore, and answers through it)"
	fi
	run_stasis "$d/dump2.out" 60 dump -t "$SPID" -D "$d/img2" -o dump.log -v4
	[ "$ZRC" = 0 ] || { result_fail netns/macvlan-external "dump exited $ZRC"; kill_ours "$SPID"; return; }
	wait_until 10 pid_free "$SPID"
	run_stasis "$d/restore-fail.out" 60 restore -D "$d/img2" -d -o restore-fail.log -v4 --external "macvlan[mvo]:none$$"
	if [ "$ZRC" = 0 ]; then
		result_fail netns/macvlan-lower-gone "the restore did not fail"
		kill_ours "$SPID"
		return
	elif ! grep -q "no interface none$$ in stasis's network namespace for its lower device" "$d/restore-fail.out" ||
		pgrep -f "time.sleep\(1000\)" | grep -qx "$SPID"; then
		result_fail netns/macvlan-lower-gone "not said, or left behind: $(tail -n 2 "$d/restore-fail.out")"
	else
		result_ok "netns/macvlan-lower-gone ($(grep -o "no interface none$$[^(]*" "$d/restore-fail.out"))"
	fi
	run_stasis "$d/restore2.out" 60 restore -D "$d/img2" -d -o restore2.log -v4 --external "macvlan[mvo]:ml2$$"
	idx=$(in_out cat "/sys/class/net/ml2$$/ifindex")
	if [ "$ZRC" != 0 ]; then
		result_fail netns/macvlan-external "restore exited $ZRC: $(tail -n 2 "$d/restore2.out")"
	elif ! macvlans | grep -q "^mvo@if$idx: .*macvlan mode private"; then
		result_fail netns/macvlan-external "mvo is not on ml2$$ (index $idx): $(macvlans | tr '\n' '|')"
	else
		result_ok "netns/macvlan-external (mvo on ml2$$, index $idx in OUT)"
	fi
	kill_ours "$SPID"
	in_out ip link del "ml$$"
	in_out ip link del "ml2$$"
}

if ! make_outside; then
	result_fail netns/setup "cannot make the outside namespace"
elif case_main; then
	case_restore_fails
	case_images_corrupt
	case_veth_pair
fi
case_refused vxlan "ip link add vx0 type vxlan id 42 dstport 4789" "interface vx0, a vxlan link: not supported"
case_refused tc-filter "ip link add tv0 type veth peer name tv1; tc qdisc add dev tv0 root handle 1: htb
	tc class add dev tv0 parent 1: classid 1:1 htb rate 1mbit
	tc filter add dev tv0 parent 1: protocol ip u32 match ip src 10.1.2.3 classid 1:1" \
	"interface tv0 has a tc filter (u32, parent 1:0): not supported"
case_refused nexthop-resilient "ip link add tv0 up type veth peer name tv1; ip link set tv1 up
	ip nexthop add id 1 dev tv0; ip nexthop add id 2 dev tv1
	ip nexthop add id 3 group 1/2 type resilient buckets 8" \
	"nexthop 3 of its network namespace has attribute 12 (a resilient group): not supported"
case_refused mdb-bridge-down "ip link add tb0 type bridge; ip link add tv0 type veth peer name tv1
	ip link set tv0 master tb0; ip link set tb0 up; bridge mdb add dev tb0 port tv0 grp 239.1.1.1 permanent
	ip link set tb0 down" "bridge tb0 holds multicast group entry 239.1.1.1 while it is down or does not snoop"
# a UDP socket with an IPsec policy of its own (IP_XFRM_POLICY 17: struct xfrm_userpolicy_info,
# 168 bytes: selector family AF_INET at 40, no lifetime limits from 56, dir out at 160), as an IKE
# daemon's bypass
REFUSED_TREE='import socket, struct, time
p = bytearray(168)
struct.pack_into("H", p, 40, socket.AF_INET)
struct.pack_into("4Q", p, 56, *[2**64 - 1] * 4)
p[160] = 1
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, 17, bytes(p))
time.sleep(1000)' case_refused xfrm-socket-policy "sleep 0.5" \
	"a socket in its network namespace has an IPsec policy of its own (IP_XFRM_POLICY"
# an XDP program (tests/net/xdp-pass.c) on an interface
if clang -O2 -target bpf -I"/usr/include/$(gcc -print-multiarch)" -c "$ZOO_ROOT/tests/net/xdp-pass.c" \
	-o "$ZOO_TMP/xdp-pass.o" 2>"$ZOO_TMP/xdp-pass.err"; then
	case_refused xdp "ip link add tv0 type veth peer name tv1; ip link set dev tv0 xdpgeneric obj $ZOO_TMP/xdp-pass.o sec xdp" \
		"interface tv0 has an XDP program attached"
else
	result_fail netns/refuse-xdp "cannot build tests/net/xdp-pass.c: $(head -n 3 "$ZOO_TMP/xdp-pass.err")"
fi
[ -e "/run/netns/$OUT" ] && case_macvlan
summary
