/* modelgate: verified loading of model weights from trusted sources. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
} commands[] = {
    {"hash", mg_cmd_hash},       {"keygen", mg_cmd_keygen}, {"sign", mg_cmd_sign},
    {"verify", mg_cmd_verify},   {"inspect", mg_cmd_inspect}, {"dump", mg_cmd_dump},
    {"fetch", mg_cmd_fetch},     {"policy", mg_cmd_policy},
};

#define COMMON "[-p POLICY] [--policy-key KEY] [--json] [-q]"

/* One usage line per command, and the summary `modelgate --help` prints. */
static const struct {
    const char *command;
    const char *usage;
    const char *summary;
} usages[] = {
    {"hash", "modelgate hash [-a sha256|sha512] [--tag] [--json] [-q] [FILE|-]...\n"
             "       modelgate hash -c [--json] [-q] [SUMS|-]",
     "print or check SHA-256/512 digests, as sha256sum does"},
    {"keygen", "modelgate keygen [-t ed25519|ecdsa-p256|rsa-3072] [--json] [-q] -o PREFIX",
     "make a signing key pair: PREFIX.key and PREFIX.pub"},
    {"sign", "modelgate sign -k KEY [-n NAME] [-V VERSION] [--expires TIME] [-a sha256|sha512]\n"
             "               [--shard-size BYTES] [--add] [--json] [-q] DIR\n"
             "       modelgate sign --format oms -k KEY [--shard-size BYTES] [--json] [-q] DIR",
     "write DIR/manifest.json and sign it (--add: co-sign it)"},
    {"verify", "modelgate verify " COMMON " SOURCE", "verify a model's files against the policy"},
    {"inspect", "modelgate inspect " COMMON " SOURCE",
     "verify and parse a model; list its files and tensors"},
    {"dump", "modelgate dump [-p POLICY] [--policy-key KEY] [-o FILE|-] [-q] SOURCE TENSOR",
     "verify, load, and write one tensor's bytes (little-endian, C order)"},
    {"fetch", "modelgate fetch " COMMON " SOURCE",
     "download and verify a model into the policy's cache_dir"},
    {"policy check", "modelgate policy check [-p POLICY] [--policy-key KEY] [--json] [-q]",
     "validate a policy and list every problem"},
    {"policy list", "modelgate policy list [-p POLICY] [--policy-key KEY] [--json] [-q]",
     "list the models a policy names (name, kind, source)"},
    {"policy pin", "modelgate policy pin [-n NAME] [-a sha256|sha512] [--ignore PATTERN]...\n"
                   "       [--sums FILE] [--ca-file PEM] [--json] [-q] PATH|URL\n"
                   "       modelgate policy pin [-n NAME] [-p POLICY] [--ca-file PEM] "
                   "oci://HOST/REPO:TAG",
     "print a policy entry pinning a file, folder, hub snapshot, URL or OCI artifact"},
    {"help", "modelgate help [COMMAND]", "show the usage of a command"},
};

const char *mg_cli_usage_text(const char *command)
{
    for (size_t i = 0; i < sizeof usages / sizeof usages[0]; i++) {
        if (strcmp(usages[i].command, command) == 0)
            return usages[i].usage;
    }
    return "modelgate COMMAND [ARGS] (see modelgate --help)";
}

static void usage(FILE *out)
{
    fputs("usage: modelgate COMMAND [ARGS]\n\ncommands:\n", out);
    for (size_t i = 0; i < sizeof usages / sizeof usages[0]; i++)
        fprintf(out, "  %-13s %s\n", usages[i].command, usages[i].summary);
    fputs("\nSOURCE is a model name from the policy or its exact source. The policy is\n"
          "-p/--policy FILE, else $MODELGATE_POLICY, else /etc/modelgate/policy.json.\n"
          "'modelgate help COMMAND' or 'modelgate COMMAND --help' shows a command's options.\n"
          "\nexit status: 0 ok, 1 integrity, 2 usage, 3 policy, 4 untrusted source,\n"
          "  5 signature/manifest, 6 unsafe or malformed file, 7 I/O or network, 8 limit\n",
          out);
}

/* A command's help on stdout: its usage lines. */
static int command_help(const char *command)
{
    if (strcmp(command, "policy") == 0) {
        printf("usage: %s\n       %s\n       %s\n", mg_cli_usage_text("policy check"),
               mg_cli_usage_text("policy list"), mg_cli_usage_text("policy pin"));
        return 0;
    }
    for (size_t i = 0; i < sizeof usages / sizeof usages[0]; i++) {
        if (strcmp(usages[i].command, command) == 0) {
            printf("usage: %s\n\n%s.\n", usages[i].usage, usages[i].summary);
            return 0;
        }
    }
    return mg_cli_usage("no command named '%.64s'; modelgate --help lists them", command);
}

/* -h/--help before `--` anywhere among a command's words, and --json likewise. */
static bool has_word(int argc, char **argv, const char *a, const char *b)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return false;
        if (strcmp(argv[i], a) == 0 || (b != NULL && strcmp(argv[i], b) == 0))
            return true;
    }
    return false;
}

int main(int argc, char **argv)
{
    /* Under a file-size limit (ulimit -f) a write past it would kill the tool by SIGXFSZ with
     * no message; ignored, the write fails with EFBIG, which the library reports as an I/O
     * error (exit 7) like any other. */
    signal(SIGXFSZ, SIG_IGN);
    if (argc < 2) {
        usage(stderr);
        return MG_E_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("modelgate %s\n", mg_version());
        return 0;
    }
    if (strcmp(cmd, "help") == 0) {
        if (argc == 2) {
            usage(stdout);
            return 0;
        }
        char both[64];
        if (argc == 4 && strcmp(argv[2], "policy") == 0) {
            snprintf(both, sizeof both, "policy %.20s", argv[3]);
            return command_help(both);
        }
        if (argc > 3)
            return mg_cli_usage("%s", mg_cli_usage_text("help"));
        return command_help(argv[2]);
    }
    mg_cli_json = has_word(argc - 1, argv + 1, "--json", NULL);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(cmd, commands[i].name) != 0)
            continue;
        if (has_word(argc - 1, argv + 1, "-h", "--help")) {
            if (strcmp(cmd, "policy") == 0 && argc > 2 &&
                (strcmp(argv[2], "check") == 0 || strcmp(argv[2], "pin") == 0 ||
                 strcmp(argv[2], "list") == 0)) {
                char both[32];
                snprintf(both, sizeof both, "policy %s", argv[2]);
                return command_help(both);
            }
            return command_help(cmd);
        }
        return commands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "modelgate: usage: unknown command '%.64s'\n", mg_cli_esc(cmd));
    usage(stderr);
    return MG_E_USAGE;
}
