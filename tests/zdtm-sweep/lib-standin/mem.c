/* stand-in for criu's zdtm lib: the device of a mapping, from /proc/self/maps */
#include <stdio.h>
#include <stdlib.h>
#include <sys/sysmacros.h>
#include "zdtmtst.h"

dev_t get_mapping_dev(void *addr)
{
	unsigned long start = (unsigned long)addr;
	char line[1024];
	dev_t dev = (dev_t)-1;
	FILE *maps;

	maps = fopen("/proc/self/maps", "r");
	if (!maps) {
		pr_perror("can't open /proc/self/maps");
		return (dev_t)-1;
	}
	while (fgets(line, sizeof(line), maps)) {
		unsigned long from, to;
		unsigned int major, minor;

		if (sscanf(line, "%lx-%lx %*s %*x %x:%x", &from, &to, &major, &minor) != 4)
			continue;
		if (from == start) {
			dev = makedev(major, minor);
			break;
		}
	}
	fclose(maps);
	return dev;
}
