/* orphan-group-session: orphan-group with only the group led in S's session (see there). */
#define SESSION_ONLY 1
#include "orphan-group.c"
