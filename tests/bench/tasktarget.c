/*
 * Bench target with many tasks: `tasktarget tree N RESULT` forks N-1 children (N processes in
 * all), `tasktarget threads N RESULT` starts N-1 threads (N threads in all). Each task keeps a
 * value of its own (a 64 KiB private page pattern per child, a __thread value per thread).
 * After SIGTERM to the root: every child/thread checks its value, the root collects them and
 * writes "PASS pid=ROOT tasks=N" or "FAIL ..." to RESULT (opened only then).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	_exit(0);
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
	int n = argc == 4 ? atoi(argv[2]) : 0;
	char line[128];

	if (n < 1 || (strcmp(argv[1], "tree") && strcmp(argv[1], "threads"))) {
		fprintf(stderr, "usage: %s tree|threads N RESULT_FILE\n", argv[0]);
		return 2;
	}
	for (int fd = 3; fd < 1024; fd++)
		close(fd);
	sigaction(SIGTERM, &sa, NULL);
	bool tree = !strcmp(argv[1], "tree");
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
	snprintf(line, sizeof(line), nbad ? "FAIL pid=%d tasks=%d bad=%d\n" : "PASS pid=%d tasks=%d\n",
		 getpid(), n, nbad);
	int fd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, line, strlen(line)) < 0)
		return 1;
	close(fd);
	return nbad != 0;
}
