/* PLACEHOLDER: replaced by the owner of the keygen command. */
#include "cli.h"

int mg_cmd_keygen(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return mg_cli_usage("keygen is not available in this build");
}
