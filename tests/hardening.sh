#!/bin/bash
# Images are untrusted input and image directories may not be stasis's own. What must hold:
#
#   files/planted-symlink/NAME  a symbolic link planted at NAME in the images directory
#                            (inventory.img, core-PID.img, pages-PID.img, fds-PID.img,
#                            pagemap-PID.img) or at the log's name (dump.log) pointing at a
#                            victim file: the dump fails naming NAME, the victim is unchanged,
#                            the target keeps running and PASSes
#   files/planted-temp-name  a link at the temporary name of an image (.core-PID.img.tmp):
#                            never written through
#   files/mode-0600          after a dump, every file stasis made (images, the log) is mode
#                            0600, a regular file with one link
#   files/pidfile-symlink    restore --pidfile at a symbolic link: refused naming it before
#                            anything starts; the victim is unchanged
#   files/keep-good-dump/*   a directory holding a good dump of a target (--leave-running):
#                            a dump into it that fails (STASIS_FAULT=after-pages, after-images)
#                            or is SIGKILLed after writing pages (STASIS_FAULT=kill-at:after-pages)
#                            leaves every file of the good
#                            dump byte for byte; the killed dump's own directory
#                            (.stasis-dump-PID-*) is removed by the next dump; a dump that
#                            succeeds replaces it; the target PASSes after a restore of it
#   files/leftovers          a dump of another process into a directory holding a dump
#                            (--leave-running) of a first one: no image file of the first pid is
#                            left (a dump reading its parent's pagemap by pid met such a file of a
#                            process gone since, and was refused as of another dump); the first
#                            goes on and PASSes, the new images restore and PASS
#   images/foreign/FILE      a dump's FILE (fds-PID.img, core-PID.img, pages-PID.img) replaced
#                            by the same file of another dump of the same process: refused
#                            before anything starts, naming FILE and "another dump"
#   images/pages-flipped     a bit flipped in the page data of pages-PID.img: the restore fails
#                            naming pages-PID.img and the page's checksum; nothing is left
#                            running; the untouched images restore and PASS
#   images/chain/*           a chain (pre-dump, pre-dump --prev-images-dir, dump
#                            --prev-images-dir) of a process whose pages stay in the parents: a
#                            bit flipped in every page two links up (parent-flipped) is refused
#                            naming parent/parent/pages-PID.img and the page's checksum; that
#                            pre-dump replaced by another one of the same process
#                            (parent-foreign) is refused naming "another dump than the one this
#                            dump's chain was made from"; the chain untouched restores and
#                            PASSes (pristine)
#   owner/*                  images stasis would run as root that someone else could have
#                            written: a file owned by uid 1000 (file-uid), a group-writable file
#                            (file-group-writable), a world-writable images directory
#                            (dir-world-writable): each refused naming it and the option, before
#                            anything starts; owner/allowed: the uid-1000 set restores and PASSes
#                            with --allow-untrusted-images
#   crafted/CASE             the images of mem-file (a regular fd, mapped files) edited by
#                            tests/crafted/craft.c (well-formed images, hostile content: a pid
#                            listed twice, a pid without a tree entry, a tree entry with an
#                            unknown parent, an fd without a path, without flags, with a relative
#                            path, a '..' path escaping the root, a /proc magic link, a mapped
#                            file's '..' path, a shared file mapping made a packet socket's
#                            rings of a regular fd or of a socket not in the image, a relative root, a '..' cwd, a core of another
#                            pid, page runs outside the memory layout or not adding up): each is
#                            refused with its own exact message, before any process of the tree
#                            exists (the log has lines of stasis's pid only)
#   crafted/symlink/NAME     each image file replaced by a symbolic link to its content:
#                            refused naming it, before any process exists
#
#   tests/hardening.sh [--keep]
# Output: one line per case, then "N passed, N failed"; exit status non-zero on failure.

# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=zoo/lib.sh
. "$(dirname "$0")/zoo/lib.sh"

zoo_common_options "$@"

zoo_setup_tmp
zoo_ready_or_exit

clean_failure() { [ "$1" -ne 0 ] && [ "$1" -lt 124 ]; }
mentions() {
	local re=${!#} files=("${@:1:$#-1}")
	cat "${files[@]}" 2>/dev/null | grep -q -E -- "$re"
}
# a file nobody may write through stasis: its content and mode are checked afterwards
make_victim() {
	printf 'VICTIM\n' >"$1"
	chmod 0644 "$1"
}
victim_intact() { [ "$(cat "$1")" = VICTIM ] && [ "$(stat -c %a "$1")" = 644 ]; }

# target_alive_unharmed PID: running, not stopped, not traced
target_alive_unharmed() {
	local st tr
	proc_alive "$1" || return 1
	st=$(proc_state "$1")
	tr=$(tracer_of "$1")
	[ "$st" != T ] && [ "$st" != t ] && { [ -z "$tr" ] || [ "$tr" = 0 ]; }
}

# ---------------------------------------------------------------------------------------
# One target, dumped once per planted link: each dump must fail and leave it running.
case_planted_symlinks() {
	local d=$ZOO_TMP/planted pid name label
	mkdir -p "$d/img"
	if ! zoo_start mem-anon "$d"; then
		result_fail files/planted-symlink "$ZERR"
		return
	fi
	pid=$ZPID
	for name in inventory.img "core-$pid.img" "pages-$pid.img" "fds-$pid.img" "pagemap-$pid.img" dump.log; do
		label=files/planted-symlink/${name//$pid/PID}
		rm -rf "$d/img" "$d/victim"
		mkdir -p "$d/img"
		make_victim "$d/victim"
		ln -s "$d/victim" "$d/img/$name"
		run_stasis "$d/dump.out" 60 dump -t "$pid" -D "$d/img" -o dump.log -v4
		if ! clean_failure "$ZRC"; then
			result_fail "$label" "dump exit status $ZRC"
			show_tail "$d/dump.out" "$d/img/dump.log"
		elif ! mentions "$d/dump.out" "${name//./\\.}.*symbolic link|symbolic link.*${name//./\\.}"; then
			result_fail "$label" "the error does not name $name as a symbolic link"
			show_tail "$d/dump.out" "$d/img/dump.log"
		elif ! victim_intact "$d/victim"; then
			result_fail "$label" "the victim file was written through the link ($(head -c 60 "$d/victim" | tr -c '[:print:]' .), mode $(stat -c %a "$d/victim"))"
		elif [ ! -L "$d/img/$name" ]; then
			result_fail "$label" "the planted link was replaced"
		elif ! target_alive_unharmed "$pid"; then
			result_fail "$label" "the target is gone, stopped or traced"
			return
		else
			result_ok "$label"
		fi
	done
	# a link at a temporary name: never written through, whatever the dump's outcome
	rm -rf "$d/img" "$d/victim"
	mkdir -p "$d/img"
	make_victim "$d/victim"
	ln -s "$d/victim" "$d/img/.core-$pid.img.tmp"
	run_stasis "$d/dump.out" 60 dump -t "$pid" -D "$d/img" --leave-running -o dump.log -v4
	if ! victim_intact "$d/victim"; then
		result_fail files/planted-temp-name "the victim file was written through the link"
	elif [ "$ZRC" -ne 0 ] && ! mentions "$d/dump.out" "core-$pid\\.img.*symbolic link"; then
		result_fail files/planted-temp-name "dump exit status $ZRC without naming the link"
		show_tail "$d/dump.out" "$d/img/dump.log"
	elif ! target_alive_unharmed "$pid"; then
		result_fail files/planted-temp-name "the target is gone, stopped or traced"
		return
	else
		result_ok files/planted-temp-name
	fi
	if ! zoo_stop "$pid" "$d" "$d/out"; then
		result_fail files/planted-symlink/target "$ZERR"
	elif [[ $ZVERDICT != PASS* ]]; then
		result_fail files/planted-symlink/target "the target's own checks after the dumps: $ZVERDICT"
	else
		result_ok files/planted-symlink/target-passes
	fi
}

# Every file a dump makes: 0600, regular, one link. Then a restore with --pidfile at a link.
case_modes_and_pidfile() {
	local d=$ZOO_TMP/modes pid f bad="" before after
	mkdir -p "$d/img"
	if ! zoo_start mem-anon "$d"; then
		result_fail files/mode-0600 "$ZERR"
		return
	fi
	pid=$ZPID
	run_stasis "$d/dump.out" 60 dump -t "$pid" -D "$d/img" --leave-running -o dump.log -v4
	if [ "$ZRC" -ne 0 ]; then
		result_fail files/mode-0600 "dump --leave-running exited $ZRC"
		show_tail "$d/dump.out" "$d/img/dump.log"
		kill_ours "$pid"
		return
	fi
	for f in "$d"/img/*; do
		[ "$(stat -c '%a %F %h' "$f")" = "600 regular file 1" ] ||
			[ "$(stat -c '%a %F %h' "$f")" = "600 regular empty file 1" ] ||
			bad="$bad ${f##*/}($(stat -c '%a %F %h' "$f"))"
	done
	if [ -n "$bad" ]; then
		result_fail files/mode-0600 "not 0600 regular files with one link:$bad"
	else
		result_ok "files/mode-0600 ($(find "$d/img" -type f | wc -l) files)"
	fi
	make_victim "$d/victim"
	ln -s "$d/victim" "$d/pidlink"
	before=$(count_procs mem-anon "$d")
	run_stasis "$d/restore.out" 60 restore -D "$d/img" -d --pidfile "$d/pidlink" -o restore.log -v4
	after=$(count_procs mem-anon "$d")
	if ! clean_failure "$ZRC"; then
		result_fail files/pidfile-symlink "restore exit status $ZRC"
	elif ! mentions "$d/restore.out" "pidfile .*pidlink.*symbolic link"; then
		result_fail files/pidfile-symlink "the refusal does not name the pidfile as a link"
		show_tail "$d/restore.out" "$d/img/restore.log"
	elif ! victim_intact "$d/victim" || [ "$before" != "$after" ]; then
		result_fail files/pidfile-symlink "victim written or a process started ($before -> $after)"
	else
		result_ok files/pidfile-symlink
	fi
	kill_ours "$pid"
}

# images_sum DIR: one line per image file with its checksum
images_sum() { (cd "$1" && md5sum -- *.img 2>/dev/null); }
set_dirs() { find "$1" -maxdepth 1 -name '.stasis-dump-*' | wc -l; }

# restored_pass LABEL PID DIR IMGDIR [RESTORE OPTS...]: IMGDIR restored (detached), then PID
# stopped (its zoo directory DIR) must say PASS; a failure is said under LABEL (returns 1).
restored_pass() {
	local label=$1 pid=$2 d=$3 img=$4
	shift 4
	run_stasis "$d/restore.out" 60 restore -D "$img" -d "$@" -o restore.log -v4
	track_pid "$pid"
	if [ "$ZRC" -ne 0 ]; then
		result_fail "$label" "restore exited $ZRC"
		show_tail "$d/restore.out" "$img/restore.log"
	elif ! zoo_stop "$pid" "$d" "$d/out" || [[ $ZVERDICT != PASS* ]]; then
		result_fail "$label" "after the restore: $ZERR $ZVERDICT"
	else
		return 0
	fi
	return 1
}

case_keep_good_dump() {
	local d=$ZOO_TMP/keep pid good point
	mkdir -p "$d/img"
	if ! zoo_start mem-anon "$d"; then
		result_fail files/keep-good-dump "$ZERR"
		return
	fi
	pid=$ZPID
	run_stasis "$d/dump.out" 60 dump -t "$pid" -D "$d/img" --leave-running -o dump.log -v4
	if [ "$ZRC" -ne 0 ]; then
		result_fail files/keep-good-dump "the first dump exited $ZRC"
		show_tail "$d/dump.out" "$d/img/dump.log"
		kill_ours "$pid"
		return
	fi
	good=$(images_sum "$d/img")
	for point in after-pages after-images; do
		STASIS_FAULT=$point run_stasis "$d/dump.out" 60 dump -t "$pid" -D "$d/img" -o dump2.log -v4
		if ! clean_failure "$ZRC"; then
			result_fail "files/keep-good-dump/$point" "the failing dump exited $ZRC"
		elif [ "$(images_sum "$d/img")" != "$good" ]; then
			result_fail "files/keep-good-dump/$point" "the good dump's files changed"
		elif [ "$(set_dirs "$d/img")" != 0 ]; then
			result_fail "files/keep-good-dump/$point" "the failed dump left its directory"
		elif ! target_alive_unharmed "$pid"; then
			result_fail "files/keep-good-dump/$point" "the target is gone, stopped or traced"
			return
		else
			result_ok "files/keep-good-dump/$point"
		fi
	done
	# killed while it writes: the target's pages are read once its syscalls are done
	STASIS_FAULT=kill-at:after-pages run_stasis "$d/dump.out" 60 dump -t "$pid" -D "$d/img" -o dump3.log -v4
	if [ "$ZRC" -ne 137 ]; then
		result_fail files/keep-good-dump/killed "the dump was not killed at after-pages (exit status $ZRC)"
	elif [ "$(images_sum "$d/img")" != "$good" ]; then
		result_fail files/keep-good-dump/killed "the good dump's files changed"
	elif [ "$(set_dirs "$d/img")" != 1 ]; then
		result_fail files/keep-good-dump/killed "no directory of the killed dump (it ended before the kill?)"
	else
		STASIS_FAULT=after-seize run_stasis "$d/dump.out" 60 dump -t "$pid" -D "$d/img" -o dump4.log -v4
		if [ "$(set_dirs "$d/img")" != 0 ]; then
			result_fail files/keep-good-dump/killed "the next dump did not remove the killed one's directory"
		else
			result_ok files/keep-good-dump/killed
		fi
	fi
	wait_until 5 target_alive_unharmed "$pid"
	# a dump that succeeds replaces the good one; the target goes and comes back from it
	run_stasis "$d/dump.out" 60 dump -t "$pid" -D "$d/img" -o dump5.log -v4
	if [ "$ZRC" -ne 0 ] || [ "$(images_sum "$d/img")" = "$good" ] || ! wait_until 10 pid_free "$pid"; then
		result_fail files/keep-good-dump/replaced "the last dump exited $ZRC or did not replace the images"
		show_tail "$d/dump.out" "$d/img/dump5.log"
		kill_ours "$pid"
		return
	fi
	restored_pass files/keep-good-dump/replaced "$pid" "$d" "$d/img" && result_ok files/keep-good-dump/replaced
}

case_leftovers() {
	local d=$ZOO_TMP/leftovers first second left
	mkdir -p "$d/img"
	if ! zoo_start mem-anon "$d/first"; then
		result_fail files/leftovers "$ZERR"
		return
	fi
	first=$ZPID
	run_stasis "$d/dump.out" 60 dump -t "$first" -D "$d/img" --leave-running -o dump.log -v4
	if [ "$ZRC" -ne 0 ] || ! zoo_start tree "$d/second"; then
		result_fail files/leftovers "the first dump exited $ZRC, or: $ZERR"
		kill_ours "$first"
		return
	fi
	second=$ZPID
	run_stasis "$d/dump.out" 60 dump -t "$second" -D "$d/img" -o dump2.log -v4
	left=$(find "$d/img" -maxdepth 1 -name "*-$first.img" -printf '%f ')
	if [ "$ZRC" -ne 0 ] || [ -n "$left" ]; then
		result_fail files/leftovers "the second dump exited $ZRC; left of the first: ${left:-nothing}"
		show_tail "$d/dump.out" "$d/img/dump2.log"
		kill_ours "$first"
		kill_ours "$second"
		return
	fi
	wait_until 10 pid_free "$second"
	if ! restored_pass files/leftovers "$second" "$d/second" "$d/img"; then
		kill_ours "$first"
	elif ! zoo_stop "$first" "$d/first" "$d/first/out" || [[ $ZVERDICT != PASS* ]]; then
		result_fail files/leftovers "the first, left running: $ZERR $ZVERDICT"
	else
		result_ok files/leftovers
	fi
}

# flip_bit FILE OFFSET
flip_bit() {
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	# shellcheck disable=SC2059
	printf "\\$(printf %03o $((b ^ 1)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# restore_refused LABEL PID DIR REGEX: restore fails cleanly naming REGEX, nothing with PID
# of ours is left (a running target, if any, is left alone), no "restore pid N" child line
restore_refused() {
	local label=$1 pid=$2 c=$3 re=$4 was_alive=0
	proc_alive "$pid" && was_alive=1
	run_stasis "$c/restore.out" 60 restore -D "$c" -d -o restore.log -v4
	if ! clean_failure "$ZRC"; then
		result_fail "$label" "restore exit status $ZRC"
		show_tail "$c/restore.out" "$c/restore.log"
	elif ! mentions "$c/restore.out" "$re"; then
		result_fail "$label" "the refusal does not match '$re'"
		show_tail "$c/restore.out" "$c/restore.log"
	elif [ "$was_alive" = 0 ] && ! wait_until 5 pid_free "$pid"; then
		result_fail "$label" "pid $pid runs after the refused restore"
		kill_ours "$pid"
	else
		return 0
	fi
	return 1
}

case_foreign_and_flipped() {
	local d=$ZOO_TMP/ids pid f c off
	mkdir -p "$d/a" "$d/b"
	if ! zoo_start mem-anon "$d"; then
		result_fail images/foreign "$ZERR"
		return
	fi
	pid=$ZPID
	run_stasis "$d/dump.out" 60 dump -t "$pid" -D "$d/a" --leave-running -o dump.log -v4 &&
		[ "$ZRC" = 0 ] && run_stasis "$d/dump.out" 60 dump -t "$pid" -D "$d/b" -o dump.log -v4
	if [ "$ZRC" -ne 0 ] || ! wait_until 10 pid_free "$pid"; then
		result_fail images/foreign "the dumps failed ($ZRC)"
		show_tail "$d/dump.out" "$d/b/dump.log"
		kill_ours "$pid"
		return
	fi
	for f in "fds-$pid.img" "core-$pid.img" "pages-$pid.img"; do
		c=$d/foreign-${f%%-*}
		cp -a "$d/b" "$c"
		cp "$d/a/$f" "$c/$f"
		restore_refused "images/foreign/${f//$pid/PID}" "$pid" "$c" "${f//./\.}: belongs to another dump" &&
			if grep -q "restore pid $pid: " "$c/restore.log"; then
				result_fail "images/foreign/${f//$pid/PID}" "refused only after the restore had begun"
			else
				result_ok "images/foreign/${f//$pid/PID}"
			fi
	done
	c=$d/flipped
	cp -a "$d/b" "$c"
	off=$((4096 + 4096 * 7 + 1234))
	flip_bit "$c/pages-$pid.img" "$off"
	restore_refused images/pages-flipped "$pid" "$c" "pages-$pid\.img: page 7 does not match its checksum" &&
		result_ok images/pages-flipped
	# owner and mode: refused unless --allow-untrusted-images
	c=$d/owner-file-uid
	cp -a "$d/b" "$c"
	chown 1000 "$c/pages-$pid.img"
	restore_refused owner/file-uid "$pid" "$c" "images file pages-$pid\.img is owned by uid 1000: .*--allow-untrusted-images" &&
		result_ok owner/file-uid
	c=$d/owner-group
	cp -a "$d/b" "$c"
	chmod g+w "$c/core-$pid.img"
	restore_refused owner/file-group-writable "$pid" "$c" "images file core-$pid\.img is writable by its group: .*--allow-untrusted-images" &&
		result_ok owner/file-group-writable
	c=$d/owner-dir
	cp -a "$d/b" "$c"
	chmod o+w "$c"
	restore_refused owner/dir-world-writable "$pid" "$c" "images directory $c is writable by anyone: .*--allow-untrusted-images" &&
		result_ok owner/dir-world-writable
	c=$d/owner-file-uid
	restored_pass owner/allowed "$pid" "$d" "$c" --allow-untrusted-images && result_ok owner/allowed
}

# case|the refusal it must produce (PID: the target's pid)
CRAFTED=(
	"inventory-dup-pid|image inventory\.img: pid PID is listed twice"
	"inventory-pid-no-entry|image inventory\.img: pid 4000000 has images but no entry in the process tree"
	"tree-unknown-parent|image inventory\.img: tree entry [0-9]+ \(pid 4000001\) is invalid"
	"fd-no-path|image fds-PID\.img: fd [0-9]+ is a file by path without flags or an absolute path free of '\.\.' \(no path\)"
	"fd-relative-path|image fds-PID\.img: fd [0-9]+ is a file by path without flags or an absolute path free of '\.\.' \(etc/passwd\)"
	"fd-dotdot-path|image fds-PID\.img: fd [0-9]+ is a file by path without flags or an absolute path free of '\.\.' \(/tmp/\.\./\.\./etc/passwd\)"
	"fd-no-flags|image fds-PID\.img: fd [0-9]+ is a file by path without flags"
	"fd-magic-link|restore pid PID fd [0-9]+: /proc/self/root/etc/passwd: leads out of the tree's root \\(refused\\); nothing was started"
	"mm-file-dotdot|image mm-PID\.img: mapped file 0 has no absolute path free of '\.\.' \(/usr/\.\./\.\./etc/passwd\)"
	"mm-ring-not-packet|restore pid PID: mapping 0x[0-9a-f]+-0x[0-9a-f]+ is the rings of packet socket fd [0-9]+, which is no packet socket"
	"mm-ring-no-socket|image mm-PID\.img: mapping [0-9]+ \(0x[0-9a-f]+-0x[0-9a-f]+\) is invalid"
	"core-root-relative|image core-PID\.img: cwd '[^']*' or root 'tmp' is not an absolute path free of '\.\.'"
	"core-cwd-dotdot|image core-PID\.img: cwd '/tmp/\.\./\.\.' or root '/' is not an absolute path free of '\.\.'"
	"core-other-pid|image core-PID\.img: holds pid [0-9]+"
	"core-controls-tsc|image core-PID\.img: TSC setting 7 is neither PR_TSC_ENABLE nor PR_TSC_SIGSEGV"
	"core-securebits|image core-PID\.img: a thread's secure bits \(0x10000\) are not all SECBIT_\* flags"
	"pagemap-run-outside|image pagemap-PID\.img: run 0 \(0x1000, [0-9]+ pages\) does not fit the saved memory layout"
	"pagemap-more-pages|image pagemap-PID\.img: runs hold [0-9]+ pages, header says [0-9]+"
)

# before_any_process DIR: the restore log has lines of one process only (stasis)
before_any_process() { [ "$(awk '{print $2}' "$1/restore.log" 2>/dev/null | sort -u | wc -l)" -le 1 ]; }

# A chain of dumps (pre-dump p1, pre-dump p2 with --prev-images-dir ../p1, dump f with
# --prev-images-dir ../p2) of a program whose memory stays as it is: f keeps its pages as
# references up the chain, each checked against the checksums of the parent that holds it and
# the parent against the dump id f's inventory names for it.
case_chain() {
	local d=$ZOO_TMP/chain pid c
	mkdir -p "$d/p1" "$d/p2" "$d/p1b" "$d/f"
	if ! zoo_start mem-anon "$d"; then
		result_fail images/chain "$ZERR"
		return
	fi
	pid=$ZPID
	# (p1b first: a pre-dump without a parent starts the tracking of writes anew)
	run_stasis "$d/dump.out" 60 pre-dump -t "$pid" -D "$d/p1b" -o dump.log -v4 &&
		[ "$ZRC" = 0 ] && run_stasis "$d/dump.out" 60 pre-dump -t "$pid" -D "$d/p1" -o dump.log -v4 &&
		[ "$ZRC" = 0 ] && run_stasis "$d/dump.out" 60 pre-dump -t "$pid" -D "$d/p2" --prev-images-dir ../p1 -o dump.log -v4 &&
		[ "$ZRC" = 0 ] && run_stasis "$d/dump.out" 60 dump -t "$pid" -D "$d/f" --prev-images-dir ../p2 -o dump.log -v4
	if [ "$ZRC" -ne 0 ] || ! wait_until 10 pid_free "$pid"; then
		result_fail images/chain "the dumps failed ($ZRC)"
		show_tail "$d/dump.out" "$d/f/dump.log"
		kill_ours "$pid"
		return
	fi
	if ! grep -q "pages_in_parent_dump=[1-9]" "$d/f/dump.log"; then
		result_fail images/chain "the dump kept no page in its parent"
		return
	fi
	# a bit flipped in every page of the oldest pre-dump's pages image (two links up)
	c=$d/flipped
	mkdir -p "$c" && cp -a "$d/p1" "$d/p2" "$d/f" "$c/"
	python3 - "$c/p1/pages-$pid.img" <<'PY'
import os, struct, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(16)
    n = struct.unpack("<Q", f.read(8))[0]
    for p in range(n):
        f.seek(4096 + p * 4096 + 100)
        b = f.read(1)
        f.seek(4096 + p * 4096 + 100)
        f.write(bytes([b[0] ^ 1]))
PY
	restore_refused images/chain/parent-flipped "$pid" "$c/f" \
		"parent/parent/pages-$pid\.img: page [0-9]+ does not match its checksum" &&
		result_ok images/chain/parent-flipped
	# the oldest pre-dump replaced by another, whole and consistent in itself
	c=$d/foreign
	mkdir -p "$c" && cp -a "$d/p2" "$d/f" "$c/" && cp -a "$d/p1b" "$c/p1"
	restore_refused images/chain/parent-foreign "$pid" "$c/f" \
		"parent/parent/pages-$pid\.img: belongs to another dump than the one this dump's chain was made from" &&
		result_ok images/chain/parent-foreign
	# the chain as it was restores and PASSes
	restored_pass images/chain/pristine "$pid" "$d" "$d/f" && result_ok images/chain/pristine
}

case_crafted() {
	local d=$ZOO_TMP/crafted pid entry name re c f n=0
	mkdir -p "$d/img"
	if ! make -s -C "$ZOO_ROOT/tests/crafted" >"$d/build.log" 2>&1; then
		result_fail crafted "cannot build tests/crafted/craft: $(tail -n 3 "$d/build.log")"
		return
	fi
	if ! zoo_start mem-file "$d"; then
		result_fail crafted "$ZERR"
		return
	fi
	pid=$ZPID
	run_stasis "$d/dump.out" 60 dump -t "$pid" -D "$d/img" -o dump.log -v4
	if [ "$ZRC" -ne 0 ] || ! wait_until 10 pid_free "$pid"; then
		result_fail crafted "the dump exited $ZRC"
		show_tail "$d/dump.out" "$d/img/dump.log"
		kill_ours "$pid"
		return
	fi
	rm -f "$d/img/dump.log"
	for entry in "${CRAFTED[@]}"; do
		name=${entry%%|*}
		re=${entry#*|}
		re=${re//PID/$pid}
		c=$d/$name
		cp -a "$d/img" "$c"
		if ! "$ZOO_ROOT/tests/crafted/bin/craft" "$c" "$name" "$pid" 2>"$c.err"; then
			result_fail "crafted/$name" "craft failed: $(cat "$c.err")"
			continue
		fi
		restore_refused "crafted/$name" "$pid" "$c" "$re" || continue
		if ! before_any_process "$c"; then
			result_fail "crafted/$name" "refused only after processes of the tree existed"
			show_tail "$c/restore.log"
		else
			result_ok "crafted/$name"
		fi
	done
	for f in "$d"/img/*.img; do
		f=${f##*/}
		c=$d/link-$f
		cp -a "$d/img" "$c"
		mv "$c/$f" "$c.real"
		ln -s "$c.real" "$c/$f"
		restore_refused "crafted/symlink/${f//$pid/PID}" "$pid" "$c" "image ${f//./\\.}: is a symbolic link \\(refusing to follow it\\)" || continue
		if before_any_process "$c"; then
			n=$((n + 1))
		else
			result_fail "crafted/symlink/${f//$pid/PID}" "refused only after processes of the tree existed"
		fi
	done
	result_ok "crafted/symlink ($n image files, each refused)"
	restored_pass crafted/pristine "$pid" "$d" "$d/img" && result_ok crafted/pristine
}

case_planted_symlinks
case_modes_and_pidfile
case_keep_good_dump
case_leftovers
case_foreign_and_flipped
case_chain
case_crafted
summary
