/* modelgate keygen [-t ed25519|ecdsa-p256|rsa-3072] [--json] [-q] -o PREFIX */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

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
        {"json", no_argument, NULL, MG_OPT_JSON},
        {"quiet", no_argument, NULL, 'q'},
        {NULL, 0, NULL, 0},
    };
    optind = 1;
    opterr = 0;
    int c;
    bool json = false, quiet = false;
    while ((c = getopt_long(argc, argv, ":t:o:q", longopts, NULL)) != -1) {
        switch (c) {
        case 't': type = optarg; break;
        case 'o': prefix = optarg; break;
        case 'q': quiet = true; break;
        case MG_OPT_JSON: json = true; break;
        default: return mg_cli_bad_option(c, argv, "keygen");
        }
    }
    if (prefix == NULL)
        return mg_cli_usage("-o PREFIX is required; %s", mg_cli_usage_text("keygen"));
    if (optind != argc)
        return mg_cli_usage("extra operand '%.64s'; %s", argv[optind], mg_cli_usage_text("keygen"));
    mg_error err;
    mg_error_clear(&err);
    if (mg_keygen(type, prefix, &err) != MG_OK)
        return mg_cli_report(&err, json);
    if (quiet)
        return 0;
    if (json) {
        json_t *doc = json_object();
        json_object_set_new(doc, "ok", json_true());
        json_object_set_new(doc, "type", json_string(type));
        json_object_set_new(doc, "private_key", json_sprintf("%s.key", prefix));
        json_object_set_new(doc, "public_key", json_sprintf("%s.pub", prefix));
        int rc = mg_cli_print_json(doc);
        json_decref(doc);
        return rc;
    }
    printf("%s.key (private, keep secret)\n%s.pub (public: name it in the policy's keys)\n",
           mg_cli_esc(prefix), mg_cli_esc(prefix));
    return 0;
}
