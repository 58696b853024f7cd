/*
 * Signatures: PEM public keys (RSA-PSS with SHA-256, Ed25519, ECDSA P-256/P-384) and minisign
 * keys and .minisig files, all verified through OpenSSL EVP.
 */
#ifndef MG_SIG_H
#define MG_SIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

typedef struct mg_sig_key mg_sig_key;

/* A PEM SubjectPublicKeyInfo: RSA of 2048 bits or more, Ed25519, or EC on P-256/P-384.
 * Anything else (other curves, DSA, small RSA, trailing garbage) is MG_E_POLICY. */
MG_NODISCARD mg_status mg_sig_key_from_pem(const uint8_t *pem, size_t len, mg_sig_key **out,
                                           mg_error *err);
/* A minisign public key as the tool prints it (the base64 line, 56 characters, "RW..."). */
MG_NODISCARD mg_status mg_sig_key_from_minisign(const char *base64, mg_sig_key **out,
                                                mg_error *err);
void mg_sig_key_free(mg_sig_key *key);

bool mg_sig_key_is_minisign(const mg_sig_key *key);
/* True when both hold the same public key (to count distinct keys for a threshold). */
bool mg_sig_key_same(const mg_sig_key *a, const mg_sig_key *b);

/* Verify a raw detached signature over `msg`: RSA-PSS (SHA-256, MGF1-SHA-256, any salt
 * length), pure Ed25519, or DER ECDSA (SHA-256 for P-256, SHA-384 for P-384, SHA-512 for P-521).
 * MG_OK if valid, MG_E_SIGNATURE otherwise. A minisign key never verifies a raw signature. */
MG_NODISCARD mg_status mg_sig_verify_raw(const mg_sig_key *key, const uint8_t *msg, size_t len,
                                         const uint8_t *sig, size_t sig_len, mg_error *err);

/* Verify a .minisig file (text, 4 lines; prehashed "ED" form, key id checked, trusted
 * comment covered by the global signature) over `msg` with a minisign key.
 * MG_OK if valid, MG_E_SIGNATURE otherwise. */
MG_NODISCARD mg_status mg_sig_verify_minisig(const mg_sig_key *key, const uint8_t *msg,
                                             size_t len, const uint8_t *minisig,
                                             size_t minisig_len, mg_error *err);

/* ---- additions (sig.c owner) ------------------------------------------------------ */

/* Largest .minisig file accepted (4 lines: comments of at most 1024 and 8192 bytes). */
#define MG_MINISIG_MAX_BYTES (10u << 10)

/* Key kinds, for messages and for the signer. */
typedef enum mg_sig_key_type {
    MG_SIG_RSA = 1,  /* RSA >= 2048 bits, verified as RSA-PSS SHA-256 */
    MG_SIG_ED25519,  /* pure Ed25519 */
    MG_SIG_ECDSA_P256, /* DER ECDSA with SHA-256 */
    MG_SIG_ECDSA_P384, /* DER ECDSA with SHA-384 */
    MG_SIG_ECDSA_P521, /* DER ECDSA with SHA-512 (accepted for OMS bundles and manifests) */
    MG_SIG_MINISIGN  /* minisign Ed25519 key: .minisig files only */
} mg_sig_key_type;

mg_sig_key_type mg_sig_key_type_of(const mg_sig_key *key);
/* "rsa-pss-sha256", "ed25519", "ecdsa-p256-sha256", "ecdsa-p384-sha384", "minisign". */
const char *mg_sig_key_type_name(mg_sig_key_type type);

/*
 * Signed policy (SPEC §2): verify `sig` (raw bytes of POLICY.sig: RSA-PSS, Ed25519 or DER
 * ECDSA, as for manifests) over the policy's exact bytes with the PEM public key `key_pem`.
 * MG_OK if valid; MG_E_POLICY for a bad key or a bad or missing signature.
 */
MG_NODISCARD mg_status mg_sig_verify_policy(const uint8_t *key_pem, size_t key_len,
                                            const uint8_t *policy, size_t len,
                                            const uint8_t *sig, size_t sig_len, mg_error *err);

/* SHA-256 of the key's PEM SubjectPublicKeyInfo text as `openssl pkey -pubout` writes it
 * (the OMS/Sigstore `publicKey.hint`). False for a minisign key or on failure. */
bool mg_sig_key_spki_pem_sha256(const mg_sig_key *key, uint8_t out[32]);

#endif
