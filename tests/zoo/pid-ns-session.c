/* pid-ns-session: pid-ns-nested with its init in a session of its own (see there). */
#define OWN_SESSION 1
#include "pid-ns-nested.c"
