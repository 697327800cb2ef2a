/*
 * rlimit-full: a process at its address-space and data limits. Its soft RLIMIT_AS is its
 * size and its soft RLIMIT_DATA its private writable memory, rounded up to a page (hard
 * limits unlimited), so that no new mapping fits: a one-page mmap fails with ENOMEM before
 * READY. Its 2 MiB of data hold a pattern.
 * After restore and SIGTERM: the same limits (soft and hard), a one-page mmap still fails
 * with ENOMEM, the data is intact; once the soft limits are raised, the mmap works.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <sys/mman.h>
#include <sys/resource.h>

#define DATA_LEN (2 << 20)

static unsigned char *data;
static struct rlimit as_set, data_set;

/* A VmSize-style field of /proc/self/status, in bytes. */
static unsigned long long status_bytes(const char *field)
{
	char buf[4096], *at;
	unsigned long long kb = 0;
	if (zoo_read_file("/proc/self/status", buf, sizeof(buf)) <= 0 || !(at = strstr(buf, field)) ||
	    sscanf(at + strlen(field), " %llu", &kb) != 1)
		zoo_die("/proc/self/status: no %s", field);
	return kb << 10;
}

/* Does a one-page private mapping fit? */
static int page_fits(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return errno == ENOMEM ? 0 : -1;
	munmap(p, 4096);
	return 1;
}

static void c_limit(ucontext_t *u)
{
	(void)u;
	struct rlimit r = { as_set.rlim_cur + (1 << 20), RLIM_INFINITY };
	setrlimit(RLIMIT_AS, &r);
}
static void c_data(ucontext_t *u) { (void)u; data[DATA_LEN / 3] ^= 1; }

static const struct zoo_corruption corruptions[] = {
	{ "limit", c_limit, 0 },
	{ "data", c_data, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	data = mmap(NULL, DATA_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (data == MAP_FAILED)
		zoo_die("mmap: %s", strerror(errno));
	zoo_fill(data, DATA_LEN, 17);
	as_set = (struct rlimit){ status_bytes("VmSize:"), RLIM_INFINITY };
	data_set = (struct rlimit){ status_bytes("VmData:"), RLIM_INFINITY };
	if (setrlimit(RLIMIT_AS, &as_set) || setrlimit(RLIMIT_DATA, &data_set))
		zoo_die("setrlimit: %s", strerror(errno));
	if (page_fits() != 0)
		zoo_die("a page still fits under RLIMIT_AS %llu", (unsigned long long)as_set.rlim_cur);
	zoo_ready();
	zoo_wait();

	struct rlimit as, dt;
	getrlimit(RLIMIT_AS, &as);
	getrlimit(RLIMIT_DATA, &dt);
	CHECK("limit", as.rlim_cur == as_set.rlim_cur && as.rlim_max == as_set.rlim_max &&
			       dt.rlim_cur == data_set.rlim_cur && dt.rlim_max == data_set.rlim_max,
	      "limits AS %llu/%llu DATA %llu/%llu, were %llu/%llu %llu/%llu", (unsigned long long)as.rlim_cur,
	      (unsigned long long)as.rlim_max, (unsigned long long)dt.rlim_cur, (unsigned long long)dt.rlim_max,
	      (unsigned long long)as_set.rlim_cur, (unsigned long long)as_set.rlim_max,
	      (unsigned long long)data_set.rlim_cur, (unsigned long long)data_set.rlim_max);
	CHECK("limit", page_fits() == 0, "a page fits under the limits again (or mmap failed otherwise)");
	CHECK("data", zoo_check_fill(data, DATA_LEN, 17) < 0, "the data differs");
	struct rlimit up = { RLIM_INFINITY, RLIM_INFINITY };
	CHECK("limit", !setrlimit(RLIMIT_AS, &up) && !setrlimit(RLIMIT_DATA, &up) && page_fits() == 1,
	      "no page fits with the limits raised");
	return zoo_finish("at its address-space and data limits");
}
