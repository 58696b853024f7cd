/* PLACEHOLDER: replaced by the npz parser. */
#include "format/format.h"

static bool probe(const uint8_t *data, size_t len)
{
    (void)data;
    (void)len;
    return false;
}

static mg_status parse(const uint8_t *data, size_t len, mg_parse_result *out, mg_error *err)
{
    (void)data;
    (void)len;
    (void)out;
    return mg_fail(err, MG_E_FORMAT, "npz: not supported");
}

const mg_format mg_format_npz = {"npz", probe, parse};
