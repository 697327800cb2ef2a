/*
 * threads: 64 threads, each with its own state the kernel keeps per thread.
 *   Thread i: __thread value, name "zt-i" (comm), blocked mask with SIGRTMIN+(i%8), its tid,
 *   fs_base; a third spin on the CPU holding a value in r12, a third wait in FUTEX_WAIT, a
 *   third sleep in nanosleep. Threads 0-3 have a SIGUSR1 with value 100+i queued to them alone
 *   (blocked there). After restore and SIGTERM every thread checks its own state, including its
 *   robust futex list (glibc's, per thread) and that its rseq area is still registered (the
 *   kernel refreshes cpu_id); pthread_join itself relies on each thread's clear_child_tid.
 * Blocks in: main in nanosleep (zoo_wait), workers as above.
 */
#include "zoo.h"
#include <asm/prctl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/rseq.h>

#define NTHREADS 64
#define NPENDING 4

enum { BAD_TID = 1, BAD_TLS = 2, BAD_COMM = 4, BAD_MASK = 8, BAD_REG = 16, BAD_PENDING = 32,
       BAD_FSBASE = 64, BAD_ROBUST = 128, BAD_RSEQ = 256 };

static __thread uint64_t tls_value;
static uint64_t *tls_addr[NTHREADS];
static pid_t tids[NTHREADS];
static unsigned long fsbases[NTHREADS];
static void *robust_heads[NTHREADS];
static pthread_t threads[NTHREADS];
static volatile int stop, ready_count;
static uint32_t futex_word;
static int results[NTHREADS];
static volatile int corrupt_in_thread; /* 0, or a BAD_* the threads damage themselves */

static unsigned long get_fs(void)
{
	unsigned long v = 0;
	syscall(SYS_arch_prctl, ARCH_GET_FS, &v);
	return v;
}

static int expected_rt(int i) { return SIGRTMIN + (i % 8); }

/* The spin loop keeps r12 live in a register across every iteration. */
static int spin_until_stop(int i)
{
	register uint64_t r12 __asm__("r12") = 0x5eed0000ull + (uint64_t)i;
	int bad = 0;
	while (!stop) {
		__asm__ volatile("" : "+r"(r12));
		if (r12 != 0x5eed0000ull + (uint64_t)i)
			bad = 1;
	}
	if (corrupt_in_thread == BAD_REG && i == 0)
		r12++;
	__asm__ volatile("" : "+r"(r12));
	return bad || r12 != 0x5eed0000ull + (uint64_t)i;
}

static int check_self(int i)
{
	int bad = 0;
	char comm[32] = "", want[16];
	sigset_t mask;

	if ((pid_t)syscall(SYS_gettid) != tids[i])
		bad |= BAD_TID;
	if (tls_value != 0xabc00000ull + (uint64_t)i)
		bad |= BAD_TLS;
	if (get_fs() != fsbases[i])
		bad |= BAD_FSBASE;
	void *head = NULL;
	size_t rlen = 0;
	if (corrupt_in_thread == BAD_ROBUST && i == 9)
		syscall(SYS_set_robust_list, NULL, 3 * sizeof(void *)); /* sizeof robust_list_head */
	syscall(SYS_get_robust_list, 0, &head, &rlen);
	if (!head || head != robust_heads[i])
		bad |= BAD_ROBUST;
	/* the kernel writes the current cpu into the rseq area only while it is registered */
	volatile struct rseq *rs = (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
	if (corrupt_in_thread == BAD_RSEQ && i == 11 &&
	    syscall(SYS_rseq, rs, 32, 1 /* UNREGISTER */, 0x53053053)) /* glibc registers 32 bytes */
		syscall(SYS_rseq, rs, __rseq_size, 1, 0x53053053);
	rs->cpu_id = (uint32_t)-1;
	sched_yield();
	zoo_sleep_ms(1);
	if ((int32_t)rs->cpu_id < 0)
		bad |= BAD_RSEQ;
	prctl(PR_GET_NAME, comm); /* not /proc/self/task/TID: a PID namespace's /proc may be the host's */
	snprintf(want, sizeof(want), "zt-%d", i);
	if (strcmp(comm, want))
		bad |= BAD_COMM;
	if (corrupt_in_thread == BAD_MASK && i == 7) {
		sigset_t m;
		sigemptyset(&m);
		sigaddset(&m, expected_rt(i));
		pthread_sigmask(SIG_UNBLOCK, &m, NULL);
	}
	pthread_sigmask(SIG_SETMASK, NULL, &mask);
	if (!sigismember(&mask, expected_rt(i)) || sigismember(&mask, expected_rt(i + 1)) ||
	    !sigismember(&mask, SIGTERM))
		bad |= BAD_MASK;
	if (i < NPENDING) {
		sigset_t pend, usr1;
		siginfo_t si;
		struct timespec zero = { 0, 0 };
		if (corrupt_in_thread == BAD_PENDING && i == 1) {
			sigemptyset(&usr1);
			sigaddset(&usr1, SIGUSR1);
			sigtimedwait(&usr1, &si, &zero);
		}
		sigpending(&pend);
		sigemptyset(&usr1);
		sigaddset(&usr1, SIGUSR1);
		if (!sigismember(&pend, SIGUSR1) || sigtimedwait(&usr1, &si, &zero) != SIGUSR1 ||
		    si.si_value.sival_int != 100 + i)
			bad |= BAD_PENDING;
	}
	return bad;
}

static void *worker(void *arg)
{
	int i = (int)(long)arg, bad = 0;
	char name[16];
	sigset_t mask;

	tids[i] = (pid_t)syscall(SYS_gettid);
	tls_value = 0xabc00000ull + (uint64_t)i;
	tls_addr[i] = &tls_value;
	fsbases[i] = get_fs();
	size_t rlen;
	syscall(SYS_get_robust_list, 0, &robust_heads[i], &rlen);
	snprintf(name, sizeof(name), "zt-%d", i);
	pthread_setname_np(pthread_self(), name);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, expected_rt(i));
	if (i < NPENDING)
		sigaddset(&mask, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	__atomic_add_fetch(&ready_count, 1, __ATOMIC_SEQ_CST);

	switch (i % 3) {
	case 0:
		bad = spin_until_stop(i) ? BAD_REG : 0;
		break;
	case 1:
		while (!stop)
			syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
		break;
	default:
		while (!stop) {
			struct timespec ts = { 0, 20 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
	}
	results[i] = bad | check_self(i);
	return NULL;
}

static void c_tls(ucontext_t *u) { (void)u; *tls_addr[10] ^= 1; }
static void c_comm(ucontext_t *u) { (void)u; pthread_setname_np(threads[5], "renamed"); }
static void c_mask(ucontext_t *u) { (void)u; corrupt_in_thread = BAD_MASK; }
static void c_reg(ucontext_t *u) { (void)u; corrupt_in_thread = BAD_REG; }
static void c_pending(ucontext_t *u) { (void)u; corrupt_in_thread = BAD_PENDING; }
static void c_robust(ucontext_t *u) { (void)u; corrupt_in_thread = BAD_ROBUST; }
static void c_rseq(ucontext_t *u) { (void)u; corrupt_in_thread = BAD_RSEQ; }

static const struct zoo_corruption corruptions[] = {
	{ "tls", c_tls, 0 },
	{ "comm", c_comm, 0 },
	{ "sigmask", c_mask, 0 },
	{ "register", c_reg, 0 },
	{ "pending", c_pending, 0 },
	{ "robust-list", c_robust, 0 },
	{ "rseq", c_rseq, 0 },
};

int main(int argc, char **argv)
{
	static const struct { int bit; const char *tag; } tags[] = {
		{ BAD_TID, "tid" }, { BAD_TLS, "tls" }, { BAD_COMM, "comm" }, { BAD_MASK, "sigmask" },
		{ BAD_REG, "register" }, { BAD_PENDING, "pending" }, { BAD_FSBASE, "fsbase" },
		{ BAD_ROBUST, "robust-list" }, { BAD_RSEQ, "rseq" },
	};
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));

	for (long i = 0; i < NTHREADS; i++)
		if (pthread_create(&threads[i], NULL, worker, (void *)i))
			zoo_die("pthread_create %ld failed", i);
	while (__atomic_load_n(&ready_count, __ATOMIC_SEQ_CST) < NTHREADS)
		zoo_sleep_ms(1);
	for (int i = 0; i < NPENDING; i++) {
		union sigval v = { .sival_int = 100 + i };
		if (pthread_sigqueue(threads[i], SIGUSR1, v))
			zoo_die("pthread_sigqueue to thread %d failed", i);
	}
	zoo_sleep_ms(50); /* everyone settled in its spin, wait or sleep */
	zoo_ready();
	zoo_wait();

	stop = 1;
	__atomic_store_n(&futex_word, 1, __ATOMIC_SEQ_CST);
	syscall(SYS_futex, &futex_word, FUTEX_WAKE_PRIVATE, NTHREADS, NULL, NULL, 0);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(threads[i], NULL);
	for (int i = 0; i < NTHREADS; i++)
		for (size_t k = 0; k < sizeof(tags) / sizeof(tags[0]); k++)
			CHECK(tags[k].tag, !(results[i] & tags[k].bit), "thread %d (tid %d) is wrong",
			      i, tids[i]);
	return zoo_finish("64 threads");
}
