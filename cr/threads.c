/*
 * Threads of a process besides the main one: each is frozen on its own, saves what the kernel
 * keeps per thread (registers, xsave, blocked mask, its own pending signals, altstack, rseq,
 * robust list, clear_child_tid, comm), and is recreated by the restorer blob with its old tid.
 */
#include <asm/prctl.h>
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "proc.h"
#include "pid-ns.h"
#include "regs.h"
#include "restorer/restorer.h"
#include "seize.h"
#include "task.h"
#include "thread-inject.h"
#include "threads.h"
#include "util.h"

static bool already_seized(const struct dump_task *t, int tid)
{
	if (tid == t->pid || tid == t->tgid) /* (an exited main thread cannot be seized) */
		return true;
	for (size_t i = 0; i < t->nr_threads; i++)
		if (t->threads[i].tid == tid)
			return true;
	return false;
}

int threads_seize(struct dump_task *t)
{
	bool found_new = true;
	int timeout_s = t->ctx->opts->timeout > 0 ? t->ctx->opts->timeout : FREEZE_TIMEOUT_DEFAULT_S;
	uint64_t deadline = now_ns(CLOCK_MONOTONIC) + (uint64_t)timeout_s * 1000000000ull;

	/*
	 * Threads may be born while we seize: list again until a list has nothing new (no
	 * thread not seized yet, none gone), for up to --timeout (threads that make their
	 * successor and exit are caught one chain at a time: one seized before it made it).
	 */
	for (int round = 0; found_new; round++) {
		auto_free int *tids = NULL;
		size_t n;
		unsigned logged = log_errors();
		int err = proc_list_numbers(t->pid, "task", &tids, &n);

		if (err)
			return log_unnamed(logged, err, "dump pid %d: cannot list its threads", t->pid);
		if (round > 100 && now_ns(CLOCK_MONOTONIC) > deadline) {
			pr_err("dump pid %d: threads keep appearing, cannot freeze them all in %d s "
			       "(%d lists of them; --timeout)", t->pid, timeout_s, round);
			return -EAGAIN;
		}
		found_new = false;
		for (size_t i = 0; i < n; i++) {
			int stopped;
			if (already_seized(t, tids[i]) || proc_is_io_worker(tids[i]))
				continue;
			if (t->nr_threads >= RST_MAX_THREADS) {
				pr_err("dump pid %d: more than %d threads", t->pid, RST_MAX_THREADS);
				return -E2BIG;
			}
			if ((err = task_seize(tids[i], &stopped, t->ctx->opts->timeout))) {
				if (err != -ESRCH)
					return err;
				/* exited meanwhile, maybe after making a thread this list missed */
				found_new = true;
				continue;
			}
			struct frozen_thread *ft = &t->threads[t->nr_threads++];
			ft->tid = tids[i];
			if (ptrace(PTRACE_GETREGS, ft->tid, 0, &ft->regs)) {
				pr_perror("dump tid %d: cannot read registers", ft->tid);
				return -errno;
			}
			found_new = true;
		}
	}
	return 0;
}

void threads_undo_freeze_eintr(struct dump_task *t)
{
	for (size_t i = 0; i < t->nr_threads; i++)
		if (t->threads[i].tid != t->pid) /* the thread standing for the process: done as it */
			regs_undo_freeze_eintr(t->threads[i].tid, &t->threads[i].regs);
}

void threads_release(struct dump_task *t)
{
	for (size_t i = 0; i < t->nr_threads; i++)
		if (t->threads[i].tid != t->pid) /* the thread standing for the process: released as it */
			task_release(t->threads[i].tid, 0);
}

/*
 * What the thread tells from inside, in one list of injected syscalls: clear_child_tid, its
 * alternate signal stack, its NUMA policy, whether CPUID and RDTSC trap, timer slack, secure
 * bits, no_new_privs and parent-death signal (prctl, arch_prctl and get_mempolicy answer for the
 * calling thread only).
 */
enum { ASK_TID_ADDRESS, ASK_ALTSTACK, ASK_MEMPOLICY, ASK_CPUID, ASK_TSC, ASK_TIMER_SLACK, ASK_SECUREBITS,
       ASK_NO_NEW_PRIVS, ASK_PDEATH, NR_ASKS };
struct thread_answers {
	unsigned char tid_address[KERNEL_TASK_ANSWER_SIZE];
	unsigned char altstack[SIGNALS_ANSWER_SIZE];
	int32_t pdeath_signal;
	int32_t tsc;
	int32_t mempolicy_mode;
	uint64_t mempolicy_nodes[RST_NODE_WORDS];
};

static int ask_thread(int tid, struct inject_ctx *inj, int64_t ret[NR_ASKS], struct thread_answers *a)
{
	struct inject_call calls[NR_ASKS] = {
		[ASK_CPUID] = { SYS_arch_prctl, { ARCH_GET_CPUID } },
		[ASK_TSC] = { SYS_prctl, { PR_GET_TSC, inj->scratch + offsetof(struct thread_answers, tsc) } },
		[ASK_TIMER_SLACK] = { SYS_prctl, { PR_GET_TIMERSLACK } },
		[ASK_SECUREBITS] = { SYS_prctl, { PR_GET_SECUREBITS } },
		[ASK_NO_NEW_PRIVS] = { SYS_prctl, { PR_GET_NO_NEW_PRIVS } },
		[ASK_PDEATH] = { SYS_prctl, { PR_GET_PDEATHSIG,
					      inj->scratch + offsetof(struct thread_answers, pdeath_signal) } },
	};
	unsigned logged = log_errors();
	int err;

	kernel_task_ask(&calls[ASK_TID_ADDRESS], inj->scratch + offsetof(struct thread_answers, tid_address));
	signals_ask_altstack(&calls[ASK_ALTSTACK], inj->scratch + offsetof(struct thread_answers, altstack));
	mempolicy_ask(&calls[ASK_MEMPOLICY], inj->scratch + offsetof(struct thread_answers, mempolicy_mode),
		      inj->scratch + offsetof(struct thread_answers, mempolicy_nodes), RST_NODE_WORDS, 0);
	if ((err = inject_syscalls(inj, calls, NR_ASKS, ret, a, sizeof(*a))))
		return log_unnamed(logged, err, "dump thread %d: cannot run syscalls inside it", tid);
	return 0;
}

static int dump_one_thread(struct dump_task *t, struct frozen_thread *ft, ThreadCore *tc)
{
	struct inject_ctx own, *inj = thread_inject_begin(t, ft, &own);
	struct thread_kstate ks;
	struct thread_altstack as;
	struct thread_answers answers;
	int64_t ret[NR_ASKS];
	char path[64];
	auto_free char *comm = NULL;
	int err, end = 0;

	if ((err = pid_ns_vtid(t->ctx, t->pid, ft->tid, &tc->tid)))
		return err;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", t->pid, ft->tid);
	comm = read_proc_record(path);
	if ((!comm && errno == ENOMEM) || !(tc->comm = xstrdup(comm)))
		return -ENOMEM;
	tc->comm[strcspn(tc->comm, "\n")] = 0;
	if (!(err = regs_collect(ft->tid, &ft->regs, &tc->regs, &tc->xsave)) &&
	    !(err = ask_thread(ft->tid, inj, ret, &answers)) &&
	    !(err = kernel_task_collect(ft->tid, tc->regs, &ks, ret[ASK_TID_ADDRESS], answers.tid_address)) &&
	    !(err = signals_collect_thread(ft->tid, &tc->sigmask, &as, ret[ASK_ALTSTACK], answers.altstack)) &&
	    !(err = mempolicy_collect(ret[ASK_MEMPOLICY], answers.mempolicy_mode, answers.mempolicy_nodes,
				      RST_NODE_WORDS, &tc->mempolicy)) &&
	    !(err = signals_collect_pending(ft->tid, false, &tc->pending, &tc->n_pending))) {
		static const char *const what[NR_ASKS] = { [ASK_TIMER_SLACK] = "timer slack",
			[ASK_SECUREBITS] = "secure bits", [ASK_NO_NEW_PRIVS] = "no_new_privs",
			[ASK_PDEATH] = "parent-death signal" };
		for (int k = ASK_TIMER_SLACK; !err && k < NR_ASKS; k++)
			if (ret[k] < 0) {
				err = inject_ret_err(ret[k]);
				pr_err("dump thread %d: cannot read its %s: %s", ft->tid, what[k], strerror(-err));
			}
		tc->has_timer_slack_ns = tc->has_securebits = tc->has_no_new_privs = true;
		tc->has_pdeath_signal = true;
		tc->pdeath_signal = answers.pdeath_signal;
		tc->timer_slack_ns = ret[ASK_TIMER_SLACK];
		tc->securebits = ret[ASK_SECUREBITS]; /* restored with the credentials */
		tc->no_new_privs = ret[ASK_NO_NEW_PRIVS] == 1;
		tc->has_cpuid_faulting = tc->cpuid_faulting = ret[ASK_CPUID] == 0;
		tc->has_tsc = ret[ASK_TSC] == 0; /* (-EINVAL: not x86) */
		tc->tsc = answers.tsc;
	}
	end = thread_inject_end(t, inj);
	if (err || end)
		return err ? err : end;
	tc->rseq = ks.rseq;
	tc->sud = ks.sud;
	tc->robust_list = ks.robust_list;
	tc->robust_list_len = ks.robust_list_len;
	tc->clear_child_tid = ks.clear_child_tid;
	tc->altstack_sp = as.sp;
	tc->altstack_flags = as.flags;
	tc->altstack_size = as.size;
	tc->has_cg_set = ft->cg_set != 0;
	tc->cg_set = ft->cg_set;
	return ft->tid == t->pid ? 0 : thread_tables_dump(t, ft->tid, tc);
}

static int dump_threads(struct dump_task *t)
{
	TaskCore *c = t->core;

	if (!(c->threads = xzalloc((t->nr_threads + 1) * sizeof(*c->threads))))
		return -ENOMEM;
	for (size_t i = 0; i < t->nr_threads; i++) {
		ThreadCore *tc = xzalloc(sizeof(*tc));
		int err;

		if (!tc)
			return -ENOMEM;
		thread_core__init(tc);
		c->threads[c->n_threads++] = tc;
		if ((err = dump_one_thread(t, &t->threads[i], tc)))
			return err;
	}
	return 0;
}

static int validate_threads(struct restore_task *t)
{
	TaskCore *c = t->core;

	if (c->n_threads >= RST_MAX_THREADS) {
		pr_err("image core-%d.img: %zu threads, at most %d", t->pid, c->n_threads,
		       RST_MAX_THREADS - 1);
		return -EINVAL;
	}
	for (size_t i = 0; i < c->n_threads; i++) {
		ThreadCore *tc = c->threads[i];
		bool ok = tc->tid > 0 && tc->tid != (uint32_t)t->pid && tc->pdeath_signal <= 64 &&
			  (!tc->has_tsc || tc->tsc == PR_TSC_ENABLE || tc->tsc == PR_TSC_SIGSEGV) &&
			  regs_image_valid(tc->regs, &tc->xsave);
		for (size_t j = 0; ok && j < i; j++)
			ok = c->threads[j]->tid != tc->tid;
		ok = ok && thread_tables_valid(t, tc);
		for (size_t j = 0; ok && j < tc->n_pending; j++)
			ok = tc->pending[j]->siginfo.len == sizeof(((struct rst_thread_signal *)0)->info) &&
			     tc->pending[j]->sig >= 1 && tc->pending[j]->sig <= 64;
		if (!ok) {
			pr_err("image core-%d.img: thread entry %zu (tid %u) is invalid", t->pid, i,
			       tc->tid);
			return -EINVAL;
		}
	}
	return 0;
}

/* Once the tree's namespaces are known: in stasis's PID namespace, every thread id is free. */
static int check_thread_ids_free(struct restore_task *t)
{
	const TaskCore *c = t->core;

	if (pid_ns_is_own(t->ctx)) /* a new namespace's ids are free */
		return 0;
	for (size_t i = 0; i < c->n_threads; i++) {
		char path[32];
		snprintf(path, sizeof(path), "/proc/%u", c->threads[i]->tid);
		if (access(path, F_OK) == 0) {
			pr_err("restore pid %d: thread id %u is taken by a running task; nothing was "
			       "started", t->pid, c->threads[i]->tid);
			return -EEXIST;
		}
	}
	return 0;
}

size_t threads_signal_count(const TaskCore *c)
{
	size_t n = 0;
	for (size_t i = 0; i < c->n_threads; i++)
		n += c->threads[i]->n_pending;
	return n;
}

static size_t threads_args_size(const struct restore_task *t)
{
	size_t own = 0;

	for (size_t i = 0; i < t->core->n_threads; i++)
		own += thread_tables_args_size(t->core->threads[i]);
	return t->core->n_threads * sizeof(struct rst_thread) +
	       threads_signal_count(t->core) * sizeof(struct rst_thread_signal) + own;
}

/* In the new task: the blob's table of threads to create. */
static int restore_threads(struct restore_task *t)
{
	struct restorer_args *a = t->args;
	TaskCore *c = t->core;
	struct rst_thread *out = restorer_args_alloc(t, c->n_threads * sizeof(*out), &a->threads_off);
	struct rst_thread_signal *sigs = restorer_args_alloc(t, threads_signal_count(c) * sizeof(*sigs),
							     &a->thread_signals_off);

	if (!out || !sigs)
		return -ENOMEM;

	a->nr_threads = c->n_threads;
	a->nr_thread_signals = 0;
	for (size_t i = 0; i < c->n_threads; i++) {
		ThreadCore *tc = c->threads[i];
		struct rst_thread *th = &out[i];

		memset(th, 0, sizeof(*th));
		th->tid = tc->tid;
		if (tc->rseq) {
			th->rseq_addr = tc->rseq->addr;
			th->rseq_len = tc->rseq->len;
			th->rseq_sig = tc->rseq->signature;
		}
		th->robust_list = tc->robust_list;
		th->robust_len = tc->robust_list_len;
		th->clear_child_tid = tc->clear_child_tid;
		th->timer_slack_ns = tc->has_timer_slack_ns ? tc->timer_slack_ns : 0;
		th->no_new_privs = tc->no_new_privs;
		th->cpuid_faulting = tc->cpuid_faulting;
		th->tsc = tc->has_tsc ? tc->tsc : 0;
		th->pdeath_signal = t->is_root ? 0 : tc->pdeath_signal; /* as the main thread's */
		mempolicy_thread_args(th, tc->mempolicy);
		th->altstack_sp = tc->altstack_sp;
		th->altstack_flags = tc->altstack_flags & ~SS_ONSTACK;
		th->altstack_size = tc->altstack_size;
		snprintf(th->comm, sizeof(th->comm), "%s", tc->comm);
		th->stack_top = t->thread_stacks + (i + 1) * RST_THREAD_STACK;
		th->args = (uint64_t)(uintptr_t)a;
		int err = thread_tables_restore(t, tc, th);
		if (err)
			return err;
		for (size_t j = 0; j < tc->n_pending; j++) {
			struct rst_thread_signal *s = &sigs[a->nr_thread_signals++];
			s->tid = tc->tid;
			s->sig = tc->pending[j]->sig;
			memcpy(s->info, tc->pending[j]->siginfo.data, sizeof(s->info));
		}
	}
	return 0;
}

const struct state_ops state_threads = {
	.name = "threads",
	.dump = dump_threads,
	.validate = validate_threads,
	.check = check_thread_ids_free,
	.args_size = threads_args_size,
	.restore = restore_threads,
};
