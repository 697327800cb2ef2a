#!/bin/bash
# Seed corpora for the fuzz targets, from real images: zoo programs dumped (--leave-running,
# then killed) and their image sets written out as the targets read them:
#   OUT/image/NAME-FILE   each image file: a byte for its type, then its payload (page files:
#                         their header and at most 2 pages); the inventory also whole (the
#                         byte's 0x80 set: the file as it is, header included)
#   OUT/restore/NAME      each image set, serialized for fuzz-restore (page files: their header)
# (see fuzz/fuzz-image.c and fuzz/fuzz-restore.c for the formats)
#
#   fuzz/make-seeds.sh OUT [ZOO-PROGRAM...]
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../tests/zoo/lib.sh
. "$ROOT/tests/zoo/lib.sh" # (first: it runs this script again below a subreaper, its arguments whole)
OUT=$1
shift
zoo_setup_tmp
build_zoo || exit 1
PROGRAMS=("$@")
[ ${#PROGRAMS[@]} -gt 0 ] || PROGRAMS=(mem-anon mem-file memfd shared-anon sysv-ipc sysv-shm fds pipes \
	unix-pair unix-bound unix-server unix-inflight udp tcp-established tree threads signals itimers \
	posix-timers deleted-files ghost-sparse detached-mounts ipc-ns-nested event-fds inotify fanotify mqueue pty \
	seccomp-profile pidfd rseq tls time-ns time-ns-nested cow io-uring io-uring-ring-fds io-uring-buffers io-uring-files io-uring-inflight)
CONTAINER_PROGRAMS=(ctr-state sysv-ipc mem-anon)
mkdir -p "$OUT/image" "$OUT/restore"

# seed_set TAG NAME START DUMP-OPTION...: NAME started by START (zoo_start, ctr_start), dumped,
# killed, its image set written out as TAG
seed_set() {
	local tag=$1 name=$2 start=$3 d=$ZOO_TMP/$1
	shift 3
	mkdir -p "$d/img"
	if ! "$start" "$name" "$d"; then
		echo "seeds: $tag not started: $ZERR" >&2
		return
	fi
	run_stasis "$d/dump.out" 60 dump -t "$ZPID" -D "$d/img" --leave-running "$@" -o /dev/null
	kill_ours "$ZPID"
	wait_until 5 pid_free "$ZPID"
	remove_left_shared_memory
	if [ "$ZRC" != 0 ]; then
		echo "seeds: $tag not dumped: $(tail -n 1 "$d/dump.out")" >&2
		return
	fi
	python3 - "$d/img" "$OUT" "$tag" <<'PY'
import os, struct, sys
img, out, name = sys.argv[1:]
records = b''
for f in sorted(os.listdir(img)):
    if not f.endswith('.img'):
        continue
    data = open(os.path.join(img, f), 'rb').read()
    if data[:8] == b'STASISIM':
        kind = struct.unpack_from('<I', data, 8)[0]
        body = data[48:]
        seed = bytes([kind - 1]) + body
    elif data[:8] == b'STASISPG':
        kind = 6 if f.startswith('pages-') else 16  # IMG_PAGES, IMG_TMPFS_DATA
        body = data[:40]
        seed = bytes([kind - 1]) + body + data[4096:4096 * 3]
    else:
        continue
    open(os.path.join(out, 'image', name + '-' + f), 'wb').write(seed)
    if f == 'inventory.img':
        open(os.path.join(out, 'image', name + '-whole-' + f), 'wb').write(bytes([0x80 | (kind - 1)]) + data)
    records += bytes([len(f)]) + f.encode() + struct.pack('<I', len(body)) + body
open(os.path.join(out, 'restore', name), 'wb').write(records)
PY
}

for name in "${PROGRAMS[@]}"; do
	opts=()
	[[ $name == tcp-* ]] && opts=(--tcp-established)
	seed_set "$name" "$name" zoo_start "${opts[@]}"
done
# containers (tests/container): mount, UTS, IPC, cgroup, network and time namespaces
# shellcheck source=../tests/container/ctr-lib.sh
. "$ROOT/tests/container/ctr-lib.sh"
if ctr_setup full >&2; then
	for name in "${CONTAINER_PROGRAMS[@]}"; do
		seed_set "ctr-$name" "$name" ctr_start "${CTR_DUMP_OPTS[@]}"
	done
fi
echo "seeds: $(find "$OUT/image" -type f | wc -l) image files, $(find "$OUT/restore" -type f | wc -l) image sets"
