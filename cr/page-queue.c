#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "page-queue.h"
#include "util.h"

static void *writer_main(void *arg)
{
	struct page_queue *q = arg;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		while (q->tail == q->head && !q->done)
			pthread_cond_wait(&q->cond, &q->lock);
		if (q->tail == q->head)
			break;
		unsigned i = q->tail % PQ_NR_BUFFERS;
		pthread_mutex_unlock(&q->lock);
		int err = q->write(q->arg, q->bufs[i], q->fill[i]);
		pthread_mutex_lock(&q->lock);
		if (err && !q->error)
			q->error = err;
		q->fill[i] = 0;
		q->tail++;
		pthread_cond_broadcast(&q->cond);
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

/*
 * One buffer first: a process whose pages fit in it (most of a tree's, often) is written by
 * the caller at pq_finish, with no thread started and no other buffer allocated for it.
 */
int pq_start(struct page_queue *q, pq_write_fn write, void *arg, size_t buf_size)
{
	*q = (struct page_queue){ .write = write, .arg = arg, .buf_size = buf_size };
	if (posix_memalign((void **)&q->bufs[0], PAGE_SIZE, buf_size)) {
		pr_err("out of memory: %zu bytes for a page buffer", buf_size);
		return -ENOMEM;
	}
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
	return 0;
}

/* The other buffers and the writer, when the first buffer is full; 0 or a negative errno. */
static int start_writer(struct page_queue *q)
{
	int err;

	for (int i = 1; i < PQ_NR_BUFFERS; i++) {
		if (posix_memalign((void **)&q->bufs[i], PAGE_SIZE, q->buf_size)) {
			pr_err("out of memory: %zu bytes for a page buffer", q->buf_size);
			return -ENOMEM;
		}
	}
	if ((err = -pthread_create(&q->writer, NULL, writer_main, q))) {
		pr_err("cannot start the thread that writes pages: %s", strerror(-err));
		return err;
	}
	q->writer_started = true;
	return 0;
}

/* The caller writes the current buffer itself (the writer could not be started). */
static void write_here(struct page_queue *q)
{
	unsigned i = q->head % PQ_NR_BUFFERS;
	int err = q->error ? 0 : q->write(q->arg, q->bufs[i], q->fill[i]);

	if (err)
		q->error = err;
	q->fill[i] = 0;
}

/* Hands the current buffer to the writer and waits until the next one is free. */
static void pq_submit(struct page_queue *q)
{
	int err;

	if (!q->writer_started && !q->error && (err = start_writer(q)))
		q->error = err;
	if (!q->writer_started) {
		write_here(q);
		return;
	}
	pthread_mutex_lock(&q->lock);
	q->head++;
	pthread_cond_broadcast(&q->cond);
	while (q->head - q->tail >= PQ_NR_BUFFERS)
		pthread_cond_wait(&q->cond, &q->lock);
	pthread_mutex_unlock(&q->lock);
}

char *pq_reserve(struct page_queue *q, size_t len)
{
	unsigned i = q->head % PQ_NR_BUFFERS;

	if (q->fill[i] + len > q->buf_size) {
		pq_submit(q);
		i = q->head % PQ_NR_BUFFERS;
	}
	return q->bufs[i] + q->fill[i];
}

void pq_commit(struct page_queue *q, size_t len)
{
	q->fill[q->head % PQ_NR_BUFFERS] += len;
}

int pq_finish(struct page_queue *q)
{
	if (!q->writer_started) {
		if (q->fill[q->head % PQ_NR_BUFFERS])
			write_here(q);
	} else {
		if (q->fill[q->head % PQ_NR_BUFFERS])
			pq_submit(q);
		pthread_mutex_lock(&q->lock);
		q->done = true;
		pthread_cond_broadcast(&q->cond);
		pthread_mutex_unlock(&q->lock);
		pthread_join(q->writer, NULL);
	}
	for (int i = 0; i < PQ_NR_BUFFERS; i++)
		free(q->bufs[i]);
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->cond);
	return q->error;
}
