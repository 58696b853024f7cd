/* PLACEHOLDER: replaced by the signatures work (sig.c owner). */
#include "sig.h"

#include <stdlib.h>

struct mg_sig_key {
    int unused;
};

mg_status mg_sig_key_from_pem(const uint8_t *pem, size_t len, mg_sig_key **out, mg_error *err)
{
    (void)pem;
    (void)len;
    *out = NULL;
    return mg_fail(err, MG_E_POLICY, "public keys are not supported yet");
}

mg_status mg_sig_key_from_minisign(const char *base64, mg_sig_key **out, mg_error *err)
{
    (void)base64;
    *out = NULL;
    return mg_fail(err, MG_E_POLICY, "minisign keys are not supported yet");
}

void mg_sig_key_free(mg_sig_key *key)
{
    free(key);
}

bool mg_sig_key_is_minisign(const mg_sig_key *key)
{
    (void)key;
    return false;
}

bool mg_sig_key_same(const mg_sig_key *a, const mg_sig_key *b)
{
    return a == b;
}

mg_status mg_sig_verify_raw(const mg_sig_key *key, const uint8_t *msg, size_t len,
                            const uint8_t *sig, size_t sig_len, mg_error *err)
{
    (void)key, (void)msg, (void)len, (void)sig, (void)sig_len;
    return mg_fail(err, MG_E_SIGNATURE, "signatures are not supported yet");
}

mg_status mg_sig_verify_minisig(const mg_sig_key *key, const uint8_t *msg, size_t len,
                                const uint8_t *minisig, size_t minisig_len, mg_error *err)
{
    (void)key, (void)msg, (void)len, (void)minisig, (void)minisig_len;
    return mg_fail(err, MG_E_SIGNATURE, "signatures are not supported yet");
}
