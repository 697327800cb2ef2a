/*
 * vdso-clock: the vDSO keeps working after restore.
 *   While waiting, the program reads CLOCK_MONOTONIC through glibc (the vDSO) every 5 ms and
 *   checks that it never goes backwards. After SIGTERM: the vDSO is still at the address in
 *   AT_SYSINFO_EHDR, still the [vdso] mapping, r-x, with the same bytes as before; vDSO
 *   clock_gettime (MONOTONIC, REALTIME, BOOTTIME, MONOTONIC_RAW, *_COARSE), gettimeofday and
 *   time agree with the real system calls.
 * Blocks in: nanosleep (5 ms steps).
 */
#include "zoo.h"
#include <sys/auxv.h>
#include <sys/time.h>

static unsigned long vdso_base, vdso_len;
static unsigned char vdso_copy[64 * 1024];
static uint64_t last_mono, backwards, readings;

static void c_monotonic(ucontext_t *u)
{
	(void)u;
	last_mono += 3600ull * 1000000000ull;
}
static void c_vdso(ucontext_t *u)
{
	(void)u;
	/* one byte of the ELF header padding, written like a debugger would (the page is COWed,
	 * the clock functions keep working) */
	unsigned char b = ((volatile unsigned char *)vdso_base)[12] ^ 0x55;
	int fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	if (fd < 0 || pwrite(fd, &b, 1, (off_t)vdso_base + 12) != 1)
		zoo_die("cannot write the vDSO through /proc/self/mem: %s", strerror(errno));
	close(fd);
}
static const struct zoo_corruption corruptions[] = {
	{ "monotonic", c_monotonic, 0 },
	{ "vdso", c_vdso, 0 },
};

static uint64_t ts_ns(const struct timespec *ts)
{
	return (uint64_t)ts->tv_sec * 1000000000ull + (uint64_t)ts->tv_nsec;
}

static void mono_step(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t now = ts_ns(&ts);
	if (now < last_mono)
		backwards++;
	last_mono = now;
	readings++;
}

static void check_clock(clockid_t clk, const char *name, uint64_t tolerance_ns)
{
	struct timespec a, v, b;
	syscall(SYS_clock_gettime, clk, &a);
	int r = clock_gettime(clk, &v);
	syscall(SYS_clock_gettime, clk, &b);
	if (!CHECK("clock", r == 0, "clock_gettime(%s): %s", name, strerror(errno)))
		return;
	CHECK("clock", ts_ns(&a) <= ts_ns(&v) + tolerance_ns && ts_ns(&v) <= ts_ns(&b) + tolerance_ns,
	      "vDSO %s = %lld.%09ld is not between the syscall readings %lld.%09ld and %lld.%09ld", name,
	      (long long)v.tv_sec, v.tv_nsec, (long long)a.tv_sec, a.tv_nsec, (long long)b.tv_sec, b.tv_nsec);
}

int main(int argc, char **argv)
{
	unsigned long s, e;
	char perms[8];

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	vdso_base = getauxval(AT_SYSINFO_EHDR);
	if (!vdso_base)
		zoo_die("no AT_SYSINFO_EHDR");
	if (zoo_find_map("[vdso]", &s, &e, perms) < 0 || s != vdso_base)
		zoo_die("[vdso] is not at AT_SYSINFO_EHDR %#lx", vdso_base);
	vdso_len = e - s;
	if (vdso_len > sizeof(vdso_copy))
		zoo_die("vdso too big");
	memcpy(vdso_copy, (void *)vdso_base, vdso_len);
	mono_step();

	zoo_ready();
	while (!zoo_term) {
		struct timespec ts = { 0, 5 * 1000 * 1000 };
		nanosleep(&ts, NULL);
		mono_step();
	}
	uint64_t before_verify = readings;
	zoo_begin_verify();

	/* vdso placement and content */
	if (CHECK("vdso", zoo_find_map("[vdso]", &s, &e, perms) == 0, "no [vdso] mapping")) {
		CHECK("vdso", s == vdso_base && e - s == vdso_len, "[vdso] is %#lx-%#lx, was %#lx-%#lx", s, e, vdso_base,
		      vdso_base + vdso_len);
		CHECK("vdso", !strcmp(perms, "r-xp"), "[vdso] permissions are %s", perms);
		CHECK("vdso", getauxval(AT_SYSINFO_EHDR) == vdso_base, "AT_SYSINFO_EHDR changed");
		if (s == vdso_base && e - s == vdso_len)
			CHECK("vdso", !memcmp((void *)vdso_base, vdso_copy, vdso_len), "the vDSO's bytes changed");
	}
	CHECK("vdso", zoo_find_map("[vvar]", &s, &e, NULL) == 0 && e <= vdso_base, "[vvar] is missing or misplaced");

	/* monotonic, across the checkpoint */
	mono_step();
	CHECK("monotonic", backwards == 0, "CLOCK_MONOTONIC went backwards %lu times in %lu readings",
	      (unsigned long)backwards, (unsigned long)readings);
	CHECK("monotonic", readings > before_verify && readings >= 3, "too few readings (%lu)", (unsigned long)readings);

	/* vDSO against the system calls */
	check_clock(CLOCK_MONOTONIC, "CLOCK_MONOTONIC", 10000);
	check_clock(CLOCK_MONOTONIC_RAW, "CLOCK_MONOTONIC_RAW", 10000);
	check_clock(CLOCK_BOOTTIME, "CLOCK_BOOTTIME", 10000);
	check_clock(CLOCK_REALTIME, "CLOCK_REALTIME", 1000000);
	check_clock(CLOCK_MONOTONIC_COARSE, "CLOCK_MONOTONIC_COARSE", 20000000);
	check_clock(CLOCK_REALTIME_COARSE, "CLOCK_REALTIME_COARSE", 20000000);

	struct timeval tv;
	struct timespec rt;
	gettimeofday(&tv, NULL);
	syscall(SYS_clock_gettime, CLOCK_REALTIME, &rt);
	int64_t d = (int64_t)ts_ns(&rt) - ((int64_t)tv.tv_sec * 1000000000ll + tv.tv_usec * 1000ll);
	CHECK("clock", d >= -1000000 && d < 1000000000ll, "gettimeofday is %lld ns off", (long long)d);
	time_t t = time(NULL);
	CHECK("clock", t >= rt.tv_sec - 1 && t <= rt.tv_sec + 1, "time() = %lld, syscall says %lld", (long long)t,
	      (long long)rt.tv_sec);

	return zoo_finish(NULL);
}
