/*
 * Commands that stand on their own (no images to dump or restore).
 *
 * Both take the command's own arguments the way main() takes them: argv[0] is the command
 * name ("show", "check"), its arguments follow. They print to stdout, log errors with
 * pr_err() and return the process exit code (0 on success).
 */
#ifndef STASIS_COMMANDS_H
#define STASIS_COMMANDS_H

/* stasis show DIR|FILE...: every image as JSON. */
int cmd_show(int argc, char **argv);
/* stasis check: which kernel features this kernel has; nonzero if dump/restore cannot work. */
int cmd_check(int argc, char **argv);

#endif
