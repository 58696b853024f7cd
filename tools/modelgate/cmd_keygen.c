/* modelgate keygen [-t ed25519|ecdsa-p256|rsa-3072] -o PREFIX */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "internal.h"
#include "keys.h"

int mg_cmd_keygen(int argc, char **argv)
{
    const char *type = "ed25519";
    const char *prefix = NULL;
    static const struct option longopts[] = {
        {"type", required_argument, NULL, 't'},
        {"output", required_argument, NULL, 'o'},
        {NULL, 0, NULL, 0},
    };
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "+t:o:", longopts, NULL)) != -1) {
        switch (c) {
        case 't': type = optarg; break;
        case 'o': prefix = optarg; break;
        default: return mg_cli_usage("keygen [-t ed25519|ecdsa-p256|rsa-3072] -o PREFIX");
        }
    }
    if (prefix == NULL || optind != argc)
        return mg_cli_usage("keygen [-t ed25519|ecdsa-p256|rsa-3072] -o PREFIX");
    mg_error err;
    mg_error_clear(&err);
    if (mg_keygen(type, prefix, &err) != MG_OK)
        return mg_cli_report(&err, false);
    printf("%s.key (private, keep secret)\n%s.pub (public: name it in the policy's keys)\n",
           mg_cli_esc(prefix), mg_cli_esc(prefix));
    return 0;
}
