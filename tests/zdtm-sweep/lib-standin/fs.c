#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>
#include "zdtmtst.h"
#include "fs.h"
mnt_info_t *mnt_info_alloc(void) { return calloc(1, sizeof(mnt_info_t)); }
void mnt_info_free(mnt_info_t **m) { free(*m); *m = NULL; }
mnt_info_t *get_cwd_mnt_info(void)
{
	char cwd[PATH_MAX], line[4096], mp[PATH_MAX], root[PATH_MAX], fs[64];
	int id, pid, maj, min;
	size_t best = 0;
	mnt_info_t *m = NULL;
	FILE *f;
	if (!getcwd(cwd, sizeof(cwd)) || !(f = fopen("/proc/self/mountinfo", "r"))) return NULL;
	while (fgets(line, sizeof(line), f)) {
		char *dash = strstr(line, " - ");
		size_t l;
		if (!dash || sscanf(line, "%d %d %d:%d %s %s", &id, &pid, &maj, &min, root, mp) != 6) continue;
		if (sscanf(dash + 3, "%63s", fs) != 1) continue;
		l = strlen(mp);
		if (strncmp(cwd, mp, l) || (cwd[l] != '/' && cwd[l] != 0 && l != 1)) continue;
		if (l < best) continue;
		best = l;
		if (!m) m = mnt_info_alloc();
		m->mnt_id = id; m->parent_mnt_id = pid; m->s_dev = MKKDEV(maj, min);
		strcpy(m->root, root); strcpy(m->mountpoint, mp); strcpy(m->fsname, fs);
	}
	fclose(f);
	return m;
}
int get_cwd_check_perm(char **result)
{
	char *cwd = get_current_dir_name();
	if (!cwd) { pr_perror("get_current_dir_name"); return -1; }
	if (access(cwd, X_OK)) { pr_err("access check for bit X for current dir path '%s' failed for uid:%d,gid:%d\n", cwd, getuid(), getgid()); free(cwd); return -1; }
	*result = cwd;
	return 0;
}
