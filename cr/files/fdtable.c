/*
 * The fd table: numbers, close-on-exec, sharing of one open file description by several fds
 * (dup), and dispatch to the kind of file behind each fd. An fd of a kind stasis does not
 * know fails the dump, naming the fd, the task and what the fd points to.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "dirty-track.h"
#include "files.h"
#include "log.h"
#include "net-nested.h"
#include "restorer/restorer.h"
#include "seize.h"
#include "task.h"
#include "util.h"

#define MAX_FD_NUMBER (1u << 20)

/*
 * Close-on-exec: fdinfo's flags are the file's flags with O_CLOEXEC added for a close-on-exec
 * fd. A message queue keeps the O_CLOEXEC of its mq_open in its own flags (no other kind of
 * file does, checked on 6.18): for one, the fd's own flag is asked inside the task. f: the
 * fd's open file, which keeps whether it is a message queue once asked.
 */
static int fd_cloexec(struct dump_task *t, const struct fd_probe *p, struct open_file *f, bool *cloexec)
{
	uint64_t args[6] = { p->fd, F_GETFD };
	char path[64];
	struct statfs sf;
	int64_t ret;
	unsigned logged = log_errors();
	int err;

	*cloexec = p->flags & O_CLOEXEC;
	if (!*cloexec)
		return 0;
	if (f->mqueue < 0) {
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", t->pid, p->fd);
		f->mqueue = !statfs(path, &sf) && sf.f_type == MQUEUE_MAGIC;
	}
	if (!f->mqueue)
		return 0;
	if ((err = inject_syscall(&t->inj, SYS_fcntl, args, &ret)) || (err = ret < 0 ? ret : 0))
		return log_unnamed(logged, err, "dump pid %d fd %d: cannot read its close-on-exec flag",
				   t->pid, p->fd);
	*cloexec = ret & FD_CLOEXEC;
	return 0;
}

/* What an anonymous-inode file no kind claims is, for the refusal ("" if nothing to say). */
static const char *unsupported_kind(const char *link)
{
	static const struct {
		const char *link, *what;
	} known[] = {
		{ "anon_inode:bpf-prog", " (a BPF program: systemd holds those it attaches to cgroups for "
					 "IPAddressDeny=, IPAccounting=, DeviceAllow=)" },
		{ "anon_inode:bpf_link", " (a BPF link)" },
		{ "anon_inode:[perf_event]", " (a perf event)" },
		{ "anon_inode:[userfaultfd]", " (a userfaultfd)" },
		{ "anon_inode:kvm", " (a KVM virtual machine or CPU)" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(known); i++)
		if (!strncmp(link, known[i].link, strlen(known[i].link)))
			return known[i].what;
	return "";
}

/* The tree's open files: the root's table (a task outside a tree: its own). */
static struct open_files *tree_open_files(struct dump_task *t)
{
	return t->tree ? &t->tree[0].open_files : &t->open_files;
}

int fd_table_holder(const struct dump_task *t, const struct fd_probe *p, pid_t pid)
{
	const struct open_files *x = t->tree ? &t->tree[0].open_files : &t->open_files;
	const struct open_file *f = open_files_find(x, p, pid);

	return f && f->last_pos == t->tree_pos ? f->last_fd : -ENOENT;
}

/*
 * Which open file fd is: the first of this process's fds holding it (a dup), or the same open
 * file held by a process dumped before this one, as fork leaves it (resolved to the first
 * holder), or a new one (*seen false: its kind dumps it). *f: the open file (until the next).
 */
static int find_open_file(struct dump_task *t, const struct fd_probe *p, FdEntry *e, bool *seen,
			  struct open_file **f)
{
	struct open_file mine = { t->pid, (int)e->fd, t->vpid, t->tree_pos, (int)e->fd, -1 }, *o;
	int err = open_files_see(tree_open_files(t), p, &mine, &o);

	if (err < 0) {
		pr_err("dump pid %d fd %u: cannot compare its open file with the tree's: %s", t->pid,
		       e->fd, strerror(-err));
		return err;
	}
	*f = o;
	*seen = err == 1;
	if (!*seen)
		return 0;
	if (o->last_pos == t->tree_pos) {
		e->kind = FD_KIND__FD_DUP;
		e->has_dup_of = true;
		e->dup_of = o->last_fd;
		return 0;
	}
	o->last_pos = t->tree_pos;
	o->last_fd = e->fd;
	e->kind = FD_KIND__FD_SHARED;
	e->has_shared_pid = e->has_shared_fd = true;
	e->shared_pid = o->vpid;
	e->shared_fd = o->fd;
	return 0;
}

static int dump_fds(struct dump_task *t)
{
	auto_free int *fds = NULL;
	size_t n;
	FdTable *tab = t->fds;
	unsigned logged;
	int err;

	if (t->fds_owner) { /* the owner's image holds them */
		tab->has_table_of = true;
		tab->table_of = t->fds_owner->vpid;
		return 0;
	}
	logged = log_errors();
	if ((err = proc_list_numbers(t->pid, "fd", &fds, &n)))
		return log_unnamed(logged, err, "dump pid %d: cannot list its fds", t->pid);
	if (!(tab->fds = xzalloc(n * sizeof(*tab->fds))))
		return -ENOMEM;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", t->pid);
	auto_close int fd_dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%d/fdinfo", t->pid);
	auto_close int info_dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	const struct fd_dirs dirs = { t->pid, fd_dir, info_dir };
	for (size_t i = 0; i < n; i++) {
		struct fd_probe p;
		FdEntry *e;
		struct open_file *f;
		auto_free char *info = NULL;
		bool cloexec, seen;

		if (dirty_track_owns_fd(t, fds[i]))
			continue; /* stasis's own, not the program's */
		/* an fd of an open file met before costs its fdinfo and a few kcmp, nothing more */
		if ((err = fd_probe_info(&dirs, fds[i], &p, &info)))
			return err;
		/* in the table as soon as it exists: the tree's teardown frees it on any failure */
		if (!(e = xzalloc(sizeof(*e))))
			return -ENOMEM;
		fd_entry__init(e);
		e->fd = fds[i];
		tab->fds[tab->n_fds++] = e;
		if ((err = find_open_file(t, &p, e, &seen, &f)) || (err = fd_cloexec(t, &p, f, &cloexec)))
			return err;
		e->cloexec = cloexec;
		if (seen && e->kind == FD_KIND__FD_DUP)
			continue;
		if (seen) {
			/* (a lock's refusal names the file) */
			if ((fdinfo_key(info, "lock:") && (err = fd_probe_file(&dirs, &p))) ||
			    (err = locks_dump_fd(t, &p, e, true)) ||
			    (err = net_nested_note_socket(t->ctx, t->pid, e)))
				return err;
			continue;
		}
		if ((err = fd_probe_file(&dirs, &p)))
			return err;
		logged = log_errors();
		if (S_ISSOCK(p.st.st_mode) && !(p.flags & O_PATH) && (err = sockopts_dump(t->pid, e->fd, e)))
			return log_unnamed(logged, err, "dump pid %d fd %d: cannot read the options of %s",
					   t->pid, e->fd, p.link);
		int claimed = 0;
		for (size_t k = 0; k < fd_kinds_len && !claimed; k++) {
			if (!fd_kinds[k]->dump)
				continue; /* restore-only: claimed by a sibling kind's dump */
			e->kind = fd_kinds[k]->kind; /* the dump may refine it */
			claimed = fd_kinds[k]->dump(t, &p, e);
			if (claimed < 0)
				return log_unnamed(logged, claimed, "dump pid %d fd %d: %s (%s)", t->pid, e->fd,
						   p.link, fd_kinds[k]->name);
		}
		if (!claimed) {
			char what[320];
			pr_err("dump pid %d fd %d: %s%s is not supported yet (fdinfo: %s)", t->pid, e->fd, p.link,
			       unsupported_kind(p.link), fdinfo_one_line(info, what, sizeof(what)));
			return -ENOTSUP;
		}
		if ((err = locks_dump_fd(t, &p, e, false)) || (err = fown_dump(t, &p, e)) ||
		    (S_ISSOCK(p.st.st_mode) && !(p.flags & O_PATH) &&
		     (err = net_nested_note_socket(t->ctx, t->pid, e))))
			return err;
		inode_owner_dump(&p, e);
	}
	return 0;
}

/*
 * A sharer: the owner (the first holder of the table in tree order: its images are read
 * already) is a live process with a table of its own; the sharer's numbers are the owner's.
 */
static int validate_table_of(struct restore_task *t)
{
	const FdTable *tab = t->fds;

	for (struct restore_task *u = t->tree; u < t && !t->fds_owner; u++)
		if (u->pid == (pid_t)tab->table_of && !u->fds->has_table_of)
			t->fds_owner = u;
	if (!t->fds_owner || tab->n_fds) {
		pr_err("image fds-%d.img: it shares the fd table of pid %u, %s", t->pid, tab->table_of,
		       tab->n_fds ? "and has fds of its own"
				  : "which is no process before it in the tree with a table of its own");
		return -EINVAL;
	}
	const FdTable *own = t->fds_owner->fds;
	if (own->n_fds)
		t->next_high_fd = own->fds[own->n_fds - 1]->fd + 1;
	return 0;
}

static int validate_fds(struct restore_task *t)
{
	FdTable *tab = t->fds;

	if (tab->has_table_of)
		return validate_table_of(t);

	for (size_t i = 0; i < tab->n_fds; i++) {
		FdEntry *e = tab->fds[i];
		bool ok = e->fd < MAX_FD_NUMBER && (i == 0 || e->fd > tab->fds[i - 1]->fd);
		if (e->kind == FD_KIND__FD_DUP) {
			ok = ok && e->has_dup_of && e->dup_of < e->fd;
			for (size_t j = 0; ok && j < i; j++)
				if (tab->fds[j]->fd == e->dup_of)
					goto next;
			ok = false;
		} else if (e->kind == FD_KIND__FD_SHARED) {
			ok = ok && e->has_shared_pid && e->has_shared_fd && e->shared_pid != (uint32_t)t->pid;
		} else {
			ok = ok && fd_kind_of(e->kind);
			ok = ok && (e->kind != FD_KIND__FD_PIPE || (e->has_pipe_id && e->has_flags));
			ok = ok && (e->kind != FD_KIND__FD_UNIX_PAIR || (e->has_pair_id && e->has_sock_ino));
			ok = ok && (e->kind != FD_KIND__FD_UNIX_PENDING || e->has_sock_ino);
			ok = ok && sockopts_valid(e) && fown_valid(e) && locks_valid(e);
		}
		if (!ok) {
			pr_err("image fds-%d.img: entry %zu (fd %u) is invalid", t->pid, i, e->fd);
			return -EINVAL;
		}
		const struct fd_kind_ops *ops = fd_kind_of(e->kind);
		int err = ops && ops->validate ? ops->validate(t, e) : 0;
		if (err)
			return err;
next:;
	}
	if (tab->n_fds)
		t->next_high_fd = tab->fds[tab->n_fds - 1]->fd + 1;
	return 0;
}

static const char *fd_what(const FdEntry *e)
{
	const struct fd_kind_ops *ops = fd_kind_of(e->kind);

	if (e->path)
		return e->path;
	if (e->ext_key)
		return e->ext_key;
	return ops ? ops->name : "file";
}

/*
 * The open file of entry i, opened by its kind or inherited from stasis (shared files): the
 * inherited fd itself, which the entry takes (no process of the tree holds a shared file at two
 * fds but by dup, FD_DUP: nothing else of the task asks for that fd again).
 */
static int open_entry(struct restore_task *t, const FdEntry *e)
{
	/* held by several processes: stasis opened it once, every process inherited it */
	int held = e->kind == FD_KIND__FD_SHARED ? shared_file_fd(t->ctx, e->shared_pid, e->shared_fd)
						  : shared_file_fd(t->ctx, t->pid, e->fd);
	unsigned logged = log_errors();
	int fd = held >= 0 ? held : e->kind == FD_KIND__FD_SHARED ? -ENOENT : fd_kind_of(e->kind)->open(t, e);
	int err;

	if (fd < 0) {
		if (e->kind == FD_KIND__FD_SHARED)
			pr_err("restore pid %d fd %u: the file it shares with pid %u fd %u is not open: %s",
			       t->pid, e->fd, e->shared_pid, e->shared_fd, strerror(-fd));
		else /* what the kind did not name itself */
			log_unnamed(logged, fd, "restore pid %d fd %u: cannot open %s (%s)", t->pid, e->fd,
				    fd_what(e), fd_kind_of(e->kind)->name);
		return fd;
	}
	logged = log_errors();
	if (sockopts_saved(e) && e->kind != FD_KIND__FD_EXTERNAL && (err = sockopts_restore(fd, e))) {
		log_unnamed(logged, err, "restore pid %d fd %u: cannot set the socket options of %s",
			    t->pid, e->fd, fd_what(e));
		close(fd);
		return err;
	}
	return fd;
}

/* fd (open, close-on-exec) becomes fd number at, free or fd itself. */
static int put_at_number(int fd, int at, bool cloexec)
{
	if (fd == at)
		return fcntl(fd, F_SETFD, cloexec ? FD_CLOEXEC : 0) ? -errno : 0;
	if (dup3(fd, at, cloexec ? O_CLOEXEC : 0) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	close(fd);
	return 0;
}

/*
 * Where an fd waits for its number, which another file holds for now, without taking a number
 * some entry of the task is to have: a number an inherited fd freed when its entry took it
 * (freed), or the lowest free number below low_end that is no entry's, else above every number.
 */
struct parking {
	const bool *target; /* per number below low_end: an entry's */
	int low_end, next;
	int *freed;         /* numbers below low_end, no entry's, that inherited fds left */
	size_t nr_freed;
};

static int park(struct restore_task *t, struct parking *p, int fd)
{
	while (p->nr_freed) {
		int at = p->freed[--p->nr_freed];
		if (fcntl(at, F_GETFD) < 0 && dup3(fd, at, O_CLOEXEC) == at) {
			close(fd);
			return at;
		}
	}
	while (p->next < p->low_end) {
		int nfd = fcntl(fd, F_DUPFD_CLOEXEC, p->next);
		if (nfd < 0 || nfd >= p->low_end) {
			if (nfd >= 0)
				close(nfd);
			p->next = p->low_end;
			break;
		}
		p->next = nfd + 1;
		if (!p->target[nfd]) {
			close(fd);
			return nfd;
		}
		close(nfd);
	}
	return restore_move_high(t, fd);
}

/* The inherited fd at number was taken by its entry (moved): a number to wait at, if no entry's. */
static void park_freed(struct parking *p, int number)
{
	if (number >= 0 && number < p->low_end && !p->target[number])
		p->freed[p->nr_freed++] = number;
}

/*
 * In the new task: open every file (an inherited one is taken, not copied) and put it at its
 * number if that number is free; one whose number an fd inherited from stasis still holds
 * waits at a number no entry has (park). Then the waiting files go to their numbers, the dups
 * are made, the inherited fds left below the helpers are closed, and the kinds that need every
 * number settle. The task never holds much more than its own fds and what it inherited: a
 * process holding 10,000 ends of pipes (stasis's, inherited) under a limit of 20,000 fds is
 * restored.
 */
static int restore_fds(struct restore_task *t)
{
	FdTable *tab = t->fds;
	auto_free int *tmp = NULL; /* per fd: where it waits; -1: at its number already */
	/* first helper fd (its own or a sharer's): everything below is the task's */
	int low_end = t->args->close_from < t->sharers_low ? t->args->close_from : t->sharers_low;
	auto_free bool *target = NULL;
	int err;

	if (t->fds_owner)
		return 0; /* its fds are the owner's, restored by the owner */
	auto_free int *freed = NULL;
	if (!(tmp = xzalloc((tab->n_fds + 1) * sizeof(int))) || !(target = xzalloc((size_t)low_end + 1)) ||
	    !(freed = xzalloc((tab->n_fds + 1) * sizeof(int))))
		return -ENOMEM;
	for (size_t i = 0; i < tab->n_fds; i++)
		if ((int)tab->fds[i]->fd < low_end)
			target[tab->fds[i]->fd] = true;
	struct parking parking = { target, low_end, 0, freed, 0 };
	for (size_t i = 0; i < tab->n_fds; i++) {
		FdEntry *e = tab->fds[i];
		if (e->kind == FD_KIND__FD_DUP)
			continue;
		int fd = open_entry(t, e);
		if (fd < 0)
			return fd;
		/* (above a room of helpers in a gap of the task's fds, only the task's own are) */
		bool own_number = (int)e->fd < low_end || (t->high_fd_end && (int)e->fd >= t->high_fd_end);
		if (own_number && (fd == (int)e->fd || fcntl(e->fd, F_GETFD) < 0)) {
			if ((err = put_at_number(fd, e->fd, e->cloexec))) {
				pr_err("restore pid %d fd %u: cannot put %s at its number: %s", t->pid,
				       e->fd, fd_what(e), strerror(-err));
				return err;
			}
			tmp[i] = -1;
		} else if ((tmp[i] = (int)e->fd < low_end ? park(t, &parking, fd) : restore_move_high(t, fd)) < 0) {
			return tmp[i];
		}
		if (fd != (int)e->fd)
			park_freed(&parking, fd);
	}
	/* (what still holds a number now is an inherited fd no entry took: replaced) */
	for (int dups = 0; dups < 2; dups++)
		for (size_t i = 0; i < tab->n_fds; i++) {
			FdEntry *e = tab->fds[i];
			if (tmp[i] == -1 || (e->kind == FD_KIND__FD_DUP) != dups)
				continue;
			int src = dups ? (int)e->dup_of : tmp[i];
			if (dup3(src, e->fd, e->cloexec ? O_CLOEXEC : 0) < 0) {
				pr_perror("restore pid %d fd %u: cannot put %s at its number", t->pid, e->fd,
					  fd_what(e));
				return -errno;
			}
			if (!dups)
				close(tmp[i]);
		}
	/* below the helpers, only the files at their numbers stay */
	int from = 0;
	for (size_t i = 0; i <= tab->n_fds && from < low_end; i++) {
		int to = i < tab->n_fds && (int)tab->fds[i]->fd < low_end ? (int)tab->fds[i]->fd : low_end;
		if (to > from && syscall(SYS_close_range, from, to - 1, 0)) {
			pr_perror("restore pid %d: cannot close fds %d to %d", t->pid, from, to - 1);
			return -errno;
		}
		from = to + 1;
	}
	for (size_t i = 0; i < tab->n_fds; i++) {
		const struct fd_kind_ops *ops = fd_kind_of(tab->fds[i]->kind);
		unsigned logged = log_errors();
		if (ops && ops->settle && (err = ops->settle(t, tab->fds[i])))
			return log_unnamed(logged, err, "restore pid %d fd %u: %s", t->pid, tab->fds[i]->fd,
					   ops->name);
	}
	/* after the kinds settle: closing any fd of a file drops the process's POSIX locks on it */
	return locks_restore(t, tab) ?: fown_arm(tab);
}

/* Once the tree's mounts exist: each kind's files are still there. */
static int check_fds(struct restore_task *t)
{
	int err;

	for (size_t i = 0; i < t->fds->n_fds; i++) {
		const struct fd_kind_ops *ops = fd_kind_of(t->fds->fds[i]->kind);
		if (ops && ops->check && (err = ops->check(t, t->fds->fds[i])))
			return err;
	}
	return 0;
}

/* By stasis, every task of the tree stopped, before any is finished. */
static int ready_fds(struct restore_task *t)
{
	int err;

	for (size_t i = 0; i < t->fds->n_fds; i++) {
		const FdEntry *e = t->fds->fds[i];
		const struct fd_kind_ops *ops = fd_kind_of(e->kind);
		unsigned logged = log_errors();
		if (ops && ops->ready && (err = ops->ready(t, e)))
			return log_unnamed(logged, err, "restore pid %d fd %u: %s", t->pid, e->fd, ops->name);
	}
	return 0;
}

/* By stasis, the task stopped: the kinds' last word before the tree runs; then who gets each
 * file's signals (every owner exists by now), after its leases are broken again. */
static int finish_fds(struct restore_task *t)
{
	int err;

	for (size_t i = 0; i < t->fds->n_fds; i++) {
		const FdEntry *e = t->fds->fds[i];
		const struct fd_kind_ops *ops = fd_kind_of(e->kind);
		unsigned logged = log_errors();
		if (ops && ops->finish && (err = ops->finish(t, e)))
			return log_unnamed(logged, err, "restore pid %d fd %u: %s", t->pid, e->fd, ops->name);
		if (e->kind != FD_KIND__FD_DUP && e->kind != FD_KIND__FD_SHARED &&
		    ((err = locks_break_leases(t, e)) || (err = fown_restore(t, e)) ||
		     (err = inode_owner_restore(t, e))))
			return err;
	}
	return 0;
}

static size_t fds_args_size(const struct restore_task *t)
{
	return locks_args_size(t->fds);
}

const struct state_ops state_fds = {
	.name = "file descriptors",
	.dump = dump_fds,
	.validate = validate_fds,
	.check = check_fds,
	.args_size = fds_args_size,
	.restore = restore_fds,
	.ready = ready_fds,
	.finish = finish_fds,
};
