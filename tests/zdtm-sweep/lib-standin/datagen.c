/* stand-in data generator with a crc32 check (criu's zdtm lib datagen API) */
#include "zdtmtst.h"
static uint32_t crc_step(uint32_t crc, uint8_t b)
{
	crc ^= b;
	for (int i = 0; i < 8; i++) crc = (crc >> 1) ^ (0xEDB88320u & -(crc & 1));
	return crc;
}
void datagen2(uint8_t *buf, unsigned len, uint32_t *crc)
{
	for (unsigned i = 0; i < len; i++) { buf[i] = (uint8_t)mrand48(); *crc = crc_step(*crc, buf[i]); }
}
void datagen(uint8_t *buf, unsigned len, uint32_t *crc)
{
	uint32_t own = ~0u;

	if (!crc) /* the transition tests' loops want random data only */
		crc = &own;
	if (len < 4) return;
	datagen2(buf, len - 4, crc);
	memcpy(buf + len - 4, crc, 4);
}
int datasum(const uint8_t *buf, unsigned len, uint32_t *crc)
{
	for (unsigned i = 0; i < len; i++) *crc = crc_step(*crc, buf[i]);
	return 0;
}
int datachk(const uint8_t *buf, unsigned len, uint32_t *crc)
{
	uint32_t stored;
	if (len < 4) return 1;
	datasum(buf, len - 4, crc);
	memcpy(&stored, buf + len - 4, 4);
	return stored != *crc;
}
