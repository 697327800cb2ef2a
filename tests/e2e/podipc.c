/*
 * podipc: two containers talking through the IPC namespace they share: a Podman pod's, its
 * sandbox's (podman/pod of tests/e2e/podman.sh), or the one Docker's `--ipc container:NAME`
 * gives (docker/ipc-container of tests/e2e/docker.sh); built static into the busybox root.
 *
 *   podipc owner  makes a SysV shm segment (key 0x5ad0a001, one page) and a SysV message queue
 *                 (key 0x5ad0a002); every 100 ms writes its own tick into the segment's first
 *                 word and prints "recv N" for each message it takes (the user's count); once a
 *                 second prints "peer N": the segment's second word (the user's count, as this
 *                 container sees it).
 *   podipc user   attaches both (waiting for the owner), then once a second: its count n + 1,
 *                 printed alone on a line, written into the segment's second word and sent as a
 *                 message. It prints "FAIL: ..." if the owner's tick goes backwards (its segment
 *                 is not the live one) or the segment or queue goes away.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/shm.h>
#include <time.h>
#include <unistd.h>

#define SHM_KEY 0x5ad0a001
#define MSG_KEY 0x5ad0a002

struct count_msg {
	long mtype;
	long n;
};

static void nap_ms(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&t, &t) && errno == EINTR)
		;
}

static int owner(void)
{
	int shm = shmget(SHM_KEY, 4096, IPC_CREAT | 0600), q = msgget(MSG_KEY, IPC_CREAT | 0600);
	volatile long *words = shm < 0 ? (void *)-1 : shmat(shm, NULL, 0);

	if (shm < 0 || q < 0 || words == (void *)-1) {
		printf("FAIL: owner: cannot make its segment and queue: %s\n", strerror(errno));
		return 1;
	}
	for (long tick = 1;; tick++) {
		struct count_msg m;
		words[0] = tick;
		while (msgrcv(q, &m, sizeof(m.n), 1, IPC_NOWAIT) == sizeof(m.n))
			printf("recv %ld\n", m.n);
		if (tick % 10 == 0)
			printf("peer %ld\n", words[1]);
		fflush(stdout);
		nap_ms(100);
	}
}

static int user(void)
{
	int shm = -1, q = -1;
	volatile long *words;
	long last = 0;

	for (int i = 0; i < 200 && (shm < 0 || q < 0); i++, nap_ms(100)) {
		shm = shmget(SHM_KEY, 0, 0);
		q = msgget(MSG_KEY, 0);
	}
	words = shm < 0 ? (void *)-1 : shmat(shm, NULL, 0);
	if (q < 0 || words == (void *)-1) {
		printf("FAIL: user: no segment or queue of the owner: %s\n", strerror(errno));
		return 1;
	}
	for (long n = 1;; n++) {
		struct count_msg m = { 1, n };
		long tick = words[0];
		if (tick < last)
			printf("FAIL: the owner's tick went from %ld back to %ld\n", last, tick);
		last = tick;
		words[1] = n;
		if (msgsnd(q, &m, sizeof(m.n), IPC_NOWAIT))
			printf("FAIL: cannot send %ld: %s\n", n, strerror(errno));
		printf("%ld\n", n);
		fflush(stdout);
		nap_ms(1000);
	}
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 2 && !strcmp(argv[1], "owner"))
		return owner();
	if (argc == 2 && !strcmp(argv[1], "user"))
		return user();
	fprintf(stderr, "usage: podipc owner|user\n");
	return 2;
}
