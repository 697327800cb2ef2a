/*
 * The layout of an io_uring instance's memory as the kernel makes it, and what tells its
 * setup from the memory alone (cr/files/io-uring.c measures the regions and reads them).
 *
 * The ring region is struct io_rings: a 64-byte header (its counters and masks), the
 * completions from IO_URING_CQES (16 bytes each; 32 with IORING_SETUP_CQE32, which doubles
 * the header's size in the kernel's arithmetic too), then, aligned to 64 bytes, the
 * submission ring's index array of 4-byte entries (none with IORING_SETUP_NO_SQARRAY). The
 * entries' region holds the submission entries, 64 bytes each (128 with IORING_SETUP_SQE128).
 */
#ifndef STASIS_IO_URING_LAYOUT_H
#define STASIS_IO_URING_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IO_URING_CQES 64 /* where the completions start in the ring region */

/* Where the index array starts with cq completions of cqe_size bytes. */
size_t io_uring_array_offset(uint32_t cq, size_t cqe_size);
/* The ring region's bytes for sq entries and cq completions of cqe_size bytes, with the
 * index array or without it. */
size_t io_uring_ring_bytes(uint32_t sq, uint32_t cq, size_t cqe_size, bool array);
/* Whether any of bytes [from, to) of p is not zero. */
bool io_uring_nonzero(const uint8_t *p, size_t from, size_t to);
/*
 * The size of a ring's completions, 16 or 32, from its ring region (ring_pages pages of it at
 * ring): the layouts whose size takes that many pages, else what the region holds (with 16-byte
 * completions nothing lies past the index array: the kernel writes nothing there, nor does the
 * process; with 32-byte ones the completions past the first half of the ring and the array lie
 * there). A ring of 32-byte completions without an array that never posted past its first half
 * is not told from one of 16-byte completions: taken for one.
 */
size_t io_uring_completion_size(const uint8_t *ring, size_t ring_pages, uint32_t sq, uint32_t cq);
/* The size of its submission entries, 64 or 128, from the entries' region (sqe_pages pages of
 * it at sqes): its pages, else whether anything lies past sq entries of 64 bytes. */
size_t io_uring_submission_size(const uint8_t *sqes, size_t sqe_pages, uint32_t sq);

#endif
