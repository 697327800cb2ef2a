/*
 * write-bw: plain sequential write() speed into a directory, the reference
 * for dump speed.
 *
 *   write-bw DIR [MIB [CHUNK_MIB [RUNS]]]   (default 1024 MiB, 4 MiB chunks, best of 3)
 *
 * Writes MIB MiB to a new file in DIR with write() in CHUNK_MIB pieces from a
 * faulted-in, non-zero buffer, the way a dump writes its page images: into the
 * page cache, no fsync (not timed, not done). The file is deleted after each
 * run. Last line, for scripts:
 *   write_gbps=N.NNN              (GB/s, 1 GB = 1e9 bytes)
 */
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench-util.h"

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 5) {
		fprintf(stderr, "usage: %s DIR [MIB [CHUNK_MIB [RUNS]]]\n", argv[0]);
		return 2;
	}
	const char *dir = argv[1];
	unsigned long mib = argc > 2 ? parse_ulong(argv[0], "size in MiB", argv[2]) : 1024;
	unsigned long chunk_mib = argc > 3 ? parse_ulong(argv[0], "chunk size in MiB", argv[3]) : 4;
	unsigned long runs = argc > 4 ? parse_ulong(argv[0], "run count", argv[4]) : 3;
	size_t total = (size_t)mib << 20, chunk = (size_t)chunk_mib << 20;

	if (chunk > total)
		chunk = total;
	unsigned char *buf = mmap(NULL, chunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		perror("write-bw: mmap");
		return 1;
	}
	uint64_t *b64 = (uint64_t *)buf;
	for (size_t i = 0; i < chunk / sizeof(uint64_t); i++)
		b64[i] = pattern_word(i, 2);

	uint64_t best = UINT64_MAX;
	char path[PATH_MAX];

	for (unsigned long r = 0; r < runs; r++) {
		if (snprintf(path, sizeof(path), "%s/stasis-bench-write.XXXXXX", dir) >= (int)sizeof(path)) {
			fprintf(stderr, "write-bw: path too long\n");
			return 1;
		}
		int fd = mkstemp(path);
		if (fd < 0) {
			fprintf(stderr, "write-bw: create in %s: %s\n", dir, strerror(errno));
			return 1;
		}

		uint64_t t0 = now_ns();
		size_t done = 0;
		while (done < total) {
			size_t want = total - done < chunk ? total - done : chunk;
			ssize_t n = write(fd, buf, want);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				fprintf(stderr, "write-bw: write %s: %s\n", path,
					n < 0 ? strerror(errno) : "wrote nothing");
				close(fd);
				unlink(path);
				return 1;
			}
			done += (size_t)n;
		}
		uint64_t dt = now_ns() - t0;

		close(fd);
		if (unlink(path))
			fprintf(stderr, "write-bw: unlink %s: %s\n", path, strerror(errno));
		if (dt < best)
			best = dt;
	}

	double gbps = (double)total / (double)best;
	printf("write() %lu MiB in %lu MiB chunks to %s, no fsync, best of %lu: %.1f ms, %.2f GB/s\n",
	       mib, chunk_mib, dir, runs, (double)best / 1e6, gbps);
	printf("write_gbps=%.3f\n", gbps);
	return 0;
}
