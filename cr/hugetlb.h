/*
 * Huge pages of the kernel's pool (vm.nr_hugepages and its sizes; memory of hugetlbfs): the
 * size a mapping's or an object's pages have, and the flags that ask for that size again.
 */
#ifndef STASIS_HUGETLB_H
#define STASIS_HUGETLB_H

#include <stdbool.h>
#include <stdint.h>

/* The name /proc/PID/maps gives MAP_HUGETLB memory (private or shared). */
#define HUGETLB_ANON_PATH "/anon_hugepage (deleted)"

/* The size of the huge pages of the file at path (statfs; a /proc/PID/map_files or fd link
 * too), or 0 when it is not a file of hugetlbfs. */
uint64_t hugetlb_page_size_of(const char *path);
/* A size of huge pages this machine has a pool of (/sys/kernel/mm/hugepages). */
bool hugetlb_size_known(uint64_t size);
/* The bits that name size in mmap's MAP_HUGE_*, memfd_create's MFD_HUGE_* and shmget's
 * SHM_HUGE_* flags (all three the same: log2 of the size, shifted by 26). */
unsigned long hugetlb_size_bits(uint64_t size);

#endif
