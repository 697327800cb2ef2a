/* orphan-zombie-session: orphan-session with the orphan a zombie (see there). */
#define ZOMBIE_ORPHAN 1
#include "orphan-session.c"
