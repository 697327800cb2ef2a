/* pid-ns-unshared: pid-ns-nested with its root keeping the new namespace for its children (see there). */
#define NO_SETNS_BACK 1
#include "pid-ns-nested.c"
