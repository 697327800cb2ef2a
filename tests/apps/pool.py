"""A Python multiprocessing pool (4 worker processes; pipes, semaphores in /dev/shm, threads in
the parent) squaring numbers, started the way given (argv[2]: fork, spawn or forkserver, the
default of Python 3.14 on Linux: workers forked by a server process over a unix socket). The
workers count their results in a shared Value (multiprocessing's heap: a deleted /dev/shm file
opened O_NOFOLLOW, mapped by every process). Every 100 results the running sum goes to the
file given (argv[1]); at 1500 results the program checks the sum and the shared count itself
and writes PASS or FAIL."""
import multiprocessing as mp, sys, time
def init(c):
    global counter
    counter = c
def work(n):
    time.sleep(0.01)
    with counter.get_lock():
        counter.value += 1
    return n * n
if __name__ == "__main__":
    mp.set_start_method(sys.argv[2] if len(sys.argv) > 2 else "fork")
    out = open(sys.argv[1], "w", buffering=1)
    done = mp.Value("i", 0)
    with mp.Pool(4, initializer=init, initargs=(done,)) as pool:
        total, i = 0, 0
        for r in pool.imap(work, range(100000)):
            total += r; i += 1
            if i % 100 == 0:
                out.write(f"{i} {total}\n")
            if i == 1500:
                break
        counted = done.value
    exp = sum(n*n for n in range(1500))
    ok = total == exp and counted >= 1500
    out.write(("PASS" if ok else "FAIL") + f" sum {total} (expected {exp}), the workers counted {counted}\n")
