# shellcheck shell=bash
# shellcheck disable=SC2034 # read by the sourcing scripts
# Shared by the engines' end-to-end scripts (docker.sh, podman.sh, containerd.sh, runc.sh, lxc*.sh):
# a temporary directory, a PATH directory whose `criu` is this build's stasis (the only criu
# the engines find: checked), a busybox root file system with the memory checker in it,
# ok/FAIL lines with the engine's message and stasis's log tail, timings.
#
# The sourcing script sets E2E_NAME and calls e2e_setup; its EXIT trap calls e2e_cleanup after
# stopping what it started itself (e2e_cleanup removes the directory, unmounting what an
# engine left mounted under it).

E2E_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STASIS=$(readlink -f "${STASIS:-$E2E_ROOT/stasis}")
N_PASS=0
N_FAIL=0
WORK=""

# the cgroups an engine makes as the parent of its containers' (Docker's, Podman's, LXC's,
# containerd's namespace stasis-hc of host-cycle.sh); those a test's engines made are removed
# after it once empty
E2E_ENGINE_CGROUPS=(docker libpod_parent lxc.pivot stasis-hc)
E2E_CGROUPS_BEFORE=""
engine_cgroups() {
	local n
	for n in "${E2E_ENGINE_CGROUPS[@]}"; do
		ls -d /sys/fs/cgroup/*/"$n" /sys/fs/cgroup/"$n" 2>/dev/null
	done
}

e2e_setup() {
	E2E_CGROUPS_BEFORE=" $(engine_cgroups | tr '\n' ' ') "
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/stasis-e2e-$E2E_NAME.XXXXXX") || exit 2
	mkdir -p "$WORK/bin"
	ln -s "$STASIS" "$WORK/bin/criu"
	export PATH="$WORK/bin:$PATH"
	# a `criu` of the distribution (runc pulls in Debian's criu on some setups) must not win
	if [ "$(readlink -f "$(command -v criu)")" != "$STASIS" ]; then
		fail "$E2E_NAME/setup" "criu on PATH is $(command -v criu), not stasis"
		finish
	fi
}

# users PATTERN: pids of other processes whose command line holds PATTERN
users() {
	local p
	for p in /proc/[0-9]*; do
		[ "${p#/proc/}" = $$ ] || [ "${p#/proc/}" = "$BASHPID" ] && continue
		{ tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -q -F -- "$1" && echo "${p#/proc/}"
	done
}

e2e_cleanup() {
	local m
	[ -n "$WORK" ] && [ -d "$WORK" ] || return 0
	# an engine's helpers still at work in our directory (conmon's cleanup runs a podman)
	wait_for 15 eval '[ -z "$(users "$WORK/")" ]'
	# mounts an engine left under our directory (overlay roots, shm), deepest first
	for m in $(awk -v w="$WORK/" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
		umount -l "$m" 2>/dev/null
	done
	rm -rf "$WORK"
	for m in $(engine_cgroups); do
		[[ $E2E_CGROUPS_BEFORE == *" $m "* ]] || find "$m" -depth -type d -exec rmdir {} + 2>/dev/null
	done
}

ok() { echo "ok $1"; N_PASS=$((N_PASS + 1)); }

# fail CASE REASON [FILE...]: the reason, then the tail of each file given (the engine's
# output, stasis's logs) that exists
fail() {
	local f
	echo "FAIL $1: $2"
	N_FAIL=$((N_FAIL + 1))
	shift 2
	for f in "$@"; do
		[ -s "$f" ] || continue
		echo "    --- $f"
		grep -a -v -E '^(tick )?[0-9]+$' "$f" | tail -n 12 | sed 's/^/    | /'
	done
}

finish() {
	echo "$N_PASS passed, $N_FAIL failed"
	[ "$N_FAIL" -eq 0 ]
	exit
}

# need CMD...: every command exists, or the whole script fails naming the missing one
need() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 && continue
		fail "$E2E_NAME" "$c is not installed (make setup installs the engines)"
		finish
	done
}

# timed VAR CMD...: runs CMD, its wall time in ms into VAR, its exit code returned
timed() {
	local __var=$1 t0 rc
	shift
	t0=$(date +%s%N)
	"$@"
	rc=$?
	printf -v "$__var" '%d' $((($(date +%s%N) - t0) / 1000000))
	return $rc
}

# wait_for SECONDS CMD...: until CMD succeeds (polled every 0.1 s); 1 if it never did
wait_for() {
	local end=$(($(date +%s) + $1))
	shift
	until "$@"; do
		[ "$(date +%s)" -ge "$end" ] && return 1
		sleep 0.1
	done
}

# zoo_static PROG CASE: $WORK/zoo-PROG, tests/zoo/PROG.c built static (run in a container: tun,
# a VPN's tun/tap state with ZOO_TUN_NETNS=keep; unsupported-fd); 1 after a failure said
zoo_static() {
	[ -x "$WORK/zoo-$1" ] && return 0
	cc -static -std=gnu11 -O1 -pthread -I "$E2E_ROOT/tests/zoo" -o "$WORK/zoo-$1" \
		"$E2E_ROOT/tests/zoo/$1.c" -lrt 2>"$WORK/zoo-$1.err" && return 0
	fail "$2" "cannot build tests/zoo/$1.c statically" "$WORK/zoo-$1.err"
	return 1
}
# lxc_busybox NAME: LXC's busybox container NAME made (its output in $WORK/lxc.log, 1 if
# lxc-create failed), without network, ttys or AppArmor (this kernel has none); CONF and RFS
# its config and root file system
lxc_busybox() {
	lxc-create -n "$1" -t busybox >"$WORK/lxc.log" 2>&1 || return 1
	CONF=/var/lib/lxc/$1/config
	RFS=/var/lib/lxc/$1/rootfs
	sed -i -e '/^lxc.net.0/d' -e '/^lxc.apparmor/d' -e 's/^lxc.tty.max.*/lxc.tty.max = 0/' \
		-e 's/^lxc.pty.max.*/lxc.pty.max = 0/' "$CONF"
}
# lxc_counting SECONDS: the container lxc_busybox made has no network and no console, and its
# init is a shell appending a count to /count.log (in RFS) every SECONDS
lxc_counting() {
	printf 'lxc.net.0.type = empty\nlxc.console.path = none\nlxc.init.cmd = /bin/sh /counter.sh\n' >>"$CONF"
	echo "i=0; while true; do i=\$((i + 1)); echo \$i >>/count.log; sleep $1; done" >"$RFS/counter.sh"
}
# lxc_remove NAME: container NAME stopped and destroyed. One LXC lost track of (its monitor
# gone) still has its processes in its payload cgroup: those are the test's, killed by pid.
lxc_remove() {
	local d
	lxc-stop -n "$1" -k >/dev/null 2>&1
	find /sys/fs/cgroup -maxdepth 3 -name "lxc.payload.$1" -type d 2>/dev/null |
		while read -r d; do xargs -r kill -9 <"$d/cgroup.procs" 2>/dev/null; done
	lxc-destroy -n "$1" -f >/dev/null 2>&1
}

# make_rootfs DIR: a busybox tree with /bin/memcheck and /bin/podipc (tests/e2e/memcheck.c,
# podipc.c, static)
make_rootfs() {
	local r=${1:-} a p
	# (without one it would be the host's /bin: its sh, cat, ls made busybox's)
	[ -n "$r" ] && [ "$r" != / ] || { fail "$E2E_NAME/setup" "make_rootfs: no directory given"; return 1; }
	mkdir -p "$r/bin" "$r/proc" "$r/sys" "$r/dev" "$r/tmp" "$r/etc" "$r/out"
	cp "$(command -v busybox)" "$r/bin/busybox"
	for a in sh sleep echo cat ls; do ln -sf busybox "$r/bin/$a"; done
	for p in memcheck podipc watchcheck; do
		if [ ! -x "$WORK/$p" ] &&
			! cc -static -O2 -o "$WORK/$p" "$E2E_ROOT/tests/e2e/$p.c" 2>"$WORK/$p.err"; then
			fail "$E2E_NAME/setup" "cannot build $p statically" "$WORK/$p.err"
			return 1
		fi
		cp "$WORK/$p" "$r/bin/$p"
	done
}

# redis_image TAG ENGINE: an image of the host's redis-server and its libraries on the busybox
# tree, imported by ENGINE (dk, pm); rcli talks to it on $WORK/rd-sock/redis.sock
redis_image() {
	local r=$WORK/redis-rootfs lib
	make_rootfs "$r" || return 1
	mkdir -p "$r/usr/bin" "$r/data"
	cp /usr/bin/redis-server "$r/usr/bin/" || return 1
	for lib in $(ldd /usr/bin/redis-server | grep -o '/[^ ]*'); do
		mkdir -p "$r${lib%/*}" && cp -L "$lib" "$r$lib" || return 1
	done
	tar -C "$r" -c . | "$2" import - "$1" >"$WORK/redis-import.out" 2>&1
}
rcli() { redis-cli -s "$WORK/rd-sock/redis.sock" "$@" 2>&1; }
redis_answers() { [ "$(rcli PING)" = PONG ]; }
redis_field() { rcli INFO "$1" | tr -d '\r' | sed -n "s/^$2://p"; }

# podipc_saw FILE N: the output FILE of `podipc owner` shows that it saw the user's count N or
# later in their segment, and got one as a message
podipc_saw() {
	awk -v n="$2" '$1 == "peer" && $2 >= n { p = 1 } $1 == "recv" && $2 >= n { r = 1 }
		END { exit !(p && r) }' "$1"
}

# The counter every scenario runs: one number a second on its stdout.
COUNTER='i=0; while true; do i=$((i+1)); echo $i; sleep 1; done'

# numbers FILE: the lines of FILE that are counts
numbers() { grep -a -E '^[0-9]+$' "$1" 2>/dev/null; }

# A counter container C stopped by a checkpoint (logged_numbers C: the engine script's):
# count_before C keeps what it logged in $WORK/C.before and sets COUNTED (lines) and LAST;
# count_went_on LABEL C, once restored, sets FIRST (its first number after those) and says
# under LABEL, returning 1, if that is not LAST + 1.
count_before() {
	logged_numbers "$1" >"$WORK/$1.before"
	COUNTED=$(wc -l <"$WORK/$1.before")
	LAST=$(tail -n 1 "$WORK/$1.before")
}
count_went_on() {
	FIRST=$(logged_numbers "$2" | sed -n "$((COUNTED + 1))p")
	[ "$FIRST" = $((LAST + 1)) ] && return 0
	fail "$1" "the count went $LAST before the checkpoint, $FIRST after" "$WORK/$2.logs"
	return 1
}
# ticks FILE: memcheck's tick numbers
ticks() { sed -n 's/^tick \([0-9]*\)$/\1/p' "$1" 2>/dev/null; }
# has_lines N CMD...: CMD prints at least N lines
has_lines() {
	local n=$1
	shift
	[ "$("$@" | wc -l)" -ge "$n" ]
}
# stasis_images DIR: the images in DIR are stasis's (criu names its mount images otherwise)
stasis_images() { [ -s "$1/inventory.img" ] && [ -s "$1/mount-ns.img" ]; }

# stop_pid PID: SIGTERM, up to 20 s, then SIGKILL
stop_pid() {
	kill -TERM "$1" 2>/dev/null || return 0
	wait_for 20 eval "! kill -0 $1 2>/dev/null" || kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

# A containerd of our own: root, state and sockets in WORK (no CRI plugin); its shims get
# its environment, so runc finds our criu
CTRD_PID=""
start_containerd() {
	cat >"$WORK/containerd.toml" <<EOF
version = 2
root = "$WORK/containerd-root"
state = "$WORK/containerd-state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$WORK/containerd.sock"
[ttrpc]
  address = "$WORK/containerd.sock.ttrpc"
[debug]
  address = "$WORK/containerd-debug.sock"
EOF
	# (its checkpoints' temporary directories, ctrd-checkpoint*, go in ours, removed with it)
	mkdir -p "$WORK/containerd-tmp"
	TMPDIR=$WORK/containerd-tmp containerd --config "$WORK/containerd.toml" >>"$WORK/containerd.log" 2>&1 &
	CTRD_PID=$!
	wait_for 30 eval 'ctr -a "$WORK/containerd.sock" version >/dev/null 2>&1' && return 0
	fail "$E2E_NAME/containerd" "containerd did not start" "$WORK/containerd.log"
	return 1
}
# Its shims (their command line names its socket), then containerd itself
stop_containerd() {
	local p
	[ -n "$CTRD_PID" ] || return 0
	for p in $(users "-address $WORK/containerd.sock "); do kill -KILL "$p" 2>/dev/null; done
	stop_pid "$CTRD_PID"
}

# A dockerd of our own over our containerd: data and exec roots, socket and pid file in WORK,
# no iptables, experimental (checkpoints), its default network on bridge DOCKER_BRIDGE (made by
# the caller; none: no bridge); Debian's client (a newer one in /usr/local/bin may shadow it)
DOCKERD_PID=""
DOCKER_BRIDGE=none
DOCKER_BIN=/usr/bin/docker
[ -x "$DOCKER_BIN" ] || DOCKER_BIN=$(command -v docker)
dk() { "$DOCKER_BIN" -H "unix://$WORK/docker.sock" "$@"; }
start_docker() {
	if [ ! -x "$DOCKER_BIN" ]; then
		fail "$E2E_NAME/docker" "no docker client (make setup installs docker.io)"
		return 1
	fi
	start_containerd && start_dockerd
}
# start_dockerd: the dockerd alone, over the containerd that runs
start_dockerd() {
	echo '{}' >"$WORK/daemon.json"
	dockerd --config-file "$WORK/daemon.json" --experimental --iptables=false --ip-masq=false \
		--bridge="$DOCKER_BRIDGE" -H "unix://$WORK/docker.sock" --data-root "$WORK/docker-root" \
		--exec-root "$WORK/docker-exec" --pidfile "$WORK/docker.pid" \
		--containerd "$WORK/containerd.sock" >>"$WORK/dockerd.log" 2>&1 &
	DOCKERD_PID=$!
	wait_for 60 eval 'dk version >/dev/null 2>&1' && return 0
	fail "$E2E_NAME/docker" "dockerd did not start" "$WORK/dockerd.log"
	return 1
}
# Every container of ours, dockerd, then containerd
stop_docker() {
	local c
	if [ -n "$DOCKERD_PID" ]; then
		for c in $(dk ps -aq 2>/dev/null); do dk rm -f "$c" >/dev/null 2>&1; done
		stop_pid "$DOCKERD_PID"
	fi
	stop_containerd
}
# Docker uploads a checkpoint to containerd as a blob, which containerd's garbage collector
# removes a moment after the dump's image is deleted: a start before that fails with "content
# ... already exists" (Docker's race, moby#42900). Wait for the content store to be empty.
docker_content_gone() { [ -z "$(ctr -a "$WORK/containerd.sock" -n moby content ls -q 2>/dev/null)" ]; }
# docker_start_checkpoint NAME CP OUT: `docker start --checkpoint`, timed (ms in T_START)
docker_start_checkpoint() {
	wait_for 20 docker_content_gone
	timed T_START dk start --checkpoint "$2" "$1" >"$3" 2>&1
}
# docker_import IMAGE: the busybox tree (make_rootfs) as IMAGE
docker_import() {
	make_rootfs "$WORK/rootfs" || return 1
	tar -C "$WORK/rootfs" -c . | dk import - "$1" >"$WORK/import.out" 2>&1 && return 0
	fail "$E2E_NAME/image" "docker import failed" "$WORK/import.out"
	return 1
}

# make_bundle DIR OUT [userns|cgroupns]: runc spec's container counting into OUT/count (its
# /out); with userns, in a user namespace of its own mapping container ids 0-65535 to host
# 100000-165535; with cgroupns, in a cgroup namespace of its own (runc then mounts the cgroup
# hierarchies anew inside it instead of binding the host's)
make_bundle() {
	make_rootfs "$1/rootfs" || return
	mkdir -p "$2"
	(cd "$1" && runc spec) && python3 - "$1/config.json" "$2" "${3:-}" <<'PY'
import json, sys
path, out, userns = sys.argv[1], sys.argv[2], sys.argv[3]
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c", "exec 3>>/out/count; i=0; while true; do i=$((i+1)); echo $i >&3; sleep 1; done"]
c["mounts"].append({"destination": "/out", "type": "bind", "source": out, "options": ["rbind", "rw"]})
if userns == "cgroupns":
    c["linux"]["namespaces"].append({"type": "cgroup"})
elif userns:
    c["linux"]["namespaces"].append({"type": "user"})
    for m in ("uidMappings", "gidMappings"):
        c["linux"][m] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
json.dump(c, open(path, "w"), indent=1)
PY
}

# oci_archive ROOTFS_TAR OUT NAME: a one-layer OCI image archive
oci_archive() {
	python3 - "$@" <<'PY'
import hashlib, io, json, sys, tarfile
layer_path, out, name = sys.argv[1:4]
def add(tf, path, data):
    ti = tarfile.TarInfo(path)
    ti.size = len(data)
    tf.addfile(ti, io.BytesIO(data))
def blob(tf, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    add(tf, "blobs/sha256/" + digest[7:], data)
    return {"digest": digest, "size": len(data)}
with tarfile.open(out, "w") as tf:
    layer = blob(tf, open(layer_path, "rb").read())
    config = blob(tf, json.dumps({"architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}).encode())
    manifest = blob(tf, json.dumps({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": dict(config, mediaType="application/vnd.oci.image.config.v1+json"),
        "layers": [dict(layer, mediaType="application/vnd.oci.image.layer.v1.tar")]}).encode())
    add(tf, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
    add(tf, "index.json", json.dumps({"schemaVersion": 2, "manifests": [dict(manifest,
        mediaType="application/vnd.oci.image.manifest.v1+json",
        annotations={"io.containerd.image.name": name})]}).encode())
PY
}

# pm ARGS...: podman with its every state in WORK (root, runroot, tmpdir), runc, cgroupfs
pm() {
	podman --root "$WORK/root" --runroot "$WORK/run" --tmpdir "$WORK/tmp" --runtime runc \
		--cgroup-manager cgroupfs --events-backend file --storage-driver overlay "$@"
}
