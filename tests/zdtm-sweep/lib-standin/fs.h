/* stand-in for criu's zdtm lib fs.h: mount info of the cwd */
#ifndef ZDTM_FS_H
#define ZDTM_FS_H
#include <sys/types.h>
#include <sys/sysmacros.h>
#include <limits.h>
#define KDEV_MINORBITS 20
#define KDEV_MINORMASK ((1UL << KDEV_MINORBITS) - 1)
#define MKKDEV(ma, mi) (((ma) << KDEV_MINORBITS) | (mi))
static inline unsigned int kdev_major(unsigned int kdev) { return kdev >> KDEV_MINORBITS; }
static inline unsigned int kdev_minor(unsigned int kdev) { return kdev & KDEV_MINORMASK; }
static inline dev_t kdev_to_odev(unsigned int kdev) { return makedev(kdev_major(kdev), kdev_minor(kdev)); }
typedef struct {
	int mnt_id;
	int parent_mnt_id;
	unsigned int s_dev;
	char root[PATH_MAX];
	char mountpoint[PATH_MAX];
	char fsname[64];
} mnt_info_t;
extern mnt_info_t *mnt_info_alloc(void);
extern void mnt_info_free(mnt_info_t **m);
extern mnt_info_t *get_cwd_mnt_info(void);
extern int get_cwd_check_perm(char **result);
#endif
