/*
 * modelgate-parse: the confined parser helper. libmodelgate starts it (installed in
 * libexec/modelgate) to parse verified model files out of the loader's process; it is not
 * meant to be run by hand. See src/sandbox_child.h for what it does and its protocol.
 */
#include "sandbox_child.h"
#include "zip_loader.h"

int main(int argc, char **argv)
{
    return mg_sandbox_helper_main(argc, argv, mg_helper_load_zip);
}
