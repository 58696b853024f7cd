/* policy pin for an https URL: needs the HTTPS transport. */
#include "cli.h"

int mg_cli_pin_url(const char *name, mg_digest_alg alg, const char *url)
{
    (void)name;
    (void)alg;
    (void)url;
    return mg_cli_usage("pinning an URL needs HTTPS support, which this build does not have yet");
}
