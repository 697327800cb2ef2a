/* futex/mutex helpers (stand-in for criu's zdtm lib/lock.h) */
#ifndef ZDTM_LOCK_H
#define ZDTM_LOCK_H
#include <stdint.h>
#include <limits.h>
#include <errno.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/futex.h>
#include <sys/time.h>
#include "zdtmtst.h"
#define BUG_ON(c) do { if (c) { test_msg("BUG at %s:%d\n", __FILE__, __LINE__); abort(); } } while (0)
typedef struct { uint32_t raw; } futex_t;
#define FUTEX_ABORT_FLAG (0x80000000)
#define FUTEX_ABORT_RAW (-1U)
static inline long sys_futex(uint32_t *addr1, int op, uint32_t val1, struct timespec *timeout, uint32_t *addr2, uint32_t val3)
{ return syscall(SYS_futex, addr1, op, val1, timeout, addr2, val3); }
/* criu's atomic_get on a futex's raw word (maps007 reads delta.raw) */
#define atomic_get(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
static inline uint32_t futex_get(futex_t *f) { return __atomic_load_n(&f->raw, __ATOMIC_SEQ_CST); }
static inline void futex_set(futex_t *f, uint32_t v) { __atomic_store_n(&f->raw, v, __ATOMIC_SEQ_CST); }
#define futex_init(f) futex_set(f, 0)
static inline void futex_wake_all(futex_t *f) { sys_futex(&f->raw, FUTEX_WAKE, INT_MAX, NULL, NULL, 0); }
static inline void futex_set_and_wake(futex_t *f, uint32_t v) { futex_set(f, v); futex_wake_all(f); }
static inline void futex_add_and_wake(futex_t *f, uint32_t v) { __atomic_add_fetch(&f->raw, v, __ATOMIC_SEQ_CST); futex_wake_all(f); }
static inline void futex_inc_and_wake(futex_t *f) { futex_add_and_wake(f, 1); }
static inline void futex_dec_and_wake(futex_t *f) { __atomic_sub_fetch(&f->raw, 1, __ATOMIC_SEQ_CST); futex_wake_all(f); }
static inline void futex_inc(futex_t *f) { __atomic_add_fetch(&f->raw, 1, __ATOMIC_SEQ_CST); }
static inline void futex_dec(futex_t *f) { __atomic_sub_fetch(&f->raw, 1, __ATOMIC_SEQ_CST); }
static inline void futex_abort_and_wake(futex_t *f) { futex_set_and_wake(f, FUTEX_ABORT_RAW); }
#define futex_wait_if_cond(__f, __v, __cond)                                        \
	do {                                                                        \
		uint32_t tmp;                                                       \
		while (1) {                                                         \
			struct timespec to = { .tv_sec = 120 };                     \
			tmp = futex_get(__f);                                       \
			if ((tmp & FUTEX_ABORT_FLAG) || !(tmp __cond (__v)))        \
				break;                                              \
			sys_futex(&(__f)->raw, FUTEX_WAIT, tmp, &to, NULL, 0);      \
		}                                                                   \
	} while (0)
#define futex_wait_until(f, v) futex_wait_if_cond(f, v, !=)
#define futex_wait_while_gt(f, v) futex_wait_if_cond(f, v, >)
#define futex_wait_while_lt(f, v) futex_wait_if_cond(f, v, <)
#define futex_wait_while_eq(f, v) futex_wait_if_cond(f, v, ==)
static inline int futex_wait_while(futex_t *f, uint32_t v)
{
	while (futex_get(f) == v)
		sys_futex(&f->raw, FUTEX_WAIT, v, NULL, NULL, 0);
	return futex_get(f);
}
typedef struct { uint32_t raw; } mutex_t;
static inline void mutex_init(mutex_t *m) { __atomic_store_n(&m->raw, 0, __ATOMIC_SEQ_CST); }
static inline void mutex_lock(mutex_t *m)
{
	uint32_t c;
	while ((c = __atomic_fetch_add(&m->raw, 1, __ATOMIC_SEQ_CST)))
		sys_futex(&m->raw, FUTEX_WAIT, c + 1, NULL, NULL, 0);
}
static inline void mutex_unlock(mutex_t *m)
{
	__atomic_store_n(&m->raw, 0, __ATOMIC_SEQ_CST);
	sys_futex(&m->raw, FUTEX_WAKE, 1, NULL, NULL, 0);
}
#endif
