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

static void usage(FILE *out)
{
    fputs("usage: modelgate COMMAND [ARGS]\n"
          "  hash [-a sha256|sha512] FILE...\n"
          "  keygen [-t ed25519|ecdsa-p256|rsa-3072] -o PREFIX\n"
          "  sign -k KEY [-n NAME] [-V VERSION] [--expires TIME] [-a sha256|sha512]\n"
          "       [--shard-size BYTES] DIR\n"
          "  sign --format oms -k KEY [--shard-size BYTES] DIR\n"
          "  verify  [-p POLICY] [--json] [-q] SOURCE\n"
          "  inspect [-p POLICY] [--json] [-q] SOURCE\n"
          "  dump    [-p POLICY] [-q] SOURCE TENSOR\n"
          "  fetch   [-p POLICY] [-q] SOURCE\n"
          "  policy check [-p POLICY]\n"
          "  policy pin [-n NAME] [-a sha256|sha512] PATH|URL\n"
          "exit status: 0 ok, 1 integrity, 2 usage, 3 policy, 4 untrusted source,\n"
          "  5 signature/manifest, 6 unsafe or malformed file, 7 I/O or network, 8 limit\n",
          out);
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
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("modelgate %s\n", mg_version());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "modelgate: usage: unknown command '%.64s'\n", mg_cli_esc(argv[1]));
    usage(stderr);
    return MG_E_USAGE;
}
