#!/bin/bash
# Real programs, started the way users start them, checkpointed and restored by stasis; each
# is checked through its own interface after the restore.
#
#   tmux    a tmux server (private socket) with a window running a shell loop that prints
#           "tick N" every 0.1 s and a window running cat, a user option set: dump the server's
#           whole tree, restore it; the server answers on its socket, the option is there, the
#           pane holds every tick from 1 on exactly once and in order, the loop goes on where it
#           was (no restart from 1), and keys sent to cat come back through its pty.
#   redis   redis-server on a unix socket only (epoll, pipes, threads, jemalloc) holding a
#           string, a counter and a 100-element list: after restore the same server (pid) answers
#           on its socket with the same data, the counter goes on, and a BGSAVE (a fork of the
#           restored server writing its whole memory) succeeds.
#   dbus    a dbus-daemon session bus on a unix socket (epoll, inotify on its config dirs, an
#           audit netlink socket): after restore the same bus answers GetId with the same id and
#           lists its own name.
#   tail-F  coreutils' tail -F (inotify on the file and its directory; polling only every 60 s)
#           following a log: after restore, a line appended and a rotation (mv, new file) are
#           followed at once: its output is exactly the three lines, in order.
#   bwrap   a bubblewrap sandbox (a root of its own made by pivot_root: /usr bound read-only,
#           its own /proc, /dev and /tmp, a host directory bound, --ro-bind-data and --file
#           files removed once bound; PID, IPC, UTS, net and cgroup namespaces of its own, a session
#           of its own) running a shell loop that counts in its /tmp and checks its files, host
#           name and /dev/null every 0.1 s: after restore the count goes on (every tick once, in
#           order) and every check holds.
#   runc-run  a container run in the foreground by `runc run` (busybox counting into a host
#           directory bound at /out, runc spec's namespaces: a root of its own by pivot_root, its
#           own /proc, /dev, /dev/pts, /dev/mqueue, masked and read-only paths; PID, IPC, UTS,
#           network and cgroup namespaces; its cgroups): the tree of runc and the container
#           dumped and restored; the count goes on, every number once, and runc ends with its
#           container.
#   firejail  a firejail sandbox (--noprofile --seccomp --caps.drop=all --private-dev
#           --nonewprivs --hostname: its own mount and PID namespaces) running a shell that
#           counts into a host file while its host name and private /dev hold: dumped and
#           restored with --file-locks; the count goes on, every number once.
#   postgres  PostgreSQL 15 (postmaster, checkpointer, background writer, WAL writer,
#           autovacuum, a backend: SysV and shared anonymous memory, semaphores, latches, epoll)
#           on TCP 127.0.0.1, with psql connected from outside the tree in an open transaction
#           that inserted a row: dumped and restored with --tcp-established; the same psql
#           session still sees its row, commits, and a new connection (a backend the restored
#           postmaster forks) counts every row and runs a CHECKPOINT.
#   postgres-huge  the same with huge_pages=on (the pool grown for it): its shared memory is
#           MAP_SHARED|MAP_HUGETLB, and after the restore the postmaster's is still of 2 MiB
#           pages (smaps), shared with the backend the new connection gets.
#   nginx   nginx (a master, 2 workers: epoll, accept mutex, shared memory) on 127.0.0.1 with a
#           keep-alive client outside the tree (tests/apps/keepalive.py) that fetched a page:
#           dumped and restored with --tcp-established; the client's same connection fetches a
#           100,000-line file (every byte checked), new connections are answered, and a reload
#           (SIGHUP: new workers) works.
#   memcached  memcached with 4 threads (libevent) on 127.0.0.1, a client outside the tree
#           connected, a key and a counter stored: dumped and restored with
#           --tcp-established; the same connection reads the key and increments the counter.
#   python-pool  python3's multiprocessing.Pool started the forkserver way (Python 3.14's default;
#           tests/apps/pool.py: 4 workers, the fork server, pipes, semaphores, threads, a shared
#           Value in multiprocessing's heap) checkpointed mid-run: its progress lines go on from
#           where they were, each once and in order, and it checks its own final sum and the
#           workers' shared count (PASS).
#   jvm     OpenJDK 17 (java -Xmx512m, G1) running tests/apps/JvmApp.java (compiled with javac
#           into the case's directory; its header says it all): 100 MiB of int arrays and a
#           HashMap of known values, a fixed pool of 4 threads fed small tasks, a JIT-hot loop, a
#           file mapped MAP_SHARED (MappedByteBuffer) written with a pattern, a child (cat)
#           answering through pipes, and a ServerSocket on 127.0.0.1 with a keep-alive client
#           outside the tree (keepalive.py) that fetched /mark: the tree (java and cat) dumped
#           and restored with --tcp-established; the client's same connection fetches /mark again
#           (its body "request 2 on connection 1", status 200: heap, map and mapping checked by
#           the program), a new connection is answered, the test writes RESTORED into the file;
#           then SIGTERM: the program's shutdown hook finds the heap, the map and the mapping
#           intact, RESTORED seen through the mapping, every pool thread, the JIT loop and the
#           cat round trips gone on after the restore with no wrong result, System.gc()
#           collecting and 256 MiB more kept and 1 GiB churned (collections counted): PASS; the
#           VERIFIED it wrote through the mapping is in the file.
#   node    Node.js (/usr/bin/node) running tests/apps/node-app.js: a child forked with its IPC
#           channel (a unix socketpair) pinged every 50 ms, a worker_threads Worker adding to a
#           SharedArrayBuffer with Atomics, two setInterval timers, an http server on 127.0.0.1
#           with no keep-alive timeout and a keep-alive client outside the tree (keepalive.py)
#           that fetched /mark: the tree (node and its child) dumped and restored with
#           --tcp-established; the client's same connection fetches /mark again (an IPC round
#           trip inside: status 200, body "request 2 on connection 1"), a new connection is
#           answered; SIGTERM: the program finds the timers, the pings and the child's answers,
#           the child's own ticks and the worker's counter gone on after the restore, no ping
#           lost, one more IPC round trip: PASS.
#   valgrind  valgrind's memcheck (its own fds just below the hard fd limit, its shadow memory,
#           its heap bookkeeping) running tests/apps/vg-target.c, which leaked 1000 bytes and
#           freed half of its 64 blocks before the dump: after the restore and SIGTERM the
#           program finds its heap intact and its counter gone on (PASS), then reads a byte
#           past a live block and one in a freed block: valgrind's log must name both reads,
#           with the blocks' sizes, and the leak.
#   go      a Go program (tests/apps/go-app.go, built with the go tool into the case's directory;
#           its header says it all: the runtime's threads, signal preemption, netpoller and
#           collector, 64 MiB of heap and a map, 4 goroutines chaining SHA-256, a ticker, an
#           AfterFunc chain, a cat child through pipes, an http server) with a keep-alive client
#           outside the tree (keepalive.py) that fetched /mark: the tree (the program and cat)
#           dumped and restored with --tcp-established; the same connection fetches /mark again
#           (heap and map checked: status 200, "request 2 on connection 1"), a new connection is
#           answered; SIGTERM: the workers, the ticker, the AfterFunc chain and the round trips
#           with cat went on with no wrong result, the heap and map are intact, and the collector
#           runs with 256 MiB more kept and 1 GiB churned: PASS.
#   sshd    OpenSSH's sshd -D (private config, host key and authorized key, on 127.0.0.1) with
#           an ssh -tt session from outside the tree running a shell loop on its pty, and a
#           login held in preauth (its client's bytes held back after its banner: the
#           privilege-separated child, seccomp sandbox and chroot to /run/sshd, waiting in the
#           key exchange): the tree dumped and restored with --tcp-established; the session
#           answers commands typed into it before and after, the held login completes, and a
#           new login works.
#   haproxy haproxy -Ws (master and worker, 2 threads) in front of a python3 http.server outside
#           the tree and of a frontend of its own (its idle server connection kept), a stats
#           socket it binds to a temporary name and renames: a keep-alive client outside the
#           tree (keepalive.py) fetched a page through each; dumped and restored with
#           --tcp-established: the same connection fetches both again and a 20,000-line file
#           (every byte checked), and the stats socket answers "show info" with the worker's pid.
#   erlang  an Erlang/OTP node (erl -noshell, no distribution: beam.smp's schedulers, poll
#           thread and timers, erl_child_setup) running tests/apps/erlapp.erl (compiled with erlc
#           into the case's directory; its header says it all): a gen_server owning an ETS table
#           of 100,000 entries and a counter a ticker process bumps every 5 ms, a cat port
#           program answering round trips, 4 worker processes, a gen_tcp HTTP server on
#           127.0.0.1 with a keep-alive client outside the tree (keepalive.py) that fetched
#           /mark: the tree (beam.smp, erl_child_setup, cat) dumped and restored with
#           --tcp-established; the same connection fetches /mark again (the table checked),
#           a new connection is answered; SIGTERM (through erl_signal_server): the ticks, the
#           workers and the cat round trips went on, the table is intact, every process garbage
#           collected with 256 MiB kept and 1 GiB churned: PASS.
#   ruby    CRuby running tests/apps/ruby-app.rb (its header says it all: a Hash of 500,000
#           entries, a Fiber resumed by a ticker thread, 3 worker threads, a cat child through
#           IO.popen, a TCPServer with a thread per connection) with a keep-alive client outside
#           the tree (keepalive.py) that fetched /mark: the tree (ruby and cat) dumped and
#           restored with --tcp-established; the same connection fetches /mark again (the Hash
#           checked), a new connection is answered; SIGTERM: the Fiber's values, the workers and
#           the cat round trips went on with no wrong result, the Hash is intact, GC.start and
#           GC.compact with 256 MiB more kept and 1 GiB churned: PASS.
#   sbcl    SBCL (sbcl --script, 2 GiB dynamic space) running tests/apps/sbcl-app.lisp (its
#           header says it all: a hash table of 1,000,000 entries and a vector of old conses a
#           thread keeps re-pointing (the collector's write barrier on old pages), a ticker, 2
#           worker threads, a cat child through run-program streams, an sb-bsd-sockets server
#           with a thread per connection) with a keep-alive client outside the tree
#           (keepalive.py) that fetched /mark: the tree (sbcl and cat) dumped and restored with
#           --tcp-established; the same connection fetches /mark again (table and conses
#           checked), a new connection is answered; SIGTERM: the ticker, the writer, the workers
#           and the cat round trips went on with no wrong result, (sb-ext:gc :full t) with
#           256 MiB more kept and 1 GiB churned, table and conses intact after it: PASS.
#   ghc     a Haskell program on GHC's threaded RTS (tests/apps/ghc-app.hs, built with ghc
#           -threaded into the case's directory, run with +RTS -N2; its header says it all: a
#           Data.Map of 100,000 entries in an MVar, IORef counters, forkIO ticker and workers, a
#           cat child through System.Process pipes, a Network.Socket server with a thread per
#           connection) with a keep-alive client outside the tree (keepalive.py) that fetched
#           /mark: the tree (the program and cat) dumped and restored with --tcp-established;
#           the same connection fetches /mark again (the map checked), a new connection is
#           answered; SIGTERM: the ticker, the workers and the cat round trips went on with no
#           wrong result, performMajorGC with 256 MiB more kept and 1 GiB churned, the map
#           intact: PASS. Not run by default: ghc is a large package (apt-get install ghc
#           libghc-network-dev; make setup does not).
#   chromium  Chromium headless (/usr/lib/chromium/chromium --headless=new, as root so
#           --no-sandbox; a private profile) with a page whose setInterval counts every 100 ms and
#           that holds a mark set from outside: its whole tree (the browser, both zygotes, the
#           GPU process, the storage service, the renderers forked by a zygote, V8's 32 GiB
#           PROT_NONE cages shared copy-on-write, memfds, seqpacket pairs, file locks on the
#           profile) dumped and restored with --tcp-established --file-locks; over the DevTools
#           protocol (tests/apps/cdp.py: HTTP and a websocket) the same page keeps its mark, its
#           counter goes on from where it was and keeps counting, and a new tab (a renderer the
#           restored zygote forks) evaluates 6*7. Started with --disable-crashpad-for-testing
#           (the crash handler is a daemon of its own session, connected to every process:
#           outside the tree) and NetworkServiceInProcess2 (out of process, the network service
#           crash-looped here with "FD ownership violation" without any checkpoint). Not run by
#           default: chromium is a large package (apt-get install chromium; make setup does not
#           install it); about 15 s. With its sandbox on (not root) the renderers are in user,
#           PID and network namespaces nested in the tree's: refused at dump.
#   firefox  Firefox ESR headless with Marionette (a private profile, its port in user.js) under
#           tests/tools/bin/subreaper as its root (its crash helper double-forks into a session
#           of its own, connected to every process by a seqpacket pair: under the subreaper it
#           stays in the tree), sandboxes off by their MOZ_DISABLE_*_SANDBOX variables (its
#           content processes are in user and network namespaces of their own otherwise:
#           refused at dump), showing a file page whose setInterval counts in its title and
#           that holds a mark set from outside: the whole tree (the fork server, the socket,
#           RDD and content processes) dumped and restored with --tcp-established --file-locks;
#           over Marionette (tests/apps/marionette.py) the page keeps its mark, its counter goes
#           on and keeps counting, and a new tab loads the page (a content process the restored
#           tree makes) and evaluates 6*7. Not run by default: firefox-esr is a large package
#           (apt-get install firefox-esr); about 30 s.
#   libreoffice  soffice --headless --accept on 127.0.0.1 (oosplash and soffice.bin, a private
#           HOME) with a Writer document made and edited over UNO (tests/apps/lo-client.py,
#           python3-uno), unsaved: dumped and restored with --tcp-established --file-locks; a new
#           UNO connection finds the document with its text, still modified, and a second
#           document is made. Not run by default: LibreOffice is a large package (apt-get install
#           --no-install-recommends libreoffice-writer-nogui python3-uno); about 10 s.
#   rsyslog rsyslogd -n (private config: imuxsock on a unix socket, imtcp and imudp on
#           127.0.0.1, omfile to a file, omfwd over TCP to a target that is down: a LinkedList
#           action queue holding every message, retried every second) with a connection of the
#           test's shell open on imtcp; 54 messages through each input before the dump: dumped and
#           restored with --tcp-established; the same connection, the unix socket, TCP and UDP
#           each get a message through after the restore, the file holds each of the 58 once, and
#           once the forwarding target listens, the queue (the 54 held since before the dump) and
#           the messages after are forwarded. Not run by default (apt-get install rsyslog; make
#           setup does not); about 10 s.
#   slapd   OpenLDAP's slapd -d 0 (private slapd.conf, an mdb database in the case's directory,
#           the syncprov overlay) on 127.0.0.1 holding 200 entries added over LDAP, with a
#           persistent search from outside the tree (ldapsearch -E sync=rp: its connection stays
#           open and gets each change): dumped and restored with --tcp-established --file-locks
#           (mdb's lock file); the 200 entries are found, the persistent search's connection gets
#           an entry added and one changed after the restore, slapd ends on SIGTERM, and a fresh
#           slapd on the database finds 201 entries with the change. Not run by default (apt-get
#           install slapd ldap-utils; make setup does not); about 6 s.
#   dovecot dovecot -F (private config: IMAP on 127.0.0.1, plaintext logins from a passwd-file,
#           maildirs in the case's directory for user nobody: the master, anvil, log, config,
#           stats, auth and imap processes) with a logged-in IMAP session from outside the tree
#           (tests/apps/imap-client.py: INBOX selected, a mail appended) served by its imap
#           process, in IDLE (the imap process watches the maildir with inotify): dumped and
#           restored with --tcp-established; a mail a new session appends after the restore is
#           told to the idling session at once (dovecot's own polling would take 30 s), which
#           then lists the four mails, fetches one's body, appends one more and logs out; a
#           connection held before its login (by its imap-login process, as dovenull, chrooted)
#           logs in and selects INBOX (auth, the master's new imap process); dovecot ends on
#           SIGTERM with all its processes. Not run by default (apt-get install dovecot-imapd; make setup does not);
#           about 6 s.
#   qemu    qemu-system-x86_64 -accel tcg,thread=multi -smp 2 (a thread per vCPU, its main loop,
#           RCU and worker threads, the translated code buffer, SeaBIOS) booting
#           tests/apps/qemu-guest.S (a boot sector built with as and ld that prints "tick N" on
#           the serial port, to a file, about 9 times a second; the second vCPU waits for its
#           SIPI), from a disk image it locks, with QMP on 127.0.0.1 connected from the test's
#           shell: dumped and restored with --tcp-established --file-locks; the same QMP
#           connection answers query-status (running), the ticks go on from where they were
#           (each once, in order: no reboot), stop holds them and cont lets them go on,
#           system_reset reboots the guest (it counts from 1 again), and quit ends qemu. Not run
#           by default (apt-get install --no-install-recommends qemu-system-x86; make setup does
#           not); about 10 s.
#   samba   smbd --foreground (private smb.conf: a standalone server, a guest share in the case's
#           directory, on 127.0.0.1 only; tdb files mapped and fcntl-locked, a unix datagram
#           messaging socket per process) with smbd-notifyd, cleanupd and two sessions from
#           outside the tree (smbclient reading a FIFO): one holds a file open, the other waits
#           for change notifications on the share's root: dumped and restored with
#           --tcp-established --file-locks; every process answers smbcontrol's ping, smbstatus
#           names the same process as the file's opener, the held session reads it, writes a new
#           file, closes it and lists the share, the other session is told of the new file and of
#           one made on the disk (smbd-notifyd's inotify), a new session reads the new file, and
#           smbd ends on SIGTERM with all its processes. Not run by default (apt-get install samba
#           smbclient; make setup does not); about 14 s.
#   etcd    a single-member etcd 3.4 (Go: its raft loop, a WAL and a bbolt database mapped and
#           flocked, in the case's directory; clients and peers on 127.0.0.1) holding 100 keys,
#           with an etcdctl watch from outside the tree (a gRPC stream on one connection): dumped
#           and restored with --tcp-established --file-locks; endpoint status gives the same
#           revision, raft term and raft index (a restarted member elects itself in a new term),
#           a put after the restore adds one revision and one entry in the same term and reaches
#           the watch on its same connection, the 100 keys are there, a compaction and a
#           defragmentation (the database rewritten and mapped again) keep them, and etcd ends on
#           SIGTERM. Not run by default (apt-get install etcd-server etcd-client; make setup does
#           not); about 10 s.
#   rabbitmq  RabbitMQ 3.10 (/usr/lib/rabbitmq/bin/rabbitmq-server as root with a private
#           environment: its mnesia and message store in the case's directory, AMQP and the Erlang
#           distribution on 127.0.0.1) with its own epmd started in the tree (on a private port:
#           the node's registration is a connection inside the tree), beam.smp and erl_child_setup;
#           a durable queue of 100 persistent messages and a consumer outside the tree
#           (tests/apps/amqp-client.py, python3-pika) that got a message on its connection:
#           dumped and restored with --tcp-established --file-locks; rabbitmqctl (distribution
#           through the restored epmd) finds the same node (OS PID) and queues, the consumer's
#           same connection gets a message published after the restore, the 100 messages come
#           back in order, and rabbitmqctl stop stops the node. Not run by default (apt-get install
#           rabbitmq-server python3-pika; make setup does not); about 45 s (the node's start).
#   mariadb  MariaDB 10.11 (mariadbd as root dropping to mysql, its datadir in the case's
#           directory, TCP on 127.0.0.1), as installed: InnoDB does its I/O through io_uring
#           (liburing, a ring of 2048 entries). A table of 1000 rows and a client
#           outside the tree in an open transaction that inserted a row: dumped and restored with
#           --tcp-established --file-locks (Aria's control file is locked); the same session
#           still counts its row, commits, and a new connection inserts and counts 1002. Not run
#           by default (apt-get install mariadb-server; make setup does not); about 12 s.
#   prometheus  Prometheus 2.42 (Go; its TSDB's head, WAL and mapped chunks in the case's
#           directory) scraping itself every second over TCP on 127.0.0.1 (connections inside
#           the tree): dumped and restored with --tcp-established; the same process (pid) keeps
#           the samples of up taken before and adds 3 more, then stops cleanly on SIGTERM. (Its
#           process_start_time_seconds, read from /proc, says the restore's time: the kernel's
#           start time of a task cannot be set.) Not run by default (apt-get install prometheus; make setup does not);
#           about 10 s.
#   fio     fio 3.33 with two jobs, each writing 2 MiB in random 4 KiB blocks through its io_uring
#           (4 entries, IORING_SETUP_SINGLE_ISSUER: what is registered with it is asked inside its
#           submitter): w in a job process of its own, t a thread of fio's (thread=1: its ring's
#           submitter is not the main thread, as in thread-per-core programs). Their buffers
#           registered (fixedbufs=1: READ_FIXED and WRITE_FIXED) and their files (registerfiles=1);
#           4 in flight at most, 100 a second each, then each block read back and its crc32c
#           checked (verify). Dumped while writing (writes in flight at the dump are waited for
#           inside the process, at most 100 ms: no retry), restored; fio ends by itself with
#           err=0 for both jobs, every block written and verified. About 9 s.
#   pulseaudio  PulseAudio 16 (a null sink, the native protocol on a unix socket of the case's
#           directory) with pacat playing a tone into the sink and parec recording its monitor,
#           the three started by tests/apps/pulse-tree.py, the tree's root. Client and server
#           share their audio through memfd rings passed over the socket (SCM_RIGHTS) and mapped
#           with no fd left, woken through eventfds. The tone is a counter (each frame says which
#           it is): after the restore the server lists the same clients and streams (indexes),
#           the recording goes on 2 s more, and every frame recorded is silence or the counter,
#           never going back, at least 2 s of it in a row after the last gap (the dump's window
#           is silence, and PulseAudio skips what its underrun cost). Not run by default
#           (apt-get install pulseaudio pulseaudio-utils; make setup does not); about 8 s.
#   openvpn  an OpenVPN 2.6 client (static key, UDP) in a network namespace that is the
#           engine's (the test's: --external net on dump, as Docker's and Podman's), its tun0 with
#           10.8.77.2 peer 10.8.77.1 and a pushed route 10.8.78.0/24 via the tunnel, talking to a
#           server outside the tree in another namespace (a veth between them): pings go through
#           the tunnel; dumped, its namespace deleted, a new one made with the veth (as an engine
#           makes one), restored into it (--join-ns): the same client (pid, one "Initialization
#           Sequence Completed" in its log) has tun0 with its address and route there again, and
#           pings to 10.8.77.1 and to the server's side of 10.8.78.0/24 go through the tunnel
#           (the server logs no replay or decryption error).
#   dnsmasq  dnsmasq daemonized as users run it (a double fork: its session's leader gone), a DNS
#           cache on 127.0.0.1 (UDP and TCP), --hostsdir watched with inotify, a TCP client
#           outside the tree (keepalive.py) whose connection dnsmasq's forked child serves: dumped
#           and restored with --tcp-established; the child answers on the same connection, UDP and
#           TCP queries are answered, the cache's hit counter (hits.bind) goes on, and a hosts
#           file added to the directory after the restore is served.
#   unbound  unbound (2 threads, daemonized) with local data on 127.0.0.1 and its control
#           socket on a unix path, a record added at run time through unbound-control: after
#           the restore unbound-control status names the same pid, both records are served and
#           the query counter (stats_noreset) goes on exactly.
#   screen  a detached GNU screen session (private SCREENDIR) logging a window whose shell loop
#           prints "tick N" every 0.1 s, and a window with an interactive shell holding a variable:
#           the server's tree dumped and restored; the log holds every tick from 1 on once and in
#           order and the loop went on, and input sent with -X stuff reaches the shell, which still
#           has its variable (hardcopy).
#   php-fpm  php-fpm daemonized (a master, 2 static workers: a shared-memory scoreboard, OPcache
#           in shared memory) on 127.0.0.1, a FastCGI client outside the tree (keepalive.py) on a
#           connection the worker keeps (FCGI_KEEP_CONN): dumped and restored with
#           --tcp-established --file-locks; the same worker answers on the same connection with OPcache's hit
#           count gone on; two slow requests, one in the other worker (which holds OPcache's lock:
#           --file-locks) and one in the listener's accept queue, are answered; new connections
#           are served by the same two workers.
#   postfix  a private Postfix instance (its own config and queue directories, the master
#           started as postfix start starts it) on 127.0.0.1: master, pickup and qmgr woken
#           through FIFOs, cleanup, trivial-rewrite, local, postlogd (its log through a unix
#           datagram socket) and an smtpd child holding an SMTP session from outside the tree
#           (keepalive.py) stopped in the middle of its message's text (EHLO, MAIL, RCPT, DATA,
#           half the text: cleanup writing the queue file); a mail put on hold by a header check
#           queued before: dumped and restored with --tcp-established --file-locks; the session
#           sends the rest of the text and QUIT (250, 221), the mail holds both halves,
#           the held mail released (postsuper -H, postqueue -f: flush wakes qmgr) is delivered,
#           a mail through sendmail (pickup) and one through a new SMTP session are delivered:
#           the mailbox holds each of the five mails once, and postfix status names the same
#           master.
#   named   BIND 9's named -f -n 2 -u bind (capabilities kept after the switch to user bind),
#           authoritative for a private zone on 127.0.0.1 with allow-update, its rndc control
#           channel on another port: a record added by a dynamic update (nsupdate: in its journal
#           and memory) and a TCP connection from outside the tree (keepalive.py) that asked a
#           query, dumped and restored with --tcp-established; the same connection gets the
#           updated record, a second update is applied and served over TCP, rndc status says
#           running with the same boot time, the capabilities are the same, and rndc stop ends it.
#   mosquitto  the Mosquitto MQTT broker (as user mosquitto) on 127.0.0.1 holding a retained
#           message and a QoS 1 message queued for an offline persistent session, with a
#           subscriber outside the tree connected (mosquitto_sub) that got one message: dumped
#           and restored with --tcp-established; the subscriber gets the message published after
#           the restore, a new subscriber the retained message, the persistent session's client
#           its queued message.
#   xvfb    xvfb-run (a shell) running Xvfb (-shmem: its framebuffer in a SysV segment, on a
#           unix socket, a free display) and, through sh, xclock (redrawing its seconds every
#           second), xeyes and tests/apps/xshm-client.c (built with cc; MIT-SHM images in two
#           removed SysV segments attached by it and by Xvfb, put and got back every 20 ms), a
#           property set on the root window: the tree dumped and restored; the property, the
#           windows (same ids) and xeyes' pixels (xwd) are there, xclock's window changes (it
#           draws over its restored connection), the framebuffer's segment is attached once
#           (Xvfb), the client's segments are still removed and attached twice, its rounds go on
#           with every image back intact (PASS on SIGTERM), and xkill of xclock's window ends
#           xclock and so xvfb-run and Xvfb.
#   jvm, node, go, erlang, ruby, sbcl, ghc, rsyslog, slapd, dovecot, qemu, samba, etcd, rabbitmq,
#   dnsmasq, unbound, screen, php-fpm, postfix, named, mosquitto and xvfb: their lines
#   give the dump's and the restore's times (the logs' stats lines).
#
#   apache-event  Apache httpd (Debian's apache2, private config) with mpm_event: a parent and
#           2 children of 25 worker threads each (a listener thread each, the scoreboard in
#           shared memory, mod_status) on 127.0.0.1, a keep-alive client outside the tree
#           (keepalive.py) that fetched a page: dumped and restored with --tcp-established; the
#           same connection fetches a 100,000-line file (every byte checked), 60 new connections
#           are served by both children (the same pids: mod_status names the serving one), the
#           scoreboard's Total Accesses goes on, and a graceful restart (SIGUSR1) of the restored
#           parent forks new children that serve. apache-prefork: the same with mpm_prefork (2
#           single-threaded children) and a second listener, the children taking turns with an
#           accept mutex (Mutex sysvsem: a host SysV semaphore taken with SEM_UNDO), answered
#           after the restore with one child still waiting for the mutex (the other holds it);
#           not run by default.
#   varnish varnishd -F with a private -n directory (its shared-memory log and counters, VSM
#           files the manager and the child map), the manager and its child (thread pools of 10
#           threads, a malloc store, the compiled VCL loaded from the directory) in front of a
#           python3 http.server backend outside the tree (HTTP/1.1: a pooled connection), a
#           keep-alive client outside the tree (keepalive.py) that fetched an object: dumped and
#           restored with --tcp-established --file-locks (the manager locks _.pid); the backend's object
#           changes, yet the same connection and a new one get the cached object (a hit on the
#           same object id), the same connection fetches 50,000 lines, varnishstat's hits go on
#           (the child's uptime too, no child restart), varnishlog -d shows the request made
#           before the dump, varnishadm answers status, a ban takes effect, and stop/start makes
#           the restored manager fork a new child that serves.
#   squid   squid --foreground (private config: a master, its kid, the kid's unlinkd and pinger
#           with its raw ICMP sockets) with a ufs cache_dir, in front of a python3 http.server
#           backend outside the tree; a keep-alive client outside the tree (keepalive.py) that
#           fetched a small object (kept in memory) and a 50,000-line one (over
#           maximum_object_size_in_memory: in the cache dir): dumped and restored with
#           --tcp-established --file-locks; the backend's object changes, yet the same connection
#           and a new one get the cached one (X-Cache: HIT), the same connection reads the big
#           one from the cache dir (every byte checked), the cache manager's hits go on with the
#           same start time and kid, and squid -k reconfigure (a signal to the restored master's
#           pid from its pid file) is followed by the kid, which serves after it.
#   lighttpd  lighttpd -D (private config, as www-data) with mod_fastcgi spawning 2 responders
#           (tests/apps/fcgi-counter.py: python3, a ticker thread, a request counter in memory) on
#           a unix socket, mod_cgi and mod_status, a keep-alive client outside the tree
#           (keepalive.py) that fetched a page: dumped and restored with --tcp-established; the
#           same connection fetches 50,000 lines, the responder that answered before goes on
#           (same pid, the next count, more ticks), two requests at a time are answered by both
#           responders, a CGI script is forked by the restored lighttpd, and fastcgi.requests
#           goes on.
#   tinyproxy  tinyproxy -d (as nobody) on 127.0.0.1 with a CONNECT tunnel from a client outside
#           the tree (keepalive.py) to a line echo server outside it: dumped while the tunnel's
#           relay waits in poll() with a relative timeout (Timeout 600) and restored with
#           --tcp-established; the tunnel echoes two more lines, a second after the first (a relay
#           woken by an EINTR the freeze caused ends its tunnel), and a new tunnel works.
#   jvm, node, go, erlang, ruby, sbcl, ghc, dnsmasq, unbound, screen, php-fpm, apache, varnish,
#   squid, lighttpd and tinyproxy: their lines give the dump's and the restore's times (the logs' stats lines).
#
#   tests/apps/run-apps.sh [--keep] [CASE...]
# CASE: tmux redis postgres postgres-huge nginx memcached dbus tail-F bwrap runc-run firejail python-pool jvm node go valgrind sshd
# haproxy erlang ruby sbcl dnsmasq unbound screen php-fpm postfix named mosquitto xvfb
# apache-event apache-prefork varnish squid lighttpd ghc chromium firefox libreoffice rsyslog slapd
# dovecot qemu samba etcd rabbitmq openvpn tinyproxy (default: all but apache-prefork, ghc, chromium, firefox,
# libreoffice, rsyslog, slapd, dovecot, qemu, samba, etcd and rabbitmq, in this order). --keep
# keeps the temporary directory (logs, images).
# APPS_CORRUPT=WHAT breaks a program's state after the restore, for
# checking that a case fails: jvm: heap, map, mapping, pool, jit, child (by the program), file
# (the test does not write RESTORED); node: ipc, worker, timers; go: heap, workers, timers,
# child; erlang: ets, ticks, child; ruby: hash, fiber, child; sbcl: table, ticks, child; ghc:
# map, ticks, child; dnsmasq: restart (the restored server killed and a fresh one started);
# unbound: counters (reset); screen: shell (its variable set to 0); php-fpm: workers (a reload:
# new workers); postfix, named, mosquitto, apache-event, apache-prefork, varnish, squid,
# lighttpd, openvpn, tinyproxy: restart (the restored server killed and a fresh one started); xvfb: framebuffer
# (zeroed through its segment); chromium, firefox, libreoffice, rsyslog, slapd, dovecot, qemu, samba, etcd,
# rabbitmq: restart
# (the restored program killed and a fresh one started).
# Output: one line per case, then "N passed, N failed"; exit status non-zero on failure.

# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=../zoo/lib.sh
. "$(dirname "$0")/../zoo/lib.sh"
declare -A CASE_FN=([tmux]=case_tmux [redis]=case_redis [postgres]=case_postgres [postgres-huge]=case_postgres_huge [nginx]=case_nginx
	[memcached]=case_memcached [dbus]=case_dbus [tail-F]=case_tail_follow [bwrap]=case_bwrap [runc-run]=case_runc_run [firejail]=case_firejail
	[python-pool]=case_python_pool [jvm]=case_jvm [node]=case_node [go]=case_go [valgrind]=case_valgrind
	[sshd]=case_sshd [haproxy]=case_haproxy [erlang]=case_erlang [ruby]=case_ruby [sbcl]=case_sbcl
	[dnsmasq]=case_dnsmasq [unbound]=case_unbound [screen]=case_screen [php-fpm]=case_php_fpm [ghc]=case_ghc
	[postfix]=case_postfix [named]=case_named [mosquitto]=case_mosquitto [xvfb]=case_xvfb
	[apache-event]=case_apache_event [apache-prefork]=case_apache_prefork [varnish]=case_varnish [squid]=case_squid [lighttpd]=case_lighttpd [chromium]=case_chromium [firefox]=case_firefox [libreoffice]=case_libreoffice
	[rsyslog]=case_rsyslog [slapd]=case_slapd [dovecot]=case_dovecot [qemu]=case_qemu
	[samba]=case_samba [etcd]=case_etcd [rabbitmq]=case_rabbitmq [openvpn]=case_openvpn [tinyproxy]=case_tinyproxy [mariadb]=case_mariadb [prometheus]=case_prometheus [fio]=case_fio
	[pulseaudio]=case_pulseaudio)
ALL_CASES=(tmux redis postgres postgres-huge nginx memcached dbus tail-F bwrap runc-run firejail python-pool jvm node go valgrind sshd haproxy erlang ruby sbcl
	dnsmasq unbound screen php-fpm postfix named mosquitto xvfb apache-event varnish squid lighttpd openvpn tinyproxy fio)
SELECTED=()
for arg in "$@"; do
	case $arg in
	--keep | -k) ZOO_KEEP=1 ;;
	-h | --help)
		sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		if [ -z "${CASE_FN[$arg]:-}" ]; then
			echo "unknown case $arg (cases: ${ALL_CASES[*]})" >&2
			exit 2
		fi
		SELECTED+=("$arg")
		;;
	esac
done
[ ${#SELECTED[@]} -gt 0 ] || SELECTED=("${ALL_CASES[@]}")
zoo_setup_tmp
TMUX_CMD=(tmux -L stasis-apps -f /dev/null)
apps_cleanup() {
	[ -d "$ZOO_TMP/tmux/sock" ] && TMUX_TMPDIR=$ZOO_TMP/tmux/sock "${TMUX_CMD[@]}" kill-server 2>/dev/null
	[ -n "${MADE_RUN_SSHD:-}" ] && rmdir /run/sshd 2>/dev/null
	zoo_cleanup
}
trap apps_cleanup EXIT

# app_port K: the K-th port of this run, below the kernel's ephemeral range so that no client
# connection of this machine (nor one in TIME_WAIT, which a server's bind() also collides with)
# can hold it; K up to 99, and a case may use up to port + 2
app_port() {
	local low
	read -r low _ </proc/sys/net/ipv4/ip_local_port_range
	[ "$low" -gt 11000 ] || low=60000
	echo $((10000 + ($$ * 100 + $1) % (low - 10003)))
}

# checkpoint CASE PID DIR [COMMAND...]: dump the tree of PID into DIR/img (PID must then be
# gone), run COMMAND (in this shell), restore it detached (PID must run again). On failure
# the case fails with the logs shown, PID is killed, and 1 is returned. CKPT_OPTS: options of
# both.
CKPT_OPTS=()
checkpoint() {
	local name=$1 pid=$2 d=$3
	shift 3
	run_stasis "$d/dump.out" 60 dump -t "$pid" -D "$d/img" -o dump.log -v4 "${CKPT_OPTS[@]}"
	if [ "$ZRC" -ne 0 ] || ! wait_until 10 pid_free "$pid"; then
		result_fail "$name" "dump of pid $pid: exit status $ZRC"
		show_tail "$d/dump.out" "$d/img/dump.log"
		kill_ours "$pid"
		return 1
	fi
	"$@"
	run_stasis "$d/restore.out" 60 restore -D "$d/img" -d -o restore.log -v4 "${CKPT_OPTS[@]}"
	if [ "$ZRC" -ne 0 ] || ! proc_alive "$pid"; then
		result_fail "$name" "restore: exit status $ZRC"
		show_tail "$d/restore.out" "$d/img/restore.log"
		drop_net_lock "$pid"
		kill_ours "$pid"
		return 1
	fi
}

# verdict CASE OUT OK_TEXT LOG...: OUT empty: the case passed (OK_TEXT); "failed": checkpoint
# already said so; else the case fails with OUT and the logs' tails
verdict() {
	local name=$1 out=$2 text=$3
	shift 3
	if [ "$out" = failed ]; then
		return
	elif [ -n "$out" ]; then
		result_fail "$name" "$out"
		show_tail "$@"
	else
		result_ok "$name ($text)"
	fi
}

# ticks_ok FILE: the "tick N" lines are 1..N, each once, in order; prints N
ticks_ok() {
	awk '/^tick [0-9]+$/ { n++; if ($2 != n) { print "tick " $2 " where " n " was due"; bad = 1; exit 1 } }
	     END { if (!bad) print n }' "$1"
}

case_tmux() {
	local d=$ZOO_TMP/tmux srv before after out
	mkdir -p "$d/img" "$d/sock"
	if ! command -v tmux >/dev/null; then
		result_fail apps/tmux "tmux is not installed (make setup installs it)"
		return
	fi
	export TMUX_TMPDIR=$d/sock
	local tm=("${TMUX_CMD[@]}")
	"${tm[@]}" new-session -d -s app -x 80 -y 50 \
		"sh -c 'i=0; while :; do i=\$((i+1)); echo tick \$i; sleep 0.1; done'" &&
		"${tm[@]}" new-window -t app -n cat cat &&
		"${tm[@]}" set -g @stasis-mark 4711 >/dev/null
	srv=$("${tm[@]}" display -p '#{pid}' 2>/dev/null)
	if [ -z "$srv" ]; then
		result_fail apps/tmux "the tmux server did not start"
		return
	fi
	track_pid "$srv"
	sleep 1
	"${tm[@]}" capture-pane -p -S - -t app:0 >"$d/before"
	before=$(ticks_ok "$d/before")
	checkpoint apps/tmux "$srv" "$d" || return
	sleep 0.7
	"${tm[@]}" send-keys -t app:cat "after-restore" Enter 2>/dev/null
	sleep 0.3
	"${tm[@]}" capture-pane -p -S - -t app:0 >"$d/after" 2>&1
	"${tm[@]}" capture-pane -p -t app:cat >"$d/cat" 2>&1
	local mark
	mark=$("${tm[@]}" show -gv @stasis-mark 2>&1)
	after=$(ticks_ok "$d/after")
	if [ "$mark" != 4711 ]; then
		out="the server's option @stasis-mark is '$mark', expected 4711"
	elif ! [[ $before =~ ^[0-9]+$ && $after =~ ^[0-9]+$ ]]; then
		out="pane ticks broken: before the dump '$before', after the restore '$after'"
	elif [ "$after" -le $((before + 2)) ]; then
		out="the loop did not go on: $before ticks before the dump, $after after"
	elif [ "$(grep -c '^after-restore$' "$d/cat")" -ne 2 ]; then
		out="keys sent to cat did not come back twice (echo and cat): $(tr '\n' '|' <"$d/cat")"
	else
		out=""
	fi
	"${tm[@]}" kill-server 2>/dev/null
	wait_until 5 pid_free "$srv" || kill_ours "$srv"
	if [ -n "$out" ]; then
		result_fail apps/tmux "$out"
		show_tail "$d/img/dump.log" "$d/img/restore.log"
	else
		result_ok "apps/tmux ($before ticks before the dump, $after after; option and cat pty intact)"
	fi
}

# the pool's results at the checkpoint (its output stays as it was until the restore)
note_progress() { before=$(tail -n 1 "$ZOO_TMP/pool/out" | cut -d' ' -f1); }

case_python_pool() {
	local d=$ZOO_TMP/pool pid before
	mkdir -p "$d/img"
	local py=/usr/bin/python3 # Debian's (make setup installs it), not a pyenv shim on PATH
	if [ ! -x "$py" ]; then
		result_fail apps/python-pool "$py is not installed (make setup installs it)"
		return
	fi
	: >"$d/out"
	(cd "$d" && exec setsid "$py" "$ZOO_ROOT/tests/apps/pool.py" "$d/out" forkserver </dev/null >"$d/err" 2>&1) &
	pid=$!
	disown "$pid" # the dump kills it: no job notice
	track_pid "$pid"
	if ! wait_until 20 grep -q '^300 ' "$d/out"; then
		result_fail apps/python-pool "the pool did not get going: $(tail -c 300 "$d/err")"
		kill_ours "$pid"
		return
	fi
	checkpoint apps/python-pool "$pid" "$d" note_progress || return
	if ! wait_until 30 grep -q -E '^(PASS|FAIL)' "$d/out"; then
		result_fail apps/python-pool "no verdict 30 s after the restore (last: $(tail -n 1 "$d/out"))"
		kill_ours "$pid"
		return
	fi
	local seq
	seq=$(awk '/^[0-9]+ / { n++; if ($1 != n * 100) { print "line " n ": " $1; exit } } END { print n }' "$d/out")
	if [ "$seq" != 15 ]; then
		result_fail apps/python-pool "progress lines broken: $seq"
	elif ! grep -q '^PASS' "$d/out"; then
		result_fail apps/python-pool "$(grep -E '^FAIL' "$d/out")"
	else
		result_ok "apps/python-pool (forkserver; checkpointed after $before results; sum and shared count checked by the program: $(grep '^PASS' "$d/out"))"
	fi
}

case_redis() {
	local d=$ZOO_TMP/redis srv out sock
	mkdir -p "$d/img"
	sock=$d/redis.sock
	if [ ! -x /usr/bin/redis-server ] || ! command -v redis-cli >/dev/null; then
		result_fail apps/redis "redis-server is not installed (make setup installs it)"
		return
	fi
	local cli=(redis-cli -s "$sock")
	(cd "$d" && exec setsid /usr/bin/redis-server --port 0 --unixsocket "$sock" --save "" \
		--appendonly no --dir "$d" --daemonize no </dev/null >"$d/log" 2>&1) &
	srv=$!
	disown "$srv"
	track_pid "$srv"
	if ! wait_until 10 test -S "$sock"; then
		result_fail apps/redis "the server did not start: $(tail -c 300 "$d/log")"
		kill_ours "$srv"
		return
	fi
	"${cli[@]}" set greeting "hello, stasis" >/dev/null
	"${cli[@]}" incrby counter 41 >/dev/null
	for i in $(seq 1 100); do echo "RPUSH list item-$i"; done | "${cli[@]}" >/dev/null
	checkpoint apps/redis "$srv" "$d" || return
	local greeting counter len last pid
	greeting=$("${cli[@]}" get greeting 2>&1)
	counter=$("${cli[@]}" incr counter 2>&1)
	len=$("${cli[@]}" llen list 2>&1)
	last=$("${cli[@]}" lindex list -1 2>&1)
	pid=$("${cli[@]}" info server 2>&1 | tr -d '\r' | awk -F: '/^process_id:/ {print $2}')
	"${cli[@]}" bgsave >/dev/null 2>&1
	wait_until 10 sh -c "${cli[*]} info persistence | grep -q 'rdb_bgsave_in_progress:0'"
	local saved
	saved=$("${cli[@]}" info persistence 2>&1 | tr -d '\r' | awk -F: '/^rdb_last_bgsave_status:/ {print $2}')
	if [ "$greeting" != "hello, stasis" ] || [ "$counter" != 42 ] || [ "$len" != 100 ] ||
		[ "$last" != item-100 ] || [ "$pid" != "$srv" ]; then
		out="after restore: greeting '$greeting', counter $counter (expected 42), list of $len ending '$last', pid $pid (was $srv)"
	elif [ "$saved" != ok ] || [ ! -s "$d/dump.rdb" ]; then
		out="BGSAVE of the restored server: status '$saved'"
	else
		out=""
	fi
	"${cli[@]}" shutdown nosave >/dev/null 2>&1
	wait_until 5 pid_free "$srv" || kill_ours "$srv"
	if [ -n "$out" ]; then
		result_fail apps/redis "$out"
		show_tail "$d/log" "$d/img/restore.log"
	else
		result_ok "apps/redis (data, counter and pid kept; BGSAVE after restore: ok)"
	fi
}

case_postgres_huge() { case_postgres huge; }

# its shared memory's mappings of huge pages in process pid: their KernelPageSize lines
huge_mappings() { grep -A 20 '/anon_hugepage' "/proc/$1/smaps" 2>/dev/null | grep -c 'KernelPageSize: *2048 kB'; }

# case_postgres [huge]: huge, its shared memory of huge pages (huge_pages=on)
case_postgres() {
	local variant=${1:-}
	local name=apps/postgres${variant:+-$variant} d=$ZOO_TMP/postgres${variant:+-$variant} bin pm="" out=""
	local port=$(app_port ${#variant}) huge=() psql_pid fd
	local sql=(psql -h 127.0.0.1 -p "$port" -U postgres -At -X)
	if [ -n "$variant" ]; then
		huge=(-c huge_pages=on -c shared_buffers=64MB)
		if ! zoo_hugepages 64; then
			result_fail "$name" "cannot have 64 free huge pages of 2 MiB"
			return
		fi
	fi
	bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tail -n 1)
	if [ ! -x "$bin/postgres" ] || ! command -v psql >/dev/null; then
		result_fail "$name" "PostgreSQL is not installed (make setup installs postgresql-15)"
		return
	fi
	mkdir -p "$d/img" "$d/sock"
	chmod 711 "$ZOO_TMP"
	chown postgres: "$d" "$d/sock"
	if ! runuser -u postgres -- "$bin/initdb" -N -A trust -D "$d/data" >"$d/initdb.log" 2>&1; then
		result_fail "$name" "initdb failed: $(tail -c 300 "$d/initdb.log")"
		return
	fi
	runuser -u postgres -- setsid -f "$bin/postgres" -D "$d/data" -k "$d/sock" -p "$port" \
		-c listen_addresses=127.0.0.1 -c fsync=off "${huge[@]}" </dev/null >"$d/log" 2>&1
	wait_until 20 "${sql[@]}" -c 'select 1' >/dev/null 2>&1 &&
		pm=$(head -n 1 "$d/data/postmaster.pid" 2>/dev/null)
	if [ -z "$pm" ]; then
		result_fail "$name" "the server did not start: $(tail -c 300 "$d/log")"
		return
	fi
	track_pid "$pm"
	if [ -n "$variant" ] && [ "$(huge_mappings "$pm")" = 0 ]; then
		result_fail "$name" "the server's shared memory is not of huge pages (huge_pages=on)"
		kill_ours "$pm"
		return
	fi
	"${sql[@]}" -c 'create table t (i int); insert into t select generate_series(1, 1000)' >/dev/null 2>&1
	# a session in an open transaction, outside the tree, fed through a FIFO
	mkfifo "$d/in"
	"${sql[@]}" <"$d/in" >"$d/session" 2>&1 &
	psql_pid=$!
	exec {fd}>"$d/in"
	echo "begin; insert into t values (5000); select count(*) from t;" >&"$fd"
	if ! wait_until 10 grep -qx 1001 "$d/session"; then
		out="the session's transaction did not start: $(tr '\n' '|' <"$d/session")"
	else
		CKPT_OPTS=(--tcp-established)
		checkpoint "$name" "$pm" "$d" || out=failed
		CKPT_OPTS=()
	fi
	if [ -z "$out" ]; then
		echo "select count(*) from t; commit; select 'committed';" >&"$fd"
		wait_until 10 grep -qx committed "$d/session"
		local fresh
		fresh=$("${sql[@]}" -c 'select count(*) from t' -c checkpoint 2>&1 | tr '\n' ' ')
		local want="BEGIN|INSERT 0 1|1001|1001|COMMIT|committed|"
		if [ "$(tr '\n' '|' <"$d/session")" != "$want" ]; then
			out="the session read '$(tr '\n' '|' <"$d/session")', expected '$want'"
		elif [ "$fresh" != "1001 CHECKPOINT " ]; then
			out="a new connection read '$fresh', expected '1001 CHECKPOINT '"
		elif [ -n "$variant" ] && [ "$(huge_mappings "$pm")" = 0 ]; then
			out="the restored postmaster's shared memory is not of huge pages any more"
		fi
	fi
	exec {fd}>&-
	wait_until 5 pid_free "$psql_pid" || kill -KILL "$psql_pid" 2>/dev/null
	if [ "$out" != failed ]; then
		kill -INT "$pm" 2>/dev/null # fast shutdown
		wait_until 20 pid_free "$pm" || kill_ours "$pm"
	fi
	verdict "$name" "$out" "a psql session's open transaction kept across dump and restore, committed; a new connection after restore: 1001 rows, CHECKPOINT" \
		"$d/log" "$d/img/dump.log" "$d/img/restore.log"
}

# A client outside the tree: python3 tests/apps/keepalive.py LOG PORT REQUEST...: one
# connection; each REQUEST ("GET /path", "MC command") waits for its line on stdin ("go") first;
# each answer's digest and first line go to LOG.
# system_python: the system's python3 when there is one (a version manager's shim costs
# seconds under load)
system_python() {
	if [ -x /usr/bin/python3 ]; then echo /usr/bin/python3; else echo python3; fi
}

# keepalive_start DIR PORT REQUEST...: that client, LOG DIR/client, its first request answered;
# its go lines on the fd in KA_FD, its pid in KA_PID. keepalive_end: it ends (its stdin
# closed), or is killed.
keepalive_start() {
	local d=$1 port=$2
	shift 2
	mkfifo "$d/go"
	python3 "$ZOO_ROOT/tests/apps/keepalive.py" "$d/client" "$port" "$@" <"$d/go" &
	KA_PID=$!
	exec {KA_FD}>"$d/go"
	echo go >&"$KA_FD"
	wait_until 10 grep -qs '^1 ' "$d/client"
}
keepalive_end() {
	exec {KA_FD}>&-
	wait_until 5 pid_free "$KA_PID" || kill -KILL "$KA_PID" 2>/dev/null
}
case_nginx() {
	local d=$ZOO_TMP/nginx pid="" out="" port=$(app_port 1)
	if ! command -v nginx >/dev/null; then
		result_fail apps/nginx "nginx is not installed (make setup installs nginx-light)"
		return
	fi
	mkdir -p "$d/img" "$d/www" "$d/tmp"
	seq 1 100000 >"$d/www/big.txt"
	chmod 711 "$ZOO_TMP" # its workers run as www-data
	chmod 755 "$d" "$d/www"
	cat >"$d/nginx.conf" <<CONF
worker_processes 2;
pid $d/nginx.pid;
error_log $d/error.log;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path $d/tmp/body; proxy_temp_path $d/tmp/proxy; fastcgi_temp_path $d/tmp/fcgi;
	uwsgi_temp_path $d/tmp/uwsgi; scgi_temp_path $d/tmp/scgi;
	keepalive_timeout 300;
	server { listen 127.0.0.1:$port; root $d/www; location /status { return 200 "worker \$pid\n"; } }
}
CONF
	(cd "$d" && exec setsid nginx -c "$d/nginx.conf" -g 'daemon off;' </dev/null >"$d/log" 2>&1) &
	pid=$!
	disown "$pid"
	track_pid "$pid"
	if ! wait_until 10 curl -sf "http://127.0.0.1:$port/status" -o /dev/null; then
		result_fail apps/nginx "the server did not start: $(tail -c 300 "$d/error.log" "$d/log" 2>&1)"
		kill_ours "$pid"
		return
	fi
	keepalive_start "$d" "$port" "GET /status" "GET /big.txt"
	CKPT_OPTS=(--tcp-established)
	checkpoint apps/nginx "$pid" "$d" || out=failed
	CKPT_OPTS=()
	if [ -z "$out" ]; then
		echo go >&"$KA_FD"
		wait_until 10 grep -qs '^2 ' "$d/client"
		local want fresh reload
		want="2 $(md5sum <"$d/www/big.txt" | cut -d' ' -f1) HTTP/1.1 200 OK"
		fresh=$(curl -s "http://127.0.0.1:$port/status")
		kill -HUP "$pid"
		wait_until 10 sh -c "curl -s http://127.0.0.1:$port/status | grep -qv '$fresh'"
		reload=$(curl -s "http://127.0.0.1:$port/status")
		if ! grep -q '^1 .* HTTP/1.1 200 OK$' "$d/client" || ! grep -qx "$want" "$d/client"; then
			out="the keep-alive client read: $(tr '\n' '|' <"$d/client") (expected '$want' last)"
		elif [[ $fresh != worker* ]] || [[ $reload != worker* ]] || [ "$fresh" = "$reload" ]; then
			out="new connections after restore: '$fresh', after a reload: '$reload' (new workers expected)"
		fi
	fi
	keepalive_end
	if [ "$out" != failed ]; then
		kill -QUIT "$pid" 2>/dev/null
		wait_until 10 pid_free "$pid" || kill_ours "$pid"
	fi
	verdict apps/nginx "$out" "the keep-alive connection fetched 100,000 lines after the restore; new connections and a reload work" \
		"$d/error.log" "$d/img/dump.log" "$d/img/restore.log"
}

case_memcached() {
	local d=$ZOO_TMP/memcached pid="" out="" port=$(app_port 2)
	if ! command -v memcached >/dev/null; then
		result_fail apps/memcached "memcached is not installed (make setup installs it)"
		return
	fi
	mkdir -p "$d/img"
	(cd "$d" && exec setsid memcached -u nobody -l 127.0.0.1 -p "$port" -t 4 </dev/null >"$d/log" 2>&1) &
	pid=$!
	disown "$pid"
	track_pid "$pid"
	if ! wait_until 10 python3 -c "import socket; socket.create_connection(('127.0.0.1', $port))" 2>/dev/null; then
		result_fail apps/memcached "the server did not start: $(tail -c 300 "$d/log")"
		kill_ours "$pid"
		return
	fi
	keepalive_start "$d" "$port" "MC set k 0 0 6|stasis" "MC set n 0 0 2|40" "MC get k" "MC incr n 2"
	echo go >&"$KA_FD"
	wait_until 10 grep -qs '^2 ' "$d/client"
	CKPT_OPTS=(--tcp-established)
	checkpoint apps/memcached "$pid" "$d" || out=failed
	CKPT_OPTS=()
	if [ -z "$out" ]; then
		echo go >&"$KA_FD"
		echo go >&"$KA_FD"
		wait_until 10 grep -qs '^4 ' "$d/client"
		if ! grep -q '^3 .* VALUE k 0 6$' "$d/client" || ! grep -q '^4 .* 42$' "$d/client"; then
			out="the client read: $(tr '\n' '|' <"$d/client") (expected the key, then 42)"
		fi
	fi
	keepalive_end
	[ "$out" = failed ] || kill_ours "$pid"
	verdict apps/memcached "$out" "4 threads; the client's connection read its key and counted on after the restore" \
		"$d/log" "$d/img/dump.log" "$d/img/restore.log"
}

case_tail_follow() {
	local d=$ZOO_TMP/tail pid
	mkdir -p "$d/img"
	echo line1 >"$d/log"
	(cd "$d" && exec setsid /usr/bin/tail -F -s 60 log </dev/null >"$d/out" 2>"$d/err") &
	pid=$!
	disown "$pid"
	track_pid "$pid"
	if ! wait_until 10 grep -q line1 "$d/out"; then
		result_fail apps/tail-F "tail did not start: $(cat "$d/err")"
		kill_ours "$pid"
		return
	fi
	checkpoint apps/tail-F "$pid" "$d" || return
	echo line2 >>"$d/log"
	wait_until 5 grep -q line2 "$d/out"
	mv "$d/log" "$d/log.1"
	echo line3 >"$d/log"
	wait_until 5 grep -q line3 "$d/out"
	kill_ours "$pid"
	if [ "$(tr '\n' ' ' <"$d/out")" != "line1 line2 line3 " ]; then
		result_fail apps/tail-F "tail's output after the restore: $(tr '\n' '|' <"$d/out") (err: $(tr '\n' '|' <"$d/err"))"
	else
		result_ok "apps/tail-F (an appended line and a rotation followed after the restore)"
	fi
}

# the loop a bubblewrap sandbox runs: a count kept in the sandbox's own /tmp (a tmpfs), checks of
# its root, /etc/motd (a removed file bound), its host name and /dev/null, a line per round
# to /out/ticks (a directory of the host's bound in)
BWRAP_LOOP='while :; do
	n=$(( $(cat /tmp/n) + 1 )); echo $n >/tmp/n
	if [ "$(cat /etc/motd)" = "motd of the sandbox" ] && [ "$(cat /proc/sys/kernel/hostname)" = sandbox ] &&
	   [ -c /dev/null ] && [ ! -e /home ] && [ "$(cat /proc/self/stat | cut -d" " -f1)" != 1 ]; then
		echo "tick $n" >>/out/ticks
	else
		echo "bad $n" >>/out/ticks
	fi
	sleep 0.1
done'

case_bwrap() {
	local d=$ZOO_TMP/bwrap pid out n
	mkdir -p "$d/img" "$d/out"
	(exec setsid bwrap --ro-bind /usr /usr --symlink usr/lib /lib --symlink usr/lib64 /lib64 \
		--symlink usr/bin /bin --symlink usr/sbin /sbin --proc /proc --dev /dev --tmpfs /tmp \
		--bind "$d/out" /out --ro-bind-data 3 /etc/motd --file 4 /tmp/n --unshare-pid --unshare-ipc \
		--unshare-uts --unshare-net --unshare-cgroup --hostname sandbox --new-session \
		--die-with-parent --chdir /tmp -- /bin/sh -c "$BWRAP_LOOP" 3<<<"motd of the sandbox" \
		4<<<0 </dev/null >"$d/err" 2>&1) &
	pid=$!
	disown "$pid"
	track_pid "$pid"
	if ! wait_until 10 grep -qs "tick 3" "$d/out/ticks"; then
		result_fail apps/bwrap "the sandbox did not start: $(cat "$d/err" "$d/out/ticks" 2>/dev/null | tr '\n' '|')"
		kill_ours "$pid"
		return
	fi
	checkpoint apps/bwrap "$pid" "$d" || return
	n=$(grep -c . "$d/out/ticks")
	wait_until 10 test "$(grep -c . "$d/out/ticks")" -ge $((n + 10))
	# the sandbox's init (the second bwrap, pid 1 there) ends it, then the first one ends
	for c in $(pgrep -P "$pid"); do kill_ours "$c"; done
	wait_until 10 pid_free "$pid"
	kill_ours "$pid"
	out=$(ticks_ok "$d/out/ticks" 2>&1)
	if grep -q bad "$d/out/ticks" || [ "$(grep -c . "$d/out/ticks")" -lt $((n + 10)) ] || [ -n "${out//[0-9]/}" ]; then
		out="the sandbox's ticks after the restore: $(tail -n 5 "$d/out/ticks" | tr '\n' '|') $out"
	else
		out=
	fi
	verdict apps/bwrap "$out" "a bubblewrap sandbox: its loop went on from tick $n, its tmpfs, bound files and namespaces kept" \
		"$d/err" "$d/img/restore.log"
}

# a container run in the foreground by `runc run` (no -d: the container's init is runc's child,
# runc waits for it): the tree of runc (Go threads) and the container (its own mount namespace
# with a root of its own by pivot_root, PID, IPC, UTS, network and cgroup namespaces, its
# cgroups) counting into a host directory bound at /out
case_runc_run() {
	local d=$ZOO_TMP/runc-run id pid n out
	id=stasis-apps-$$
	mkdir -p "$d/img" "$d/out" "$d/state" "$d/b/rootfs/bin" "$d/b/rootfs/proc" "$d/b/rootfs/sys" \
		"$d/b/rootfs/dev" "$d/b/rootfs/tmp" "$d/b/rootfs/out"
	if ! command -v runc >/dev/null || ! command -v busybox >/dev/null; then
		result_fail apps/runc-run "runc or busybox is not installed (make setup installs them)"
		return
	fi
	cp "$(command -v busybox)" "$d/b/rootfs/bin/busybox"
	for a in sh sleep; do ln -sf busybox "$d/b/rootfs/bin/$a"; done
	(cd "$d/b" && runc spec) && /usr/bin/python3 - "$d/b/config.json" "$d/out" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c", "exec 3>>/out/count; i=0; while true; do i=$((i+1)); echo $i >&3; sleep 0.1; done"]
c["mounts"].append({"destination": "/out", "type": "bind", "source": sys.argv[2], "options": ["rbind", "rw"]})
json.dump(c, open(sys.argv[1], "w"))
PY
	(cd "$d/b" && exec setsid runc --root "$d/state" run "$id" </dev/null >"$d/err" 2>&1) &
	pid=$!
	disown "$pid"
	track_pid "$pid"
	if ! wait_until 10 grep -qs "^5$" "$d/out/count"; then
		result_fail apps/runc-run "the container did not start: $(tr '\n' '|' <"$d/err")"
		kill_ours "$pid"
		return
	fi
	checkpoint apps/runc-run "$pid" "$d" || return
	n=$(grep -c . "$d/out/count")
	wait_until 10 test "$(grep -c . "$d/out/count")" -ge $((n + 10))
	out=$(awk 'NR != $1 { print "line " NR " reads " $1; exit }' "$d/out/count")
	[ "$(grep -c . "$d/out/count")" -ge $((n + 10)) ] || out="the count stopped at $(tail -n 1 "$d/out/count") $out"
	# the container's init ends; runc, its parent, then ends too and removes its cgroups
	for c in $(pgrep -P "$pid"); do pid_is_ours "$pid" && kill -KILL "$c"; done
	wait_until 10 pid_free "$pid" || out="$out; runc did not end with its container"
	[ -z "$(find /sys/fs/cgroup -maxdepth 2 -name "$id")" ] || out="$out; runc left its cgroups"
	kill_ours "$pid"
	runc --root "$d/state" delete -f "$id" >/dev/null 2>&1
	verdict apps/runc-run "$out" "a container run in the foreground by runc: its count went on from $n, every number once" \
		"$d/err" "$d/img/restore.log"
}

# a firejail sandbox (its own mount and PID namespaces, a private /dev, a host name, seccomp,
# no capabilities, no new privileges) running a shell that counts into a file of the host; the
# sandbox locks its entry in /run/firejail (dumped with --file-locks)
case_firejail() {
	local d=$ZOO_TMP/firejail pid n out sh_pid
	mkdir -p "$d/img" "$d/out"
	if ! command -v firejail >/dev/null; then
		result_fail apps/firejail "firejail is not installed (make setup installs it)"
		return
	fi
	(exec setsid firejail --quiet --noprofile --seccomp --caps.drop=all --private-dev --nonewprivs \
		--hostname=jailed sh -c "exec 3>>$d/out/count; i=0; while :; do i=\$((i+1));
		[ \"\$(hostname)\" = jailed ] && [ ! -e /dev/sda ] && echo \$i >&3; sleep 0.1; done" \
		</dev/null >"$d/err" 2>&1) &
	pid=$!
	disown "$pid"
	track_pid "$pid"
	if ! wait_until 10 grep -qs "^5$" "$d/out/count"; then
		result_fail apps/firejail "the sandbox did not start: $(tr '\n' '|' <"$d/err")"
		kill_ours "$pid"
		return
	fi
	CKPT_OPTS=(--file-locks)
	checkpoint apps/firejail "$pid" "$d" || { CKPT_OPTS=(); return; }
	CKPT_OPTS=()
	n=$(grep -c . "$d/out/count")
	wait_until 10 test "$(grep -c . "$d/out/count")" -ge $((n + 10))
	out=$(awk 'NR != $1 { print "line " NR " reads " $1; exit }' "$d/out/count")
	[ "$(grep -c . "$d/out/count")" -ge $((n + 10)) ] || out="the count stopped at $(tail -n 1 "$d/out/count") $out"
	# the shell ends, then the sandbox: both firejail processes exit
	sh_pid=$(pgrep -P "$(pgrep -P "$pid" | head -n 1)" | head -n 1)
	[ -n "$sh_pid" ] && [ "$(readlink "/proc/$sh_pid/exe")" = /usr/bin/dash ] && kill -KILL "$sh_pid"
	wait_until 10 pid_free "$pid" || out="$out; firejail did not end with its shell"
	kill_ours "$pid"
	verdict apps/firejail "$out" "a firejail sandbox: its count went on from $n, every number once" \
		"$d/err" "$d/img/restore.log"
}

case_dbus() {
	local d=$ZOO_TMP/dbus srv id after names
	mkdir -p "$d/img"
	if [ ! -x /usr/bin/dbus-daemon ] || ! command -v dbus-send >/dev/null; then
		result_fail apps/dbus "dbus-daemon is not installed (make setup installs it)"
		return
	fi
	local bus=(env DBUS_SESSION_BUS_ADDRESS="unix:path=$d/bus" dbus-send --session --print-reply
		--dest=org.freedesktop.DBus /)
	(cd "$d" && exec setsid /usr/bin/dbus-daemon --session --nofork --address="unix:path=$d/bus" \
		--print-pid=1 </dev/null >"$d/pid" 2>"$d/err") &
	disown $!
	if ! wait_until 10 test -S "$d/bus" || ! wait_until 5 test -s "$d/pid"; then
		result_fail apps/dbus "the bus did not start: $(cat "$d/err")"
		return
	fi
	srv=$(head -n 1 "$d/pid")
	track_pid "$srv"
	id=$("${bus[@]}" org.freedesktop.DBus.GetId 2>&1 | awk '/string/ {print $2}')
	checkpoint apps/dbus "$srv" "$d" || return
	after=$("${bus[@]}" org.freedesktop.DBus.GetId 2>&1 | awk '/string/ {print $2}')
	names=$("${bus[@]}" org.freedesktop.DBus.ListNames 2>&1 | grep -c '"org.freedesktop.DBus"')
	kill_ours "$srv"
	if [ -z "$id" ] || [ "$after" != "$id" ] || [ "$names" != 1 ]; then
		result_fail apps/dbus "bus id before $id, after '$after'; ListNames has the bus: $names"
		show_tail "$d/img/restore.log"
	else
		result_ok "apps/dbus (the same bus $id answers after the restore)"
	fi
}

# ckpt_times DIR: the dump's and the restore's times, from the stats lines of their logs
ckpt_times() {
	local dump restore
	dump=$(sed -n 's/.*dump stats: frozen_ms=\([0-9.]*\) .*total_ms=\([0-9.]*\) .*/\2 ms (frozen \1 ms)/p' "$1/img/dump.log" 2>/dev/null)
	restore=$(sed -n 's/.*restore stats: total_ms=\([0-9.]*\) .*/\1 ms/p' "$1/img/restore.log" 2>/dev/null)
	echo "dump ${dump:-?}, restore ${restore:-?}"
}

# http_want N: keepalive.py's line for the Nth "GET /mark" on the first connection
http_want() { echo "$1 $(printf 'request %s on connection 1\n' "$1" | md5sum | cut -d' ' -f1) HTTP/1.1 200 OK"; }

# start_app CASE DIR COMMAND...: start COMMAND in DIR in its own session (stdout and stderr
# DIR/out), wait for its READY line and DIR/port; sets APP_PID, APP_PORT, APP_CHILD (the
# READY line's last field: the program's child). On failure the case fails and 1 is returned.
start_app() {
	local name=$1 d=$2
	shift 2
	APP_PID="" APP_PORT="" APP_CHILD=""
	(cd "$d" && exec setsid "$@" </dev/null >"$d/out" 2>&1) &
	APP_PID=$!
	disown "$APP_PID"
	track_pid "$APP_PID"
	if ! wait_until 60 grep -q '^READY' "$d/out" || [ ! -s "$d/port" ]; then
		result_fail "$name" "the program did not start: $(tail -c 400 "$d/out")"
		kill_ours "$APP_PID"
		return 1
	fi
	APP_PORT=$(cat "$d/port")
	APP_CHILD=$(awk '/^READY/ { print $NF }' "$d/out")
	track_pid "$APP_CHILD"
}

# keepalive_check DIR: after the restore: the second request on the same connection and a new
# connection (/ping); the reason in out, if any
keepalive_check() {
	local d=$1 fresh
	echo go >&"$KA_FD"
	wait_until 10 grep -qs '^2 ' "$d/client"
	fresh=$(curl -s --max-time 5 "http://127.0.0.1:$APP_PORT/ping")
	if [ "$(cat "$d/client")" != "$(http_want 1)"$'\n'"$(http_want 2)" ]; then
		out="the keep-alive client read: $(tr '\n' '|' <"$d/client") (expected '$(http_want 1)|$(http_want 2)')"
	elif [ "$fresh" != pong ]; then
		out="a new connection after the restore read '$fresh', expected pong"
	fi
}

# mark_checkpoint CASE DIR: a keep-alive client outside the tree fetches /mark from the program
# start_app started, the tree is dumped and restored with --tcp-established, then
# keepalive_check (the same connection fetches /mark again, a new one /ping; the reason in out,
# if any). Returns 1 if the checkpoint failed (out is "failed").
mark_checkpoint() {
	keepalive_start "$2" "$APP_PORT" "GET /mark" "GET /mark"
	CKPT_OPTS=(--tcp-established)
	checkpoint "$1" "$APP_PID" "$2" || out=failed
	CKPT_OPTS=()
	[ -z "$out" ] || return 1
	keepalive_check "$2"
	return 0
}

# app_stop DIR SECONDS: SIGTERM to APP_PID, its verdict awaited; the reason in out, if any;
# the client ended, the child gone
app_stop() {
	local d=$1 t=$2
	kill -TERM "$APP_PID" 2>/dev/null
	if ! wait_until "$t" not_alive "$APP_PID"; then
		[ -n "$out" ] || out="the program did not exit within $t s of SIGTERM: $(tail -c 300 "$d/out")"
		kill_ours "$APP_PID"
	elif [ -z "$out" ] && ! grep -qx PASS "$d/out"; then
		out="the program's own checks: $(grep -E '^FAIL|Exception|Error' "$d/out" | head -n 3 | tr '\n' '|')"
		[ -n "$out" ] || out="no verdict from the program: $(tail -c 300 "$d/out")"
	fi
	wait_until 5 not_alive "$APP_CHILD" || kill_ours "$APP_CHILD"
}

case_jvm() {
	local d=$ZOO_TMP/jvm out=""
	if ! command -v java >/dev/null || ! command -v javac >/dev/null; then
		result_fail apps/jvm "java and javac are not installed (make setup installs openjdk-17-jdk-headless)"
		return
	fi
	mkdir -p "$d/img" "$d/classes"
	if ! javac -d "$d/classes" "$ZOO_ROOT/tests/apps/JvmApp.java" >"$d/javac.log" 2>&1; then
		result_fail apps/jvm "javac failed: $(tail -c 300 "$d/javac.log")"
		return
	fi
	start_app apps/jvm "$d" java -Xmx512m -cp "$d/classes" JvmApp "$d" || return
	if mark_checkpoint apps/jvm "$d"; then
		[ "${APPS_CORRUPT:-}" = file ] || printf RESTORED | dd of="$d/mapped" conv=notrunc status=none
		sleep 1 # the pool, the JIT loop and cat go on
		app_stop "$d" 60
		local verified
		verified=$(dd if="$d/mapped" bs=1 skip=8 count=8 status=none 2>/dev/null | tr -c '[:upper:]' '?')
		if [ -z "$out" ] && [ "$verified" != VERIFIED ]; then
			out="what the program wrote through its mapping after the restore is not in the file: '$verified'"
		fi
	fi
	keepalive_end
	verdict apps/jvm "$out" "heap, map, mapping, pool, JIT loop, cat, the keep-alive connection and GC checked after the restore: PASS; $(ckpt_times "$d")" \
		"$d/out" "$d/img/dump.log" "$d/img/restore.log"
}

# runtime_case NAME SETTLE WHAT CMD...: the program CMD (in $ZOO_TMP/NAME, built there if need
# be) started with start_app, checkpointed through its keep-alive client (mark_checkpoint), left
# to run SETTLE seconds, stopped with SIGTERM (its own verdict: app_stop); WHAT went on after the
# restore, the verdict line says
runtime_case() {
	local name=$1 settle=$2 what=$3 d=$ZOO_TMP/$1 out=""
	shift 3
	start_app "apps/$name" "$d" "$@" || return
	if mark_checkpoint "apps/$name" "$d"; then
		sleep "$settle"
		app_stop "$d" 30
	fi
	keepalive_end
	verdict "apps/$name" "$out" "$what went on after the restore: PASS; $(ckpt_times "$d")" \
		"$d/out" "$d/img/dump.log" "$d/img/restore.log"
}

case_node() {
	local d=$ZOO_TMP/node
	if [ ! -x /usr/bin/node ]; then
		result_fail apps/node "/usr/bin/node is not installed (make setup installs nodejs)"
		return
	fi
	mkdir -p "$d/img"
	# (the timers, the pings and the worker go on for 1 s)
	runtime_case node 1 "the forked child's IPC, the worker's counter, the timers and the keep-alive connection" /usr/bin/node "$ZOO_ROOT/tests/apps/node-app.js" "$d"
}

case_go() {
	local d=$ZOO_TMP/go
	if ! command -v go >/dev/null; then
		result_fail apps/go "the go tool is not installed (make setup installs golang-go)"
		return
	fi
	mkdir -p "$d/img"
	if ! (cd "$d" && GOCACHE="$d/gocache" GOPATH="$d/gopath" GOFLAGS= go build -o "$d/go-app" \
		"$ZOO_ROOT/tests/apps/go-app.go") >"$d/build.log" 2>&1; then
		result_fail apps/go "go build failed: $(tail -c 300 "$d/build.log")"
		return
	fi
	rm -rf "$d/gocache" "$d/gopath"
	# (the workers, the ticker and cat go on for 0.5 s)
	runtime_case go 0.5 "the Go runtime's goroutines, ticker, timers, cat child, heap, map, collector and the keep-alive connection" "$d/go-app" "$d"
}

case_erlang() {
	local d=$ZOO_TMP/erlang
	if ! command -v erl >/dev/null || ! command -v erlc >/dev/null; then
		result_fail apps/erlang "erl and erlc are not installed (make setup installs erlang-base)"
		return
	fi
	mkdir -p "$d/img"
	if ! erlc -o "$d" "$ZOO_ROOT/tests/apps/erlapp.erl" >"$d/erlc.log" 2>&1; then
		result_fail apps/erlang "erlc failed: $(tail -c 300 "$d/erlc.log")"
		return
	fi
	# (the ticker, the workers and cat go on for 0.5 s)
	runtime_case erlang 0.5 "the gen_server's ETS table and ticks, the workers, the cat port, the keep-alive connection and the collector" erl -noshell -pa "$d" -run erlapp main "$d"
}

case_ruby() {
	local d=$ZOO_TMP/ruby
	if [ ! -x /usr/bin/ruby ]; then
		result_fail apps/ruby "/usr/bin/ruby is not installed (make setup installs ruby)"
		return
	fi
	mkdir -p "$d/img"
	# (the Fiber's ticker, the workers and cat go on for 0.5 s)
	runtime_case ruby 0.5 "the Hash, the Fiber's ticker, the threads, the cat child, the keep-alive connection and GC.compact" /usr/bin/ruby "$ZOO_ROOT/tests/apps/ruby-app.rb" "$d"
}

case_sbcl() {
	local d=$ZOO_TMP/sbcl
	if ! command -v sbcl >/dev/null; then
		result_fail apps/sbcl "sbcl is not installed (make setup installs it)"
		return
	fi
	mkdir -p "$d/img"
	# (the ticker, the writer, the workers and cat go on for 0.5 s)
	runtime_case sbcl 0.5 "the hash table, the old conses under the write barrier, the threads, the cat child, the keep-alive connection and a full GC" sbcl --dynamic-space-size 2048 --script "$ZOO_ROOT/tests/apps/sbcl-app.lisp" "$d"
}

case_ghc() {
	local d=$ZOO_TMP/ghc
	if ! command -v ghc >/dev/null || ! ghc-pkg field network version >/dev/null 2>&1; then
		result_fail apps/ghc "ghc and its network package are not installed (apt-get install ghc libghc-network-dev)"
		return
	fi
	mkdir -p "$d/img"
	if ! ghc -O1 -threaded -rtsopts -outputdir "$d/o" -o "$d/ghc-app" "$ZOO_ROOT/tests/apps/ghc-app.hs" >"$d/build.log" 2>&1; then
		result_fail apps/ghc "ghc failed: $(tail -c 300 "$d/build.log")"
		return
	fi
	# (the ticker, the workers and cat go on for 0.5 s)
	runtime_case ghc 0.5 "the Data.Map, the IORef counters, the forkIO threads, the cat child, the keep-alive connection and performMajorGC" "$d/ghc-app" "$d" +RTS -N2 -RTS
}

case_valgrind() {
	local d=$ZOO_TMP/valgrind out="" pid
	if ! command -v valgrind >/dev/null; then
		result_fail apps/valgrind "valgrind is not installed (make setup installs it)"
		return
	fi
	mkdir -p "$d/img"
	if ! cc -O1 -g -o "$d/vg-target" "$ZOO_ROOT/tests/apps/vg-target.c" 2>"$d/cc.log"; then
		result_fail apps/valgrind "cc failed: $(tail -c 300 "$d/cc.log")"
		return
	fi
	(cd "$d" && exec setsid valgrind -q --leak-check=full --log-file="$d/vg.log" "$d/vg-target" </dev/null >"$d/out" 2>&1) &
	pid=$!
	disown "$pid"
	track_pid "$pid"
	if ! wait_until 60 grep -q '^READY' "$d/out"; then
		result_fail apps/valgrind "the program did not start under valgrind: $(tail -c 400 "$d/out")"
		kill_ours "$pid"
		return
	fi
	checkpoint apps/valgrind "$pid" "$d" || out=failed
	if [ -z "$out" ]; then
		sleep 1.5 # its counter goes on
		kill -TERM "$pid"
		if ! wait_until 30 not_alive "$pid"; then
			out="valgrind did not exit within 30 s of SIGTERM"
			kill_ours "$pid"
		elif ! grep -q '^PASS' "$d/out"; then
			out="the program's own checks: $(tail -c 300 "$d/out")"
		elif ! grep -q 'is 0 bytes after a block of size 300 alloc' "$d/vg.log" ||
			! grep -q '10 bytes inside a block of size 600 free' "$d/vg.log" ||
			! grep -q '1,000 bytes in 1 blocks are definitely lost' "$d/vg.log"; then
			out="valgrind's log lacks the read past a live block, the read in a freed one or the leak: $(tr '\n' '|' <"$d/vg.log" | tail -c 600)"
		fi
	fi
	verdict apps/valgrind "$out" "valgrind's memcheck (its fds just below the fd limit) went on: the program's heap intact, valgrind caught a read past a live block, one in a freed block and the leak made before the dump; $(ckpt_times "$d")" \
		"$d/out" "$d/vg.log" "$d/img/dump.log" "$d/img/restore.log"
}

case_sshd() {
	local d=$ZOO_TMP/sshd pid="" out="" port=$(app_port 31) hold
	if [ ! -x /usr/sbin/sshd ] || ! command -v ssh >/dev/null; then
		result_fail apps/sshd "sshd is not installed (make setup installs openssh-server)"
		return
	fi
	mkdir -p "$d/img"
	if [ ! -d /run/sshd ]; then # (its privilege separation's chroot; gone again at the end)
		mkdir -m 755 /run/sshd && MADE_RUN_SSHD=1
	fi
	ssh-keygen -q -t ed25519 -N '' -f "$d/hostkey" && ssh-keygen -q -t ed25519 -N '' -f "$d/userkey" &&
		cp "$d/userkey.pub" "$d/authorized_keys"
	cat >"$d/sshd_config" <<CONF
ListenAddress 127.0.0.1
HostKey $d/hostkey
AuthorizedKeysFile $d/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
PidFile none
CONF
	(cd "$d" && exec setsid /usr/sbin/sshd -D -E "$d/log" -f "$d/sshd_config" -p "$port" </dev/null >"$d/out" 2>&1) &
	pid=$!
	disown "$pid"
	track_pid "$pid"
	local ssh=(ssh -i "$d/userkey" -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -o BatchMode=yes
		-o LogLevel=ERROR -p "$port")
	if ! wait_until 10 "${ssh[@]}" root@127.0.0.1 true 2>/dev/null; then
		result_fail apps/sshd "the server did not start: $(tail -c 300 "$d/log")"
		kill_ours "$pid"
		return
	fi
	# the session: a shell loop on the pty, fed through a FIFO
	local fd client held
	mkfifo "$d/in"
	# shellcheck disable=SC2016 # expanded by the remote shell
	"${ssh[@]}" -tt root@127.0.0.1 'sh -c "while read l; do echo got:\$l:\$(\$l); done"' <"$d/in" >"$d/session" 2>&1 &
	client=$!
	exec {fd}>"$d/in"
	echo "echo one" >&"$fd"
	# the held login: its client's bytes after its banner wait while $d/hold exists
	hold=$d/hold
	touch "$hold"
	cat >"$d/holdproxy.py" <<'PY'
import os, select, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
sent, pending = 0, b""
while True:
    r = select.select([0, s], [], [], 0.1)[0]
    if 0 in r:
        b = os.read(0, 65536)
        if not b:
            break
        pending += b
    if pending and (sent == 0 or not os.path.exists(sys.argv[2])):
        s.sendall(pending)
        pending, sent = b"", sent + 1
    if s in r:
        b = s.recv(65536)
        if not b:
            break
        os.write(1, b)
PY
	"${ssh[@]}" -o "ProxyCommand=python3 $d/holdproxy.py $port $hold" root@127.0.0.1 'echo held-login' \
		</dev/null >"$d/held" 2>&1 &
	held=$!
	local sandboxed=""
	wait_until 10 grep -q 'got:echo one:one' "$d/session"
	for _ in $(seq 50); do
		sandboxed=$(for c in $(pgrep -P "$pid"); do pgrep -P "$c"; done | while read -r p; do
			grep -q '^Seccomp:[[:space:]]*2' "/proc/$p/status" 2>/dev/null && echo "$p"; done)
		[ -n "$sandboxed" ] && break
		sleep 0.2
	done
	if [ -z "$sandboxed" ]; then
		out="no sandboxed preauth child of the held login"
	else
		CKPT_OPTS=(--tcp-established)
		checkpoint apps/sshd "$pid" "$d" || out=failed
		CKPT_OPTS=()
	fi
	if [ -z "$out" ]; then
		echo "echo two" >&"$fd"
		rm -f "$hold"
		wait_until 10 grep -q 'got:echo two:two' "$d/session"
		wait_until 10 grep -q held-login "$d/held"
		local fresh
		fresh=$("${ssh[@]}" root@127.0.0.1 'echo new-login' 2>&1)
		if ! grep -q 'got:echo one:one' "$d/session" || ! grep -q 'got:echo two:two' "$d/session"; then
			out="the session read: $(tr '\r\n' '||' <"$d/session")"
		elif ! grep -q held-login "$d/held"; then
			out="the login held in preauth (pid $sandboxed, sandboxed) did not complete: $(tr '\n' '|' <"$d/held")"
		elif [ "$fresh" != new-login ]; then
			out="a new login after the restore: '$fresh'"
		fi
	fi
	printf '\004' >&"$fd" # end of file on the pty: the loop and the session end
	exec {fd}>&-
	rm -f "$hold"
	wait_until 5 pid_free "$client" || kill -KILL "$client" 2>/dev/null
	wait_until 5 pid_free "$held" || kill -KILL "$held" 2>/dev/null
	[ "$out" = failed ] || kill_ours "$pid"
	verdict apps/sshd "$out" "a pty session typed into before and after, a login held in preauth (seccomp sandbox, chroot) completed after the restore, a new login; $(ckpt_times "$d")" \
		"$d/log" "$d/img/dump.log" "$d/img/restore.log"
}

case_haproxy() {
	local d=$ZOO_TMP/haproxy pid="" out="" port=$(app_port 32)
	local port_int=$(app_port 33) port_py=$(app_port 34) py
	if ! command -v haproxy >/dev/null; then
		result_fail apps/haproxy "haproxy is not installed (make setup installs it)"
		return
	fi
	mkdir -p "$d/img" "$d/www"
	seq 1 20000 >"$d/www/big.txt"
	echo hello >"$d/www/mark"
	cat >"$d/haproxy.cfg" <<CONF
global
  stats socket $d/stats.sock mode 600 level admin
  nbthread 2
  pidfile $d/haproxy.pid
defaults
  mode http
  timeout connect 5s
  timeout client 1h
  timeout server 1h
  timeout http-keep-alive 1h
frontend fe
  bind 127.0.0.1:$port
  use_backend be_int if { path_beg /int }
  default_backend be_py
backend be_py
  server py 127.0.0.1:$port_py
backend be_int
  http-reuse always
  server int 127.0.0.1:$port_int
frontend fe_int
  bind 127.0.0.1:$port_int
  http-request return status 200 content-type text/plain string "internal-ok"
CONF
	(cd "$d/www" && exec setsid /usr/bin/python3 -m http.server --bind 127.0.0.1 "$port_py" </dev/null >"$d/py.log" 2>&1) &
	py=$!
	disown "$py"
	track_pid "$py"
	(cd "$d" && exec setsid haproxy -Ws -f "$d/haproxy.cfg" </dev/null >"$d/log" 2>&1) &
	pid=$!
	disown "$pid"
	track_pid "$pid"
	if ! wait_until 10 curl -sf "http://127.0.0.1:$port/mark" -o /dev/null; then
		result_fail apps/haproxy "haproxy (or its backend) did not start: $(tail -c 300 "$d/log")"
		kill_ours "$pid"
		kill_ours "$py"
		return
	fi
	keepalive_start "$d" "$port" "GET /int" "GET /mark" "GET /int" "GET /mark" "GET /big.txt"
	echo go >&"$KA_FD"
	wait_until 10 grep -qs '^2 ' "$d/client"
	local worker
	worker=$(pgrep -P "$pid" | head -n 1)
	CKPT_OPTS=(--tcp-established)
	checkpoint apps/haproxy "$pid" "$d" || out=failed
	CKPT_OPTS=()
	if [ -z "$out" ]; then
		local info
		info=$(echo 'show info' | socat -t 5 - "UNIX-CONNECT:$d/stats.sock" 2>&1)
		for _ in 1 2 3; do echo go >&"$KA_FD"; done
		wait_until 10 grep -qs '^5 ' "$d/client"
		local want_int want_mark want_big
		want_int=$(printf internal-ok | md5sum | cut -d' ' -f1)
		want_mark=$(md5sum <"$d/www/mark" | cut -d' ' -f1)
		want_big=$(md5sum <"$d/www/big.txt" | cut -d' ' -f1)
		if ! grep -q "^3 $want_int HTTP/1.1 200" "$d/client" || ! grep -q "^4 $want_mark HTTP/1.[01] 200" "$d/client" ||
			! grep -q "^5 $want_big HTTP/1.[01] 200" "$d/client"; then
			out="the client read: $(tr '\n' '|' <"$d/client")"
		elif ! grep -q "^Pid: $worker\$" <<<"$info"; then
			out="the stats socket answered: $(head -c 300 <<<"$info" | tr '\n' '|') (expected Pid: $worker)"
		fi
	fi
	keepalive_end
	[ "$out" = failed ] || kill_ours "$pid"
	kill_ours "$py"
	verdict apps/haproxy "$out" "master and worker; the client's connection fetched through both backends again and 20,000 lines, the renamed stats socket answered show info; $(ckpt_times "$d")" \
		"$d/log" "$d/img/dump.log" "$d/img/restore.log"
}

# dns_ask PORT NAME [DIG-OPTIONS...]: dig's short answer from 127.0.0.1:PORT, on one line
dns_ask() {
	local port=$1 name=$2
	shift 2
	dig @127.0.0.1 -p "$port" +short +time=2 +tries=2 "$@" "$name" 2>&1 | tr '\n' ' ' | sed 's/ $//'
}
# dns_is PORT NAME ANSWER: dns_ask's answer is ANSWER (for wait_until)
dns_is() { [ "$(dns_ask "$1" "$2")" = "$3" ]; }
# conns_to PORT N: N connections to 127.0.0.1:PORT are established (for wait_until)
conns_to() { [ "$(ss -Htn state established "( dport = :$1 )" | wc -l)" = "$2" ]; }

case_dnsmasq() {
	local d=$ZOO_TMP/dnsmasq pid="" out="" port=$(app_port 21) hits0 hits1 child
	if [ ! -x /usr/sbin/dnsmasq ] || ! command -v dig >/dev/null; then
		result_fail apps/dnsmasq "dnsmasq or dig is not installed (make setup installs dnsmasq-base and bind9-dnsutils)"
		return
	fi
	mkdir -p "$d/img" "$d/hosts"
	echo "10.9.9.1 one.test" >"$d/hosts/one"
	# daemonized as users run it: a double fork, the daemon in a session whose leader is gone
	(cd "$d" && exec /usr/sbin/dnsmasq --conf-file=/dev/null --port="$port" --listen-address=127.0.0.1 \
		--bind-interfaces --no-resolv --address=/example.test/10.1.2.3 --hostsdir="$d/hosts" \
		--cache-size=500 --user=root --pid-file="$d/pid" </dev/null >"$d/log" 2>&1)
	pid=$(cat "$d/pid" 2>/dev/null)
	if [ -z "$pid" ] || ! wait_until 10 dns_is "$port" one.test 10.9.9.1; then
		result_fail apps/dnsmasq "the server did not start: $(tail -c 300 "$d/log")"
		kill_ours "$pid"
		return
	fi
	track_pid "$pid"
	for name in one.test www.example.test one.test; do dns_ask "$port" "$name" >/dev/null; done
	# a TCP client outside the tree: dnsmasq forks a child that serves its connection
	keepalive_start "$d" "$port" "DNS www.example.test" "DNS one.test"
	child=$(pgrep -P "$pid" | head -n 1)
	hits0=$(dns_ask "$port" hits.bind chaos txt | tr -d '"')
	CKPT_OPTS=(--tcp-established)
	checkpoint apps/dnsmasq "$pid" "$d" || out=failed
	CKPT_OPTS=()
	if [ -z "$out" ] && [ "${APPS_CORRUPT:-}" = restart ]; then
		kill_ours "$child"
		kill_ours "$pid"
		wait_until 5 pid_free "$pid" && wait_until 5 pid_free "$child"
		(cd "$d" && exec /usr/sbin/dnsmasq --conf-file=/dev/null --port="$port" --listen-address=127.0.0.1 \
			--bind-interfaces --no-resolv --address=/example.test/10.1.2.3 --hostsdir="$d/hosts" \
			--cache-size=500 --user=root --pid-file="$d/pid" </dev/null >"$d/log" 2>&1)
		pid=$(cat "$d/pid")
		track_pid "$pid"
	fi
	if [ -z "$out" ]; then
		echo go >&"$KA_FD"
		wait_until 10 grep -qs '^2 ' "$d/client"
		local udp tcp size two
		udp=$(dns_ask "$port" www.example.test)
		tcp=$(dns_ask "$port" one.test +tcp)
		hits1=$(dns_ask "$port" hits.bind chaos txt | tr -d '"')
		size=$(dns_ask "$port" cachesize.bind chaos txt | tr -d '"')
		echo "10.9.9.2 two.test" >"$d/hosts/two"
		wait_until 5 dns_is "$port" two.test 10.9.9.2
		two=$(dns_ask "$port" two.test)
		if [ -z "$child" ] || ! grep -q '^1 .* A 10.1.2.3$' "$d/client" || ! grep -q '^2 .* A 10.9.9.1$' "$d/client"; then
			out="the TCP client (served by child '$child') read: $(tr '\n' '|' <"$d/client") (expected 10.1.2.3, then 10.9.9.1)"
		elif [ "$udp" != 10.1.2.3 ] || [ "$tcp" != 10.9.9.1 ]; then
			out="after the restore: UDP answer '$udp' (expected 10.1.2.3), TCP answer '$tcp' (expected 10.9.9.1)"
		elif ! [[ $hits0 =~ ^[0-9]+$ && $hits1 =~ ^[0-9]+$ ]] || [ "$hits1" -le "$hits0" ] || [ "$size" != 500 ]; then
			out="the cache's counters: hits $hits0 before the dump, $hits1 after (must go on), size '$size' (expected 500)"
		elif [ "$two" != 10.9.9.2 ]; then
			out="a hosts file added to the watched directory after the restore is not served (inotify): two.test is '$two'"
		fi
	fi
	keepalive_end
	[ "$out" = failed ] || kill_ours "$pid"
	verdict apps/dnsmasq "$out" "daemonized; its TCP child's connection answered after the restore, UDP and TCP queries answered, cache hits $hits0 -> ${hits1:-?} went on, a hosts file added after the restore picked up (inotify); $(ckpt_times "$d")" \
		"$d/log" "$d/img/dump.log" "$d/img/restore.log"
}

case_unbound() {
	local d=$ZOO_TMP/unbound pid="" out="" port=$(app_port 22) q0 q1
	if [ ! -x /usr/sbin/unbound ] || ! command -v dig >/dev/null; then
		result_fail apps/unbound "unbound or dig is not installed (make setup installs unbound and bind9-dnsutils)"
		return
	fi
	mkdir -p "$d/img"
	cat >"$d/unbound.conf" <<CONF
server:
  interface: 127.0.0.1
  port: $port
  num-threads: 2
  do-ip6: no
  username: ""
  chroot: ""
  directory: "$d"
  pidfile: "$d/pid"
  use-syslog: no
  logfile: "$d/log"
  local-zone: "stasis.test." static
  local-data: "a.stasis.test. 300 IN A 10.7.7.1"
remote-control:
  control-enable: yes
  control-interface: "$d/control.sock"
CONF
	local ctl=(unbound-control -c "$d/unbound.conf")
	(cd "$d" && exec /usr/sbin/unbound -c "$d/unbound.conf" </dev/null >"$d/out" 2>&1) # daemonizes
	pid=$(cat "$d/pid" 2>/dev/null)
	if [ -z "$pid" ] || ! wait_until 10 dns_is "$port" a.stasis.test 10.7.7.1; then
		result_fail apps/unbound "the server did not start: $(tail -c 300 "$d/out") $(tail -c 300 "$d/log")"
		kill_ours "$pid"
		return
	fi
	track_pid "$pid"
	for i in 1 2 3; do dns_ask "$port" a.stasis.test >/dev/null; dns_ask "$port" a.stasis.test +tcp >/dev/null; done
	# data only in its memory, added through its control socket
	"${ctl[@]}" local_data "b.stasis.test. 300 IN A 10.7.7.2" >/dev/null 2>&1
	q0=$("${ctl[@]}" stats_noreset 2>&1 | sed -n 's/^total.num.queries=//p')
	checkpoint apps/unbound "$pid" "$d" || out=failed
	if [ -z "$out" ]; then
		local status a b
		[ "${APPS_CORRUPT:-}" = counters ] && "${ctl[@]}" stats >/dev/null 2>&1
		status=$("${ctl[@]}" status 2>&1 | grep -c "unbound (pid $pid) is running")
		a=$(dns_ask "$port" a.stasis.test +tcp)
		b=$(dns_ask "$port" b.stasis.test)
		q1=$("${ctl[@]}" stats_noreset 2>&1 | sed -n 's/^total.num.queries=//p')
		if [ "$status" != 1 ]; then
			out="unbound-control status after the restore: $("${ctl[@]}" status 2>&1 | tr '\n' '|')"
		elif [ "$a" != 10.7.7.1 ] || [ "$b" != 10.7.7.2 ]; then
			out="after the restore: a.stasis.test '$a' (expected 10.7.7.1), b.stasis.test (added at run time) '$b' (expected 10.7.7.2)"
		elif ! [[ $q0 =~ ^[0-9]+$ ]] || [ "$q1" != $((q0 + 2)) ]; then
			out="its query counter: $q0 before the dump, '$q1' after two more queries (expected $((q0 + 2)))"
		fi
		"${ctl[@]}" stop >/dev/null 2>&1
		wait_until 5 pid_free "$pid"
	fi
	kill_ours "$pid"
	verdict apps/unbound "$out" "2 threads; the control socket answers for the same pid, the record added at run time and the query counter ($q0 -> ${q1:-?}) kept; $(ckpt_times "$d")" \
		"$d/log" "$d/img/dump.log" "$d/img/restore.log"
}

# (the shell in the window expands what -X stuff types)
# shellcheck disable=SC2016
case_screen() {
	local d=$ZOO_TMP/screen srv="" out="" before after
	if ! command -v screen >/dev/null; then
		result_fail apps/screen "screen is not installed (make setup installs it)"
		return
	fi
	mkdir -p "$d/img" "$d/sd"
	chmod 700 "$d/sd"
	local scr=(env SCREENDIR="$d/sd" screen -S app)
	# the loop starts once its window logs (to ticks.log)
	(cd "$d" && SCREENDIR=$d/sd exec setsid screen -dmS app \
		sh -c 'while [ ! -e go ]; do sleep 0.05; done; i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.1; done' \
		</dev/null >/dev/null 2>&1)
	wait_until 10 sh -c "SCREENDIR=$d/sd screen -ls | grep -q '\.app[[:space:]]'"
	srv=$(SCREENDIR=$d/sd screen -ls | awk -F. '/\.app[ \t]/ { print $1 + 0 }')
	if [ -z "$srv" ]; then
		result_fail apps/screen "the screen server did not start"
		return
	fi
	track_pid "$srv"
	"${scr[@]}" -p 0 -X logfile "$d/ticks.log"
	"${scr[@]}" -p 0 -X logfile flush 0
	"${scr[@]}" -p 0 -X log on
	touch "$d/go"
	"${scr[@]}" -X screen -t shell sh
	"${scr[@]}" -p shell -X stuff 'X=41; echo val $((X + 1))\n'
	sleep 1
	before=$(tr -d '\r' <"$d/ticks.log" | ticks_ok /dev/stdin)
	checkpoint apps/screen "$srv" "$d" || out=failed
	if [ -z "$out" ]; then
		sleep 0.7
		[ "${APPS_CORRUPT:-}" = shell ] && "${scr[@]}" -p shell -X stuff 'X=0\n'
		"${scr[@]}" -p shell -X stuff 'echo after $((X * 2))\n'
		sleep 0.3
		"${scr[@]}" -p shell -X hardcopy "$d/shell"
		after=$(tr -d '\r' <"$d/ticks.log" | ticks_ok /dev/stdin)
		if ! [[ $before =~ ^[0-9]+$ && $after =~ ^[0-9]+$ ]]; then
			out="the logged ticks are broken: before the dump '$before', after the restore '$after'"
		elif [ "$after" -le $((before + 2)) ]; then
			out="the loop did not go on: $before ticks before the dump, $after after"
		elif ! grep -qx 'val 42' "$d/shell" || ! grep -qx 'after 82' "$d/shell"; then
			out="the shell window (input through -X stuff) shows: $(grep -v '^ *$' "$d/shell" | tr '\n' '|')"
		fi
		"${scr[@]}" -X quit
		wait_until 5 pid_free "$srv"
	fi
	kill_ours "$srv"
	verdict apps/screen "$out" "a detached session: its log holds ticks 1..$before before the dump and 1..${after:-?} after, each once and in order; the shell window kept its variable and took input; $(ckpt_times "$d")" \
		"$d/img/dump.log" "$d/img/restore.log"
}

case_php_fpm() {
	local d=$ZOO_TMP/php-fpm pid="" out="" port=$(app_port 23) fpm workers
	fpm=$(ls /usr/sbin/php-fpm* 2>/dev/null | head -n 1)
	if [ -z "$fpm" ]; then
		result_fail apps/php-fpm "php-fpm is not installed (make setup installs php-fpm)"
		return
	fi
	mkdir -p "$d/img" "$d/www"
	cat >"$d/www/app.php" <<'PHP'
<?php
$s = opcache_get_status(false);
echo "pid=", getmypid(), " hits=", $s['opcache_statistics']['hits'], "\n";
PHP
	printf '<?php\nsleep(2);\necho "slow pid=", getmypid(), "\\n";\n' >"$d/www/slow.php"
	cat >"$d/fpm.conf" <<CONF
[global]
pid = $d/pid
error_log = $d/log
[app]
user = root
group = root
listen = 127.0.0.1:$port
pm = static
pm.max_children = 2
CONF
	# daemonizes; OPcache in shared memory (no php.ini: -n); it caches a script written less
	# than opcache.file_update_protection (2 s) before a request only from then on: 0 here
	(cd "$d" && exec "$fpm" -R -n -y "$d/fpm.conf" -d zend_extension=opcache.so -d opcache.enable=1 \
		-d opcache.file_update_protection=0 \
		</dev/null >"$d/out" 2>&1)
	pid=$(cat "$d/pid" 2>/dev/null)
	workers=$(pgrep -P "${pid:-0}" | sort | tr '\n' ' ')
	if [ -z "$pid" ] || [ "$(echo "$workers" | wc -w)" != 2 ]; then
		result_fail apps/php-fpm "the master and its 2 workers did not start: $(tail -c 300 "$d/log")"
		kill_ours "$pid"
		return
	fi
	track_pid "$pid"
	# a FastCGI connection the worker keeps (FCGI_KEEP_CONN), outside the tree
	keepalive_start "$d" "$port" "FCGI $d/www/app.php" "FCGI $d/www/app.php"
	# two slow requests: the other worker serves one (it holds OPcache's lock: --file-locks),
	# the other waits in the listener's accept queue
	local k queued
	for k in 1 2; do
		echo go | "$(system_python)" "$ZOO_ROOT/tests/apps/keepalive.py" "$d/slow$k" "$port" "FCGI $d/www/slow.php" &
		track_pid $!
		disown $!
	done
	wait_until 10 conns_to "$port" 3
	sleep 0.3
	queued=$(ss -Hltn "( sport = :$port )" | awk '{ print $2 }')
	CKPT_OPTS=(--tcp-established --file-locks)
	checkpoint apps/php-fpm "$pid" "$d" || out=failed
	CKPT_OPTS=()
	if [ -z "$out" ]; then
		if [ "${APPS_CORRUPT:-}" = workers ]; then
			kill -USR2 "$pid"
			sleep 1
			pid=$(cat "$d/pid") # (daemonized again)
			track_pid "$pid"
		fi
		echo go >&"$KA_FD"
		wait_until 10 grep -qs '^2 ' "$d/client"
		local w1 w2 h1 h2 fresh s1 s2
		wait_until 15 sh -c "grep -qs '^1 ' '$d/slow1' && grep -qs '^1 ' '$d/slow2'"
		s1=$(sed -n 's/^1 .* slow pid=\([0-9]*\)$/\1/p' "$d/slow1" 2>/dev/null)
		s2=$(sed -n 's/^1 .* slow pid=\([0-9]*\)$/\1/p' "$d/slow2" 2>/dev/null)
		read -r w1 h1 < <(sed -n 's/^1 .* pid=\([0-9]*\) hits=\([0-9]*\)$/\1 \2/p' "$d/client")
		read -r w2 h2 < <(sed -n 's/^2 .* pid=\([0-9]*\) hits=\([0-9]*\)$/\1 \2/p' "$d/client")
		fresh=$(for i in 1 2 3 4; do echo go; done | python3 "$ZOO_ROOT/tests/apps/keepalive.py" /dev/stdout "$port" \
			"FCGI $d/www/app.php" "FCGI $d/www/app.php" "FCGI $d/www/app.php" "FCGI $d/www/app.php" |
			sed -n 's/^[0-9] .* pid=\([0-9]*\) .*/\1/p' | sort -u | tr '\n' ' ')
		if [ -z "$w1" ] || [ "$w1" != "$w2" ] || [[ " $workers" != *" $w1 "* ]] || [ "${h2:-0}" -le "${h1:-0}" ]; then
			out="the kept FastCGI connection read: $(tr '\n' '|' <"$d/client") (expected one of the workers $workers, the same twice, OPcache hits going on)"
		elif [ "$queued" != 1 ] || [ -z "$s1" ] || [ -z "$s2" ] || [[ " $workers" != *" $s1 "* || " $workers" != *" $s2 "* ]]; then
			out="the slow requests (one in a worker, one in the accept queue: $queued) read '$(cat "$d/slow1" "$d/slow2" 2>/dev/null | tr '\n' '|')' (expected answers from the workers $workers)"
		elif [ -z "$fresh" ] || [[ " $workers" != *" $fresh"* ]] || [ "$(pgrep -P "$pid" | sort | tr '\n' ' ')" != "$workers" ]; then
			out="after the restore a new connection was served by '$fresh'; the master's workers are $(pgrep -P "$pid" | tr '\n' ' ') (were $workers)"
		fi
		kill -QUIT "$pid"
		wait_until 5 pid_free "$pid"
	fi
	keepalive_end
	kill_ours "$pid"
	verdict apps/php-fpm "$out" "master and 2 workers; the FastCGI connection a worker kept answered again from the same worker, OPcache hits ${h1:-?} -> ${h2:-?} went on, a slow request in a worker and one in the accept queue ($queued) answered, new connections served by the same workers; $(ckpt_times "$d")" \
		"$d/log" "$d/img/dump.log" "$d/img/restore.log"
}

# mailbox_count FILE SUBJECT: how many mails in the mbox FILE have that subject
mailbox_count() {
	local n
	n=$(grep -csx "Subject: $2" "$1")
	echo "${n:-0}"
}
# mailbox_has FILE SUBJECT...: each subject is in the mbox (for wait_until)
mailbox_has() {
	local f=$1 s
	shift
	for s in "$@"; do [ "$(mailbox_count "$f" "$s")" -ge 1 ] || return 1; done
}
# kill_group PID: SIGKILL PID's process group if PID is one of ours (a daemon's tree)
kill_group() { [ -n "$1" ] && proc_alive "$1" && pid_is_ours "$1" && kill -KILL -- "-$1" 2>/dev/null; return 0; }

case_postfix() {
	local d=$ZOO_TMP/postfix pid="" out="" port=$(app_port 50) s
	if [ ! -x /usr/lib/postfix/sbin/master ]; then
		result_fail apps/postfix "postfix is not installed (make setup installs it)"
		return
	fi
	chmod 711 "$ZOO_TMP" # its daemons run as user postfix
	mkdir -p "$d/img" "$d/etc" "$d/spool" "$d/data" "$d/mail"
	chmod 1777 "$d/mail"
	chown postfix "$d/data"
	cat >"$d/etc/main.cf" <<CONF
compatibility_level = 3.6
queue_directory = $d/spool
data_directory = $d/data
mail_owner = postfix
setgid_group = postdrop
myhostname = stasis.test
myorigin = stasis.test
mydestination = stasis.test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
local_recipient_maps =
mail_spool_directory = $d/mail
smtpd_relay_restrictions = permit_mynetworks, reject
smtputf8_enable = no
biff = no
maillog_file = $d/maillog
maillog_file_prefixes = $d
syslog_name = postfix-stasis
header_checks = regexp:$d/etc/header_checks
CONF
	echo '/^Subject: held$/ HOLD' >"$d/etc/header_checks"
	# pickup and qmgr woken through FIFOs (public/pickup, public/qmgr), the rest unix sockets;
	# chrooted into the queue directory where Debian's master.cf chroots
	cat >"$d/etc/master.cf" <<CONF
127.0.0.1:$port inet n - y - - smtpd
pickup    fifo  n - y 60  1 pickup
cleanup   unix  n - y -   0 cleanup
qmgr      fifo  n - n 300 1 qmgr
rewrite   unix  - - y -   - trivial-rewrite
bounce    unix  - - y -   0 bounce
defer     unix  - - y -   0 bounce
trace     unix  - - y -   0 bounce
flush     unix  n - y 1000? 0 flush
proxymap  unix  - - n -   - proxymap
showq     unix  n - y -   - showq
error     unix  - - y -   - error
retry     unix  - - y -   - error
local     unix  - n n -   - local
postlog   unix-dgram n - n - 1 postlogd
CONF
	local pf=(postfix -c "$d/etc") send=(sendmail -C "$d/etc" root@stasis.test)
	# the queue's directories as postfix check would make them (it takes seconds), then the
	# master started as postfix start does (-w: it daemonizes once it is ready)
	for s in active bounce corrupt defer deferred flush hold incoming private saved trace; do
		install -d -o postfix -g root -m 700 "$d/spool/$s"
	done
	install -d -o postfix -g postdrop -m 730 "$d/spool/maildrop"
	install -d -o postfix -g postdrop -m 710 "$d/spool/public"
	install -d -m 755 "$d/spool/pid"
	(cd "$d" && exec setsid /usr/lib/postfix/sbin/master -c "$d/etc" -w </dev/null >"$d/out" 2>&1)
	pid=$(tr -d ' ' <"$d/spool/pid/master.pid" 2>/dev/null)
	if [ -z "$pid" ] || ! wait_until 10 eval "ss -Hltn 'sport = :$port' | grep -q ."; then
		result_fail apps/postfix "postfix did not start: $(tail -c 300 "$d/out") $(tail -c 300 "$d/maillog" 2>/dev/null)"
		kill_group "$pid"
		return
	fi
	track_pid "$pid"
	printf 'Subject: before\n\ndelivered before the dump\n' | "${send[@]}"
	printf 'Subject: held\n\nqueued before the dump, released after the restore\n' | "${send[@]}"
	wait_until 10 mailbox_has "$d/mail/root" before
	wait_until 10 eval "[ -n \"\$(ls '$d/spool/hold')\" ]"
	# an SMTP session open in an smtpd child, stopped in the middle of the message's text
	# (cleanup writing the queue file): the rest of it sent after the restore
	keepalive_start "$d" "$port" "SMTP EHLO client|MAIL FROM:<client@stasis.test>|RCPT TO:<root@stasis.test>|DATA|Subject: during||first half" \
		"SMTP second half|.|QUIT"
	CKPT_OPTS=(--tcp-established --file-locks) # master's lock on its pid file, local's on the mailbox
	checkpoint apps/postfix "$pid" "$d" || out=failed
	CKPT_OPTS=()
	if [ -z "$out" ]; then
		if [ "${APPS_CORRUPT:-}" = restart ]; then
			kill_group "$pid"
			wait_until 5 pid_free "$pid"
			(cd "$d" && exec setsid /usr/lib/postfix/sbin/master -c "$d/etc" -w </dev/null >>"$d/out" 2>&1)
			pid=$(tr -d ' ' <"$d/spool/pid/master.pid")
		fi
		echo go >&"$KA_FD"
		wait_until 10 grep -qs '^2 ' "$d/client"
		postsuper -c "$d/etc" -H ALL >/dev/null 2>&1 # to the deferred queue: postqueue -f asks
		postqueue -c "$d/etc" -f                      # flush, which wakes qmgr through its FIFO
		printf 'Subject: after\n\nthrough pickup after the restore\n' | "${send[@]}"
		python3 -c 'import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), "client", 10)
s.sendmail("client@stasis.test", ["root@stasis.test"], "Subject: fresh\r\n\r\na new SMTP session\r\n")
s.quit()' "$port" >"$d/fresh.out" 2>&1
		wait_until 10 mailbox_has "$d/mail/root" before held during after fresh
		local got="" status
		for s in before held during after fresh; do got+="$s=$(mailbox_count "$d/mail/root" "$s") "; done
		"${pf[@]}" status >/dev/null 2>&1 # logs through postlogd's datagram socket
		wait_until 5 grep -q "is running: PID: $pid" "$d/maillog"
		status=$(grep 'is running\|not running' "$d/maillog" | tail -n 1)
		if [ "$(cut -d' ' -f1,3 "$d/client" | tr '\n' '|')" != "1 220,250,250,250,354|2 250,221|" ]; then
			out="the SMTP session held across the checkpoint read: $(tr '\n' '|' <"$d/client") (expected replies 220,250,250,250,354 then 250,221)"
		elif ! grep -q '^second half$' "$d/mail/root" || ! grep -q '^first half$' "$d/mail/root"; then
			out="the mail sent across the checkpoint lost its text: $(grep -A3 'Subject: during' "$d/mail/root" | tr '\n' '|')"
		elif [ "$got" != "before=1 held=1 during=1 after=1 fresh=1 " ]; then
			out="the mailbox holds $got(each once expected); $(cat "$d/fresh.out")"
		elif [[ $status != *"PID: $pid"* ]]; then
			out="postfix status after the restore logged '$status' (expected the master's pid $pid)"
		fi
		"${pf[@]}" stop >/dev/null 2>&1
		wait_until 5 pid_free "$pid"
	fi
	keepalive_end
	kill_group "$pid"
	verdict apps/postfix "$out" "master, pickup and qmgr on FIFOs, smtpd: an SMTP session open across the checkpoint finished, a held mail queued before released and delivered, pickup and a new SMTP session deliver; $(ckpt_times "$d")" \
		"$d/maillog" "$d/img/dump.log" "$d/img/restore.log"
}

# nsupdate_add PORT NAME ADDRESS: a dynamic update adding NAME A ADDRESS to stasis.test
nsupdate_add() {
	printf 'server 127.0.0.1 %s\nzone stasis.test\nupdate add %s 300 A %s\nsend\n' "$1" "$2" "$3" | nsupdate -t 5 2>&1
}

case_named() {
	local d=$ZOO_TMP/named pid="" out="" port=$(app_port 51) cport=$(app_port 52)
	if [ ! -x /usr/sbin/named ] || ! command -v dig >/dev/null || ! command -v nsupdate >/dev/null; then
		result_fail apps/named "named, dig or nsupdate is not installed (make setup installs bind9 and bind9-dnsutils)"
		return
	fi
	chmod 711 "$ZOO_TMP" # named drops to user bind
	mkdir -p "$d/img" "$d/run" # run: named's own directory (user bind)
	local secret
	secret=$(head -c 32 /dev/urandom | base64)
	cat >"$d/named.conf" <<CONF
options {
  directory "$d/run";
  listen-on port $port { 127.0.0.1; };
  listen-on-v6 { none; };
  pid-file "$d/run/named.pid";
  session-keyfile "$d/run/session.key";
  recursion no;
  dnssec-validation no;
};
key "rndc-key" { algorithm hmac-sha256; secret "$secret"; };
controls { inet 127.0.0.1 port $cport allow { 127.0.0.1; } keys { "rndc-key"; }; };
zone "stasis.test" { type primary; file "stasis.test.zone"; allow-update { 127.0.0.1; }; };
logging { channel log { file "$d/run/named.log"; severity info; print-time yes; }; category default { log; }; };
CONF
	cat >"$d/rndc.conf" <<CONF
key "rndc-key" { algorithm hmac-sha256; secret "$secret"; };
options { default-key "rndc-key"; default-server 127.0.0.1; default-port $cport; };
CONF
	cat >"$d/run/stasis.test.zone" <<'CONF'
$TTL 300
@   IN SOA ns.stasis.test. admin.stasis.test. 1 3600 600 86400 300
@   IN NS ns.stasis.test.
ns  IN A 127.0.0.1
www IN A 10.9.9.1
CONF
	chown -R bind: "$d/run"
	local rndc=(rndc -c "$d/rndc.conf")
	(cd "$d" && exec setsid /usr/sbin/named -c "$d/named.conf" -f -n 2 -u bind </dev/null >"$d/out" 2>&1) &
	pid=$!
	disown "$pid"
	track_pid "$pid"
	if ! wait_until 20 dns_is "$port" www.stasis.test 10.9.9.1; then
		result_fail apps/named "named did not start: $(tail -c 300 "$d/out") $(tail -c 300 "$d/run/named.log")"
		kill_ours "$pid"
		return
	fi
	# a record only in the zone's journal and in memory, and a TCP connection kept open
	nsupdate_add "$port" dyn.stasis.test 10.9.9.2 >"$d/nsupdate.out"
	keepalive_start "$d" "$port" "DNS www.stasis.test" "DNS dyn.stasis.test"
	local caps boot
	caps=$(grep '^Cap[PE]' "/proc/$pid/status" | tr -d '\t' | tr '\n' ' ')
	boot=$("${rndc[@]}" status 2>&1 | grep '^boot time')
	CKPT_OPTS=(--tcp-established)
	checkpoint apps/named "$pid" "$d" || out=failed
	CKPT_OPTS=()
	if [ -z "$out" ]; then
		if [ "${APPS_CORRUPT:-}" = restart ]; then
			kill_ours "$pid"
			wait_until 5 pid_free "$pid"
			(cd "$d" && exec setsid /usr/sbin/named -c "$d/named.conf" -f -n 2 -u bind </dev/null >>"$d/out" 2>&1) &
			pid=$!
			disown "$pid"
			track_pid "$pid"
			wait_until 20 dns_is "$port" www.stasis.test 10.9.9.1
		fi
		echo go >&"$KA_FD"
		wait_until 10 grep -qs '^2 ' "$d/client"
		local dyn dyn2 status now
		dyn=$(dns_ask "$port" dyn.stasis.test)
		nsupdate_add "$port" dyn2.stasis.test 10.9.9.3 >>"$d/nsupdate.out"
		dyn2=$(dns_ask "$port" dyn2.stasis.test +tcp)
		status=$("${rndc[@]}" status 2>&1)
		now=$(grep '^Cap[PE]' "/proc/$pid/status" | tr -d '\t' | tr '\n' ' ')
		if [ "$(cut -d' ' -f1,3,4 "$d/client" | tr '\n' '|')" != "1 A 10.9.9.1|2 A 10.9.9.2|" ]; then
			out="the TCP connection kept across the checkpoint read: $(tr '\n' '|' <"$d/client") (expected A 10.9.9.1, then A 10.9.9.2)"
		elif [ "$dyn" != 10.9.9.2 ] || [ "$dyn2" != 10.9.9.3 ]; then
			out="after the restore: dyn.stasis.test (updated before) '$dyn' (expected 10.9.9.2), dyn2.stasis.test (updated after) '$dyn2' (expected 10.9.9.3): $(tr '\n' '|' <"$d/nsupdate.out")"
		elif [[ $status != *"server is up and running"* ]] || [[ $status != *"$boot"* ]]; then
			out="rndc status after the restore: $(echo "$status" | tr '\n' '|') (expected running, $boot)"
		elif [ "$now" != "$caps" ]; then
			out="named's capabilities (user bind): $now after the restore, $caps before"
		else
			"${rndc[@]}" stop >/dev/null 2>&1
			wait_until 10 pid_free "$pid" || out="named did not stop on rndc stop"
		fi
	fi
	keepalive_end
	kill_ours "$pid"
	verdict apps/named "$out" "2 workers as user bind: a TCP connection kept answered, a dynamic update from before served and one after applied, rndc status (same boot time) and rndc stop; $(ckpt_times "$d")" \
		"$d/run/named.log" "$d/img/dump.log" "$d/img/restore.log"
}

case_mosquitto() {
	local d=$ZOO_TMP/mosquitto pid="" out="" port=$(app_port 53) sub=""
	if ! command -v mosquitto >/dev/null || ! command -v mosquitto_sub >/dev/null; then
		result_fail apps/mosquitto "mosquitto or its clients are not installed (make setup installs mosquitto and mosquitto-clients)"
		return
	fi
	chmod 711 "$ZOO_TMP" # the broker drops to user mosquitto
	mkdir -p "$d/img" "$d/run"
	chown mosquitto "$d/run"
	cat >"$d/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence false
log_dest file $d/run/log
log_type all
pid_file $d/run/pid
CONF
	local mq=(-h 127.0.0.1 -p "$port")
	(cd "$d" && exec setsid mosquitto -c "$d/mosquitto.conf" </dev/null >"$d/out" 2>&1) &
	pid=$!
	disown "$pid"
	track_pid "$pid"
	if ! wait_until 10 eval "ss -Hltn 'sport = :$port' | grep -q ."; then
		result_fail apps/mosquitto "the broker did not start: $(tail -c 300 "$d/out") $(tail -c 300 "$d/run/log")"
		kill_ours "$pid"
		return
	fi
	# only in the broker's memory: a retained message, and a QoS 1 message queued for a
	# persistent session whose client is offline
	mosquitto_pub "${mq[@]}" -t stasis/retained -r -m kept-before
	mosquitto_sub "${mq[@]}" -t stasis/queued -q 1 -c -i offline-client -E
	mosquitto_pub "${mq[@]}" -t stasis/queued -q 1 -m queued-while-offline
	# a subscriber outside the tree, connected across the checkpoint, ends after 2 messages
	(exec setsid mosquitto_sub "${mq[@]}" -t stasis/live -v -C 2 </dev/null >"$d/held" 2>&1) &
	sub=$!
	disown "$sub"
	wait_until 10 eval "[ \"\$(ss -Htn state established '( dport = :$port )' | wc -l)\" = 1 ]"
	mosquitto_pub "${mq[@]}" -t stasis/live -m before
	wait_until 10 grep -qs before "$d/held"
	CKPT_OPTS=(--tcp-established)
	checkpoint apps/mosquitto "$pid" "$d" || out=failed
	CKPT_OPTS=()
	if [ -z "$out" ]; then
		if [ "${APPS_CORRUPT:-}" = restart ]; then
			kill_ours "$pid"
			wait_until 5 pid_free "$pid"
			(cd "$d" && exec setsid mosquitto -c "$d/mosquitto.conf" </dev/null >>"$d/out" 2>&1) &
			pid=$!
			disown "$pid"
			track_pid "$pid"
			wait_until 10 eval "ss -Hltn 'sport = :$port' | grep -q ."
		fi
		mosquitto_pub "${mq[@]}" -t stasis/live -m after
		local retained queued
		retained=$(mosquitto_sub "${mq[@]}" -t stasis/retained -C 1 -W 5 2>&1)
		queued=$(mosquitto_sub "${mq[@]}" -t stasis/queued -q 1 -c -i offline-client -C 1 -W 5 2>&1)
		wait_until 10 pid_free "$sub"
		if [ "$(tr '\n' '|' <"$d/held")" != "stasis/live before|stasis/live after|" ]; then
			out="the subscriber connected across the checkpoint read: $(tr '\n' '|' <"$d/held") (expected before, then after)"
		elif [ "$retained" != kept-before ]; then
			out="a new subscriber got '$retained' as the retained message (expected kept-before)"
		elif [ "$queued" != queued-while-offline ]; then
			out="the persistent session's queued message: '$queued' (expected queued-while-offline)"
		fi
		kill -TERM "$pid"
		wait_until 5 pid_free "$pid" || [ -n "$out" ] || out="the broker did not exit on SIGTERM"
	fi
	kill -TERM "$sub" 2>/dev/null
	kill_ours "$pid"
	verdict apps/mosquitto "$out" "as user mosquitto: a subscriber connected across the checkpoint got the message published after, the retained message and a persistent session's queued QoS 1 message kept; $(ckpt_times "$d")" \
		"$d/run/log" "$d/img/dump.log" "$d/img/restore.log"
}

# x_win DISPLAY AUTH NAME: the id of the top-level window named NAME, if any
x_win() { DISPLAY=$1 XAUTHORITY=$2 xwininfo -root -children 2>/dev/null | awk -v n="\"$3\":" '$2 == n { print $1 }'; }
# x_wins DISPLAY AUTH NAME...: each of the windows is there (for wait_until)
x_wins() {
	local dpy=$1 auth=$2 name
	shift 2
	for name in "$@"; do [ -n "$(x_win "$dpy" "$auth" "$name")" ] || return 1; done
}
# x_wins_listed DISPLAY AUTH: the names of the root window's children (a failure's message)
x_wins_listed() { DISPLAY=$1 XAUTHORITY=$2 xwininfo -root -children 2>&1 | awk '/^ +0x/ { print $2 }' | tr '\n' ' '; }
# x_shot DISPLAY AUTH WINDOW: md5 of the window's pixels as the server holds them (xwd)
x_shot() { DISPLAY=$1 XAUTHORITY=$2 xwd -silent -id "$3" 2>/dev/null | md5sum | cut -d' ' -f1; }

case_xvfb() {
	local d=$ZOO_TMP/xvfb pid="" out="" xpid="" dpy="" shmid="" eyes clock shm_client="" segs="" rounds0="" rounds1=""
	if ! command -v xvfb-run >/dev/null || ! command -v xeyes >/dev/null || ! command -v xwd >/dev/null; then
		result_fail apps/xvfb "xvfb-run, x11-apps or x11-utils is not installed (make setup installs xvfb x11-apps x11-utils)"
		return
	fi
	mkdir -p "$d/img"
	if ! cc -O1 -o "$d/xshm-client" "$ZOO_ROOT/tests/apps/xshm-client.c" -lX11 -lXext 2>"$d/cc.log"; then
		result_fail apps/xvfb "tests/apps/xshm-client.c did not build (make setup installs libx11-dev libxext-dev): $(tail -c 300 "$d/cc.log")"
		return
	fi
	local auth=$d/auth
	# as users run a program headless: xvfb-run (a shell) starts Xvfb, waits for it, runs the
	# client; the framebuffer in a SysV segment (-shmem)
	(cd "$d" && exec setsid xvfb-run -a -f "$auth" -e "$d/xvfb.err" -s "-nolisten tcp -shmem -screen 0 320x240x24" \
		sh -c './xshm-client >shm.out & xeyes -geometry 150x100+0+0 & exec xclock -digital -update 1 -geometry +0+120' \
		</dev/null >"$d/out" 2>&1) &
	pid=$!
	disown "$pid"
	track_pid "$pid"
	wait_until 20 eval "xpid=\$(pgrep -P $pid -x Xvfb) && [ -n \"\$xpid\" ]"
	dpy=$(tr '\0' '\n' <"/proc/$xpid/cmdline" 2>/dev/null | grep -m1 '^:[0-9]*$')
	track_pid "$xpid"
	local step=""
	if [ -z "$dpy" ]; then
		step="Xvfb (pid '$xpid': no display in its command line)"
	elif ! wait_until 30 x_wins "$dpy" "$auth" xclock xeyes; then
		step="xclock's and xeyes' windows on $dpy (the root window has: $(x_wins_listed "$dpy" "$auth"))"
	elif ! wait_until 15 grep -q '^round' "$d/shm.out"; then
		step="xshm-client's rounds (it printed: $(head -c 200 "$d/shm.out" 2>&1))"
	fi
	if [ -n "$step" ]; then
		result_fail apps/xvfb "Xvfb and its clients did not start: waited for $step; $(tail -c 300 "$d/out") $(tail -c 300 "$d/xvfb.err") (SysV segments: $(ipcs -m | grep -c '^0x'))"
		kill_ours "$xpid"
		kill_ours "$pid"
		return
	fi
	shmid=$(sed -n 's/.*shmid \([0-9]*\).*/\1/p' "$d/xvfb.err" | head -n 1)
	eyes=$(x_win "$dpy" "$auth" xeyes)
	clock=$(x_win "$dpy" "$auth" xclock)
	# state only in the server: a property on the root window
	DISPLAY=$dpy XAUTHORITY=$auth xprop -root -f STASIS_MARK 8s -set STASIS_MARK before-dump
	local shot0 shot1 tick0 tick1
	shot0=$(x_shot "$dpy" "$auth" "$eyes")
	shm_client=$(pgrep -s "$pid" -x xshm-client) # (a child of the sh that became xclock)
	track_pid "$shm_client"
	# the client's two segments, removed, each attached by it and by Xvfb
	segs=$(sed -n 's/^READY //p' "$d/shm.out")
	rounds0=$(grep -c '^round' "$d/shm.out")
	checkpoint apps/xvfb "$pid" "$d" || out=failed
	if [ -z "$out" ]; then
		if [ "${APPS_CORRUPT:-}" = framebuffer ]; then # what a server restarted blank would show
			python3 -c 'import ctypes, sys
libc = ctypes.CDLL(None); libc.shmat.restype = ctypes.c_void_p
a = libc.shmat(int(sys.argv[1]), None, 0); ctypes.memset(a + 4096, 0, 200000)' "$shmid"
		fi
		local mark attached
		mark=$(DISPLAY=$dpy XAUTHORITY=$auth xprop -root STASIS_MARK 2>&1)
		shot1=$(x_shot "$dpy" "$auth" "$eyes")
		tick0=$(x_shot "$dpy" "$auth" "$clock")
		# (its poll is made again with its whole timeout, which xclock sets up to 1.2 s: the
		# first redraw after the restore can come that late)
		sleep 2.2
		tick1=$(x_shot "$dpy" "$auth" "$clock")
		attached=$(ipcs -m | awk -v id="$shmid" '$2 == id { print $6 }')
		local seg_state
		seg_state=$(for s in $segs; do ipcs -m | awk -v id="$s" '$2 == id { print $6, $7 }'; done | tr '\n' ' ')
		rounds1=$(grep -c '^round' "$d/shm.out")
		if [ "$mark" != 'STASIS_MARK(STRING) = "before-dump"' ]; then
			out="the root window's property after the restore: '$mark' (expected before-dump)"
		elif [ "$(x_win "$dpy" "$auth" xeyes) $(x_win "$dpy" "$auth" xclock)" != "$eyes $clock" ]; then
			out="the windows after the restore: xeyes '$(x_win "$dpy" "$auth" xeyes)', xclock '$(x_win "$dpy" "$auth" xclock)' (expected $eyes and $clock)"
		elif [ "$shot1" != "$shot0" ]; then
			out="xeyes' window's pixels (the framebuffer, SysV segment $shmid) changed across the checkpoint"
		elif [ "$tick0" = "$tick1" ]; then
			out="xclock did not redraw its seconds after the restore (its connection to the server)"
		elif [ "$attached" != 1 ]; then
			out="the framebuffer's SysV segment $shmid: attached $attached times after the restore (expected 1: Xvfb)"
		elif [ "$seg_state" != "2 dest 2 dest " ]; then
			out="xshm-client's segments $segs after the restore: attach counts and states '$seg_state' (expected 2 dest for each: removed, attached by Xvfb and the client)"
		elif [ "$rounds1" -le "$rounds0" ] || grep -q 'bad [1-9]' "$d/shm.out"; then
			out="xshm-client's rounds did not go on right after the restore: $(tail -n 2 "$d/shm.out" | tr '\n' '|') (had $rounds0 lines of rounds before)"
		elif ! kill -TERM "$shm_client" || ! wait_until 5 grep -q '^PASS' "$d/shm.out"; then
			out="xshm-client's own verdict: $(tail -n 1 "$d/shm.out")"
		else
			# the server drops xclock's connection: xclock ends, so xvfb-run stops Xvfb and ends
			DISPLAY=$dpy XAUTHORITY=$auth xkill -id "$clock" >/dev/null 2>&1
			wait_until 10 pid_free "$pid" || out="xvfb-run did not end once xclock's connection was killed (xkill)"
		fi
	fi
	kill_ours "$shm_client"
	# (SIGTERM first: Xvfb removes its lock file and socket)
	[ -n "$xpid" ] && proc_alive "$xpid" && pid_is_ours "$xpid" && kill -TERM "$xpid"
	wait_until 5 not_alive "$xpid"
	kill_ours "$xpid"
	kill_ours "$pid"
	[ -n "$shmid" ] && ipcrm -m "$shmid" 2>/dev/null # Xvfb -shmem leaves its segment
	verdict apps/xvfb "$out" "xvfb-run, Xvfb (framebuffer in SysV segment), xclock and xeyes: the root window's property, the windows and xeyes' pixels kept, xclock redraws over its connection, MIT-SHM images in removed segments shared by the client and Xvfb go on ($rounds0 -> ${rounds1:-?} rounds), a client connects after the restore, xkill ends xclock; $(ckpt_times "$d")" \
		"$d/xvfb.err" "$d/img/dump.log" "$d/img/restore.log"
}

# stop_server PID [PID...]: SIGTERM to server PID (SIGKILL should it linger), then SIGKILL to
# the pids given and to the children its end may leave behind
stop_server() {
	local pid=$1 left p
	shift
	left=$(pgrep -P "$pid")
	kill -TERM "$pid" 2>/dev/null
	wait_until 10 pid_free "$pid" || kill_ours "$pid"
	for p in "$@" $left; do kill_ours "$p"; done
}

# apache_serving PORT N: N new connections, one after the other, each fetching mod_status's
# page, in which the serving worker's row is the one whose request is this very one; prints
# the serving pids with their counts: "PID:N ..." (sorted by pid)
apache_serving() {
	python3 - "$1" "$2" <<'PY'
import re, sys, urllib.request
port, n = int(sys.argv[1]), int(sys.argv[2])
seen = {}
for i in range(n):
    try:
        html = urllib.request.urlopen("http://127.0.0.1:%d/server-status?i=%d" % (port, i), timeout=5).read().decode()
    except OSError as e:
        print("error:%s" % e)
        sys.exit()
    for pid, row in re.findall(r"<tr><td><b>[^<]*</b></td><td>(\d+)</td>(.*?)</tr>", html, re.S):
        if "server-status?i=%d " % i in row:
            seen[pid] = seen.get(pid, 0) + 1
print(" ".join("%s:%d" % kv for kv in sorted(seen.items())))
PY
}
apache_accesses() { curl -s "http://127.0.0.1:$1/server-status?auto" | sed -n 's/^Total Accesses: //p'; }

case_apache() {
	local mpm=$1 name=apps/apache-$1 d=$ZOO_TMP/apache-$1 pid="" out="" port=$(app_port $2)
	if [ ! -x /usr/sbin/apache2 ]; then
		result_fail "$name" "apache2 is not installed (make setup installs it)"
		return
	fi
	mkdir -p "$d/img" "$d/www" "$d/run"
	chmod 711 "$ZOO_TMP"
	chmod 755 "$d" "$d/www"
	seq 1 100000 >"$d/www/big.txt"
	echo hello >"$d/www/index.html"
	chmod 644 "$d/www/"*
	cat >"$d/httpd.conf" <<CONF
ServerRoot /etc/apache2
DefaultRuntimeDir $d/run
PidFile $d/run/httpd.pid
ErrorLog $d/error.log
LogLevel info
Listen 127.0.0.1:$port
ServerName 127.0.0.1
User www-data
Group www-data
LoadModule mpm_${mpm}_module /usr/lib/apache2/modules/mod_mpm_$mpm.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule mime_module /usr/lib/apache2/modules/mod_mime.so
LoadModule status_module /usr/lib/apache2/modules/mod_status.so
<IfModule mpm_prefork_module>
	# two listeners: the children take turns with an accept mutex, a SysV semaphore (SEM_UNDO)
	Listen 127.0.0.1:$((port + 1))
	Mutex sysvsem default
</IfModule>
TypesConfig /etc/mime.types
DocumentRoot $d/www
KeepAlive On
KeepAliveTimeout 300
MaxKeepAliveRequests 0
ExtendedStatus On
StartServers 2
ServerLimit 2
<IfModule mpm_prefork_module>
	MinSpareServers 2
	MaxSpareServers 2
	MaxRequestWorkers 2
</IfModule>
<IfModule mpm_event_module>
	ThreadsPerChild 25
	MinSpareThreads 50
	MaxSpareThreads 50
	MaxRequestWorkers 50
</IfModule>
<Location /server-status>
	SetHandler server-status
	Require all granted
</Location>
<Directory $d/www>
	Require all granted
</Directory>
CONF
	(cd "$d" && exec setsid apache2 -f "$d/httpd.conf" -DFOREGROUND </dev/null >"$d/log" 2>&1) &
	pid=$!
	disown "$pid"
	track_pid "$pid"
	local children=""
	if wait_until 10 curl -sf "http://127.0.0.1:$port/index.html" -o /dev/null; then
		wait_until 10 sh -c "[ \$(pgrep -P $pid | wc -l) = 2 ]"
		children=$(pgrep -P "$pid" | sort | tr '\n' ' ')
	fi
	if [ "$(wc -w <<<"$children")" != 2 ]; then
		result_fail "$name" "the server did not start with 2 children ($children): $(tail -c 300 "$d/error.log" "$d/log" 2>&1)"
		kill_ours "$pid"
		return
	fi
	keepalive_start "$d" "$port" "GET /index.html" "GET /big.txt"
	local acc_before
	acc_before=$(apache_accesses "$port")
	CKPT_OPTS=(--tcp-established)
	checkpoint "$name" "$pid" "$d" || out=failed
	CKPT_OPTS=()
	local want served acc after_children graceful=""
	if [ -z "$out" ] && [ "${APPS_CORRUPT:-}" = restart ]; then
		kill -KILL "$pid" $(pgrep -P "$pid")
		wait_until 10 pid_free "$pid"
		(cd "$d" && exec setsid apache2 -f "$d/httpd.conf" -DFOREGROUND </dev/null >"$d/log" 2>&1) &
		pid=$!
		disown "$pid"
		track_pid "$pid"
		wait_until 10 curl -sf "http://127.0.0.1:$port/index.html" -o /dev/null
	fi
	if [ -z "$out" ]; then
		echo go >&"$KA_FD"
		wait_until 10 grep -qs '^2 ' "$d/client"
		want="2 $(md5sum <"$d/www/big.txt" | cut -d' ' -f1) HTTP/1.1 200 OK"
		# (60: which child a new connection goes to is the kernel's choice, often one far more
		# than the other: 20 once went all to one)
		served=$(apache_serving "$port" 60)
		acc=$(apache_accesses "$port")
		# prefork: one child holds the accept mutex (in epoll), the other waits in semtimedop
		local waiting=-
		if [ "$mpm" = prefork ]; then
			curl -sf "http://127.0.0.1:$((port + 1))/index.html" -o /dev/null || waiting="no answer on the second listener"
			sleep 0.3
			[ "$waiting" = - ] && waiting=$(for c in $children; do cut -d' ' -f1 "/proc/$c/syscall"; done | grep -cx -e 220 -e 65)
		fi
		after_children=$(pgrep -P "$pid" | sort | tr '\n' ' ')
		kill -USR1 "$pid" # a graceful restart: the restored parent forks new children
		wait_until 10 sh -c "[ \"\$(pgrep -P $pid | sort | tr '\n' ' ')\" != '$children' ] && curl -sf http://127.0.0.1:$port/index.html -o /dev/null"
		graceful=$(pgrep -P "$pid" | sort | tr '\n' ' ')
		if ! grep -q '^1 .* HTTP/1.1 200 OK$' "$d/client" || ! grep -qx "$want" "$d/client"; then
			out="the keep-alive client read: $(tr '\n' '|' <"$d/client") (expected '$want' last)"
		elif [ "$after_children" != "$children" ] || [ "$(echo "$served" | wc -w)" != 2 ] ||
			[[ " $children" != *" ${served%%:*} "* ]]; then
			out="after the restore new connections were served by '$served' (children before: $children, after: $after_children)"
		elif ! [[ $acc =~ ^[0-9]+$ && $acc_before =~ ^[0-9]+$ ]] || [ "$acc" -lt $((acc_before + 60)) ]; then
			out="the scoreboard's Total Accesses: $acc_before before the dump, '$acc' after 60 more requests"
		elif [ "$waiting" != - ] && [ "$waiting" != 1 ]; then
			out="prefork's accept mutex after the restore: $waiting children wait for it (1 expected: the other holds it)"
		elif [ -z "$graceful" ] || [ "$graceful" = "$children" ]; then
			out="a graceful restart (SIGUSR1) of the restored parent: children '$graceful' (were $children)"
		fi
	fi
	keepalive_end
	if [ "$out" != failed ]; then
		stop_server "$pid" $children
	fi
	verdict "$name" "$out" "parent and 2 children; the keep-alive connection fetched 100,000 lines after the restore, new connections served by both children ($served), accesses $acc_before -> $acc, a graceful restart forked new children; $(ckpt_times "$d")" \
		"$d/error.log" "$d/img/dump.log" "$d/img/restore.log"
}
case_apache_event() { case_apache event 41; }
case_apache_prefork() { case_apache prefork 42; }

# varnish_stat DIR FIELD: a counter of the varnishd whose -n directory is DIR
varnish_stat() { varnishstat -n "$1" -1 -f "$2" 2>/dev/null | awk '{print $2}'; }

case_varnish() {
	local name=apps/varnish d=$ZOO_TMP/varnish pid="" out="" be="" port=$(app_port 43)
	local beport=$(app_port 44) cliport=$(app_port 45)
	if ! command -v varnishd >/dev/null; then
		result_fail "$name" "varnish is not installed (make setup installs it)"
		return
	fi
	mkdir -p "$d/img" "$d/www"
	chmod 711 "$ZOO_TMP"
	chmod 755 "$d"
	seq 1 50000 >"$d/www/big.txt"
	echo obj1 >"$d/www/obj.txt"
	local w=$d/work adm=(varnishadm -n "$d/work")
	# the backend: outside the tree, HTTP/1.1 (varnishd keeps its connection in a pool)
	(cd "$d/www" && exec setsid /usr/bin/python3 -m http.server -p HTTP/1.1 -b 127.0.0.1 "$beport" </dev/null >"$d/backend.log" 2>&1) &
	be=$!
	disown "$be"
	track_pid "$be"
	(cd "$d" && exec setsid varnishd -F -n "$w" -a "127.0.0.1:$port" -T "127.0.0.1:$cliport" -b "127.0.0.1:$beport" \
		-s malloc,32m -p thread_pool_min=10 </dev/null >"$d/log" 2>&1) &
	pid=$!
	disown "$pid"
	track_pid "$pid"
	local xid="" obj="" child=""
	if wait_until 20 sh -c "curl -sf http://127.0.0.1:$port/obj.txt | grep -q obj1"; then
		# a hit: "X-Varnish: REQUEST OBJECT", the ids of this request and of the fetch that made the object
		read -r xid obj < <(curl -s -D - "http://127.0.0.1:$port/obj.txt" -o /dev/null | tr -d '\r' |
			sed -n 's/^X-Varnish: \([0-9]*\) \([0-9]*\)$/\1 \2/p')
		child=$(pgrep -P "$pid")
	fi
	if [ -z "$xid" ] || [ -z "$child" ]; then
		result_fail "$name" "varnishd did not start or did not cache (a hit's X-Varnish: '$xid'): $(tail -c 300 "$d/log" "$d/backend.log" 2>&1)"
		kill_ours "$pid"
		kill_ours "$be"
		return
	fi
	keepalive_start "$d" "$port" "GET /obj.txt" "GET /obj.txt" "GET /big.txt"
	local hits_before up_before
	hits_before=$(varnish_stat "$w" MAIN.cache_hit)
	up_before=$(varnish_stat "$w" MAIN.uptime)
	CKPT_OPTS=(--tcp-established --file-locks) # the manager locks its _.pid
	checkpoint "$name" "$pid" "$d" || out=failed
	CKPT_OPTS=()
	if [ -z "$out" ] && [ "${APPS_CORRUPT:-}" = restart ]; then
		kill -TERM "$pid"
		wait_until 10 pid_free "$pid"
		(cd "$d" && exec setsid varnishd -F -n "$w" -a "127.0.0.1:$port" -T "127.0.0.1:$cliport" -b "127.0.0.1:$beport" \
			-s malloc,32m -p thread_pool_min=10 </dev/null >>"$d/log" 2>&1) &
		pid=$!
		disown "$pid"
		track_pid "$pid"
		wait_until 20 curl -sf "http://127.0.0.1:$port/obj.txt" -o /dev/null
	fi
	local want body fresh hits up starts status logged banned restarted
	if [ -z "$out" ]; then
		echo obj2 >"$d/www/obj.txt" # what the backend has now; the cache still has obj1
		echo go >&"$KA_FD"
		echo go >&"$KA_FD"
		wait_until 10 grep -qs '^3 ' "$d/client"
		want="3 $(md5sum <"$d/www/big.txt" | cut -d' ' -f1) HTTP/1.1 200 OK"
		body="2 $(echo obj1 | md5sum | cut -d' ' -f1) HTTP/1.1 200 OK"
		fresh=$(curl -s -D "$d/fresh.head" "http://127.0.0.1:$port/obj.txt")
		hits=$(varnish_stat "$w" MAIN.cache_hit)
		up=$(varnish_stat "$w" MAIN.uptime)
		starts=$(varnish_stat "$w" MGT.child_start)
		status=$("${adm[@]}" status 2>&1)
		# the request before the dump, in the child's shared-memory log
		logged=$(timeout 10 varnishlog -n "$w" -d -g raw -i ReqURL 2>/dev/null | awk -v x="$xid" '$1 == x' | wc -l)
		"${adm[@]}" ban req.url '~' '^/obj' >/dev/null 2>&1
		banned=$(curl -s "http://127.0.0.1:$port/obj.txt")
		"${adm[@]}" stop >/dev/null 2>&1
		"${adm[@]}" start >/dev/null 2>&1
		wait_until 10 sh -c "curl -sf http://127.0.0.1:$port/obj.txt | grep -q obj2"
		restarted="$(pgrep -P "$pid") $(varnish_stat "$w" MGT.child_start)"
		if ! grep -qx "$body" "$d/client" || ! grep -qx "$want" "$d/client"; then
			out="the keep-alive client read: $(tr '\n' '|' <"$d/client") (expected the cached obj1, then the 50,000 lines)"
		elif [ "$fresh" != obj1 ] || ! grep -q "^X-Varnish: [0-9]* $obj"$'\r'"$" "$d/fresh.head"; then
			out="a new connection read '$fresh' ($(grep X-Varnish "$d/fresh.head" | tr -d '\r')): the cached obj1 (object $obj) expected"
		elif ! [[ $hits =~ ^[0-9]+$ && $up =~ ^[0-9]+$ ]] || [ "$hits" -lt $((hits_before + 2)) ] ||
			[ "$up" -lt "$up_before" ] || [ "$starts" != 1 ] || [ "$status" != "Child in state running" ]; then
			out="varnishstat after the restore: cache_hit $hits_before -> '$hits', child uptime $up_before -> '$up', child starts '$starts'; varnishadm status: '$status'"
		elif [ "$logged" -lt 1 ]; then
			out="varnishlog -d does not show request $xid (made before the dump)"
		elif [ "$banned" != obj2 ]; then
			out="after a ban through varnishadm the object read '$banned' (obj2 from the backend expected)"
		elif [ "$restarted" = "$child 1" ] || [[ $restarted != *" 2" ]]; then
			out="varnishadm stop/start: the child and its starts are '$restarted' (a new child expected; was $child)"
		fi
	fi
	keepalive_end
	if [ "$out" != failed ]; then
		kill -TERM "$pid" 2>/dev/null
		wait_until 10 pid_free "$pid" || kill_ours "$pid"
	fi
	kill_ours "$be"
	verdict "$name" "$out" "manager and child; the keep-alive connection and a new one hit the cached object (the backend changed), 50,000 lines fetched, varnishstat (hits $hits_before -> $hits, child uptime $up_before -> $up), varnishlog -d and varnishadm (status, ban, stop/start: a new child) work; $(ckpt_times "$d")" \
		"$d/log" "$d/img/dump.log" "$d/img/restore.log"
}

# squid_counter PORT NAME: a counter of squid's cache manager (mgr:counters)
squid_counter() { curl -s "http://127.0.0.1:$1/squid-internal-mgr/counters" | sed -n "s/^$2 = //p"; }

case_squid() {
	local name=apps/squid d=$ZOO_TMP/squid pid="" out="" be="" port=$(app_port 46)
	local beport=$(app_port 47)
	if ! command -v squid >/dev/null; then
		result_fail "$name" "squid is not installed (make setup installs it)"
		return
	fi
	mkdir -p "$d/img" "$d/www" "$d/cache"
	chmod 711 "$ZOO_TMP"
	chmod 755 "$d"
	seq 1 50000 >"$d/www/big.txt"
	echo obj1 >"$d/www/obj.txt"
	cat >"$d/squid.conf" <<CONF
http_port 127.0.0.1:$port
visible_hostname stasis-apps
pid_filename $d/squid.pid
cache_log $d/cache.log
access_log stdio:$d/access.log
cache_store_log none
coredump_dir $d
cache_effective_user proxy
cache_mem 16 MB
maximum_object_size_in_memory 8 KB
cache_dir ufs $d/cache 16 4 4
refresh_pattern . 10 100% 10 override-lastmod
http_access allow localhost manager
http_access allow localhost
http_access deny all
icp_port 0
htcp_port 0
snmp_port 0
dns_nameservers 127.0.0.1
netdb_filename none
shutdown_lifetime 1 seconds
CONF
	touch "$d/cache.log" "$d/access.log"
	chown proxy "$d/cache" "$d/cache.log" "$d/access.log"
	if ! squid -f "$d/squid.conf" -z -N >"$d/log" 2>&1; then
		result_fail "$name" "squid -z failed: $(tail -c 300 "$d/log")"
		return
	fi
	(cd "$d/www" && exec setsid /usr/bin/python3 -m http.server -p HTTP/1.1 -b 127.0.0.1 "$beport" </dev/null >"$d/backend.log" 2>&1) &
	be=$!
	disown "$be"
	track_pid "$be"
	(cd "$d" && exec setsid squid --foreground -f "$d/squid.conf" </dev/null >>"$d/log" 2>&1) &
	pid=$!
	disown "$pid"
	track_pid "$pid"
	local via=(curl -s -x "http://127.0.0.1:$port") obj=http://127.0.0.1:$beport/obj.txt big=http://127.0.0.1:$beport/big.txt
	local kid="" start=""
	# the small object in memory, the big one (over maximum_object_size_in_memory) in the ufs dir
	if wait_until 20 sh -c "${via[*]} $obj | grep -q obj1" && "${via[@]}" "$big" -o /dev/null &&
		wait_until 5 sh -c "ls $d/cache/00/00 | grep -q 1"; then
		kid=$(pgrep -P "$pid")
		start=$(curl -s "http://127.0.0.1:$port/squid-internal-mgr/info" | grep '^Start Time:')
	fi
	if [ -z "$kid" ] || [ -z "$start" ]; then
		result_fail "$name" "squid did not start or did not cache (kid '$kid'): $(grep -hE -m 5 'FATAL|ERROR' "$d/cache.log" "$d/log") $(tail -c 300 "$d/cache.log" "$d/log" 2>&1)"
		kill_ours "$pid"
		kill_ours "$be"
		return
	fi
	keepalive_start "$d" "$port" "GET $obj" "GET $obj" "GET $big"
	local hits_before
	hits_before=$(squid_counter "$port" client_http.hits)
	CKPT_OPTS=(--tcp-established --file-locks)
	checkpoint "$name" "$pid" "$d" || out=failed
	CKPT_OPTS=()
	if [ -z "$out" ] && [ "${APPS_CORRUPT:-}" = restart ]; then
		kill -KILL "$pid" "$kid"
		wait_until 10 pid_free "$pid"
		(cd "$d" && exec setsid squid --foreground -f "$d/squid.conf" </dev/null >>"$d/log" 2>&1) &
		pid=$!
		disown "$pid"
		track_pid "$pid"
		wait_until 20 sh -c "${via[*]} $obj -o /dev/null"
	fi
	local want body fresh hits start2 kid2 reconf
	if [ -z "$out" ]; then
		echo obj2 >"$d/www/obj.txt" # what the backend has now; the cache still has obj1
		echo go >&"$KA_FD"
		echo go >&"$KA_FD"
		wait_until 10 grep -qs '^3 ' "$d/client"
		want="3 $(md5sum <"$d/www/big.txt" | cut -d' ' -f1) HTTP/1.1 200 OK"
		body="2 $(echo obj1 | md5sum | cut -d' ' -f1) HTTP/1.1 200 OK"
		fresh=$("${via[@]}" -D "$d/fresh.head" "$obj")
		hits=$(squid_counter "$port" client_http.hits)
		start2=$(curl -s "http://127.0.0.1:$port/squid-internal-mgr/info" | grep '^Start Time:')
		kid2=$(pgrep -P "$pid")
		squid -f "$d/squid.conf" -k reconfigure >>"$d/log" 2>&1
		wait_until 10 grep -q 'Reconfiguring Squid Cache' "$d/cache.log"
		sleep 1
		reconf=$("${via[@]}" "$big" | md5sum | cut -d' ' -f1)
		if ! grep -qx "$body" "$d/client" || ! grep -qx "$want" "$d/client"; then
			out="the keep-alive client read: $(tr '\n' '|' <"$d/client") (expected the cached obj1, then the 50,000 lines from the cache dir)"
		elif [ "$fresh" != obj1 ] || ! grep -q '^X-Cache: HIT' "$d/fresh.head"; then
			out="a new connection read '$fresh' ($(grep X-Cache: "$d/fresh.head" | tr -d '\r')): a hit on the cached obj1 expected"
		elif ! [[ $hits =~ ^[0-9]+$ && $hits_before =~ ^[0-9]+$ ]] || [ "$hits" -lt $((hits_before + 3)) ] ||
			[ "$start2" != "$start" ] || [ "$kid2" != "$kid" ]; then
			out="the cache manager after the restore: client_http.hits $hits_before -> '$hits', '$start2' (was '$start'), kid '$kid2' (was $kid)"
		elif [ "$(md5sum <"$d/www/big.txt" | cut -d' ' -f1)" != "$reconf" ]; then
			out="after squid -k reconfigure the big object was not served"
		fi
	fi
	keepalive_end
	if [ "$out" != failed ]; then
		# the kid's helpers: pingers (one per configuration) outlive squid by up to 10 s
		stop_server "$pid" $(pgrep -P "$(pgrep -P "$pid" | head -n 1)")
	fi
	kill_ours "$be"
	verdict "$name" "$out" "master, kid, unlinkd and pinger; the keep-alive connection and a new one hit the cached object (the backend changed), the keep-alive connection read 50,000 lines from the ufs cache dir, mgr:counters hits $hits_before -> $hits, the same start time and kid, squid -k reconfigure works; $(ckpt_times "$d")" \
		"$d/cache.log" "$d/img/dump.log" "$d/img/restore.log"
}

# a line echo server outside the tree (python3), on 127.0.0.1:PORT; its pid in ECHO_PID
echo_server_start() {
	setsid /usr/bin/python3 -c '
import socketserver, sys
class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            self.wfile.write(line)
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer(("127.0.0.1", int(sys.argv[1])), Echo).serve_forever()' "$1" </dev/null >/dev/null 2>&1 &
	ECHO_PID=$!
	disown "$ECHO_PID"
	track_pid "$ECHO_PID"
}

case_tinyproxy() {
	local name=apps/tinyproxy d=$ZOO_TMP/tinyproxy pid="" out="" port=$(app_port 54) eport=$(app_port 55)
	if ! command -v tinyproxy >/dev/null; then
		result_fail "$name" "tinyproxy is not installed (make setup installs it)"
		return
	fi
	mkdir -p "$d/img"
	chmod 711 "$ZOO_TMP"
	chmod 777 "$d" # its threads run as nobody
	cat >"$d/tinyproxy.conf" <<CONF
User nobody
Group nogroup
Port $port
Listen 127.0.0.1
Timeout 600
LogFile "$d/tinyproxy.log"
LogLevel Info
MaxClients 20
Allow 127.0.0.1
ConnectPort $eport
CONF
	echo_server_start "$eport"
	(cd "$d" && exec setsid tinyproxy -d -c "$d/tinyproxy.conf" </dev/null >"$d/log" 2>&1) &
	pid=$!
	disown "$pid"
	track_pid "$pid"
	if ! wait_until 10 python3 -c "import socket; socket.create_connection(('127.0.0.1', $port))" 2>/dev/null ||
		! wait_until 10 python3 -c "import socket; socket.create_connection(('127.0.0.1', $eport))" 2>/dev/null; then
		result_fail "$name" "tinyproxy or the echo server did not start: $(tail -c 300 "$d/log")"
		kill_ours "$pid"
		kill_ours "$ECHO_PID"
		return
	fi
	# the tunnel's relay waits in poll() with a relative timeout (Timeout): an EINTR after the
	# restore would end it
	keepalive_start "$d" "$port" "CONNECT 127.0.0.1:$eport" "ECHO before" "ECHO after" "ECHO later"
	echo go >&"$KA_FD"
	wait_until 10 grep -qs '^2 ' "$d/client"
	sleep 0.5
	CKPT_OPTS=(--tcp-established)
	checkpoint "$name" "$pid" "$d" || out=failed
	CKPT_OPTS=()
	if [ -z "$out" ] && [ "${APPS_CORRUPT:-}" = restart ]; then
		kill -KILL "$pid"
		wait_until 10 pid_free "$pid"
		(cd "$d" && exec setsid tinyproxy -d -c "$d/tinyproxy.conf" </dev/null >>"$d/log" 2>&1) &
		pid=$!
		disown "$pid"
		track_pid "$pid"
		wait_until 10 python3 -c "import socket; socket.create_connection(('127.0.0.1', $port))" 2>/dev/null
	fi
	local fresh=""
	if [ -z "$out" ]; then
		echo go >&"$KA_FD"
		wait_until 10 grep -qs '^3 ' "$d/client"
		sleep 1 # a relay woken by a false EINTR closes the tunnel now
		echo go >&"$KA_FD"
		wait_until 10 grep -qs '^4 ' "$d/client"
		fresh=$(python3 -c "
import socket
s = socket.create_connection(('127.0.0.1', $port))
s.sendall(b'CONNECT 127.0.0.1:$eport HTTP/1.1\\r\\n\\r\\n')
head = b''
while b'\\r\\n\\r\\n' not in head:
    head += s.recv(1)
s.sendall(b'fresh\\n')
print(s.recv(100).decode().strip())" 2>&1)
		if ! grep -q '^1 .* HTTP/1.[01] 200' "$d/client" || ! grep -qx '2 [0-9a-f]* before' "$d/client" ||
			! grep -qx '3 [0-9a-f]* after' "$d/client" || ! grep -qx '4 [0-9a-f]* later' "$d/client"; then
			out="the tunnel's client read: $(tr '\n' '|' <"$d/client") (expected 200, then before, after and later echoed)"
		elif [ "$fresh" != fresh ]; then
			out="a new tunnel after the restore: '$fresh'"
		elif ! proc_alive "$pid"; then
			out="tinyproxy is gone"
		fi
	fi
	keepalive_end
	[ "$out" = failed ] || kill_ours "$pid"
	kill_ours "$ECHO_PID"
	verdict "$name" "$out" "a CONNECT tunnel (its relay in poll() with a 600 s timeout) echoes on after the restore, a new tunnel works; $(ckpt_times "$d")" \
		"$d/tinyproxy.log" "$d/img/dump.log" "$d/img/restore.log"
}

case_lighttpd() {
	local name=apps/lighttpd d=$ZOO_TMP/lighttpd pid="" out="" port=$(app_port 48)
	if ! command -v lighttpd >/dev/null; then
		result_fail "$name" "lighttpd is not installed (make setup installs it)"
		return
	fi
	mkdir -p "$d/img" "$d/www/cgi-bin" "$d/run"
	chmod 711 "$ZOO_TMP"
	chmod 755 "$d" "$d/www" "$d/www/cgi-bin"
	seq 1 50000 >"$d/www/big.txt"
	echo hello >"$d/www/index.txt"
	# shellcheck disable=SC2016 # $PPID is the script's
	printf '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\ncgi ppid %%s\\n" $PPID\n' >"$d/www/cgi-bin/ppid.sh"
	chmod 755 "$d/www/cgi-bin/ppid.sh"
	chmod 644 "$d/www/"*.txt
	touch "$d/error.log"
	chown www-data "$d/run" "$d/error.log"
	cat >"$d/lighttpd.conf" <<CONF
server.modules = ("mod_fastcgi", "mod_cgi", "mod_status")
server.document-root = "$d/www"
server.bind = "127.0.0.1"
server.port = $port
server.username = "www-data"
server.groupname = "www-data"
server.pid-file = "$d/run/lighttpd.pid"
server.errorlog = "$d/error.log"
server.max-keep-alive-idle = 300
mimetype.assign = (".txt" => "text/plain")
status.statistics-url = "/server-statistics"
cgi.assign = (".sh" => "")
fastcgi.server = ("/app" => (("socket" => "$d/run/fcgi.sock", "max-procs" => 2, "check-local" => "disable",
	"bin-path" => "/usr/bin/python3 $ZOO_ROOT/tests/apps/fcgi-counter.py")))
CONF
	(cd "$d" && exec setsid lighttpd -D -f "$d/lighttpd.conf" </dev/null >"$d/log" 2>&1) &
	pid=$!
	disown "$pid"
	track_pid "$pid"
	local app1="" fcgi=""
	if wait_until 20 sh -c "curl -sf http://127.0.0.1:$port/app | grep -q ^pid="; then
		app1=$(curl -s "http://127.0.0.1:$port/app")
		fcgi=$(pgrep -P "$pid" | sort | tr '\n' ' ')
	fi
	if [ -z "$app1" ] || [ "$(wc -w <<<"$fcgi")" != 2 ]; then
		result_fail "$name" "lighttpd and its 2 FastCGI responders did not start ($fcgi): $(tail -c 300 "$d/error.log" "$d/log" 2>&1)"
		kill_ours "$pid"
		for p in $fcgi; do kill_ours "$p"; done
		return
	fi
	keepalive_start "$d" "$port" "GET /index.txt" "GET /big.txt"
	local req_before
	req_before=$(curl -s "http://127.0.0.1:$port/server-statistics" | sed -n 's/^fastcgi.requests: //p')
	CKPT_OPTS=(--tcp-established)
	checkpoint "$name" "$pid" "$d" || out=failed
	CKPT_OPTS=()
	if [ -z "$out" ] && [ "${APPS_CORRUPT:-}" = restart ]; then
		# shellcheck disable=SC2086 # the responders' pids
		kill -KILL "$pid" $fcgi
		wait_until 10 pid_free "$pid"
		(cd "$d" && exec setsid lighttpd -D -f "$d/lighttpd.conf" </dev/null >>"$d/log" 2>&1) &
		pid=$!
		disown "$pid"
		track_pid "$pid"
		wait_until 20 sh -c "curl -sf http://127.0.0.1:$port/app | grep -q ^pid="
	fi
	local want app2 slow cgi req p1 c1 t1 p2 c2 t2
	if [ -z "$out" ]; then
		echo go >&"$KA_FD"
		wait_until 10 grep -qs '^2 ' "$d/client"
		want="2 $(md5sum <"$d/www/big.txt" | cut -d' ' -f1) HTTP/1.1 200 OK"
		app2=$(curl -s "http://127.0.0.1:$port/app")
		# two at a time: the busy responder makes lighttpd give the other request to the other one
		slow=$( (curl -s "http://127.0.0.1:$port/app?slow" & curl -s "http://127.0.0.1:$port/app?slow"; wait) |
			sed -n 's/^pid=\([0-9]*\) .*/\1/p' | sort | tr '\n' ' ')
		cgi=$(curl -s "http://127.0.0.1:$port/cgi-bin/ppid.sh")
		req=$(curl -s "http://127.0.0.1:$port/server-statistics" | sed -n 's/^fastcgi.requests: //p')
		read -r p1 c1 t1 < <(sed -n 's/^pid=\([0-9]*\) count=\([0-9]*\) ticks=\([0-9]*\)$/\1 \2 \3/p' <<<"$app1")
		read -r p2 c2 t2 < <(sed -n 's/^pid=\([0-9]*\) count=\([0-9]*\) ticks=\([0-9]*\)$/\1 \2 \3/p' <<<"$app2")
		if ! grep -q '^1 .* HTTP/1.1 200 OK$' "$d/client" || ! grep -qx "$want" "$d/client"; then
			out="the keep-alive client read: $(tr '\n' '|' <"$d/client") (expected '$want' last)"
		elif [ -z "$p2" ] || [ "$p2" != "$p1" ] || [ "$c2" != $((c1 + 1)) ] || [ "$t2" -le "$t1" ]; then
			out="the FastCGI responder answered '$app1' before the dump and '$app2' after (the same pid, the next count, more ticks expected)"
		elif [ "$slow" != "$fcgi" ]; then
			out="two requests at a time after the restore were answered by '$slow' (the responders $fcgi expected)"
		elif [ "$cgi" != "cgi ppid $pid" ]; then
			out="a CGI request after the restore read '$cgi' (cgi ppid $pid expected)"
		elif ! [[ $req =~ ^[0-9]+$ && $req_before =~ ^[0-9]+$ ]] || [ "$req" -lt $((req_before + 3)) ]; then
			out="mod_status's fastcgi.requests: $req_before before the dump, '$req' after 3 more"
		fi
	fi
	keepalive_end
	if [ "$out" != failed ]; then
		stop_server "$pid" $fcgi
	fi
	verdict "$name" "$out" "lighttpd and 2 FastCGI responders (python3: a thread each); the keep-alive connection fetched 50,000 lines, the responder went on ($app1 -> $app2), both answered at once, a CGI child forked, fastcgi.requests $req_before -> $req; $(ckpt_times "$d")" \
		"$d/error.log" "$d/img/dump.log" "$d/img/restore.log"
}

# kill_session PID: every process of the session PID leads (an on-request desktop
# application's whole tree, restored or not), PID last
kill_session() {
	local p
	for p in $(pgrep -s "$1"); do kill_ours "$p"; done
	kill_ours "$1"
}

# cdp PORT WHICH EXPR: EXPR evaluated in Chromium's page WHICH (id or URL prefix), as JSON
cdp() { timeout 30 "$(system_python)" "$ZOO_ROOT/tests/apps/cdp.py" "$@" 2>&1; }

# page_went_on MARK BEFORE AFTER LATER: a browser case's page read at the dump (its counter
# BEFORE), after the restore (AFTER: [N, "MARK"]) and 1 s later (LATER); sets the caller's n1
# to N, and its out to what is wrong unless the mark was kept and the counter went on
page_went_on() {
	local m1
	n1=$(sed -n 's/^\[\([0-9]*\), .*/\1/p' <<<"$3")
	m1=$(sed -n 's/^\[[0-9]*, "\(.*\)"\]$/\1/p' <<<"$3")
	if [ "$m1" != "$1" ]; then
		out="the page's mark after the restore: '$3' (expected [N, \"$1\"])"
	elif ! [[ $2 =~ ^[0-9]+$ && $n1 =~ ^[0-9]+$ && $4 =~ ^[0-9]+$ ]] || [ "$n1" -lt "$2" ] ||
		[ "$4" -le "$n1" ]; then
		out="the page's counter: $2 at the dump, '$n1' after the restore, '$4' 1 s later (going on expected)"
	fi
}

# chromium_start DIR PORT URL: Chromium headless started as a user would (its own session, a
# profile and XDG dirs in DIR); prints its pid
chromium_start() {
	(cd "$1" && XDG_CONFIG_HOME=$1/xdg XDG_CACHE_HOME=$1/xdg exec setsid /usr/lib/chromium/chromium --headless=new --no-sandbox --disable-crashpad-for-testing \
		--enable-features=NetworkServiceInProcess2 --no-first-run --remote-debugging-port="$2" \
		--user-data-dir="$1/profile" "$3" </dev/null >>"$1/out" 2>&1) &
	disown "$!"
	echo "$!"
}

case_chromium() {
	local d=$ZOO_TMP/chromium pid="" out="" port=$(app_port 61) mark="stasis-$$-$RANDOM"
	local before="" after="" later="" tab="" answer="" n1=""
	local page='data:text/html,<title>counter</title><script>var n=0;setInterval(()=>n++,100)</script>'
	if [ ! -x /usr/lib/chromium/chromium ]; then
		result_fail apps/chromium "chromium is not installed (apt-get install chromium; make setup does not)"
		return
	fi
	mkdir -p "$d/img"
	pid=$(chromium_start "$d" "$port" "$page")
	track_pid "$pid"
	if ! wait_until 30 eval "[ \"\$(cdp $port data: 'n > 20')\" = true ]"; then
		result_fail apps/chromium "the page did not count: $(cdp "$port" data: n | tail -c 300) $(tail -c 300 "$d/out")"
		out=failed
	else
		before=$(cdp "$port" data: "window.mark = '$mark'; n")
		CKPT_OPTS=(--tcp-established --file-locks)
		checkpoint apps/chromium "$pid" "$d" || out=failed
		CKPT_OPTS=()
	fi
	if [ -z "$out" ]; then
		if [ "${APPS_CORRUPT:-}" = restart ]; then
			kill_session "$pid"
			wait_until 10 pid_free "$pid"
			pid=$(chromium_start "$d" "$port" "$page")
			track_pid "$pid"
			wait_until 30 eval "[ \"\$(cdp $port data: 'n > 0')\" = true ]"
		fi
		after=$(cdp "$port" data: "[n, window.mark]")
		sleep 1
		later=$(cdp "$port" data: n)
		tab=$(cdp "$port" new)
		answer=$(cdp "$port" "$tab" "6*7")
		page_went_on "$mark" "$before" "$after" "$later"
		if [ -z "$out" ] && [ "$answer" != 42 ]; then
			out="a new tab ($tab) evaluated 6*7 as '$answer'"
		fi
	fi
	if [ "$out" != failed ]; then
		kill -TERM "$pid" 2>/dev/null
		wait_until 10 pid_free "$pid" || [ -n "$out" ] || out="the browser did not exit on SIGTERM"
	fi
	kill_session "$pid"
	verdict apps/chromium "$out" "the page's mark kept, its counter $before -> $n1 -> $later, a new tab answered; $(ckpt_times "$d")" \
		"$d/out" "$d/img/dump.log" "$d/img/restore.log"
}

# marionette PORT SCRIPT...: Firefox's answers (tests/apps/marionette.py)
marionette() { timeout 60 "$(system_python)" "$ZOO_ROOT/tests/apps/marionette.py" "$@" 2>&1; }

# firefox_start DIR: Firefox ESR headless on DIR/page.html (profile and XDG dirs in DIR), under
# the subreaper, its sandboxes off; prints the subreaper's pid
firefox_start() {
	(cd "$1" && XDG_CONFIG_HOME=$1/xdg XDG_CACHE_HOME=$1/xdg MOZ_DISABLE_CONTENT_SANDBOX=1 MOZ_DISABLE_GMP_SANDBOX=1 MOZ_DISABLE_RDD_SANDBOX=1 \
		MOZ_DISABLE_SOCKET_PROCESS_SANDBOX=1 MOZ_DISABLE_UTILITY_SANDBOX=1 exec setsid \
		"$ZOO_ROOT/tests/tools/bin/subreaper" firefox-esr --headless --marionette --no-remote \
		--profile "$1/profile" "file://$1/page.html" </dev/null >>"$1/out" 2>&1) &
	disown "$!"
	echo "$!"
}

case_firefox() {
	local d=$ZOO_TMP/firefox pid="" out="" port=$(app_port 67) mark="stasis-$$-$RANDOM"
	local before="" after="" later="" answer="" p n1=""
	if ! command -v firefox-esr >/dev/null; then
		result_fail apps/firefox "firefox-esr is not installed (apt-get install firefox-esr; make setup does not)"
		return
	fi
	mkdir -p "$d/img" "$d/profile"
	echo '<html><head><title>0</title></head><body><script>var n = 0; setInterval(() => { n++; document.title = String(n) }, 100)</script></body></html>' >"$d/page.html"
	cat >"$d/profile/user.js" <<PREFS
user_pref("marionette.port", $port);
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("toolkit.telemetry.reportingpolicy.firstRun", false);
user_pref("app.update.enabled", false);
PREFS
	pid=$(firefox_start "$d")
	track_pid "$pid"
	if ! wait_until 60 eval "[ \"\$(marionette $port 'return Number(document.title) > 20')\" = true ]"; then
		result_fail apps/firefox "the page did not count: $(marionette "$port" 'return document.title' | tail -c 300) $(tail -c 300 "$d/out")"
		out=failed
	else
		before=$(marionette "$port" "document.documentElement.setAttribute('mark', '$mark'); return Number(document.title)")
		CKPT_OPTS=(--tcp-established --file-locks)
		checkpoint apps/firefox "$pid" "$d" || out=failed
		CKPT_OPTS=()
	fi
	if [ -z "$out" ]; then
		if [ "${APPS_CORRUPT:-}" = restart ]; then
			kill_session "$pid"
			wait_until 10 pid_free "$pid"
			pid=$(firefox_start "$d")
			track_pid "$pid"
			wait_until 60 eval "[ \"\$(marionette $port 'return Number(document.title) > 0')\" = true ]"
		fi
		after=$(marionette "$port" "return [Number(document.title), document.documentElement.getAttribute('mark')]")
		sleep 1
		later=$(marionette "$port" "return Number(document.title)")
		answer=$(marionette "$port" "new:file://$d/page.html" "return [document.URL, 6*7]")
		page_went_on "$mark" "$before" "$after" "$later"
		if [ -z "$out" ] && [ "$answer" != "[\"file://$d/page.html\", 42]" ]; then
			out="a new tab answered '$answer'"
		fi
	fi
	if [ "$out" != failed ]; then
		kill -TERM "$pid" 2>/dev/null
		wait_until 20 pid_free "$pid" || [ -n "$out" ] || out="the browser did not exit on SIGTERM"
	fi
	for p in $(pgrep -P "$pid"); do kill_ours "$p"; done # (the subreaper's: sessions of their own)
	kill_session "$pid"
	verdict apps/firefox "$out" "the page's mark kept, its counter $before -> $n1 -> $later, a new tab answered; $(ckpt_times "$d")" \
		"$d/out" "$d/img/dump.log" "$d/img/restore.log"
}

# lo DIR ARG...: LibreOffice's answers over UNO (tests/apps/lo-client.py, the system's python3)
lo() { HOME=$1 timeout 30 /usr/bin/python3 "$ZOO_ROOT/tests/apps/lo-client.py" "${@:2}" 2>&1; }

# lo_start DIR PORT: soffice headless accepting UNO on PORT (HOME DIR); prints oosplash's pid
lo_start() {
	(cd "$1" && HOME=$1 exec setsid soffice --headless --norestore --nologo \
		"--accept=socket,host=127.0.0.1,port=$2;urp;" </dev/null >>"$1/out" 2>&1) &
	disown "$!"
	echo "$!"
}

case_libreoffice() {
	local d=$ZOO_TMP/libreoffice pid="" out="" port=$(app_port 71) mark="stasis-$$-$RANDOM"
	local docs="" made="" more=""
	if ! command -v soffice >/dev/null || ! /usr/bin/python3 -c 'import uno' 2>/dev/null; then
		result_fail apps/libreoffice "LibreOffice or python3-uno is not installed (apt-get install --no-install-recommends libreoffice-writer-nogui python3-uno)"
		return
	fi
	mkdir -p "$d/img"
	pid=$(lo_start "$d" "$port")
	track_pid "$pid"
	if ! wait_until 60 eval "ss -Hltn 'sport = :$port' | grep -q ." || [ "$(lo "$d" "$port" make "edited $mark")" != made ]; then
		result_fail apps/libreoffice "soffice did not answer: $(tail -c 300 "$d/out")"
		out=failed
	else
		CKPT_OPTS=(--tcp-established --file-locks)
		checkpoint apps/libreoffice "$pid" "$d" || out=failed
		CKPT_OPTS=()
	fi
	if [ -z "$out" ]; then
		if [ "${APPS_CORRUPT:-}" = restart ]; then
			kill_session "$pid"
			wait_until 10 pid_free "$pid"
			pid=$(lo_start "$d" "$port")
			track_pid "$pid"
			wait_until 60 eval "ss -Hltn 'sport = :$port' | grep -q ."
		fi
		docs=$(lo "$d" "$port" list)
		made=$(lo "$d" "$port" make second)
		more=$(lo "$d" "$port" list | sort | tr '\n' '|')
		if [ "$docs" != "'edited $mark' True" ]; then
			out="the open documents after the restore: '$docs' (expected 'edited $mark' True)"
		elif [ "$made" != made ] || [ "$more" != "'edited $mark' True|'second' True|" ]; then
			out="a second document: '$made', then the documents '$more'"
		fi
	fi
	kill_session "$pid"
	verdict apps/libreoffice "$out" "the unsaved edited document kept, a second one made; $(ckpt_times "$d")" \
		"$d/out" "$d/img/dump.log" "$d/img/restore.log"
}

# rsyslog_start DIR: rsyslogd -n on DIR/rsyslog.conf in a session of its own; prints its pid
rsyslog_start() {
	(cd "$1" && exec setsid rsyslogd -n -f "$1/rsyslog.conf" -i "$1/pid" </dev/null >>"$1/log" 2>&1) &
	disown "$!"
	echo "$!"
}

# rsyslog_lines FILE: its lines with the space rsyslog's %msg% keeps in front taken away
rsyslog_lines() { sed 's/^ *//' "$1" 2>/dev/null; }

case_rsyslog() {
	local d=$ZOO_TMP/rsyslog pid="" out="" base=$(app_port 81) fd="" fwd="" i
	local tcp=$base udp=$((base + 1)) target=$((base + 2))
	local before=(persist-before uxsock-before tcp-before udp-before) after=(persist-after uxsock-after tcp-after udp-after)
	if ! command -v rsyslogd >/dev/null || ! command -v logger >/dev/null; then
		result_fail apps/rsyslog "rsyslogd is not installed (apt-get install rsyslog; make setup does not)"
		return
	fi
	mkdir -p "$d/img" "$d/work"
	for i in $(seq 1 50); do before+=("queued-$i"); done
	cat >"$d/rsyslog.conf" <<CONF
global(workDirectory="$d/work")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="$d/log.sock")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="$tcp")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="$udp")
template(name="plain" type="string" string="%msg%\n")
action(type="omfile" file="$d/out.log" template="plain" asyncWriting="off")
action(type="omfwd" target="127.0.0.1" port="$target" protocol="tcp" template="plain" queue.type="LinkedList"
	action.resumeRetryCount="-1" action.resumeInterval="1")
CONF
	pid=$(rsyslog_start "$d")
	track_pid "$pid"
	if ! wait_until 10 eval "[ -S '$d/log.sock' ] && ss -Hltn 'sport = :$tcp' | grep -q ."; then
		result_fail apps/rsyslog "rsyslogd did not start: $(tail -c 300 "$d/log")"
		kill_ours "$pid"
		return
	fi
	# a connection of the test's shell kept across the checkpoint, the other inputs, and 50
	# messages the forwarding action holds in its queue (nothing listens on its target yet)
	exec {fd}<>"/dev/tcp/127.0.0.1/$tcp"
	echo "<13>Dec  2 00:00:00 host app: persist-before" >&"$fd"
	logger -u "$d/log.sock" uxsock-before
	logger -n 127.0.0.1 -P "$tcp" -T tcp-before
	logger -n 127.0.0.1 -P "$udp" -d udp-before
	for i in $(seq 1 50); do logger -u "$d/log.sock" "queued-$i"; done
	if ! wait_until 10 eval "[ \$(rsyslog_lines '$d/out.log' | wc -l) -ge ${#before[@]} ]"; then
		out="the messages before the dump did not reach the file: $(rsyslog_lines "$d/out.log" | tr '\n' '|' | tail -c 300)"
	else
		CKPT_OPTS=(--tcp-established)
		checkpoint apps/rsyslog "$pid" "$d" || out=failed
		CKPT_OPTS=()
	fi
	if [ -z "$out" ]; then
		if [ "${APPS_CORRUPT:-}" = restart ]; then
			kill_ours "$pid"
			wait_until 10 pid_free "$pid"
			rm -f "$d/log.sock"
			pid=$(rsyslog_start "$d")
			track_pid "$pid"
			wait_until 10 eval "[ -S '$d/log.sock' ] && ss -Hltn 'sport = :$tcp' | grep -q ."
		fi
		{ echo "<13>Dec  2 00:00:00 host app: persist-after" >&"$fd"; } 2>/dev/null
		logger -u "$d/log.sock" uxsock-after
		logger -n 127.0.0.1 -P "$tcp" -T tcp-after
		logger -n 127.0.0.1 -P "$udp" -d udp-after
		wait_until 10 eval "[ \$(rsyslog_lines '$d/out.log' | wc -l) -ge $((${#before[@]} + ${#after[@]})) ]"
		# the forwarding target comes up: the queue goes out (the message whose sending failed
		# may come twice: rsyslog sends at least once)
		timeout 20 socat -u "TCP-LISTEN:$target,bind=127.0.0.1,reuseaddr" "OPEN:$d/fwd.log,creat,append" &
		fwd=$!
		wait_until 10 eval "[ \$(rsyslog_lines '$d/fwd.log' | sort -u | wc -l) -ge $((${#before[@]} + ${#after[@]})) ]"
		if [ "$(rsyslog_lines "$d/out.log" | sort | uniq -d)" ] ||
			[ "$(rsyslog_lines "$d/out.log" | sort | tr '\n' ' ')" != "$(printf '%s\n' "${before[@]}" "${after[@]}" | sort | tr '\n' ' ')" ]; then
			out="the file's messages (each of the ${#before[@]} before the dump and the ${#after[@]} after, once): $(rsyslog_lines "$d/out.log" | tr '\n' '|' | tail -c 400)"
		elif [ "$(rsyslog_lines "$d/fwd.log" | sort -u | tr '\n' ' ')" != "$(printf '%s\n' "${before[@]}" "${after[@]}" | sort | tr '\n' ' ')" ]; then
			out="the forwarding queue sent, once its target was up: $(rsyslog_lines "$d/fwd.log" | sort -u | tr '\n' '|' | tail -c 400)"
		elif [ "$(cat "$d/pid" 2>/dev/null)" != "$pid" ]; then
			out="the pid file names '$(cat "$d/pid" 2>/dev/null)', not $pid"
		fi
		kill -TERM "$pid" 2>/dev/null
		wait_until 10 pid_free "$pid" || [ -n "$out" ] || out="rsyslogd did not exit on SIGTERM"
	fi
	exec {fd}>&-
	[ -n "$fwd" ] && kill "$fwd" 2>/dev/null
	kill_ours "$pid"
	verdict apps/rsyslog "$out" "a connection kept, the unix, TCP and UDP inputs written once each before and after, 50 messages queued for a target that was down sent after the restore; $(ckpt_times "$d")" \
		"$d/log" "$d/img/dump.log" "$d/img/restore.log"
}

# slapd_start DIR PORT: slapd in the foreground (-d 0) on DIR/slapd.conf in a session of its own;
# prints its pid
slapd_start() {
	(cd "$1" && exec setsid /usr/sbin/slapd -d 0 -f "$1/slapd.conf" -h "ldap://127.0.0.1:$2/" </dev/null >>"$1/log" 2>&1) &
	disown "$!"
	echo "$!"
}

# ldap_count PORT FILTER: how many entries FILTER finds under dc=stasis,dc=test
ldap_count() {
	ldapsearch -x -H "ldap://127.0.0.1:$1" -b dc=stasis,dc=test -LLL "$2" dn 2>/dev/null | grep -c '^dn:'
}

case_slapd() {
	local d=$ZOO_TMP/slapd pid="" out="" port=$(app_port 83) persist="" i n0 n1 cn="" again=""
	local admin=(-x -H "ldap://127.0.0.1:$port" -D "cn=admin,dc=stasis,dc=test" -w secret)
	if [ ! -x /usr/sbin/slapd ] || ! command -v ldapsearch >/dev/null; then
		result_fail apps/slapd "slapd or ldap-utils is not installed (apt-get install slapd ldap-utils; make setup does not)"
		return
	fi
	mkdir -p "$d/img" "$d/db"
	cat >"$d/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile $d/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload syncprov
database mdb
maxsize 104857600
suffix "dc=stasis,dc=test"
rootdn "cn=admin,dc=stasis,dc=test"
rootpw secret
directory $d/db
index objectClass eq
overlay syncprov
CONF
	{
		printf 'dn: dc=stasis,dc=test\nobjectClass: dcObject\nobjectClass: organization\no: stasis\ndc: stasis\n\n'
		for i in $(seq 1 200); do
			printf 'dn: uid=u%d,dc=stasis,dc=test\nobjectClass: inetOrgPerson\nuid: u%d\ncn: user %d\nsn: s%d\n\n' "$i" "$i" "$i" "$i"
		done
	} >"$d/before.ldif"
	pid=$(slapd_start "$d" "$port")
	track_pid "$pid"
	if ! wait_until 10 eval "ss -Hltn 'sport = :$port' | grep -q ." || ! ldapadd "${admin[@]}" -f "$d/before.ldif" >"$d/add.out" 2>&1; then
		result_fail apps/slapd "slapd did not start or take the entries: $(tail -c 300 "$d/log") $(tail -c 300 "$d/add.out")"
		kill_ours "$pid"
		return
	fi
	# a persistent search (syncrepl refreshAndPersist: the connection stays open, each change
	# after the refresh comes through it) from outside the tree
	ldapsearch "${admin[@]}" -b dc=stasis,dc=test -LLL -E sync=rp '(objectClass=inetOrgPerson)' uid cn >"$d/persist" 2>&1 &
	persist=$!
	if ! wait_until 10 eval "[ \$(grep -c '^uid: ' '$d/persist') -ge 200 ]"; then
		out="the persistent search did not get the 200 entries: $(tail -c 300 "$d/persist")"
	else
		n0=$(ldap_count "$port" '(objectClass=inetOrgPerson)')
		CKPT_OPTS=(--tcp-established --file-locks)
		checkpoint apps/slapd "$pid" "$d" || out=failed
		CKPT_OPTS=()
	fi
	if [ -z "$out" ]; then
		if [ "${APPS_CORRUPT:-}" = restart ]; then
			kill_ours "$pid"
			wait_until 10 pid_free "$pid"
			pid=$(slapd_start "$d" "$port")
			track_pid "$pid"
			wait_until 10 eval "ss -Hltn 'sport = :$port' | grep -q ."
		fi
		n1=$(ldap_count "$port" '(objectClass=inetOrgPerson)')
		printf 'dn: uid=after,dc=stasis,dc=test\nobjectClass: inetOrgPerson\nuid: after\ncn: added after\nsn: a\n' |
			ldapadd "${admin[@]}" >>"$d/add.out" 2>&1
		printf 'dn: uid=u17,dc=stasis,dc=test\nchangetype: modify\nreplace: cn\ncn: changed after\n' |
			ldapmodify "${admin[@]}" >>"$d/add.out" 2>&1
		wait_until 5 grep -qs '^cn: changed after' "$d/persist"
		if [ "$n0" != 200 ] || [ "$n1" != 200 ]; then
			out="entries found: $n0 before the dump, '$n1' after the restore (expected 200)"
		elif ! grep -q '^dn: uid=after,dc=stasis,dc=test' "$d/persist" || ! grep -q '^cn: changed after' "$d/persist"; then
			out="the persistent search's connection did not get the entry added and the one changed after the restore: $(tail -c 300 "$d/persist")"
		elif [ "$(cat "$d/slapd.pid" 2>/dev/null)" != "$pid" ]; then
			out="the pid file names '$(cat "$d/slapd.pid" 2>/dev/null)', not $pid"
		fi
		kill -TERM "$pid" 2>/dev/null
		wait_until 10 pid_free "$pid" || [ -n "$out" ] || out="slapd did not exit on SIGTERM"
	fi
	kill "$persist" 2>/dev/null
	kill_ours "$pid"
	if [ -z "$out" ]; then # the database the restored slapd wrote, opened by a fresh one
		pid=$(slapd_start "$d" "$port")
		track_pid "$pid"
		wait_until 10 eval "ss -Hltn 'sport = :$port' | grep -q ."
		again=$(ldap_count "$port" '(objectClass=inetOrgPerson)')
		cn=$(ldapsearch -x -H "ldap://127.0.0.1:$port" -b dc=stasis,dc=test -LLL '(uid=u17)' cn 2>&1 | sed -n 's/^cn: //p')
		[ "$again" = 201 ] && [ "$cn" = "changed after" ] ||
			out="a fresh slapd on the database finds $again entries (expected 201) and u17's cn '$cn' (expected 'changed after')"
		kill -TERM "$pid" 2>/dev/null
		wait_until 10 pid_free "$pid"
		kill_ours "$pid"
	fi
	verdict apps/slapd "$out" "200 entries kept, a persistent search's connection got the entry added and the one changed after the restore, a fresh slapd finds them on disk; $(ckpt_times "$d")" \
		"$d/log" "$d/img/dump.log" "$d/img/restore.log"
}

# imap PORT: a one-shot IMAP session (tests/apps/imap-client.py) doing the steps on stdin
imap() { timeout 20 "$(system_python)" "$ZOO_ROOT/tests/apps/imap-client.py" "$1" alice secret 2>&1; }

# imap_tagged FD TAG COMMAND: sends the IMAP command on the connection FD, prints the tagged
# answer's tag and status ("TAG OK"), empty if none came within 5 s
imap_tagged() {
	local line
	(printf '%s %s\r\n' "$2" "$3") >&"$1" || return # (a subshell: the connection may be gone, SIGPIPE)
	while read -t 5 -r line <&"$1"; do
		case $line in
		"$2 "*) echo "$line" | cut -d' ' -f1-2; return ;;
		esac
	done
}

# dovecot_start DIR: dovecot -F on DIR/dovecot.conf in a session of its own; prints its pid
dovecot_start() {
	(cd "$1" && exec setsid dovecot -F -c "$1/dovecot.conf" </dev/null >>"$1/out" 2>&1) &
	disown "$!"
	echo "$!"
}

case_dovecot() {
	local d=$ZOO_TMP/dovecot pid="" out="" port=$(app_port 85) held="" fd="" got="" other="" left="" want="" pre="" greeting="" login=""
	if ! command -v dovecot >/dev/null || [ ! -x /usr/lib/dovecot/imap ]; then
		result_fail apps/dovecot "dovecot is not installed (apt-get install dovecot-imapd; make setup does not)"
		return
	fi
	mkdir -p "$d/img" "$d/run" "$d/state" "$d/mail"
	chmod 711 "$ZOO_TMP" # its imap processes run as nobody
	chmod 755 "$d"
	chown nobody:nogroup "$d/mail"
	echo 'alice:{PLAIN}secret' >"$d/passwd"
	cat >"$d/dovecot.conf" <<CONF
protocols = imap
listen = 127.0.0.1
base_dir = $d/run
state_dir = $d/state
log_path = $d/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:$d/mail/%u
first_valid_uid = 1
passdb {
  driver = passwd-file
  args = scheme=PLAIN $d/passwd
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=$d/mail/%u
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $port
  }
  inet_listener imaps {
    port = 0
  }
}
CONF
	pid=$(dovecot_start "$d")
	track_pid "$pid"
	if ! wait_until 10 eval "ss -Hltn 'sport = :$port' | grep -q ." || [ "$(printf 'append m1\nappend m2\n' | imap "$port" | tr '\n' ' ')" != "ready appended appended bye " ]; then
		result_fail apps/dovecot "dovecot did not start or take mail: $(tail -c 300 "$d/out") $(tail -c 300 "$d/dovecot.log")"
		kill_session "$pid"
		return
	fi
	# a logged-in session from outside the tree (its imap process in the tree), INBOX selected
	mkfifo "$d/go"
	"$(system_python)" "$ZOO_ROOT/tests/apps/imap-client.py" "$port" alice secret <"$d/go" >"$d/held" 2>&1 &
	held=$!
	exec {fd}>"$d/go"
	(echo "append held-before"; echo idle) >&"$fd"
	# a connection not logged in yet, held by its imap-login process (as dovenull, chrooted)
	exec {pre}<>"/dev/tcp/127.0.0.1/$port"
	read -t 5 -r greeting <&"$pre"
	if ! wait_until 10 grep -qs '^idling' "$d/held"; then
		out="the held session did not append and idle: $(tail -c 300 "$d/held")"
	elif [[ $greeting != "* OK "* ]] || ! wait_until 5 eval "pgrep -s $pid -x imap-login >/dev/null"; then
		out="a connection not logged in: greeted '$greeting', imap-login processes: $(pgrep -s "$pid" -x imap-login | tr '\n' ' ')"
	else
		CKPT_OPTS=(--tcp-established)
		checkpoint apps/dovecot "$pid" "$d" || out=failed
		CKPT_OPTS=()
	fi
	if [ -z "$out" ]; then
		if [ "${APPS_CORRUPT:-}" = restart ]; then
			kill_session "$pid"
			wait_until 10 pid_free "$pid"
			pid=$(dovecot_start "$d")
			track_pid "$pid"
			wait_until 10 eval "ss -Hltn 'sport = :$port' | grep -q ."
		fi
		# a mail another session appends: the idling session is told (inotify on the maildir:
		# dovecot polls only every 30 s)
		other=$(printf 'append m4\nlist\n' | imap "$port" | tr '\n' '|')
		wait_until 10 grep -qs EXISTS "$d/held"
		(echo list; echo "body 3"; echo "append held-after"; echo list) >&"$fd" # (a subshell: the client may be gone, SIGPIPE)
		exec {fd}>&-
		wait_until 10 grep -qs '^bye' "$d/held"
		login="$(imap_tagged "$pre" a 'LOGIN alice secret') $(imap_tagged "$pre" b 'SELECT INBOX') $(imap_tagged "$pre" c LOGOUT)"
		got=$(tr '\n' '|' <"$d/held")
		want="ready|appended|idling|4 EXISTS|4: m1 m2 held-before m4|held-before|appended|5: m1 m2 held-before m4 held-after|bye|"
		if [ "$got" != "$want" ]; then
			out="the held session said '$got' (expected $want)"
		elif [ "$other" != "ready|appended|4: m1 m2 held-before m4|bye|" ]; then
			out="a new session after the restore said '$other'"
		elif [ "$login" != "a OK b OK c OK" ]; then
			out="the connection held before its login, after the restore: LOGIN, SELECT, LOGOUT answered '$login'"
		fi
		kill -TERM "$pid" 2>/dev/null
		wait_until 10 pid_free "$pid" || [ -n "$out" ] || out="dovecot did not exit on SIGTERM"
		left=$(pgrep -s "$pid" | tr '\n' ' ')
		[ -z "$left" ] || [ -n "$out" ] || out="dovecot's processes left after its SIGTERM: $left"
	fi
	[ -n "$fd" ] && exec {fd}>&- 2>/dev/null
	[ -n "$pre" ] && exec {pre}>&- 2>/dev/null
	wait_until 5 pid_free "$held" || kill -KILL "$held" 2>/dev/null
	kill_session "$pid"
	verdict apps/dovecot "$out" "a logged-in session's imap process kept in IDLE: told of a mail a new session appended after the restore, it fetches and appends; a connection held before its login logs in; $(ckpt_times "$d")" \
		"$d/dovecot.log" "$d/img/dump.log" "$d/img/restore.log"
}

# qmp FD COMMAND: sends a QMP command on the connection FD and prints its answer (the events
# before it skipped), empty if none came within 5 s
qmp() {
	local line
	(echo "$2") >&"$1" || return # (a subshell: the connection may be gone, SIGPIPE)
	while read -t 5 -r line <&"$1"; do
		case $line in
		*'"return"'* | *'"error"'*) echo "$line"; return ;;
		esac
	done
}

# qemu_start DIR PORT: qemu-system-x86_64 with TCG booting DIR/disk.img, its serial port to
# DIR/serial and QMP on PORT, in a session of its own; prints its pid
qemu_start() {
	(cd "$1" && exec setsid qemu-system-x86_64 -accel tcg,thread=multi -smp 2 -nodefaults -display none -m 32 \
		-drive "file=$1/disk.img,format=raw,if=ide" -serial "file:$1/serial" \
		-qmp "tcp:127.0.0.1:$2,server=on,wait=off" </dev/null >>"$1/out" 2>&1) &
	disown "$!"
	echo "$!"
}

# qemu_ticks_at_dump: the guest's ticks on its serial port while it is dumped, into case_qemu's n0
qemu_ticks_at_dump() { n0=$(ticks_ok "$ZOO_TMP/qemu/serial"); }

case_qemu() {
	local d=$ZOO_TMP/qemu pid="" out="" port=$(app_port 87) fd="" n0="" n1="" n2="" n3="" n4="" st="" hello=""
	if ! command -v qemu-system-x86_64 >/dev/null; then
		result_fail apps/qemu "qemu-system-x86_64 is not installed (apt-get install --no-install-recommends qemu-system-x86; make setup does not)"
		return
	fi
	mkdir -p "$d/img"
	if ! as --32 -o "$d/guest.o" "$ZOO_ROOT/tests/apps/qemu-guest.S" 2>"$d/out" ||
		! ld -m elf_i386 -Ttext 0x7c00 --oformat binary -o "$d/guest.bin" "$d/guest.o" 2>>"$d/out"; then
		result_fail apps/qemu "the guest's boot sector did not build: $(tail -c 300 "$d/out")"
		return
	fi
	truncate -s 1M "$d/disk.img"
	touch "$d/serial"
	dd if="$d/guest.bin" of="$d/disk.img" conv=notrunc status=none
	pid=$(qemu_start "$d" "$port")
	track_pid "$pid"
	if ! wait_until 20 eval "[ \$(grep -c '^tick' '$d/serial' 2>/dev/null) -ge 10 ]" ||
		! exec {fd}<>"/dev/tcp/127.0.0.1/$port" || ! read -t 5 -r hello <&"$fd" ||
		! qmp "$fd" '{"execute":"qmp_capabilities"}' | grep -q return; then
		result_fail apps/qemu "the guest did not count or QMP did not answer: '$hello' $(tail -c 300 "$d/out") $(tail -n 2 "$d/serial" 2>&1)"
		kill_ours "$pid"
		return
	fi
	# QMP's connection (the test's shell) kept across the checkpoint; the disk image is locked
	CKPT_OPTS=(--tcp-established --file-locks)
	checkpoint apps/qemu "$pid" "$d" qemu_ticks_at_dump || out=failed
	CKPT_OPTS=()
	if [ -z "$out" ]; then
		if [ "${APPS_CORRUPT:-}" = restart ]; then
			kill_ours "$pid"
			wait_until 10 pid_free "$pid"
			pid=$(qemu_start "$d" "$port")
			track_pid "$pid"
			sleep 1
		fi
		st=$(qmp "$fd" '{"execute":"query-status"}')
		sleep 1
		n1=$(ticks_ok "$d/serial")
		qmp "$fd" '{"execute":"stop"}' >/dev/null
		sleep 0.3
		n2=$(ticks_ok "$d/serial")
		sleep 0.7
		n3=$(ticks_ok "$d/serial")
		qmp "$fd" '{"execute":"cont"}' >/dev/null
		sleep 0.7
		n4=$(ticks_ok "$d/serial")
		qmp "$fd" '{"execute":"system_reset"}' >/dev/null
		wait_until 10 eval "[ \$(grep -c '^tick 2$' '$d/serial') -ge 2 ]"
		if [[ $st != *'"status": "running"'* ]]; then
			out="QMP's connection after the restore: query-status answered '$st'"
		elif ! [[ $n0 =~ ^[0-9]+$ && $n1 =~ ^[0-9]+$ ]] || [ "$n1" -le $((n0 + 3)) ]; then
			out="the guest's ticks: '$n0' at the dump, '$n1' 1 s after the restore (going on, each once and in order, expected)"
		elif [ "$n3" != "$n2" ] || ! [[ $n4 =~ ^[0-9]+$ ]] || [ "$n4" -le "$n3" ]; then
			out="stop and cont: the ticks $n2 -> $n3 while stopped, $n4 after cont"
		elif [ "$(grep -c '^tick 2$' "$d/serial")" -ne 2 ]; then
			out="after system_reset the guest did not boot and count again: $(tail -n 3 "$d/serial" | tr '\n' '|')"
		fi
		qmp "$fd" '{"execute":"quit"}' >/dev/null
		wait_until 10 pid_free "$pid" || [ -n "$out" ] || out="qemu did not exit on QMP's quit"
	fi
	[ -n "$fd" ] && exec {fd}>&-
	kill_ours "$pid"
	verdict apps/qemu "$out" "QMP's connection kept, the guest's ticks $n0 at the dump -> $n1 going on, stop/cont, system_reset reboots it, quit; $(ckpt_times "$d")" \
		"$d/out" "$d/img/dump.log" "$d/img/restore.log"
}

# samba_start DIR: smbd in the foreground on DIR/smb.conf in a session of its own; prints its pid
samba_start() {
	(cd "$1" && exec setsid smbd --foreground --no-process-group -s "$1/smb.conf" </dev/null >>"$1/out" 2>&1) &
	disown "$!"
	echo "$!"
}

# smb_client DIR NAME: smbclient on the share, from outside the tree, reading its commands from
# the FIFO DIR/NAME.in, its output (line-buffered) to DIR/NAME.out; prints its pid
smb_client() {
	mkfifo "$1/$2.in"
	stdbuf -oL smbclient -N -s "$1/smb.conf" -p "$SAMBA_PORT" //127.0.0.1/share >"$1/$2.out" 2>&1 <"$1/$2.in" &
	echo "$!"
}

# smb_opener DIR FILE: the pids smbstatus -L names as having FILE of the share open
smb_opener() { smbstatus -s "$1/smb.conf" -L 2>/dev/null | awk -v f="$2" '$1 ~ /^[0-9]+$/ && NF >= 9 && $(NF-5) == f { print $1 }' | sort -u | tr '\n' ' '; }

# smb_pongs DIR PID...: smbcontrol's ping of each PID over samba's messaging sockets; prints
# the pids that answered
smb_pongs() {
	local d=$1 p
	shift
	for p in "$@"; do smbcontrol -s "$d/smb.conf" -t 5 "$p" ping 2>&1; done | sed -n 's/^PONG from pid //p' | tr '\n' ' '
}

case_samba() {
	local d=$ZOO_TMP/samba pid="" out="" a="" b="" fa="" fb="" procs="" served="" opener="" pongs="" got="" left="" n=""
	SAMBA_PORT=$(app_port 89)
	if ! command -v smbd >/dev/null || ! command -v smbclient >/dev/null || ! command -v smbcontrol >/dev/null; then
		result_fail apps/samba "samba is not installed (apt-get install samba smbclient; make setup does not)"
		return
	fi
	mkdir -p "$d/img" "$d/share" "$d/private" "$d/lock" "$d/state" "$d/cache" "$d/pid" "$d/run"
	chmod 755 "$ZOO_TMP" "$d"
	chmod 777 "$d/share" # guests are nobody
	echo "before the dump" >"$d/share/a.txt"
	echo "put after the restore" >"$d/local.txt"
	cat >"$d/smb.conf" <<CONF
[global]
  server role = standalone server
  workgroup = STASIS
  netbios name = STASISTEST
  interfaces = 127.0.0.1
  bind interfaces only = yes
  smb ports = $SAMBA_PORT
  disable netbios = yes
  private dir = $d/private
  lock directory = $d/lock
  state directory = $d/state
  cache directory = $d/cache
  pid directory = $d/pid
  ncalrpc dir = $d/run/ncalrpc
  binddns dir = $d/private/bind-dns
  log file = $d/log.%m
  log level = 1
  passdb backend = tdbsam:$d/private/passdb.tdb
  map to guest = Bad User
  guest account = nobody
  load printers = no
  printcap name = /dev/null
  disable spoolss = yes
[share]
  path = $d/share
  read only = no
  guest ok = yes
  guest only = yes
CONF
	pid=$(samba_start "$d")
	track_pid "$pid"
	if ! wait_until 10 eval "ss -Hltn 'sport = :$SAMBA_PORT' | grep -q ."; then
		result_fail apps/samba "smbd did not start: $(tail -c 300 "$d/out") $(tail -c 300 "$d/log.smbd" 2>&1)"
		kill_session "$pid"
		return
	fi
	# session a holds a.txt open (fnum 1); session b waits for change notifications on the
	# share's root (its smbd registered with smbd-notifyd, which watches with inotify)
	a=$(smb_client "$d" a)
	exec {fa}>"$d/a.in"
	# (one command at a time, each once the last is done: smbclient reads its stdin buffered but
	# waits for the fd to be readable before each command)
	echo ls >&"$fa"
	wait_until 10 grep -qs '^  a.txt ' "$d/a.out"
	echo 'open a.txt' >&"$fa"
	b=$(smb_client "$d" b)
	exec {fb}>"$d/b.in"
	printf 'notify \\\n' >&"$fb"
	if ! wait_until 10 grep -qs '^open file .*a.txt.* fnum 1' "$d/a.out" || ! wait_until 10 eval "[ -n \"\$(smb_opener '$d' a.txt)\" ]" ||
		! wait_until 10 eval "[ \$(pgrep -s $pid | wc -l) -ge 5 ]"; then
		out="the sessions did not start: a: $(tail -c 300 "$d/a.out") b: $(tail -c 200 "$d/b.out"), processes: $(pgrep -s "$pid" | tr '\n' ' ')"
	else
		opener=$(smb_opener "$d" a.txt)
		procs=$(pgrep -s "$pid" | sort -n | tr '\n' ' ')
		CKPT_OPTS=(--tcp-established --file-locks) # tdb's fcntl locks (each process's in msg.lock too)
		checkpoint apps/samba "$pid" "$d" || out=failed
		CKPT_OPTS=()
	fi
	if [ -z "$out" ]; then
		if [ "${APPS_CORRUPT:-}" = restart ]; then
			kill_session "$pid"
			wait_until 10 pid_free "$pid"
			pid=$(samba_start "$d")
			track_pid "$pid"
			wait_until 10 eval "ss -Hltn 'sport = :$SAMBA_PORT' | grep -q ."
		fi
		# every process answers a ping over its messaging socket; the open is the same process's
		# shellcheck disable=SC2086 # (pids)
		pongs=$(smb_pongs "$d" $procs)
		got=$(smb_opener "$d" a.txt)
		# the held session reads, writes (its directory's watcher tells session b), closes
		(echo "get a.txt $d/got.txt") >&"$fa" # (a subshell: the client may be gone, SIGPIPE)
		wait_until 10 grep -qs '^getting file' "$d/a.out"
		(echo "put $d/local.txt b.txt") >&"$fa"
		wait_until 10 grep -qs '^putting file' "$d/a.out"
		wait_until 10 grep -qs ' b.txt$' "$d/b.out"
		(echo 'close 1') >&"$fa"
		wait_until 10 eval "[ -z \"\$(smb_opener '$d' a.txt)\" ]"
		(echo ls) >&"$fa"
		wait_until 10 grep -qs '^  b.txt ' "$d/a.out"
		echo local >"$d/share/c.txt" # not through samba: smbd-notifyd's inotify
		wait_until 10 grep -qs 'c.txt' "$d/b.out"
		# a new connection: a child the restored smbd forks
		served=$(printf 'get b.txt -\n' | timeout 20 smbclient -N -s "$d/smb.conf" -p "$SAMBA_PORT" //127.0.0.1/share 2>&1 | grep -c '^put after the restore$')
		(echo quit) >&"$fa"
		exec {fa}>&-
		wait_until 10 pid_free "$a"
		if [ "$pongs" != "$procs" ]; then
			out="smbcontrol ping after the restore: PONG from '$pongs' (expected every process of the tree: $procs)"
		elif [ "$got" != "$opener" ]; then
			out="smbstatus: a.txt open by '$got' after the restore (by $opener before)"
		elif [ "$(cat "$d/got.txt" 2>/dev/null)" != "before the dump" ] || [ "$(cat "$d/share/b.txt" 2>/dev/null)" != "put after the restore" ] ||
			! grep -q '^  b.txt ' "$d/a.out" || grep -q NT_STATUS "$d/a.out"; then
			out="the held session after the restore: $(tail -c 400 "$d/a.out" | tr '\n' '|'), got '$(cat "$d/got.txt" 2>&1)', b.txt '$(cat "$d/share/b.txt" 2>&1)'"
		elif ! grep -q ' b.txt$' "$d/b.out" || ! grep -q ' c.txt$' "$d/b.out"; then
			out="the session waiting for notifications was not told of b.txt (put by the other session) and c.txt (made on the disk): $(tail -c 300 "$d/b.out" | tr '\n' '|')"
		elif [ "$served" != 1 ] || [ -n "$(smb_opener "$d" a.txt)" ]; then
			out="a new session after the restore read b.txt: '$served'; a.txt still open by '$(smb_opener "$d" a.txt)'"
		fi
		(echo quit) >&"$fb" # (ends only with the notify: its client is killed)
		n=$(pgrep -s "$pid" | wc -l)
		kill -TERM "$pid" 2>/dev/null
		wait_until 10 pid_free "$pid" || [ -n "$out" ] || out="smbd did not exit on SIGTERM"
		left=$(pgrep -s "$pid" | tr '\n' ' ')
		[ -z "$left" ] || [ -n "$out" ] || out="smbd's processes left after its SIGTERM: $left ($n before)"
	fi
	[ -n "$fa" ] && exec {fa}>&- 2>/dev/null
	[ -n "$fb" ] && exec {fb}>&- 2>/dev/null
	kill "$a" "$b" 2>/dev/null
	kill_session "$pid"
	verdict apps/samba "$out" "smbd, smbd-notifyd, cleanupd and 2 sessions' smbd: every process answers smbcontrol's ping, the held session's open file is the same process's, it reads, writes and closes; the other session's notify is told of both changes; a new session reads; $(ckpt_times "$d")" \
		"$d/log.smbd" "$d/img/dump.log" "$d/img/restore.log"
}

# etcd_start DIR PORT: a single-member etcd on DIR/data, clients on 127.0.0.1:PORT, peers on
# PORT+1, in a session of its own; prints its pid
etcd_start() {
	(cd "$1" && exec setsid etcd --name m1 --data-dir "$1/data" --listen-metrics-urls '' \
		--listen-client-urls "http://127.0.0.1:$2" --advertise-client-urls "http://127.0.0.1:$2" \
		--listen-peer-urls "http://127.0.0.1:$(($2 + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$(($2 + 1))" \
		--initial-cluster "m1=http://127.0.0.1:$(($2 + 1))" </dev/null >>"$1/log" 2>&1) &
	disown "$!"
	echo "$!"
}

# etcd_status PORT: "revision raft_term raftIndex" of etcdctl endpoint status
etcd_status() {
	ETCDCTL_API=3 etcdctl --endpoints="http://127.0.0.1:$1" endpoint status -w json 2>/dev/null |
		sed -n 's/.*"revision":\([0-9]*\),"raft_term":\([0-9]*\)}.*"raftIndex":\([0-9]*\),.*/\1 \2 \3/p'
}

# tcp_port_of PID PORT: the local port of PID's connection to 127.0.0.1:PORT
tcp_port_of() { ss -Htnp state established "dport = :$2" | awk -v p="pid=$1," 'index($0, p) { n = split($3, a, ":"); print a[n] }'; }

case_etcd() {
	local d=$ZOO_TMP/etcd pid="" out="" port=$(app_port 91) watch="" wport0="" wport1="" st0="" st1="" st2="" i n="" v="" c=""
	local ctl=(etcdctl --endpoints="http://127.0.0.1:$port")
	if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
		result_fail apps/etcd "etcd is not installed (apt-get install etcd-server etcd-client; make setup does not)"
		return
	fi
	export ETCDCTL_API=3
	mkdir -p "$d/img"
	pid=$(etcd_start "$d" "$port")
	track_pid "$pid"
	if ! wait_until 20 eval "[ -n \"\$(etcd_status $port)\" ]"; then
		result_fail apps/etcd "etcd did not start: $(tail -c 300 "$d/log")"
		kill_ours "$pid"
		return
	fi
	for i in $(seq 1 100); do "${ctl[@]}" put "k/$i" "value $i" >/dev/null 2>>"$d/ctl.err"; done
	# a watch from outside the tree: its gRPC stream on one connection
	"${ctl[@]}" watch --prefix w/ >"$d/watch" 2>&1 &
	watch=$!
	wait_until 10 eval "[ -n \"\$(tcp_port_of $watch $port)\" ]"
	wport0=$(tcp_port_of "$watch" "$port")
	st0=$(etcd_status "$port")
	if [ -z "$wport0" ] || [ "${st0%% *}" != 101 ]; then
		out="before the dump: the watch's connection '$wport0', status (revision term index) '$st0' (revision 101 expected) $(tail -c 200 "$d/ctl.err" 2>&1)"
	else
		CKPT_OPTS=(--tcp-established --file-locks) # bbolt's and the WAL's flocks
		checkpoint apps/etcd "$pid" "$d" || out=failed
		CKPT_OPTS=()
	fi
	if [ -z "$out" ]; then
		if [ "${APPS_CORRUPT:-}" = restart ]; then
			kill_ours "$pid"
			wait_until 10 pid_free "$pid"
			pid=$(etcd_start "$d" "$port")
			track_pid "$pid"
			wait_until 20 eval "[ -n \"\$(etcd_status $port)\" ]"
		fi
		# the same raft term and log (a restarted member elects itself again: a new term, an
		# entry more)
		st1=$(etcd_status "$port")
		"${ctl[@]}" put w/after "put after the restore" >/dev/null 2>>"$d/ctl.err"
		wait_until 10 grep -qs '^put after the restore$' "$d/watch"
		wport1=$(tcp_port_of "$watch" "$port")
		st2=$(etcd_status "$port")
		n=$("${ctl[@]}" get --prefix k/ --keys-only 2>&1 | grep -c "^k/")
		v=$("${ctl[@]}" get k/17 --print-value-only 2>&1)
		# compaction and a defragmentation (bbolt's file rewritten and mapped again)
		c=$({ "${ctl[@]}" compact "${st2%% *}" && "${ctl[@]}" defrag; } 2>&1 | tr '\n' ' ')
		if [ "$st1" != "$st0" ]; then
			out="status (revision term index) '$st1' after the restore, '$st0' at the dump"
		elif [ "$st2" != "$((${st0%% *} + 1)) $(echo "$st0" | cut -d' ' -f2) $((${st0##* } + 1))" ]; then
			out="status '$st2' after a put (one revision and one raft entry more than '$st0', the same term, expected)"
		elif [ "$(grep -c . "$d/watch")" != 3 ] || [ "$wport1" != "$wport0" ]; then
			out="the watch (its connection from port $wport0, now '$wport1') said '$(tr '\n' '|' <"$d/watch")' (PUT, w/after and its value expected)"
		elif [ "$n" != 100 ] || [ "$v" != "value 17" ] || [[ $c != *"compacted revision"*"Finished defragmenting"* ]]; then
			out="after the restore: $n keys under k/ (100 expected), k/17 '$v', compaction and defrag: '$c'"
		elif [ "$("${ctl[@]}" get --prefix k/ --keys-only 2>&1 | grep -c "^k/")" != 100 ]; then
			out="after the defrag the keys under k/ are not 100"
		fi
		kill -TERM "$pid" 2>/dev/null
		wait_until 10 pid_free "$pid" || [ -n "$out" ] || out="etcd did not exit on SIGTERM"
	fi
	kill "$watch" 2>/dev/null
	kill_ours "$pid"
	verdict apps/etcd "$out" "revision, raft term and index kept ($st0), a watch's connection from outside got a put after the restore, 100 keys, compaction and defrag; $(ckpt_times "$d")" \
		"$d/log" "$d/img/dump.log" "$d/img/restore.log"
}

# rabbitmq_env DIR PORT: the environment of a private RabbitMQ node on DIR (AMQP on PORT, its
# distribution on PORT+1, epmd on PORT+2), for env
rabbitmq_env() {
	echo "HOME=$1/home" RABBITMQ_NODENAME=stasis@localhost RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
		"RABBITMQ_NODE_PORT=$2" "RABBITMQ_DIST_PORT=$(($2 + 1))" "ERL_EPMD_PORT=$(($2 + 2))" \
		"RABBITMQ_MNESIA_BASE=$1/mnesia" "RABBITMQ_LOG_BASE=$1/logs" RABBITMQ_LOGS=- \
		"RABBITMQ_CONFIG_FILE=$1/rabbitmq" "RABBITMQ_ADVANCED_CONFIG_FILE=$1/advanced.config" \
		"RABBITMQ_ENABLED_PLUGINS_FILE=$1/enabled_plugins" "RABBITMQ_PID_FILE=$1/pid" \
		"RABBITMQ_CONF_ENV_FILE=$1/rabbitmq-env.conf"
}

# rabbitmq_start DIR PORT: epmd (on 127.0.0.1, in the tree) and RabbitMQ's server script (which
# runs beam.smp) in a session of their own; prints the script's pid
rabbitmq_start() {
	# shellcheck disable=SC2046 # (the environment's words)
	(cd "$1" && exec env $(rabbitmq_env "$1" "$2") setsid sh -c "epmd -address 127.0.0.1 -port $(($2 + 2)) & exec /usr/lib/rabbitmq/bin/rabbitmq-server" \
		</dev/null >>"$1/out" 2>&1) &
	disown "$!"
	echo "$!"
}

# rabbitmqctl_of DIR PORT ARG...: rabbitmqctl on the node (its Erlang distribution, through epmd)
rabbitmqctl_of() {
	local d=$1 port=$2
	shift 2
	# shellcheck disable=SC2046
	env $(rabbitmq_env "$d" "$port") timeout 30 /usr/lib/rabbitmq/bin/rabbitmqctl -n stasis@localhost "$@" 2>&1
}

# amqp PORT ARG...: tests/apps/amqp-client.py, one shot
amqp() { timeout 20 /usr/bin/python3 "$ZOO_ROOT/tests/apps/amqp-client.py" "$@" 2>&1; }

case_rabbitmq() {
	local d=$ZOO_TMP/rabbitmq pid="" out="" port=$(app_port 93) beam="" cons="" cport0="" cport1="" q0="" q1="" os_pid="" pub="" stock="" procs=""
	if [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || ! command -v epmd >/dev/null || ! /usr/bin/python3 -c 'import pika' 2>/dev/null; then
		result_fail apps/rabbitmq "rabbitmq-server or python3-pika is not installed (apt-get install rabbitmq-server python3-pika; make setup does not)"
		return
	fi
	mkdir -p "$d/img" "$d/home"
	echo '[].' >"$d/enabled_plugins"
	: >"$d/rabbitmq-env.conf"
	printf 'loopback_users = none\nlisteners.tcp.default = 127.0.0.1:%s\n' "$port" >"$d/rabbitmq.conf"
	echo '[{kernel, [{inet_dist_use_interface, {127,0,0,1}}]}].' >"$d/advanced.config"
	pid=$(rabbitmq_start "$d" "$port")
	track_pid "$pid"
	if ! wait_until 60 eval "ss -Hltn 'sport = :$port' | grep -q ." || [ "$(amqp "$port" publish stock $(seq 1 100))" != "published 100" ]; then
		result_fail apps/rabbitmq "rabbitmq did not start or take messages: $(tail -c 300 "$d/out")"
		kill_session "$pid"
		return
	fi
	# a consumer from outside the tree on its own connection
	/usr/bin/python3 "$ZOO_ROOT/tests/apps/amqp-client.py" "$port" consume live >"$d/consumer" 2>&1 &
	cons=$!
	wait_until 10 grep -qs '^ready$' "$d/consumer"
	amqp "$port" publish live before >/dev/null
	wait_until 10 grep -qs '^before$' "$d/consumer"
	beam=$(pgrep -s "$pid" -x beam.smp)
	cport0=$(tcp_port_of "$cons" "$port")
	q0=$(rabbitmqctl_of "$d" "$port" list_queues -q name messages consumers | sort | tr '\t\n' ' |')
	procs=$(pgrep -s "$pid" | sort -n | tr '\n' ' ')
	if [ -z "$beam" ] || [ -z "$cport0" ] || [ "$q0" != "live 0 1|name messages consumers|stock 100 0|" ]; then
		out="before the dump: beam.smp '$beam', the consumer's connection '$cport0' ($(tr '\n' '|' <"$d/consumer")), queues '$q0'"
	else
		CKPT_OPTS=(--tcp-established --file-locks)
		checkpoint apps/rabbitmq "$pid" "$d" || out=failed
		CKPT_OPTS=()
	fi
	if [ -z "$out" ]; then
		if [ "${APPS_CORRUPT:-}" = restart ]; then
			kill_session "$pid"
			wait_until 10 pid_free "$pid"
			pid=$(rabbitmq_start "$d" "$port")
			track_pid "$pid"
			wait_until 60 eval "ss -Hltn 'sport = :$port' | grep -q ."
		fi
		os_pid=$(rabbitmqctl_of "$d" "$port" status | sed -n 's/^OS PID: //p')
		q1=$(rabbitmqctl_of "$d" "$port" list_queues -q name messages consumers | sort | tr '\t\n' ' |')
		pub=$(amqp "$port" publish live "after the restore")
		wait_until 10 grep -qs '^after the restore$' "$d/consumer"
		cport1=$(tcp_port_of "$cons" "$port")
		stock=$(amqp "$port" get stock)
		amqp "$port" publish live stop >/dev/null
		wait_until 10 grep -qs '^bye$' "$d/consumer"
		if [ "$os_pid" != "$beam" ]; then
			out="rabbitmqctl status after the restore: OS PID '$os_pid' (beam.smp was $beam)"
		elif [ "$q1" != "$q0" ]; then
			out="the queues after the restore: '$q1' (at the dump: '$q0')"
		elif [ "$pub" != "published 1" ] || [ "$(tr '\n' '|' <"$d/consumer")" != "ready|before|after the restore|stop|bye|" ] || [ "$cport1" != "$cport0" ]; then
			out="the consumer (its connection from port $cport0, now '$cport1') said '$(tr '\n' '|' <"$d/consumer")', the publish '$pub'"
		elif [ "$stock" != "$(seq 1 100 | tr '\n' ' ' | sed 's/ $//')" ]; then
			out="the durable queue's 100 messages after the restore: '$(echo "$stock" | tail -c 300)'"
		elif [[ $(rabbitmqctl_of "$d" "$port" stop) != *"Stopping"* ]] || ! wait_until 30 pid_free "$beam"; then
			out="rabbitmqctl stop did not stop the node"
		fi
	fi
	kill "$cons" 2>/dev/null
	kill_session "$pid"
	verdict apps/rabbitmq "$out" "epmd, the server script, beam.smp and erl_child_setup: rabbitmqctl finds the same node (OS PID $beam) and queues, the consumer's connection from outside got a message after the restore, 100 durable messages in order, rabbitmqctl stop; $(ckpt_times "$d")" \
		"$d/out" "$d/img/dump.log" "$d/img/restore.log"
}

# ovpn_links: the client's namespace (OVPN_B) made again with its veth to the server's (OVPN_A)
ovpn_links() {
	ip netns add "$OVPN_B" && ip link add "ova$$" netns "$OVPN_A" type veth peer name "ovb$$" netns "$OVPN_B" &&
		ip -n "$OVPN_A" addr add 10.232.1.1/24 dev "ova$$" && ip -n "$OVPN_B" addr add 10.232.1.2/24 dev "ovb$$" &&
		ip -n "$OVPN_A" link set "ova$$" up && ip -n "$OVPN_B" link set "ovb$$" up && ip -n "$OVPN_B" link set lo up
}
# ovpn_ping ADDR: one ping from the client's namespace answered
ovpn_ping() { ip netns exec "$OVPN_B" busybox ping -c 1 -W 2 "$1" >/dev/null 2>&1; }
case_openvpn() {
	local d=$ZOO_TMP/openvpn pid="" srv="" out="" route=""
	OVPN_A=stasis-ovpn-a$$ OVPN_B=stasis-ovpn-b$$
	if [ ! -x /usr/sbin/openvpn ] || ! command -v busybox >/dev/null || [ ! -c /dev/net/tun ]; then
		result_fail apps/openvpn "openvpn or busybox is not installed, or no /dev/net/tun (make setup installs openvpn)"
		return
	fi
	mkdir -p "$d/img"
	local vpn=(/usr/sbin/openvpn --dev tun --secret "$d/key" --cipher AES-256-CBC --proto udp --ping 1 --verb 3)
	if ! /usr/sbin/openvpn --genkey secret "$d/key" >"$d/genkey" 2>&1 || ! ip netns add "$OVPN_A" || ! ovpn_links ||
		! ip -n "$OVPN_A" link set lo up || ! ip -n "$OVPN_A" addr add 10.8.78.1/24 dev lo; then
		result_fail apps/openvpn "cannot make the key or the two namespaces: $(tail -c 300 "$d/genkey")"
		ip netns del "$OVPN_A" 2>/dev/null
		ip netns del "$OVPN_B" 2>/dev/null
		return
	fi
	(cd "$d" && exec setsid nsenter "--net=/run/netns/$OVPN_A" "${vpn[@]}" --ifconfig 10.8.77.1 10.8.77.2 \
		--lport 11940 --route 10.8.78.0 255.255.255.0 --log "$d/server.log" --writepid "$d/server.pid") </dev/null >/dev/null 2>&1 &
	disown
	(cd "$d" && exec setsid nsenter "--net=/run/netns/$OVPN_B" "${vpn[@]}" --ifconfig 10.8.77.2 10.8.77.1 \
		--remote 10.232.1.1 11940 --nobind --route 10.8.78.0 255.255.255.0 --log "$d/client.log" \
		--writepid "$d/client.pid") </dev/null >/dev/null 2>&1 &
	disown
	wait_until 10 test -s "$d/server.pid" && wait_until 10 test -s "$d/client.pid"
	srv=$(cat "$d/server.pid" 2>/dev/null) pid=$(cat "$d/client.pid" 2>/dev/null)
	[ -n "$srv" ] && track_pid "$srv"
	[ -n "$pid" ] && track_pid "$pid"
	if [ -z "$pid" ] || ! wait_until 10 grep -q 'Initialization Sequence Completed' "$d/client.log" ||
		! wait_until 10 ovpn_ping 10.8.77.1; then
		out="the tunnel does not carry pings before the dump: $(tail -n 3 "$d/client.log" 2>/dev/null | tr '\n' '|')"
	else
		run_stasis "$d/dump.out" 60 dump -t "$pid" -D "$d/img" -o dump.log -v4 \
			--external "net[$(stat -L -c %i "/run/netns/$OVPN_B")]:vpn"
		if [ "$ZRC" -ne 0 ] || ! wait_until 10 pid_free "$pid"; then
			out="dump of pid $pid: exit status $ZRC"
		elif ! ip netns del "$OVPN_B" || ! ovpn_links; then
			out="cannot make the client's namespace again"
		else
			run_stasis "$d/restore.out" 60 restore -D "$d/img" -d -o restore.log -v4 --join-ns "net:/run/netns/$OVPN_B"
			[ "$ZRC" -eq 0 ] && proc_alive "$pid" || out="restore: exit status $ZRC"
		fi
	fi
	if [ -z "$out" ] && [ "${APPS_CORRUPT:-}" = restart ]; then
		kill_ours "$pid"
		wait_until 5 pid_free "$pid"
		ip -n "$OVPN_B" link del tun0 2>/dev/null
		(cd "$d" && exec setsid nsenter "--net=/run/netns/$OVPN_B" "${vpn[@]}" --ifconfig 10.8.77.2 10.8.77.1 \
			--remote 10.232.1.1 11940 --nobind --route 10.8.78.0 255.255.255.0 --log-append "$d/client.log" \
			--writepid "$d/client.pid") </dev/null >/dev/null 2>&1 &
		disown
		wait_until 10 test "$(cat "$d/client.pid")" != "$pid"
		pid=$(cat "$d/client.pid")
		track_pid "$pid"
		wait_until 10 ovpn_ping 10.8.77.1
	fi
	if [ -z "$out" ]; then
		route=$(ip -n "$OVPN_B" route show 10.8.78.0/24)
		if ! ovpn_ping 10.8.77.1 || ! ovpn_ping 10.8.78.1; then
			out="after the restore the tunnel does not carry pings (10.8.77.1, 10.8.78.1); routes: $(ip -n "$OVPN_B" route | tr '\n' '|')"
		elif [[ $route != *"dev tun0"* ]] || [ "$(ip -n "$OVPN_B" -4 -o addr show dev tun0 | awk '{ print $4 }')" != 10.8.77.2 ]; then
			out="after the restore tun0's address or route is not there: route '$route', $(ip -n "$OVPN_B" -o addr show dev tun0)"
		elif [ "$(grep -c 'Initialization Sequence Completed' "$d/client.log")" != 1 ]; then
			out="the client started over ($(grep -c 'Initialization Sequence Completed' "$d/client.log") initializations in its log)"
		elif grep -qiE 'replay|decrypt|authenticate' "$d/server.log"; then
			out="the server logged: $(grep -iE 'replay|decrypt|authenticate' "$d/server.log" | head -n 2 | tr '\n' '|')"
		fi
	fi
	kill_ours "$pid"
	kill_ours "$srv"
	wait_until 5 pid_free "$pid"
	ip netns del "$OVPN_B" 2>/dev/null
	ip netns del "$OVPN_A" 2>/dev/null
	verdict apps/openvpn "$out" "the same client's tunnel carries pings after the restore into a new namespace, tun0 with its address and route 10.8.78.0/24 made there, no replay at the server; $(ckpt_times "$d")" \
		"$d/client.log" "$d/server.log" "$d/dump.out" "$d/img/dump.log" "$d/restore.out" "$d/img/restore.log"
}

# uring_fds PID: how many io_uring instances PID's fds hold
uring_fds() {
	local f n=0
	for f in /proc/"${1:-none}"/fd/*; do
		[[ $(readlink "$f" 2>/dev/null) == *io_uring* ]] && n=$((n + 1))
	done
	echo "$n"
}

# mariadb_start DIR PORT [OPTION...]: mariadbd on 127.0.0.1:PORT (and DIR/sock), its datadir
# DIR/data; prints its pid once it answers
mariadb_start() {
	local d=$1 port=$2 pid
	shift 2
	rm -f "$d/pid"
	setsid -f mariadbd --no-defaults --datadir="$d/data" --user=mysql --socket="$d/sock" \
		--port="$port" --bind-address=127.0.0.1 --pid-file="$d/pid" --log-error="$d/err.log" \
		"$@" </dev/null >/dev/null 2>&1
	wait_until 30 mariadb -h 127.0.0.1 -P "$port" -uroot -e 'select 1' >/dev/null 2>&1 &&
		pid=$(cat "$d/pid" 2>/dev/null)
	[ -n "$pid" ] && track_pid "$pid" && echo "$pid"
}

mariadb_stop() {
	local d=$1 pid=$2
	mariadb -S "$d/sock" -uroot -e shutdown >/dev/null 2>&1
	wait_until 20 pid_free "$pid" || kill_ours "$pid"
}

case_mariadb() {
	local name=apps/mariadb d=$ZOO_TMP/mariadb port=$(app_port 7) pid out="" fd session_pid uring
	local sql=(mariadb -h 127.0.0.1 -P "$port" -uroot -N -B)
	if ! command -v mariadbd >/dev/null || ! command -v mariadb-install-db >/dev/null; then
		result_fail "$name" "mariadb-server is not installed (apt-get install mariadb-server; make setup does not)"
		return
	fi
	mkdir -p "$d"
	chmod 711 "$ZOO_TMP"
	if ! mariadb-install-db --no-defaults --datadir="$d/data" --user=mysql --skip-test-db \
		--auth-root-authentication-method=normal >"$d/install.log" 2>&1; then
		result_fail "$name" "mariadb-install-db failed: $(tail -c 300 "$d/install.log")"
		return
	fi
	chown -R mysql: "$d"
	mkdir "$d/img" # (root's: images another user could write are refused)
	# as installed: InnoDB does its I/O through io_uring (liburing), its rings idle between requests
	if ! pid=$(mariadb_start "$d" "$port"); then
		result_fail "$name" "the server did not start: $(tail -c 300 "$d/err.log")"
		return
	fi
	uring=$(uring_fds "$pid")
	"${sql[@]}" -e 'create database z; create table z.t (i int primary key) engine=innodb;
		insert into z.t select seq from z.seq_1_to_1000' >"$d/setup.out" 2>&1
	# a session in an open transaction, outside the tree, fed through a FIFO
	mkfifo "$d/in"
	"${sql[@]}" --unbuffered <"$d/in" >"$d/session" 2>&1 &
	session_pid=$!
	exec {fd}>"$d/in"
	echo "begin; insert into z.t values (5000); select count(*) from z.t;" >&"$fd"
	if ! wait_until 10 grep -qx 1001 "$d/session"; then
		out="the session's transaction did not start: $(cat "$d/session" "$d/setup.out" | tr '\n' '|')"
	else
		CKPT_OPTS=(--tcp-established --file-locks)
		checkpoint "$name" "$pid" "$d" || out=failed
		CKPT_OPTS=()
	fi
	if [ -z "$out" ]; then
		echo "select count(*) from z.t; commit; select 'committed';" >&"$fd"
		wait_until 10 grep -qx committed "$d/session"
		local fresh
		fresh=$("${sql[@]}" -e 'insert into z.t values (6000); select count(*) from z.t' 2>&1 | tr '\n' ' ')
		if [ "$(tr '\n' '|' <"$d/session")" != "1001|1001|committed|" ]; then
			out="the session read '$(tr '\n' '|' <"$d/session")', expected '1001|1001|committed|'"
		elif [ "$fresh" != "1002 " ]; then
			out="a new connection counted '$fresh', expected 1002"
		elif [ "$(cat "$d/pid" 2>/dev/null)" != "$pid" ]; then
			out="the server's pid file names $(cat "$d/pid"), not $pid"
		fi
	fi
	exec {fd}>&-
	wait "$session_pid" 2>/dev/null
	[ "$out" = failed ] || mariadb_stop "$d" "$pid"
	kill_ours "$pid"
	verdict "$name" "$out" "as installed ($uring io_uring instances for InnoDB's I/O), a session in an open transaction over TCP commits after the restore and a new connection sees its row; $(ckpt_times "$d")" \
		"$d/err.log" "$d/dump.out" "$d/img/dump.log" "$d/restore.out" "$d/img/restore.log"
}

# fio_procs PID: fio (PID, whose thread runs job t) and its job process (job w)
fio_procs() {
	echo "$1" "$(pgrep -P "$1" | head -1)"
}
# fio_rings PID: the io_uring instances of both
fio_rings() {
	local p n=0
	for p in $(fio_procs "$1"); do
		n=$((n + $(uring_fds "$p")))
	done
	echo "$n"
}
# fio_registered PID KEY: the sum of fdinfo's KEY (UserBufs:, UserFiles:) over both's fds
fio_registered() {
	local p
	for p in $(fio_procs "$1"); do
		grep -h "^$2" /proc/"$p"/fdinfo/* 2>/dev/null
	done | awk '{n += $2} END {print n + 0}'
}

case_fio() {
	local name=apps/fio d=$ZOO_TMP/fio pid out="" uring=0 bufs files
	if ! command -v fio >/dev/null; then
		result_fail "$name" "fio is not installed (make setup installs it)"
		return
	fi
	mkdir -p "$d/img"
	# two jobs: w in a process of its own, t a thread of fio's (its ring's one submitter)
	printf '[global]\nioengine=io_uring\nfixedbufs=1\nregisterfiles=1\nrw=randwrite\nbs=4k\nsize=2m\niodepth=4\nverify=crc32c\ndo_verify=1\nrate_iops=100\n[w]\nfilename=%s/data\n[t]\nthread=1\nfilename=%s/data2\n' \
		"$d" "$d" >"$d/job.fio"
	(cd "$d" && exec setsid fio --output="$d/out" job.fio </dev/null >"$d/stdout" 2>&1) &
	pid=$!
	disown "$pid"
	track_pid "$pid"
	# each job makes its ring
	wait_until 10 eval '[ "$(fio_rings "$pid")" -ge 2 ]'
	uring=$(fio_rings "$pid")
	if [ "${uring:-0}" -lt 2 ]; then
		result_fail "$name" "fio's jobs made ${uring:-0} io_uring instances, not 2: $(tr '\n' '|' <"$d/stdout")"
		kill_ours "$pid"
		return
	fi
	# its registered buffers (fixedbufs: one per request in flight) and files (registerfiles)
	bufs=$(fio_registered "$pid" UserBufs:)
	files=$(fio_registered "$pid" UserFiles:)
	if [ "$bufs" -eq 0 ] || [ "$files" -eq 0 ]; then
		result_fail "$name" "fio's ring has no registered buffers (fixedbufs=1) or files (registerfiles=1)"
		kill_ours "$pid"
		return
	fi
	sleep 1
	# (writes in flight at the dump: it waits for them, up to 100 ms)
	checkpoint "$name" "$pid" "$d" || out=failed
	if [ -z "$out" ] && ! wait_until 30 pid_free "$pid"; then
		out="fio did not end within 30 s of the restore"
	elif [ -z "$out" ] && [ "$(grep -c 'err= 0' "$d/out")" -ne 2 ]; then
		out="fio's two jobs did not both end with err=0: $(grep -E 'err=|verify' "$d/out" | head -3 | tr '\n' '|')"
	elif [ -z "$out" ] && ! { grep -q 'WRITE:.*io=4096KiB' "$d/out" && grep -q 'READ:.*io=4096KiB' "$d/out"; }; then
		out="fio did not write and verify 4 MiB: $(grep -E 'READ:|WRITE:' "$d/out" | tr '\n' '|')"
	fi
	kill_ours "$pid"
	verdict "$name" "$out" "$uring io_urings, a process's and a thread's (4 entries, one submitter each, $bufs registered buffers, $files registered files) writing after the restore, every block written and verified; $(ckpt_times "$d")" \
		"$d/stdout" "$d/out" "$d/dump.out" "$d/img/dump.log" "$d/restore.out" "$d/img/restore.log"
}

# prom_query PORT EXPR: the value of the instant query's first result, or empty
pulse_env() { # pulse_env DIR: pactl's environment for the case's server
	echo "HOME=$1" "XDG_RUNTIME_DIR=$1/run" "PULSE_SERVER=unix:$1/pa.sock"
}
pulse_list() { # pulse_list DIR: the server's clients, sink inputs and source outputs (indexes, names)
	local kind
	for kind in clients sink-inputs source-outputs; do
		# shellcheck disable=SC2046 # (the environment's words)
		env $(pulse_env "$1") pactl list short "$kind" 2>/dev/null | grep -v pactl | cut -f1,3 | tr '\t\n' ' ;'
		echo -n "| "
	done
}

case_pulseaudio() {
	local name=apps/pulseaudio d=$ZOO_TMP/pulseaudio pid out="" before after s1 s2 checked
	if ! command -v pulseaudio >/dev/null || ! command -v pacat >/dev/null || ! command -v pactl >/dev/null; then
		result_fail "$name" "pulseaudio is not installed (apt-get install pulseaudio pulseaudio-utils; make setup does not)"
		return
	fi
	mkdir -p "$d/img"
	(exec setsid /usr/bin/python3 "$ZOO_ROOT/tests/apps/pulse-tree.py" "$d" </dev/null >"$d/tree.log" 2>&1) &
	pid=$!
	disown "$pid"
	track_pid "$pid"
	# 2 s of the tone recorded: the player, the server and the recorder all at work
	if ! wait_until 30 eval '[ "$(stat -c %s "$d/rec.raw" 2>/dev/null || echo 0)" -gt 352800 ]'; then
		result_fail "$name" "no recording: $(tail -c 300 "$d/server.log") $(tail -c 200 "$d/tree.log")"
		kill_group "$pid"
		return
	fi
	before=$(pulse_list "$d")
	checkpoint "$name" "$pid" "$d" || out=failed
	if [ -z "$out" ]; then
		after=$(pulse_list "$d")
		s1=$(stat -c %s "$d/rec.raw")
		# 2 s more of it, played and recorded by the restored tree
		wait_until 20 eval '[ "$(stat -c %s "$d/rec.raw")" -gt $((s1 + 352800)) ]'
		s2=$(stat -c %s "$d/rec.raw")
		checked=$(/usr/bin/python3 "$ZOO_ROOT/tests/apps/pulse-tree.py" --check "$d" 88200)
		if [ "$before" != "$after" ] || [[ $before != *pacat*pacat* ]]; then
			out="the server's clients and streams before the dump '$before', after the restore '$after'"
		elif [ "$s2" -le $((s1 + 352800)) ]; then
			out="the recording stopped: $s1 bytes just after the restore, $s2 later (2 s more expected)"
		elif [[ $checked != ok* ]]; then
			out="the recorded stream: ${checked#bad }"
		fi
	fi
	kill_group "$pid"
	verdict "$name" "$out" "the same clients and streams ($before), the tone recorded on through the memfd rings: ${checked:-} (frames, gaps, last frame); $(ckpt_times "$d")" \
		"$d/server.log" "$d/tree.log" "$d/img/dump.log" "$d/img/restore.log"
}

prom_query() {
	curl -s -m 5 "http://127.0.0.1:$1/api/v1/query" --data-urlencode "query=$2" 2>/dev/null |
		python3 -c 'import json, sys
r = json.load(sys.stdin)["data"]["result"]
print(r[0]["value"][1] if r else "")' 2>/dev/null
}

case_prometheus() {
	local name=apps/prometheus d=$ZOO_TMP/prometheus port=$(app_port 8) pid out="" n0 n1="" served
	if ! command -v prometheus >/dev/null || ! command -v curl >/dev/null; then
		result_fail "$name" "prometheus is not installed (apt-get install prometheus; make setup does not)"
		return
	fi
	mkdir -p "$d/img"
	printf 'global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ["127.0.0.1:%s"]\n' \
		"$port" >"$d/prometheus.yml"
	(exec setsid prometheus --config.file="$d/prometheus.yml" --storage.tsdb.path="$d/data" \
		--web.listen-address="127.0.0.1:$port" </dev/null >"$d/log" 2>&1) &
	pid=$!
	disown "$pid"
	track_pid "$pid"
	# scraping itself every second: 3 samples of up at least
	if ! wait_until 30 eval '[ "$(prom_query '"$port"' "count_over_time(up[1h])")" -ge 3 ] 2>/dev/null'; then
		result_fail "$name" "prometheus does not scrape itself: $(tail -c 300 "$d/log")"
		kill_ours "$pid"
		return
	fi
	CKPT_OPTS=(--tcp-established) # (its scrapes: connections to itself)
	checkpoint "$name" "$pid" "$d" || out=failed
	CKPT_OPTS=()
	n0=$(prom_query "$port" 'count_over_time(up[1h])')
	if [ -z "$out" ]; then
		wait_until 20 eval '[ "$(prom_query '"$port"' "count_over_time(up[1h])")" -ge $((n0 + 3)) ] 2>/dev/null'
		n1=$(prom_query "$port" 'count_over_time(up[1h])')
		# (the server's pid: the process that listens on its port)
		served=$(ss -Htlnp "sport = :$port" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1)
		if [ -z "$n0" ] || [ -z "$n1" ] || [ "$n1" -lt $((n0 + 3)) ]; then
			out="samples of up: $n0 just after the restore, '$n1' later (3 more expected: its scrapes go on)"
		elif [ "$served" != "pid=$pid" ] || [ "$(prom_query "$port" up)" != 1 ]; then
			out="after the restore: its port served by '$served' (pid=$pid expected), up '$(prom_query "$port" up)'"
		fi
		kill -TERM "$pid" 2>/dev/null
		if ! wait_until 20 pid_free "$pid" || ! grep -q 'See you next time' "$d/log"; then
			[ -n "$out" ] || out="prometheus did not stop cleanly on SIGTERM: $(tail -c 300 "$d/log")"
		fi
	fi
	kill_ours "$pid"
	verdict "$name" "$out" "the same process scrapes itself on after the restore: $n0 samples of up kept, $n1 later; it stops cleanly; $(ckpt_times "$d")" \
		"$d/log" "$d/dump.out" "$d/img/dump.log" "$d/restore.out" "$d/img/restore.log"
}

for c in "${SELECTED[@]}"; do
	"${CASE_FN[$c]}"
done
summary
