/*
 * kmsg-reader: a reader of the kernel's log (/dev/kmsg, fd 60, as dmesg -w holds it) that has
 * read every record: it logs "zoo-kmsg-before PID" (fd 61, opened for writing) and reads up to
 * it. Its place in the log is its open file's, not an offset.
 * After restore and SIGTERM: it logs "zoo-kmsg-after PID" and reads what is new: that record
 * comes, and "zoo-kmsg-before PID" does not come again (a reader put back at the oldest record
 * reads the whole log again).
 * Host only (a container's /dev has no /dev/kmsg to write to).
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"

static char before[64], after[64];

/* Reads fd 60's records until none is left: bit 1 if one held a, bit 2 if one held b; -1 if a
 * read failed. */
static int read_until_empty(const char *a, const char *b)
{
	char rec[8192];
	int seen = 0;

	for (;;) {
		ssize_t n = read(60, rec, sizeof(rec) - 1);
		if (n < 0 && errno == EPIPE)
			continue; /* (records overwritten meanwhile) */
		if (n < 0)
			return errno == EAGAIN ? seen : -1;
		rec[n] = 0;
		seen |= (strstr(rec, a) != NULL) | (b && strstr(rec, b) != NULL) << 1;
	}
}

/* put back at the oldest record, as a restore ignoring its place would leave it */
static void c_place(ucontext_t *u) { (void)u; lseek(60, 0, SEEK_SET); }

static const struct zoo_corruption corruptions[] = { { "place", c_place, 0 } };

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	snprintf(before, sizeof(before), "zoo-kmsg-before %d\n", getpid());
	snprintf(after, sizeof(after), "zoo-kmsg-after %d\n", getpid());
	int r = open("/dev/kmsg", O_RDONLY | O_NONBLOCK), w = open("/dev/kmsg", O_WRONLY);
	if (r < 0 || w < 0)
		zoo_die("open /dev/kmsg: %s", strerror(errno));
	zoo_place(r, 60, 0);
	zoo_place(w, 61, 0);
	if (write(61, before, strlen(before)) < 0)
		zoo_die("write /dev/kmsg: %s", strerror(errno));
	if (read_until_empty(before, NULL) != 1)
		zoo_die("the record '%s' was not read back", before);

	zoo_ready();
	zoo_wait();

	CHECK("write", write(61, after, strlen(after)) > 0, "cannot log '%s': %s", after, strerror(errno));
	int seen = read_until_empty(before, after);
	CHECK("read", seen >= 0 && (seen & 2), "the record '%s' logged now was not read (%d)", after, seen);
	CHECK("place", seen >= 0 && !(seen & 1), "'%s' was read again: the reader's place in the log is lost",
	      before);
	return zoo_finish("a /dev/kmsg reader at the log's end");
}
