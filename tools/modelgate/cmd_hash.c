/* hash: sha256sum-style lines, "HEX  FILE". */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int mg_cmd_hash(int argc, char **argv)
{
    mg_digest_alg alg = MG_SHA256;
    int first = 1;
    if (argc > 2 && strcmp(argv[1], "-a") == 0) {
        if (strcmp(argv[2], "sha256") == 0)
            alg = MG_SHA256;
        else if (strcmp(argv[2], "sha512") == 0)
            alg = MG_SHA512;
        else
            return mg_cli_usage("-a takes sha256 or sha512");
        first = 3;
    }
    if (first < argc && strcmp(argv[first], "--") == 0)
        first++;
    if (first >= argc)
        return mg_cli_usage("modelgate hash [-a sha256|sha512] FILE...");
    int rc = 0;
    for (int i = first; i < argc; i++) {
        char hex[129];
        mg_error err;
        if (mg_hash_file(argv[i], alg, hex, &err) != MG_OK) {
            mg_cli_report(&err, false);
            if (rc == 0)
                rc = (int)err.status;
            continue;
        }
        /* As sha256sum does, a line whose name had to be escaped starts with a backslash. */
        const char *shown = mg_cli_esc(argv[i]);
        printf("%s%s  %s\n", strcmp(shown, argv[i]) != 0 ? "\\" : "", hex, shown);
    }
    return fflush(stdout) == 0 ? rc : MG_E_IO;
}
