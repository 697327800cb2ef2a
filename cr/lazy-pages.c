/*
 * The lazy-pages server (cr/lazy-pages.h). One thread, one loop: the restore's connection
 * brings each process's userfaultfd; each userfaultfd brings that process's first touches
 * (missing pages: the page and the pages around it are copied in, or a page of zeroes where
 * the images hold none) and what the program does to its memory meanwhile (fork: the child's
 * own userfaultfd, with what its parent still lacks; mremap: what was to come moves along;
 * munmap, MADV_DONTNEED: what was to come there never will). Between them, the pages still
 * to come are copied in address order, a chunk at a time. A process whose pages are all in
 * is let go: its userfaultfd is closed, and with it the registration.
 *
 * A guardian process holds a copy of every userfaultfd: if the server dies, the guardian
 * kills the restored tree, whose threads wait on their missing pages meanwhile instead of
 * finding zeroes. A page source that fails (a pages image that cannot be read, a page server
 * gone) makes the server kill the tree itself, saying which source.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "compat/kernel-abi.h"
#include "lazy-pages.h"
#include "log.h"
#include "util.h"

#define PREFETCH_BEFORE (16 * PAGE_SIZE) /* around a touched page: those likely touched next */
#define PREFETCH_AFTER (48 * PAGE_SIZE)
#define BACKGROUND_CHUNK (512 * PAGE_SIZE) /* between two looks at the userfaultfds */
#define MAX_MSGS 64
#define KILL_WAIT_MS 5000

struct lazy_task {
	uint32_t vpid;    /* 0: forked while the restore was lazy */
	pid_t host_pid;   /* 0: not known (forked meanwhile) */
	int uffd;         /* -1: let go */
	struct uffd_segment *p; /* the pages still to come, by address */
	size_t n, alloc;
	uint64_t retry[MAX_MSGS]; /* touched pages to serve again once events are read */
	size_t nr_retry;
};

struct lazy_server {
	struct run_ctx *ctx;
	struct lazy_source src;
	struct lazy_task *t;
	size_t nt;
	int ctl;          /* the restore's connection (-1 once closed) */
	bool restored;    /* it said the tree is restored */
	int guard;        /* the guardian's connection */
	size_t next_bg;   /* the task the background pass is at */
	uint64_t faults, copied, zeroes, start_ns;
};

/* ---- what is still to come ---- */

static struct uffd_segment slice(const struct uffd_segment *s, uint64_t from, uint64_t to)
{
	struct uffd_segment r = *s;

	r.dst = from;
	r.len = to - from;
	r.off += from - s->dst;
	if (r.src)
		r.src += from - s->dst;
	return r;
}

static int pend_add(struct lazy_task *t, const struct uffd_segment *seg)
{
	size_t i = t->n;

	if (t->n == t->alloc) {
		size_t alloc = t->alloc ? t->alloc * 2 : 64;
		struct uffd_segment *more = xreallocarray(t->p, alloc, sizeof(*more));
		if (!more)
			return -ENOMEM;
		t->p = more;
		t->alloc = alloc;
	}
	while (i > 0 && t->p[i - 1].dst > seg->dst)
		i--;
	memmove(&t->p[i + 1], &t->p[i], (t->n - i) * sizeof(*t->p));
	t->p[i] = *seg;
	t->n++;
	return 0;
}

/* The piece holding addr, or NULL. */
static const struct uffd_segment *pend_find(const struct lazy_task *t, uint64_t addr)
{
	size_t lo = 0, hi = t->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (addr < t->p[mid].dst)
			hi = mid;
		else if (addr >= t->p[mid].dst + t->p[mid].len)
			lo = mid + 1;
		else
			return &t->p[mid];
	}
	return NULL;
}

/* [start, end) will not come (any more): cut out; what was cut goes to out (if given). */
static int pend_cut(struct lazy_task *t, uint64_t start, uint64_t end, struct uffd_segment **out,
		    size_t *nout)
{
	size_t lo = 0, hi = t->n, first, last, keep = 0;
	struct uffd_segment ends[2];

	while (lo < hi) { /* the first piece that ends after start */
		size_t mid = (lo + hi) / 2;
		if (t->p[mid].dst + t->p[mid].len <= start)
			lo = mid + 1;
		else
			hi = mid;
	}
	first = last = lo;
	while (last < t->n && t->p[last].dst < end)
		last++;
	if (first == last)
		return 0;
	for (size_t i = first; out && i < last; i++) {
		uint64_t a = t->p[i].dst, b = a + t->p[i].len;
		struct uffd_segment *more = xreallocarray(*out, *nout + 1, sizeof(*more));
		if (!more)
			return -ENOMEM;
		*out = more;
		(*out)[(*nout)++] = slice(&t->p[i], a > start ? a : start, b < end ? b : end);
	}
	if (t->p[first].dst < start)
		ends[keep++] = slice(&t->p[first], t->p[first].dst, start);
	if (t->p[last - 1].dst + t->p[last - 1].len > end)
		ends[keep++] = slice(&t->p[last - 1], end, t->p[last - 1].dst + t->p[last - 1].len);
	if (t->n == t->alloc && keep > last - first) { /* a piece cut in two */
		struct uffd_segment *more = xreallocarray(t->p, t->alloc + 1, sizeof(*more));
		if (!more)
			return -ENOMEM;
		t->p = more;
		t->alloc++;
	}
	memmove(&t->p[first + keep], &t->p[last], (t->n - last) * sizeof(*t->p));
	memcpy(&t->p[first], ends, keep * sizeof(*ends));
	t->n = t->n - (last - first) + keep;
	return 0;
}

/* ---- the guardian ---- */

enum guard_op { GUARD_ADD = 1, GUARD_DROP, GUARD_END };
struct guard_msg {
	uint32_t op, idx;
	int32_t host_pid;
	uint32_t pad;
};

/* SIGKILL to each process and everything below it, until none is left running (bounded). */
static void kill_tree(const pid_t *pids, size_t n)
{
	uint64_t deadline = now_ns(CLOCK_MONOTONIC) + KILL_WAIT_MS * 1000000ull;
	bool alive = true;

	while (alive && now_ns(CLOCK_MONOTONIC) < deadline) {
		alive = false;
		pid_t queue[4096];
		size_t head = 0, tail = 0;
		for (size_t i = 0; i < n && tail < ARRAY_SIZE(queue); i++)
			if (pids[i] > 0)
				queue[tail++] = pids[i];
		while (head < tail) {
			pid_t p = queue[head++];
			struct proc_stat st;
			auto_free int *tids = NULL;
			size_t nt;
			if (proc_read_stat(p, &st) || st.state == 'Z' || st.state == 'X')
				continue;
			alive = true;
			kill(p, SIGKILL);
			if (proc_list_numbers(p, "task", &tids, &nt))
				continue;
			for (size_t k = 0; k < nt; k++) {
				char path[96];
				snprintf(path, sizeof(path), "/proc/%d/task/%d/children", p, tids[k]);
				auto_free char *list = read_file_at(AT_FDCWD, path, NULL);
				for (char *c = list, *e; c && *c && tail < ARRAY_SIZE(queue); c = e) {
					long child = strtol(c, &e, 10);
					if (e == c)
						break;
					queue[tail++] = child;
				}
			}
		}
		if (alive)
			usleep(2000);
	}
}

/*
 * The guardian: a copy of every userfaultfd, so that the tree's threads wait rather than
 * find zeroes if the server dies; then it kills the tree. The server says when to let go.
 */
static __attribute__((noreturn)) void guardian_main(int sk)
{
	int fds[4096];
	pid_t pids[4096];
	size_t n = 0;

	for (;;) {
		struct guard_msg m;
		int fd;
		ssize_t got = recv_with_fd(sk, &m, sizeof(m), &fd);
		if (got <= 0)
			break;
		if (m.op == GUARD_END)
			_exit(0);
		if (m.op == GUARD_ADD && m.idx < ARRAY_SIZE(fds)) {
			while (n <= m.idx)
				fds[n] = -1, pids[n++] = 0;
			fds[m.idx] = fd;
			pids[m.idx] = m.host_pid;
		} else if (m.op == GUARD_DROP && m.idx < n && fds[m.idx] >= 0) {
			close(fds[m.idx]);
			fds[m.idx] = -1;
		} else if (fd >= 0) {
			close(fd);
		}
	}
	pr_err("lazy-pages: the server died before every page was in; the restored tree is killed");
	kill_tree(pids, n);
	_exit(1);
}

static int start_guardian(struct lazy_server *s)
{
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
		pr_perror("lazy-pages: socketpair");
		return -errno;
	}
	if ((pid = fork()) < 0) {
		pr_perror("lazy-pages: fork of the guardian");
		return -errno;
	}
	if (pid == 0) {
		close(sv[0]);
		guardian_main(sv[1]);
	}
	close(sv[1]);
	s->guard = sv[0];
	return 0;
}

static void guard_tell(struct lazy_server *s, uint32_t op, size_t idx, int fd)
{
	struct guard_msg m = { op, (uint32_t)idx, idx < s->nt ? s->t[idx].host_pid : 0, 0 };

	send_with_fd(s->guard, &m, sizeof(m), fd);
}

/* ---- serving ---- */

/* The tree is killed, the source named: the restore cannot go on without its pages. */
static int give_up(struct lazy_server *s, int err)
{
	auto_free pid_t *pids = xzalloc((s->nt + 1) * sizeof(pid_t));

	for (size_t i = 0; i < s->nt; i++)
		pids[i] = s->t[i].host_pid;
	pr_err("lazy-pages: without its pages from %s the restored tree cannot go on: it is killed",
	       s->src.what);
	kill_tree(pids, s->nt);
	return err;
}

static int add_task(struct lazy_server *s, uint32_t vpid, pid_t host_pid, int uffd,
		    const struct lazy_task *parent)
{
	struct lazy_task *more = xreallocarray(s->t, s->nt + 1, sizeof(*more)), *t;
	const struct uffd_plan *plan = parent ? NULL : lazy_source_plan(&s->src, vpid);
	int err = 0;

	if (!more)
		return -ENOMEM;
	s->t = more;
	t = &s->t[s->nt];
	*t = (struct lazy_task){ .vpid = vpid, .host_pid = host_pid, .uffd = uffd };
	if (!parent && !plan) {
		pr_err("lazy-pages: the restore handed over pid %u, which the images do not have", vpid);
		return -EINVAL;
	}
	for (size_t i = 0; plan && i < plan->n && !err; i++)
		err = pend_add(t, &plan->v[i]);
	for (size_t i = 0; parent && i < parent->n && !err; i++)
		err = pend_add(t, &parent->p[i]);
	fcntl(uffd, F_SETFL, O_NONBLOCK);
	s->nt++;
	guard_tell(s, GUARD_ADD, s->nt - 1, uffd);
	return err;
}

/* Every page is in (or the process is gone): the userfaultfd goes, the registration with it. */
static void let_go(struct lazy_server *s, struct lazy_task *t)
{
	guard_tell(s, GUARD_DROP, t - s->t, -1);
	close(t->uffd);
	t->uffd = -1;
	free(t->p);
	t->p = NULL;
	t->n = t->alloc = 0;
}

/*
 * Copies in what is still to come in [from, from + len) (the pieces there, in address order);
 * what went in (or was there) no longer comes. -EAGAIN: the process's mappings are changing,
 * read its events first.
 */
static int fill(struct lazy_server *s, struct lazy_task *t, uint64_t from, uint64_t len)
{
	size_t lo = 0, hi = t->n;
	uint64_t reached = from, end = from + len;
	int err = 0;

	while (lo < hi) { /* the first piece that ends after from */
		size_t mid = (lo + hi) / 2;
		if (t->p[mid].dst + t->p[mid].len <= from)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t k = lo; k < t->n && t->p[k].dst < end && !err; k++) {
		uint64_t a = t->p[k].dst > from ? t->p[k].dst : from;
		uint64_t b = t->p[k].dst + t->p[k].len < end ? t->p[k].dst + t->p[k].len : end;
		uint64_t max = s->src.remote ? PS_MAX_PAGES * PAGE_SIZE : b - a;
		struct uffd_segment seg = slice(&t->p[k], a, b);
		for (uint64_t done = 0; done < seg.len && !err;) {
			struct uffd_segment part = slice(&seg, seg.dst + done, seg.dst + done +
							 (seg.len - done < max ? seg.len - done : max));
			const char *data;
			if ((err = lazy_source_read(&s->src, &part, part.len, &data)))
				return give_up(s, err);
			for (uint64_t in = 0; in < part.len && !err;) {
				struct uffdio_copy cp = { part.dst + in, (uintptr_t)data + in, part.len - in, 0, 0 };
				long r = ioctl(t->uffd, UFFDIO_COPY, &cp);
				if (r == 0 || cp.copy > 0) {
					in += cp.copy;
					s->copied += cp.copy / PAGE_SIZE;
				} else if (errno == EEXIST || errno == ENOENT) {
					in += PAGE_SIZE; /* there already, or no longer mapped */
				} else {
					err = -errno;
				}
				done = part.dst + in - seg.dst;
				reached = part.dst + in;
			}
		}
	}
	if (err == -ESRCH) { /* the process is gone */
		let_go(s, t);
		return 0;
	}
	if (err && err != -EAGAIN) {
		pr_err("lazy-pages: copying pages in at %#llx failed: %s", (unsigned long long)reached,
		       strerror(-err));
		return give_up(s, err);
	}
	int cut = reached > from ? pend_cut(t, from, reached, NULL, NULL) : 0;
	return cut ? cut : err;
}

/* A touched page: it, and the pages around it still to come; zeroes where none will. */
static int serve_touch(struct lazy_server *s, struct lazy_task *t, uint64_t addr)
{
	const struct uffd_segment *p;
	int err;

	addr &= ~(PAGE_SIZE - 1);
	s->faults++;
	if ((p = pend_find(t, addr))) {
		uint64_t from = addr - p->dst > PREFETCH_BEFORE ? addr - PREFETCH_BEFORE : p->dst;
		uint64_t to = p->dst + p->len - addr > PREFETCH_AFTER ? addr + PREFETCH_AFTER
								      : p->dst + p->len;
		err = fill(s, t, from, to - from);
	} else {
		struct uffdio_zeropage z = { { addr, PAGE_SIZE }, 0, 0 };
		err = ioctl(t->uffd, UFFDIO_ZEROPAGE, &z) ? -errno : 0;
		s->zeroes += !err;
		err = err == -EEXIST || err == -ENOENT || err == -ESRCH ? 0 : err;
	}
	if (err == -EAGAIN && t->nr_retry < MAX_MSGS) {
		t->retry[t->nr_retry++] = addr; /* after this process's events */
		return 0;
	}
	if (!err && t->uffd >= 0) {
		struct uffdio_range wake = { addr, PAGE_SIZE };
		ioctl(t->uffd, UFFDIO_WAKE, &wake); /* in case it was there already */
	}
	return err;
}

static int handle_event(struct lazy_server *s, size_t i, const struct uffd_msg *m)
{
	struct lazy_task *t = &s->t[i];
	struct uffd_segment *moved = NULL;
	size_t n = 0;
	int err = 0;

	switch (m->event) {
	case UFFD_EVENT_PAGEFAULT:
		return serve_touch(s, t, m->arg.pagefault.address);
	case UFFD_EVENT_FORK: {
		struct lazy_task parent = *t; /* (s->t moves) */
		return add_task(s, 0, 0, (int)m->arg.fork.ufd, &parent);
	}
	case UFFD_EVENT_REMAP:
		err = pend_cut(t, m->arg.remap.from, m->arg.remap.from + m->arg.remap.len, &moved, &n);
		for (size_t k = 0; k < n && !err; k++) {
			moved[k].dst += m->arg.remap.to - m->arg.remap.from;
			err = pend_add(t, &moved[k]);
		}
		free(moved);
		return err;
	case UFFD_EVENT_REMOVE:
	case UFFD_EVENT_UNMAP:
		return pend_cut(t, m->arg.remove.start, m->arg.remove.end, NULL, NULL);
	}
	return 0;
}

/* Everything the process's userfaultfd has to say now. */
static int drain(struct lazy_server *s, size_t i)
{
	struct uffd_msg msgs[MAX_MSGS];
	int err = 0;

	while (!err && s->t[i].uffd >= 0) {
		ssize_t got = read(s->t[i].uffd, msgs, sizeof(msgs));
		if (got <= 0)
			break;
		for (size_t k = 0; k < got / sizeof(msgs[0]) && !err; k++)
			err = handle_event(s, i, &msgs[k]);
	}
	struct lazy_task *t = &s->t[i];
	size_t retry = t->nr_retry;
	t->nr_retry = 0;
	for (size_t k = 0; k < retry && !err && t->uffd >= 0; k++)
		err = serve_touch(s, t, t->retry[k]);
	return err;
}

static int read_restore(struct lazy_server *s)
{
	struct lazy_msg m;
	int fd, err;
	ssize_t got = recv_with_fd(s->ctl, &m, sizeof(m), &fd);

	if (got == sizeof(m) && m.type == LAZY_TASK && fd >= 0)
		return add_task(s, m.vpid, m.host_pid, fd, NULL);
	if (fd >= 0)
		close(fd);
	close(s->ctl);
	s->ctl = -1;
	if (got == sizeof(m) && m.type == LAZY_END) {
		s->restored = true;
		return 0;
	}
	err = got < 0 ? -errno : -ECONNRESET;
	pr_err("lazy-pages: the restore is over without the tree (%s)",
	       got ? "a message that is not the restore's" : "it failed");
	return give_up(s, err);
}

/* The background pass: the next chunk of the first pages still to come. */
static int background(struct lazy_server *s)
{
	for (size_t k = 0; k < s->nt; k++) {
		struct lazy_task *t = &s->t[(s->next_bg + k) % s->nt];
		if (t->uffd < 0)
			continue;
		if (!t->n) {
			let_go(s, t);
			continue;
		}
		s->next_bg = (s->next_bg + k) % s->nt;
		int err = fill(s, t, t->p[0].dst, BACKGROUND_CHUNK);
		return err == -EAGAIN ? 0 : err;
	}
	return 0;
}

int lazy_pages_serve(struct run_ctx *ctx, int sk)
{
	struct lazy_server s = { .ctx = ctx, .ctl = sk, .guard = -1, .start_ns = now_ns(CLOCK_MONOTONIC) };
	struct lazy_msg ready = { LAZY_READY, 0, 0, 0 };
	int err;

	/* the guardian first: it holds nothing of the source (a page server sees this end) */
	if ((err = start_guardian(&s)) || (err = lazy_source_open(ctx, &s.src)) ||
	    (err = send_with_fd(sk, &ready, sizeof(ready), -1))) {
		if (s.guard >= 0) {
			guard_tell(&s, GUARD_END, 0, -1);
			close(s.guard);
		}
		close(sk);
		lazy_source_close(&s.src);
		return err;
	}
	pr_info("lazy-pages: serving the restore from %s (server pid %d)", s.src.what, getpid());
	for (;;) {
		auto_free struct pollfd *pfd = xzalloc((s.nt + 1) * sizeof(*pfd));
		bool work = false;
		size_t n = 0;

		for (size_t i = 0; i < s.nt; i++) {
			pfd[i] = (struct pollfd){ s.t[i].uffd, POLLIN, 0 };
			work |= s.t[i].uffd >= 0;
		}
		if (!work && s.restored)
			break;
		pfd[s.nt] = (struct pollfd){ s.ctl, POLLIN, 0 };
		n = s.nt + 1;
		if (poll(pfd, n, work ? 0 : -1) < 0 && errno != EINTR) {
			err = -errno;
			break;
		}
		if (pfd[s.nt].revents && (err = read_restore(&s)))
			break;
		if (s.restored && run_fault(ctx, "lazy-pages-stall")) {
			pr_err("lazy-pages: injected failure lazy-pages-stall: no page is served any more");
			for (;;)
				pause();
		}
		for (size_t i = 0; i < n - 1 && !err; i++)
			if (pfd[i].revents)
				err = drain(&s, i);
		/* (lazy-pages-stall: a server that serves only first touches, then nothing) */
		if (err || (!run_fault(ctx, "lazy-pages-stall") && (err = background(&s))))
			break;
	}
	pr_info("lazy-pages: %zu processes, %llu pages copied in, %llu touched first, %llu pages of "
		"zeroes, in %.1f ms", s.nt, (unsigned long long)s.copied, (unsigned long long)s.faults,
		(unsigned long long)s.zeroes, (now_ns(CLOCK_MONOTONIC) - s.start_ns) / 1e6);
	for (size_t i = 0; i < s.nt; i++)
		if (s.t[i].uffd >= 0)
			let_go(&s, &s.t[i]);
	guard_tell(&s, GUARD_END, 0, -1);
	close(s.guard);
	waitpid(-1, NULL, WNOHANG);
	if (s.ctl >= 0)
		close(s.ctl);
	for (size_t i = 0; i < s.nt; i++)
		free(s.t[i].p); /* (those let go have none) */
	free(s.t);
	lazy_source_close(&s.src);
	return err;
}
