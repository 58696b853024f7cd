/* The modelgate command-line tool: one file per command, shared helpers here. */
#ifndef MG_CLI_H
#define MG_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "modelgate.h"

/* Each command gets argv without the program name: argv[0] is the command's name.
 * It returns the exit status of SPEC §5. */
int mg_cmd_hash(int argc, char **argv);
int mg_cmd_keygen(int argc, char **argv);
int mg_cmd_sign(int argc, char **argv);
int mg_cmd_verify(int argc, char **argv);
int mg_cmd_inspect(int argc, char **argv);
int mg_cmd_dump(int argc, char **argv);
int mg_cmd_fetch(int argc, char **argv);
int mg_cmd_policy(int argc, char **argv);

/* Print "modelgate: <kind>: <detail>" for an error (naming the model and file when known)
 * on stderr, or the JSON error object on stdout when `json`; returns err->status. */
int mg_cli_report(const mg_error *err, bool json);
/* A usage error: print "modelgate: usage: <msg>" and return 2. */
int mg_cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
