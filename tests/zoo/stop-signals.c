/*
 * stop-signals: children stopped by each job control signal, some of whose stops the parent
 * has collected (waitpid WUNTRACED) and some not yet.
 *   S: SIGSTOP, collected; T: SIGTSTP, not collected; I: SIGTTIN, collected; O: SIGTTOU, not
 *   collected. Each child is in a process group of its own in the program's session (a group
 *   that is not orphaned: the terminal stop signals do stop it). T and O have a second thread.
 *   S, once stopped, is sent SIGSTOP again, to the process and to its thread: both wait.
 * After restore and SIGTERM: each child, and each thread, is stopped; the parent's waitid(
 * WSTOPPED|WNOHANG|WNOWAIT) reports T stopped by SIGTSTP and O by SIGTTOU, and nothing for S
 * and I (corruption "stopped" continues S and O). The parent counts its SIGCHLDs (a handler):
 * none comes after zoo_ready(), and none is pending (corruption "sigchld" sends itself one).
 * Then SIGCONT makes S run again (its waiting SIGSTOPs go with it, as the kernel does).
 * Blocks in: nanosleep (zoo_wait loop); the children in group stop.
 */
#include "zoo.h"
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>

static const int sigs[4] = { SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU };
static const int collected[4] = { 1, 0, 1, 0 };
static const char names[4] = { 'S', 'T', 'I', 'O' };
static pid_t kids[4];
static volatile pid_t *thread_tids; /* shared: each child's second thread, 0: none */
static volatile sig_atomic_t sigchlds;

static void on_sigchld(int sig) { (void)sig; sigchlds++; }

/* The state of thread tid of child pid (pids of the program's namespace: /proc may be another's). */
static char state_of(pid_t pid, pid_t tid)
{
	char path[96];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", zoo_proc_pid(pid), zoo_proc_tid_of(pid, tid));
	return zoo_stat_state(path);
}

static void c_signal(ucontext_t *u) { (void)u; kill(kids[1], SIGCONT); zoo_sleep_ms(20); kill(kids[1], SIGTTIN); zoo_sleep_ms(20); }
static void c_reported(ucontext_t *u) { (void)u; int st; waitpid(kids[3], &st, WUNTRACED); }
static void c_sigchld(ucontext_t *u) { (void)u; kill(getpid(), SIGCHLD); }
static void c_stopped(ucontext_t *u) { (void)u; kill(kids[0], SIGCONT); kill(kids[3], SIGCONT); zoo_sleep_ms(20); }

static void *second_thread(void *arg)
{
	thread_tids[(long)arg] = gettid();
	for (;;)
		zoo_sleep_ms(100);
	return NULL;
}
static const struct zoo_corruption corruptions[] = {
	{ "signal", c_signal, 0 },
	{ "reported", c_reported, 0 },
	{ "stopped", c_stopped, 0 },
	{ "sigchld", c_sigchld, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	struct sigaction sa = { .sa_handler = on_sigchld, .sa_flags = SA_RESTART };
	sigaction(SIGCHLD, &sa, NULL);
	thread_tids = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (thread_tids == MAP_FAILED)
		zoo_die("mmap: %s", strerror(errno));
	for (int i = 0; i < 4; i++) {
		kids[i] = fork();
		if (kids[i] == 0) {
			pthread_t th;
			setpgid(0, 0);
			if ((i == 1 || i == 3) && pthread_create(&th, NULL, second_thread, (void *)(long)i))
				_exit(1);
			for (;;)
				zoo_sleep_ms(100);
		}
		setpgid(kids[i], kids[i]);
	}
	for (int ms = 0; (!thread_tids[1] || !thread_tids[3]) && ms < 5000; ms++)
		zoo_sleep_ms(1);
	for (int i = 0; i < 4; i++) {
		siginfo_t si;
		kill(kids[i], sigs[i]);
		if (waitid(P_PID, kids[i], &si, WSTOPPED | (collected[i] ? 0 : WNOWAIT)) || si.si_status != sigs[i])
			zoo_die("child %c did not stop with signal %d", names[i], sigs[i]);
	}
	if (kill(kids[0], SIGSTOP) || syscall(SYS_tgkill, kids[0], kids[0], SIGSTOP))
		zoo_die("SIGSTOP again to child S: %s", strerror(errno));
	zoo_ready();
	int seen = sigchlds;
	zoo_wait();
	sigset_t pending;
	sigpending(&pending);
	CHECK("sigchld", sigchlds == seen && !sigismember(&pending, SIGCHLD), "%d SIGCHLD since it was ready "
	      "(expected none), SIGCHLD %spending", sigchlds - seen, sigismember(&pending, SIGCHLD) ? "" : "not ");

	for (int i = 0; i < 4; i++) {
		siginfo_t si;
		memset(&si, 0, sizeof(si));
		int r = waitid(P_PID, kids[i], &si, WSTOPPED | WNOHANG | WNOWAIT);
		CHECK(i == 0 || i == 3 ? "stopped" : "signal", state_of(kids[i], kids[i]) == 'T',
		      "child %c is in state %c, not stopped", names[i], state_of(kids[i], kids[i]));
		if (thread_tids[i])
			CHECK("stopped", state_of(kids[i], thread_tids[i]) == 'T',
			      "child %c's second thread is in state %c, not stopped", names[i],
			      state_of(kids[i], thread_tids[i]));
		if (collected[i])
			CHECK("reported", r == 0 && si.si_pid == 0, "child %c's stop, collected already, is reported again "
			      "(signal %d)", names[i], si.si_status);
		else
			CHECK(si.si_pid && si.si_status != sigs[i] ? "signal" : "reported",
			      r == 0 && si.si_pid == kids[i] && si.si_code == CLD_STOPPED && si.si_status == sigs[i],
			      "child %c's stop is reported %s (signal %d, expected %d)", names[i],
			      si.si_pid ? "with another signal" : "no more", si.si_status, sigs[i]);
	}
	kill(kids[0], SIGCONT);
	int ms = 0;
	while (state_of(kids[0], kids[0]) == 'T' && ms++ < 2000)
		zoo_sleep_ms(1);
	CHECK("stopped", state_of(kids[0], kids[0]) != 'T', "child S is still stopped 2 s after SIGCONT");
	for (int i = 0; i < 4; i++) {
		kill(kids[i], SIGKILL);
		waitpid(kids[i], NULL, 0);
	}
	return zoo_finish("4 children stopped by SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU");
}
