/* A small io_uring of the zoo's own (no liburing), after zoo.h: made and mapped, one request
 * at a time. (io-uring.c lays out its rings itself: it tries the layouts libuv asks for.) */
#ifndef ZOO_URING_H
#define ZOO_URING_H

#include <linux/io_uring.h>
#include <sys/mman.h>

/* (linux/io_uring.h of 6.1 has them; older headers do not) */
#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif

struct zring {
	const char *name;
	int fd;
	struct io_uring_params p;
	uint8_t *ring;
	struct io_uring_sqe *sqes;
	volatile uint32_t *sqt, *cqh, *cqt;
};

/* r made with entries and flags, and mapped if map (an identity index array). */
static inline void zring_make(struct zring *r, unsigned entries, unsigned flags, int map)
{
	memset(&r->p, 0, sizeof(r->p));
	r->p.flags = flags;
	if ((r->fd = syscall(SYS_io_uring_setup, entries, &r->p)) < 0)
		zoo_die("io_uring_setup %s: %s", r->name, strerror(errno));
	if (!map)
		return;
	r->ring = mmap(NULL, r->p.cq_off.cqes + r->p.cq_entries * sizeof(struct io_uring_cqe), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQ_RING);
	r->sqes = mmap(NULL, r->p.sq_entries * sizeof(*r->sqes), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
		       r->fd, IORING_OFF_SQES);
	if (r->ring == MAP_FAILED || r->sqes == MAP_FAILED)
		zoo_die("mmap of io_uring %s: %s", r->name, strerror(errno));
	uint32_t *array = (uint32_t *)(r->ring + r->p.sq_off.array);
	for (unsigned i = 0; i < r->p.sq_entries; i++)
		array[i] = i;
	r->sqt = (uint32_t *)(r->ring + r->p.sq_off.tail);
	r->cqh = (uint32_t *)(r->ring + r->p.cq_off.head);
	r->cqt = (uint32_t *)(r->ring + r->p.cq_off.tail);
}

/* The number after key in r's fdinfo (UserBufs:, UserFiles:); its text from key on in at (of
 * len bytes), or -1 if it cannot be read. */
static inline long zring_fdinfo(const struct zring *r, const char *key, char *at, size_t len)
{
	char path[64], info[8192];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", r->fd);
	int fd = open(path, O_RDONLY), n = fd < 0 ? -1 : (int)read(fd, info, sizeof(info) - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return -1;
	info[n] = 0;
	const char *l = strstr(info, key);
	if (!l)
		return -1;
	snprintf(at, len, "%s", l);
	return strtol(l + strlen(key), NULL, 10);
}

/* The next entry of r, zeroed, for zring_run. */
static inline struct io_uring_sqe *zring_sqe(struct zring *r)
{
	struct io_uring_sqe *s = &r->sqes[*r->sqt & (r->p.sq_entries - 1)];
	memset(s, 0, sizeof(*s));
	return s;
}

/*
 * Submits the entry zring_sqe gave and waits for one completion, entering r by its fd or (index
 * >= 0) by that index of the calling thread's registered rings: 1 with the completion in *cqe
 * (read), else 0 with why in err (the entry taken back if the kernel did not take it).
 */
static inline int zring_run(struct zring *r, int index, struct io_uring_cqe *cqe, char *err, size_t len)
{
	uint32_t tail = *r->sqt, cq = *r->cqt;
	__atomic_store_n(r->sqt, tail + 1, __ATOMIC_RELEASE);
	long n = index < 0 ? syscall(SYS_io_uring_enter, r->fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0)
			   : syscall(SYS_io_uring_enter, index, 1, 1,
				     IORING_ENTER_REGISTERED_RING | IORING_ENTER_GETEVENTS, NULL, 0);
	if (n != 1) {
		*r->sqt = tail;
		snprintf(err, len, "io_uring %s (index %d): io_uring_enter %ld (%s)", r->name, index, n,
			 n < 0 ? strerror(errno) : "not taken");
		return 0;
	}
	if (__atomic_load_n(r->cqt, __ATOMIC_ACQUIRE) != cq + 1) {
		snprintf(err, len, "io_uring %s: completion tail %u, was %u", r->name, *r->cqt, cq);
		return 0;
	}
	*cqe = *(struct io_uring_cqe *)(r->ring + r->p.cq_off.cqes + (cq & (r->p.cq_entries - 1)) * sizeof(*cqe));
	__atomic_store_n(r->cqh, cq + 1, __ATOMIC_RELEASE);
	return 1;
}

#endif
