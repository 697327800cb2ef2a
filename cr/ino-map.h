/*
 * A map from inode numbers (or any nonzero 64-bit key) to an index, for lookups that must stay
 * constant-time when a tree holds tens of thousands of objects (sockets by inode, pairs by
 * id). Open addressing, at most half full; a zeroed struct is an empty map.
 */
#ifndef STASIS_INO_MAP_H
#define STASIS_INO_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ino_map {
	struct ino_map_slot {
		uint64_t key; /* 0: free */
		size_t value;
	} *slots;
	size_t mask, n;
};

/* Adds key (nonzero) with value: 1 if new, 0 if it was there (its value kept), -ENOMEM. */
int ino_map_add(struct ino_map *m, uint64_t key, size_t value);
/* key's value in *value (may be NULL): true if there. */
bool ino_map_get(const struct ino_map *m, uint64_t key, size_t *value);
void ino_map_free(struct ino_map *m);

#endif
