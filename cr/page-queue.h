/*
 * A queue of page buffers between the thread that reads a frozen task's memory and a writer
 * thread that appends them to the pages image (or sends them to the page server), so that
 * reading and writing use both cores. The writer starts when the first buffer is full: the
 * pages of a smaller process are written by the caller at the end.
 */
#ifndef STASIS_PAGE_QUEUE_H
#define STASIS_PAGE_QUEUE_H

#include <pthread.h>
#include <stddef.h>

#define PQ_NR_BUFFERS 4

/* Writes len bytes in order: 0, or a negative errno. */
typedef int (*pq_write_fn)(void *arg, const void *buf, size_t len);

struct page_queue {
	pq_write_fn write;
	void *arg;
	size_t buf_size;
	char *bufs[PQ_NR_BUFFERS];
	size_t fill[PQ_NR_BUFFERS];
	unsigned head, tail; /* buffers [tail, head) are queued for the writer; head is filled */
	bool done;
	int error;           /* first write error (negative errno) */
	pthread_t writer;
	bool writer_started; /* once a second buffer is needed */
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

int pq_start(struct page_queue *q, pq_write_fn write, void *arg, size_t buf_size);
/* Room for len (<= buf_size) bytes at the end of the current buffer. */
char *pq_reserve(struct page_queue *q, size_t len);
/* The first len bytes of the last reservation are to be written. */
void pq_commit(struct page_queue *q, size_t len);
/* Writes everything queued, stops the writer; returns the first error. */
int pq_finish(struct page_queue *q);

#endif
