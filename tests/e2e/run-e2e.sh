#!/bin/bash
# Containers end to end (make e2e): every engine with stasis as its `criu`, each script
# starting the daemons it needs in a temporary directory and stopping only those.
#
#   tests/e2e/run-e2e.sh [SCRIPT...]     (default: all of them, in this order)
#
#   lxc.sh         LXC: lxc-checkpoint -s / -r (criu's command line), also with lxc.idmap
#   lxc-net.sh     LXC with a veth on a bridge: a client connected across lxc-checkpoint -s / -r
#   lxc-macvlan.sh the same with a macvlan (LXC passes --external macvlan[eth0]:LINK)
#   lxc-systemd.sh LXC with systemd as the container's init (this machine's /usr), twice
#   lxc-tun.sh     LXC given /dev/net/tun: tun/tap devices and their files (the zoo's tun program)
#   runc-cli.sh    a runc container through stasis's own command line
#   runc.sh        runc through the RPC: another id, --leave-running, --manage-cgroups-mode,
#                  --work-path, a cgroup namespace, --lazy-pages with the dump serving the
#                  pages, a user namespace, PostgreSQL as a container's init
#   containerd.sh  containerd alone: ctr containers checkpoint --task / restore --live
#   docker.sh      Docker: checkpoint create / start --checkpoint, twice, 256 MiB, --leave-running,
#                  a terminal (-t)
#   podman.sh      Podman: checkpoint / restore, --keep --print-stats, --export / --import,
#                  --pre-checkpoint, a terminal (-t), a user namespace (--uidmap)
#   host-cycle.sh  the host's reboot cycle: one container of each engine at once, saved by
#                  runtime-hook/stasis-host, the daemons and their run state gone, revived
# Output: each script's lines and its time, then "N passed, N failed" for all of them.
set -u
cd "$(dirname "$0")" || exit 2
scripts=("$@")
[ ${#scripts[@]} -gt 0 ] || scripts=(lxc.sh lxc-net.sh lxc-macvlan.sh lxc-systemd.sh lxc-tun.sh runc-cli.sh runc.sh containerd.sh docker.sh podman.sh host-cycle.sh)
pass=0
failed=0
start=$(date +%s)
for s in "${scripts[@]}"; do
	t0=$(date +%s)
	out=$(mktemp)
	echo "--- ${s%.sh}"
	./"$s" 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
	rm -f "$out"
	if [ -z "$line" ]; then
		echo "FAIL ${s%.sh}: no summary line (exit $rc)"
		failed=$((failed + 1))
	else
		pass=$((pass + ${line%% *}))
		f=$(echo "$line" | awk '{print $3}')
		failed=$((failed + f))
		[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && failed=$((failed + 1))
	fi
	echo "--- ${s%.sh}: $(($(date +%s) - t0)) s"
done
echo "--- end to end: $(($(date +%s) - start)) s"
echo "$pass passed, $failed failed"
[ "$failed" -eq 0 ]
