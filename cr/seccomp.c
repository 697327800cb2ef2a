/*
 * seccomp: every thread's mode (strict or filter) and chain of filters.
 *
 * Dump: the mode from /proc/PID/task/TID/status, each filter of the chain with
 * PTRACE_SECCOMP_GET_FILTER (index 0 is the oldest, whatever ptrace(2) says) and its flags with
 * PTRACE_SECCOMP_GET_METADATA. The kernel names no filter, so filters are told apart by
 * what they are: a filter with the same program, flags and filter below it as one already
 * saved is that one (threads that inherited a chain, or got it through TSYNC, share it);
 * seccomp.img holds each once and every thread names its newest. A filter that can hand
 * system calls to a user-notification listener while a listener exists fails the dump:
 * the listener cannot be restored.
 *
 * Restore (see cr/restorer/restorer.h): the filters are the blob's last step before the
 * credentials (installing one needs CAP_SYS_ADMIN or no_new_privs, and the task may have
 * neither once its own credentials are back). Before any filter is in place stasis attaches
 * to every thread with PTRACE_O_SUSPEND_SECCOMP, so that nothing the blob and stasis still
 * do (setresuid, pause, the munmap of the blob, ...) is filtered; the filters take effect
 * when stasis detaches and the tree runs. The filters every thread of a process shares are
 * installed once by the main thread with TSYNC, so that they are one filter again (a later
 * TSYNC of the program still works); each thread installs the rest of its chain itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <unistd.h>

#include "kernel/features.h"
#include "log.h"
#include "pid-ns.h"
#include "pstree.h"
#include "restorer/restorer.h"
#include "seccomp.h"
#include "task.h"
#include "tree-objects.h"
#include "util.h"

#ifndef PTRACE_SECCOMP_GET_FILTER
#define PTRACE_SECCOMP_GET_FILTER 0x420c
#endif
#ifndef PTRACE_SECCOMP_GET_METADATA
#define PTRACE_SECCOMP_GET_METADATA 0x420d
#endif
#ifndef PTRACE_O_SUSPEND_SECCOMP
#define PTRACE_O_SUSPEND_SECCOMP (1 << 21)
#endif
#ifndef SECCOMP_RET_USER_NOTIF
#define SECCOMP_RET_USER_NOTIF 0x7fc00000U
#endif
#ifndef SECCOMP_FILTER_FLAG_LOG
#define SECCOMP_FILTER_FLAG_LOG (1UL << 1)
#endif
#ifndef SECCOMP_FILTER_FLAG_SPEC_ALLOW
#define SECCOMP_FILTER_FLAG_SPEC_ALLOW (1UL << 2)
#endif

#define FILTER_FLAGS_KNOWN (SECCOMP_FILTER_FLAG_LOG | SECCOMP_FILTER_FLAG_SPEC_ALLOW)
/* The kernel's bound on a chain: every filter's instructions, and 4 more per filter. */
#define MAX_INSNS_PER_PATH 32768
#define PATH_COST(len) ((len) + 4)

/* The tree's filters: built by the dump, or read from seccomp.img. */
struct seccomp_state {
	SeccompTable *table;
	size_t alloc;    /* dump: room in table->filters */
	bool from_image; /* restore: table is the image's */
};

static struct seccomp_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_seccomp);
}

static const char *mode_name(uint32_t mode)
{
	return mode == SECCOMP_MODE_STRICT ? "strict mode" : "filter";
}

static void who_of(char *buf, size_t len, pid_t pid, pid_t tid)
{
	snprintf(buf, len, tid == pid ? "pid %d" : "pid %d thread %d", pid, tid);
}

/* "Seccomp:" of /proc/PID/task/TID/status. */
static int read_mode(pid_t pid, pid_t tid, uint32_t *mode)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", pid, tid);
	auto_free char *status = read_proc_record(path);
	const char *line = status ? strstr(status, "\nSeccomp:") : NULL;

	if (!status && errno == ENOMEM)
		return -ENOMEM;
	if (!line || sscanf(line, "\nSeccomp: %u", mode) != 1 || *mode > SECCOMP_MODE_FILTER) {
		pr_err("dump pid %d thread %d: cannot read its seccomp mode from %s", pid, tid, path);
		return -EIO;
	}
	return 0;
}

/* ---- dump ---- */

int seccomp_suspend_for_dump(struct dump_task *t)
{
	for (size_t i = 0; i <= t->nr_threads; i++) {
		pid_t tid = i < t->nr_threads ? t->threads[i].tid : t->pid;
		uint32_t mode;
		char who[48];
		int err;

		if ((err = read_mode(t->pid, tid, &mode)))
			return err;
		if (!mode)
			continue;
		if (ptrace(PTRACE_SETOPTIONS, tid, 0,
			   (void *)(long)(PTRACE_O_TRACESYSGOOD | PTRACE_O_SUSPEND_SECCOMP))) {
			err = -errno;
			who_of(who, sizeof(who), t->pid, tid);
			pr_err("dump %s: it runs under a seccomp %s, which stasis cannot suspend to work "
			       "inside it (PTRACE_O_SUSPEND_SECCOMP: %s; it needs CAP_SYS_ADMIN, and stasis "
			       "itself outside seccomp)", who, mode_name(mode), strerror(-err));
			return err;
		}
	}
	return 0;
}

/* Can the program return SECCOMP_RET_USER_NOTIF (or a value computed at run time)? */
static bool may_notify(const struct sock_filter *prog, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((prog[i].code == (BPF_RET | BPF_K) &&
		     (prog[i].k & SECCOMP_RET_ACTION_FULL) == SECCOMP_RET_USER_NOTIF) ||
		    prog[i].code == (BPF_RET | BPF_A))
			return true;
	return false;
}

/* A seccomp user-notification listener held by any process: its pid and fd, else 0; -ENOMEM. */
static pid_t find_listener(int *fd_out)
{
	auto_free int *pids = NULL;
	size_t n;
	int err = proc_list_pids(&pids, &n);

	if (err)
		return err == -ENOMEM ? err : 0;
	for (size_t i = 0; i < n; i++) {
		auto_free int *fds = NULL;
		size_t nfds;
		if (pids[i] == getpid())
			continue;
		if ((err = proc_list_numbers(pids[i], "fd", &fds, &nfds)) == -ENOMEM)
			return err;
		if (err)
			continue;
		for (size_t k = 0; k < nfds; k++) {
			char name[32], target[64];
			snprintf(name, sizeof(name), "fd/%d", fds[k]);
			if (!proc_readlink(pids[i], name, target, sizeof(target)) &&
			    !strcmp(target, "anon_inode:seccomp notify")) {
				*fd_out = fds[k];
				return pids[i];
			}
		}
	}
	return 0;
}

/* *index: the table's index of this filter, added if no filter saved so far is the same. */
static int table_add(struct seccomp_state *st, const void *prog, size_t len, uint32_t flags,
		     bool has_prev, uint32_t prev, uint32_t *index)
{
	SeccompTable *tab = st->table;

	for (size_t i = 0; i < tab->n_filters; i++) {
		const SeccompFilter *f = tab->filters[i];
		if (f->program.len == len && f->flags == flags && f->has_prev == has_prev &&
		    (!has_prev || f->prev == prev) && !memcmp(f->program.data, prog, len)) {
			*index = i;
			return 0;
		}
	}
	if (tab->n_filters == st->alloc) {
		size_t alloc = st->alloc ? 2 * st->alloc : 16;
		SeccompFilter **more = xreallocarray(tab->filters, alloc, sizeof(*more));
		if (!more)
			return -ENOMEM;
		tab->filters = more;
		st->alloc = alloc;
	}
	SeccompFilter *f = xzalloc(sizeof(*f));
	if (!f)
		return -ENOMEM;
	seccomp_filter__init(f);
	if (!(f->program.data = xzalloc(len))) {
		free(f);
		return -ENOMEM;
	}
	memcpy(f->program.data, prog, len);
	f->program.len = len;
	f->has_flags = true;
	f->flags = flags;
	f->has_prev = has_prev;
	f->prev = prev;
	tab->filters[tab->n_filters] = f;
	*index = tab->n_filters++;
	return 0;
}

/* The frozen thread's chain into the table, oldest first; *top: the index of its newest. */
static int dump_chain(struct run_ctx *ctx, pid_t pid, pid_t tid, uint32_t *top)
{
	struct seccomp_state *st = state_of(ctx);
	static struct sock_filter prog[BPF_MAXINSNS];
	bool has_prev = false;
	uint32_t prev = 0;
	long count;
	char who[48];
	int err;

	who_of(who, sizeof(who), pid, tid);
	for (count = 0; ptrace(PTRACE_SECCOMP_GET_FILTER, tid, count, NULL) >= 0; count++)
		;
	if (errno != ENOENT || count == 0) {
		pr_err("dump %s: cannot read its seccomp filters (PTRACE_SECCOMP_GET_FILTER: %m%s)", who,
		       errno == EACCES ? "; it needs CAP_SYS_ADMIN, and stasis itself outside seccomp"
				       : "");
		return -(errno ? errno : EIO);
	}
	for (long i = 0; i < count; i++) {
		struct { uint64_t filter_off, flags; } md = { (uint64_t)i, 0 };
		long len = ptrace(PTRACE_SECCOMP_GET_FILTER, tid, i, prog);
		if (len <= 0 || len > BPF_MAXINSNS) {
			pr_err("dump %s: cannot read its seccomp filter %ld of %ld: %m", who, i + 1, count);
			return -EIO;
		}
		if (ptrace(PTRACE_SECCOMP_GET_METADATA, tid, sizeof(md), &md) < 0) {
			pr_err("dump %s: cannot read the flags of its seccomp filter %ld of %ld: %m", who,
			       i + 1, count);
			return -EIO;
		}
		int fd;
		pid_t holder = may_notify(prog, len) ? find_listener(&fd) : 0;
		if (holder < 0)
			return holder;
		if (holder) {
			pr_err("dump %s: its seccomp filter %ld of %ld can hand system calls to a "
			       "user-notification listener, and pid %d fd %d is one; a listener cannot be "
			       "restored", who, i + 1, count, holder, fd);
			return -ENOTSUP;
		}
		if ((err = table_add(st, prog, len * sizeof(prog[0]), md.flags & FILTER_FLAGS_KNOWN,
				     has_prev, prev, &prev)))
			return err;
		has_prev = true;
	}
	*top = prev;
	pr_debug("dump %s: %ld seccomp filters, the newest saved as %u", who, count, prev);
	return 0;
}

static int dump_thread_seccomp(struct dump_task *t, pid_t tid, uint32_t *mode, protobuf_c_boolean *has_mode,
			       uint32_t *filter, protobuf_c_boolean *has_filter)
{
	int err;

	if ((err = read_mode(t->pid, tid, mode)))
		return err;
	*has_mode = true;
	if (*mode != SECCOMP_MODE_FILTER)
		return 0;
	*has_filter = true;
	return dump_chain(t->ctx, t->pid, tid, filter);
}

static int dump_seccomp(struct dump_task *t)
{
	TaskCore *c = t->core;
	int err;

	if ((err = dump_thread_seccomp(t, t->pid, &c->seccomp_mode, &c->has_seccomp_mode,
				       &c->seccomp_filter, &c->has_seccomp_filter)))
		return err;
	for (size_t i = 0; i < c->n_threads; i++) {
		ThreadCore *tc = c->threads[i];
		if ((err = dump_thread_seccomp(t, t->threads[i].tid, &tc->seccomp_mode,
					       &tc->has_seccomp_mode, &tc->seccomp_filter,
					       &tc->has_seccomp_filter)))
			return err;
	}
	return 0;
}

static int write_seccomp(struct run_ctx *ctx, struct dump_tree *tr)
{
	struct seccomp_state *st = state_of(ctx);

	(void)tr;
	if (!st->table || !st->table->n_filters)
		return 0;
	return image_write(ctx->images_dir_fd, IMG_SECCOMP, 0, &st->table->base);
}

static int collect_seccomp(struct run_ctx *ctx, struct dump_tree *tr)
{
	struct seccomp_state *st = state_of(ctx);

	(void)tr;
	if (!(st->table = xzalloc(sizeof(*st->table))))
		return -ENOMEM;
	seccomp_table__init(st->table);
	return 0;
}

/* ---- restore: checks ---- */

static bool mode_valid(bool has_mode, uint32_t mode, bool has_filter)
{
	return (!has_mode || mode <= SECCOMP_MODE_FILTER) &&
	       has_filter == (has_mode && mode == SECCOMP_MODE_FILTER);
}

static int validate_seccomp(struct restore_task *t)
{
	TaskCore *c = t->core;
	bool ok = mode_valid(c->has_seccomp_mode, c->seccomp_mode, c->has_seccomp_filter);

	for (size_t i = 0; ok && i < c->n_threads; i++)
		ok = mode_valid(c->threads[i]->has_seccomp_mode, c->threads[i]->seccomp_mode,
				c->threads[i]->has_seccomp_filter);
	if (!ok) {
		pr_err("image core-%d.img: a thread's seccomp mode or filter is invalid", t->pid);
		return -EINVAL;
	}
	return 0;
}

/*
 * What the kernel checks of a seccomp program before it installs it (bpf_check_classic and
 * seccomp_check_filter): known instructions, loads of struct seccomp_data only, jumps inside
 * the program, no division by a zero constant, scratch memory written before it is read, a
 * return last.
 */
static bool program_valid(const struct sock_filter *p, size_t n)
{
	uint16_t valid_mem[BPF_MAXINSNS];
	uint16_t mem = 0;

	if (n < 1 || n > BPF_MAXINSNS || BPF_CLASS(p[n - 1].code) != BPF_RET)
		return false;
	for (size_t pc = 0; pc < n; pc++)
		valid_mem[pc] = 0xffff;
	for (size_t pc = 0; pc < n; pc++) {
		const struct sock_filter *f = &p[pc];
		size_t left = n - pc - 1;

		mem = pc ? mem & valid_mem[pc] : 0;
		switch (f->code) {
		case BPF_LD | BPF_W | BPF_ABS:
			if (f->k >= sizeof(struct seccomp_data) || f->k & 3)
				return false;
			break;
		case BPF_ALU | BPF_DIV | BPF_K:
			if (!f->k)
				return false;
			break;
		case BPF_ALU | BPF_LSH | BPF_K:
		case BPF_ALU | BPF_RSH | BPF_K:
			if (f->k >= 32)
				return false;
			break;
		case BPF_LD | BPF_MEM:
		case BPF_LDX | BPF_MEM:
			if (f->k >= BPF_MEMWORDS || !(mem & (1u << f->k)))
				return false;
			break;
		case BPF_ST:
		case BPF_STX:
			if (f->k >= BPF_MEMWORDS)
				return false;
			mem |= 1u << f->k;
			break;
		case BPF_JMP | BPF_JA:
			if (f->k >= left)
				return false;
			valid_mem[pc + 1 + f->k] &= mem;
			mem = 0xffff;
			break;
		case BPF_JMP | BPF_JEQ | BPF_K: case BPF_JMP | BPF_JEQ | BPF_X:
		case BPF_JMP | BPF_JGE | BPF_K: case BPF_JMP | BPF_JGE | BPF_X:
		case BPF_JMP | BPF_JGT | BPF_K: case BPF_JMP | BPF_JGT | BPF_X:
		case BPF_JMP | BPF_JSET | BPF_K: case BPF_JMP | BPF_JSET | BPF_X:
			if (f->jt >= left || f->jf >= left)
				return false;
			valid_mem[pc + 1 + f->jt] &= mem;
			valid_mem[pc + 1 + f->jf] &= mem;
			mem = 0xffff;
			break;
		case BPF_LD | BPF_W | BPF_LEN: case BPF_LDX | BPF_W | BPF_LEN:
		case BPF_RET | BPF_K: case BPF_RET | BPF_A:
		case BPF_ALU | BPF_ADD | BPF_K: case BPF_ALU | BPF_ADD | BPF_X:
		case BPF_ALU | BPF_SUB | BPF_K: case BPF_ALU | BPF_SUB | BPF_X:
		case BPF_ALU | BPF_MUL | BPF_K: case BPF_ALU | BPF_MUL | BPF_X:
		case BPF_ALU | BPF_DIV | BPF_X:
		case BPF_ALU | BPF_AND | BPF_K: case BPF_ALU | BPF_AND | BPF_X:
		case BPF_ALU | BPF_OR | BPF_K: case BPF_ALU | BPF_OR | BPF_X:
		case BPF_ALU | BPF_XOR | BPF_K: case BPF_ALU | BPF_XOR | BPF_X:
		case BPF_ALU | BPF_LSH | BPF_X: case BPF_ALU | BPF_RSH | BPF_X:
		case BPF_ALU | BPF_NEG:
		case BPF_LD | BPF_IMM: case BPF_LDX | BPF_IMM:
		case BPF_MISC | BPF_TAX: case BPF_MISC | BPF_TXA:
			break;
		default:
			return false;
		}
	}
	return true;
}

/* Each filter checked, and each one's chain within the kernel's bound (cost[i]). */
static int check_table(const SeccompTable *tab, uint32_t *cost)
{
	for (size_t i = 0; i < tab->n_filters; i++) {
		const SeccompFilter *f = tab->filters[i];
		size_t n = f->program.len / sizeof(struct sock_filter);
		const char *bad = NULL;

		if (f->program.len % sizeof(struct sock_filter) ||
		    !program_valid((const struct sock_filter *)f->program.data, n))
			bad = "its program is not a valid seccomp program";
		else if (f->flags & ~FILTER_FLAGS_KNOWN)
			bad = "it has unknown flags";
		else if (f->has_prev && f->prev >= i)
			bad = "the filter below it does not come before it";
		else if ((cost[i] = PATH_COST(n) + (f->has_prev ? cost[f->prev] : 0)) > MAX_INSNS_PER_PATH)
			bad = "its chain is longer than the kernel allows";
		if (bad) {
			pr_err("image seccomp.img: filter %zu: %s", i, bad);
			return -EINVAL;
		}
	}
	return 0;
}

static bool filter_ref_valid(bool has_filter, uint32_t filter, const SeccompTable *tab)
{
	return !has_filter || (tab && filter < tab->n_filters);
}

/* Once every task's images are read: seccomp.img if some thread needs it, every reference. */
static int validate_tree_seccomp(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct seccomp_state *st = state_of(ctx);
	bool filters = false, any = false;
	int err;

	for (size_t i = 0; i < rt->nr_tasks; i++) {
		const TaskCore *c = rt->tasks[i].core;
		any |= c->seccomp_mode;
		filters |= c->has_seccomp_filter;
		for (size_t k = 0; k < c->n_threads; k++) {
			any |= c->threads[k]->seccomp_mode;
			filters |= c->threads[k]->has_seccomp_filter;
		}
	}
	if (!any)
		return 0;
	if (!kernel_has(KF_SECCOMP_SUSPEND)) {
		pr_err("restore: the tree ran under seccomp, and stasis cannot suspend seccomp here for "
		       "its own work in the tree (PTRACE_O_SUSPEND_SECCOMP: %s); nothing was started",
		       kernel_feature_report(KF_SECCOMP_SUSPEND)->detail);
		return -EOPNOTSUPP;
	}
	if (!filters)
		return 0;
	if ((err = image_read(ctx->images_dir_fd, IMG_SECCOMP, 0, (ProtobufCMessage **)&st->table)))
		return err;
	st->from_image = true;
	auto_free uint32_t *cost = xzalloc(st->table->n_filters * sizeof(uint32_t));
	if (!cost)
		return -ENOMEM;
	if ((err = check_table(st->table, cost)))
		return err;
	for (size_t i = 0; i < rt->nr_tasks; i++) {
		const TaskCore *c = rt->tasks[i].core;
		bool ok = filter_ref_valid(c->has_seccomp_filter, c->seccomp_filter, st->table);
		for (size_t k = 0; ok && k < c->n_threads; k++)
			ok = filter_ref_valid(c->threads[k]->has_seccomp_filter,
					      c->threads[k]->seccomp_filter, st->table);
		if (!ok) {
			pr_err("image core-%d.img: a thread names a seccomp filter that seccomp.img does "
			       "not hold", rt->tasks[i].pid);
			return -EINVAL;
		}
	}
	return 0;
}

/* ---- restore: the blob's plan ---- */

/* Every thread of a process (the main one first): its mode and chain, oldest first. */
struct seccomp_plan {
	size_t nr;           /* threads */
	uint32_t *mode;
	uint32_t **chain;
	size_t *len;
	size_t shared;       /* the first filters of every chain, the same in all */
	size_t nr_filters, nr_insns; /* what the blob gets */
};

static void plan_free(struct seccomp_plan *p)
{
	for (size_t i = 0; i < p->nr; i++)
		free(p->chain[i]);
	free(p->chain);
	free(p->len);
	free(p->mode);
}

static int plan_make(const struct restore_task *t, struct seccomp_plan *p)
{
	const SeccompTable *tab = state_of(t->ctx)->table;
	const TaskCore *c = t->core;

	memset(p, 0, sizeof(*p));
	p->nr = c->n_threads + 1;
	if (!(p->mode = xzalloc(p->nr * sizeof(*p->mode))) ||
	    !(p->chain = xzalloc(p->nr * sizeof(*p->chain))) || !(p->len = xzalloc(p->nr * sizeof(*p->len)))) {
		p->nr = 0;
		return -ENOMEM;
	}
	for (size_t i = 0; i < p->nr; i++) {
		bool has = i ? c->threads[i - 1]->has_seccomp_filter : c->has_seccomp_filter;
		uint32_t top = i ? c->threads[i - 1]->seccomp_filter : c->seccomp_filter;
		p->mode[i] = i ? c->threads[i - 1]->seccomp_mode : c->seccomp_mode;
		if (!has)
			continue;
		size_t n = 1;
		for (uint32_t f = top; tab->filters[f]->has_prev; f = tab->filters[f]->prev)
			n++;
		if (!(p->chain[i] = xzalloc(n * sizeof(uint32_t))))
			return -ENOMEM;
		p->len[i] = n;
		for (uint32_t f = top; n-- > 0; f = tab->filters[f]->prev)
			p->chain[i][n] = f;
	}
	/* the filters every thread has at the bottom of its chain */
	p->shared = p->len[0];
	for (size_t i = 1; i < p->nr; i++) {
		size_t k = 0;
		while (k < p->shared && k < p->len[i] && p->chain[i][k] == p->chain[0][k])
			k++;
		p->shared = k;
	}
	for (size_t i = 0; i < p->nr; i++) {
		for (size_t k = i ? p->shared : 0; k < p->len[i]; k++) {
			p->nr_filters++;
			p->nr_insns += tab->filters[p->chain[i][k]]->program.len / sizeof(struct sock_filter);
		}
	}
	return 0;
}

/* At most what restore_seccomp takes (each thread's whole chain), found without allocating. */
static size_t seccomp_args_size(const struct restore_task *t)
{
	const SeccompTable *tab = state_of(t->ctx)->table;
	const TaskCore *c = t->core;
	size_t len = 0;

	for (size_t i = 0; i <= c->n_threads; i++) {
		bool has = i ? c->threads[i - 1]->has_seccomp_filter : c->has_seccomp_filter;
		uint32_t f = i ? c->threads[i - 1]->seccomp_filter : c->seccomp_filter;
		for (; has; has = tab->filters[f]->has_prev, f = tab->filters[f]->prev)
			len += sizeof(struct rst_seccomp_filter) + tab->filters[f]->program.len;
	}
	return len;
}

/* In the new task: every thread's seccomp for the blob (after the threads' table). */
static int restore_seccomp(struct restore_task *t)
{
	const SeccompTable *tab = state_of(t->ctx)->table;
	struct restorer_args *a = t->args;
	struct rst_thread *th = (struct rst_thread *)((char *)a + a->threads_off);
	struct seccomp_plan p;
	uint64_t insns_off;
	int err = plan_make(t, &p);

	if (err)
		goto out;
	for (size_t i = 0; i < p.nr; i++)
		a->seccomp_sync |= p.mode[i] != 0;
	if (!a->seccomp_sync)
		goto out;
	struct rst_seccomp_filter *f =
		restorer_args_alloc(t, p.nr_filters * sizeof(*f), &a->seccomp_filters_off);
	char *insns = restorer_args_alloc(t, p.nr_insns * sizeof(struct sock_filter), &insns_off);
	if (!f || !insns) {
		err = -ENOMEM;
		goto out;
	}
	a->seccomp_shared = p.shared;
	a->nr_seccomp_filters = p.nr_filters;
	/* the shared filters first (the main thread's TSYNC), then each thread's own */
	size_t next = 0;
	for (size_t i = 0; i < p.nr; i++) {
		struct rst_seccomp *s = i ? &th[i - 1].seccomp : &a->seccomp;

		for (size_t k = i ? p.shared : 0; k < p.len[i]; k++, next++) {
			const SeccompFilter *src = tab->filters[p.chain[i][k]];
			f[next].insns_off = insns_off;
			f[next].len = src->program.len / sizeof(struct sock_filter);
			f[next].flags = src->flags;
			memcpy((char *)a + insns_off, src->program.data, src->program.len);
			insns_off += src->program.len;
		}
		s->mode = p.mode[i];
		s->nr = p.len[i] - p.shared;
		s->first = next - s->nr;
	}
out:
	plan_free(&p);
	return err;
}

int seccomp_suspend_for_restore(struct restore_tree *rt, struct restore_task *t)
{
	unsigned logged = log_errors();
	char state;
	int err;

	if ((err = pid_ns_find_host(rt->ctx, rt, t, &state)) || (err = pid_ns_host_tids(rt->ctx, t)))
		return log_unnamed(logged, err, "restore pid %d: cannot find its process or threads on the host",
				   t->pid);
	for (size_t i = 0; i <= t->core->n_threads; i++) {
		pid_t tid = i < t->core->n_threads ? t->host_tids[i] : t->host_pid;
		if (ptrace(PTRACE_SEIZE, tid, 0,
			   (void *)(long)(PTRACE_O_TRACESYSGOOD | PTRACE_O_SUSPEND_SECCOMP))) {
			pr_perror("restore pid %d: cannot attach to its thread %d with seccomp suspended",
				  t->pid, tid);
			return -errno;
		}
	}
	t->traced = true;
	pr_debug("restore pid %d: its %zu threads traced with seccomp suspended", t->pid,
		 t->core->n_threads + 1);
	return 0;
}

static void free_seccomp(void *state)
{
	struct seccomp_state *st = state;

	if (!st->table)
		return;
	if (st->from_image) {
		image_free(&st->table->base);
		return;
	}
	for (size_t i = 0; i < st->table->n_filters; i++) {
		free(st->table->filters[i]->program.data);
		free(st->table->filters[i]);
	}
	free(st->table->filters);
	free(st->table);
}

const struct state_ops state_seccomp = {
	.name = "seccomp",
	.dump = dump_seccomp,
	.validate = validate_seccomp,
	.args_size = seccomp_args_size,
	.restore = restore_seccomp,
};

const struct tree_object_ops tree_seccomp = {
	.name = "seccomp filters",
	.state_size = sizeof(struct seccomp_state),
	.free_state = free_seccomp,
	.collect = collect_seccomp,
	.write = write_seccomp,
	.validate = validate_tree_seccomp,
};
