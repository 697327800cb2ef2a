/*
 * The Internet checksum (RFC 1071) of packets made by hand: a running sum of 16-bit words,
 * folded and complemented at the end.
 */
#ifndef STASIS_CSUM_H
#define STASIS_CSUM_H

#include <stddef.h>
#include <stdint.h>

static inline uint32_t csum_add(uint32_t sum, const void *data, size_t len)
{
	const uint8_t *p = data;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (p[i] << 8) | p[i + 1];
	if (len & 1)
		sum += p[len - 1] << 8;
	return sum;
}

static inline uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

#endif
