/*
 * stats-dump and stats-restore: what a run measured, in the file engines read (Podman's
 * --print-stats, checkpointctl): two magic numbers, a length, one stats_entry message
 * (proto/stats.proto), little-endian. Times in the file are microseconds.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "faces.h"
#include "log.h"
#include "stats.pb-c.h"
#include "util.h"

#define STATS_MAGIC_SERVICE 0x55105940u
#define STATS_MAGIC_STATS 0x57093306u

static uint32_t clamp32(uint64_t v)
{
	return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

static void display(const struct run_ctx *ctx, bool restore)
{
	const struct run_stats *s = &ctx->stats;

	if (restore) {
		printf("Displaying restore stats:\n  forking time: %.3f s\n  restore time: %.3f s\n"
		       "  pages restored: %llu\n",
		       s->forking_us / 1e6, s->restore_us / 1e6, (unsigned long long)s->pages_restored);
		return;
	}
	printf("Displaying dump stats:\n  freezing time: %.3f s\n  frozen time: %.3f s\n"
	       "  memory dump time: %.3f s\n  memory write time: %.3f s\n  pages scanned: %llu\n"
	       "  pages written: %llu\n",
	       s->freezing_us / 1e6, s->frozen_us / 1e6, s->memdump_us / 1e6, s->memwrite_us / 1e6,
	       (unsigned long long)s->pages_scanned, (unsigned long long)s->pages_written);
}

void stats_file_write(const struct run_ctx *ctx, bool restore)
{
	const struct run_stats *s = &ctx->stats;
	const char *name = restore ? "stats-restore" : "stats-dump";
	DumpStatsEntry dump = DUMP_STATS_ENTRY__INIT;
	RestoreStatsEntry rst = RESTORE_STATS_ENTRY__INIT;
	StatsEntry entry = STATS_ENTRY__INIT;
	uint8_t buf[512]; /* a few numbers (at most 21 fields of 11 bytes): nothing to allocate after
			   * the run went through */
	size_t len;
	int fd;

	if (restore) {
		rst.forking_time = clamp32(s->forking_us);
		rst.restore_time = clamp32(s->restore_us);
		rst.has_pages_restored = true;
		rst.pages_restored = s->pages_restored;
		entry.restore = &rst;
	} else {
		dump.freezing_time = clamp32(s->freezing_us);
		dump.frozen_time = clamp32(s->frozen_us);
		dump.memdump_time = clamp32(s->memdump_us);
		dump.memwrite_time = clamp32(s->memwrite_us);
		dump.pages_scanned = s->pages_scanned;
		dump.pages_written = s->pages_written;
		entry.dump = &dump;
	}
	if (ctx->opts->display_stats)
		display(ctx, restore);
	len = stats_entry__get_packed_size(&entry);
	if (12 + len > sizeof(buf))
		return;
	uint32_t head[3] = { STATS_MAGIC_SERVICE, STATS_MAGIC_STATS, (uint32_t)len };
	memcpy(buf, head, sizeof(head)); /* x86_64: already little-endian */
	stats_entry__pack(&entry, buf + 12);
	fd = openat(ctx->work_dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		    0600);
	if (fd < 0 || write_all(fd, buf, 12 + len))
		pr_warn("cannot write %s in the work directory: %m", name);
	if (fd >= 0)
		close(fd);
}
