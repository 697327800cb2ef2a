#!/bin/bash
# What must hold when things go wrong (stasis with the zoo programs as targets):
#
#   dump/no-such-pid         dump of a pid that does not exist fails, naming the pid
#   dump/bad-dir/*           dump into a nonexistent dir, onto a regular file, into an
#                            unwritable dir fails; the target keeps running and PASSes
#   dump/unsupported-fd/*    dump of a target holding an fd stasis does not support at fd 42 (a
#                            UDP socket with an eBPF filter, a pidfd of a process outside the
#                            tree, io_urings stasis refuses: polled by a kernel thread, with a
#                            read in flight and its rings mapped, with a registered file no fd
#                            holds, an eventfd, provided buffers, a registered buffer unmapped
#                            since, a single submitter that exited, mapped and shared
#                            with a forked child; an epoll
#                            watching a file only a message in flight holds, a netlink socket
#                            holding the kernel's unread reply to its request, /dev/fuse as a
#                            FUSE server holds it: refused before any file of the tree is looked
#                            at) fails naming "fd 42" (and an io_uring by name); the target runs
#                            and PASSes
#   dump/fault/POINT/TARGET  STASIS_FAULT=POINT (after-seize, after-collect, after-pages,
#                            after-images): dump fails, the target is not stopped, not traced,
#                            keeps running and PASSes
#   restore/fault/finish-threads threads (64 of them) restored with STASIS_FAULT=restore-finish
#                            (its finish step fails, its threads caught by stasis): the restore
#                            fails by itself, naming it, and nothing is left
#   restore/fault/finish-pidns tree as the init of a PID namespace of its own (ctr-run
#                            --only-pidns), restored with STASIS_FAULT=restore-finish (its last
#                            process's finish step fails, the others traced by stasis): the
#                            restore fails by itself, naming it, and nothing of the tree is left
#   dump/unix-backlog-unread unix-backlog dumped with --leave-running (a connection waiting to be
#                            accepted whose client wrote data: only accept() could read it, which
#                            a tree left running would notice): dump fails naming the listener's
#                            pid, fd 70 and the byte count; the tree keeps running and PASSes
#   dump/hidden-file         a process holding a file whose directory a tmpfs was mounted over
#                            since: refused naming fd 3 and the file (its path leads to nothing
#                            now), the process left running and not traced
#   dump/hidden-bind-own-ns  the same in a mount namespace of its own, a bind mounted over the file
#   dump/mapped-path-too-long a process mapping a file whose path is longer than PATH_MAX (25
#                            nested directories): refused naming the mapping, left running
#   dump/unix-bound-in-chroot a process chroot()ed (in stasis's mount namespace) holding a unix
#                            listener it bound to /in-jail.sock there: refused naming the
#                            socket's name, left running
#   dump/idmapped-mount      a process holding an idmapped mount in a mount namespace of its own
#                            (tests/tools/idmapped-mount.py): refused naming the mount
#   dump/cgroup-ns-ignored   cgroup-ns-nested dumped with --manage-cgroups=ignore: refused naming
#                            the process that made its cgroup namespace (made again from its root
#                            cgroups, which that mode does not save); the tree PASSes
#   dump/i386                a 32-bit (i386) program (tests/tools/sleeper32.S): refused naming
#                            it before anything is injected, left running untraced ("skip",
#                            counted neither passed nor failed, on a kernel that runs no 32-bit
#                            program)
#   dump/tcp-urgent          tcp-established --urgent (an urgent byte waiting out of band at fd
#                            64): refused naming fd 64 and the urgent byte (reading the queue
#                            stops at its mark: the bytes after it were lost); the tree PASSes
#   dump/tcp-urgent-read     tcp-established --urgent-read (an urgent byte read out of band, its
#                            mark ahead in fd 64's queue, bytes after it): refused naming fd 64
#                            and the mark (SIOCINQ stops at it: the bytes after it were lost)
#   dump/io_uring-probe-killed io-uring-ring-fds dumped with STASIS_FAULT=kill-at:io_uring-probe
#                            (killed while a buffer group it added marks one instance): the
#                            target runs on untraced; the next dump takes the group back and
#                            goes through (--leave-running); the target PASSes
#   dump/io_uring-ring-fd-closed io-uring-ring-fds --closed (a thread registered an io_uring
#                            instance with itself, then closed its fd; never mapped): refused
#                            naming the thread and the index; the tree PASSes
#   dump/unix-backlog-files-sent
#                            unix-backlog --files-sent (a file sent with the data into a
#                            connection not accepted yet): refused naming the pid, fd 70 and the
#                            count before any connection is taken; the tree PASSes
#   dump/tcp-syn-recv        tcp-established --defer-long (TCP_DEFER_ACCEPT 60 on fd 60) with a
#                            client of the script's connected and silent: a connection being set
#                            up (SYN_RECV) for the listener; refused naming the pid, fd 60, the
#                            listener and --skip-in-flight, the target unharmed; with
#                            --skip-in-flight the dump warns, the restored target PASSes and the
#                            client's connection is reset when it sends (.../client-reset)
#   dump/mptcp-connection, dump/mptcp-waiting
#                            tcp-mptcp --mptcp-client (an MPTCP client at fd 66 connected to the
#                            MPTCP listener, its connection accepted: both MPTCP) and --waiting (a
#                            plain client waiting in the MPTCP listener's accept queue): refused
#                            naming fd 66 and its addresses (with the GODEBUG that makes a Go
#                            program's listeners plain TCP), or fd 60 and its waiting connections;
#                            the target PASSes
#   dump/tcp-waiting-without-option
#                            tcp-accept-queue (connections from outside waiting in its listeners'
#                            accept queues) dumped without --tcp-established: fails naming the
#                            pid, fd 60, its address and its 3 clients; the target PASSes (it
#                            accepts them all with their data, its clients see no reset)
#   dump/tcp-waiting-kernel-lacks
#                            the same with --tcp-established on a kernel taken to lack what puts
#                            them back (STASIS_FAULT=kernel-lacks:tcp_requeue): fails naming the
#                            listener, its clients and what the kernel lacks; the target PASSes
#   dump/fault/after-collect|after-images/tcp-accept-queue, leave-running/tcp-accept-queue
#                            the same dumped with --tcp-established, the dump failing after the
#                            connections were taken (STASIS_FAULT), or --leave-running: they are
#                            back in their queues; the target PASSes
#   dump/udp-error-leave-running udp with --leave-running (fd 71: an ICMP error pending and in its
#                            error queue): refused naming fd 71 (the kernel gives the error only
#                            by taking it); the program PASSes
#   dump/tcp-reset-leave-running
#                            tcp-reset (connections their peer reset, ECONNRESET pending) dumped
#                            with --leave-running: refused naming the pid, fd 70 and its
#                            addresses before the error is taken (SO_ERROR takes it); the target
#                            PASSes (its first read and write still say ECONNRESET)
#   dump/unix-inflight-pipe-alone
#                            unix-inflight --pipe-alone (a pipe carried in a waiting message, no
#                            pipe held by any process): dump fails naming the pid, fd 61 and the
#                            pipe; the target keeps running and PASSes (its queue untouched)
#   dump/epoll-of-thread-pidfd
#                            pidfd-thread --epoll (an epoll watching a pidfd of a thread): dump
#                            fails naming the pid, fd 70 and fd 60; the target PASSes
#   dump/unix-oob            unix-peer-closed --oob (urgent data waiting in a stream socket): dump
#                            fails naming the pid, fd 67 and MSG_OOB; the target PASSes
#   dump/unix-seqpacket-reset-data
#                            unix-peer-closed --reset-data (a seqpacket socket with ECONNRESET
#                            waiting before a packet: reading the packet would take the error):
#                            dump fails naming the pid, fd 63 and the error; the target PASSes
#   dump/ext-stream-without-option
#                            ext-unix (a stream socket at fd 88 connected outside the tree)
#                            dumped without --ext-unix-sk: fails naming fd 88 and the option;
#                            the target keeps running and PASSes
#   dump/ghost-over-limit    ghost-sparse dumped with --ghost-limit 50000 (a deleted file with
#                            77824 bytes of data between holes): fails naming the pid, its mapping
#                            or fd 30, the file, its data and the limit; the target PASSes
#   dump/shared-files        shared-tables (a grandchild shares the program's fd table, its
#                            parent, which made it with CLONE_FILES, left that table): fails
#                            naming the grandchild, the program and the parent; the target PASSes
#   dump/shared-vm, dump/shared-fs
#                            shared-tables --vm | --fs (a child made by clone with CLONE_VM or
#                            CLONE_FS shares the program's memory, or cwd, root and umask): fails
#                            naming both pids and what they share; the target PASSes
#   dump/vfork-pending       shared-tables --vfork (a child in vfork(), its child neither execs
#                            nor exits): fails within about a second naming both pids; the
#                            target PASSes
#   dump/thread-fd-table     shared-tables --thread (a thread with a table of its own,
#                            unshare(CLONE_FILES), holding a file the process's does not):
#                            fails naming the pid, the thread and the fd
#   dump/packet-ring-partial packet-ring --partial (a mapping of a packet socket's rings with its
#                            last page unmapped): fails naming the pid, the mapping's address and
#                            the socket; the target PASSes
#   dump/seccomp-listener    seccomp-stack --notify-listener (a filter of the program hands a
#                            system call to a user-notification listener its supervisor holds,
#                            outside the tree): fails naming the program's pid, the filter and
#                            the listener's holder; the program keeps running and PASSes
#   dump/nested-ns-not-inherited
#                            nested-ns --setns-sibling (a second child joined the first one's
#                            own mount namespace with setns: it is in a nested namespace its
#                            parent is not in): fails naming the pid, the namespace and the pid
#                            that made it; the target PASSes
#   dump/mapped-file-hidden  mem-nested-mnt --hidden (its child maps a file, then mounts a tmpfs
#                            over the file's directory): fails naming the pid and the file
#                            (its path leads to nothing now); the target PASSes
#   dump/nested-mnt-chrooted mount-ns-pivot --chroot (its child, in a mount namespace of its
#                            own, chroots into the new root instead of pivot_root): fails naming
#                            the pid and the namespace its root is not the root of; the target
#                            PASSes
#   dump/nested-mnt-removed-file-big
#                            mount-ns-pivot --big-data (a removed file of 2 MiB bound in the
#                            namespace with a root of its own): fails naming the pid, the mount,
#                            the size and the maximum; the target PASSes
#   dump/nested-mnt-covered-tmpfs
#                            mount-ns-pivot --covered-tmpfs (a tmpfs with a file, another mounted
#                            over it): fails naming the pid, the tmpfs and its mount; the target
#                            PASSes
#   dump/nested-ipc-objects  ipc-ns-nested --with-shm (its child made a SysV shm segment in its
#                            own IPC namespace): fails naming the pid, the namespace and what it
#                            holds; the target PASSes
#   dump/nested-ipc-sem-undo ipc-ns-nested --with-undo (its grandchild took a semaphore of that
#                            namespace with SEM_UNDO): fails naming the grandchild and the
#                            namespace; the target PASSes
#   dump/nested-mount-fifo, dump/nested-mount-socket
#                            mem-nested-mnt --fifo, --bound-socket (its child holds a named pipe
#                            of its tmpfs, or a unix socket bound there, a mount of its own mount
#                            namespace alone): fails naming the pid, the fd and the path (stasis
#                            would make them before the tree, where that mount is not); the
#                            target PASSes
#   dump/detached-removed    detached-mounts --removed (a file removed on a tmpfs detached since):
#                            fails naming the pid, the fd and the file; the target PASSes
#   dump/detached-ramfs      detached-mounts --ramfs (a file on a detached ramfs): fails naming
#                            the pid, the fd, the file and the mount; the target PASSes
#   dump/detached-big        detached-mounts --big dumped with --ghost-limit 1000000 (2.1 MB on
#                            the detached tmpfs): fails naming the pid, the fd and the limit;
#                            the target PASSes
#   restore/ext-stream-without-inherit-fd
#                            ext-unix dumped with --ext-unix-sk --leave-running, restored
#                            without --inherit-fd: refused naming pid, fd 88, its socket:[INODE]
#                            key and --inherit-fd; no second process; the target PASSes
#   restore/external-tty     tests/tools/external-tty.py: a counter on the slave of a pty of the
#                            caller's: the dump without --external is refused naming the
#                            terminal (the counter goes on); with --external tty[RDEV:DEV] it
#                            is saved by key; the restore without --inherit-fd is refused
#                            naming fd[N]:tty[...], nothing started; with it, the count goes on
#                            on the new pty from the next number
#   restore/shell-job-foreground
#                            tests/tools/shell-job-foreground.py: a shell's foreground job (a
#                            key reader on a pty, its terminal also opened by name at fd 3 and
#                            put in cbreak mode, as less does) dumped with --shell-job, the
#                            terminal put back in line mode, and restored from that shell: the
#                            restored job is in the terminal's foreground group (not stopped by
#                            SIGTTIN), the terminal in cbreak mode again, and reads the next key
#   restore/root-slash       a shell in a mount namespace of its own (unshare -m) with a tmpfs,
#                            restored with --root /: it finds its tmpfs and file again; no
#                            directory of stasis's is left in /tmp
#   restore/masterless-pty   a shell in a mount namespace of its own with a devpts of its own and
#                            a bind of its pty 0, whose master a process outside the tree holds
#                            (as LXC's ttys): restored with --root /, the bind is there again, of
#                            a pty of the new devpts; and after a second dump and restore
#   restore/sigchld-ignored  threads dumped and restored by a stasis started with SIGCHLD ignored
#                            (SIG_IGN survives exec: its children were reaped before it waited,
#                            and its kernel probes said "missing"): the restored program PASSes
#   dump/tracer-of-outside   a tree whose process traces (PTRACE_SEIZE, as strace -p and gdb -p
#                            attach) a sleep outside it: refused naming the tracer and the
#                            traced pid; the tracer runs on, still tracing it
#   dump/process-keyring     a python program with a key in a keyring of its own (add_key to
#                            KEY_SPEC_PROCESS_KEYRING): refused naming the pid and the keyring,
#                            the program left as it was
#   restore/mapped-file-times
#                            mem-file (private.dat mapped privately, shared.dat shared): the
#                            files' times cut to whole seconds (as tar copies them: engines save
#                            /dev/shm and volumes so) restore; then shared.dat touched after the
#                            dump restores with a warning naming it; then private.dat touched is
#                            refused naming it, nothing started
#   leave-running/TARGET     dump --leave-running succeeds, the target keeps running; a restore
#                            of those images refuses (pid taken, message names the pid), starts
#                            no second process; then the target PASSes (memfd-secret among them:
#                            the memfds and mappings the dump had it make are gone, its fds and
#                            maps checks; cow-pair: reading its memory left every page it shares
#                            with its child shared)
#   dump/fault/after-collect/memfd-secret
#                            as dump/fault above, once the secret memory was copied out
#   dump/fault/secret-map-copied, dump/fault/secret-fd-copied
#                            memfd-secret with STASIS_FAULT=secret-map-copied (the process has
#                            copied a mapping's secret pages into a memfd of its own) or
#                            secret-fd-copied (the same for a file it holds as an fd alone,
#                            mapped for the copy): the dump fails naming the point; the target
#                            PASSes (its fds and maps checks: the memfd and the mapping are gone)
#   dump/secret-in-flight    memfd-secret --in-flight (a memfd_secret() file carried in a
#                            message waiting in a unix socket, held by no fd): fails naming it;
#                            the target PASSes (the copies of its other secret files are gone)
#   dump/stopped-meanwhile   mem-anon gets SIGSTOP from the network-lock action script, once
#                            seized and before stasis runs system calls in it: the dump succeeds,
#                            the restored process is stopped (state T); after SIGCONT it PASSes
#   dump/stopped-meanwhile-fault
#                            the same with STASIS_FAULT=after-collect: the dump fails, the target
#                            is left stopped (state T) and not traced; after SIGCONT it PASSes
#   restore/corrupt/*        truncated core-PID.img, a flipped byte in mm-PID.img, inventory.img
#                            copied over core-PID.img, truncated pages-PID.img (last page, and
#                            inside the header), missing fds-PID.img, a flipped byte in
#                            pagemap-PID.img: restore fails, the error names that file, no
#                            process with the pid exists afterwards
#   restore/pristine         the same images, untouched, restore and PASS (so the failures above
#                            were caused by the damage)
#   restore/hung-pty-index-taken
#                            pty-hangup (a pty whose master it closed, its slave files hung up,
#                            and a live pty of a higher number) dumped; a pty of the test's takes
#                            the hung-up one's number: the restore gives that one another number
#                            (a warning says so) and the live pty its own (fd 71 /dev/pts/N as
#                            before); before, the hung-up one took it and the restore failed
#   restore/linked-file-gone a file deleted under the name the target used but linked under
#                            another (deleted-files' fd 32) loses that other link between dump
#                            and restore: restore fails naming the file, no process runs
#   restore/proc-file-sent-up files-proc --sent-up (its child's /proc/CHILD/status, held by the
#                            child and sent to the parent: only the child can open it, and the
#                            parent was not forked by it): restore fails naming fd 36 and both
#                            pids before anything starts, no process runs (the dump does not
#                            see it coming: the tree it killed cannot come back)
#   restore/lsm-profile      mem-anon's images restored with --lsm-profile apparmor:docker-default
#                            (a label stasis cannot set; this host has no security module at
#                            all): restore fails naming the option before anything starts, no
#                            process runs; restore/lsm-profile-none: without it, they restore
#                            and PASS
#   restore/hugetlb-pool-short
#                            hugetlb's images (memory of 2 MiB huge pages) with the pool shrunk
#                            below what they need: restore fails naming the size and both numbers
#                            before anything starts, no process runs, no SysV segment is left;
#                            restore/hugetlb-pool-back: the pool grown again, the same images
#                            restore and PASS
#   restore/proc-dead-pid-taken
#                            proc-dead's images (files of /proc of processes reaped before the
#                            dump), one of those pids taken by another process: restore fails
#                            naming that pid, no process runs; once the pid is free again the
#                            same images restore and PASS
#   restore/id-held          orphan-session --escape (its orphan goes up out of the tree, still
#                            in the session of the tree's S): the dump warns naming both pids;
#                            while the orphan runs the restore is refused naming both, no
#                            process runs; once it is gone the same images restore and PASS
#   dump/ipc-ns-split        a tree whose child has an IPC namespace of its own (sysv-ipc with
#                            ZOO_IPC_SPLIT=1): dump fails naming the child and the IPC
#                            namespace; both keep running and the parent PASSes
#   restore/corrupt/ipc-ns-* a flipped byte in ipc-ns.img, ipc-ns.img missing (sysv-ipc images):
#                            restore fails naming ipc-ns.img, no process with the pid exists;
#                            restore/ipc-ns-pristine: the untouched images restore and PASS
#   restore/join-ns-*        sysv-ipc images restored with --join-ns: -mnt (a kind stasis does
#                            not join), -wrong-kind (ipc: given a network namespace), -missing
#                            (uts: no such file), -id-taken (ipc, by pid: a namespace where a
#                            queue of another key has the id of the tree's queue B), -undone
#                            (ipc: an empty namespace with kernel.msgmni 1, where the tree's
#                            queues cannot all be made again): refused naming the option, or the
#                            queue with its id and keys, no process runs, and the joined
#                            namespace holds what it held before (its own queue, or nothing: the
#                            segments and the queue made again are removed);
#                            restore/join-ns-pristine: the untouched images restore and PASS
#   restore/engine-pid-ns*   tree started by nsenter in a PID namespace of this script's (an
#                            engine's: its init reaps), dumped with --external pid[INODE]:KEY:
#                            -no-fd restored without --inherit-fd for the key: refused naming it;
#                            -fault a failure injected in the last process made: no process of
#                            the tree is left there (the namespace's init alone); then restored
#                            with the namespace's fd: the tree is back there with its pids, PASS
#   restore/join-ns-user*    a tree in a user namespace of its own (maps 0 0 1) restored with
#                            --join-ns user: -own into this script's (stasis's own), -maps into
#                            one without maps: refused naming it or the map, nothing made; into a
#                            holder's namespace with those maps: the tree is back there, its root
#                            pid 1 of a new PID namespace
#   dump/time-ns-outside-maker
#                            time-ns-nested --outside: a process in a time namespace that another
#                            makes (in one namespace, its children going to that one), but not
#                            its descendant (orphaned to a subreaper): the dump fails naming both
#                            pids, the tree is left running
#   dump/time-ns-fd-unreachable
#                            time-ns-nested --root-holds-t2: the root holds an fd of a time
#                            namespace its grandchild makes: the dump fails naming the fd
#   restore/corrupt/time-ns-*
#                            time-ns-nested's time-ns.img (CRC made again) naming a namespace no
#                            process's image names, or stasis's own one of the tree's: restore
#                            fails naming the image before any namespace is made, no process runs;
#                            restore/time-ns-pristine: the untouched images restore and PASS
#   dump/netns-nested-*      netns-private (its child in a network namespace of its own) with
#                            what the dump cannot keep there: -abstract a unix socket bound
#                            to an abstract name (fd 59 of the child), -vxlan an interface of a
#                            kind not kept (as in the tree's own namespace): the dump fails
#                            naming the fd, or the interface and the namespace; the tree runs
#                            and PASSes
#   dump/netns-mounted-*     netns-mounted (network namespaces held by mounts, `ip netns add`)
#                            with a mount of what cannot be kept: -host stasis's own network
#                            namespace, -ipc an IPC namespace's file: the dump fails naming the
#                            mount; the tree runs and PASSes
#   dump/netns-inet-held-outside
#                            netns-inet (inet sockets in its child's own namespace) with a socket
#                            the restore would make in another namespace than its own: the
#                            child's listener held by the parent too (it would be made by
#                            stasis, in the tree's namespace; shared by processes of the child's
#                            namespace alone, the child makes it): the dump fails naming the fd
#                            and both namespaces; the tree runs, PASSes
#   restore/corrupt/netns-maker
#                            netns-inet's images (--tcp-established) with the maker that its
#                            child's shared sockets name (fd_entry.netns_maker) changed to the
#                            root, which made no network namespace: restore fails naming the fds
#                            image and net-nested.img before anything starts; the untouched images
#                            restore and PASS
#   dump/exec-stranger-waited  a shell as the init of a PID namespace of its own (unshare --pid
#                            --fork), a process joined to that namespace from outside for 0.4 s
#                            (nsenter -p, as an engine's exec, a health check): the dump
#                            (--leave-running) waits for it, lets the tree run on and seizes it
#                            again, and goes on: exit 0, the log names the stranger
#   dump/exec-stranger       the same with one that stays (sleep 1000): the dump fails naming it,
#                            "as `exec` into a container does"; the tree runs, not stopped nor
#                            traced
#   dump/unix-client-waited  a python server in a network namespace of its own (unshare -n)
#                            serving on a socket file, which accepts every 50 ms and answers
#                            once the dump's log names the connection (a file the test makes
#                            then): a client in the host's namespace (outside the tree, as
#                            a host's web server asks a container's FastCGI server) connected
#                            and waits. The dump lets the tree run on until it has been
#                            answered (its log names the connection), then goes on: exit 0, the
#                            client got its answer; the images restore and the server answers a
#                            new client
#   dump/unix-client-stays   the same with a client the server holds on to: the dump
#                            (--leave-running) waits for it, then fails naming the connection
#                            (--ext-unix-sk); the server runs on, neither stopped nor traced, and
#                            answers
#   dump/unix-client-same-net-waited, dump/unix-client-same-net-stays
#                            the same two with the server in the host's network namespace, as
#                            its client (a connection accepted from a client outside the tree,
#                            not from another namespace)
#   dump/userns-nested       a tree in a user namespace of its own (unshare -Ur --pid --fork, a
#                            shell) whose child is in a user namespace nested in it (unshare -U):
#                            dump fails naming the child and user namespaces; the tree keeps
#                            running, not stopped nor traced
#   restore/corrupt/userns-overlap
#                            such a tree's images (no nested one) with a second uid_map line in
#                            userns.img that repeats the first: restore fails naming userns.img and
#                            the overlap before anything is made (no helper, no process);
#                            restore/userns-pristine: the untouched images restore, the shell runs
#                            pid 1 of a PID namespace in a user namespace whose uid_map is saved one
#   dump/kernel-lacks-rseq-conf
#                            STASIS_FAULT=kernel-lacks:get_rseq_conf (the kernel is taken to lack
#                            PTRACE_GET_RSEQ_CONFIGURATION): the dump of the rseq program is
#                            refused before anything is frozen, naming that feature; it PASSes
#   restore/kernel-lacks-clone3-set-tid
#                            STASIS_FAULT=kernel-lacks:clone3_set_tid: the restore of mem-anon's
#                            images is refused naming clone3 with set_tid; no process runs
#   restore/kernel-lacks-memfd-secret
#                            STASIS_FAULT=kernel-lacks:memfd_secret: the restore of memfd-secret's
#                            images is refused naming memfd_secret() memory and the feature; no
#                            process runs
#   check/report             stasis check exits 0, ends "Looks good.", every feature line reads
#                            "name: yes|no (detail)", clone3 and rseq reading are there
#   check/feature-list       check --feature list: one line of criu's names, exit 0
#   check/feature-supported, check/feature-unsupported, check/feature-unknown
#                            --feature clone3_set_tid: "clone3_set_tid is supported", exit 0;
#                            --feature compat_cr (32-bit processes): a "Warn: ... is not
#                            supported" on stderr, exit 1; --feature no_such_feature: an error
#                            naming it, exit 1
#   check/feature-kept       --feature aio_remap and loginuid (kept by stasis on any kernel):
#                            "NAME is supported", exit 0
#   check/feature-each       every listed name answers one of those two ways
#   dump/alloc-fail/TARGET   (tree, pipes, unix-pair, tcp-established: dumped with
#                            --tcp-established) STASIS_FAULT=alloc-N (the Nth allocation of stasis
#                            fails) for N = 1, 2, 3, 5, 8, 13, ... until N is past the dump's
#                            last allocation (the dump goes through), then N halving the gap to
#                            the last one that failed: each failed dump exits cleanly naming
#                            "out of memory", the target is left running and PASSes; a dump
#                            that goes through logged no "out of memory"; at least 10 points
#                            failed
#   restore/alloc-fail/TARGET
#                            (tree, shared-anon, tcp-established) the same over restores of
#                            TARGET's images (each new process counts on from where stasis
#                            created it): each failed restore exits cleanly naming "out of
#                            memory" and leaves no process of the images; one that goes through
#                            runs the program, which PASSes. TCP targets are restored each time
#                            in a network namespace of their own (lo up): a connection that ran
#                            (or was let go) lingers in TIME_WAIT for a minute, and the kernel
#                            refuses to make the same one again meanwhile
#   cli/criu-options         every long option of criu's command line (with an argument where it
#                            takes one; the on/off ones also as --no-NAME) on a dump of a pid that does not exist: each is accepted
#                            (the error is then about the pid) or refused naming the option and
#                            what stasis lacks; never "unknown option", a usage text or a crash
#   dump/kill-apart-dies     sem-undo-multi (3 processes holding SEM_UNDO adjustments on one
#                            host semaphore set, killed one at a time after the images are in
#                            place) dumped by a stasis that dies (STASIS_FAULT=kill-at:kill-apart)
#                            once the first of them is gone: none of the tree runs on
#   restore/bogus-dir, restore/empty-dir
#                            restore -D of a nonexistent / empty directory fails cleanly (exit
#                            status 1..123, no crash, a message; the empty one names
#                            inventory.img)
#
#   tests/failure-cases.sh [--keep]
#   ALLOC_ONLY=1 runs the alloc-fail sweeps alone; ALLOC_EVERY=1 makes them try every N from 1
#   to the last allocation instead of the spaced points (an hour or more: for leak hunts with
#   LeakSanitizer, not for make test); ALLOC_DUMP_TARGETS / ALLOC_RESTORE_TARGETS pick targets.
# Output: one line per case, then "N passed, N failed"; exit status non-zero on failure.

# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=zoo/lib.sh
. "$(dirname "$0")/zoo/lib.sh"

zoo_common_options "$@"

FAULT_POINTS="after-seize after-collect after-pages after-images"
FAULT_TARGETS="mem-anon signals syscall-restart fds regs-gp unix-inflight"
LEAVE_TARGETS="mem-anon syscall-restart signals fds itimers regs-fpu mqueue unix-inflight unix-peer-closed
	memfd-secret cow-pair"
# processes, zombies, groups; pipes, a FIFO, shared files; unix socket pairs and their queues;
# TCP connections (repair, the network lock) and listeners
ALLOC_DUMP_TARGETS=${ALLOC_DUMP_TARGETS-tree pipes unix-pair tcp-established}
# restored again and again (pipes' FIFO goes at its exit)
ALLOC_RESTORE_TARGETS=${ALLOC_RESTORE_TARGETS-tree shared-anon tcp-established}
ALLOC_MIN_POINTS=10
UNSUPPORTED_KINDS="dnotify ebpf-filter tun-host vsock fuse bpf-queue bpf-map-twice bpf-map-used bpf-map-outside pidfd-outside io_uring io_uring-mapped io_uring-files io_uring-eventfd io_uring-buffers io_uring-buffer-unmapped io_uring-single io_uring-forked epoll-in-flight netlink-reply"

zoo_setup_tmp
zoo_ready_or_exit

# ---------------------------------------------------------------------------------------
case_no_such_pid() {
	local d=$ZOO_TMP/nopid pid
	mkdir -p "$d/img"
	pid=$(($(cat /proc/sys/kernel/pid_max) - 1))
	while [ -e "/proc/$pid" ] && [ "$pid" -gt 300 ]; do pid=$((pid - 1)); done
	run_stasis "$d/dump.out" 30 dump -t "$pid" -D "$d/img" -o dump.log -v4
	if ! clean_failure "$ZRC"; then
		result_fail dump/no-such-pid "exit status $ZRC (pid $pid)"
		show_tail "$d/dump.out" "$d/img/dump.log"
	elif ! mentions "$d/dump.out" "$d/img/dump.log" "(^|[^0-9])$pid([^0-9]|$)"; then
		result_fail dump/no-such-pid "the error does not name pid $pid"
		show_tail "$d/dump.out" "$d/img/dump.log"
	else
		result_ok dump/no-such-pid
	fi
}

case_bad_dir() { # case_bad_dir LABEL DIR
	local label=$1 dir=$2 d=$ZOO_TMP/baddir-$1 name=mem-anon
	if ! zoo_start "$name" "$d"; then
		result_fail "dump/bad-dir/$label" "$ZERR"
		return
	fi
	run_stasis "$d/dump.out" 60 dump -t "$ZPID" -D "$dir" -o dump.log -v4
	if ! clean_failure "$ZRC"; then
		result_fail "dump/bad-dir/$label" "dump -D $dir: exit status $ZRC"
		show_tail "$d/dump.out"
		kill_ours "$ZPID"
	elif [ ! -s "$d/dump.out" ]; then
		result_fail "dump/bad-dir/$label" "dump -D $dir failed without a message on stdout/stderr"
		kill_ours "$ZPID"
	elif ! target_survives "$label" "$ZPID" "$d"; then
		result_fail "dump/bad-dir/$label" "$ZERR"
		show_tail "$d/dump.out"
	else
		result_ok "dump/bad-dir/$label"
	fi
}

case_unsupported() { # case_unsupported KIND
	local kind=$1 d=$ZOO_TMP/unsupported-$1
	mkdir -p "$d/img"
	export ZOO_UNSUPPORTED_KIND=$kind
	zoo_start unsupported-fd "$d"
	local ok=$?
	unset ZOO_UNSUPPORTED_KIND
	if [ $ok -ne 0 ]; then
		result_fail "dump/unsupported-fd/$kind" "$ZERR"
		return
	fi
	run_stasis "$d/dump.out" 60 dump -t "$ZPID" -D "$d/img" -o dump.log -v4
	if ! clean_failure "$ZRC"; then
		result_fail "dump/unsupported-fd/$kind" "dump of a $kind at fd 42: exit status $ZRC"
		show_tail "$d/dump.out" "$d/img/dump.log"
		kill_ours "$ZPID"
	elif ! mentions "$d/dump.out" "$d/img/dump.log" '([Ff][Dd]|descriptor)[ :=#]*42([^0-9]|$)'; then
		result_fail "dump/unsupported-fd/$kind" "the error does not name fd 42"
		show_tail "$d/dump.out" "$d/img/dump.log"
		kill_ours "$ZPID"
	elif [ "$kind" = vsock ] && ! mentions "$d/dump.out" "$d/img/dump.log" 'is an AF_VSOCK \(virtual machine\) socket'; then
		result_fail "dump/unsupported-fd/$kind" "the error does not name the socket's family"
		show_tail "$d/dump.out" "$d/img/dump.log"
		kill_ours "$ZPID"
	elif [[ $kind == io_uring* ]] && ! mentions "$d/dump.out" "$d/img/dump.log" 'io_uring instance'; then
		result_fail "dump/unsupported-fd/$kind" "the error does not name the io_uring instance"
		show_tail "$d/dump.out" "$d/img/dump.log"
		kill_ours "$ZPID"
	elif ! target_survives "$kind" "$ZPID" "$d"; then
		result_fail "dump/unsupported-fd/$kind" "$ZERR"
		show_tail "$d/dump.out" "$d/img/dump.log"
	else
		result_ok "dump/unsupported-fd/$kind"
	fi
}

# A tree whose child holds an unsupported fd: the whole dump fails, naming the child and the
# fd, and both processes keep running (the parent's verdict includes the child's).
case_unsupported_in_child() {
	local d=$ZOO_TMP/unsupported-child child
	mkdir -p "$d/img"
	export ZOO_UNSUPPORTED_IN_CHILD=1 ZOO_UNSUPPORTED_KIND=ebpf-filter
	zoo_start unsupported-fd "$d"
	local ok=$?
	unset ZOO_UNSUPPORTED_IN_CHILD ZOO_UNSUPPORTED_KIND
	if [ $ok -ne 0 ]; then
		result_fail dump/unsupported-fd/in-child "$ZERR"
		return
	fi
	child=$(cat "$d/work/child.pid" 2>/dev/null)
	run_stasis "$d/dump.out" 60 dump -t "$ZPID" -D "$d/img" -o dump.log -v4
	if ! clean_failure "$ZRC"; then
		result_fail dump/unsupported-fd/in-child "dump exit status $ZRC"
		show_tail "$d/dump.out" "$d/img/dump.log"
		kill_ours "$ZPID"
		kill_ours "$child"
	elif [ -z "$child" ] || ! mentions "$d/dump.out" "$d/img/dump.log" "pid $child fd 42([^0-9]|\$)"; then
		result_fail dump/unsupported-fd/in-child "the error does not name child $child and fd 42"
		show_tail "$d/dump.out" "$d/img/dump.log"
		kill_ours "$ZPID"
		kill_ours "$child"
	elif ! proc_alive "$child" || [ "$(proc_state "$child")" = T ]; then
		result_fail dump/unsupported-fd/in-child "the child $child is gone or stopped"
		kill_ours "$ZPID"
		kill_ours "$child"
	elif ! target_survives in-child "$ZPID" "$d"; then
		result_fail dump/unsupported-fd/in-child "$ZERR"
		kill_ours "$child"
	else
		result_ok dump/unsupported-fd/in-child
	fi
}

# A process holding file locks, dumped without --file-locks: the dump fails saying so.
case_locks_without_option() {
	local d=$ZOO_TMP/locks-no-option
	mkdir -p "$d/img"
	if ! zoo_start file-locks "$d"; then
		result_fail dump/file-locks-without-option "$ZERR"
		return
	fi
	run_stasis "$d/dump.out" 60 dump -t "$ZPID" -D "$d/img" -o dump.log -v4
	if ! clean_failure "$ZRC"; then
		result_fail dump/file-locks-without-option "dump exit status $ZRC"
		show_tail "$d/dump.out" "$d/img/dump.log"
		kill_ours "$ZPID"
	elif ! mentions "$d/dump.out" "$d/img/dump.log" 'fd [0-9]+: holds a file lock.*--file-locks'; then
		result_fail dump/file-locks-without-option "the error does not name the fd and --file-locks"
		show_tail "$d/dump.out" "$d/img/dump.log"
		kill_ours "$ZPID"
	elif ! target_survives locks "$ZPID" "$d"; then
		result_fail dump/file-locks-without-option "$ZERR"
	else
		result_ok dump/file-locks-without-option
	fi
}

# dump_fails_naming CASE NAME REGEX [ZOO ARGS...]: start the zoo program, the dump must fail
# with a message matching REGEX (PID in it is replaced by the target's pid), and the target
# must keep running and PASS. DUMP_VERB: pre-dump instead of dump.
dump_fails_naming() {
	local label=$1 name=$2 re=$3 d=$ZOO_TMP/$1
	shift 3
	mkdir -p "$d/img"
	if ! zoo_start "$name" "$d" "$@"; then
		result_fail "$label" "$ZERR"
		return
	fi
	re=${re//PID/$ZPID}
	# shellcheck disable=SC2086 # DUMP_OPTS: extra dump options, split into words
	run_stasis "$d/dump.out" 60 "${DUMP_VERB:-dump}" -t "$ZPID" -D "$d/img" -o dump.log -v4 ${DUMP_OPTS:-}
	if ! clean_failure "$ZRC"; then
		result_fail "$label" "dump exit status $ZRC"
		show_tail "$d/dump.out" "$d/img/dump.log"
		kill_ours "$ZPID"
		drop_net_lock "$ZPID" # (a dump with --tcp-established that went through)
	elif ! mentions "$d/dump.out" "$d/img/dump.log" "$re"; then
		result_fail "$label" "the error does not match '$re'"
		show_tail "$d/dump.out" "$d/img/dump.log"
		kill_ours "$ZPID"
	elif ! target_survives "$label" "$ZPID" "$d"; then
		result_fail "$label" "$ZERR"
		show_tail "$d/dump.out" "$d/img/dump.log"
	else
		result_ok "$label"
	fi
}

# dump_refused_untouched LABEL PID DIR WHAT RE [DUMP OPTS...]: a dump of PID (sleeping) fails
# cleanly, its error matching RE (WHAT names what it must name), and PID is left as it was:
# sleeping, untraced. Says the result; PID is left running.
dump_refused_untouched() {
	local label=$1 pid=$2 d=$3 what=$4 re=$5 st
	shift 5
	run_stasis "$d/dump.out" 60 dump -t "$pid" -D "$d/img" "$@" -o dump.log -v4
	st=$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
	if ! clean_failure "$ZRC"; then
		result_fail "$label" "dump exit status $ZRC"
		show_tail "$d/dump.out" "$d/img/dump.log"
	elif ! mentions "$d/dump.out" "$re"; then
		result_fail "$label" "the error does not name $what"
		show_tail "$d/dump.out" "$d/img/dump.log"
	elif [ "$st" != S ] || [ "$(tracer_of "$pid")" != 0 ]; then
		result_fail "$label" "the process is not left as it was (state '$st', tracer $(tracer_of "$pid"))"
	else
		result_ok "$label"
	fi
}

# An idmapped mount (mount_setattr(MOUNT_ATTR_IDMAP), tests/tools/idmapped-mount.py) in the
# process's own mount namespace: made again it would show the filesystem's own owners; refused
# naming the mount, the process left running, not traced.
case_idmapped_mount() {
	local d=$ZOO_TMP/idmapped-mount label=dump/idmapped-mount pid
	mkdir -p "$d/img"
	setsid python3 "$ZOO_ROOT/tests/tools/idmapped-mount.py" "$d" </dev/null >"$d/out" 2>&1 &
	pid=$!
	wait_until 5 grep -q -e READY -e FAIL "$d/out"
	if ! grep -q READY "$d/out"; then
		result_fail $label "the idmapped mount was not made: $(cat "$d/out")"
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		return
	fi
	dump_refused_untouched $label "$pid" "$d" "the idmapped mount" \
		"dump pid $pid: mount $d/idm \\(tmpfs, /\\) is idmapped" --ext-mount-map auto
	kill "$pid"
	wait "$pid" 2>/dev/null
}

# A file its path no longer leads to: its directory a tmpfs was mounted over after the file was
# opened (in stasis's mount namespace), a file a bind was mounted over in a mount namespace of
# the process's own (made again at restore as it is: the path would open the file on top).
# Refused naming the fd, the process left running, not traced. (A file or working directory
# on a mount detached since is saved: tests/zoo/detached-mounts.c.)
case_hidden_file() {
	local how=$1 d=$ZOO_TMP/hidden-$1 label=dump/hidden-$1 pid expect opts=--ext-mount-map=auto
	mkdir -p "$d/img" "$d/hide" "$d/other" && echo under >"$d/hide/f" && echo over >"$d/other/f"
	case $how in
	file)
		setsid sleep 600 3<"$d/hide/f" </dev/null >/dev/null 2>&1 &
		pid=$!
		expect="dump pid $pid fd 3: $d/hide/f is hidden: its path now leads to another file or to none"
		opts=
		if ! mount -t tmpfs stasis-hidden "$d/hide"; then
			kill "$pid"
			wait "$pid" 2>/dev/null
			result_fail $label "cannot mount a tmpfs on $d/hide"
			return
		fi ;;
	bind-own-ns)
		setsid unshare -m --propagation private sh -c \
			'exec 3<"$1/hide/f" && mount --bind "$1/other/f" "$1/hide/f" && exec sleep 600' \
			sh "$d" </dev/null >/dev/null 2>&1 &
		pid=$!
		expect="dump pid $pid fd 3: $d/hide/f is hidden: its path now leads to another file or to none" ;;
	esac
	for _ in $(seq 100); do # its setup done: it runs sleep
		[ "$(cat "/proc/$pid/comm" 2>/dev/null)" != sleep ] || break
		sleep 0.05
	done
	dump_refused_untouched $label "$pid" "$d" "the hidden file" "$expect" $opts
	kill "$pid"
	wait "$pid" 2>/dev/null
	[ "$how" != file ] || umount "$d/hide"
}

case_i386() {
	local d=$ZOO_TMP/i386 label=dump/i386 pid
	mkdir -p "$d/img"
	if ! as --32 -o "$d/sleeper32.o" "$ZOO_ROOT/tests/tools/sleeper32.S" ||
		! ld -m elf_i386 -o "$d/sleeper32" "$d/sleeper32.o"; then
		result_fail $label "cannot assemble tests/tools/sleeper32.S (as --32, ld -m elf_i386)"
		return
	fi
	# (a kernel without IA32 emulation, or with it off, executes none: ENOEXEC, and execvp hands
	# the file to sh instead; run, it sleeps until timeout kills it: 124)
	timeout 0.3 "$d/sleeper32" </dev/null >/dev/null 2>&1
	local rc=$?
	if [ $rc != 124 ]; then
		result_skip $label "this kernel does not run tests/tools/sleeper32.S's program (exit $rc: no IA32 emulation?)"
		return
	fi
	setsid "$d/sleeper32" </dev/null >/dev/null 2>&1 &
	pid=$!
	wait_until 5 test "$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null)" = S
	dump_refused_untouched $label "$pid" "$d" "the 32-bit program" "dump pid $pid: it runs 32-bit \\(i386\\) code"
	kill "$pid"
	wait "$pid" 2>/dev/null
}

# python_refused_untouched LABEL DIR WHAT RE SCRIPT ARGS...: python3 runs SCRIPT (which prints
# READY once its state is made, then sleeps); its dump is refused as dump_refused_untouched says
# (RE may name the pid as PID); then it is killed.
python_refused_untouched() {
	local label=$1 d=$2 what=$3 re=$4 script=$5 pid
	shift 5
	mkdir -p "$d/img"
	setsid python3 -c "$script" "$@" </dev/null >"$d/out" 2>&1 &
	pid=$!
	wait_until 5 grep -q -e READY -e Error "$d/out"
	if ! grep -q READY "$d/out"; then
		result_fail "$label" "its state was not made: $(cat "$d/out")"
	else
		dump_refused_untouched "$label" "$pid" "$d" "$what" "${re//PID/$pid}"
	fi
	kill "$pid"
	wait "$pid" 2>/dev/null
}

# A mapping of a file whose path is longer than PATH_MAX: no path could open it again.
case_mapped_path_too_long() {
	local d=$ZOO_TMP/long-map
	python_refused_untouched dump/mapped-path-too-long "$d" "the mapping" \
		"dump pid PID: mapping 0x[0-9a-f]*-0x[0-9a-f]*: cannot read the path of its file .*longer than PATH_MAX" '
import mmap, os, sys, time
os.chdir(sys.argv[1])
for _ in range(25):
    os.mkdir("d" * 200)
    os.chdir("d" * 200)
fd = os.open("f", os.O_CREAT | os.O_RDWR)
os.write(fd, b"x" * 4096)
m = mmap.mmap(fd, 4096)
os.close(fd)
os.chdir("/")
print("READY", flush=True)
time.sleep(600)' "$d"
	rm -rf "$d"
}

# A unix socket bound by absolute path inside a chroot: bound again in the tree's root, it would
# be a file there and none in the jail.
case_unix_bound_in_chroot() {
	local d=$ZOO_TMP/chroot-bind
	mkdir -p "$d/jail"
	python_refused_untouched dump/unix-bound-in-chroot "$d" "the socket's name" \
		"dump pid PID: unix socket bound to /in-jail.sock inside its root directory \\(chroot\\)" '
import os, socket, sys, time
os.chroot(sys.argv[1])
os.chdir("/")
s = socket.socket(socket.AF_UNIX)
s.bind("/in-jail.sock")
s.listen()
print("READY", flush=True)
time.sleep(600)' "$d/jail"
}

# A tracer of a process outside the tree (strace -p, gdb -p): its dump would end the tracing.
case_tracer_of_outside() {
	local d=$ZOO_TMP/tracer label=dump/tracer-of-outside target tracer
	mkdir -p "$d/img"
	sleep 600 &
	target=$!
	track_pid "$target"
	python3 -c 'import ctypes, sys, time
libc = ctypes.CDLL(None, use_errno=True)
if libc.ptrace(0x4206, int(sys.argv[1]), 0, 0):  # PTRACE_SEIZE
    sys.exit("PTRACE_SEIZE: errno %d" % ctypes.get_errno())
while True:
    time.sleep(1)' "$target" >"$d/tracer.out" 2>&1 &
	tracer=$!
	track_pid "$tracer"
	wait_until 10 eval '[ "$(tracer_of "$target")" = "$tracer" ]'
	if [ "$(tracer_of "$target")" != "$tracer" ]; then
		result_fail $label "the tracer did not attach: $(cat "$d/tracer.out")"
	else
		run_stasis "$d/dump.out" 60 dump -t "$tracer" -D "$d/img" -o dump.log -v4
		if ! clean_failure "$ZRC"; then
			result_fail $label "dump of the tracer: exit status $ZRC"
			show_tail "$d/dump.out" "$d/img/dump.log"
		elif ! mentions "$d/dump.out" "$d/img/dump.log" "dump pid $tracer: it traces \\(ptrace, thread $tracer\\) pid $target \\(sleep\\), outside the tree"; then
			result_fail $label "the refusal does not name tracer $tracer and traced pid $target"
			show_tail "$d/dump.out" "$d/img/dump.log"
		elif ! proc_alive "$tracer" || [ "$(tracer_of "$target")" != "$tracer" ]; then
			result_fail $label "after the refused dump: tracer alive $(proc_alive "$tracer" && echo yes), the target's tracer $(tracer_of "$target")"
		else
			result_ok $label
		fi
	fi
	kill -KILL "$tracer" "$target" 2>/dev/null
	wait "$tracer" "$target" 2>/dev/null
}

# A process with a keyring of its own (add_key to KEY_SPEC_PROCESS_KEYRING, as stress-ng's key
# stressor): refused naming the pid and the keyring, the process left as it was.
case_process_keyring() {
	python_refused_untouched dump/process-keyring "$ZOO_TMP/keyring" "the pid and its process keyring" \
		"dump pid PID: it has a process keyring \\(key [0-9]+" 'import ctypes, sys, time
libc = ctypes.CDLL(None, use_errno=True)
if libc.syscall(248, b"user", b"stasis-test", b"secret", 6, -2) < 0:  # add_key, the process keyring
    sys.exit("add_key: errno %d" % ctypes.get_errno())
print("READY", flush=True)
time.sleep(600)'
}

# Mapped files whose times changed since the dump: cut to whole seconds (a copy through tar), a
# shared one touched (its content is the process's state), a private one touched (refused).
case_mapped_file_times() {
	local d=$ZOO_TMP/mapped-times label=restore/mapped-file-times pid w f step
	mkdir -p "$d"
	if ! zoo_start mem-file "$d"; then
		result_fail $label "$ZERR"
		return
	fi
	pid=$ZPID w=$d/work
	for step in seconds shared private; do
		rm -rf "$d/img" && mkdir -p "$d/img"
		run_stasis "$d/dump.out" 60 dump -t "$pid" -D "$d/img" -o dump.log -v4
		if [ "$ZRC" -ne 0 ] || ! wait_until 10 pid_free "$pid"; then
			result_fail $label "$step: the dump failed ($ZRC)"
			show_tail "$d/dump.out" "$d/img/dump.log"
			kill_ours "$pid"
			return
		fi
		case $step in
		seconds) for f in "$w/private.dat" "$w/shared.dat"; do touch -d "@$(stat -c %Y "$f")" "$f"; done ;;
		*) touch -d "@$(($(stat -c %Y "$w/$step.dat") + 7))" "$w/$step.dat" ;;
		esac
		run_stasis "$d/restore.out" 60 restore -D "$d/img" -d -o restore.log -v4
		if [ "$step" = private ]; then
			if ! clean_failure "$ZRC" || proc_alive "$pid" ||
				! mentions "$d/restore.out" "$d/img/restore.log" "restore pid $pid: mapped file $w/private.dat changed since the dump"; then
				result_fail $label "private.dat touched: restore exit $ZRC (alive: $(proc_alive "$pid" && echo yes)), not refused naming it"
				show_tail "$d/restore.out" "$d/img/restore.log"
				kill_ours "$pid"
				return
			fi
		elif [ "$ZRC" -ne 0 ] || ! proc_alive "$pid" ||
			{ [ "$step" = shared ] && ! mentions "$d/img/restore.log" "mapped file $w/shared.dat changed since the dump.*mapped shared only"; }; then
			result_fail $label "$step: restore exit $ZRC, or no warning naming shared.dat"
			show_tail "$d/restore.out" "$d/img/restore.log"
			kill_ours "$pid"
			return
		fi
	done
	result_ok $label
}

# stasis started with SIGCHLD ignored (by a launcher that ignores it) still dumps and restores.
case_sigchld_ignored() {
	local d=$ZOO_TMP/sigchld-ignored label=restore/sigchld-ignored pid
	mkdir -p "$d/img"
	if ! zoo_start threads "$d"; then
		result_fail $label "$ZERR"
		return
	fi
	pid=$ZPID
	ZOO_WRAP=(python3 -c 'import os, signal, sys
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
os.execv(sys.argv[1], sys.argv[1:])')
	run_stasis "$d/dump.out" 60 dump -t "$pid" -D "$d/img" -o dump.log -v4
	[ "$ZRC" = 0 ] && run_stasis "$d/restore.out" 60 restore -D "$d/img" -d -o restore.log -v4
	ZOO_WRAP=()
	if [ "$ZRC" != 0 ]; then
		result_fail $label "dump or restore with SIGCHLD ignored exited $ZRC"
		show_tail "$d/dump.out" "$d/restore.out" "$d/img/restore.log"
		kill_ours "$pid"
	elif ! target_survives $label "$pid" "$d"; then
		result_fail $label "$ZERR"
	else
		result_ok $label
	fi
}

# term_verdict PID DIR: PID sent SIGTERM; what it wrote to DIR/verdict within 5 s
term_verdict() {
	kill -TERM "$1"
	wait_until 5 test -s "$2/verdict"
	cat "$2/verdict" 2>/dev/null
}

# A process that made a mount namespace of its own (unshare -m) with a tmpfs mounted in it,
# restored with criu's --root / (the host's root as the tree's root, as criu takes it): its
# mount and file are there again (it checks itself on SIGTERM), and nothing is left in /tmp.
case_root_slash() {
	local d=$ZOO_TMP/root-slash label=restore/root-slash pid verdict
	mkdir -p "$d/img" "$d/m"
	ls -d /tmp/.stasis-root.* >"$d/standins-before" 2>/dev/null
	setsid unshare -m --propagation private sh -c '
		mount -t tmpfs stasis-root-slash "$1/m" && echo kept >"$1/m/f" || exit 1
		trap "if [ \"\$(cat \"$1/m/f\")\" = kept ] && grep -q \" $1/m \" /proc/self/mountinfo
			then echo PASS; else echo FAIL; fi >\"$1/verdict\"; exit" TERM
		echo READY >"$1/ready"
		while :; do sleep 0.1; done' sh "$d" </dev/null >/dev/null 2>&1 &
	pid=$!
	wait_until 5 test -s "$d/ready"
	run_stasis "$d/dump.out" 60 dump -t "$pid" -D "$d/img" --ext-mount-map auto -o dump.log -v4
	if [ "$ZRC" != 0 ]; then
		result_fail $label "dump exited $ZRC"
		show_tail "$d/dump.out" "$d/img/dump.log"
		kill_ours "$pid"
		return
	fi
	wait "$pid" 2>/dev/null
	run_stasis "$d/restore.out" 60 restore -D "$d/img" -d --root / --ext-mount-map auto -o restore.log -v4
	if [ "$ZRC" != 0 ] || ! proc_alive "$pid"; then
		result_fail $label "restore with --root / exited $ZRC"
		show_tail "$d/restore.out" "$d/img/restore.log"
		kill_ours "$pid"
		return
	fi
	verdict=$(term_verdict "$pid" "$d")
	if [ "$verdict" != PASS ]; then
		result_fail $label "the restored process does not find its tmpfs and file: $verdict"
		kill_ours "$pid"
	elif [ "$(ls -d /tmp/.stasis-root.* 2>/dev/null)" != "$(cat "$d/standins-before")" ]; then
		result_fail $label "a directory /tmp/.stasis-root.* is left"
	else
		result_ok $label
	fi
}

# A bind of a pty of the tree's own devpts whose master a process outside the tree holds (LXC's
# lxc.tty.max ttys: /dev/ttyN binds of the container's devpts, the masters its monitor's): the
# dump saves the bind, the restore makes that pty again, with no master, to bind it.
case_masterless_pty() {
	local d=$ZOO_TMP/masterless-pty label=restore/masterless-pty holder pid verdict
	mkdir -p "$d/img" "$d/m"
	setsid unshare -m --propagation private sh -c '
		mount -t tmpfs stasis-mpty "$1/m" && mkdir "$1/m/pts" && touch "$1/m/tty1" &&
			mount -t devpts -o newinstance,ptmxmode=666 devpts "$1/m/pts" || exit 1
		exec 3<>"$1/m/pts/ptmx" && mount --bind "$1/m/pts/0" "$1/m/tty1" || exit 1
		sh -c "trap \"if [ -c \\\"\$1/m/tty1\\\" ] && grep -q \\\" \$1/m/tty1 \\\" /proc/self/mountinfo
			then echo PASS; else echo FAIL; fi >\\\"\$1/verdict\\\"; exit\" TERM
			echo \$\$ >\"\$1/pid\"; while :; do sleep 0.1; done" sh "$1" 3>&- &
		wait' sh "$d" </dev/null >/dev/null 2>&1 &
	holder=$!
	wait_until 5 test -s "$d/pid"
	pid=$(cat "$d/pid" 2>/dev/null)
	if [ -z "$pid" ]; then
		result_fail $label "the shell did not start"
		end_holder "$holder"
		return
	fi
	run_stasis "$d/dump.out" 60 dump -t "$pid" -D "$d/img" --ext-mount-map auto -o dump.log -v4
	if [ "$ZRC" != 0 ]; then
		result_fail $label "dump exited $ZRC"
		show_tail "$d/dump.out" "$d/img/dump.log"
		kill -KILL "$pid"
		end_holder "$holder"
		return
	fi
	end_holder "$holder" # (its wait ended with the dump: the master goes too)
	local img
	for img in img img2; do # (restored, its bind is of a pty with no master: dumped again)
		if [ $img = img2 ]; then
			mkdir -p "$d/img2"
			run_stasis "$d/dump2.out" 60 dump -t "$pid" -D "$d/img2" --ext-mount-map auto -o dump.log -v4
			if [ "$ZRC" != 0 ]; then
				result_fail $label "the second dump exited $ZRC"
				show_tail "$d/dump2.out" "$d/img2/dump.log"
				kill -KILL "$pid"
				return
			fi
		fi
		run_stasis "$d/restore.out" 60 restore -D "$d/$img" -d --root / --ext-mount-map auto -o restore.log -v4
		if [ "$ZRC" != 0 ] || ! proc_alive "$pid"; then
			result_fail $label "restore from $img with --root / exited $ZRC"
			show_tail "$d/restore.out" "$d/$img/restore.log"
			return
		fi
	done
	verdict=$(term_verdict "$pid" "$d")
	if [ "$verdict" != PASS ]; then
		result_fail $label "the restored shell does not find its bind of pty 0: $verdict"
		proc_alive "$pid" && kill -KILL "$pid"
	elif ! mentions "$d/restore.out" "$d/img/restore.log" "mount $d/m/tty1 binds pty 0 .*no master"; then
		result_fail $label "the restore does not say that the pty of $d/m/tty1 has no master"
	else
		result_ok $label
	fi
}
# end_holder PID: our background job PID killed and reaped
end_holder() {
	kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

# A shell's job restored from that shell is in its foreground (tests/tools/shell-job-foreground.py).
case_shell_job_foreground() {
	local d=$ZOO_TMP/shell-job-foreground out
	mkdir -p "$d"
	out=$(timeout -k 5 120 python3 "$ZOO_ROOT/tests/tools/shell-job-foreground.py" "$STASIS" "$d" 2>&1)
	if [ "${out%% *}" = PASS ]; then
		result_ok "restore/shell-job-foreground (${out#PASS })"
	else
		result_fail restore/shell-job-foreground "$out"
		show_tail "$d/img/dump.log" "$d/img/restore.log"
	fi
}

# A terminal of the caller's named with --external tty[RDEV:DEV] (LXC's console), given back with
# --inherit-fd (tests/tools/external-tty.py says what it checks).
case_external_tty() {
	local d=$ZOO_TMP/external-tty out
	mkdir -p "$d"
	out=$(timeout -k 5 150 python3 "$ZOO_ROOT/tests/tools/external-tty.py" "$STASIS" "$d" 2>&1)
	if [ "${out%% *}" = PASS ]; then
		result_ok "restore/external-tty (${out#PASS })"
	else
		result_fail restore/external-tty "$out"
		show_tail "$d/img/dump.log" "$d/img/restore.log"
	fi
}

# An external stream socket restored without the --inherit-fd it needs: refused up front.
case_ext_stream_no_inherit_fd() {
	local d=$ZOO_TMP/ext-no-inherit label=restore/ext-stream-without-inherit-fd pid key before after
	mkdir -p "$d/img"
	if ! zoo_start ext-unix "$d"; then
		result_fail $label "$ZERR"
		return
	fi
	pid=$ZPID
	key=$(cat "$d/work/ext-key")
	run_stasis "$d/dump.out" 60 dump -t "$pid" -D "$d/img" --ext-unix-sk --leave-running -o dump.log -v4
	if [ "$ZRC" -ne 0 ]; then
		result_fail $label "dump --ext-unix-sk --leave-running exited $ZRC"
		show_tail "$d/dump.out" "$d/img/dump.log"
		kill_ours "$pid"
		return
	fi
	before=$(count_procs ext-unix "$d")
	run_stasis "$d/restore.out" 60 restore -D "$d/img" -d -o restore.log -v4
	sleep 0.3
	after=$(count_procs ext-unix "$d")
	local k=${key//[/\\[}
	local re="restore pid $pid fd 88: .*$k.*--inherit-fd fd\\[N\\]:$k"
	if ! clean_failure "$ZRC"; then
		result_fail $label "restore exit status $ZRC"
		show_tail "$d/restore.out" "$d/img/restore.log"
		kill_ours "$pid"
	elif ! mentions "$d/restore.out" "$d/img/restore.log" "$re"; then
		result_fail $label "the refusal does not name pid $pid, fd 88, $key and --inherit-fd"
		show_tail "$d/restore.out" "$d/img/restore.log"
		kill_ours "$pid"
	elif [ "$after" != "$before" ]; then
		result_fail $label "$before processes of ext-unix before the refused restore, $after after"
		kill_ours "$pid"
	elif ! target_survives ext "$pid" "$d"; then
		result_fail $label "$ZERR"
	else
		result_ok $label
	fi
}

# restore_fault_tree LABEL POINT [PROGRAM]: the zoo program (tree) dumped (started through
# ZOO_LAUNCH if set), its restore failed in one process at STASIS_FAULT=POINT: every restored
# process is killed, the restore fails by itself (no timeout), the error names the process, and
# nothing of the tree is left.
restore_fault_tree() {
	local label=$1 point=$2 prog=${3:-tree} d=$ZOO_TMP/${1//\//-}
	mkdir -p "$d/img"
	if ! zoo_start "$prog" "$d"; then
		result_fail "$label" "$ZERR"
		return
	fi
	local pid=$ZPID
	run_stasis "$d/dump.out" 60 dump -t "$pid" -D "$d/img" -o dump.log -v4
	if [ "$ZRC" -ne 0 ]; then
		result_fail "$label" "dump exit status $ZRC"
		show_tail "$d/dump.out" "$d/img/dump.log"
		kill_ours "$pid"
		return
	fi
	wait_until 10 pid_free "$pid"
	STASIS_FAULT=$point run_stasis "$d/restore.out" 30 restore -D "$d/img" -d -o restore.log -v4
	sleep 0.5
	if ! clean_failure "$ZRC"; then
		result_fail "$label" "restore exit status $ZRC"
		show_tail "$d/restore.out" "$d/img/restore.log"
		kill_ours "$pid"
	elif ! mentions "$d/restore.out" "$d/img/restore.log" "restore pid [0-9]+: injected failure $point"; then
		result_fail "$label" "the error does not name the failing process"
		show_tail "$d/restore.out" "$d/img/restore.log"
	elif [ "$(count_procs "$prog" "$d")" -ne 0 ] || ! pid_free "$pid"; then
		result_fail "$label" "processes of the tree are left after the failed restore"
		kill_ours "$pid"
	else
		result_ok "$label"
	fi
}

case_restore_fault_tree() { restore_fault_tree restore/fault/tree restore-child; }
# threads (64) failed in its finish step, its threads caught by stasis: their zombies are
# stasis's to reap before the process (the restore waited for it for ever)
case_restore_fault_finish_threads() { restore_fault_tree restore/fault/finish-threads restore-finish threads; }

# The same in a PID namespace of its own (tree as the init of ctr-run --only-pidns), the
# failure in the last process's finish step, when stasis traces the processes already caught
# (the dying init waits for its traced processes' reaping, which only stasis can do).
case_restore_fault_finish_pidns() {
	if ! make -s -C "$ZOO_ROOT/tests/container" >"$ZOO_TMP/ctr-build.log" 2>&1; then
		result_fail restore/fault/finish-pidns "make -C tests/container failed"
		return
	fi
	local ZOO_LAUNCH=("$ZOO_CTR_BIN/ctr-run" --only-pidns --pidfile "$ZOO_TMP/restore-fault-finish-pidns/pid" --) # (zoo_start's DIR/pid)
	restore_fault_tree restore/fault/finish-pidns restore-finish
}

case_fault() { # case_fault POINT TARGET
	local point=$1 name=$2 d=$ZOO_TMP/fault-$1-$2
	mkdir -p "$d/img"
	if ! zoo_start "$name" "$d"; then
		result_fail "dump/fault/$point/$name" "$ZERR"
		return
	fi
	sleep 0.2
	# shellcheck disable=SC2086 # DUMP_OPTS: extra dump options, split into words
	STASIS_FAULT=$point run_stasis "$d/dump.out" 120 dump -t "$ZPID" -D "$d/img" -o dump.log -v4 ${DUMP_OPTS:-}
	if ! clean_failure "$ZRC"; then
		result_fail "dump/fault/$point/$name" "STASIS_FAULT=$point: exit status $ZRC"
		show_tail "$d/dump.out" "$d/img/dump.log"
		kill_ours "$ZPID"
	elif ! target_survives "$point" "$ZPID" "$d"; then
		result_fail "dump/fault/$point/$name" "$ZERR"
		show_tail "$d/dump.out" "$d/img/dump.log" "$d/err"
	else
		result_ok "dump/fault/$point/$name"
	fi
}

case_leave_running() { # case_leave_running TARGET
	local name=$1 d=$ZOO_TMP/leave-$1 pid before after
	mkdir -p "$d/img"
	if ! zoo_start "$name" "$d"; then
		result_fail "leave-running/$name" "$ZERR"
		return
	fi
	pid=$ZPID
	sleep 0.2
	# shellcheck disable=SC2086 # DUMP_OPTS: extra dump options, split into words
	run_stasis "$d/dump.out" 120 dump -t "$pid" -D "$d/img" --leave-running -o dump.log -v4 ${DUMP_OPTS:-}
	if [ "$ZRC" -ne 0 ]; then
		result_fail "leave-running/$name" "dump --leave-running exited $ZRC"
		show_tail "$d/dump.out" "$d/img/dump.log"
		kill_ours "$pid"
		return
	fi
	sleep 0.2
	if ! proc_alive "$pid"; then
		result_fail "leave-running/$name" "the target is gone after dump --leave-running"
		show_tail "$d/dump.out" "$d/img/dump.log" "$d/out"
		return
	fi
	before=$(count_procs "$name" "$d")
	run_stasis "$d/restore.out" 60 restore -D "$d/img" -d --pidfile "$d/restored.pid" -o restore.log -v4
	sleep 0.3
	after=$(count_procs "$name" "$d")
	if ! clean_failure "$ZRC"; then
		result_fail "leave-running/$name" "restore while pid $pid is taken: exit status $ZRC"
		show_tail "$d/restore.out" "$d/img/restore.log"
		kill_ours "$pid"
		[ -s "$d/restored.pid" ] && kill_ours "$(cat "$d/restored.pid")"
		return
	fi
	if ! mentions "$d/restore.out" "$d/img/restore.log" "(^|[^0-9])$pid([^0-9]|$)"; then
		result_fail "leave-running/$name" "the refusal does not name pid $pid"
		show_tail "$d/restore.out" "$d/img/restore.log"
		kill_ours "$pid"
		return
	fi
	if [ "$after" != "$before" ]; then
		result_fail "leave-running/$name" "$before processes of $name before the refused restore, $after after"
		kill_ours "$pid"
		return
	fi
	if ! target_survives "$name" "$pid" "$d"; then
		result_fail "leave-running/$name" "$ZERR"
		show_tail "$d/dump.out" "$d/img/dump.log" "$d/restore.out" "$d/img/restore.log"
		return
	fi
	result_ok "leave-running/$name"
}

# A dump killed while it tells a thread's registered io_uring instances apart (a buffer group it
# added to one of them, marked as stasis's): the target runs on untraced, and the next dump takes
# the group back and goes through (--leave-running); the target PASSes.
case_io_uring_probe_killed() {
	local label=dump/io_uring-probe-killed d=$ZOO_TMP/io_uring-probe-killed
	mkdir -p "$d/img"
	if ! zoo_start io-uring-ring-fds "$d"; then
		result_fail "$label" "$ZERR"
		return
	fi
	STASIS_FAULT=kill-at:io_uring-probe run_stasis "$d/dump1.out" 60 dump -t "$ZPID" -D "$d/img" -o dump1.log -v4
	if [ "$ZRC" -ne 137 ] || ! mentions "$d/img/dump1.log" 'io_uring instances registered with threads'; then
		result_fail "$label" "the dump was not killed while it asked (exit status $ZRC)"
		show_tail "$d/dump1.out" "$d/img/dump1.log"
		kill_ours "$ZPID"
		return
	fi
	sleep 0.3
	if [ "$(tracer_of "$ZPID")" != 0 ]; then
		result_fail "$label" "the target is still traced by $(tracer_of "$ZPID") after the kill"
		kill_ours "$ZPID"
		return
	fi
	run_stasis "$d/dump.out" 60 dump -t "$ZPID" -D "$d/img" --leave-running -o dump.log -v4
	if [ "$ZRC" -ne 0 ] || ! mentions "$d/img/dump.log" 'took back buffer group 2047'; then
		result_fail "$label" "the next dump (exit status $ZRC) did not take back what the killed one left"
		show_tail "$d/dump.out" "$d/img/dump.log"
		kill_ours "$ZPID"
		return
	fi
	judge "$label" "$ZPID" "$d" "after the two dumps"
}

# case_stopped_meanwhile LABEL [FAULT]: SIGSTOP reaches the target while it is being dumped
case_stopped_meanwhile() {
	local label=$1 fault=${2:-} d=$ZOO_TMP/$1 pid st
	mkdir -p "$d/img"
	if ! zoo_start mem-anon "$d"; then
		result_fail "dump/$label" "$ZERR"
		return
	fi
	pid=$ZPID
	# shellcheck disable=SC2016 # (the script expands it)
	printf '#!/bin/sh\n[ "$CRTOOLS_SCRIPT_ACTION" = network-lock ] && kill -STOP %s\nexit 0\n' "$pid" >"$d/stop.sh"
	chmod +x "$d/stop.sh"
	STASIS_FAULT=$fault run_stasis "$d/dump.out" 60 dump -t "$pid" -D "$d/img" --action-script "$d/stop.sh" \
		-o dump.log -v4
	if [ -n "$fault" ]; then
		if ! clean_failure "$ZRC"; then
			result_fail "dump/$label" "STASIS_FAULT=$fault: exit status $ZRC"
			show_tail "$d/dump.out" "$d/img/dump.log"
			kill_ours "$pid"
			return
		fi
	elif [ "$ZRC" -ne 0 ]; then
		result_fail "dump/$label" "dump exit status $ZRC"
		show_tail "$d/dump.out" "$d/img/dump.log"
		kill_ours "$pid"
		return
	else
		wait_until 10 pid_free "$pid"
		run_stasis "$d/restore.out" 60 restore -D "$d/img" -d -o restore.log -v4
		if [ "$ZRC" -ne 0 ]; then
			result_fail "dump/$label" "restore exit status $ZRC"
			show_tail "$d/restore.out" "$d/img/restore.log"
			kill_ours "$pid"
			return
		fi
	fi
	sleep 0.3
	st=$(proc_state "$pid")
	if [ "$st" != T ] || [ "$(tracer_of "$pid")" != 0 ]; then
		result_fail "dump/$label" "the target is in state $st, traced by $(tracer_of "$pid"), not stopped"
		show_tail "$d/dump.out" "$d/img/dump.log" "$d/img/restore.log"
		kill_ours "$pid"
		return
	fi
	kill -CONT "$pid"
	judge "dump/$label" "$pid" "$d" "after SIGCONT"
}

# judge LABEL PID DIR [CONTEXT]: stops the program (SIGTERM) and takes its verdict: ok if PASS
judge() {
	if ! zoo_stop "$2" "$3" "$3/out"; then
		result_fail "$1" "$ZERR"
	elif [[ $ZVERDICT != PASS* ]]; then
		result_fail "$1" "${4:+$4: }$ZVERDICT"
	else
		result_ok "$1"
	fi
}

# flip_byte FILE OFFSET
flip_byte() {
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	[ -n "$b" ] || return 1
	# shellcheck disable=SC2059
	printf "\\$(printf %03o $((b ^ 0xff)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# dump_for_restore LABEL PID DIR [OPTION...]: images of PID's tree in DIR/img, the tree gone;
# else the case fails (its output and log shown, the tree killed) and this returns 1
dump_for_restore() {
	local label=$1 pid=$2 d=$3
	shift 3
	run_stasis "$d/dump.out" 120 dump -t "$pid" -D "$d/img" "$@" -o dump.log -v4
	if [ "$ZRC" -ne 0 ] || ! wait_until 10 pid_free "$pid"; then
		result_fail "$label" "cannot make the images: dump exited $ZRC"
		show_tail "$d/dump.out" "$d/img/dump.log"
		kill_ours "$pid"
		return 1
	fi
}

# restore_refused CASE PID DIR REGEX: restore -D DIR (RESTORE_OPTS: more options) fails
# cleanly, its error matches REGEX, and no process with PID is left; else the case fails (and 1
# is returned).
restore_refused() {
	local name=$1 pid=$2 c=$3 re=$4
	# shellcheck disable=SC2086 # RESTORE_OPTS: extra restore options, split into words
	run_stasis "$c/restore.out" 60 restore -D "$c" -d --pidfile "$c/restored.pid" -o restore.log -v4 \
		${RESTORE_OPTS:-}
	sleep 0.3
	if proc_alive "$pid"; then
		result_fail "$name" "a process with pid $pid runs after the refused restore (exit status $ZRC)"
		show_tail "$c/restore.out" "$c/restore.log"
		kill_ours "$pid"
		wait_until 5 pid_free "$pid"
	elif ! clean_failure "$ZRC"; then
		result_fail "$name" "restore exit status $ZRC"
		show_tail "$c/restore.out" "$c/restore.log"
	elif ! mentions "$c/restore.out" "$c/restore.log" "$re"; then
		result_fail "$name" "the error does not name $re"
		show_tail "$c/restore.out" "$c/restore.log"
	else
		return 0
	fi
	return 1
}

# restores_and_passes LABEL DIR PID: DIR/img (the images of the zoo program PID, refused before
# in copies or with other options) restored as they are (RESTORE_OPTS: more options): the
# program runs again with its pid and PASSes
restores_and_passes() {
	local label=$1 d=$2 pid=$3
	ZLAUNCH="" ZCAT=""
	# shellcheck disable=SC2086 # RESTORE_OPTS: extra restore options, split into words
	run_stasis "$d/restore.out" 60 restore -D "$d/img" -d --pidfile "$d/restored.pid" -o restore.log -v4 \
		${RESTORE_OPTS:-}
	track_pid "$pid"
	if [ "$ZRC" -ne 0 ] || ! proc_alive "$pid"; then
		result_fail "$label" "restore of the untouched images: exit status $ZRC, pid $pid $(proc_alive "$pid" && echo running || echo 'not running')"
		show_tail "$d/restore.out" "$d/img/restore.log"
		kill_ours "$pid"
		drop_net_lock "$pid"
		return
	fi
	sleep 0.3
	judge "$label" "$pid" "$d"
}

# dump_for_images LABEL NAME DIR [IMAGE [ARG...]]: zoo program NAME (with ARGs) started and
# dumped into DIR/img (IMAGE: a file the dump must have written), its pid (ZPID) free again;
# else LABEL fails, 1
dump_for_images() {
	local label=$1 d=$3
	mkdir -p "$d/img"
	if ! zoo_start "$2" "$d" "${@:5}"; then
		result_fail "$label" "$ZERR"
		return 1
	fi
	sleep 0.2
	# shellcheck disable=SC2086 # DUMP_OPTS: extra dump options, split into words
	run_stasis "$d/dump.out" 120 dump -t "$ZPID" -D "$d/img" -o dump.log -v4 ${DUMP_OPTS:-}
	if [ "$ZRC" -ne 0 ] || { [ -n "${4:-}" ] && [ ! -s "$d/img/$4" ]; }; then
		result_fail "$label" "cannot make the images: dump exited $ZRC"
		show_tail "$d/dump.out" "$d/img/dump.log"
		kill_ours "$ZPID"
		return 1
	fi
	if ! wait_until 10 pid_free "$ZPID"; then
		result_fail "$label" "pid $ZPID not free after the dump"
		kill_ours "$ZPID"
		return 1
	fi
}

case_corrupt_images() {
	local name=mem-anon d=$ZOO_TMP/images pid img
	dump_for_images "restore/corrupt" "$name" "$d" "" || return
	pid=$ZPID
	img=$d/img

	local what file c sz
	for what in core-truncated mm-flipped core-foreign pages-truncated pages-header-cut fds-missing \
		pagemap-flipped; do
		c=$d/$what
		rm -rf "$c"
		cp -a "$img" "$c"
		rm -f "$c/restore.log"
		local f missing=""
		for f in inventory.img core-$pid.img mm-$pid.img pagemap-$pid.img pages-$pid.img fds-$pid.img; do
			[ -s "$c/$f" ] || missing="$missing $f"
		done
		if [ -n "$missing" ]; then
			result_fail "restore/corrupt/$what" "the dump did not write:$missing"
			continue
		fi
		case $what in
		core-truncated)
			file=core-$pid.img
			sz=$(stat -c %s "$c/$file")
			truncate -s $((sz / 2)) "$c/$file"
			;;
		mm-flipped)
			file=mm-$pid.img
			sz=$(stat -c %s "$c/$file")
			flip_byte "$c/$file" $((32 + (sz - 32) / 2))
			;;
		pagemap-flipped)
			file=pagemap-$pid.img
			sz=$(stat -c %s "$c/$file")
			flip_byte "$c/$file" $((sz - 1))
			;;
		core-foreign)
			file=core-$pid.img
			cp "$c/inventory.img" "$c/$file"
			;;
		pages-truncated)
			file=pages-$pid.img
			sz=$(stat -c %s "$c/$file")
			truncate -s $((sz - 4096)) "$c/$file"
			;;
		pages-header-cut)
			file=pages-$pid.img
			truncate -s 100 "$c/$file"
			;;
		fds-missing)
			file=fds-$pid.img
			rm -f "$c/$file"
			;;
		esac
		restore_refused "restore/corrupt/$what" "$pid" "$c" "$file" && result_ok "restore/corrupt/$what"
	done

	# the untouched images still work
	restores_and_passes restore/pristine "$d" "$pid"
}

case_restore_linked_file_gone() {
	local name=deleted-files d=$ZOO_TMP/linked-gone pid
	mkdir -p "$d/img"
	if ! zoo_start "$name" "$d"; then
		result_fail restore/linked-file-gone "$ZERR"
		return
	fi
	pid=$ZPID
	sleep 0.2
	dump_for_restore restore/linked-file-gone "$pid" "$d" || return
	rm -f "$d/work/ghost-d-link"
	restore_refused restore/linked-file-gone "$pid" "$d/img" "ghost-d.*is gone" && result_ok restore/linked-file-gone
}

case_restore_hung_pty_index_taken() {
	local label=restore/hung-pty-index-taken d=$ZOO_TMP/hung-pty pid hung live holder now
	mkdir -p "$d/img"
	if ! zoo_start pty-hangup "$d"; then
		result_fail $label "$ZERR"
		return
	fi
	pid=$ZPID
	hung=$(readlink "/proc/$pid/fd/60") live=$(readlink "/proc/$pid/fd/71")
	hung=${hung% (deleted)}
	dump_for_restore $label "$pid" "$d" || return
	# ptys opened until one has the hung-up one's number, held until killed
	/usr/bin/python3 -c '
import os, sys, fcntl, struct, time  # 0x80045430: TIOCGPTN
held = []
for _ in range(64):
    fd = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY)
    held.append(fd)
    if struct.unpack("I", fcntl.ioctl(fd, 0x80045430, b"\0" * 4))[0] == int(sys.argv[1]):
        print("held", flush=True)
        time.sleep(120)
        break
' "${hung#/dev/pts/}" >"$d/holder.out" 2>&1 &
	holder=$!
	disown
	track_pid "$holder"
	if ! wait_until 10 grep -q held "$d/holder.out"; then
		result_fail $label "could not take $hung: $(head -c 300 "$d/holder.out")"
		kill_ours "$holder"
		return
	fi
	run_stasis "$d/restore.out" 60 restore -D "$d/img" -d --pidfile "$d/restored.pid" -o restore.log -v4
	now=$(readlink "/proc/$pid/fd/71")
	kill_ours "$pid"
	kill_ours "$holder"
	if [ "$ZRC" -ne 0 ]; then
		result_fail $label "restore exit status $ZRC with $hung taken"
		show_tail "$d/restore.out"
	elif [ "$now" != "$live" ]; then
		result_fail $label "the live pty's slave, fd 71, is '$now', was $live"
	elif ! mentions "$d/restore.out" "whose master was closed, comes back as"; then
		result_fail $label "no warning that the hung-up $hung comes back under another number"
	else
		result_ok "$label ($hung taken: the hung-up pty took another number, the live one is $live again)"
	fi
	wait_until 10 pid_free "$pid"
}

# A file of the child's /proc that the child sent to its parent (files-proc --sent-up): only
# the child can open it, and the parent was not forked by it.
case_restore_proc_sent_up() {
	local label=restore/proc-file-sent-up d=$ZOO_TMP/proc-sent-up
	dump_for_images "$label" files-proc "$d" "" --sent-up || return
	restore_refused "$label" "$ZPID" "$d/img" \
		'restore pid [0-9]+ fd 36: /proc/[0-9]+/status, shared with pid [0-9]+ fd 36, can only be opened once pid [0-9]+ runs, and not both are it or forked below it' &&
		result_ok "$label"
}

# A security label asked for that stasis cannot set.
case_restore_lsm_profile() {
	local label=restore/lsm-profile d=$ZOO_TMP/lsm-profile
	dump_for_images "$label" mem-anon "$d" "" || return
	run_stasis "$d/restore.out" 60 restore -D "$d/img" -d --lsm-profile apparmor:docker-default \
		-o restore.log -v4
	sleep 0.3
	if proc_alive "$ZPID"; then
		result_fail "$label" "a process with pid $ZPID runs after the refused restore"
		kill_ours "$ZPID"
		return
	elif ! clean_failure "$ZRC" || ! mentions "$d/restore.out" "$d/img/restore.log" \
		'--lsm-profile apparmor:docker-default: this host has no security module'; then
		result_fail "$label" "exit status $ZRC, or the option is not named"
		show_tail "$d/restore.out" "$d/img/restore.log"
		return
	fi
	result_ok "$label"
	restores_and_passes restore/lsm-profile-none "$d" "$ZPID"
}

# Memory of huge pages restored where the pool has too few free (someone shrank vm.nr_hugepages).
case_restore_hugetlb_pool() {
	local label=restore/hugetlb-pool-short d=$ZOO_TMP/hugetlb-pool segs
	dump_for_images "$label" hugetlb "$d" "shmem.img" || return
	segs=$(ipcs -m | grep -c '^0x')
	echo 2 >"$HUGEPAGES_2M/nr_hugepages"
	if restore_refused "$label" "$ZPID" "$d/img" \
		'needs [0-9]+ huge pages of 2048 kB, the pool has [0-9] free'; then
		if [ "$(ipcs -m | grep -c '^0x')" != "$segs" ]; then
			result_fail "$label" "a SysV segment was left: $(ipcs -m | tail -n +4)"
		else
			result_ok "$label"
		fi
	fi
	label=restore/hugetlb-pool-back
	if ! zoo_hugepages "${ZOO_HUGEPAGES[hugetlb]}"; then
		result_fail "$label" "cannot grow the pool again"
		return
	fi
	restores_and_passes "$label" "$d" "$ZPID"
}

# A pid that proc-dead's files of reaped processes name is another process's at restore time.
free_holder() { kill -KILL "$1" 2>/dev/null; { wait "$1"; } 2>/dev/null; }
case_restore_proc_dead_taken() {
	local label=restore/proc-dead-pid-taken d=$ZOO_TMP/proc-dead-taken pid dead holder=""
	mkdir -p "$d/img"
	if ! zoo_start proc-dead "$d"; then
		result_fail $label "$ZERR"
		return
	fi
	pid=$ZPID
	sleep 0.2
	dump_for_restore $label "$pid" "$d" || return
	dead=$("$STASIS" show "$d/img/fds-$pid.img" | awk '/"proc_dead_pid"/ {gsub(/[^0-9]/, "", $2); print $2; exit}')
	# a process of ours with that pid (the next pid set, then a fork: others may be quicker);
	# then the next pid as it was, above the tree's (the restore's own stasis must not take
	# them)
	local last_pid
	last_pid=$(cat /proc/sys/kernel/ns_last_pid)
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		[ -n "$dead" ] && [ ! -e "/proc/$dead" ] || break
		echo $((dead - 1)) >/proc/sys/kernel/ns_last_pid
		sleep 600 &
		holder=$!
		[ "$holder" = "$dead" ] && break
		free_holder "$holder"
		holder=""
	done
	[ "$last_pid" -gt "$(cat /proc/sys/kernel/ns_last_pid)" ] && echo "$last_pid" >/proc/sys/kernel/ns_last_pid
	if [ -z "$holder" ]; then
		result_fail $label "could not make a process with pid '$dead' (the images' proc_dead_pid)"
		return
	fi
	if ! restore_refused $label "$pid" "$d/img" "pid $dead again .* a process has it"; then
		free_holder "$holder"
		return
	fi
	free_holder "$holder"
	run_stasis "$d/restore2.out" 60 restore -D "$d/img" -d --pidfile "$d/restored.pid" -o restore2.log -v4
	track_pid "$pid"
	if [ "$ZRC" -ne 0 ] || ! proc_alive "$pid"; then
		result_fail $label "restore once pid $dead is free: exit status $ZRC"
		show_tail "$d/restore2.out" "$d/img/restore2.log"
		kill_ours "$pid"
		return
	fi
	sleep 0.3
	judge $label "$pid" "$d" "restored once pid $dead is free"
}

case_restore_id_held() {
	local label=restore/id-held d=$ZOO_TMP/id-held pid o s
	dump_for_images $label orphan-session "$d" "" --escape || return
	pid=$ZPID
	read -r o s <"$d/work/escaped-orphan" && track_pid "$o"
	if [ -z "$o" ] || ! proc_alive "$o"; then
		result_fail $label "the orphan that went out of the tree ('$o') does not run"
	elif ! mentions "$d/dump.out" "$d/img/dump.log" "process $o, outside the tree, is still in the session of pid $s"; then
		result_fail $label "the dump did not warn that process $o holds the session of pid $s"
		show_tail "$d/dump.out" "$d/img/dump.log"
	elif restore_refused $label "$pid" "$d/img" "restore pid $s: that pid is still the session id of running process $o"; then
		kill_ours "$o"
		if ! wait_until 10 pid_free "$o"; then
			result_fail $label "the orphan $o is still there 10 s after SIGKILL"
			return
		fi
		restores_and_passes $label "$d" "$pid"
		return
	fi
	kill_ours "$o"
}

# stasis dies while it kills the holders of SEM_UNDO lists one at a time: the rest of the tree
# dies with it (PTRACE_O_EXITKILL), none of it runs on with part of it gone.
case_kill_apart_dies() {
	local d=$ZOO_TMP/kill-apart set
	mkdir -p "$d/img"
	if ! zoo_start sem-undo-multi "$d"; then
		result_fail dump/kill-apart-dies "$ZERR"
		return
	fi
	sleep 0.2
	{ STASIS_FAULT=kill-at:kill-apart run_stasis "$d/dump.out" 60 dump -t "$ZPID" -D "$d/img" -o dump.log -v4; } 2>/dev/null
	set=$(grep -o 'used SysV semaphore set [0-9]*' "$d/img/dump.log" 2>/dev/null | head -n1 | awk '{print $NF}')
	[ -n "$set" ] && ipcrm -s "$set" 2>/dev/null # (the program removes it once it has checked it)
	if [ "$ZRC" -ne 137 ]; then
		result_fail dump/kill-apart-dies "stasis exit status $ZRC (killed, 137, expected)"
		show_tail "$d/dump.out" "$d/img/dump.log"
		kill_ours "$ZPID"
	elif ! mentions "$d/img/dump.log" 'its exit applied its SEM_UNDO adjustment'; then
		result_fail dump/kill-apart-dies "no holder was killed apart before stasis died"
		show_tail "$d/dump.out" "$d/img/dump.log"
		kill_ours "$ZPID"
	elif ! wait_until 5 pid_free "$ZPID" || [ "$(count_procs sem-undo-multi "$d")" -ne 0 ]; then
		result_fail dump/kill-apart-dies "$(count_procs sem-undo-multi "$d") processes of the tree run on"
		kill_ours "$ZPID"
	else
		result_ok dump/kill-apart-dies
	fi
}

# A tree across two IPC namespaces: the dump refuses, naming the child, and nothing changes.
case_ipc_ns_split() {
	local d=$ZOO_TMP/ipc-ns-split child
	mkdir -p "$d/img"
	export ZOO_IPC_SPLIT=1
	zoo_start sysv-ipc "$d"
	local ok=$?
	unset ZOO_IPC_SPLIT
	if [ $ok -ne 0 ]; then
		result_fail dump/ipc-ns-split "$ZERR"
		return
	fi
	child=$(cat "$d/work/child.pid" 2>/dev/null)
	track_pid "$child"
	run_stasis "$d/dump.out" 60 dump -t "$ZPID" -D "$d/img" -o dump.log -v4
	if ! clean_failure "$ZRC"; then
		result_fail dump/ipc-ns-split "dump exit status $ZRC"
		show_tail "$d/dump.out" "$d/img/dump.log"
		kill_ours "$ZPID"
	elif [ -z "$child" ] || ! mentions "$d/dump.out" "$d/img/dump.log" "pid $child: .*IPC namespace"; then
		result_fail dump/ipc-ns-split "the error does not name child $child and its IPC namespace"
		show_tail "$d/dump.out" "$d/img/dump.log"
		kill_ours "$ZPID"
	elif [ -e "$d/img/ipc-ns.img" ] || [ -e "$d/img/inventory.img" ]; then
		result_fail dump/ipc-ns-split "the failed dump left images behind"
		kill_ours "$ZPID"
	elif ! proc_alive "$child" || [ "$(proc_state "$child")" = T ]; then
		result_fail dump/ipc-ns-split "the child $child is gone or stopped"
		kill_ours "$ZPID"
	elif ! target_survives ipc-ns-split "$ZPID" "$d"; then
		result_fail dump/ipc-ns-split "$ZERR"
	else
		result_ok dump/ipc-ns-split
	fi
	kill_ours "$child"
}

# Damaged ipc-ns.img: refused before anything is made or started; the pristine set restores.
case_ipc_ns_images() {
	local d=$ZOO_TMP/ipc-images pid img what c sz
	dump_for_images restore/corrupt/ipc-ns sysv-ipc "$d" ipc-ns.img || return
	pid=$ZPID
	img=$d/img
	for what in ipc-ns-flipped ipc-ns-missing; do
		c=$d/$what
		rm -rf "$c"
		cp -a "$img" "$c"
		rm -f "$c/restore.log"
		case $what in
		ipc-ns-flipped)
			sz=$(stat -c %s "$c/ipc-ns.img")
			flip_byte "$c/ipc-ns.img" $((32 + (sz - 32) / 2))
			;;
		ipc-ns-missing) rm -f "$c/ipc-ns.img" ;;
		esac
		restore_refused "restore/corrupt/$what" "$pid" "$c" "ipc-ns.img" || continue
		if grep -q "new IPC namespace" "$c/restore.log" 2>/dev/null; then
			result_fail "restore/corrupt/$what" "objects were made before the image was refused"
		else
			result_ok "restore/corrupt/$what"
		fi
	done
	restores_and_passes restore/ipc-ns-pristine "$d" "$pid"
}

# ipc_holder [QUEUE_ID]: a process in an IPC namespace of its own (HOLDER), with a message queue
# of a random key at QUEUE_ID if given, and kernel.msgmni 1 (one queue at most)
ipc_holder() {
	HOLDER=""
	unshare --ipc sh -c "echo 1 >/proc/sys/kernel/msgmni && ${1:+echo $1 >/proc/sys/kernel/msg_next_id && ipcmk -Q >/dev/null &&} exec sleep 600" &
	HOLDER=$!
	wait_until 5 sh -c "[ \"\$(readlink /proc/$HOLDER/ns/ipc)\" != \"\$(readlink /proc/self/ns/ipc)\" ] && [ \"\$(readlink /proc/$HOLDER/exe)\" = \"\$(readlink -f \$(command -v sleep))\" ]"
}
# ipc_objects PID: the SysV objects of PID's IPC namespace, "queues sets segments"
ipc_objects() {
	local k n=()
	for k in q s m; do
		n+=("$(nsenter --ipc="/proc/$1/ns/ipc" ipcs -$k | grep -c '^0x')")
	done
	echo "${n[*]}"
}

case_join_ns() {
	local d=$ZOO_TMP/join-ns pid img what c re left
	dump_for_images restore/join-ns sysv-ipc "$d" ipc-ns.img || return
	pid=$ZPID
	img=$d/img
	for what in mnt wrong-kind missing id-taken undone; do
		c=$d/$what
		rm -rf "$c"
		cp -a "$img" "$c"
		rm -f "$c/restore.log"
		HOLDER=""
		case $what in
		mnt)
			RESTORE_OPTS="--join-ns mnt:/proc/self/ns/mnt"
			re='restore: --join-ns mnt:/proc/self/ns/mnt: joining a mnt namespace is not supported'
			;;
		wrong-kind)
			RESTORE_OPTS="--join-ns ipc:/proc/self/ns/net"
			re='restore: --join-ns ipc:/proc/self/ns/net: /proc/self/ns/net is not an ipc namespace'
			;;
		missing)
			RESTORE_OPTS="--join-ns uts:$d/no-such-ns"
			re="restore: --join-ns uts:$d/no-such-ns: cannot open"
			;;
		id-taken) # (queue B's id, 5 * 32768 + 7, taken by a queue of another key)
			ipc_holder 163847
			RESTORE_OPTS="--join-ns ipc:$HOLDER"
			re='restore: --join-ns ipc: SysV message queue 163847 \(key 0\) of ipc-ns.img: in the namespace given another one \(key 0x[0-9a-f]+\) has its id'
			;;
		undone) # (kernel.msgmni 1 there: the second queue cannot be made)
			ipc_holder
			RESTORE_OPTS="--join-ns ipc:/proc/$HOLDER/ns/ipc"
			re='restore: (cannot make SysV message queue|cannot set the owner, mode and size of SysV message queue)'
			;;
		esac
		if restore_refused "restore/join-ns-$what" "$pid" "$c" "$re"; then
			left=$([ -n "$HOLDER" ] && ipc_objects "$HOLDER")
			if [ -n "$HOLDER" ] && [ "$left" != "$([ $what = id-taken ] && echo 1 || echo 0) 0 0" ]; then
				result_fail "restore/join-ns-$what" "the joined namespace holds $left queues, sets and segments after the refused restore"
			else
				result_ok "restore/join-ns-$what"
			fi
		fi
		# (our child, not waited for yet: its pid cannot have been taken by another)
		[ -n "$HOLDER" ] && { kill -KILL "$HOLDER"; wait "$HOLDER"; } 2>/dev/null
		RESTORE_OPTS=""
	done
	restores_and_passes restore/join-ns-pristine "$d" "$pid"
}

# procs_in_ns INO: how many processes are in PID namespace pid:[INO]
procs_in_ns() {
	local p count=0
	for p in /proc/[0-9]*; do
		[ "$(stat -L -c %i "$p/ns/pid" 2>/dev/null)" = "$1" ] && count=$((count + 1))
	done
	echo $count
}
# host_pid_in INO XPID: the host pid of the process that PID namespace pid:[INO] calls XPID
host_pid_in() {
	local p
	for p in /proc/[0-9]*; do
		[ "$(stat -L -c %i "$p/ns/pid" 2>/dev/null)" = "$1" ] &&
			[ "$(awk '/^NSpid:/ { print $NF }' "$p/status" 2>/dev/null)" = "$2" ] && { echo "${p#/proc/}"; return; }
	done
}

# The tree in an engine's PID namespace, not its init (as a container of a pod sharing its
# sandbox's): named at dump with --external pid[INODE]:KEY, given at restore with --inherit-fd
case_engine_pid_ns() {
	local d=$ZOO_TMP/engine-pidns holder init="" ino xpid host re label=restore/engine-pid-ns
	mkdir -p "$d/img" "$d/work"
	# (its init reaps what is left to it, as a pod's catatonit does)
	unshare --pid --fork python3 -c 'import os, time
while True:
    try:
        os.wait()
    except ChildProcessError:
        time.sleep(0.05)' &
	holder=$!
	for _ in $(seq 50); do
		init=$(pgrep -P "$holder" 2>/dev/null) && [ -n "$init" ] && break
		sleep 0.1
	done
	ino=$(stat -L -c %i "/proc/$init/ns/pid" 2>/dev/null)
	(cd "$d/work" && ZOO_PIDFILE=$d/pid ZOO_TMPDIR=$d/work exec nsenter --target "$init" --pid -- \
		setsid "$(zoo_prog tree)" </dev/null >"$d/out" 2>"$d/err") &
	disown # (no "Killed" job report when the dump kills the tree)
	if [ -z "$ino" ] || ! wait_until 10 file_nonempty "$d/pid" || ! wait_until 10 first_line_is_ready "$d/out"; then
		result_fail "$label" "cannot start tree in a PID namespace of this script's (init '$init'): $(head -c 300 "$d/err")"
		kill -KILL "$holder" "$init" 2>/dev/null
		return
	fi
	xpid=$(cat "$d/pid")
	host=$(host_pid_in "$ino" "$xpid")
	track_pid "$host"
	run_stasis "$d/dump.out" 60 dump -t "$host" -D "$d/img" -o dump.log -v4 --external "pid[$ino]:extRootPidNS"
	# (the namespace's init reaps the tree's other processes when it gets to it)
	if [ "$ZRC" -ne 0 ] || ! wait_until 10 pid_free "$host" ||
		! wait_until 10 eval '[ "$(procs_in_ns "$ino")" = 1 ]'; then
		result_fail "$label" "dump (exit $ZRC) of tree, pid $xpid of pid:[$ino], left $(procs_in_ns "$ino") processes there"
		show_tail "$d/dump.out" "$d/img/dump.log"
		kill_ours "$host"
		kill -KILL "$holder" "$init" 2>/dev/null
		return
	fi
	# without the namespace's fd: refused naming the key, nothing made
	run_stasis "$d/restore.out" 60 restore -D "$d/img" -d -o restore.log -v4
	re='the tree.s PID namespace was the engine.s \(extRootPidNS\): pass --inherit-fd fd\[N\]:extRootPidNS'
	if ! clean_failure "$ZRC" || ! mentions "$d/restore.out" "$d/img/restore.log" "$re" ||
		[ "$(procs_in_ns "$ino")" != 1 ]; then
		result_fail "$label-no-fd" "restore (exit $ZRC) without the namespace's fd: not refused naming it, or $(procs_in_ns "$ino") processes there"
		show_tail "$d/restore.out" "$d/img/restore.log"
	else
		result_ok "$label-no-fd"
	fi
	# a failure in the last process made: every process of the tree killed, the namespace's
	# init alone left there
	STASIS_FAULT=restore-child run_stasis "$d/restore.out" 60 restore -D "$d/img" -d -o restore.log -v4 \
		--inherit-fd fd[9]:extRootPidNS 9<"/proc/$init/ns/pid"
	sleep 0.5
	if ! clean_failure "$ZRC" || [ "$(procs_in_ns "$ino")" != 1 ]; then
		result_fail "$label-fault" "restore (exit $ZRC) with a failure injected left $(procs_in_ns "$ino") processes in pid:[$ino] (its init and the tree's)"
		show_tail "$d/restore.out" "$d/img/restore.log"
	else
		result_ok "$label-fault"
	fi
	run_stasis "$d/restore.out" 60 restore -D "$d/img" -d -o restore.log -v4 \
		--inherit-fd fd[9]:extRootPidNS 9<"/proc/$init/ns/pid"
	host=$(host_pid_in "$ino" "$xpid")
	if [ "$ZRC" -ne 0 ] || [ -z "$host" ]; then
		result_fail "$label" "restore exit $ZRC; pid $xpid of pid:[$ino]: '$host'"
		show_tail "$d/restore.out" "$d/img/restore.log"
	else
		track_pid "$host"
		ZLAUNCH="" ZCAT=""
		judge "$label" "$host" "$d"
	fi
	kill -KILL "$holder" "$init" 2>/dev/null
	wait "$holder" 2>/dev/null
}

# time_ns_set_field IMG FIELD HOW: rewrites top-level varint FIELD of time-ns.img (its header's
# length and CRC too): HOW "+K" adds K to it, "=N" sets it to top-level field N's value.
time_ns_set_field() {
	python3 - "$@" <<'PY'
import struct, sys, zlib
path, field, how = sys.argv[1], int(sys.argv[2]), sys.argv[3]
data = open(path, 'rb').read()
hdr, payload = bytearray(data[:48]), data[48:]
def varint(b, i):
    v = s = 0
    while True:
        c = b[i]; i += 1; v |= (c & 0x7f) << s; s += 7
        if not c & 0x80:
            return v, i
def enc(v):
    out = bytearray()
    while True:
        c = v & 0x7f; v >>= 7
        out.append(c | (0x80 if v else 0))
        if not v:
            return bytes(out)
fields, i = [], 0
while i < len(payload):
    key, j = varint(payload, i)
    if key & 7 == 0:
        v, k = varint(payload, j)
    elif key & 7 == 2:
        n, k = varint(payload, j); v = payload[k:k + n]; k += n
    else:
        sys.exit('unexpected wire type')
    fields.append([key >> 3, key & 7, v]); i = k
val = dict((f[0], f[2]) for f in fields)
out = bytearray()
for num, wt, v in fields:
    if num == field:
        v = v + int(how[1:]) if how[0] == '+' else val[int(how[1:])]
    out += enc(num << 3 | wt) + (enc(v) if wt == 0 else enc(len(v)) + v)
struct.pack_into('<Q', hdr, 16, len(out))
struct.pack_into('<I', hdr, 24, 0)
struct.pack_into('<I', hdr, 24, zlib.crc32(bytes(out), zlib.crc32(bytes(hdr))))
open(path, 'wb').write(bytes(hdr) + bytes(out))
PY
}

# time-ns.img naming other time namespaces than the processes' images do: refused before any
# namespace is made or process started; the pristine set restores.
case_time_ns_images() {
	local d=$ZOO_TMP/time-ns-images pid img what c re
	dump_for_images restore/corrupt/time-ns time-ns-nested "$d" time-ns.img || return
	pid=$ZPID
	img=$d/img
	for what in time-ns-unknown-id time-ns-dumper-is-tree; do
		c=$d/$what
		rm -rf "$c"
		cp -a "$img" "$c"
		rm -f "$c/restore.log"
		case $what in
		time-ns-unknown-id) # the first namespace's id: no process's any more
			time_ns_set_field "$c/time-ns.img" 6 +1000000
			re='image core-[0-9]+.img: time namespace time:\[[0-9]+\] is neither stasis.s nor one of time-ns.img' ;;
		time-ns-dumper-is-tree) # stasis's own namespace is said to be the first of the tree's
			time_ns_set_field "$c/time-ns.img" 7 =6
			re='image time-ns.img: namespace time:\[[0-9]+\] is stasis.s own and the tree.s' ;;
		esac
		restore_refused "restore/corrupt/$what" "$pid" "$c" "$re" || continue
		if grep -q "restore: time namespace time:" "$c/restore.log" 2>/dev/null; then
			result_fail "restore/corrupt/$what" "a namespace was made before the image was refused"
		else
			result_ok "restore/corrupt/$what"
		fi
	done
	restores_and_passes restore/time-ns-pristine "$d" "$pid"
}

# ns-files-tree's images (the parent holds fds of its child's namespaces), those fds made to
# name the namespace of a pid the tree has not (fd_table.fds[].ns_pid, fields 1, 125): the
# restore refused naming the image and the fd before anything is made; the untouched images
# restore and PASS
case_ns_files_images() {
	local label=restore/corrupt/ns-file-pid d=$ZOO_TMP/ns-files-images c pid
	dump_for_images "$label" ns-files-tree "$d" inventory.img || return
	pid=$ZPID
	c=$d/corrupt
	rm -rf "$c"
	cp -a "$d/img" "$c"
	rm -f "$c/restore.log"
	if ! /usr/bin/python3 "$ZOO_ROOT/tests/tools/pb-set.py" 1.125 999999 "$c"/fds-*.img; then
		result_fail "$label" "no fd of the images names another process's namespace"
		return
	fi
	restore_refused "$label" "$pid" "$c" \
		"image fds-[0-9]+.img: fd 6[0-3] is the namespace of pid 999999, no other process of the tree" || return
	restores_and_passes "$label" "$d" "$pid"
}

# userns_tree DIR SCRIPT: a shell running SCRIPT as pid 1 of a PID namespace in a user namespace
# of its own (unshare -Ur --pid --fork), its programs copied into DIR/bin (ours to kill);
# USERNS_ROOT: its host pid ("" if it did not start). TREE_USERNS=-U: the user namespace's
# only (unshare -U --pid --fork: the host's uids); TREE_USERNS="": none.
userns_tree() {
	local d=$1 launcher n
	mkdir -p "$d/img" "$d/bin"
	cp /bin/sh /bin/sleep "$d/bin/"
	# shellcheck disable=SC2086 # (no flag, or one)
	setsid unshare ${TREE_USERNS--Ur} --pid --fork "$d/bin/sh" -c "$2" </dev/null >"$d/out" 2>&1 &
	launcher=$!
	track_pid "$launcher"
	USERNS_ROOT=""
	for n in $(seq 100); do
		USERNS_ROOT=$(cat "/proc/$launcher/task/$launcher/children" 2>/dev/null | awk '{print $1}')
		[ -n "$USERNS_ROOT" ] && [ "$(readlink "/proc/$USERNS_ROOT/exe")" = "$d/bin/sh" ] && break
		USERNS_ROOT=""
		sleep 0.05
	done
	[ -n "$USERNS_ROOT" ] && track_pid "$USERNS_ROOT"
	sleep 0.3 # (its children started)
	[ -n "$USERNS_ROOT" ]
}

# A child in a user namespace nested in the tree's: the dump refuses naming it; the tree runs on.
case_userns_nested() {
	local d=$ZOO_TMP/userns-nested c nested=""
	if ! userns_tree "$d" "\"$d/bin/sleep\" 1000 & unshare -U \"$d/bin/sleep\" 1000 & wait"; then
		result_fail dump/userns-nested "the tree did not start: $(head -c 300 "$d/out")"
		return
	fi
	for c in $(cat "/proc/$USERNS_ROOT/task/$USERNS_ROOT/children"); do
		track_pid "$c"
		[ "$(readlink "/proc/$c/ns/user")" != "$(readlink "/proc/$USERNS_ROOT/ns/user")" ] && nested=$c
	done
	run_stasis "$d/dump.out" 60 dump -t "$USERNS_ROOT" -D "$d/img" -o dump.log -v4
	if [ -z "$nested" ]; then
		result_fail dump/userns-nested "no child in a nested user namespace"
	elif ! clean_failure "$ZRC"; then
		result_fail dump/userns-nested "dump exit status $ZRC"
		show_tail "$d/dump.out" "$d/img/dump.log"
	elif ! mentions "$d/dump.out" "$d/img/dump.log" "dump pid $nested: it is in user namespace user:\[[0-9]+\], the tree's root in user:\[[0-9]+\]"; then
		result_fail dump/userns-nested "the error does not name pid $nested and its user namespace"
		show_tail "$d/dump.out" "$d/img/dump.log"
	elif ! proc_alive "$USERNS_ROOT" || ! proc_alive "$nested" || [ "$(proc_state "$USERNS_ROOT")" = T ] ||
		[ "$(tracer_of "$USERNS_ROOT")" != 0 ] || [ "$(tracer_of "$nested")" != 0 ]; then
		result_fail dump/userns-nested "the tree is gone, stopped or still traced"
	else
		result_ok dump/userns-nested
	fi
	kill_ours "$USERNS_ROOT"
}

# A process joined to the tree's PID namespace from outside (nsenter, as an engine's exec into a
# container, a health check, joins it): one that ends within a moment is waited for, the dump
# goes on; one that stays is named, and the tree runs on.
case_exec_stranger() {
	local d=$ZOO_TMP/exec-stranger ino stranger nsenter label
	if ! TREE_USERNS="" userns_tree "$d" "\"$d/bin/sleep\" 1000 & wait"; then
		result_fail dump/exec-stranger "the tree did not start: $(head -c 300 "$d/out")"
		return
	fi
	ino=$(stat -L -c %i "/proc/$USERNS_ROOT/ns/pid")
	for label in dump/exec-stranger-waited dump/exec-stranger; do
		stranger=""
		# (nsenter forks the process that joins the namespace)
		if [ $label = dump/exec-stranger-waited ]; then
			nsenter -t "$USERNS_ROOT" -p -- "$d/bin/sleep" 0.4 &
		else
			nsenter -t "$USERNS_ROOT" -p -- "$d/bin/sleep" 1000 &
		fi
		nsenter=$!
		disown
		track_pid $nsenter
		for _ in $(seq 100); do stranger=$(pgrep -P $nsenter) && break; sleep 0.01; done
		[ -n "$stranger" ] && track_pid "$stranger"
		rm -rf "$d/img" && mkdir -p "$d/img"
		run_stasis "$d/dump.out" 60 dump -t "$USERNS_ROOT" -D "$d/img" -o dump.log -v4 --leave-running
		if [ -z "$stranger" ]; then
			result_fail $label "no process joined pid:[$ino] (nsenter)"
		elif [ $label = dump/exec-stranger-waited ] && { [ "$ZRC" -ne 0 ] ||
			! mentions "$d/dump.out" "$d/img/dump.log" "dump pid $stranger: it joined the tree.s PID namespace from outside"; }; then
			result_fail $label "dump exit status $ZRC (0 wanted, after waiting for pid $stranger, which joined the tree's namespace for 0.4 s)"
			show_tail "$d/dump.out" "$d/img/dump.log"
		elif [ $label = dump/exec-stranger ] && { ! clean_failure "$ZRC" ||
			! mentions "$d/dump.out" "$d/img/dump.log" "dump pid $stranger: it is in the tree.s PID namespace \(pid:\[$ino\]\) but not a descendant of its init, pid $USERNS_ROOT \(a process joined with setns, as .exec. into a container does, that did not end"; }; then
			result_fail $label "dump exit status $ZRC, or the error does not name pid $stranger, which stays in the tree's namespace"
			show_tail "$d/dump.out" "$d/img/dump.log"
		elif ! proc_alive "$USERNS_ROOT" || [ "$(proc_state "$USERNS_ROOT")" = T ] || [ "$(tracer_of "$USERNS_ROOT")" != 0 ]; then
			result_fail $label "the tree is gone, stopped or still traced"
		else
			result_ok $label
		fi
	done
	kill_ours "$stranger"
	kill_ours "$USERNS_ROOT"
}

# A unix client outside the tree being served by the tree (see dump/unix-client-waited above).
UNIX_SERVER_PY='
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
s.listen(8)
s.setblocking(False)
held = []
print("READY", flush=True)
while True:
    time.sleep(0.05)
    try:
        c, _ = s.accept()
    except BlockingIOError:
        continue
    c.setblocking(True)
    req = c.recv(64)
    if req == b"hold":
        held.append(c)
        c.sendall(b"held")
        continue
    for _ in range(200):
        if os.path.exists(sys.argv[2]):
            break
        time.sleep(0.02)
    c.sendall(b"ok:" + req)
    c.close()'
# unix_ask PATH REQUEST [SENT]: a client outside: its answer on stdout (waits 5 s at most; hold:
# then 60 s); file SENT made once the request is sent. Run in a subshell (& or $()): it execs
unix_ask() {
	exec python3 -c '
import socket, sys, time
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
c.settimeout(5)
c.connect(sys.argv[1])
c.sendall(sys.argv[2].encode())
if sys.argv[3]:
    open(sys.argv[3], "w").close()
print(c.recv(64).decode(), flush=True)
if sys.argv[2] == "hold":
    time.sleep(60)' "$1" "$2" "${3:-}"
}
# unix_client_outside NETNS WAITED STAYS: the server in a network namespace of its own
# (NETNS=own) or in the host's (host), the two cases' labels
unix_client_outside() {
	local netns=$1 waited=$2 stays=$3 d=$ZOO_TMP/unix-client-$1 server label client answer
	local go_maker unshare=() served
	if [ "$netns" = own ]; then
		unshare=(unshare -n)
		served=" of the host.s network namespace"
	else
		served=", outside the tree"
	fi
	mkdir -p "$d"
	rm -f "$d/srv.sock" "$d/go"
	setsid "${unshare[@]}" python3 -c "$UNIX_SERVER_PY" "$d/srv.sock" "$d/go" </dev/null >"$d/out" 2>&1 &
	server=$!
	disown
	track_pid $server
	if ! wait_until 5 grep -q READY "$d/out"; then
		result_fail "$waited" "the server did not start: $(head -c 300 "$d/out")"
		return
	fi
	for label in "$waited" "$stays"; do
		rm -rf "$d/img" && mkdir -p "$d/img"
		rm -f "$d/sent"
		unix_ask "$d/srv.sock" "$([ "$label" = "$stays" ] && echo hold || echo req1)" "$d/sent" \
			>"$d/answer" 2>&1 &
		client=$!
		track_pid $client
		if [ "$label" = "$stays" ]; then
			wait_until 5 grep -q held "$d/answer"
			run_stasis "$d/dump.out" 60 dump -t $server -D "$d/img" -o dump.log -v4 --leave-running
		else
			# (the server answers once file go is there: made when the dump's log names the
			# connection, so that the dump cannot come after the answer however loaded the host)
			wait_until 5 test -e "$d/sent"
			(wait_until 10 grep -q "serves a connection" "$d/img/dump.log"; touch "$d/go") &
			go_maker=$!
			run_stasis "$d/dump.out" 60 dump -t $server -D "$d/img" -o dump.log -v4
			wait $go_maker
		fi
		if [ "$label" = "$waited" ] && { [ "$ZRC" -ne 0 ] ||
			! mentions "$d/dump.out" "$d/img/dump.log" "dump: unix socket $d/srv.sock serves a connection from socket:\[[0-9]*\]$served"; }; then
			result_fail "$label" "dump exit status $ZRC (0 wanted, after the server answered its client outside, the log naming the connection)"
			show_tail "$d/dump.out" "$d/img/dump.log"
		elif [ "$label" = "$waited" ] && { ! wait $client || [ "$(cat "$d/answer")" != ok:req1 ]; }; then
			result_fail "$label" "the client outside got '$(cat "$d/answer")', not ok:req1"
		elif [ "$label" = "$waited" ] && {
			run_stasis "$d/restore.out" 60 restore -D "$d/img" -d -o restore.log -v4
			[ "$ZRC" -ne 0 ] || ! answer=$(unix_ask "$d/srv.sock" req2) || [ "$answer" != ok:req2 ]; }; then
			result_fail "$label" "restore exit status $ZRC; the restored server answered '${answer:-}', not ok:req2"
			show_tail "$d/restore.out" "$d/img/restore.log"
		elif [ "$label" = "$stays" ] && { ! clean_failure "$ZRC" ||
			! mentions "$d/dump.out" "$d/img/dump.log" "dump pid $server fd [0-9]*: unix socket socket:\[[0-9]*\] is connected to socket:\[[0-9]*\] outside the tree \(pass --ext-unix-sk" ||
			! mentions "$d/dump.out" "$d/img/dump.log" "dump: unix socket $d/srv.sock serves a connection from socket:\[[0-9]*\]$served"; }; then
			result_fail "$label" "dump exit status $ZRC, or the error does not name the connection the server holds, or it was not waited for"
			show_tail "$d/dump.out" "$d/img/dump.log"
		elif ! proc_alive $server || [ "$(proc_state $server)" = T ] || [ "$(tracer_of $server)" != 0 ] ||
			[ "$(unix_ask "$d/srv.sock" req3)" != ok:req3 ]; then
			result_fail "$label" "the server is gone, stopped, traced or does not answer"
		else
			result_ok "$label"
		fi
	done
	# (python3 may be a pyenv's, which kill_ours does not know: these are named by our socket)
	for server in $server $client; do
		grep -q -F "$d/srv.sock" "/proc/$server/cmdline" 2>/dev/null && kill -KILL "$server" &&
			wait "$server" 2>/dev/null
	done
	return 0
}
case_unix_client_outside() {
	unix_client_outside own dump/unix-client-waited dump/unix-client-stays
	unix_client_outside host dump/unix-client-same-net-waited dump/unix-client-same-net-stays
}

# userns.img with overlapping uid_map lines: refused before anything is made; the pristine set
# restores.
# restore/corrupt/netns-maker (above)
case_netns_maker_images() {
	local label=restore/corrupt/netns-maker d=$ZOO_TMP/netns-maker c pid
	DUMP_OPTS=--tcp-established dump_for_images "$label" netns-inet "$d" net-nested.img || return
	pid=$ZPID
	c=$d/corrupt
	rm -rf "$c"
	cp -a "$d/img" "$c"
	rm -f "$c/restore.log"
	# every fd_table.fds[].netns_maker (fields 1, 116) set to the root's pid
	if ! /usr/bin/python3 "$ZOO_ROOT/tests/tools/pb-set.py" 1.116 "$pid" "$c"/fds-*.img; then
		result_fail "$label" "no socket of the images names a maker"
		drop_net_lock "$pid"
		return
	fi
	restore_refused "$label" "$pid" "$c" \
		"image fds-[0-9]+.img: fd [0-9]+: its socket's network namespace is pid $pid's, which net-nested.img does not hold" ||
		{ drop_net_lock "$pid"; return; }
	restores_and_passes "$label" "$d" "$pid"
}

# netns-veth's images (its child's network namespace wired to its own by a veth pair), the
# pair's two sides made to disagree: the child's end names a namespace the tree has not
# (net-links-MAKER.img's peer_netns, fields 1, 24), the parent's end another index for the
# child's (net-links.img's peer_netns_ifindex, 1, 25): each restore refused naming the image
# and the veth before anything is made; the untouched images restore and PASS
case_netns_veth_images() {
	local label=restore/corrupt/netns-veth d=$ZOO_TMP/netns-veth c pid what file field value re
	DUMP_OPTS=--tcp-established dump_for_images "$label" netns-veth "$d" net-nested.img || return
	pid=$ZPID
	for what in peer-netns peer-index; do
		c=$d/$what
		rm -rf "$c"
		cp -a "$d/img" "$c"
		rm -f "$c/restore.log"
		if [ $what = peer-netns ]; then
			file=$(cd "$c" && ls net-links-*.img) field=1.24 value=999
			re="image net-links-[0-9]+.img: veth zc0: the network namespace of its other end \\(999\\) is none of the tree's"
		else
			file=net-links.img field=1.25 value=7
			re="image net-links(-[0-9]+)?.img: veth z[rc]0 and its other end z[cr]0 \\(index [0-9]+ in the network namespace [0-9]+\\) do not name each other"
		fi
		if ! /usr/bin/python3 "$ZOO_ROOT/tests/tools/pb-set.py" $field $value "$c/$file"; then
			result_fail "$label-$what" "no veth of $file names its other end's namespace"
			drop_net_lock "$pid"
			return
		fi
		restore_refused "$label-$what" "$pid" "$c" "$re" || { drop_net_lock "$pid"; return; }
	done
	restores_and_passes "$label" "$d" "$pid"
}

# netns-mounted's images (network namespaces held by mounts of a child's mount namespace, `ip
# netns add`), the mounts made to bind a namespace the images do not hold (mount-nested.img's
# nsfs_net, fields 1, 4, 27): the restore refused naming the image and the mount before anything
# is made; the untouched images restore and PASS
case_netns_mounted_images() {
	local label=restore/corrupt/netns-mounted d=$ZOO_TMP/netns-mounted c pid
	dump_for_images "$label" netns-mounted "$d" net-nested.img || return
	pid=$ZPID
	c=$d/corrupt
	rm -rf "$c"
	cp -a "$d/img" "$c"
	rm -f "$c/restore.log"
	if ! /usr/bin/python3 "$ZOO_ROOT/tests/tools/pb-set.py" 1.4.27 12345 "$c/mount-nested.img"; then
		result_fail "$label" "no mount of mount-nested.img binds a network namespace"
		return
	fi
	restore_refused "$label" "$pid" "$c" \
		"image mount-nested.img: mount .*/netns/(blue|red) binds network namespace net:\\[12345\\], which net-nested.img does not hold" ||
		return
	restores_and_passes "$label" "$d" "$pid"
}

# userns_join DIR: DIR/img (userns_tree's images: uid and gid maps 0 0 1) restored with --join-ns
# user: into this script's user namespace (stasis's own) or one without maps: refused naming
# it or the map, nothing made; into a user namespace of a holder's with the same maps: the tree
# is back in that one
userns_join() {
	local d=$1 c=$1/join-maps holder root="" n what re
	for what in own maps; do
		rm -rf "$c"
		cp -a "$d/img" "$c"
		rm -f "$c/restore.log"
		holder=""
		if [ $what = own ]; then
			RESTORE_OPTS="--join-ns user:/proc/self/ns/user"
			re="restore: --join-ns user: the namespace given is stasis's own"
		else
			unshare -U sleep 600 &
			holder=$!
			wait_until 5 sh -c "[ \"\$(readlink /proc/$holder/ns/user)\" != \"\$(readlink /proc/self/ns/user)\" ]"
			RESTORE_OPTS="--join-ns user:/proc/$holder/ns/user"
			re='restore: --join-ns user: the uid_map of the namespace given is not the one the tree had'
		fi
		if restore_refused restore/join-ns-user-$what 0 "$c" "$re"; then
			if [ -s "$c/restored.pid" ] || grep -q "restore: images checked" "$c/restore.log"; then
				result_fail restore/join-ns-user-$what "things were made before the namespace was refused"
			else
				result_ok restore/join-ns-user-$what
			fi
		fi
		RESTORE_OPTS=""
		# (our child, not waited for yet: its pid cannot have been taken by another)
		[ -n "$holder" ] && { kill -KILL "$holder"; wait "$holder"; } 2>/dev/null
	done
	unshare -Ur sleep 600 &
	holder=$!
	wait_until 5 sh -c "[ \"\$(readlink /proc/$holder/ns/user)\" != \"\$(readlink /proc/self/ns/user)\" ]"
	run_stasis "$d/restore.out" 60 restore -D "$d/img" -d --pidfile "$d/restored.pid" -o restore.log -v4 \
		--join-ns "user:$holder"
	root=$(cat "$d/restored.pid" 2>/dev/null)
	[ -n "$root" ] && track_pid "$root"
	if [ "$ZRC" -ne 0 ] || [ -z "$root" ] || ! proc_alive "$root"; then
		result_fail restore/join-ns-user "restore with --join-ns user:$holder: exit status $ZRC"
		show_tail "$d/restore.out" "$d/img/restore.log"
	elif [ "$(readlink "/proc/$root/ns/user")" != "$(readlink "/proc/$holder/ns/user")" ] ||
		[ "$(awk '/^NSpid:/ {print $NF}' "/proc/$root/status")" != 1 ]; then
		result_fail restore/join-ns-user "pid $root is in $(readlink "/proc/$root/ns/user") (pid $(awk '/^NSpid:/ {print $NF}' "/proc/$root/status") there), not in the holder's $(readlink "/proc/$holder/ns/user")"
	else
		result_ok restore/join-ns-user
	fi
	kill_ours "$root"
	for n in $(seq 50); do [ -n "$root" ] && proc_alive "$root" && sleep 0.1; done
	# (our child, not waited for yet: its pid cannot have been taken by another)
	{ kill -KILL "$holder"; wait "$holder"; } 2>/dev/null
	rm -f "$d/restored.pid"
}

case_userns_images() {
	local d=$ZOO_TMP/userns-images c=$ZOO_TMP/userns-images/overlap root
	if ! userns_tree "$d" "while :; do \"$d/bin/sleep\" 0.2; done"; then
		result_fail restore/corrupt/userns-overlap "the tree did not start: $(head -c 300 "$d/out")"
		return
	fi
	root=$USERNS_ROOT
	run_stasis "$d/dump.out" 60 dump -t "$root" -D "$d/img" -o dump.log -v4
	if [ "$ZRC" -ne 0 ] || [ ! -s "$d/img/userns.img" ]; then
		result_fail restore/corrupt/userns-overlap "cannot make the images: dump exited $ZRC"
		show_tail "$d/dump.out" "$d/img/dump.log"
		kill_ours "$root"
		return
	fi
	rm -rf "$c"
	cp -a "$d/img" "$c"
	rm -f "$c/restore.log"
	# the payload's first field is the first uid_map line: appended again (a second, equal line),
	# the header's length and CRC made to match
	python3 - "$c/userns.img" <<'PY'
import struct, sys, zlib
path = sys.argv[1]
data = open(path, "rb").read()
hdr, n = data[:48], struct.unpack_from("<Q", data, 16)[0]
payload = data[48:48 + n]
assert payload[0] == 0x0a and payload[1] < 0x80
payload += payload[:2 + payload[1]]
hdr = hdr[:16] + struct.pack("<QI", len(payload), 0) + hdr[28:]
crc = zlib.crc32(payload, zlib.crc32(hdr))
open(path, "wb").write(hdr[:24] + struct.pack("<I", crc) + hdr[28:] + payload)
PY
	run_stasis "$c/restore.out" 60 restore -D "$c" -d --pidfile "$c/restored.pid" -o restore.log -v4
	if ! clean_failure "$ZRC"; then
		result_fail restore/corrupt/userns-overlap "restore exit status $ZRC"
		show_tail "$c/restore.out" "$c/restore.log"
	elif ! mentions "$c/restore.out" "$c/restore.log" "userns.img: uid_map lines 1 and 2 overlap"; then
		result_fail restore/corrupt/userns-overlap "the error does not name userns.img and the overlap"
		show_tail "$c/restore.out" "$c/restore.log"
	elif grep -q "made by helper\|restore: images checked" "$c/restore.log" || [ -s "$c/restored.pid" ]; then
		result_fail restore/corrupt/userns-overlap "things were made before the image was refused"
	else
		result_ok restore/corrupt/userns-overlap
	fi
	userns_join "$d"
	run_stasis "$d/restore.out" 60 restore -D "$d/img" -d --pidfile "$d/restored.pid" -o restore.log -v4
	root=$(cat "$d/restored.pid" 2>/dev/null)
	[ -n "$root" ] && track_pid "$root"
	if [ "$ZRC" -ne 0 ] || [ -z "$root" ] || ! proc_alive "$root"; then
		result_fail restore/userns-pristine "restore of the untouched images: exit status $ZRC"
		show_tail "$d/restore.out" "$d/img/restore.log"
	elif [ "$(readlink "/proc/$root/exe")" != "$d/bin/sh" ] ||
		[ "$(awk '/^NSpid:/ {print $NF}' "/proc/$root/status")" != 1 ] ||
		[ "$(readlink "/proc/$root/ns/user")" = "$(readlink /proc/self/ns/user)" ] ||
		[ "$(tr -s ' ' <"/proc/$root/uid_map")" != " 0 0 1" ]; then
		result_fail restore/userns-pristine "pid $root: not the shell as pid 1 in a user namespace mapping 0 to 0 ($(readlink "/proc/$root/exe"), $(grep NSpid "/proc/$root/status"), uid_map '$(cat "/proc/$root/uid_map")')"
	else
		result_ok restore/userns-pristine
	fi
	kill_ours "$root"
}

# alloc_sweep TRY: runs TRY N for N = 1, 2, 3, 5, 8, ... until TRY says the run went through
# (returns 1: N is past the last allocation), then for N halving the gap between the last N
# that failed and the first that went through, so that the last allocations are tried too.
# TRY returns 0 when the run failed as it must, 2 when the case failed (TRY reported it).
# Sets ALLOC_POINTS: how many runs failed as they must, and ALLOC_LAST: the last N that failed.
# Returns 1 if TRY reported a failure.
alloc_sweep() {
	local try=$1 lo=0 hi=0 a=1 b=2 n failed=0
	ALLOC_POINTS=0
	while [ "$hi" -eq 0 ] || [ $((hi - lo)) -gt 1 ]; do
		if [ -n "${ALLOC_EVERY:-}" ]; then
			n=$((lo + 1))
		elif [ "$hi" -eq 0 ]; then
			n=$a a=$b b=$((n + b))
		else
			n=$(((lo + hi) / 2))
		fi
		"$try" "$n"
		case $? in
		0) lo=$n ALLOC_POINTS=$((ALLOC_POINTS + 1)) ;;
		1) hi=$n ;;
		*)
			[ -n "${ALLOC_EVERY:-}" ] || return 1
			lo=$n failed=1 # reported; every later N is still tried
			;;
		esac
	done
	ALLOC_LAST=$lo
	return $failed
}

# ALLOC_DUMP_OPTS: what a dump of TARGET needs (as tests/run-zoo.sh gives it)
alloc_dump_opts() {
	ALLOC_DUMP_OPTS=()
	[[ $1 == tcp-* ]] && ALLOC_DUMP_OPTS=(--tcp-established)
	return 0
}

# A dump whose Nth allocation fails (the case's name, target and dir in ALLOC_*).
alloc_try_dump() {
	local n=$1 d=$ALLOC_DIR label=$ALLOC_LABEL
	rm -rf "$d/img"
	mkdir -p "$d/img"
	if ! zoo_start "$ALLOC_TARGET" "$d"; then
		result_fail "$label" "N=$n: $ZERR"
		return 2
	fi
	sleep 0.2
	STASIS_FAULT=alloc-$n run_stasis "$d/dump.out" 60 dump -t "$ZPID" -D "$d/img" \
		"${ALLOC_DUMP_OPTS[@]}" -o dump.log -v4
	if [ "$ZRC" -eq 0 ]; then
		wait_until 10 pid_free "$ZPID"
		# the lock the dump kept for a restore (none follows)
		[[ $ALLOC_TARGET == tcp-* ]] && nft delete table inet "stasis-dumped-$ZPID" 2>/dev/null
		if mentions "$d/dump.out" "$d/img/dump.log" 'out of memory'; then
			result_fail "$label" "STASIS_FAULT=alloc-$n: an allocation failed, yet the dump went through"
			show_tail "$d/dump.out" "$d/img/dump.log"
			return 2
		fi
		return 1
	fi
	if ! clean_failure "$ZRC"; then
		result_fail "$label" "STASIS_FAULT=alloc-$n: exit status $ZRC"
	elif ! mentions "$d/dump.out" 'out of memory'; then
		result_fail "$label" "STASIS_FAULT=alloc-$n: the error does not say 'out of memory'"
	elif ! target_survives "$label" "$ZPID" "$d"; then
		result_fail "$label" "STASIS_FAULT=alloc-$n: $ZERR"
	else
		return 0
	fi
	show_tail "$d/dump.out" "$d/img/dump.log"
	kill_ours "$ZPID"
	return 2
}

case_alloc_dump() { # case_alloc_dump TARGET
	ALLOC_TARGET=$1 ALLOC_DIR=$ZOO_TMP/alloc-dump-$1 ALLOC_LABEL=dump/alloc-fail/$1
	alloc_dump_opts "$1"
	alloc_sweep alloc_try_dump || return
	if [ "$ALLOC_POINTS" -lt "$ALLOC_MIN_POINTS" ]; then
		result_fail "$ALLOC_LABEL" "only $ALLOC_POINTS allocations could be made to fail"
	else
		result_ok "$ALLOC_LABEL ($ALLOC_POINTS points, the last at allocation $ALLOC_LAST)"
	fi
}

# A restore of the images in ALLOC_DIR/img whose Nth allocation fails; ALLOC_PID is the root.
alloc_try_restore() {
	local n=$1 d=$ALLOC_DIR label=$ALLOC_LABEL pid=$ALLOC_PID
	rm -f "$d/img/restore.log" "$d/restored.pid"
	ZLAUNCH="" ZCAT=""
	STASIS_FAULT=alloc-$n run_stasis "$d/restore.out" 60 restore -D "$d/img" -d --pidfile "$d/restored.pid" \
		-o restore.log -v4
	track_pid "$pid"
	if [ "$ZRC" -eq 0 ]; then
		if mentions "$d/restore.out" "$d/img/restore.log" 'out of memory'; then
			result_fail "$label" "STASIS_FAULT=alloc-$n: an allocation failed, yet the restore went through"
		elif ! zoo_stop "$pid" "$d" "$d/out"; then
			result_fail "$label" "STASIS_FAULT=alloc-$n: restored, but $ZERR"
		elif [[ $ZVERDICT != PASS* ]]; then
			result_fail "$label" "STASIS_FAULT=alloc-$n: restored, but $ZVERDICT"
		else
			wait_until 10 pid_free "$pid"
			return 1
		fi
		show_tail "$d/restore.out" "$d/img/restore.log"
		kill_ours "$pid"
		return 2
	fi
	sleep 0.3
	if ! clean_failure "$ZRC"; then
		result_fail "$label" "STASIS_FAULT=alloc-$n: exit status $ZRC"
	elif ! mentions "$d/restore.out" 'out of memory'; then
		result_fail "$label" "STASIS_FAULT=alloc-$n: the error does not say 'out of memory'"
	elif [ "$(count_procs "$ALLOC_TARGET" "$d")" -ne 0 ] || ! wait_until 5 pid_free "$pid"; then
		result_fail "$label" "STASIS_FAULT=alloc-$n: processes of the images are left after the failed restore"
	else
		return 0
	fi
	show_tail "$d/restore.out" "$d/img/restore.log"
	kill_ours "$pid"
	return 2
}

case_alloc_restore() { # case_alloc_restore TARGET
	ALLOC_TARGET=$1 ALLOC_DIR=$ZOO_TMP/alloc-restore-$1 ALLOC_LABEL=restore/alloc-fail/$1
	local d=$ALLOC_DIR
	mkdir -p "$d/img"
	if ! zoo_start "$ALLOC_TARGET" "$d"; then
		result_fail "$ALLOC_LABEL" "$ZERR"
		return
	fi
	ALLOC_PID=$ZPID
	sleep 0.2
	alloc_dump_opts "$1"
	dump_for_restore "$ALLOC_LABEL" "$ALLOC_PID" "$d" "${ALLOC_DUMP_OPTS[@]}" || return
	local wrap=()
	if [[ $1 == tcp-* ]]; then
		# the lock the dump kept for a restore here: these restores are made elsewhere
		nft delete table inet "stasis-dumped-$ALLOC_PID" 2>/dev/null
		wrap=(unshare -n sh -c 'ip link set lo up && exec "$@"' sh)
	fi
	ZOO_WRAP=("${wrap[@]}")
	alloc_sweep alloc_try_restore
	local swept=$?
	ZOO_WRAP=()
	[ "$swept" -eq 0 ] || return
	if [ "$ALLOC_POINTS" -lt "$ALLOC_MIN_POINTS" ]; then
		result_fail "$ALLOC_LABEL" "only $ALLOC_POINTS allocations could be made to fail"
	else
		result_ok "$ALLOC_LABEL ($ALLOC_POINTS points, the last at allocation $ALLOC_LAST)"
	fi
}

case_restore_bad_dirs() {
	local d=$ZOO_TMP/restore-bad
	mkdir -p "$d/empty"
	run_stasis "$d/bogus.out" 30 restore -D "$d/does/not/exist" -d
	if ! clean_failure "$ZRC"; then
		result_fail restore/bogus-dir "exit status $ZRC"
		show_tail "$d/bogus.out"
	elif [ ! -s "$d/bogus.out" ]; then
		result_fail restore/bogus-dir "no error message"
	else
		result_ok restore/bogus-dir
	fi
	run_stasis "$d/empty.out" 30 restore -D "$d/empty" -d
	if ! clean_failure "$ZRC"; then
		result_fail restore/empty-dir "exit status $ZRC"
		show_tail "$d/empty.out"
	elif ! mentions "$d/empty.out" "inventory.img"; then
		result_fail restore/empty-dir "the error does not name inventory.img"
		show_tail "$d/empty.out"
	else
		result_ok restore/empty-dir
	fi
}

# The images of a tree restore refused because the kernel is said to lack clone3 set_tid.
case_restore_kernel_lacks() {
	local d=$ZOO_TMP/kernel-lacks label=restore/kernel-lacks-clone3-set-tid pid
	mkdir -p "$d/img"
	if ! zoo_start mem-anon "$d"; then
		result_fail $label "$ZERR"
		return
	fi
	pid=$ZPID
	dump_for_restore $label "$pid" "$d" || return
	STASIS_FAULT=kernel-lacks:clone3_set_tid restore_refused $label "$pid" "$d/img" \
		'restore: this kernel lacks clone3 with set_tid: .*pids back.*nothing was started' &&
		result_ok $label
}

# The images of memfd-secret (secret memory) refused because the kernel is said to lack
# memfd_secret(): nothing of the tree runs.
case_restore_kernel_lacks_memfd_secret() {
	local d=$ZOO_TMP/kernel-lacks-secret label=restore/kernel-lacks-memfd-secret
	dump_for_images $label memfd-secret "$d" shmem.img || return
	STASIS_FAULT=kernel-lacks:memfd_secret restore_refused $label "$ZPID" "$d/img" \
		'restore of memfd_secret\(\) memory \(shmem.img object [0-9]+\) needs memfd_secret, which this kernel lacks' &&
		result_ok $label
}

# check_run NAME ARGS...: stasis ARGS, stdout to $CHECK_D/NAME.out, stderr to NAME.err; ZRC
CHECK_D=""
check_run() {
	local name=$1
	shift
	timeout -k 5 60 "${ZOO_WRAP[@]}" "$STASIS" "$@" </dev/null >"$CHECK_D/$name.out" 2>"$CHECK_D/$name.err"
	ZRC=$?
}

# check_feature_answers NAME: does --feature NAME answer the way criu does? Sets ZERR if not.
check_feature_answers() {
	local n=$1 out=$CHECK_D/each.out err=$CHECK_D/each.err
	check_run each check --feature "$n"
	if [ "$ZRC" -eq 0 ]; then
		[ "$(cat "$out")" = "$n is supported" ] && return 0
		ZERR="--feature $n: exit 0 but stdout '$(head -c 200 "$out")'"
	elif [ "$ZRC" -eq 1 ]; then
		[ ! -s "$out" ] && grep -q -E "^Warn: $n is not supported: ." "$err" && return 0
		ZERR="--feature $n: exit 1 without a 'Warn: $n is not supported: ...' line alone"
	else
		ZERR="--feature $n: exit status $ZRC"
	fi
	return 1
}

case_check() {
	local bad n names=()
	CHECK_D=$ZOO_TMP/check
	mkdir -p "$CHECK_D"

	check_run report check
	# every line but the first and the summary is "name: yes|no" with an optional "(detail)"
	bad=$(sed -e 1d "$CHECK_D/report.out" | grep -v -E '^[^:]+: (yes|no)( \(.+\))?$' |
		grep -v -E '^(Optional features missing: .*\.|Looks good\.)$' | head -n 3)
	if [ "$ZRC" -ne 0 ]; then
		result_fail check/report "exit status $ZRC"
		show_tail "$CHECK_D/report.out" "$CHECK_D/report.err"
	elif [ "$(tail -n 1 "$CHECK_D/report.out")" != "Looks good." ] || ! grep -q '^kernel: ' "$CHECK_D/report.out"; then
		result_fail check/report "no 'kernel:' line or the last line is not 'Looks good.'"
		show_tail "$CHECK_D/report.out"
	elif [ -n "$bad" ]; then
		result_fail check/report "lines not of the form 'name: yes (detail)': $bad"
	elif ! grep -q '^clone3 with set_tid: yes$' "$CHECK_D/report.out" ||
		! grep -q '^PTRACE_GET_RSEQ_CONFIGURATION: yes' "$CHECK_D/report.out"; then
		result_fail check/report "clone3 with set_tid or PTRACE_GET_RSEQ_CONFIGURATION not reported present"
		show_tail "$CHECK_D/report.out"
	else
		result_ok check/report
	fi

	check_run list check --feature list
	if [ "$ZRC" -ne 0 ] || [ "$(wc -l <"$CHECK_D/list.out")" -ne 1 ]; then
		result_fail check/feature-list "exit status $ZRC, $(wc -l <"$CHECK_D/list.out") lines"
		show_tail "$CHECK_D/list.out" "$CHECK_D/list.err"
	else
		bad=""
		for n in mem_dirty_track timerfd uffd-noncoop clone3_set_tid get_rseq_conf lazy_pages; do
			grep -q -E "(^| )$n( |\$)" "$CHECK_D/list.out" || bad="$bad $n"
		done
		if [ -n "$bad" ]; then
			result_fail check/feature-list "missing:$bad"
		else
			result_ok check/feature-list
		fi
	fi

	check_run supported check --feature clone3_set_tid
	if [ "$ZRC" -ne 0 ] || [ "$(cat "$CHECK_D/supported.out")" != "clone3_set_tid is supported" ]; then
		result_fail check/feature-supported "exit status $ZRC"
		show_tail "$CHECK_D/supported.out" "$CHECK_D/supported.err"
	else
		result_ok check/feature-supported
	fi

	# what stasis keeps whatever the kernel (zoo aio, proc-knobs): criu's zdtm asks for them
	bad=""
	for n in aio_remap loginuid; do
		check_run kept check --feature "$n"
		[ "$ZRC" -eq 0 ] && [ "$(cat "$CHECK_D/kept.out")" = "$n is supported" ] || bad="$bad $n"
	done
	if [ -n "$bad" ]; then
		result_fail check/feature-kept "not answered supported:$bad"
	else
		result_ok check/feature-kept
	fi

	# a feature stasis does not have (32-bit processes)
	check_run unsupported check --feature compat_cr
	if [ "$ZRC" -ne 1 ] || [ -s "$CHECK_D/unsupported.out" ] ||
		! grep -q -E '^Warn: compat_cr is not supported: .*32-bit' "$CHECK_D/unsupported.err"; then
		result_fail check/feature-unsupported "exit status $ZRC, or no 'Warn: compat_cr is not supported' naming 32-bit processes"
		show_tail "$CHECK_D/unsupported.out" "$CHECK_D/unsupported.err"
	else
		result_ok check/feature-unsupported
	fi

	check_run unknown check --feature no_such_feature
	if ! clean_failure "$ZRC" || grep -q supported "$CHECK_D/unknown.out" ||
		! grep -q 'Unknown feature no_such_feature' "$CHECK_D/unknown.err"; then
		result_fail check/feature-unknown "exit status $ZRC, or the error does not name no_such_feature"
		show_tail "$CHECK_D/unknown.out" "$CHECK_D/unknown.err"
	else
		result_ok check/feature-unknown
	fi

	read -r -a names <"$CHECK_D/list.out"
	bad=""
	for n in "${names[@]}"; do
		check_feature_answers "$n" || bad="$bad; $ZERR"
	done
	if [ ${#names[@]} -eq 0 ] || [ -n "$bad" ]; then
		result_fail check/feature-each "${bad:-no names listed}"
	else
		result_ok check/feature-each
	fi
}

# criu's long options (NAME or NAME=ARG), as its configuration parser lists them, and the
# "no-" forms of its on/off ones
CRIU_OPTIONS="tree=1 leave-stopped leave-running restore-detached restore-sibling daemon images-dir=. work-dir=.
log-file=x.log join-ns=net:/proc/self/ns/net root=/ ext-unix-sk tcp-established close=99 log-pid evasive-devices
pidfile=p veth-pair=a=b action-script=/bin/true link-remap shell-job file-locks page-server address=127.0.0.1
port=1 prev-images-dir=p ms track-mem auto-dedup libdir=/ cpu-cap=none force-irmap ext-mount-map=auto exec-cmd
manage-cgroups=soft cgroup-root=/x inherit-fd=fd[1]:x skip-mnt=/x enable-fs=tmpfs enable-external-sharing
enable-external-masters freeze-cgroup=/x ghost-limit=1M irmap-scan-path=/ lsm-profile=apparmor:x timeout=5
external=mnt[/x]:k empty-ns=net lazy-pages extra experimental all cgroup-props=x cgroup-props-file=x
cgroup-dump-controller=cpu skip-in-flight deprecated display-stats weak-sysctls status-fd=2 tcp-close
verbosity=1 ps-socket=99 remote relative-timestamps no-default-config with-cpu-affinity tls tls-cacert=x
tls-cacrl=x tls-cert=x tls-key=x tls-no-cn-verify lsm-mount-context=x network-lock=skip mntns-compat-mode
pre-dump-mode=read file-validation=filesize skip-file-rwx-check ghost-fiemap allow-uprobes unprivileged stream
cgroup-yard=/x no-tcp-established no-tcp-close no-evasive-devices no-shell-job no-file-locks no-link-remap
no-track-mem no-auto-dedup no-force-irmap no-lazy-pages no-skip-in-flight no-display-stats no-weak-sysctls
no-ghost-fiemap no-mntns-compat-mode no-unprivileged no-stream no-tls no-tls-no-cn-verify no-allow-uprobes
no-skip-file-rwx-check no-remote no-log-pid no-ext-unix-sk"

case_criu_options() {
	local d=$ZOO_TMP/criu-options o name bad=""
	mkdir -p "$d/img"
	for o in $CRIU_OPTIONS; do
		name=${o%%=*}
		run_stasis "$d/out" 30 dump "--$o" -t 2147480000 -D "$d/img"
		if ! clean_failure "$ZRC" || mentions "$d/out" 'unknown option|[Uu]sage' ||
			! mentions "$d/out" "(--$name|2147480000)"; then
			bad="$bad --$o (exit $ZRC: $(head -c 160 "$d/out" | tr '\n' ' '))"
		fi
	done
	if [ -n "$bad" ]; then
		result_fail cli/criu-options "not accepted nor refused by name:$bad"
	else
		result_ok "cli/criu-options ($(wc -w <<<"$CRIU_OPTIONS") options)"
	fi
}

# The local port of PID's TCP socket at fd FD (IPv4), from /proc/net/tcp
tcp4_port_of() {
	local ino _ local_addr inode
	ino=$(stat -L -c %i "/proc/$1/fd/$2") || return 1
	while read -r _ local_addr _ _ _ _ _ _ _ inode _; do
		[ "$inode" = "$ino" ] && { echo $((16#${local_addr#*:})); return 0; }
	done </proc/net/tcp
	return 1
}

syn_recv_on() { [ -n "$(ss -Htn state syn-recv "sport = :$1")" ]; }

# tcp-established --defer-long (TCP_DEFER_ACCEPT 60 on its listener, fd 60) with a client of
# this script's (bash's /dev/tcp) connected to the listener and silent: the kernel keeps the
# connection half made (SYN_RECV, a request of the listener's, no socket yet) until data comes,
# as nginx's `listen ... deferred` does for an idle client. The dump without --skip-in-flight
# is refused naming the listener and the connection, the program unharmed; with it the dump
# warns and goes through, the restored program PASSes, and the client's connection, which the
# listener forgot, is reset when it sends.
# syn_recv_target LABEL DIR: tcp-established --defer-long started in DIR (ZPID), a client's
# connection half made to its listener (SR_PORT, the client's fd SR_CLIENT); else LABEL fails, 1
syn_recv_target() {
	SR_PORT="" SR_CLIENT=""
	mkdir -p "$2/img"
	if ! zoo_start tcp-established "$2" --defer-long; then
		result_fail "$1" "$ZERR"
		return 1
	fi
	if ! SR_PORT=$(tcp4_port_of "$ZPID" 60) || ! exec {SR_CLIENT}<>"/dev/tcp/127.0.0.1/$SR_PORT" ||
		! wait_until 5 syn_recv_on "$SR_PORT"; then
		result_fail "$1" "no connection being set up for the listener (port ${SR_PORT:-?})"
		kill_ours "$ZPID"
		[ -z "$SR_CLIENT" ] || exec {SR_CLIENT}>&-
		return 1
	fi
}

case_tcp_syn_recv() {
	local label=dump/tcp-syn-recv d=$ZOO_TMP/tcp-syn-recv reply=""
	if syn_recv_target "$label" "$d"; then
		run_stasis "$d/dump.out" 60 dump -t "$ZPID" -D "$d/img" -o dump.log -v4 --tcp-established
		if ! clean_failure "$ZRC" || ! mentions "$d/dump.out" "$d/img/dump.log" \
			"dump pid $ZPID fd 60: TCP listener 127\.0\.0\.1:$SR_PORT has 1 connections being set up \(SYN_RECV\): pass --skip-in-flight"; then
			result_fail "$label" "not refused naming the listener and the connection (exit status $ZRC)"
			show_tail "$d/dump.out" "$d/img/dump.log"
			kill_ours "$ZPID"
			drop_net_lock "$ZPID"
		elif ! target_survives "$label" "$ZPID" "$d"; then
			result_fail "$label" "$ZERR"
		else
			result_ok "$label"
		fi
		exec {SR_CLIENT}>&-
	fi
	label=$label/skip-in-flight d=$d-skip
	syn_recv_target "$label" "$d" || return
	if dump_for_restore "$label" "$ZPID" "$d" --tcp-established --skip-in-flight; then
		if ! mentions "$d/dump.out" "$d/img/dump.log" \
			"1 connections being set up for TCP listener 127\.0\.0\.1:$SR_PORT are dropped \(--skip-in-flight\)"; then
			result_fail "$label" "the dump did not warn of the connection it dropped"
		fi
		RESTORE_OPTS=--tcp-established restores_and_passes "$label" "$d" "$ZPID"
		printf 'GET\n' 1>&"$SR_CLIENT" 2>/dev/null
		read -r -t 5 reply <&"$SR_CLIENT" 2>"$d/client.err"
		if grep -q "reset" "$d/client.err"; then
			result_ok "$label/client-reset"
		else
			result_fail "$label/client-reset" "the dropped connection was not reset (read: '$reply', $(cat "$d/client.err"))"
		fi
	fi
	exec {SR_CLIENT}>&-
}

# every case but the alloc-fail sweeps
# Connections from outside waiting in a listener's accept queue (tcp-accept-queue): refused
# without --tcp-established; taken and put back when the dump fails or leaves the tree running.
# Each time the program then accepts them all with every byte, and its outside clients saw no
# reset (its PASS).
tcp_accept_queue_cases() {
	case_tcp_syn_recv
	dump_fails_naming dump/tcp-waiting-without-option tcp-accept-queue \
		'dump pid PID fd 60: TCP listener 127\.0\.0\.1:[0-9]+ has 3 connections waiting to be accepted \(from 127\.0\.0\.1:[0-9]+, 127\.0\.0\.1:[0-9]+, 127\.0\.0\.1:[0-9]+\): pass --tcp-established'
	STASIS_FAULT=kernel-lacks:tcp_requeue DUMP_OPTS=--tcp-established dump_fails_naming \
		dump/tcp-waiting-kernel-lacks tcp-accept-queue \
		'dump pid PID fd 60: TCP listener 127\.0\.0\.1:[0-9]+ has 3 connections waiting to be accepted \(from .*\) needs TCP connections put back in an accept queue .*, which this kernel lacks'
	local p
	for p in after-collect after-images; do
		DUMP_OPTS=--tcp-established case_fault "$p" tcp-accept-queue
	done
	DUMP_OPTS=--tcp-established case_leave_running tcp-accept-queue
	DUMP_OPTS=--tcp-established dump_fails_naming dump/mptcp-connection tcp-mptcp \
		'dump pid PID fd 66: socket:\[[0-9]+\] is an MPTCP connection 127\.0\.0\.1:[0-9]+ -> 127\.0\.0\.1:[0-9]+ \(ESTABLISHED\): not supported, .*GODEBUG=multipathtcp=0' \
		--mptcp-client
	DUMP_OPTS=--tcp-established dump_fails_naming dump/mptcp-waiting tcp-mptcp \
		'dump pid PID fd 60: MPTCP listener 127\.0\.0\.1:[0-9]+ has connections waiting to be accepted: not supported' \
		--waiting
	DUMP_OPTS=--leave-running dump_fails_naming dump/udp-error-leave-running udp \
		'dump pid PID fd 71: UDP socket socket:\[[0-9]+\] has an error pending or in its error queue: .*--leave-running'
	DUMP_OPTS="--tcp-established --leave-running" dump_fails_naming dump/tcp-reset-leave-running \
		tcp-reset 'dump pid PID fd 70: a TCP socket with a pending error \(127\.0\.0\.1:[0-9]+ -> 127\.0\.0\.1:[0-9]+, .*--leave-running'
}

other_cases() {
	case_criu_options
	case_check
	case_no_such_pid
	mkdir -p "$ZOO_TMP/files"
	: >"$ZOO_TMP/files/a-regular-file"
	case_bad_dir nonexistent "$ZOO_TMP/files/does/not/exist"
	case_bad_dir regular-file "$ZOO_TMP/files/a-regular-file"
	case_bad_dir unwritable /proc/1/fdinfo
	for k in $UNSUPPORTED_KINDS; do
		case_unsupported "$k"
	done
	case_unsupported_in_child
	case_locks_without_option
	for how in file bind-own-ns; do
		case_hidden_file $how
	done
	case_idmapped_mount
	case_i386
	case_mapped_path_too_long
	case_unix_bound_in_chroot
	DUMP_OPTS=--manage-cgroups=ignore dump_fails_naming dump/cgroup-ns-ignored cgroup-ns-nested \
		'dump pid [0-9]+: it made a cgroup namespace of its own, .*--manage-cgroups=ignore saves none'
	DUMP_OPTS=--leave-running dump_fails_naming dump/unix-backlog-unread unix-backlog \
		'dump pid PID fd 70: .*waiting to be accepted with unread data: [0-9]+ bytes.*--leave-running'
	DUMP_OPTS=--tcp-established dump_fails_naming dump/tcp-urgent tcp-established \
		'dump pid PID fd 64: TCP connection .* an urgent byte \(MSG_OOB\) waits to be read out of band' --urgent
	DUMP_OPTS=--tcp-established dump_fails_naming dump/tcp-urgent-read tcp-established \
		'dump pid PID fd 64: TCP connection .* an urgent mark \(MSG_OOB\) is ahead in its receive queue' --urgent-read
	dump_fails_naming dump/unix-backlog-files-sent unix-backlog \
		'dump pid PID fd 70: .*connections waiting to be accepted whose clients sent 1 files \(SCM_RIGHTS\)' --files-sent
	dump_fails_naming dump/unix-inflight-pipe-alone unix-inflight \
		'dump pid PID fd 61: a message waiting in its unix socket carries pipe:\[[0-9]+\], and no process of the tree holds a pipe' --pipe-alone
	dump_fails_naming dump/epoll-of-thread-pidfd pidfd-thread \
		'dump pid PID fd 70: an epoll watching fd 60, a pidfd of thread [0-9]+ \(not supported yet\)' --epoll
	dump_fails_naming dump/unix-oob unix-peer-closed \
		'dump pid PID fd 67: unix socket socket:\[[0-9]+\]: urgent data \(MSG_OOB\) waits' --oob
	dump_fails_naming dump/unix-seqpacket-reset-data unix-peer-closed \
		'dump pid PID fd 63: unix socket socket:\[[0-9]+\]: an error \(ECONNRESET\) waits to be read before its data' --reset-data
	dump_fails_naming dump/ext-stream-without-option ext-unix \
		'dump pid PID fd 88: unix socket socket:\[[0-9]+\] is connected .*outside the tree \(pass --ext-unix-sk'
	dump_fails_naming dump/syscall-dispatch-blocking syscall-dispatch \
		'dump tid PID: its syscall user dispatch \(PR_SET_SYSCALL_USER_DISPATCH\) sends system calls to its SIGSYS handler now \(selector 0x[0-9a-f]+: block\)' \
		--spin-blocked
	# (the pre-dump's syscalls too: they went to the program's handler, which it died of)
	DUMP_VERB=pre-dump dump_fails_naming pre-dump/syscall-dispatch-blocking syscall-dispatch \
		'dump tid PID: its syscall user dispatch \(PR_SET_SYSCALL_USER_DISPATCH\) sends system calls to its SIGSYS handler now \(selector 0x[0-9a-f]+: block\)' \
		--spin-blocked
	dump_fails_naming dump/uprobes-without-option uprobes \
		'dump pid PID: it has hit uprobes \(the kernel.s \[uprobes\] area at 0x[0-9a-f]+\): its code holds their breakpoints; --allow-uprobes dumps it without them'
	dump_fails_naming dump/seccomp-listener seccomp-stack \
		'dump pid PID: its seccomp filter 3 of 3 can hand system calls to a user-notification listener, and pid [0-9]+ fd [0-9]+ is one' \
		--notify-listener
	DUMP_OPTS="--ghost-limit 50000" dump_fails_naming dump/ghost-over-limit ghost-sparse \
		'dump pid PID (fd 30|mapping 0x[0-9a-f]+-0x[0-9a-f]+): deleted file .*/sparse holds 77824 bytes of data, more than the ghost limit of 50000'
	dump_fails_naming dump/packet-ring-partial packet-ring \
		'dump pid PID: mapping 0x[0-9a-f]+-0x[0-9a-f]+ maps [0-9]+ bytes at offset 0 of the rings of packet socket socket:\[[0-9]+\]' \
		--partial
	dump_fails_naming dump/shared-files shared-tables \
		'dump pid [0-9]+: it shares its fd table with pid PID, but its parent pid [0-9]+ does not hold that table'
	dump_fails_naming dump/shared-vm shared-tables \
		'dump pid [0-9]+: it shares its memory with pid [0-9]+ \(clone with CLONE_VM' --vm
	dump_fails_naming dump/shared-fs shared-tables \
		'dump pid [0-9]+: it shares its cwd, root and umask with pid [0-9]+ \(clone with CLONE_FS' --fs
	dump_fails_naming dump/vfork-pending shared-tables \
		'pid [0-9]+ is in vfork\(\), waiting for its child [0-9]+ to exec or exit' --vfork
	case_io_uring_probe_killed
	dump_fails_naming dump/io_uring-ring-fd-closed io-uring-ring-fds \
		'dump pid PID thread [0-9]+: the io_uring instance it registered with itself at index 7 \(IORING_REGISTER_RING_FDS\) is held by no fd of the process' \
		--closed
	dump_fails_naming dump/thread-fd-table shared-tables \
		"dump pid PID: its thread [0-9]+ has an fd table of its own, whose fd 91 \\(/dev/null\\) the process's table does not hold" --thread
	dump_fails_naming dump/nested-ns-not-inherited nested-ns \
		'dump pid [0-9]+: it is in mnt namespace mnt:\[[0-9]+\], made by pid [0-9]+, but its parent is not' \
		--setns-sibling
	dump_fails_naming dump/mapped-file-hidden mem-nested-mnt \
		'dump pid [0-9]+: mapped file /.*/under/file is hidden: its path now leads to another file or to none' \
		--hidden
	dump_fails_naming dump/nested-mnt-chrooted mount-ns-pivot \
		'dump pid [0-9]+: its root is not the root of its mount namespace mnt:\[[0-9]+\] \(a chroot' \
		--chroot
	dump_fails_naming dump/nested-mnt-removed-file-big mount-ns-pivot \
		'dump pid [0-9]+: mount /etc/data binds /datafile//deleted, a file of 2097152 bytes removed since: only files of up to 1048576 bytes are kept' \
		--big-data
	dump_fails_naming dump/nested-mnt-covered-tmpfs mount-ns-pivot \
		'dump pid [0-9]+: tmpfs /cov2 \(mount [0-9]+\) is covered by another mount: its files cannot be read' \
		--covered-tmpfs
	dump_fails_naming dump/nested-ipc-objects ipc-ns-nested \
		"dump pid [0-9]+: its IPC namespace ipc:\\[[0-9]+\\], made below the tree's, holds 1 SysV shared memory segments and 0 POSIX message queues" \
		--with-shm
	dump_fails_naming dump/nested-ipc-sem-undo ipc-ns-nested \
		"dump pid [0-9]+: it holds SEM_UNDO adjustments on semaphores of its IPC namespace ipc:\\[[0-9]+\\], made below the tree's" \
		--with-undo
	dump_fails_naming dump/nested-mount-fifo mem-nested-mnt \
		'dump pid [0-9]+ fd 61: named pipe /.*/mnt/fifo is on a mount of the mount namespace the process is in' \
		--fifo
	dump_fails_naming dump/nested-mount-socket mem-nested-mnt \
		'dump pid [0-9]+ fd 62: unix socket socket:\[[0-9]+\] is bound to /.*/mnt/sock, on a mount of the mount namespace the process is in' \
		--bound-socket
	dump_fails_naming dump/detached-removed detached-mounts \
		'dump pid [0-9]+ fd 30: /data \(deleted\), removed, is on a detached mount \([0-9]+\): not supported' \
		--removed
	dump_fails_naming dump/detached-ramfs detached-mounts \
		'dump pid [0-9]+ fd 36: /file is on a detached mount \([0-9]+; umount -l, open_tree or fsmount\) of a filesystem that no mount of its namespace shows' \
		--ramfs
	DUMP_OPTS="--ghost-limit 1000000" dump_fails_naming dump/detached-big detached-mounts \
		'dump pid [0-9]+ fd 3[16]: the detached tmpfs it is on holds more than stasis keeps of one \(65536 files, or more data than the ghost limit of 1000000 bytes' \
		--big
	case_ext_stream_no_inherit_fd
	case_external_tty
	case_shell_job_foreground
	case_sigchld_ignored
	case_root_slash
	case_masterless_pty
	case_tracer_of_outside
	case_process_keyring
	case_mapped_file_times
	STASIS_FAULT=kernel-lacks:get_rseq_conf dump_fails_naming dump/kernel-lacks-rseq-conf rseq \
		'dump: this kernel lacks PTRACE_GET_RSEQ_CONFIGURATION: .*rseq.*nothing was frozen'
	case_restore_kernel_lacks
	case_restore_kernel_lacks_memfd_secret
	case_restore_fault_tree
	case_restore_fault_finish_threads
	case_restore_fault_finish_pidns
	for p in $FAULT_POINTS; do
		for t in $FAULT_TARGETS; do
			case_fault "$p" "$t"
		done
	done
	for t in $LEAVE_TARGETS; do
		case_leave_running "$t"
	done
	case_fault after-collect memfd-secret
	# (its connections read in repair mode: out of it again, with SO_REUSEADDR as it was)
	DUMP_OPTS=--tcp-established case_fault after-images tcp-established
	DUMP_OPTS=--tcp-established case_leave_running tcp-established
	for p in secret-map-copied secret-fd-copied; do
		STASIS_FAULT=$p dump_fails_naming dump/fault/$p memfd-secret \
			"dump pid PID: (memfd_secret\\(\\) mapping 0x[0-9a-f]+-0x[0-9a-f]+|fd 41 \\(a memfd_secret\\(\\) file\\)): injected failure $p"
	done
	dump_fails_naming dump/secret-in-flight memfd-secret \
		'dump: a memfd_secret\(\) file that no fd of the tree holds \(carried in flight in a unix socket message\)' \
		--in-flight
	case_stopped_meanwhile stopped-meanwhile
	case_stopped_meanwhile stopped-meanwhile-fault after-collect
	tcp_accept_queue_cases
	case_corrupt_images
	case_restore_linked_file_gone
	case_restore_hung_pty_index_taken
	case_restore_proc_sent_up
	case_restore_hugetlb_pool
	case_restore_lsm_profile
	case_restore_proc_dead_taken
	case_restore_id_held
	case_ipc_ns_split
	case_ipc_ns_images
	case_join_ns
	case_engine_pid_ns
	case_kill_apart_dies
	dump_fails_naming dump/time-ns-outside-maker time-ns-nested \
		'dump pid [0-9]+: it is in time namespace time:\[[0-9]+\], where pid [0-9]+ sends its children from time:\[[0-9]+\], but it is not a descendant of pid [0-9]+' \
		--outside
	dump_fails_naming dump/time-ns-fd-unreachable time-ns-nested \
		'dump pid PID fd [0-9]+: time:\[[0-9]+\] is a namespace the process is not in' --root-holds-t2
	case_time_ns_images
	dump_fails_naming dump/ns-file-alone ns-files-tree \
		'dump pid [0-9]+ fd 64: uts:\[[0-9]+\] is a namespace the process is not in, nor any process of the tree' --alone
	case_ns_files_images
	case_userns_nested
	case_exec_stranger
	case_unix_client_outside
	DUMP_OPTS=--tcp-established dump_fails_naming dump/netns-inet-held-outside netns-inet \
		'dump pid [0-9]+ fd (50|61): a socket of family 2 made in network namespace net:\[[0-9]+\], the one pid [0-9]+ made, is held by pid [0-9]+, of another namespace, too: a socket held by several processes comes back in the tree.s namespace' \
		--held-outside
	case_netns_maker_images
	case_netns_veth_images
	case_netns_mounted_images
	dump_fails_naming dump/netns-mounted-host netns-mounted \
		'dump pid [0-9]+: mount .*/netns/host binds stasis.s own network namespace net:\[[0-9]+\]: not supported' \
		--bind-host
	dump_fails_naming dump/netns-mounted-ipc netns-mounted \
		'dump pid [0-9]+: mount .*/netns/ipc binds namespace ipc:\[[0-9]+\]: of namespaces. files only network namespaces. are kept' \
		--bind-ipc
	dump_fails_naming dump/netns-nested-abstract netns-private \
		'dump pid [0-9]+ fd 59: unix socket socket:\[[0-9]+\] is bound to abstract name @stasis-zoo-nested-[0-9]+ in a network namespace a process of the tree made' \
		--abstract
	dump_fails_naming dump/netns-nested-vxlan netns-private \
		'dump pid [0-9]+: the network namespace it made, net:\[[0-9]+\], cannot be saved' \
		--vxlan
	case_userns_images
	case_restore_bad_dirs
}

# ---------------------------------------------------------------------------------------
[ -n "${ALLOC_ONLY:-}" ] || other_cases
for t in $ALLOC_DUMP_TARGETS; do
	case_alloc_dump "$t"
done
for t in $ALLOC_RESTORE_TARGETS; do
	case_alloc_restore "$t"
done
summary
