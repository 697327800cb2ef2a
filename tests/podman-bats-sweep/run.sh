#!/bin/bash
# podman-bats-sweep: Podman's own checkpoint system tests (containers/podman,
# test/system/520-checkpoint.bats with helpers.bash and helpers.network.bash) run by bats
# against Debian's podman 4.3 + runc, stasis being the only `criu` on PATH. Not part of make
# test; see README.md for where the three files come from and what each test checks.
#
#   run.sh [BATS_ARGS...]     e.g. run.sh -f 'basic test'  (bats --filter)
#
# Everything lives in one temporary directory: podman's storage root, run root and tmp dir
# (the helpers' $PODMAN is a wrapper that names them), its containers.conf (runc, cgroupfs,
# file events, named rlimits: this machine's hard limits refuse podman's defaults, network
# definitions in the directory: nothing in /etc/containers), the test image
# quay.io/libpod/testimage:20241011 imported from a busybox tree (no registry, no network),
# bats's TMPDIR. The fetched files are copied there and adapted by this script (the list is
# in adapt() below and in README.md); the originals are not changed.
# At the end: podman rm/volume rm/network rm in both storage roots the tests use, mounts
# under the directory unmounted, the directory removed; the iptables chains netavark made
# (when the host had none before) and net.ipv4.ip_forward are put back as they were.
# Environment: STASIS (this tree's ./stasis), PODMAN_BATS_SRC (/work/podman-bats/orig: the
#   fetched files), PODMAN_BATS_KEEP=1 (keep the directory), PODMAN_BATS_TAP (a file for
#   bats's TAP output; default: the terminal only)
set -u
here=$(cd "$(dirname "$0")" && pwd)
STASIS=$(readlink -f "${STASIS:-$here/../../stasis}")
SRC=${PODMAN_BATS_SRC:-/work/podman-bats/orig}
FILES="520-checkpoint.bats helpers.bash helpers.network.bash"
IMAGE=quay.io/libpod/testimage:20241011

# the versions the README's results are for (another version runs too, with a note)
SUMS='791ad435f9118c141f6ff805e8efbfa435e89263538d520204555fb666fa882d  520-checkpoint.bats
d491e309cf27faa067915d31ba0a6e5685621f0e6fe6e71d326c3f6771152ceb  helpers.bash
be8e7a0360282293ff0bc011dcbf4a20d3b70773ece146c9ff2c6ffc043638ae  helpers.network.bash'
for f in $FILES; do
	if [ ! -s "$SRC/$f" ]; then
		echo "missing $SRC/$f: fetch it first (README.md, 'Getting the test files')" >&2
		exit 2
	fi
done
(cd "$SRC" && echo "$SUMS" | sha256sum --quiet -c - >/dev/null 2>&1) ||
	echo "# note: the files in $SRC are not the versions README.md's results are for" >&2
for c in podman runc bats busybox curl jq ss iptables-save flock; do
	command -v $c >/dev/null || { echo "$c is not installed" >&2; exit 2; }
done
[ -x "$STASIS" ] || { echo "no stasis binary at $STASIS (make first)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "the checkpoint tests need root" >&2; exit 2; }

# (short: 520-checkpoint.bats's own run root, $TMPDIR/podman_bats.XXXXXX/testroot/runroot,
# must stay within podman's 50 characters)
W=$(mktemp -d /tmp/pbXXXX) || exit 2
IPF=$(cat /proc/sys/net/ipv4/ip_forward)
NAT_BEFORE=$(iptables-save -t nat 2>/dev/null | grep -c '^:NETAVARK')
FILTER_BEFORE=$(iptables-save -t filter 2>/dev/null | grep -c '^:NETAVARK')

REAL_PODMAN=$(command -v podman)
pm() { "$W/bin/podman" "$@"; }

# users PATTERN: pids of other processes whose command line holds PATTERN
# shellcheck source-path=SCRIPTDIR source=../e2e/e2e-lib.sh
. "$here/../e2e/e2e-lib.sh"

# netavark's chains, in a table that had none before the sweep: emptied and removed
drop_netavark_chains() {
	local t=$1 c
	for c in $(iptables-save -t "$t" | sed -n 's/^:\(NETAVARK[^ ]*\).*/\1/p'); do
		iptables -t "$t" -S | grep -- "-j $c\b" | sed 's/^-A/-D/' |
			while read -r rule; do eval iptables -t "$t" "$rule"; done
	done
	for c in $(iptables-save -t "$t" | sed -n 's/^:\(NETAVARK[^ ]*\).*/\1/p'); do iptables -t "$t" -F "$c"; done
	for c in $(iptables-save -t "$t" | sed -n 's/^:\(NETAVARK[^ ]*\).*/\1/p'); do iptables -t "$t" -X "$c"; done
}

cleanup() {
	local r m n
	if [ "${PODMAN_BATS_KEEP:-0}" = 1 ]; then
		echo "# kept $W"
		return
	fi
	# every storage root the tests made (theirs: testroot/root under bats's TMPDIR)
	for r in "$W/root" $(find "$W/b" -maxdepth 4 -type d -path '*/testroot/root' 2>/dev/null); do
		[ -d "$r" ] || continue
		n="--root $r --runroot ${r%/root}/runroot"
		[ "$r" = "$W/root" ] && n="--root $r --runroot $W/run"
		# shellcheck disable=SC2086
		{
			pm $n rm -a -f -t 0
			pm $n pod rm -a -f
			pm $n volume rm -a -f
			pm $n network prune -f
		} >/dev/null 2>&1
	done
	# conmon's cleanup processes still at work in our directory
	for _ in $(seq 50); do [ -z "$(users "$W/")" ] && break; sleep 0.2; done
	for m in $(awk -v w="$W/" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
		umount -l "$m" 2>/dev/null
	done
	rm -rf "$W"
	[ "$NAT_BEFORE" = 0 ] && drop_netavark_chains nat
	[ "$FILTER_BEFORE" = 0 ] && drop_netavark_chains filter
	echo "$IPF" >/proc/sys/net/ipv4/ip_forward
}
trap cleanup EXIT

mkdir -p "$W/bin" "$W/root" "$W/run" "$W/tmp" "$W/networks" "$W/b" "$W/t" "$W/rootfs"
ln -s "$STASIS" "$W/bin/criu"
export PATH="$W/bin:$PATH"
if [ "$(readlink -f "$(command -v criu)")" != "$STASIS" ]; then
	echo "criu on PATH is $(command -v criu), not stasis" >&2
	exit 1
fi

# podman's configuration: what tests/e2e/podman.sh names on its command line
cat >"$W/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=1024:1024"]
[network]
network_backend = "netavark"
network_config_dir = "$W/networks"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
export CONTAINERS_CONF=$W/containers.conf
# the helpers' $PODMAN: the tests' own --root/--runroot come later and win
cat >"$W/bin/podman" <<EOF
#!/bin/sh
exec $REAL_PODMAN --root $W/root --runroot $W/run --tmpdir $W/tmp --storage-driver overlay "\$@"
EOF
chmod 755 "$W/bin/podman"

# The test image: a busybox tree with what the tests run (sh, cat, sleep, top, touch, mv,
# rm, busybox-extras httpd) and the host's flock (Debian's busybox has none) with its libc
r=$W/rootfs
mkdir -p "$r/bin" "$r/proc" "$r/sys" "$r/dev" "$r/tmp" "$r/etc" "$r/lib64" "$r/lib/x86_64-linux-gnu"
cp "$(command -v busybox)" "$r/bin/busybox"
for a in sh cat sleep top touch mv rm echo ls ps busybox-extras; do ln -s busybox "$r/bin/$a"; done
cp /usr/bin/flock "$r/bin/flock"
for l in $(ldd /usr/bin/flock | grep -o '/[^ ]*'); do cp -L "$l" "$r$l"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$r/etc/passwd"
echo 'root:x:0:' >"$r/etc/group"
if ! tar -C "$r" -c . | pm import - "$IMAGE" >"$W/import.out" 2>&1; then
	cat "$W/import.out" >&2
	exit 1
fi

# The adaptations, each one line of README.md's list
adapt() {
	cp "$SRC/helpers.bash" "$SRC/helpers.network.bash" "$SRC/520-checkpoint.bats" "$W/t/"
	# 1. 'network create' with --disable-dns: aardvark-dns (started for a network with DNS)
	#    says "failed to connect to syslog" on podman run's output (no /dev/log here), and the
	#    test takes podman run's whole output for the container id; the test looks at IP and
	#    MAC addresses only
	sed -i 's/run_podman network create --subnet/run_podman network create --disable-dns --subnet/' \
		"$W/t/520-checkpoint.bats"
	# 2. podman before 4.4 only: "ip and mac handling"'s six assertions that an in-place
	#    `restore --ignore-static-ip --ignore-static-mac` drops a static IP and MAC, also after
	#    a restart (ip7, mac7, ip8, mac8) are not made. Podman 4.3 applies these two options
	#    to `restore --import` only (podman issue 16666, fixed in 4.4): IP and MAC are
	#    chosen by podman and netavark before runc and stasis restore anything. The rest of
	#    the test (every other restore, with and without --import) runs as written.
	#    PODMAN_BATS_ASIS=1: not applied.
	if [ "${PODMAN_BATS_ASIS:-0}" != 1 ] && ! podman_at_least 4 4; then
		sed -i -E 's/^( *)assert ("\$(ip|mac)[78]")/\1: assert \2/' "$W/t/520-checkpoint.bats"
	fi
}
# podman_at_least MAJOR MINOR
podman_at_least() {
	local v
	v=$(podman version --format '{{.Client.Version}}' 2>/dev/null)
	[ "${v%%.*}" -gt "$1" ] || { [ "${v%%.*}" = "$1" ] && [ "$(echo "$v" | cut -d. -f2)" -ge "$2" ]; }
}
adapt

export PODMAN=$W/bin/podman TMPDIR=$W/b
cd "$W/t" || exit 1
if [ -n "${PODMAN_BATS_TAP:-}" ]; then
	bats --tap "$@" 520-checkpoint.bats 2>&1 | tee "$PODMAN_BATS_TAP"
	rc=${PIPESTATUS[0]}
else
	bats --tap "$@" 520-checkpoint.bats
	rc=$?
fi
exit $rc
