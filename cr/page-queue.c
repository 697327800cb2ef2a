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
		int err = write_all(q->fd, q->bufs[i], q->fill[i]) ? -errno : 0;
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

int pq_start(struct page_queue *q, int fd, size_t buf_size)
{
	int err;

	*q = (struct page_queue){ .fd = fd, .buf_size = buf_size };
	for (int i = 0; i < PQ_NR_BUFFERS; i++) {
		if (posix_memalign((void **)&q->bufs[i], PAGE_SIZE, buf_size)) {
			pr_err("out of memory: %zu bytes for a page buffer", buf_size);
			err = -ENOMEM;
			goto fail;
		}
	}
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
	if ((err = -pthread_create(&q->writer, NULL, writer_main, q))) {
		pr_err("cannot start the thread that writes pages: %s", strerror(-err));
		pthread_mutex_destroy(&q->lock);
		pthread_cond_destroy(&q->cond);
		goto fail;
	}
	return 0;
fail:
	for (int i = 0; i < PQ_NR_BUFFERS; i++)
		free(q->bufs[i]);
	return err;
}

/* Hands the current buffer to the writer and waits until the next one is free. */
static void pq_submit(struct page_queue *q)
{
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
	if (q->fill[q->head % PQ_NR_BUFFERS])
		pq_submit(q);
	pthread_mutex_lock(&q->lock);
	q->done = true;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
	pthread_join(q->writer, NULL);
	for (int i = 0; i < PQ_NR_BUFFERS; i++)
		free(q->bufs[i]);
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->cond);
	return q->error;
}
