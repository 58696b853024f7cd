/* PLACEHOLDER: replaced by the signed-manifest work (manifest.c owner). */
#include "manifest.h"

#include <string.h>

bool mg_manifest_is_own_file(const char *path)
{
    return strncmp(path, MG_MANIFEST_NAME, strlen(MG_MANIFEST_NAME)) == 0;
}

mg_status mg_manifest_verify(const struct mg_policy *pol, const mg_policy_model *entry,
                             const uint8_t *data, size_t len, const mg_sig_input *sigs,
                             size_t sig_count, mg_manifest *out, mg_error *err)
{
    (void)pol, (void)entry, (void)data, (void)len, (void)sigs, (void)sig_count;
    memset(out, 0, sizeof *out);
    return mg_fail(err, MG_E_SIGNATURE, "signed manifests are not supported yet");
}

mg_status mg_manifest_store_version(const struct mg_policy *pol, const mg_policy_model *entry,
                                    uint64_t version, mg_error *err)
{
    (void)pol, (void)entry, (void)version, (void)err;
    return MG_OK;
}

void mg_manifest_free(mg_manifest *m)
{
    (void)m;
}
