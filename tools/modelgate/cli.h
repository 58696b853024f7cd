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

/* Options shared by the model commands: -p/--policy, --policy-key, --json, -q. */
typedef struct mg_cli_opts {
    const char *policy;
    const char *policy_key;
    bool json;
    bool quiet;
    const char *pos[8];
    int npos;
} mg_cli_opts;

/* Parse argv[1..] into `o`, requiring min_pos..max_pos positional words; returns 0 or the
 * usage exit status (message printed). */
int mg_cli_parse_common(int argc, char **argv, mg_cli_opts *o, int min_pos, int max_pos,
                        const char *usage);
/* Open the policy of `o`; returns 0 or the exit status (error printed). */
int mg_cli_open_policy(const mg_cli_opts *o, mg_policy **pol);

typedef enum mg_cli_action { MG_CLI_VERIFY, MG_CLI_LOAD, MG_CLI_FETCH } mg_cli_action;

/* Open the policy of `o` and verify, load or fetch o->pos[0] with a progress line; on
 * failure the error is reported, nothing is left open, and the exit status is returned. */
int mg_cli_open_model(const mg_cli_opts *o, mg_cli_action action, mg_policy **pol,
                      mg_model **m);

/* Progress line on a terminal for long hashing (nothing when quiet or not a terminal). */
void mg_cli_progress_begin(mg_load_options *opts, bool quiet);
void mg_cli_progress_end(void);

/* policy pin for an URL (tools/modelgate/pin_url.c). */
/* `ca_file` NULL: $SSL_CERT_FILE, else the system store. */
int mg_cli_pin_url(const char *name, mg_digest_alg alg, const char *url, const char *ca_file);
/* policy pin for an oci:// reference (tools/modelgate/pin_url.c). */
int mg_cli_pin_oci(const char *name, const char *ref, const char *ca_file, const char *policy_path);

#endif
