/* A map from nonzero 64-bit keys to indexes (ino-map.h). */
#include <errno.h>
#include <stdlib.h>

#include "ino-map.h"
#include "util.h"

static struct ino_map_slot *slot_of(const struct ino_map *m, uint64_t key)
{
	size_t i = (key * 0x9e3779b97f4a7c15ull >> 20) & m->mask;

	while (m->slots[i].key && m->slots[i].key != key)
		i = (i + 1) & m->mask;
	return &m->slots[i];
}

int ino_map_add(struct ino_map *m, uint64_t key, size_t value)
{
	if (2 * (m->n + 1) > (m->slots ? m->mask + 1 : 0)) {
		size_t size = m->slots ? 2 * (m->mask + 1) : 256;
		struct ino_map bigger = { xzalloc(size * sizeof(*m->slots)), size - 1, m->n };
		if (!bigger.slots)
			return -ENOMEM;
		for (size_t i = 0; m->slots && i <= m->mask; i++)
			if (m->slots[i].key)
				*slot_of(&bigger, m->slots[i].key) = m->slots[i];
		free(m->slots);
		*m = bigger;
	}
	struct ino_map_slot *at = slot_of(m, key);
	if (at->key)
		return 0;
	*at = (struct ino_map_slot){ key, value };
	m->n++;
	return 1;
}

bool ino_map_get(const struct ino_map *m, uint64_t key, size_t *value)
{
	if (!m->slots || !key)
		return false;
	const struct ino_map_slot *at = slot_of(m, key);
	if (at->key && value)
		*value = at->value;
	return at->key != 0;
}

void ino_map_free(struct ino_map *m)
{
	free(m->slots);
	*m = (struct ino_map){ 0 };
}
