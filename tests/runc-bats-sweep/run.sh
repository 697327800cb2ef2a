#!/bin/bash
# runc-bats-sweep: runc's own checkpoint integration tests (opencontainers/runc,
# tests/integration/checkpoint.bats with its helpers.bash) run by bats against this machine's
# runc with stasis as the `criu` runc finds on PATH. Not part of make test; see README.md for
# where the two files come from and the results.
#
#   run.sh [BATS-FILTER]     (root; needs runc, bats, jq, busybox, ip, python3)
#
# The fetched files are never edited in place: they are copied into a temporary directory,
# the adaptations below are applied there (each one checked to have matched), and bats runs
# the copy. Everything the tests make is removed at the end: the temporary directory, the
# containers (the tests' teardown), the network namespaces the netns test made, the cgroups
# of the cgroup test, and /etc/criu/default.conf (the CRIU-config test writes it; whatever
# was there before is put back).
#
# Environment: STASIS (./stasis of this tree), RUNC_BATS_SRC (/work/runc-bats: holds
# tests/integration/checkpoint.bats and helpers.bash), RUNC (runc on PATH), KEEP=1 (leave the
# temporary directory and bats's own).
set -u
here=$(cd "$(dirname "$0")" && pwd)
STASIS=$(readlink -f "${STASIS:-$here/../../stasis}")
SRC=${RUNC_BATS_SRC:-/work/runc-bats}/tests/integration
RUNC_BIN=$(readlink -f "${RUNC:-$(command -v runc)}")
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)

die() { echo "runc-bats-sweep: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "must run as root (runc's checkpoint tests need a root container)"
for c in bats jq busybox ip "$PY"; do command -v "$c" >/dev/null || die "$c is not installed"; done
[ -x "$STASIS" ] || die "no stasis binary at $STASIS (make first)"
[ -x "$RUNC_BIN" ] || die "no runc (RUNC=$RUNC_BIN)"
for f in checkpoint.bats helpers.bash; do
	[ -s "$SRC/$f" ] || die "$SRC/$f missing: fetch runc's tests first (README.md)"
done

W=$(mktemp -d /tmp/runc-bats-sweep.XXXXXX) || exit 2
T=$W/tests/integration
mkdir -p "$T" "$W/bin" "$W/contrib/cmd/recvtty" "$W/rootfs"
cp "$SRC/checkpoint.bats" "$SRC/helpers.bash" "$T/"

# State of the host the tests touch, to put back afterwards
etc_criu_existed=no
[ -d /etc/criu ] && etc_criu_existed=yes
[ -e /etc/criu/default.conf ] && cp -a /etc/criu/default.conf "$W/default.conf.saved"
netns_before=$(ip netns list 2>/dev/null | awk '{print $1}' | sort)
criu_tmp_before=$(ls /tmp/runc-criu-* 2>/dev/null | sort)

cleanup() {
	local n
	# the CRIU-config test's /etc/criu/default.conf
	if [ -e "$W/default.conf.saved" ]; then
		cp -a "$W/default.conf.saved" /etc/criu/default.conf
	else
		rm -f /etc/criu/default.conf
		[ "$etc_criu_existed" = no ] && rmdir /etc/criu 2>/dev/null
	fi
	# network namespaces named like mktemp's names that appeared during the run (the netns
	# test deletes its own only when it passes)
	for n in $(comm -13 <(echo "$netns_before") <(ip netns list 2>/dev/null | awk '{print $1}' | sort)); do
		case $n in tmp.??????????) ip netns del "$n" ;; esac
	done
	# the CRIU-config test's configuration file and logs in /tmp (mktemp's, not removed by it)
	for n in $(comm -13 <(echo "$criu_tmp_before") <(ls /tmp/runc-criu-* 2>/dev/null | sort)); do
		rm -f "$n"
	done
	# the parent cgroup the cgroup test's helpers make (runc removes the container's own)
	for n in /sys/fs/cgroup/*/runc-cgroups-integration-test /sys/fs/cgroup/runc-cgroups-integration-test; do
		[ -d "$n" ] && rmdir "$n"/test-cgroup-* "$n" 2>/dev/null
	done
	[ "${KEEP:-}" = 1 ] && { echo "kept $W"; return; }
	rm -rf "$W"
}
trap cleanup EXIT

# adapt FILE DESCRIPTION SED-SCRIPT: applies one adaptation; it must change the file
adapt() {
	local f=$1 what=$2
	cp "$f" "$f.before"
	sed -i -e "$3" "$f"
	if cmp -s "$f" "$f.before"; then
		die "adaptation did not apply to $(basename "$f") ($what): the fetched file differs from the one README.md names"
	fi
	rm -f "$f.before"
	echo "adapted $(basename "$f"): $what"
}

# ---- adaptations (README.md lists them with their reasons) --------------------------------
# A1 Debian's awk is mawk: no \< \> word anchors. The cgroup v1 mount lookup matches the
#    controller among the comma-separated super options instead.
# shellcheck disable=SC2016
adapt "$T/helpers.bash" "A1 mawk: controller lookup without \\< \\>" \
	's|\$NF ~ /\\<'"'"'"\${g}"'"'"'\\>/|("," $NF ",") ~ /,'"'"'"${g}"'"'"',/|'
# A2 runc 1.1.5 has no --manage-cgroups-mode ignore (runc 1.2): the lazy-pages test runs
#    without it (runc 1.1's own version of this test passes no mode: soft, the default)
adapt "$T/checkpoint.bats" "A2 lazy-pages: no --manage-cgroups-mode=ignore" \
	'/^[[:space:]]*--manage-cgroups-mode=ignore \\$/d; /--lazy-pages \\$/{N;s/--lazy-pages \\\n[[:space:]]*--manage-cgroups-mode=ignore$/--lazy-pages/}'
# A3 ... and the test whose subject is that mode is skipped
adapt "$T/checkpoint.bats" "A3 skip: restore into a different cgroup (mode ignore)" \
	'/^@test "checkpoint then restore into a different cgroup (via --manage-cgroups-mode ignore)" {$/a\
	skip "runc 1.1.5 has no --manage-cgroups-mode ignore (runc 1.2)"'
# A4 The CRIU-config test writes /etc/criu/default.conf and leaves it: every later criu run on
#    this machine (other tests, other users of stasis) would log elsewhere. Each test's
#    teardown puts /etc/criu back as it was before the sweep.
adapt "$T/checkpoint.bats" "A4 teardown puts /etc/criu back" \
	'/^function teardown() {$/,/^}$/s/^\([[:space:]]*\)teardown_bundle$/\1teardown_bundle\n\1sweep_put_back_etc_criu/'
cat >>"$T/helpers.bash" <<'EOF'

# runc-bats-sweep A4: /etc/criu as it was before the sweep
function sweep_put_back_etc_criu() {
	if [ -e "$SWEEP_DIR/default.conf.saved" ]; then
		cp -a "$SWEEP_DIR/default.conf.saved" /etc/criu/default.conf
	else
		rm -f /etc/criu/default.conf
		[ "$SWEEP_ETC_CRIU_EXISTED" = no ] && rmdir /etc/criu 2>/dev/null
	fi
	return 0
}
EOF
export SWEEP_DIR=$W SWEEP_ETC_CRIU_EXISTED=$etc_criu_existed

# get-images.sh (downloads busybox from the network): prints BUSYBOX_IMAGE, a tarball of
# this machine's busybox with every applet linked
make_busybox_tar() {
	local r=$W/rootfs a
	mkdir -p "$r"/{bin,proc,sys,dev,tmp,etc,root}
	cp "$(command -v busybox)" "$r/bin/busybox"
	for a in $(busybox --list); do [ "$a" = busybox ] || ln -s busybox "$r/bin/$a"; done
	echo 'root:x:0:0:root:/root:/bin/sh' >"$r/etc/passwd"
	echo 'root:x:0:' >"$r/etc/group"
	tar -C "$r" -cf "$W/busybox.tar" .
	rm -rf "$r"
}
make_busybox_tar
printf '#!/bin/sh\necho BUSYBOX_IMAGE=%s\n' "$W/busybox.tar" >"$T/get-images.sh"
chmod +x "$T/get-images.sh"

# recvtty (runc's contrib/cmd/recvtty, Go, not packaged): a stand-in at the path helpers.bash
# runs, with what the tests use of it: --pid-file F --mode null SOCKET. It takes every
# console master runc sends over SOCKET (SCM_RIGHTS) and reads it to its end, discarding.
cat >"$W/contrib/cmd/recvtty/recvtty" <<EOF
#!$PY
import array, os, socket, sys, threading
args = sys.argv[1:]
pidfile = args[args.index("--pid-file") + 1] if "--pid-file" in args else None
path = args[-1]
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(8)
if pidfile:
    with open(pidfile + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(pidfile + ".tmp", pidfile)
def drain(fd):
    try:
        while os.read(fd, 65536):
            pass
    except OSError:
        pass
def serve(c):
    fds = array.array("i")
    while True:
        msg, anc, _, _ = c.recvmsg(4096, socket.CMSG_SPACE(16 * fds.itemsize))
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                got = array.array("i")
                got.frombytes(data[:len(data) - len(data) % got.itemsize])
                for fd in got:
                    threading.Thread(target=drain, args=(fd,), daemon=True).start()
        if not msg and not anc:
            break
    c.close()
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
chmod +x "$W/contrib/cmd/recvtty/recvtty"

# runc's helpers run $INTEGRATION_ROOT/../../runc unless RUNC is set
export RUNC=$RUNC_BIN
# stasis is the only criu runc and the tests find
ln -s "$STASIS" "$W/bin/criu"
export PATH="$W/bin:$PATH"
[ "$(readlink -f "$(command -v criu)")" = "$STASIS" ] || die "criu on PATH is $(command -v criu), not stasis"
echo "runc: $RUNC_BIN ($("$RUNC_BIN" --version | head -n 1)); criu: $(command -v criu) -> $STASIS"

filter=()
[ $# -gt 0 ] && filter=(-f "$1")
tmp=()
[ "${KEEP:-}" = 1 ] && tmp=(--no-tempdir-cleanup)
# BATS_OPTS: more options for bats (--show-output-of-passing-tests, --verbose-run)
# shellcheck disable=SC2086
bats --tap ${BATS_OPTS:-} "${tmp[@]}" "${filter[@]}" "$T/checkpoint.bats"
