/*
 * Pseudo-terminals a process of the tree made (it holds the master): master and slave fds,
 * the slave's termios (with speeds of their own, termios2, and locked bits) and window size,
 * the foreground group, and the session that has it as controlling terminal. On restore stasis
 * gets the same index again (opening /dev/ptmx until the kernel hands out that one), sets
 * termios and size, and keeps both ends for the tree (each open file of the slave is made
 * anew from them: open_slave);
 * the session leader makes the slave its controlling terminal. Data in flight is kept both
 * ways: the kernel has no peek for terminals, so the dump reads it (the slave's input line by
 * line in canonical mode, so that a typed end-of-file is told apart, then with ICANON off for
 * a moment, so that an unfinished line comes out too) and puts it straight back with every
 * input and output processing off (input through TIOCSTI, taken at once, not echoed later);
 * restore puts it back the same way. Packet mode (off for that moment: status changes not yet
 * read are lost) and exclusive mode (set again once every process has opened its files) are
 * kept. Terminals that the tree does not own are the caller's (--shell-job), or, with
 * orphan_pts_master, the engine's: a container's terminal, whose master the engine's shim holds.
 * Such an orphan pty is saved from the slave alone (no data in flight) and made anew on
 * restore, its new master handed to the engine at the orphan-pts-master notification (runc
 * passes it to the shim's console socket).
 * Hung-up slave files stay hung up (reads give 0, writes and ioctls EIO). A pty whose master
 * the tree closed (its slave files hung up, /dev/pts/N gone) is saved from a slave's fstat
 * alone and made again by opening a master with its index and a slave, then closing that
 * master; a slave file that vhangup hung up, of a pty still alive, is a slave file stasis
 * opens and hangs up (TIOCVHANGUP) before opening the live one.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include "compat/kernel-abi.h"
#include "files.h"
#include "log.h"
#include "tree-path.h"
#include "pid-ns.h"
#include "pstree.h"
#include "tree-objects.h"
#include "util.h"

#define PTMX_MAJOR 5
#define PTMX_MINOR 2
#define PTS_MAJOR_FIRST 136
#define PTS_MAJOR_LAST 143
#define PTY_IN_FLIGHT_MAX (64u << 10)

/* The kernel's struct termios2 (asm/termbits.h, which glibc's termios.h clashes with): termios
 * with speeds of its own, used when c_cflag's baud bits say BOTHER. */
struct kernel_termios2 {
	tcflag_t c_iflag, c_oflag, c_cflag, c_lflag;
	cc_t c_line, c_cc[19];
	speed_t c_ispeed, c_ospeed;
};
#define KERNEL_TCGETS2 _IOR('T', 0x2A, struct kernel_termios2)
#define KERNEL_TCSETS2 _IOW('T', 0x2B, struct kernel_termios2)
#ifndef BOTHER
#define BOTHER 0010000
#endif
#ifndef IBSHIFT
#define IBSHIFT 16
#endif

/* A speed of its own (BOTHER), in or out: TCSETS keeps the baud bits but not the speeds. */
static bool own_speeds(tcflag_t cflag)
{
	return (cflag & CBAUD) == BOTHER || ((cflag >> IBSHIFT) & CBAUD) == BOTHER;
}

static const struct termios no_locks; /* TIOCSLCKTRMIOS: nothing locked */

/* Dump: p's speeds of its own and its locked bits (TIOCGLCKTRMIOS), from slave s. */
static int note_speeds_and_locks(int s, Pty *p)
{
	struct kernel_termios2 t2;
	struct termios locked = { 0 };

	if (ioctl(s, KERNEL_TCGETS2, &t2) || ioctl(s, TIOCGLCKTRMIOS, &locked))
		return -errno;
	if (own_speeds(t2.c_cflag)) {
		p->has_ispeed = p->has_ospeed = true;
		p->ispeed = t2.c_ispeed;
		p->ospeed = t2.c_ospeed;
	}
	if (!memcmp(&locked, &no_locks, sizeof(locked)))
		return 0;
	if (!(p->termios_locked.data = xmalloc(sizeof(locked))))
		return -ENOMEM;
	p->has_termios_locked = true;
	p->termios_locked.len = sizeof(locked);
	memcpy(p->termios_locked.data, &locked, sizeof(locked));
	return 0;
}

/* Restore: the speeds of its own of p into slave s, whose termios (baud bits BOTHER) are set. */
static int set_speeds(int s, const Pty *p)
{
	struct kernel_termios2 t2;

	if (!p->has_ospeed)
		return 0;
	if (ioctl(s, KERNEL_TCGETS2, &t2))
		return -1;
	t2.c_ispeed = p->ispeed;
	t2.c_ospeed = p->ospeed;
	return ioctl(s, KERNEL_TCSETS2, &t2);
}

struct held_master {
	uint32_t index; /* the pty */
	pid_t pid;      /* a process of the tree holding its master, */
	int fd;         /* at this fd */
};

struct restored_pty {
	uint32_t index;
	int master, slave; /* stasis' own, inherited by every new process; -1 if the master was closed */
	int hung;          /* a hung-up file of the slave, -1 if no fd had one */
	pid_t fg_pgrp;
	bool exclusive;    /* TIOCEXCL once every process has opened its files (after it, only
			    * the host's CAP_SYS_ADMIN opens the slave: not a user namespace's) */
};

/* The run's ptys (tree_ptys): saved by the dump, or made again by the restore. */
struct pty_state {
	TtyTable tab; /* dump (initialised on first use) */
	bool tab_ready;
	bool scanned;
	struct held_master *masters; /* ptys whose master the tree holds */
	size_t nr_masters;

	TtyTable *rst; /* restore: ttys.img, checked */
	struct restored_pty *made;
	size_t nr_made;
};

static struct pty_state *state_of(const struct run_ctx *ctx)
{
	struct pty_state *pd = run_state(ctx, &tree_ptys);

	if (!pd->tab_ready) {
		tty_table__init(&pd->tab);
		pd->tab_ready = true;
	}
	return pd;
}

static bool is_ptmx(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && major(st->st_rdev) == PTMX_MAJOR && minor(st->st_rdev) == PTMX_MINOR;
}

int pty_slave_index(const struct stat *st)
{
	unsigned maj = major(st->st_rdev);
	if (!S_ISCHR(st->st_mode) || maj < PTS_MAJOR_FIRST || maj > PTS_MAJOR_LAST)
		return -1;
	return (maj - PTS_MAJOR_FIRST) * 256 + minor(st->st_rdev);
}

int pty_ctty_index(unsigned long tty_nr)
{
	struct stat tty = { .st_mode = S_IFCHR,
			    .st_rdev = makedev((tty_nr >> 8) & 0xfff, (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00)) };

	return tty_nr ? pty_slave_index(&tty) : -1;
}

/* The index of the pty whose master is fd of pid (through a copy of the fd). */
static int master_index(pid_t pid, int fd)
{
	auto_close int m = task_fd_copy(pid, fd);
	unsigned index;

	if (m < 0 || ioctl(m, TIOCGPTN, &index))
		return -1;
	return index;
}

/* Which ptys the tree holds masters of: every process's fds, once per dump. */
static int scan_masters(struct dump_task *t, struct pty_state *pd)
{
	for (size_t k = 0; k < t->tree_size; k++) {
		pid_t pid = t->tree[k].pid;
		auto_free int *fds = NULL;
		size_t n;
		int err = proc_list_numbers(pid, "fd", &fds, &n);
		if (err == -ENOMEM)
			return err;
		if (err)
			continue;
		for (size_t i = 0; i < n; i++) {
			char path[64];
			struct stat st;
			snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fds[i]);
			int index;
			if (stat(path, &st) || !is_ptmx(&st) || (index = master_index(pid, fds[i])) < 0)
				continue;
			struct held_master *more = xreallocarray(pd->masters, pd->nr_masters + 1,
								 sizeof(*more));
			if (!more)
				return -ENOMEM;
			pd->masters = more;
			pd->masters[pd->nr_masters].index = index;
			pd->masters[pd->nr_masters].pid = pid;
			pd->masters[pd->nr_masters++].fd = fds[i];
		}
	}
	pd->scanned = true;
	return 0;
}

/* Which master fd of the tree holds pty index (*m NULL if none); -ENOMEM. */
static int find_master(struct dump_task *t, int index, const struct held_master **m)
{
	struct pty_state *pd = state_of(t->ctx);
	int err;

	*m = NULL;
	if (!pd->scanned && (err = scan_masters(t, pd)))
		return err;
	for (size_t i = 0; i < pd->nr_masters && !*m; i++)
		if (pd->masters[i].index == (uint32_t)index)
			*m = &pd->masters[i];
	return 0;
}

/* A copy of an fd of the master of pty index held by the tree; negative if none. */
static int master_of(struct dump_task *t, int index)
{
	const struct held_master *m;
	int err = find_master(t, index, &m);

	if (err)
		return err;
	return m ? task_fd_copy(m->pid, m->fd) : -ENOENT;
}

/* The engine's terminal comes back through orphan-pts-master (not with --shell-job: the caller's). */
static bool orphans_kept(const struct dump_task *t)
{
	return t->ctx->opts->orphan_pts_master && !t->ctx->opts->shell_job;
}

/* fd of pid is a hung-up file (its master was closed, or vhangup): ioctls give EIO. */
static bool hung_up(pid_t pid, int fd)
{
	auto_close int copy = task_fd_copy(pid, fd);
	struct termios tio;

	return copy >= 0 && ioctl(copy, TCGETS, &tio) && errno == EIO;
}

/* The slave of a pty whose master was closed: /dev/pts/N is gone and the file hung up. */
static bool master_closed(pid_t pid, const struct fd_probe *slave)
{
	size_t len = strlen(slave->link), tail = strlen(" (deleted)");

	return len > tail && !strcmp(slave->link + len - tail, " (deleted)") && hung_up(pid, slave->fd);
}

int pty_kept(struct dump_task *t, int index, const struct fd_probe *slave)
{
	const struct held_master *m;
	char path[64];
	struct stat own;
	int err;

	if ((err = find_master(t, index, &m)) || m)
		return err ? err : 1;
	if (slave && master_closed(t->pid, slave))
		return 1; /* nobody can reach it but the tree */
	/* an orphan only from the tree's own devpts (the container's terminal, not the host's) */
	snprintf(path, sizeof(path), "/proc/%d/root/dev/pts/%d", t->pid, index);
	if (!orphans_kept(t) || stat(path, &own) || !S_ISCHR(own.st_mode))
		return 0;
	return !slave || (own.st_dev == slave->st.st_dev && own.st_ino == slave->st.st_ino);
}

/* The foreground group of pid's controlling terminal (/proc/PID/stat field 8), 0 if none;
 * -ENOMEM. */
static pid_t ctty_foreground(pid_t pid)
{
	char path[64];
	int tpgid = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	auto_free char *text = read_file_at(AT_FDCWD, path, NULL);
	if (!text && errno == ENOMEM)
		return -ENOMEM;
	const char *after = text ? strrchr(text, ')') : NULL;
	if (!after || sscanf(after, ") %*c %*d %*d %*d %*d %d", &tpgid) != 1 || tpgid < 0)
		return 0;
	return tpgid;
}

static const Pty *saved_pty(const TtyTable *tab, uint32_t index)
{
	for (size_t i = 0; tab && i < tab->n_ptys; i++)
		if (tab->ptys[i]->index == index)
			return tab->ptys[i];
	return NULL;
}

/* Terminal settings for putting data back: line structure kept, every processing off. */
static struct termios passthrough(const struct termios *tio)
{
	struct termios raw = *tio;

	raw.c_iflag = 0;
	raw.c_oflag = 0;
	raw.c_lflag = tio->c_lflag & ICANON;
	for (int c = 0; c < NCCS; c++)
		if (c != VMIN && c != VTIME)
			raw.c_cc[c] = _POSIX_VDISABLE;
	return raw;
}

/*
 * The data in flight, put back as it was: p's input typed in (TIOCSTI on slave s: taken at
 * once under these settings, where a write to master m would be taken later, under the
 * restored ones: echoed, its end-of-file bytes mere bytes), and p's output of slave s.
 */
static int put_back(int s, const struct termios *tio, const Pty *p)
{
	struct termios raw = passthrough(tio);
	int err = 0;

	if (!p->input.len && !p->output.len)
		return 0;
	if (p->has_input_eof_char)
		raw.c_cc[VEOF] = p->input_eof_char;
	if (ioctl(s, TCSETS, &raw))
		err = -errno;
	for (size_t i = 0; !err && i < p->input.len; i++)
		if (ioctl(s, TIOCSTI, &p->input.data[i]))
			err = -errno;
	if (!err && write_all(s, p->output.data, p->output.len))
		err = -errno;
	if (ioctl(s, TCSETS, tio) && !err)
		err = -errno;
	return err;
}

/*
 * Everything fd has to read, up to PTY_IN_FLIGHT_MAX: what FIONREAD shows, again until it
 * stays empty for a moment (the kernel moves more from its flip buffers as room is made).
 */
static void read_pending(int fd, ProtobufCBinaryData *into)
{
	int bytes, quiet = 0;

	while (quiet < 3 && into->len < PTY_IN_FLIGHT_MAX) {
		if (ioctl(fd, FIONREAD, &bytes) || bytes <= 0) {
			quiet++;
			usleep(1000);
			continue;
		}
		quiet = 0;
		if ((size_t)bytes > PTY_IN_FLIGHT_MAX - into->len)
			bytes = PTY_IN_FLIGHT_MAX - into->len;
		ssize_t n = read(fd, into->data + into->len, bytes); /* never blocks: bytes are there */
		if (n <= 0)
			break;
		into->len += n;
	}
}

#define PTY_EOF_MAX 256

/*
 * The complete lines of a canonical slave's input (non-blocking reads, a line each), into
 * into; a line that a typed end-of-file ended (it comes without its line end, or alone as an
 * empty read) is followed by a byte at eofs[k], set once the input is known.
 */
static void read_lines(int s, const struct termios *tio, ProtobufCBinaryData *into, size_t *eofs,
		       size_t *n_eofs)
{
	while (into->len < PTY_IN_FLIGHT_MAX && *n_eofs < PTY_EOF_MAX) {
		ssize_t n = read(s, into->data + into->len, PTY_IN_FLIGHT_MAX - into->len);
		if (n < 0)
			break; /* (EAGAIN: no complete line left) */
		into->len += n;
		unsigned char last = n ? into->data[into->len - 1] : 0;
		bool line_end = n && (last == '\n' || (tio->c_cc[VEOL] && last == tio->c_cc[VEOL]) ||
				      ((tio->c_lflag & IEXTEN) && tio->c_cc[VEOL2] && last == tio->c_cc[VEOL2]));
		if (!line_end && into->len < PTY_IN_FLIGHT_MAX)
			eofs[(*n_eofs)++] = into->len++;
	}
}

/* The end-of-file byte of input with eofs: one it has nowhere else (^D if it can), or none. */
static int choose_eof_char(const ProtobufCBinaryData *in, const size_t *eofs, size_t n_eofs)
{
	bool used[256] = { false };

	for (size_t i = 0, k = 0; i < in->len; i++) {
		if (k < n_eofs && eofs[k] == i)
			k++;
		else
			used[in->data[i]] = true;
	}
	if (!used[4])
		return 4;
	for (int c = 1; c < 256; c++)
		if (!used[c])
			return c;
	return -1;
}

/*
 * The data in flight: what the master has to read (the slave's output), then the slave's
 * input: its complete lines and end-of-files as read in canonical mode, then with ICANON off
 * for a moment, so that an unfinished line comes out too; both are put back at once. s is
 * stasis's own non-blocking open of the slave, m a copy of a master fd.
 */
static int save_in_flight(pid_t pid, const char *path, int m, int s, const struct termios *tio, Pty *p)
{
	struct termios noncanon = *tio;
	int pkt = 0, off = 0, err;

	/* room for all of it before anything is taken: nothing read may be lost */
	if (!(p->output.data = xzalloc(PTY_IN_FLIGHT_MAX)) ||
	    !(p->input.data = xzalloc(PTY_IN_FLIGHT_MAX)))
		return -ENOMEM;
	if (ioctl(m, TIOCGPKT, &pkt) || (pkt && ioctl(m, TIOCPKT, &off))) {
		pr_perror("dump pid %d: pty %s: cannot read its packet mode", pid, path);
		return -errno;
	}
	p->has_packet_mode = p->packet_mode = pkt;
	read_pending(m, &p->output);
	size_t eofs[PTY_EOF_MAX], n_eofs = 0;
	if (tio->c_lflag & ICANON)
		read_lines(s, tio, &p->input, eofs, &n_eofs);
	noncanon.c_lflag &= ~ICANON;
	noncanon.c_cc[VMIN] = noncanon.c_cc[VTIME] = 0;
	if (!ioctl(s, TCSETS, &noncanon))
		read_pending(s, &p->input);
	int eof_char = n_eofs ? choose_eof_char(&p->input, eofs, n_eofs) : -1;
	if (n_eofs && eof_char < 0)
		pr_warn("dump pid %d: pty %s: %zu end-of-files typed and not read yet come back as line "
			"ends (its input holds every byte value)", pid, path, n_eofs);
	for (size_t k = 0; k < n_eofs; k++)
		p->input.data[eofs[k]] = eof_char < 0 ? '\n' : eof_char;
	p->has_input_eof_char = eof_char >= 0;
	p->input_eof_char = eof_char;
	if ((err = put_back(s, tio, p)))
		pr_err("dump pid %d: pty %s: cannot put back %zu + %zu bytes in flight: %s", pid, path,
		       p->input.len, p->output.len, strerror(-err));
	if (pkt && ioctl(m, TIOCPKT, &pkt) && !err)
		err = -errno;
	p->has_input = p->input.len > 0;
	p->has_output = p->output.len > 0;
	return err;
}

/* The pty, once: termios and size from the slave, foreground group and data in flight; an
 * orphan (no master in the tree) through a copy of slave, pid's fd, without the data; one
 * whose master was closed as that alone (its slave answers nothing but fstat). */
static int note_pty(struct dump_task *t, int index, const struct fd_probe *slave)
{
	struct pty_state *pd = state_of(t->ctx);
	const struct held_master *master;
	char path[64];
	struct termios tio;
	struct winsize ws;
	pid_t fg = 0;
	int err;

	if (saved_pty(&pd->tab, index))
		return 0;
	if ((err = find_master(t, index, &master)))
		return err;
	bool orphan = !master, closed = orphan && slave && master_closed(t->pid, slave);
	snprintf(path, sizeof(path), "/dev/pts/%d", index);
	/* the slave through its master (the tree's devpts may not be stasis's); an orphan
	 * slave, whose master the engine holds, from the task's own fd */
	auto_close int m = orphan ? -1 : master_of(t, index);
	int locked = 0, unlock = 0;
	/* (a locked slave, before unlockpt(), opens for no one: unlocked while stasis opens it) */
	if (m >= 0 && !ioctl(m, TIOCGPTLCK, &locked) && locked && ioctl(m, TIOCSPTLCK, &unlock))
		locked = 0;
	auto_close int s = orphan ? (slave ? task_fd_copy(t->pid, slave->fd) : -1)
			: m < 0 ? -1 : ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (locked && ioctl(m, TIOCSPTLCK, &locked)) {
		pr_perror("dump pid %d: cannot lock pty %s again", t->pid, path);
		return -EIO;
	}
	struct stat sst;
	if (s < 0 || (!closed && (ioctl(s, TCGETS, &tio) || ioctl(s, TIOCGWINSZ, &ws))) || fstat(s, &sst)) {
		pr_perror("dump pid %d: cannot read the state of pty %s", t->pid, path);
		return -EIO;
	}
	if (closed) {
		pr_info("dump pid %d fd %d: pty %s: its master was closed (hung up)", t->pid, slave->fd, path);
	} else if (orphan) {
		if ((fg = pty_ctty_index(t->stat.tty_nr) == index ? ctty_foreground(t->pid) : 0) < 0)
			return fg;
		pr_info("dump pid %d fd %d: pty %s has its master outside the tree: made anew on "
			"restore and handed to the engine (orphan_pts_master)", t->pid, slave->fd, path);
	} else if (ioctl(m, TIOCGPGRP, &fg)) {
		fg = 0;
	}
	int excl = 0;
	if (closed || ioctl(s, TIOCGEXCL, &excl))
		excl = 0;
	Pty *p = xzalloc(sizeof(*p)), **more;
	if (!p || !(more = xreallocarray(pd->tab.ptys, pd->tab.n_ptys + 1, sizeof(*more)))) {
		free(p);
		return -ENOMEM;
	}
	pd->tab.ptys = more;
	pd->tab.ptys[pd->tab.n_ptys++] = p;
	pty__init(p);
	p->index = index;
	p->has_master_closed = p->master_closed = closed;
	p->has_slave_mode = p->has_slave_uid = p->has_slave_gid = true;
	p->slave_mode = sst.st_mode & 07777;
	p->slave_uid = sst.st_uid;
	p->slave_gid = sst.st_gid;
	if (closed)
		return 0;
	if (!(p->termios.data = xzalloc(sizeof(tio))) || !(p->winsize.data = xzalloc(sizeof(ws))))
		return -ENOMEM;
	p->termios.len = sizeof(tio);
	memcpy(p->termios.data, &tio, sizeof(tio));
	p->winsize.len = sizeof(ws);
	memcpy(p->winsize.data, &ws, sizeof(ws));
	if ((err = note_speeds_and_locks(s, p))) {
		pr_err("dump pid %d: cannot read the speeds or locked settings of pty %s: %s", t->pid,
		       path, strerror(-err));
		return err;
	}
	if (fg > 0 && pid_ns_vpid(t->ctx, fg)) {
		p->has_fg_pgrp = true;
		p->fg_pgrp = pid_ns_vpid(t->ctx, fg);
	}
	p->has_exclusive = p->exclusive = excl;
	p->has_locked = p->locked = locked;
	p->has_orphan = p->orphan = orphan;
	if (orphan)
		return 0;
	/* (its locked bits unlocked meanwhile: reading and putting back the data in flight takes
	 * settings of stasis's own for a moment) */
	if (p->termios_locked.len && ioctl(s, TIOCSLCKTRMIOS, &no_locks)) {
		pr_perror("dump pid %d: cannot unlock the settings of pty %s for a moment", t->pid, path);
		return -errno;
	}
	err = save_in_flight(t->pid, path, m, s, &tio, p);
	if (p->termios_locked.len && ioctl(s, TIOCSLCKTRMIOS, p->termios_locked.data) && !err) {
		pr_perror("dump pid %d: cannot lock the settings of pty %s again", t->pid, path);
		err = -errno;
	}
	return err;
}

static int dump_pty(struct dump_task *t, const struct fd_probe *p, FdEntry *e)
{
	int index, err;

	if (is_ptmx(&p->st)) {
		if ((index = master_index(t->pid, p->fd)) < 0) {
			pr_err("dump pid %d fd %d: cannot find its pty index", t->pid, p->fd);
			return -EIO;
		}
		e->kind = FD_KIND__FD_PTY_MASTER;
		err = note_pty(t, index, NULL);
	} else if ((index = pty_slave_index(&p->st)) >= 0 && (err = pty_kept(t, index, p))) {
		if (err < 0 || (err = note_pty(t, index, p)))
			return err;
		e->kind = FD_KIND__FD_PTY_SLAVE;
		/* a file the master's close or vhangup hung up, of a pty that may still be alive */
		if (hung_up(t->pid, p->fd)) {
			Pty *pty = (Pty *)saved_pty(&state_of(t->ctx)->tab, index);
			e->has_pty_hung_up = e->pty_hung_up = true;
			pty->has_hung_up_slave = pty->hung_up_slave = !pty->master_closed;
		}
	} else {
		return 0;
	}
	if (err)
		return err;
	e->has_pty_index = e->has_flags = true;
	e->pty_index = index;
	e->flags = p->flags;
	if (!(e->path = xstrdup(p->link)))
		return -ENOMEM;
	return 1;
}

static int write_ptys(struct run_ctx *ctx, struct dump_tree *tr)
{
	struct pty_state *pd = state_of(ctx);

	(void)tr;
	return pd->tab.n_ptys ? image_write(ctx->images_dir_fd, IMG_TTYS, 0, &pd->tab.base) : 0;
}

/* ---- restore ---- */

/* /dev/ptmx hands out the lowest free index: open until it is ours, then drop the others. */
static int open_master_with_index(const struct run_ctx *ctx, uint32_t index)
{
	int tries[64], n = 0, found = -1;

	while (n < 64) {
		int m = tree_open(ctx, "/dev/ptmx", O_RDWR | O_NOCTTY | O_NONBLOCK, 0);
		unsigned got;
		if (m < 0 || ioctl(m, TIOCGPTN, &got)) {
			if (m >= 0)
				close(m);
			break;
		}
		if (got == index) {
			found = m;
			break;
		}
		tries[n++] = m;
		if (got > index)
			break; /* index is taken */
	}
	while (n > 0)
		close(tries[--n]);
	return found;
}

/* ttys.img, if some fd or session of the tree has a pty, checked with every use. */
static int validate_ptys(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct pty_state *st = state_of(ctx);
	bool needed = false;
	int err;

	for (size_t i = 0; i < rt->nr_tasks; i++) {
		for (size_t k = 0; k < rt->tasks[i].fds->n_fds; k++) {
			FdKind kind = rt->tasks[i].fds->fds[k]->kind;
			needed |= kind == FD_KIND__FD_PTY_MASTER || kind == FD_KIND__FD_PTY_SLAVE;
		}
		needed |= rt->tasks[i].core->has_ctty_pty;
	}
	if (!needed)
		return 0;
	if ((err = image_read(ctx->images_dir_fd, IMG_TTYS, 0, (ProtobufCMessage **)&st->rst)))
		return err;
	for (size_t i = 0; i < st->rst->n_ptys; i++) {
		const Pty *p = st->rst->ptys[i];
		size_t tio = p->master_closed ? 0 : sizeof(struct termios);
		size_t ws = p->master_closed ? 0 : sizeof(struct winsize);
		if (p->termios.len != tio || p->winsize.len != ws || p->input.len > PTY_IN_FLIGHT_MAX ||
		    (p->termios_locked.len && p->termios_locked.len != tio) || p->has_ispeed != p->has_ospeed ||
		    (p->has_ospeed && (!p->termios.len || !own_speeds(((const struct termios *)p->termios.data)->c_cflag))) ||
		    p->input_eof_char > 255 ||
		    p->output.len > PTY_IN_FLIGHT_MAX || saved_pty(st->rst, p->index) != p ||
		    ((p->orphan || p->master_closed) && (p->input.len || p->output.len || p->locked)) ||
		    (p->master_closed && (p->orphan || p->hung_up_slave || p->has_fg_pgrp || p->exclusive ||
					  p->packet_mode))) {
			pr_err("image ttys.img: pty %u is invalid", p->index);
			return -EINVAL;
		}
		if (p->orphan && !ctx->opts->orphan_pts_master) {
			pr_err("restore: pty /dev/pts/%u had its master outside the tree (the engine's "
			       "terminal): it can only be made again for an engine that takes the new "
			       "master (orphan_pts_master); nothing was started", p->index);
			return -ENOTSUP;
		}
	}
	for (size_t i = 0; i < rt->nr_tasks; i++) {
		const struct restore_task *t = &rt->tasks[i];
		for (size_t k = 0; k < t->fds->n_fds; k++) {
			const FdEntry *e = t->fds->fds[k];
			bool pty = e->kind == FD_KIND__FD_PTY_MASTER || e->kind == FD_KIND__FD_PTY_SLAVE;
			const Pty *p = pty && e->has_pty_index ? saved_pty(st->rst, e->pty_index) : NULL;
			if (pty && !p) {
				pr_err("image fds-%d.img: fd %u is a pty that ttys.img does not hold", t->pid,
				       e->fd);
				return -EINVAL;
			}
			/* a closed master leaves hung-up slave files only */
			if (pty && (e->pty_hung_up ? e->kind != FD_KIND__FD_PTY_SLAVE ||
							     !(p->master_closed || p->hung_up_slave)
						   : p->master_closed)) {
				pr_err("image fds-%d.img: fd %u: a %s of pty %u, whose master %s closed", t->pid,
				       e->fd, e->pty_hung_up ? "hung-up slave" : "live end", p->index,
				       p->master_closed ? "was" : "was not");
				return -EINVAL;
			}
		}
		const Pty *ctty = t->core->has_ctty_pty ? saved_pty(st->rst, t->core->ctty_pty) : NULL;
		if (t->core->has_ctty_pty && (!ctty || ctty->master_closed)) {
			pr_err("image core-%d.img: its controlling terminal /dev/pts/%u is not a live pty of ttys.img",
			       t->pid, t->core->ctty_pty);
			return -EINVAL;
		}
	}
	return 0;
}

/* The pty's master: its old index, or for a pty whose master was closed (nobody reaches it by
 * its path) any index when that one is taken. */
static int open_master(const struct run_ctx *ctx, const Pty *p)
{
	int m = open_master_with_index(ctx, p->index);
	unsigned got;

	if (m >= 0 || !p->master_closed)
		return m;
	m = tree_open(ctx, "/dev/ptmx", O_RDWR | O_NOCTTY | O_NONBLOCK, 0);
	if (m >= 0 && !ioctl(m, TIOCGPTN, &got))
		pr_warn("restore: pty /dev/pts/%u, whose master was closed, comes back as /dev/pts/%u "
			"(its index is taken)", p->index, got);
	return m;
}

/* Pty p in stasis: the master and slave with their settings and data in flight; a hung-up
 * file of the slave first if some fd had one (vhangup, or the master closed: then the pty is
 * left hung up, /dev/pts/N gone, with nothing else). */
static int make_pty(const struct run_ctx *ctx, const Pty *p, struct restored_pty *rp)
{
	char path[64];
	unsigned got = 0;
	int unlock = 0, on = 1;

	rp->index = p->index;
	rp->fg_pgrp = p->has_fg_pgrp ? (pid_t)p->fg_pgrp : 0;
	rp->exclusive = p->exclusive;
	rp->master = open_master(ctx, p);
	if (rp->master < 0 || ioctl(rp->master, TIOCGPTN, &got) || ioctl(rp->master, TIOCSPTLCK, &unlock)) {
		pr_err("restore: cannot get pty /dev/pts/%u back (taken by another terminal?)", p->index);
		return -EBUSY;
	}
	snprintf(path, sizeof(path), "/dev/pts/%u", got);
	if ((p->master_closed || p->hung_up_slave) &&
	    (rp->hung = tree_open(ctx, path, O_RDWR | O_NOCTTY | O_NONBLOCK, 0)) < 0)
		return -errno;
	if (p->master_closed) {
		if ((p->has_slave_uid && fchown(rp->hung, p->slave_uid, p->has_slave_gid ? p->slave_gid : (gid_t)-1)) ||
		    (p->has_slave_mode && fchmod(rp->hung, p->slave_mode & 07777))) {
			pr_perror("restore: cannot set the owner of pty %s", path);
			return -errno;
		}
		close(rp->master); /* hangs the slave up and removes its node */
		rp->master = -1;
		return 0;
	}
	/* vhangup: every file of the slave open now (that one) is hung up, not those opened later */
	if (p->hung_up_slave && ioctl(rp->hung, TIOCVHANGUP)) {
		pr_perror("restore: cannot hang up a file of pty %s", path);
		return -errno;
	}
	if ((rp->slave = tree_open(ctx, path, O_RDWR | O_NOCTTY | O_NONBLOCK, 0)) < 0)
		return -errno;
	if (put_back(rp->slave, (const struct termios *)p->termios.data, p) ||
	    ioctl(rp->slave, TCSETS, p->termios.data) || set_speeds(rp->slave, p) ||
	    ioctl(rp->slave, TIOCSWINSZ, p->winsize.data) ||
	    (p->packet_mode && ioctl(rp->master, TIOCPKT, &on)) ||
	    (p->has_slave_uid && fchown(rp->slave, p->slave_uid, p->has_slave_gid ? p->slave_gid : (gid_t)-1)) ||
	    (p->has_slave_mode && fchmod(rp->slave, p->slave_mode & 07777)) ||
	    (p->locked && ioctl(rp->master, TIOCSPTLCK, &on)) ||
	    /* (last: locked bits would refuse the changes above) */
	    (p->termios_locked.len && ioctl(rp->slave, TIOCSLCKTRMIOS, p->termios_locked.data))) {
		pr_perror("restore: cannot set the state of pty %s", path);
		return -errno;
	}
	return 0;
}

/* Every pty with its index, settings and data in flight, in stasis. */
static int prepare_ptys(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct pty_state *st = state_of(ctx);
	TtyTable *tab = st->rst;
	int err;

	(void)rt;
	if (!tab)
		return 0;
	st->made = xzalloc((tab->n_ptys + 1) * sizeof(*st->made));
	if (!st->made)
		return -ENOMEM;
	/* those whose index matters first: a pty whose master was closed takes any index left
	 * when its own is taken, and must not take another one's */
	for (int closed = 0; closed <= 1; closed++) {
		for (size_t i = 0; i < tab->n_ptys; i++) {
			if (tab->ptys[i]->master_closed != closed)
				continue;
			struct restored_pty *rp = &st->made[st->nr_made++];
			rp->master = rp->slave = rp->hung = -1;
			if ((err = make_pty(ctx, tab->ptys[i], rp))) {
				if (err != -EBUSY)
					pr_err("restore: cannot make pty /dev/pts/%u: %s", tab->ptys[i]->index,
					       strerror(-err));
				return err;
			}
			/* the engine takes the new master of its terminal (runc: to the console socket) */
			if (tab->ptys[i]->orphan && (err = run_notify(ctx, "orphan-pts-master", 0, rp->master)))
				return err;
		}
	}
	return 0;
}

static const struct restored_pty *made_pty(const struct run_ctx *ctx, uint32_t index)
{
	const struct pty_state *st = state_of(ctx);

	for (size_t i = 0; i < st->nr_made; i++)
		if (st->made[i].index == index)
			return &st->made[i];
	return NULL;
}

/* In the session leader: its controlling terminal, and the foreground group once it exists. */
int pty_take_as_ctty(const struct run_ctx *ctx, uint32_t index)
{
	const struct restored_pty *rp = made_pty(ctx, index);

	if (!rp)
		return -ENOENT;
	return ioctl(rp->slave, TIOCSCTTY, 0) ? -errno : 0;
}

int pty_set_foreground(const struct run_ctx *ctx, uint32_t index)
{
	const struct restored_pty *rp = made_pty(ctx, index);

	if (!rp || !rp->fg_pgrp)
		return 0;
	/* the group may belong to a child still being created */
	for (int tries = 0; tries < 500 && kill(-rp->fg_pgrp, 0); tries++)
		usleep(2000);
	return ioctl(rp->slave, TIOCSPGRP, &rp->fg_pgrp) ? -errno : 0;
}

/* stasis's ends closed (keep_exclusive: not the slave of a pty in exclusive mode) */
static void close_ends(struct pty_state *st, bool keep_exclusive)
{
	for (size_t i = 0; i < st->nr_made; i++) {
		struct restored_pty *rp = &st->made[i];
		int *ends[] = { &rp->master, &rp->slave, &rp->hung };
		for (size_t k = 0; k < 3; k++)
			if (*ends[k] >= 0 && !(keep_exclusive && rp->exclusive && ends[k] == &rp->slave)) {
				close(*ends[k]);
				*ends[k] = -1;
			}
	}
}

static void close_ptys(struct run_ctx *ctx)
{
	close_ends(state_of(ctx), true);
}

static void undo_ptys(struct run_ctx *ctx, bool restored)
{
	struct pty_state *st = state_of(ctx);

	for (size_t i = 0; restored && i < st->nr_made; i++)
		if (st->made[i].exclusive && st->made[i].slave >= 0 && ioctl(st->made[i].slave, TIOCEXCL))
			pr_warn("restore: pty /dev/pts/%u is not in exclusive mode again: %s", st->made[i].index,
				strerror(errno));
	close_ends(st, false);
	st->nr_made = 0;
}

static void free_ptys(void *state)
{
	struct pty_state *st = state;

	if (st->rst)
		image_free(&st->rst->base);
	free(st->made);
	free(st->masters);
	if (st->tab_ready)
		image_free_fields(&st->tab.base);
}

const struct tree_object_ops tree_ptys = {
	.name = "ptys",
	.state_size = sizeof(struct pty_state),
	.free_state = free_ptys,
	.write = write_ptys,
	.validate = validate_ptys,
	.prepare = prepare_ptys,
	.close = close_ptys,
	.undo = undo_ptys,
};

/*
 * An open file of the slave of its own (two opens of one slave are two files, each with its
 * flags), never its controlling terminal: through the master (TIOCGPTPEER) as it was opened
 * if it had no O_LARGEFILE (opened so, or by an open of the master's peer), else opened again
 * through stasis's file of it. (TIOCEXCL comes once every process has opened its files.)
 */
static int open_slave(const struct restored_pty *rp, const FdEntry *e)
{
	int flags = (e->flags & (O_ACCMODE | O_NONBLOCK | O_APPEND | O_SYNC | O_DSYNC)) | O_NOCTTY;
	char path[64];
	int fd;

	if (!(e->flags & KERNEL_O_LARGEFILE) && rp->master >= 0) {
		/* (its flags kept as given, O_CLOEXEC too: set apart) */
		if ((fd = ioctl(rp->master, TIOCGPTPEER, flags)) >= 0 && fcntl(fd, F_SETFD, FD_CLOEXEC)) {
			close(fd);
			fd = -1;
		}
	} else {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", rp->slave);
		fd = open(path, flags | O_CLOEXEC);
	}
	return fd < 0 ? -errno : fd;
}

static int open_pty(struct restore_task *t, const FdEntry *e)
{
	const struct pty_state *st = state_of(t->ctx);
	const struct restored_pty *ptys = st->made;

	for (size_t i = 0; i < st->nr_made; i++) {
		if (ptys[i].index != e->pty_index)
			continue;
		if (e->kind == FD_KIND__FD_PTY_SLAVE && !e->pty_hung_up)
			return open_slave(&ptys[i], e);
		int end = e->kind == FD_KIND__FD_PTY_MASTER ? ptys[i].master : ptys[i].hung;
		if (fcntl(end, F_SETFL, e->flags & O_NONBLOCK))
			return -errno;
		int fd = fcntl(end, F_DUPFD_CLOEXEC, 0);
		return fd < 0 ? -errno : fd;
	}
	return -ENOENT;
}

const struct fd_kind_ops fd_kind_pty_master = {
	.name = "pty master",
	.dump = dump_pty,
	.open = open_pty,
	.kind = FD_KIND__FD_PTY_MASTER,
};

const struct fd_kind_ops fd_kind_pty_slave = {
	.name = "pty slave",
	.open = open_pty,
	.kind = FD_KIND__FD_PTY_SLAVE,
};
