/* PLACEHOLDER: replaced by the owner of the fetch command. */
#include "cli.h"

int mg_cmd_fetch(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return mg_cli_usage("fetch is not available in this build");
}
