/*
 * criu's `check --feature NAME` names, answered for this engine on this kernel: a name is
 * supported when stasis does what it stands for and the kernel has what that needs. A
 * kernel feature alone is not enough (the kernel may track dirty pages while stasis has no
 * pre-dump yet): engines use the answers to decide what to ask for.
 */
#ifndef STASIS_KERNEL_CRIU_FEATURES_H
#define STASIS_KERNEL_CRIU_FEATURES_H

#include <stddef.h>

/* The names, in criu's order (then the few more that engines ask criu for). */
size_t criu_feature_count(void);
const char *criu_feature_name(size_t i);

/*
 * 1 if supported; 0 if not, with a sentence saying why in why[len]; -ENOENT for a name
 * criu does not know either. Probes the kernel feature behind the name once.
 */
int criu_feature_check(const char *name, char *why, size_t len);

#endif
