/*
 * Commands that stand on their own (no images to dump or restore).
 *
 * show takes its own arguments the way main() takes them (argv[0] is "show"); check takes
 * the parsed options. They print to stdout, log errors with pr_err() and return the process
 * exit code (0 on success).
 */
#ifndef STASIS_COMMANDS_H
#define STASIS_COMMANDS_H

/* stasis show DIR|FILE...: every image as JSON. */
int cmd_show(int argc, char **argv);
/*
 * stasis check: which kernel features this kernel has; nonzero if dump/restore cannot work.
 * With --feature NAME: criu's answer for that name (nonzero if not supported or unknown).
 */
struct stasis_opts;
int cmd_check(const struct stasis_opts *o);

#endif
