/*
 * sem-undo-host: a SysV semaphore of the host's IPC namespace used as a lock with SEM_UNDO, as
 * Apache's accept mutex ("Mutex sysvsem") is: an IPC_PRIVATE set of one semaphore (value 1);
 * a holder child takes it (semop -1, SEM_UNDO) and keeps it (blocked reading a pipe), a waiter
 * child waits to take it likewise (blocked in semop). The dump kills both and the kernel gives
 * back what the holder took; the restored holder must hold it again, with the kernel's
 * adjustment again (cr/ipc-host-sem.c).
 * After restore and SIGTERM: the semaphore is still taken (value 0) with the waiter waiting
 * (semncnt 1). The holder lets it go (+1, SEM_UNDO); the waiter takes it, lets it go and exits
 * (value 1). Then the holder exits, not holding it: its adjustment must be 0 (the value stays
 * 1; an adjustment lost at the restore makes it 0, the lock held by nobody). The parent then
 * takes and lets it go; the set is removed at the end.
 * Blocks in: nanosleep (parent), read (holder), semtimedop (waiter).
 */
#include "zoo.h"
#include <sys/sem.h>
#include <sys/wait.h>

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
};

static int set = -1;

static int sem_op(int op, int flags)
{
	struct sembuf b = { .sem_num = 0, .sem_op = op, .sem_flg = SEM_UNDO | flags };
	int r;
	while ((r = semop(set, &b, 1)) < 0 && errno == EINTR)
		;
	return r;
}

/* the lock given back behind the holder's back (as the kernel does when the holder dies) */
static void c_released(ucontext_t *uc)
{
	(void)uc;
	semctl(set, 0, SETVAL, (union semun){ .val = 1 });
}

/* (done in main, before the holder exits: its adjustment made -1, as with none restored) */
static void c_adjustment(ucontext_t *uc)
{
	(void)uc;
}

static const struct zoo_corruption corruptions[] = {
	{ "held", c_released, 0 },
	{ "adjustment", c_adjustment, 0 },
};

static void read_byte(int fd)
{
	char c;
	while (read(fd, &c, 1) < 0 && errno == EINTR)
		;
}

/* Takes the lock, then on each byte: lets it go (SEM_UNDO), then exits. */
static void holder(int go)
{
	signal(SIGTERM, SIG_DFL);
	if (sem_op(-1, 0))
		_exit(3);
	read_byte(go);
	if (sem_op(1, 0))
		_exit(4);
	read_byte(go);
	_exit(0);
}

static void waiter(void)
{
	signal(SIGTERM, SIG_DFL);
	if (sem_op(-1, 0))
		_exit(2);
	_exit(sem_op(1, 0) ? 3 : 0);
}

static int exited_ok(pid_t pid)
{
	int status = -1;
	return waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int main(int argc, char **argv)
{
	int go[2];

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	if ((set = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600)) < 0 ||
	    semctl(set, 0, SETVAL, (union semun){ .val = 1 }))
		zoo_die("semget: %s", strerror(errno));
	if (pipe(go))
		zoo_die("pipe: %s", strerror(errno));
	pid_t held_by = fork();
	if (held_by < 0)
		zoo_die("fork: %s", strerror(errno));
	if (held_by == 0) {
		close(go[1]);
		holder(go[0]);
	}
	close(go[0]);
	for (int i = 0; i < 200 && semctl(set, 0, GETVAL) != 0; i++)
		zoo_sleep_ms(10);
	if (semctl(set, 0, GETVAL) != 0 || semctl(set, 0, GETPID) != held_by)
		zoo_die("the holder does not hold the semaphore");
	pid_t kid = fork();
	if (kid < 0)
		zoo_die("fork: %s", strerror(errno));
	if (kid == 0)
		waiter();
	for (int i = 0; i < 200 && semctl(set, 0, GETNCNT) != 1; i++)
		zoo_sleep_ms(10);
	if (semctl(set, 0, GETNCNT) != 1)
		zoo_die("the waiter does not wait on the semaphore");
	zoo_ready();
	zoo_wait();
	zoo_begin_verify();

	int value = semctl(set, 0, GETVAL), waiting = semctl(set, 0, GETNCNT);
	CHECK("held", value == 0 && waiting == 1,
	      "the semaphore the holder holds has value %d, %d waiting (0 and the waiter expected)", value, waiting);
	if (write(go[1], "r", 1) != 1)
		zoo_die("write: %s", strerror(errno));
	CHECK("held", exited_ok(kid), "the waiter did not take and let go the semaphore");
	value = semctl(set, 0, GETVAL);
	CHECK("held", value == 1, "after the waiter took it and let it go the semaphore has value %d (1 expected)", value);
	if (zoo_corr && zoo_corr->fn == c_adjustment) {
		struct sembuf b = { .sem_num = 0, .sem_op = -1, .sem_flg = 0 };
		semop(set, &b, 1);
	}
	if (write(go[1], "x", 1) != 1)
		zoo_die("write: %s", strerror(errno));
	CHECK("adjustment", exited_ok(held_by), "the holder did not let go the semaphore and exit");
	value = semctl(set, 0, GETVAL);
	CHECK("adjustment", value == 1,
	      "after the holder, not holding it, exited the semaphore has value %d (1 expected: its "
	      "SEM_UNDO adjustment was not restored)", value);
	CHECK("adjustment", sem_op(-1, IPC_NOWAIT) == 0 && sem_op(1, 0) == 0,
	      "the semaphore cannot be taken and let go: %s", strerror(errno));
	value = semctl(set, 0, GETVAL);
	CHECK("adjustment", value == 1, "at the end the semaphore has value %d (1 expected)", value);
	semctl(set, 0, IPC_RMID);
	return zoo_finish("a host semaphore held with SEM_UNDO, a waiter on it, the holder's adjustment");
}
