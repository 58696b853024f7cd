/* The modelgate command-line tool: one file per command, shared helpers here. */
#ifndef MG_CLI_H
#define MG_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
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

/* `s` (text from a file, a policy or the command line) escaped for human-readable output
 * (util/escape.h: control, C1 and bidi characters, bytes that are not UTF-8). The result
 * stays valid for the next 7 calls; never NULL. */
const char *mg_cli_esc(const char *s);
/* A JSON string (new reference) for such text: `s` itself when it is UTF-8, else its
 * escaped form; NULL only when out of memory. */
struct json_t *mg_cli_json_text(const char *s);
/* Set by main before a command runs: --json was given (usage errors are then reported as the
 * JSON error object too). The tool is single-threaded; this is its only global switch. */
extern bool mg_cli_json;

/* Print "modelgate: <kind>: <detail>" for an error (naming the model and file when known)
 * on stderr, and the JSON error object on stdout when `json`; returns the exit status. */
int mg_cli_report(const mg_error *err, bool json);
/* The same with a hint appended (what to do next); `hint` may be NULL or empty. */
int mg_cli_report_hint(const mg_error *err, bool json, const char *hint);
/* A failure described by the tool itself (no library error): status, model/file may be NULL. */
int mg_cli_fail(mg_status status, bool json, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A usage error: print "modelgate: usage: <msg>" (and the JSON error object under --json);
 * returns 2. */
int mg_cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The usage text of a command ("verify", "policy pin", ...) or NULL. */
const char *mg_cli_usage_text(const char *command);

/* Print a JSON document on stdout (compact, one line); returns 0 or the exit status. */
struct json_t;
int mg_cli_print_json(struct json_t *doc);
/* The JSON error object of SPEC §5 with every field (null when unknown): status, kind,
 * message, model, file, algorithm, expected, actual, hint. `message` NULL: err->message. */
struct json_t *mg_cli_error_json(const mg_error *err, const char *message, const char *hint);

/* Options shared by the model commands: -p/--policy, --policy-key, --json, -q. */
typedef struct mg_cli_opts {
    const char *policy;
    const char *policy_key;
    bool json;
    bool quiet;
    const char *pos[8];
    int npos;
} mg_cli_opts;

/* Long-option codes of the shared options, above any short option character. */
enum { MG_OPT_POLICY_KEY = 256, MG_OPT_JSON, MG_OPT_FIRST_FREE };
#define MG_CLI_COMMON_LONGOPTS                                                               \
    {"policy", required_argument, NULL, 'p'}, {"policy-key", required_argument, NULL,        \
                                                MG_OPT_POLICY_KEY},                          \
        {"json", no_argument, NULL, MG_OPT_JSON}, {"quiet", no_argument, NULL, 'q'}
/* Short options every command that takes them spells the same way. */
#define MG_CLI_COMMON_SHORTOPTS "p:q"

/* Handle one option returned by getopt_long if it is a shared one; true when it was. */
bool mg_cli_common_option(int c, mg_cli_opts *o);
/* The usage error for getopt_long's '?' or ':' result. */
int mg_cli_bad_option(int c, char **argv, const char *command);

/* Parse argv[1..] into `o` (GNU style: options anywhere, --opt=value, -- ends options),
 * requiring min_pos..max_pos operands; returns 0 or the usage exit status (printed). */
int mg_cli_parse_common(int argc, char **argv, mg_cli_opts *o, int min_pos, int max_pos,
                        const char *command);
/* Open the policy of `o`; returns 0 or the exit status (error and hint printed). */
int mg_cli_open_policy(const mg_cli_opts *o, mg_policy **pol);

typedef enum mg_cli_action { MG_CLI_VERIFY, MG_CLI_LOAD, MG_CLI_FETCH } mg_cli_action;

/* Open the policy of `o` and verify, load or fetch o->pos[0] with a progress line; on
 * failure the error is reported, nothing is left open, and the exit status is returned. */
int mg_cli_open_model(const mg_cli_opts *o, mg_cli_action action, mg_policy **pol,
                      mg_model **m);

/* Progress on a terminal (bytes, rate, ETA on stderr, redrawn in place): nothing when quiet
 * or when stderr is not a terminal. `label` names the work ("hashing", "verifying"). */
void mg_cli_progress_begin(mg_load_options *opts, bool quiet, const char *label);
/* Report progress directly (for work the tool does itself, such as hash). */
void mg_cli_progress_update(uint64_t done, uint64_t total);
void mg_cli_progress_end(void);

/* ---- hints: what to do next (hints.c) ---- */

/* The hint for a policy that could not be opened, from where the tool looked. */
void mg_cli_policy_hint(const mg_cli_opts *o, const mg_error *err, char *out, size_t cap);
/* The hint for a source not in the policy: the closest names, or the resolved path. */
void mg_cli_untrusted_hint(const mg_policy *pol, const char *source, char *out, size_t cap);
/* "did you mean" for a tensor name that is not in the model. */
void mg_cli_tensor_hint(const mg_model *m, const char *name, char *out, size_t cap);
/* Edit distance (bytes), capped: returns cap+1 when larger. */
size_t mg_cli_distance(const char *a, const char *b, size_t cap);

/* Hash an open file with progress on a terminal (`what` names it in errors); `size` (may be
 * NULL) receives the bytes read. */
mg_status mg_cli_hash_fd(int fd, const char *what, mg_digest_alg alg, bool quiet, char hex[129],
                         uint64_t *size, mg_error *err);

/* One line of a sha256sum/sha512sum list (hash -c, policy pin --sums): GNU "HEX  NAME" or
 * "HEX *NAME" (a leading backslash marks an escaped name), or BSD "SHA256 (NAME) = HEX". */
typedef struct sums_line {
    mg_digest_alg alg;
    char hex[129]; /* lower case */
    char name[4096];
} sums_line;
bool mg_cli_parse_sums_line(const char *line, size_t len, sums_line *out);

/* Read a whole text file (or `-`), capped at 64 MiB; `*out` is NUL-terminated, malloc'd. */
int mg_cli_read_text(const char *path, char **out, size_t *len, bool json);

/* What `policy pin` was asked for (tools/modelgate/cmd_policy.c parses it). */
typedef struct mg_pin_request {
    const char *name;
    mg_digest_alg alg;
    const char *target;
    const char *ca_file;
    const char *sums;       /* --sums FILE: digests from a published list */
    const char **ignore;    /* --ignore PATTERN... */
    size_t ignore_count;
    bool json;
    bool quiet;
} mg_pin_request;

/* policy pin for a local file, folder or hub snapshot (tools/modelgate/pin_local.c). */
int mg_cli_pin_local(const mg_pin_request *req);

/* policy pin for an URL (tools/modelgate/pin_url.c). */
/* `ca_file` NULL: $SSL_CERT_FILE, else the system store. */
int mg_cli_pin_url(const char *name, mg_digest_alg alg, const char *url, const char *ca_file,
                   bool json, bool quiet);
/* policy pin for an oci:// reference (tools/modelgate/pin_url.c). */
int mg_cli_pin_oci(const char *name, const char *ref, const char *ca_file, const char *policy_path);

#endif
