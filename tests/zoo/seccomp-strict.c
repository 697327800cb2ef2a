/*
 * seccomp-strict: a child in seccomp strict mode (it may only read, write, exit and
 * sigreturn). The child fills a buffer, enters strict mode and then serves its parent over a
 * socket: 'i' counts one up, 'c' answers with the count and a checksum of the buffer, 'k'
 * makes a forbidden system call (getpid), which strict mode answers with SIGKILL. Before
 * READY the parent has it count to 3.
 * After restore and SIGTERM: the child answers count 3 and the buffer's checksum, counts on
 * to 4, its status says Seccomp: 1 (the parent's 0), and getpid kills it with SIGKILL.
 * The kernel lets no process under a seccomp filter enter strict mode: the program refuses to
 * start under one (a container's profile: tests/container/ctr-lib.sh starts its container
 * without).
 * Blocks in: nanosleep (zoo_wait loop); the child in read.
 */
#include "zoo.h"
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <linux/seccomp.h>

#define BUF_LEN 4096
static unsigned char buf[BUF_LEN];
static int sv[2]; /* the parent's end, the child's end (kept by the parent for a new child) */
static pid_t child;

struct answer {
	uint64_t count, sum;
};

static uint64_t checksum(void)
{
	uint64_t s = 0;
	for (size_t i = 0; i < BUF_LEN; i++)
		s = s * 131 + buf[i];
	return s;
}

/* The child's loop: nothing but read, write and exit once strict is set. */
static __attribute__((noreturn)) void serve(int fd, uint64_t count, int strict)
{
	char cmd;
	if (strict && prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0, 0, 0))
		syscall(SYS_exit, 3);
	for (;;) {
		long n = syscall(SYS_read, fd, &cmd, 1);
		if (n != 1)
			syscall(SYS_exit, 0);
		if (cmd == 'k')
			syscall(SYS_getpid); /* strict mode kills here */
		if (cmd == 'i')
			count++;
		struct answer a = { count, checksum() };
		syscall(SYS_write, fd, &a, sizeof(a));
	}
}

static pid_t start_child(uint64_t count, int strict)
{
	pid_t p = fork();
	if (p < 0)
		zoo_die("fork: %s", strerror(errno));
	if (p == 0) {
		close(sv[0]);
		serve(sv[1], count, strict);
	}
	return p;
}

static int ask(char cmd, struct answer *a)
{
	return write(sv[0], &cmd, 1) == 1 && read(sv[0], a, sizeof(*a)) == sizeof(*a);
}

/* Seccomp in the status of process pid (of the program's namespace: zoo_proc_pid). */
static long seccomp_mode(pid_t pid)
{
	char path[64], status[8192], *p;
	if (pid == getpid())
		snprintf(path, sizeof(path), "/proc/self/status");
	else
		snprintf(path, sizeof(path), "/proc/%d/status", zoo_proc_pid(pid));
	if (zoo_read_file(path, status, sizeof(status)) < 0 || !(p = strstr(status, "\nSeccomp:\t")))
		return -1;
	return strtol(p + 10, NULL, 10);
}

/* "strict": the child is replaced by one that keeps its count but is not in strict mode. */
static void c_strict(ucontext_t *u)
{
	(void)u;
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	child = start_child(3, 0);
}
static void c_state(ucontext_t *u)
{
	(void)u;
	struct answer a;
	ask('i', &a);
}
static const struct zoo_corruption corruptions[] = {
	{ "strict", c_strict, 0 },
	{ "state", c_state, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	zoo_fill(buf, BUF_LEN, 0x5ec);
	if (prctl(PR_GET_SECCOMP) != 0)
		zoo_die("under a seccomp filter (Seccomp %ld) no child can enter strict mode",
			seccomp_mode(getpid()));
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		zoo_die("socketpair: %s", strerror(errno));
	child = start_child(0, 1);
	struct answer a = { 0, 0 };
	for (int i = 0; i < 3; i++)
		if (!ask('i', &a))
			zoo_die("the strict child does not answer");
	if (a.count != 3 || seccomp_mode(child) != 1)
		zoo_die("the child counted to %llu, Seccomp %ld", (unsigned long long)a.count,
			seccomp_mode(child));
	zoo_ready();
	zoo_wait();

	uint64_t sum = checksum();
	if (CHECK("state", ask('c', &a), "the child does not answer"))
		CHECK("state", a.count == 3 && a.sum == sum, "the child answers count %llu sum %llx, expected 3 and %llx",
		      (unsigned long long)a.count, (unsigned long long)a.sum, (unsigned long long)sum);
	if (CHECK("state", ask('i', &a), "the child does not count on"))
		CHECK("state", a.count == 4, "the child counted on to %llu, expected 4", (unsigned long long)a.count);
	CHECK("strict", seccomp_mode(child) == 1, "the child's Seccomp is %ld, expected 1 (strict)", seccomp_mode(child));
	CHECK("strict", seccomp_mode(getpid()) == 0, "the parent's Seccomp is %ld, expected 0", seccomp_mode(getpid()));
	char k = 'k';
	int status = 0;
	CHECK("strict", write(sv[0], &k, 1) == 1, "cannot ask the child for getpid");
	close(sv[1]); /* the child's end: an answer, if any, is still there to read */
	struct answer late;
	int answered = read(sv[0], &late, sizeof(late)) == sizeof(late);
	close(sv[0]); /* a child still alive reads its end of file and exits */
	waitpid(child, &status, 0);
	CHECK("strict", !answered && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	      "getpid in strict mode %s; the child ended with status %#x, expected SIGKILL",
	      answered ? "was answered" : "was not answered", status);
	return zoo_finish("a child in strict mode");
}
