/*
 * sem-undo-multi: several processes hold SEM_UNDO adjustments on one SysV semaphore of the
 * host's IPC namespace (cr/ipc-host-sem.c tells them apart). An IPC_PRIVATE set of two
 * semaphores, both 5:
 *   #0, a counting semaphore: child A takes 1, child B takes 2 (semop -1, -2, SEM_UNDO): 2;
 *   #1, a mix: B takes 1 (adjustment +1), C gives 2 (semop +2, SEM_UNDO: adjustment -2): 6.
 * Each child then blocks reading a pipe of its own. The dump's kill gives all of it back; the
 * restored children must hold their own adjustments again, each exactly.
 * After restore and SIGTERM: the values are 2 and 6 again. A lets go of its 1 (+1, SEM_UNDO:
 * its adjustment 0) and exits: #0 is 3 (A's adjustment lost at the restore: 2). B exits: #0
 * is 5, #1 is 7. C exits: #1 is 5 (all of it to one of them: off somewhere). The set is
 * removed at the end.
 * Blocks in: nanosleep (parent), read (children).
 */
#include "zoo.h"
#include <sys/sem.h>
#include <sys/wait.h>

static int set = -1;

static int sem_op(unsigned short num, int op)
{
	struct sembuf b = { .sem_num = num, .sem_op = op, .sem_flg = SEM_UNDO | IPC_NOWAIT };
	int r;
	while ((r = semop(set, &b, 1)) < 0 && errno == EINTR)
		;
	return r;
}

static void add_behind(unsigned short num, int op)
{
	struct sembuf b = { .sem_num = num, .sem_op = op, .sem_flg = IPC_NOWAIT };
	semop(set, &b, 1);
}

/* (done in main after SIGTERM: a semaphore changed behind the holders' back, no SEM_UNDO) */
static void c_counting(ucontext_t *uc)
{
	(void)uc;
	add_behind(0, 1);
}

static void c_mixed(ucontext_t *uc)
{
	(void)uc;
	add_behind(1, -1);
}

static const struct zoo_corruption corruptions[] = {
	{ "counting", c_counting, 0 },
	{ "mixed", c_mixed, 0 },
};

static char read_byte(int fd)
{
	char c = 0;
	while (read(fd, &c, 1) < 0 && errno == EINTR)
		;
	return c;
}

/* A child: its operations (SEM_UNDO), then on 'r' it lets #0 go by 1, on 'x' it exits. */
struct child {
	const char *name;
	int take0, take1; /* taken from #0, #1 (negative: given) */
	pid_t pid;
	int go;           /* the write end of its pipe */
};

static void run_child(const struct child *c, int go)
{
	signal(SIGTERM, SIG_DFL);
	if ((c->take0 && sem_op(0, -c->take0)) || (c->take1 && sem_op(1, -c->take1)))
		_exit(3);
	for (;;) {
		char b = read_byte(go);
		if (b == 'r' && sem_op(0, 1))
			_exit(4);
		if (b != 'r')
			_exit(0);
	}
}

static void start(struct child *c, int want0, int want1)
{
	int go[2];

	if (pipe(go))
		zoo_die("pipe: %s", strerror(errno));
	if ((c->pid = fork()) < 0)
		zoo_die("fork: %s", strerror(errno));
	if (c->pid == 0) {
		close(go[1]);
		run_child(c, go[0]);
	}
	close(go[0]);
	c->go = go[1];
	for (int i = 0; i < 200 && (semctl(set, 0, GETVAL) != want0 || semctl(set, 1, GETVAL) != want1); i++)
		zoo_sleep_ms(10);
	if (semctl(set, 0, GETVAL) != want0 || semctl(set, 1, GETVAL) != want1)
		zoo_die("child %s did not take its share: %d and %d", c->name, semctl(set, 0, GETVAL),
			semctl(set, 1, GETVAL));
}

/* Tells c what to do ('r': let go of 1, then 'x': exit) and waits for its exit. */
static int ends_ok(struct child *c, const char *what)
{
	int status = -1;
	if (write(c->go, what, strlen(what)) != (ssize_t)strlen(what))
		zoo_die("write: %s", strerror(errno));
	return waitpid(c->pid, &status, 0) == c->pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int main(int argc, char **argv)
{
	struct child a = { "A", 1, 0, 0, -1 }, b = { "B", 2, 1, 0, -1 }, c = { "C", 0, -2, 0, -1 };
	unsigned short five[2] = { 5, 5 };

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	if ((set = semget(IPC_PRIVATE, 2, IPC_CREAT | 0600)) < 0 || semctl(set, 0, SETALL, five))
		zoo_die("semget: %s", strerror(errno));
	start(&a, 4, 5);
	start(&b, 2, 4);
	start(&c, 2, 6);
	zoo_ready();
	zoo_wait();
	zoo_begin_verify();

	int v0 = semctl(set, 0, GETVAL), v1 = semctl(set, 1, GETVAL);
	CHECK("counting", v0 == 2, "the counting semaphore A and B took 1 and 2 of is %d (2 expected)", v0);
	CHECK("mixed", v1 == 6, "the semaphore B took 1 of and C gave 2 to is %d (6 expected)", v1);
	CHECK("counting", ends_ok(&a, "rx"), "A did not let go of its 1 and exit");
	v0 = semctl(set, 0, GETVAL);
	CHECK("counting", v0 == 3,
	      "A let go of its 1 and exited: the counting semaphore is %d (3 expected: A's SEM_UNDO "
	      "adjustment +1 was not restored as its own)", v0);
	CHECK("counting", ends_ok(&b, "x"), "B did not exit");
	v0 = semctl(set, 0, GETVAL);
	v1 = semctl(set, 1, GETVAL);
	CHECK("counting", v0 == 5,
	      "B exited: the counting semaphore is %d (5 expected: B's adjustment +2 was not restored "
	      "as its own)", v0);
	CHECK("mixed", v1 == 7, "B exited: the mixed semaphore is %d (7 expected: B's adjustment +1 "
	      "was not restored as its own)", v1);
	CHECK("mixed", ends_ok(&c, "x"), "C did not exit");
	v1 = semctl(set, 1, GETVAL);
	CHECK("mixed", v1 == 5, "C exited: the mixed semaphore is %d (5 expected: C's adjustment -2 "
	      "was not restored as its own)", v1);
	semctl(set, 0, IPC_RMID);
	return zoo_finish("SEM_UNDO adjustments of three processes on two semaphores, each its own");
}
