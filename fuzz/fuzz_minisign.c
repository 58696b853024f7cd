/* libFuzzer harness: minisign public key strings, .minisig files and PEM public keys.
 * The whole input is tried as a .minisig (against the trust.md §2.5 key and message, so the
 * parser reaches the key-id and signature checks) and as a PEM key; its first line as a
 * minisign key string. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char vector_key[] = "RWSdwHV5pZ07TVoo+JFdi1zf0RD/C+Ibwlj6k11+ro55skOFy6YxKgk6";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mg_error err;
    mg_sig_key *key = NULL;
    if (mg_sig_key_from_minisign(vector_key, &key, &err) != MG_OK)
        abort();
    mg_status st = mg_sig_verify_minisig(key, (const uint8_t *)"hello\n", 6, data, size, &err);
    if (st != MG_OK && st != MG_E_SIGNATURE)
        abort(); /* any input is a valid or an invalid signature, never another failure */

    size_t line = 0;
    while (line < size && line < 128 && data[line] != '\n')
        line++;
    char text[129];
    memcpy(text, data, line);
    text[line] = '\0';
    mg_sig_key *k2 = NULL;
    if (mg_sig_key_from_minisign(text, &k2, &err) == MG_OK) {
        (void)mg_sig_key_same(key, k2);
        st = mg_sig_verify_minisig(k2, (const uint8_t *)"hello\n", 6, data, size, &err);
        if (st != MG_OK && st != MG_E_SIGNATURE)
            abort();
        mg_sig_key_free(k2);
    }
    mg_sig_key_free(key);

    mg_sig_key *pem = NULL;
    if (mg_sig_key_from_pem(data, size, &pem, &err) == MG_OK) {
        st = mg_sig_verify_raw(pem, data, size, data, size < 64 ? size : 64, &err);
        if (st != MG_E_SIGNATURE)
            abort(); /* a PEM file is not its own signature */
        mg_sig_key_free(pem);
    }
    return 0;
}
