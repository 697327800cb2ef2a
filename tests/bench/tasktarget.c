/*
 * Bench target with many tasks: `tasktarget tree N RESULT` forks N-1 children (N processes in
 * all), `tasktarget threads N RESULT` starts N-1 threads (N threads in all). Each task keeps a
 * value of its own (a 64 KiB private page pattern per child, a __thread value per thread).
 * After SIGTERM to the root: every child/thread checks its value, the root collects them and
 * writes "PASS pid=ROOT tasks=N" or "FAIL ..." to RESULT (opened only then).
 * `tasktarget tree N RESULT FILE MIB` also fills FILE (on a tmpfs of a container, say) with MIB
 * MiB of a pattern before READY, and reads it back after SIGTERM (a wrong byte is a FAIL).
 * `tasktarget cow N RESULT MIB`: the root fills MIB MiB of private memory with a pattern
 * before it forks N-1 children, which keep it (shared copy-on-write) and check it after SIGTERM.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHILD_BYTES (64 * 1024)

static volatile sig_atomic_t term;
static volatile int stop_threads;
static __thread unsigned long tls;
static int nbad;

static void on_term(int sig) { (void)sig; term = 1; }

static void nap(void)
{
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	nanosleep(&ts, NULL);
}

static unsigned char *cow_mem; /* cow: the root's memory, its children's copy-on-write */
static size_t cow_len;

static unsigned char fill_byte(size_t off);

static int cow_bad(void)
{
	for (size_t off = 0; off < cow_len; off += 4096)
		if (cow_mem[off] != fill_byte(off) || cow_mem[off + 4095] != fill_byte(off + 4095))
			return 1;
	return 0;
}

static void child_main(int i)
{
	unsigned char *mem = malloc(CHILD_BYTES);
	for (int k = 0; k < CHILD_BYTES; k++)
		mem[k] = (unsigned char)(k * 7 + i);
	while (!term)
		nap();
	for (int k = 0; k < CHILD_BYTES; k++)
		if (mem[k] != (unsigned char)(k * 7 + i))
			_exit(1);
	_exit(cow_mem && cow_bad());
}

static unsigned char fill_byte(size_t off)
{
	return (unsigned char)((off >> 12) * 31 + (off & 0xfff) * 7 + 1);
}

/* Writes (check false) or compares (check true) MIB MiB of the pattern; 0 if all is well. */
static int fill_file(const char *path, long mib, bool check)
{
	static unsigned char buf[1 << 20], want[1 << 20];
	int fd = open(path, check ? O_RDONLY : O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0)
		return -1;
	for (long m = 0; m < mib; m++) {
		size_t base = (size_t)m << 20;
		for (size_t k = 0; k < sizeof(want); k++)
			want[k] = fill_byte(base + k);
		ssize_t n = check ? read(fd, buf, sizeof(buf)) : write(fd, want, sizeof(want));
		if (n != (ssize_t)sizeof(want) || (check && memcmp(buf, want, sizeof(want)))) {
			close(fd);
			return -1;
		}
	}
	return close(fd);
}

static void *thread_main(void *arg)
{
	unsigned long i = (unsigned long)arg;
	tls = 0x7100000 + i;
	while (!stop_threads)
		nap();
	return (void *)(unsigned long)(tls != 0x7100000 + i);
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_term };
	bool cow = argc == 5 && !strcmp(argv[1], "cow");
	int n = argc == 4 || argc == 6 || cow ? atoi(argv[2]) : 0;
	const char *fill = argc == 6 ? argv[4] : NULL;
	long fill_mib = fill ? atol(argv[5]) : 0;
	char line[160];

	if (n < 1 || (strcmp(argv[1], "tree") && strcmp(argv[1], "threads") && !cow) ||
	    (fill && fill_mib < 1) || (cow && atol(argv[4]) < 1)) {
		fprintf(stderr, "usage: %s tree|threads N RESULT_FILE [FILL_FILE MIB]\n"
				"       %s cow N RESULT_FILE MIB\n", argv[0], argv[0]);
		return 2;
	}
	if (cow) {
		cow_len = (size_t)atol(argv[4]) << 20;
		cow_mem = mmap(NULL, cow_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (cow_mem == MAP_FAILED) {
			fprintf(stderr, "cannot map %zu bytes: %m\n", cow_len);
			return 1;
		}
		for (size_t off = 0; off < cow_len; off++)
			cow_mem[off] = fill_byte(off);
	}
	if (fill && fill_file(fill, fill_mib, false)) {
		fprintf(stderr, "cannot fill %s with %ld MiB: %m\n", fill, fill_mib);
		return 1;
	}
	for (int fd = 3; fd < 1024; fd++)
		close(fd);
	sigaction(SIGTERM, &sa, NULL);
	bool tree = strcmp(argv[1], "threads");
	pid_t *kids = calloc(n, sizeof(pid_t));
	pthread_t *threads = calloc(n, sizeof(pthread_t));
	for (int i = 1; i < n; i++) {
		if (tree) {
			if ((kids[i] = fork()) == 0)
				child_main(i);
		} else if (pthread_create(&threads[i], NULL, thread_main, (void *)(unsigned long)i)) {
			fprintf(stderr, "pthread_create: failed at %d\n", i);
			return 1;
		}
	}
	printf("READY pid=%d tasks=%d\n", getpid(), n);
	fflush(stdout);
	while (!term)
		nap();
	for (int i = 1; i < n; i++) {
		if (tree) {
			int st = 0;
			kill(kids[i], SIGTERM);
			if (waitpid(kids[i], &st, 0) != kids[i] || !WIFEXITED(st) || WEXITSTATUS(st))
				nbad++;
		} else {
			void *ret;
			stop_threads = 1;
			pthread_join(threads[i], &ret);
			nbad += ret != NULL;
		}
	}
	bool fill_bad = (fill && fill_file(fill, fill_mib, true)) || (cow_mem && cow_bad());
	snprintf(line, sizeof(line),
		 nbad || fill_bad ? "FAIL pid=%d tasks=%d bad=%d%s\n" : "PASS pid=%d tasks=%d\n", getpid(), n,
		 nbad, fill_bad ? " (the filled file or memory differs)" : "");
	int fd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, line, strlen(line)) < 0)
		return 1;
	close(fd);
	return nbad || fill_bad;
}
