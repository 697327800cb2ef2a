"""A Python multiprocessing pool (4 worker processes; pipes, a semaphore in /dev/shm, threads
in the parent) squaring numbers: every 100 results the running sum goes to the file given,
and at 1500 results the program checks the sum itself and writes PASS or FAIL."""
import multiprocessing as mp, os, sys, time, signal
def work(n):
    time.sleep(0.01)
    return n * n
if __name__ == "__main__":
    out = open(sys.argv[1], "w", buffering=1)
    with mp.Pool(4) as pool:
        total, i = 0, 0
        for r in pool.imap(work, range(100000)):
            total += r; i += 1
            if i % 100 == 0:
                out.write(f"{i} {total}\n")
            if i == 1500:
                break
    exp = sum(n*n for n in range(1500))
    out.write(("PASS" if total == exp else "FAIL") + f" {total} {exp}\n")
