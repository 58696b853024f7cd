/* PLACEHOLDER: replaced by the owner of the sign command. */
#include "cli.h"

int mg_cmd_sign(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return mg_cli_usage("sign is not available in this build");
}
