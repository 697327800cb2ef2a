/* The command line: criu's option table (runtime-hook/cli-options.c). */
#ifndef STASIS_CLI_H
#define STASIS_CLI_H

#include <stdbool.h>

#include "options.h"

/* Defaults, as criu has them. */
void cli_opts_init(struct stasis_opts *o);
/* The lists and arrays options gave o (the command line, the RPC's, configuration files). */
void cli_opts_free(struct stasis_opts *o);
/*
 * Every option of argv into o; the words that are not options (the verb and its arguments)
 * are moved to the end, from *first_word on. Says what is wrong; -EINVAL for a bad option.
 */
int cli_parse(struct stasis_opts *o, int argc, char **argv, int *first_word);
/* A criu configuration file into o; a missing file is fine unless must_exist. */
int cli_parse_config(struct stasis_opts *o, const char *path, bool must_exist);

#endif
