/* vdso-gone: vdso-moved, with the vDSO block unmapped instead of moved (see vdso-moved.c). */
#define VDSO_UNMAP 1
#include "vdso-moved.c"
