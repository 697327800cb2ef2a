/*
 * spin-count FILE: counts as fast as it can and writes each count to FILE (20 digits and a
 * newline, at offset 0), never sleeping. A probe for the tests: two reads of FILE that differ
 * prove it ran in between; equal ones, that it did not run one loop.
 */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char line[32];
	unsigned long long n = 0;
	int fd;

	if (argc != 2 || (fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
		fprintf(stderr, "usage: spin-count FILE (FILE writable)\n");
		return 2;
	}
	for (;;) {
		int len = snprintf(line, sizeof(line), "%020llu\n", ++n);
		if (pwrite(fd, line, len, 0) != len)
			return 1;
	}
}
