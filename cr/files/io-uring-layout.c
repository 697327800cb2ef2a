/* The layout of an io_uring instance's memory (io-uring-layout.h says what it is). */
#include "io-uring-layout.h"

#define LAYOUT_PAGE 4096u

static size_t pages_of(size_t bytes)
{
	return (bytes + LAYOUT_PAGE - 1) / LAYOUT_PAGE;
}

size_t io_uring_array_offset(uint32_t cq, size_t cqe_size)
{
	return (IO_URING_CQES * (cqe_size / 16) + (size_t)cq * cqe_size + 63) & ~(size_t)63;
}

size_t io_uring_ring_bytes(uint32_t sq, uint32_t cq, size_t cqe_size, bool array)
{
	return io_uring_array_offset(cq, cqe_size) + (array ? (size_t)sq * 4 : 0);
}

bool io_uring_nonzero(const uint8_t *p, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		if (p[i])
			return true;
	return false;
}

size_t io_uring_completion_size(const uint8_t *ring, size_t ring_pages, uint32_t sq, uint32_t cq)
{
	bool fits[2]; /* 16, 32 bytes */
	for (int i = 0; i < 2; i++) {
		size_t size = 16u << i;
		fits[i] = pages_of(io_uring_ring_bytes(sq, cq, size, true)) == ring_pages ||
			  pages_of(io_uring_ring_bytes(sq, cq, size, false)) == ring_pages;
	}
	if (fits[0] != fits[1])
		return fits[0] ? 16 : 32;
	size_t end = io_uring_ring_bytes(sq, cq, 32, true), have = ring_pages * LAYOUT_PAGE;
	return io_uring_nonzero(ring, io_uring_ring_bytes(sq, cq, 16, true), end < have ? end : have) ? 32 : 16;
}

size_t io_uring_submission_size(const uint8_t *sqes, size_t sqe_pages, uint32_t sq)
{
	if (sqe_pages != pages_of((size_t)sq * 64))
		return 128;
	if (sqe_pages != pages_of((size_t)sq * 128))
		return 64;
	return io_uring_nonzero(sqes, (size_t)sq * 64, (size_t)sq * 128) ? 128 : 64;
}
