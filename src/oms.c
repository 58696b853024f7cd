#define _GNU_SOURCE
/*
 * OpenSSF model signing (OMS v1.0) bundles, verified in C (reference/oms.md §0):
 *   bundle JSON -> mediaType -> dsseEnvelope -> signature over the DSSE PAE of the decoded
 *   payload bytes (never re-serialised) -> in-toto statement -> predicate -> expected files.
 *
 * Decisions (README "Choices where the spec is silent"):
 * - Key mode: signatures[0] must verify with one of the entry's keys (as the reference
 *   verifier, which looks at signatures[0] only); further signatures count toward a threshold
 *   above 1, each key once. A `publicKey.hint` present must be the hint of the key that
 *   verified signatures[0]. The verification material is otherwise not looked at.
 * - Certificate mode: the leaf is x509CertificateChain[0], the rest untrusted intermediates,
 *   the policy's ca_file the only roots; the whole chain is checked at the verification time:
 *   a key or certificate bundle carries no trusted signing time. The reference verifier up to
 *   1.1.1 took the leaf's notBefore as the signing time, so a leaf never expired
 *   (sigstore/model-transparency#663); its fix (PR #664) checks at the current time, as OMS
 *   v1.0 §8.2 asks. KeyUsage digitalSignature, or EKU codeSigning when there is no KeyUsage.
 * - Legacy v0.2 bundles (predicate Digests/v0.1, buggy PAE) are refused: they do not bind the
 *   file set. Only hash_type sha256 is accepted.
 * - Resource names must be safe relative paths ("." or the file's name for a single-file
 *   model) and unique; shards of a file must tile it exactly with shard_size.
 */
#include "oms.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <dirent.h>
#include <openssl/ct.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "digest.h"
#include "manifest.h"
#include "shard.h"
#include "util/base64.h"
#include "util/fsutil.h"
#include "util/hex.h"
#include "util/json.h"

#define BUNDLE_MEDIA_TYPE "application/vnd.dev.sigstore.bundle.v0.3+json"
#define PAYLOAD_TYPE "application/vnd.in-toto+json"
#define STATEMENT_TYPE "https://in-toto.io/Statement/v1"
#define PREDICATE_TYPE "https://model_signing/signature/v1.0"
#define PREDICATE_TYPE_V02 "https://model_signing/Digests/v0.1"
#define MAX_SHARD_SIZE (UINT64_C(1) << 53)

bool mg_policy_safe_relpath(const char *p); /* policy.c */

void mg_oms_policy_free(mg_oms_policy *p)
{
    if (p == NULL)
        return;
    free(p->bundle);
    free(p->ca_pem);
    free(p->identity);
    free(p->issuer);
    for (size_t i = 0; i < p->ignore_count; i++)
        free(p->ignore[i]);
    free(p->ignore);
    free(p);
}

static void pins_free(mg_pinned_file *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(f[i].path);
        free(f[i].shards);
    }
    free(f);
}

void mg_oms_free(mg_oms *o)
{
    if (o == NULL)
        return;
    pins_free(o->files, o->file_count);
    for (size_t i = 0; i < o->ignore_count; i++)
        free(o->ignore[i]);
    free(o->ignore);
    memset(o, 0, sizeof *o);
}

uint8_t *mg_oms_pae(const uint8_t *payload, size_t len, size_t *out_len)
{
    char head[96];
    int n = snprintf(head, sizeof head, "DSSEv1 %zu %s %zu ", strlen(PAYLOAD_TYPE), PAYLOAD_TYPE,
                     len);
    if (n < 0 || (size_t)n >= sizeof head || len > SIZE_MAX - (size_t)n)
        return NULL;
    uint8_t *p = malloc((size_t)n + len + 1);
    if (p == NULL)
        return NULL;
    memcpy(p, head, (size_t)n);
    if (len > 0)
        memcpy(p + n, payload, len);
    *out_len = (size_t)n + len;
    return p;
}

/* Decode a base64 JSON string into a malloc'd buffer. */
static bool b64_field(const json_t *v, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    if (!json_is_string(v))
        return false;
    size_t n = json_string_length(v);
    uint8_t *buf = malloc(n / 4 * 3 + 3);
    if (buf == NULL)
        return false;
    if (!mg_base64_decode(json_string_value(v), n, buf, n / 4 * 3 + 3, out_len)) {
        free(buf);
        return false;
    }
    *out = buf;
    return true;
}

static bool str_is(const json_t *v, const char *want)
{
    return json_is_string(v) && strcmp(json_string_value(v), want) == 0;
}

/* ---- signatures ----------------------------------------------------------------------- */

/* DER ECDSA with the curve's hash (P-256 SHA-256, P-384 SHA-384, P-521 SHA-512). */
static bool ecdsa_verify(EVP_PKEY *pkey, const uint8_t *msg, size_t len, const uint8_t *sig,
                         size_t sig_len)
{
    char group[64] = "";
    size_t n = 0;
    if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC ||
        EVP_PKEY_get_utf8_string_param(pkey, "group", group, sizeof group, &n) != 1)
        return false;
    const EVP_MD *md = strcmp(group, "prime256v1") == 0 ? EVP_sha256()
                       : strcmp(group, "secp384r1") == 0 ? EVP_sha384()
                       : strcmp(group, "secp521r1") == 0 ? EVP_sha512()
                                                         : NULL;
    if (md == NULL)
        return false;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, md, NULL, pkey) == 1 &&
              EVP_DigestVerify(ctx, sig, sig_len, msg, len) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

typedef struct envelope {
    uint8_t *payload;
    size_t payload_len;
    uint8_t *pae;
    size_t pae_len;
    uint8_t **sigs;
    size_t *sig_lens;
    size_t sig_count;
} envelope;

static void envelope_free(envelope *e)
{
    free(e->payload);
    free(e->pae);
    for (size_t i = 0; i < e->sig_count; i++)
        free(e->sigs[i]);
    free(e->sigs);
    free(e->sig_lens);
}

static mg_status parse_envelope(json_t *env, envelope *e, mg_error *err)
{
    if (!json_is_object(env))
        return mg_fail(err, MG_E_SIGNATURE, "OMS bundle: no dsseEnvelope");
    if (!str_is(json_object_get(env, "payloadType"), PAYLOAD_TYPE))
        return mg_fail(err, MG_E_SIGNATURE, "OMS bundle: payloadType is not %s", PAYLOAD_TYPE);
    if (!b64_field(json_object_get(env, "payload"), &e->payload, &e->payload_len))
        return mg_fail(err, MG_E_SIGNATURE, "OMS bundle: payload is not standard base64");
    json_t *sigs = json_object_get(env, "signatures");
    if (!json_is_array(sigs) || json_array_size(sigs) == 0 || json_array_size(sigs) > 16)
        return mg_fail(err, MG_E_SIGNATURE, "OMS bundle: signatures must hold 1 to 16 entries");
    size_t n = json_array_size(sigs);
    e->sigs = mg_calloc(n, sizeof *e->sigs);
    e->sig_lens = mg_calloc(n, sizeof *e->sig_lens);
    if (e->sigs == NULL || e->sig_lens == NULL)
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    e->sig_count = n; /* every slot is freed by envelope_free, filled or not */
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(sigs, i);
        if (!json_is_object(s) ||
            !b64_field(json_object_get(s, "sig"), &e->sigs[i], &e->sig_lens[i]) ||
            e->sig_lens[i] == 0)
            return mg_fail(err, MG_E_SIGNATURE, "OMS bundle: signatures[%zu].sig is not "
                           "standard base64", i);
    }
    e->pae = mg_oms_pae(e->payload, e->payload_len, &e->pae_len);
    if (e->pae == NULL)
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    return MG_OK;
}

static mg_status verify_keys(const mg_policy *pol, const mg_policy_model *entry, json_t *vm,
                             const envelope *e, mg_error *err)
{
    size_t first = SIZE_MAX;
    unsigned good = 0;
    bool used[64] = {0};
    for (size_t k = 0; k < entry->key_count && k < 64; k++) {
        const mg_sig_key *key = pol->keys[entry->keys[k]].key;
        for (size_t i = 0; i < e->sig_count; i++) {
            mg_error ignore;
            if (mg_sig_verify_raw(key, e->pae, e->pae_len, e->sigs[i], e->sig_lens[i],
                                  &ignore) != MG_OK)
                continue;
            if (i == 0 && first == SIZE_MAX)
                first = k;
            if (!used[k]) {
                used[k] = true;
                good++;
            }
        }
    }
    if (first == SIZE_MAX)
        return mg_fail(err, MG_E_SIGNATURE, "OMS bundle: the signature does not verify with "
                       "any key of the policy entry");
    if (good < entry->threshold)
        return mg_fail(err, MG_E_SIGNATURE, "OMS bundle: %u of the required %u keys signed",
                       good, entry->threshold);
    json_t *hint = json_object_get(json_object_get(vm, "publicKey"), "hint");
    if (hint != NULL) {
        uint8_t want[32], have[32];
        if (!json_is_string(hint) || !mg_hex_decode(json_string_value(hint), want, 32) ||
            !mg_sig_key_spki_pem_sha256(pol->keys[entry->keys[first]].key, have) ||
            memcmp(want, have, 32) != 0)
            return mg_fail(err, MG_E_SIGNATURE, "OMS bundle: publicKey.hint does not name the "
                           "key that verified the signature");
    }
    return MG_OK;
}

/* ---- certificates --------------------------------------------------------------------- */

static X509 *cert_from_json(const json_t *c)
{
    uint8_t *der = NULL;
    size_t len = 0;
    if (!json_is_object(c) || !b64_field(json_object_get(c, "rawBytes"), &der, &len) ||
        len == 0 || len > (1u << 20)) {
        free(der);
        return NULL;
    }
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    if (x != NULL && p != der + len) {
        X509_free(x);
        x = NULL;
    }
    free(der);
    return x;
}

static bool name_entry_is(X509_NAME *name, int nid, const char *want)
{
    int i = -1;
    while ((i = X509_NAME_get_index_by_NID(name, nid, i)) >= 0) {
        ASN1_STRING *d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
        unsigned char *utf8 = NULL;
        int n = ASN1_STRING_to_UTF8(&utf8, d);
        bool eq = n >= 0 && (size_t)n == strlen(want) && memcmp(utf8, want, (size_t)n) == 0;
        OPENSSL_free(utf8);
        if (eq)
            return true;
    }
    return false;
}

/* The leaf carries `identity` as its subject CN or email, or as a SAN email, URI or DNS;
 * `san_only` (Sigstore): as a SAN email or URI only. */
static bool identity_matches(X509 *leaf, const char *identity, bool san_only)
{
    X509_NAME *subj = X509_get_subject_name(leaf);
    if (!san_only && (name_entry_is(subj, NID_commonName, identity) ||
                      name_entry_is(subj, NID_pkcs9_emailAddress, identity)))
        return true;
    GENERAL_NAMES *sans = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    bool found = false;
    for (int i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans) && !found; i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        ASN1_IA5STRING *s = g->type == GEN_EMAIL ? g->d.rfc822Name
                            : g->type == GEN_URI ? g->d.uniformResourceIdentifier
                            : g->type == GEN_DNS && !san_only ? g->d.dNSName
                                                 : NULL;
        found = s != NULL && (size_t)ASN1_STRING_length(s) == strlen(identity) &&
                memcmp(ASN1_STRING_get0_data(s), identity, strlen(identity)) == 0;
    }
    GENERAL_NAMES_free(sans);
    return found;
}

static mg_status verify_cert(const mg_oms_policy *op, json_t *vm, const envelope *e,
                             mg_error *err)
{
    json_t *certs = json_object_get(json_object_get(vm, "x509CertificateChain"), "certificates");
    if (!json_is_array(certs) || json_array_size(certs) == 0 || json_array_size(certs) > 10)
        return mg_fail(err, MG_E_SIGNATURE, "OMS bundle: no x509CertificateChain (1 to 10 "
                       "certificates) for certificate mode");
    mg_status s = MG_OK;
    X509 *leaf = cert_from_json(json_array_get(certs, 0));
    STACK_OF(X509) *chain = sk_X509_new_null();
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    BIO *bio = BIO_new_mem_buf(op->ca_pem, (int)op->ca_len);
    if (chain == NULL || store == NULL || ctx == NULL || bio == NULL) {
        s = mg_fail(err, MG_E_LIMIT, "out of memory");
        goto out;
    }
    if (leaf == NULL) {
        s = mg_fail(err, MG_E_SIGNATURE, "OMS bundle: the leaf certificate is not valid DER");
        goto out;
    }
    for (size_t i = 1; i < json_array_size(certs); i++) {
        X509 *x = cert_from_json(json_array_get(certs, i));
        if (x == NULL || sk_X509_push(chain, x) <= 0) {
            X509_free(x);
            s = mg_fail(err, MG_E_SIGNATURE, "OMS bundle: certificate %zu is not valid DER", i);
            goto out;
        }
    }
    unsigned roots = 0;
    X509 *root;
    while ((root = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        int ok = X509_STORE_add_cert(store, root);
        X509_free(root);
        if (ok != 1) {
            s = mg_fail(err, MG_E_POLICY, "ca_file: a certificate could not be added");
            goto out;
        }
        roots++;
    }
    ERR_clear_error();
    if (roots == 0) {
        s = mg_fail(err, MG_E_POLICY, "ca_file holds no PEM certificate");
        goto out;
    }
    if (X509_STORE_CTX_init(ctx, store, leaf, chain) != 1) {
        s = mg_fail(err, MG_E_LIMIT, "OpenSSL could not set up a chain check");
        goto out;
    }
    if (X509_verify_cert(ctx) != 1) {
        int code = X509_STORE_CTX_get_error(ctx);
        s = mg_fail(err, MG_E_SIGNATURE, "OMS bundle: the signing certificate does not chain to "
                    "ca_file: %s", X509_verify_cert_error_string(code));
        goto out;
    }
    uint32_t ku = X509_get_key_usage(leaf);
    uint32_t xku = X509_get_extended_key_usage(leaf);
    bool has_ku = (X509_get_extension_flags(leaf) & EXFLAG_KUSAGE) != 0;
    bool has_xku = (X509_get_extension_flags(leaf) & EXFLAG_XKUSAGE) != 0;
    if (has_ku ? (ku & KU_DIGITAL_SIGNATURE) == 0 : (!has_xku || (xku & XKU_CODE_SIGN) == 0)) {
        s = mg_fail(err, MG_E_SIGNATURE, "OMS bundle: the signing certificate is not for code "
                    "signing (KeyUsage digitalSignature, or EKU codeSigning)");
        goto out;
    }
    if (op->identity != NULL && !identity_matches(leaf, op->identity, false)) {
        s = mg_fail(err, MG_E_SIGNATURE, "OMS bundle: the signing certificate does not carry "
                    "the identity '%.200s'", op->identity);
        goto out;
    }
    EVP_PKEY *pkey = X509_get0_pubkey(leaf);
    if (pkey == NULL || !ecdsa_verify(pkey, e->pae, e->pae_len, e->sigs[0], e->sig_lens[0]))
        s = mg_fail(err, MG_E_SIGNATURE, "OMS bundle: the signature does not verify with the "
                    "signing certificate's key (ECDSA P-256/P-384/P-521)");
out:
    ERR_clear_error();
    BIO_free(bio);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    sk_X509_pop_free(chain, X509_free);
    X509_free(leaf);
    return s;
}

/* ---- Sigstore (Fulcio certificate, Rekor entry), offline ------------------------------ */

static bool parse_u64(const char *s, size_t n, uint64_t *out);

/* Seconds since the epoch of an RFC 3339 UTC time "YYYY-MM-DDTHH:MM:SS[.fff]Z" (fraction
 * dropped). */
static bool rfc3339(const char *t, int64_t *out)
{
    char buf[21];
    size_t n = strlen(t);
    if (n < 20 || t[n - 1] != 'Z' || (n > 20 && t[19] != '.'))
        return false;
    memcpy(buf, t, 19);
    buf[19] = 'Z';
    buf[20] = '\0';
    return mg_manifest_parse_time(buf, out);
}

/* A JSON integer, or a decimal string (protobuf's int64 form). */
static bool json_int64(const json_t *v, int64_t *out)
{
    uint64_t u;
    if (json_is_integer(v)) {
        if (!mg_json_u64(v, &u) || u > INT64_MAX)
            return false;
    } else if (!json_is_string(v) ||
               !parse_u64(json_string_value(v), json_string_length(v), &u) || u > INT64_MAX) {
        return false;
    }
    *out = (int64_t)u;
    return true;
}

/* validFor {start, end?} of the trusted root covers `when`. */
static bool valid_for(const json_t *vf, int64_t when)
{
    int64_t start, end;
    json_t *e = json_object_get(vf, "end");
    if (!json_is_string(json_object_get(vf, "start")) ||
        !rfc3339(json_string_value(json_object_get(vf, "start")), &start) || when < start)
        return false;
    if (e == NULL)
        return true;
    return json_is_string(e) && rfc3339(json_string_value(e), &end) && when <= end;
}

static EVP_PKEY *pkey_from_der_b64(const json_t *v)
{
    uint8_t *der = NULL;
    size_t len = 0;
    if (!b64_field(v, &der, &len))
        return NULL;
    const unsigned char *p = der;
    EVP_PKEY *k = d2i_PUBKEY(NULL, &p, (long)len);
    if (k != NULL && p != der + len) {
        EVP_PKEY_free(k);
        k = NULL;
    }
    free(der);
    return k;
}

/* ECDSA with the curve's hash, or pure Ed25519. */
static bool verify_any(EVP_PKEY *k, const uint8_t *msg, size_t len, const uint8_t *sig,
                       size_t sig_len)
{
    if (EVP_PKEY_get_base_id(k) == EVP_PKEY_EC)
        return ecdsa_verify(k, msg, len, sig, sig_len);
    if (EVP_PKEY_get_base_id(k) != EVP_PKEY_ED25519)
        return false;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k) == 1 &&
              EVP_DigestVerify(ctx, sig, sig_len, msg, len) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

static void sha256(const void *a, size_t an, const void *b, size_t bn, const void *c, size_t cn,
                   uint8_t out[32])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned n = 0;
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(ctx, a, an) != 1 || EVP_DigestUpdate(ctx, b, bn) != 1 ||
        EVP_DigestUpdate(ctx, c, cn) != 1 || EVP_DigestFinal_ex(ctx, out, &n) != 1)
        memset(out, 0, 32); /* compares unequal to any real hash */
    EVP_MD_CTX_free(ctx);
}

/* RFC 6962 / RFC 9162 §2.1.3.2: the audit path from leaf `index` of a tree of `size` leaves. */
static bool inclusion_ok(const uint8_t leaf[32], uint64_t index, uint64_t size,
                         const json_t *hashes, const uint8_t root[32])
{
    if (index >= size || !json_is_array(hashes) || json_array_size(hashes) > 64)
        return false;
    uint64_t fn = index, sn = size - 1;
    uint8_t r[32], p[32];
    memcpy(r, leaf, 32);
    static const uint8_t node = 1;
    for (size_t i = 0; i < json_array_size(hashes); i++) {
        uint8_t *dec = NULL;
        size_t dl = 0;
        if (!b64_field(json_array_get(hashes, i), &dec, &dl) || dl != 32) {
            free(dec);
            return false;
        }
        memcpy(p, dec, 32);
        free(dec);
        if (sn == 0)
            return false;
        if ((fn & 1) || fn == sn) {
            sha256(&node, 1, p, 32, r, 32, r);
            while ((fn & 1) == 0 && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            sha256(&node, 1, r, 32, p, 32, r);
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 && memcmp(r, root, 32) == 0;
}

/* The OIDC issuer the Fulcio leaf records: extension 1.3.6.1.4.1.57264.1.8 (DER UTF8String)
 * or the legacy .1.1 (raw bytes). */
static bool issuer_matches(X509 *leaf, const char *want)
{
    static const char *const oids[] = {"1.3.6.1.4.1.57264.1.8", "1.3.6.1.4.1.57264.1.1"};
    for (int k = 0; k < 2; k++) {
        ASN1_OBJECT *obj = OBJ_txt2obj(oids[k], 1);
        int i = obj != NULL ? X509_get_ext_by_OBJ(leaf, obj, -1) : -1;
        ASN1_OBJECT_free(obj);
        if (i < 0)
            continue;
        ASN1_OCTET_STRING *os = X509_EXTENSION_get_data(X509_get_ext(leaf, i));
        const unsigned char *d = ASN1_STRING_get0_data(os);
        long n = ASN1_STRING_length(os);
        bool eq;
        if (k == 0) {
            const unsigned char *q = d;
            ASN1_UTF8STRING *u = d2i_ASN1_UTF8STRING(NULL, &q, n);
            eq = u != NULL && q == d + n && (size_t)ASN1_STRING_length(u) == strlen(want) &&
                 memcmp(ASN1_STRING_get0_data(u), want, strlen(want)) == 0;
            ASN1_UTF8STRING_free(u);
        } else {
            eq = (size_t)n == strlen(want) && memcmp(d, want, (size_t)n) == 0;
        }
        ERR_clear_error();
        return eq; /* the first extension present decides */
    }
    return false;
}

/* The leaf chains to one of the trusted root's Fulcio CAs at `when`. */
static bool fulcio_chain_ok(json_t *cas, X509 *leaf, int64_t when, X509 **issuer, char *why,
                            size_t why_len)
{
    *issuer = NULL;
    size_t i;
    json_t *ca;
    snprintf(why, why_len, "no certificate authority of the trusted root was valid then");
    json_array_foreach(cas, i, ca) {
        json_t *certs = json_object_get(json_object_get(ca, "certChain"), "certificates");
        if (!valid_for(json_object_get(ca, "validFor"), when) || !json_is_array(certs) ||
            json_array_size(certs) == 0 || json_array_size(certs) > 10)
            continue;
        X509_STORE *store = X509_STORE_new();
        X509_STORE_CTX *ctx = X509_STORE_CTX_new();
        STACK_OF(X509) *mid = sk_X509_new_null();
        bool ok = store != NULL && ctx != NULL && mid != NULL;
        size_t n = json_array_size(certs);
        for (size_t k = 0; ok && k < n; k++) {
            X509 *x = cert_from_json(json_array_get(certs, k));
            if (x == NULL) {
                ok = false;
            } else if (k + 1 == n) {
                ok = X509_STORE_add_cert(store, x) == 1;
                X509_free(x);
            } else if (sk_X509_push(mid, x) <= 0) {
                X509_free(x);
                ok = false;
            }
        }
        if (ok && X509_STORE_CTX_init(ctx, store, leaf, mid) == 1) {
            X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), (time_t)when);
            ok = X509_verify_cert(ctx) == 1;
            if (!ok)
                snprintf(why, why_len, "%s",
                         X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
            STACK_OF(X509) *got = ok ? X509_STORE_CTX_get0_chain(ctx) : NULL;
            if (ok && (got == NULL || sk_X509_num(got) < 2 ||
                       X509_up_ref(sk_X509_value(got, 1)) != 1)) {
                snprintf(why, why_len, "the leaf is itself a trusted certificate");
                ok = false;
            } else if (ok) {
                *issuer = sk_X509_value(got, 1);
            }
        } else {
            ok = false;
        }
        X509_STORE_CTX_free(ctx);
        X509_STORE_free(store);
        sk_X509_pop_free(mid, X509_free);
        ERR_clear_error();
        if (ok)
            return true;
    }
    return false;
}

/* A base64 run of `n` characters decoded into a malloc'd buffer (NULL if not strict base64). */
static uint8_t *b64_run(const char *t, size_t n, size_t *out_len)
{
    uint8_t *buf = malloc(n / 4 * 3 + 3);
    if (buf != NULL && !mg_base64_decode(t, n, buf, n / 4 * 3 + 3, out_len)) {
        free(buf);
        buf = NULL;
    }
    return buf;
}

/*
 * The inclusion proof's checkpoint, a signed note (C2SP signed-note / tlog-checkpoint):
 *   "<origin>\n<tree size>\n<base64 root hash>\n[extension lines]\n" "\n"
 *   one or more "\u2014 <name> <base64(4-byte key hint || signature)>\n"
 * It must be signed by the log's key (key hint = the first 4 bytes of the log id) over the
 * note text, and name the proof's tree size and root hash. Required, as sigstore-python
 * requires it for v0.2 and later bundles.
 */
static bool checkpoint_ok(const char *t, size_t n, EVP_PKEY *log_key, const uint8_t kid[32],
                          uint64_t size, const uint8_t root[32], char *why, size_t why_len)
{
    snprintf(why, why_len, "the checkpoint is not a signed note");
    const char *sep = memmem(t, n, "\n\n", 2);
    if (sep == NULL || memchr(t, '\0', n) != NULL)
        return false;
    size_t note_len = (size_t)(sep - t) + 1;
    const char *origin_end = memchr(t, '\n', note_len);
    const char *size_line = origin_end + 1;
    const char *size_end = memchr(size_line, '\n', note_len - (size_t)(size_line - t));
    if (origin_end == t || size_end == NULL)
        return false;
    const char *root_line = size_end + 1;
    const char *root_end = memchr(root_line, '\n', note_len - (size_t)(root_line - t));
    uint64_t cp_size;
    size_t cp_root_len = 0;
    if (root_end == NULL ||
        !parse_u64(size_line, (size_t)(size_end - size_line), &cp_size))
        return false;
    uint8_t *cp_root = b64_run(root_line, (size_t)(root_end - root_line), &cp_root_len);
    bool same = cp_root != NULL && cp_root_len == 32 && memcmp(cp_root, root, 32) == 0 &&
                cp_size == size;
    free(cp_root);
    if (!same) {
        snprintf(why, why_len, "the checkpoint is for another tree than the proof (size "
                 "%llu, or another root hash)", (unsigned long long)cp_size);
        return false;
    }
    /* The signature lines: one by the log is enough, others (witnesses) are not looked at. */
    static const char dash[] = "\xe2\x80\x94 "; /* U+2014 EM DASH, space */
    const char *p = sep + 2, *end = t + n;
    bool signed_by_log = false;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL || (size_t)(nl - p) < 4 || memcmp(p, dash, 4) != 0)
            return false;
        const char *sp = memrchr(p + 4, ' ', (size_t)(nl - p - 4));
        if (sp == NULL || sp == p + 4)
            return false;
        size_t sig_len = 0;
        uint8_t *sig = b64_run(sp + 1, (size_t)(nl - sp - 1), &sig_len);
        if (sig == NULL || sig_len <= 4) {
            free(sig);
            return false;
        }
        if (memcmp(sig, kid, 4) == 0 && log_key != NULL &&
            verify_any(log_key, (const uint8_t *)t, note_len, sig + 4, sig_len - 4))
            signed_by_log = true;
        free(sig);
        p = nl + 1;
    }
    if (!signed_by_log)
        snprintf(why, why_len, "the checkpoint is not signed by the log's key");
    return signed_by_log;
}

/* A CT log of the trusted root by its 32-byte id, valid at `when` (seconds). */
static EVP_PKEY *ctlog_key(json_t *ctlogs, const uint8_t *id, size_t id_len, int64_t when)
{
    size_t i;
    json_t *l;
    json_array_foreach(ctlogs, i, l) {
        uint8_t *have = NULL;
        size_t hl = 0;
        bool same = b64_field(json_object_get(json_object_get(l, "logId"), "keyId"), &have,
                              &hl) && hl == id_len && memcmp(have, id, hl) == 0;
        free(have);
        json_t *pk = json_object_get(l, "publicKey");
        if (same && valid_for(json_object_get(pk, "validFor"), when))
            return pkey_from_der_b64(json_object_get(pk, "rawBytes"));
    }
    return NULL;
}

/*
 * Certificate transparency (RFC 6962 §3.2): the SCTs embedded in the Fulcio leaf are
 * signatures by CT logs over the precertificate entry (the leaf's TBSCertificate without the
 * SCT list extension, and SHA-256 of the issuer's SubjectPublicKeyInfo). At least one must
 * verify with a CT log of the trusted root valid at the SCT's time; an SCT of a known log
 * that does not verify fails; SCTs of logs the root does not list are not counted.
 */
static bool sct_ok(json_t *ctlogs, X509 *leaf, X509 *issuer, char *why, size_t why_len)
{
    STACK_OF(SCT) *scts = X509_get_ext_d2i(leaf, NID_ct_precert_scts, NULL, NULL);
    X509 *pre = X509_dup(leaf);
    unsigned char *tbs = NULL, *spki = NULL;
    int tbs_len = -1, spki_len = -1;
    bool ok = false;
    snprintf(why, why_len, "the Fulcio certificate has no embedded SCT");
    if (scts == NULL || sk_SCT_num(scts) == 0 || pre == NULL)
        goto out;
    X509_EXTENSION_free(X509_delete_ext(pre, X509_get_ext_by_NID(pre, NID_ct_precert_scts, -1)));
    if (X509_get_ext_by_NID(pre, NID_ct_precert_scts, -1) >= 0)
        goto out;
    tbs_len = i2d_re_X509_tbs(pre, &tbs);
    spki_len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(issuer), &spki);
    snprintf(why, why_len, "the precertificate could not be rebuilt");
    if (tbs_len <= 0 || tbs_len >= (1 << 24) || spki_len <= 0)
        goto out;
    uint8_t ikh[32];
    sha256(spki, (size_t)spki_len, NULL, 0, NULL, 0, ikh);
    unsigned good = 0;
    bool bad = false;
    for (int k = 0; k < sk_SCT_num(scts) && !bad; k++) {
        SCT *sct = sk_SCT_value(scts, k);
        unsigned char *id = NULL, *ext = NULL, *sig = NULL;
        size_t id_len = SCT_get0_log_id(sct, &id);
        size_t ext_len = SCT_get0_extensions(sct, &ext);
        size_t sig_len = SCT_get0_signature(sct, &sig);
        uint64_t ms = SCT_get_timestamp(sct);
        if (SCT_get_version(sct) != SCT_VERSION_V1 || ms / 1000 > INT64_MAX)
            continue;
        EVP_PKEY *key = ctlog_key(ctlogs, id, id_len, (int64_t)(ms / 1000));
        if (key == NULL)
            continue;
        /* digitally-signed struct: version 0, certificate_timestamp 0, timestamp, entry type
         * precert_entry 1, issuer key hash, TBS (24-bit length), extensions (16-bit). */
        size_t len = 12 + 32 + 3 + (size_t)tbs_len + 2 + ext_len;
        uint8_t *msg = ext_len < 65536 && sig_len > 0 ? malloc(len) : NULL;
        if (msg != NULL) {
            uint8_t *q = msg;
            *q++ = 0;
            *q++ = 0;
            for (int b = 7; b >= 0; b--)
                *q++ = (uint8_t)(ms >> (8 * b));
            *q++ = 0;
            *q++ = 1;
            memcpy(q, ikh, 32);
            q += 32;
            *q++ = (uint8_t)((unsigned)tbs_len >> 16);
            *q++ = (uint8_t)((unsigned)tbs_len >> 8);
            *q++ = (uint8_t)tbs_len;
            memcpy(q, tbs, (size_t)tbs_len);
            q += tbs_len;
            *q++ = (uint8_t)(ext_len >> 8);
            *q++ = (uint8_t)ext_len;
            if (ext_len > 0)
                memcpy(q, ext, ext_len);
        }
        /* RFC 6962 logs sign with ECDSA and SHA-256 (the curve picks the hash here). */
        if (msg != NULL && SCT_get_signature_nid(sct) == NID_ecdsa_with_SHA256 &&
            verify_any(key, msg, len, sig, sig_len))
            good++;
        else
            bad = true;
        free(msg);
        EVP_PKEY_free(key);
    }
    ok = good > 0 && !bad;
    if (bad)
        snprintf(why, why_len, "an SCT does not verify with its CT log's key");
    else if (good == 0)
        snprintf(why, why_len, "no SCT is from a CT log of the trusted root valid at its time");
out:
    OPENSSL_free(tbs);
    OPENSSL_free(spki);
    X509_free(pre);
    SCT_LIST_free(scts);
    ERR_clear_error();
    return ok;
}

/* The Rekor entry: SET by the log's key over the canonical entry, RFC 6962 inclusion, and the
 * dsse body bound to this envelope and leaf. `when` gets the integrated time. */
static mg_status rekor_entry_ok(json_t *root, json_t *entry, const envelope *e, X509 *leaf,
                                int64_t *when, mg_error *err)
{
    const char *body64 = json_string_value(json_object_get(entry, "canonicalizedBody"));
    json_t *kv = json_object_get(entry, "kindVersion");
    int64_t log_index, index, size;
    json_t *proof = json_object_get(entry, "inclusionProof");
    json_t *key_id = json_object_get(json_object_get(entry, "logId"), "keyId");
    if (body64 == NULL || !str_is(json_object_get(kv, "kind"), "dsse") ||
        !json_int64(json_object_get(entry, "integratedTime"), when) ||
        !json_int64(json_object_get(entry, "logIndex"), &log_index) || !json_is_string(key_id) ||
        !json_is_object(proof) || !json_int64(json_object_get(proof, "logIndex"), &index) ||
        !json_int64(json_object_get(proof, "treeSize"), &size))
        return mg_fail(err, MG_E_SIGNATURE, "OMS bundle: the Rekor entry lacks a dsse body, "
                       "integratedTime, logIndex, logId or inclusionProof");
    /* The log: by key id, valid at the integrated time. */
    EVP_PKEY *log_key = NULL;
    uint8_t *kid = NULL;
    size_t kid_len = 0;
    if (!b64_field(key_id, &kid, &kid_len) || kid_len != 32) {
        free(kid);
        return mg_fail(err, MG_E_SIGNATURE, "OMS bundle: the Rekor logId is not a key id");
    }
    size_t i;
    json_t *tl;
    json_array_foreach(json_object_get(root, "tlogs"), i, tl) {
        uint8_t *id = NULL;
        size_t il = 0;
        bool same = b64_field(json_object_get(json_object_get(tl, "logId"), "keyId"), &id, &il) &&
                    il == 32 && memcmp(id, kid, 32) == 0;
        free(id);
        json_t *pk = json_object_get(tl, "publicKey");
        if (same && valid_for(json_object_get(pk, "validFor"), *when)) {
            log_key = pkey_from_der_b64(json_object_get(pk, "rawBytes"));
            break;
        }
    }
    char kid_hex[65];
    uint8_t kid_id[32];
    mg_hex_encode(kid, 32, kid_hex);
    memcpy(kid_id, kid, 32);
    free(kid);
    if (log_key == NULL)
        return mg_fail(err, MG_E_SIGNATURE, "OMS bundle: the Rekor log of the entry is not in "
                       "the trusted root (or not valid at its integrated time)");
    mg_status s = MG_OK;
    uint8_t *set = NULL, *body = NULL, *root_hash = NULL;
    size_t set_len = 0, body_len = 0, root_len = 0;
    char *canon = NULL;
    json_t *bj = NULL;
    /* SET: canonical JSON with the keys in order, no spaces. */
    if (!b64_field(json_object_get(json_object_get(entry, "inclusionPromise"),
                                   "signedEntryTimestamp"), &set, &set_len)) {
        s = mg_fail(err, MG_E_SIGNATURE, "OMS bundle: the Rekor entry has no signed entry "
                    "timestamp");
        goto out;
    }
    if (asprintf(&canon, "{\"body\":\"%s\",\"integratedTime\":%lld,\"logID\":\"%s\","
                 "\"logIndex\":%lld}", body64, (long long)*when, kid_hex,
                 (long long)log_index) < 0) {
        canon = NULL;
        s = mg_fail(err, MG_E_LIMIT, "out of memory");
        goto out;
    }
    if (!verify_any(log_key, (const uint8_t *)canon, strlen(canon), set, set_len)) {
        s = mg_fail(err, MG_E_SIGNATURE, "OMS bundle: the Rekor signed entry timestamp does not "
                    "verify with the log's key");
        goto out;
    }
    /* Inclusion of this body in the tree whose root the proof names. */
    uint8_t leaf_hash[32];
    static const uint8_t zero = 0;
    if (!b64_field(json_object_get(entry, "canonicalizedBody"), &body, &body_len) ||
        !b64_field(json_object_get(proof, "rootHash"), &root_hash, &root_len) || root_len != 32) {
        s = mg_fail(err, MG_E_SIGNATURE, "OMS bundle: the Rekor body or root hash is not base64");
        goto out;
    }
    sha256(&zero, 1, body, body_len, NULL, 0, leaf_hash);
    if (!inclusion_ok(leaf_hash, (uint64_t)index, (uint64_t)size, json_object_get(proof, "hashes"),
                      root_hash)) {
        s = mg_fail(err, MG_E_SIGNATURE, "OMS bundle: the Rekor inclusion proof does not lead to "
                    "its root hash");
        goto out;
    }
    char why[160];
    json_t *env = json_object_get(json_object_get(proof, "checkpoint"), "envelope");
    if (!json_is_string(env)) {
        s = mg_fail(err, MG_E_SIGNATURE, "OMS bundle: Rekor checkpoint: the inclusion proof has "
                    "no checkpoint");
        goto out;
    }
    if (!checkpoint_ok(json_string_value(env), json_string_length(env), log_key, kid_id,
                       (uint64_t)size, root_hash, why, sizeof why)) {
        s = mg_fail(err, MG_E_SIGNATURE, "OMS bundle: Rekor checkpoint: %s", why);
        goto out;
    }
    /* The body is about this envelope: payload hash, signature, verifier = the leaf. */
    mg_error jerr;
    bj = mg_json_parse(body, body_len, "Rekor body", MG_E_SIGNATURE, &mg_json_caps_manifest,
                       &jerr);
    json_t *spec = json_object_get(bj, "spec");
    json_t *ph = json_object_get(spec, "payloadHash");
    json_t *sigs = json_object_get(spec, "signatures");
    uint8_t pay_hash[32];
    char pay_hex[65];
    sha256(e->payload, e->payload_len, NULL, 0, NULL, 0, pay_hash);
    mg_hex_encode(pay_hash, 32, pay_hex);
    uint8_t *sig = NULL, *pem = NULL;
    size_t sig_len = 0, pem_len = 0;
    json_t *s0 = json_array_get(sigs, 0);
    bool bound = bj != NULL && str_is(json_object_get(bj, "kind"), "dsse") &&
                 str_is(json_object_get(ph, "algorithm"), "sha256") &&
                 str_is(json_object_get(ph, "value"), pay_hex) && json_array_size(sigs) == 1 &&
                 b64_field(json_object_get(s0, "signature"), &sig, &sig_len) &&
                 sig_len == e->sig_lens[0] && memcmp(sig, e->sigs[0], sig_len) == 0 &&
                 b64_field(json_object_get(s0, "verifier"), &pem, &pem_len);
    if (bound) {
        BIO *bio = BIO_new_mem_buf(pem, (int)pem_len);
        X509 *v = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
        bound = v != NULL && X509_cmp(v, leaf) == 0;
        X509_free(v);
        BIO_free(bio);
        ERR_clear_error();
    }
    free(sig);
    free(pem);
    if (!bound)
        s = mg_fail(err, MG_E_SIGNATURE, "OMS bundle: the Rekor entry is not about this "
                    "envelope (payload hash, signature or certificate differ)");
out:
    json_decref(bj);
    free(canon);
    free(set);
    free(body);
    free(root_hash);
    EVP_PKEY_free(log_key);
    return s;
}

static mg_status verify_sigstore(const mg_oms_policy *op, json_t *vm, const envelope *e,
                                 mg_error *err)
{
    json_t *cert = json_object_get(vm, "certificate");
    if (cert == NULL)
        cert = json_array_get(json_object_get(json_object_get(vm, "x509CertificateChain"),
                                              "certificates"), 0);
    X509 *leaf = cert_from_json(cert);
    if (leaf == NULL)
        return mg_fail(err, MG_E_SIGNATURE, "OMS bundle: no Fulcio certificate for Sigstore mode");
    mg_error jerr;
    json_t *root = mg_json_parse(op->ca_pem, op->ca_len, "Sigstore trusted root", MG_E_POLICY,
                                 &mg_json_caps_policy, &jerr);
    json_t *entries = json_object_get(vm, "tlogEntries");
    mg_status s = MG_OK;
    int64_t when = 0;
    char why[256];
    if (root == NULL)
        s = mg_fail(err, MG_E_POLICY, "sigstore_root: %s", jerr.message);
    else if (!json_is_array(entries) || json_array_size(entries) != 1)
        s = mg_fail(err, MG_E_SIGNATURE, "OMS bundle: tlogEntries must hold exactly one Rekor "
                    "entry (as sigstore-python requires)");
    else
        s = rekor_entry_ok(root, json_array_get(entries, 0), e, leaf, &when, err);
    X509 *issuer = NULL;
    if (s == MG_OK && !fulcio_chain_ok(json_object_get(root, "certificateAuthorities"), leaf,
                                       when, &issuer, why, sizeof why))
        s = mg_fail(err, MG_E_SIGNATURE, "OMS bundle: the signing certificate does not chain to "
                    "a Fulcio CA of the trusted root at the Rekor time: %s", why);
    if (s == MG_OK && !sct_ok(json_object_get(root, "ctlogs"), leaf, issuer, why, sizeof why))
        s = mg_fail(err, MG_E_SIGNATURE, "OMS bundle: certificate transparency: %s", why);
    X509_free(issuer);
    if (s == MG_OK && !identity_matches(leaf, op->identity, true))
        s = mg_fail(err, MG_E_SIGNATURE, "OMS bundle: the signing certificate does not carry "
                    "the identity '%.200s'", op->identity);
    if (s == MG_OK && !issuer_matches(leaf, op->issuer))
        s = mg_fail(err, MG_E_SIGNATURE, "OMS bundle: the signing certificate's OIDC issuer is "
                    "not '%.200s'", op->issuer);
    if (s == MG_OK) {
        uint32_t ku = X509_get_key_usage(leaf);
        uint32_t xku = X509_get_extended_key_usage(leaf);
        if ((ku & KU_DIGITAL_SIGNATURE) == 0 || (xku & XKU_CODE_SIGN) == 0 ||
            X509_check_ca(leaf) != 0)
            s = mg_fail(err, MG_E_SIGNATURE, "OMS bundle: the Fulcio certificate is not a "
                        "code-signing leaf (KeyUsage, EKU, or it is a CA)");
    }
    EVP_PKEY *pkey = s == MG_OK ? X509_get0_pubkey(leaf) : NULL;
    if (s == MG_OK &&
        (pkey == NULL || !ecdsa_verify(pkey, e->pae, e->pae_len, e->sigs[0], e->sig_lens[0])))
        s = mg_fail(err, MG_E_SIGNATURE, "OMS bundle: the signature does not verify with the "
                    "Fulcio certificate's key");
    ERR_clear_error();
    json_decref(root);
    X509_free(leaf);
    return s;
}

/* ---- the statement -------------------------------------------------------------------- */

typedef struct resource {
    char *path;   /* file path (or the single file's name) */
    uint64_t start, end;
    uint8_t digest[MG_DIGEST_MAX];
} resource;

static int cmp_resource(const void *a, const void *b)
{
    const resource *x = a, *y = b;
    int c = strcmp(x->path, y->path);
    if (c != 0)
        return c;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* Strict decimal: digits only, no leading zero (but "0"), no overflow. */
static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
    if (n == 0 || n > 20 || (n > 1 && s[0] == '0'))
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* A JSON integer, or a real with an integral value (the reference writes 1000000000.0). */
static bool json_whole(const json_t *v, uint64_t *out)
{
    if (json_is_integer(v))
        return mg_json_u64(v, out) && *out >= 1 && *out <= MAX_SHARD_SIZE;
    if (!json_is_real(v))
        return false;
    double d = json_real_value(v);
    if (!(d >= 1.0 && d <= (double)MAX_SHARD_SIZE) || d != (double)(uint64_t)d)
        return false;
    *out = (uint64_t)d;
    return true;
}

static mg_status add_ignore(mg_oms *o, const char *p, mg_error *err)
{
    char **n = mg_reallocarray(o->ignore, o->ignore_count + 1, sizeof *n);
    if (n == NULL)
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    o->ignore = n;
    if ((n[o->ignore_count] = mg_strdup(p)) == NULL)
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    o->ignore_count++;
    return MG_OK;
}

typedef struct serialization {
    mg_digest_alg alg; /* sha256 or (internal) blake2b */
    bool shards;
    uint64_t shard_size;
    bool allow_symlinks;
} serialization;

static mg_status parse_serialization(json_t *ser, serialization *out, mg_oms *o, mg_error *err)
{
    if (!json_is_object(ser))
        return mg_fail(err, MG_E_SIGNATURE, "OMS statement: no predicate.serialization");
    json_t *method = json_object_get(ser, "method");
    if (str_is(method, "shards"))
        out->shards = true;
    else if (!str_is(method, "files"))
        return mg_fail(err, MG_E_SIGNATURE, "OMS statement: serialization.method must be "
                       "\"files\" or \"shards\"");
    json_t *ht = json_object_get(ser, "hash_type");
    if (str_is(ht, "sha256"))
        out->alg = MG_SHA256;
    else if (str_is(ht, "blake2b"))
        out->alg = MG_BLAKE2B;
    else
        return mg_fail(err, MG_E_SIGNATURE, "OMS statement: hash_type '%.40s' is not supported "
                       "(sha256, blake2b)", json_is_string(ht) ? json_string_value(ht) : "?");
    json_t *sym = json_object_get(ser, "allow_symlinks");
    if (sym != NULL && !json_is_boolean(sym))
        return mg_fail(err, MG_E_SIGNATURE, "OMS statement: allow_symlinks is not a boolean");
    out->allow_symlinks = json_is_true(sym);
    if (out->shards && !json_whole(json_object_get(ser, "shard_size"), &out->shard_size))
        return mg_fail(err, MG_E_SIGNATURE, "OMS statement: shard_size must be a whole number "
                       "from 1 to 2^53");
    json_t *ign = json_object_get(ser, "ignore_paths");
    if (ign != NULL && !json_is_array(ign))
        return mg_fail(err, MG_E_SIGNATURE, "OMS statement: ignore_paths is not an array");
    size_t i;
    json_t *p;
    json_array_foreach(ign, i, p) {
        if (!json_is_string(p))
            return mg_fail(err, MG_E_SIGNATURE, "OMS statement: ignore_paths[%zu] is not a "
                           "string", i);
        /* Paths outside the model (absolute, "..") cannot cover a file of it: left out. */
        if (mg_policy_safe_relpath(json_string_value(p))) {
            mg_status s = add_ignore(o, json_string_value(p), err);
            if (s != MG_OK)
                return s;
        }
    }
    return MG_OK;
}

static mg_status parse_resource(json_t *r, size_t i, const serialization *ser,
                                const char *single_name, resource *out, mg_error *err)
{
    json_t *name = json_object_get(r, "name");
    json_t *alg = json_object_get(r, "algorithm");
    json_t *dig = json_object_get(r, "digest");
    if (!json_is_object(r) || !json_is_string(name) || !json_is_string(alg) ||
        !json_is_string(dig))
        return mg_fail(err, MG_E_SIGNATURE, "OMS statement: resources[%zu] needs name, "
                       "algorithm and digest strings", i);
    const char *a = json_string_value(alg);
    char sharded[64];
    const char *hname = mg_digest_name(ser->alg);
    size_t dlen = mg_digest_len(ser->alg);
    snprintf(sharded, sizeof sharded, "%s-sharded-%llu", hname,
             (unsigned long long)ser->shard_size);
    if (strcmp(a, hname) != 0 && !(ser->shards && strcmp(a, sharded) == 0))
        return mg_fail(err, MG_E_SIGNATURE, "OMS statement: resources[%zu].algorithm '%.40s' "
                       "does not match the serialization", i, a);
    if (json_string_length(dig) != 2 * dlen ||
        !mg_hex_decode(json_string_value(dig), out->digest, dlen))
        return mg_fail(err, MG_E_SIGNATURE, "OMS statement: resources[%zu].digest is not %zu "
                       "hex digits", i, 2 * dlen);
    const char *n = json_string_value(name);
    size_t path_len = json_string_length(name);
    if (ser->shards) {
        const char *c2 = memrchr(n, ':', path_len);
        const char *c1 = c2 != NULL ? memrchr(n, ':', (size_t)(c2 - n)) : NULL;
        if (c1 == NULL || !parse_u64(c1 + 1, (size_t)(c2 - c1 - 1), &out->start) ||
            !parse_u64(c2 + 1, path_len - (size_t)(c2 - n) - 1, &out->end) ||
            out->end <= out->start)
            return mg_fail(err, MG_E_SIGNATURE, "OMS statement: resources[%zu].name is not "
                           "path:start:end", i);
        path_len = (size_t)(c1 - n);
    }
    out->path = mg_strndup(n, path_len);
    if (out->path == NULL)
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    if (single_name != NULL) {
        if (strcmp(out->path, ".") != 0 && strcmp(out->path, single_name) != 0)
            return mg_fail(err, MG_E_INTEGRITY, "OMS statement: resource '%.200s' is not the "
                           "single file of the model", out->path);
        free(out->path);
        out->path = mg_strdup(single_name);
        if (out->path == NULL)
            return mg_fail(err, MG_E_LIMIT, "out of memory");
    } else if (strlen(out->path) != path_len || !mg_policy_safe_relpath(out->path)) {
        return mg_fail(err, MG_E_SIGNATURE, "OMS statement: resources[%zu].name is not a safe "
                       "relative path", i);
    }
    return MG_OK;
}

/* Group the (sorted) resources into expected files: one per file, or the shards of a file,
 * which must tile [0, size) in shard_size steps. */
static mg_status build_files(resource *res, size_t n, const serialization *ser, mg_oms *o,
                             mg_error *err)
{
    o->files = mg_calloc(n, sizeof *o->files);
    if (o->files == NULL)
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && strcmp(res[j].path, res[i].path) == 0)
            j++;
        mg_pinned_file *f = &o->files[o->file_count];
        f->path = mg_strdup(res[i].path);
        if (f->path == NULL)
            return mg_fail(err, MG_E_LIMIT, "out of memory");
        o->file_count++;
        f->alg = ser->alg;
        if (!ser->shards) {
            if (j != i + 1)
                return mg_fail(err, MG_E_SIGNATURE, "OMS statement: '%.200s' is listed twice",
                               res[i].path);
            memcpy(f->digest, res[i].digest, mg_digest_len(ser->alg));
            i = j;
            continue;
        }
        f->shards = mg_calloc(j - i, sizeof *f->shards);
        if (f->shards == NULL)
            return mg_fail(err, MG_E_LIMIT, "out of memory");
        f->shard_size = ser->shard_size;
        f->shard_count = j - i;
        for (size_t k = i; k < j; k++) {
            uint64_t want_start = (uint64_t)(k - i) * ser->shard_size;
            bool last = k + 1 == j;
            uint64_t len = res[k].end - res[k].start;
            if (res[k].start != want_start ||
                (last ? len > ser->shard_size : len != ser->shard_size))
                return mg_fail(err, MG_E_INTEGRITY, "OMS statement: the shards of '%.200s' do "
                               "not tile the file in steps of %llu bytes (at %llu:%llu)",
                               res[i].path, (unsigned long long)ser->shard_size,
                               (unsigned long long)res[k].start,
                               (unsigned long long)res[k].end);
            memcpy(f->shards[k - i], res[k].digest, mg_digest_len(ser->alg));
        }
        f->has_size = true;
        f->size = res[j - 1].end;
        mg_status s = mg_shard_root(f, f->digest, err);
        if (s != MG_OK)
            return s;
        i = j;
    }
    return MG_OK;
}

static mg_status parse_statement(const envelope *e, const char *single_name, mg_oms *o,
                                 mg_error *err)
{
    json_t *st = mg_json_parse(e->payload, e->payload_len, "OMS statement", MG_E_SIGNATURE,
                               &mg_json_caps_manifest, err);
    if (st == NULL)
        return MG_E_SIGNATURE;
    mg_status s = MG_OK;
    resource *res = NULL;
    size_t nres = 0;
    json_t *pred = json_object_get(st, "predicate");
    json_t *subj = json_object_get(st, "subject");
    json_t *root = json_object_get(json_object_get(json_array_get(subj, 0), "digest"), "sha256");
    json_t *resources = json_object_get(pred, "resources");
    uint8_t want_root[32];
    serialization ser = {0};
    if (!json_is_object(st) || !str_is(json_object_get(st, "_type"), STATEMENT_TYPE)) {
        s = mg_fail(err, MG_E_SIGNATURE, "OMS statement: _type is not %s", STATEMENT_TYPE);
    } else if (str_is(json_object_get(st, "predicateType"), PREDICATE_TYPE_V02)) {
        s = mg_fail(err, MG_E_SIGNATURE, "OMS statement: legacy v0.2 predicate (Digests/v0.1) "
                    "refused: it does not bind the set of files");
    } else if (!str_is(json_object_get(st, "predicateType"), PREDICATE_TYPE)) {
        s = mg_fail(err, MG_E_SIGNATURE, "OMS statement: predicateType is not %s",
                    PREDICATE_TYPE);
    } else if (!json_is_array(subj) || json_array_size(subj) != 1 || !json_is_string(root) ||
               json_string_length(root) != 64 ||
               !mg_hex_decode(json_string_value(root), want_root, 32)) {
        s = mg_fail(err, MG_E_SIGNATURE, "OMS statement: needs exactly one subject with a "
                    "sha256 digest");
    } else if (!json_is_object(pred) || !json_is_array(resources) ||
               json_array_size(resources) == 0) {
        s = mg_fail(err, MG_E_SIGNATURE, "OMS statement: predicate.resources must be a "
                    "non-empty array");
    } else if (json_array_size(resources) > MG_OMS_MAX_RESOURCES) {
        s = mg_fail(err, MG_E_LIMIT, "OMS statement: more than %u resources",
                    MG_OMS_MAX_RESOURCES);
    } else {
        s = parse_serialization(json_object_get(pred, "serialization"), &ser, o, err);
    }
    if (s == MG_OK) {
        nres = json_array_size(resources);
        res = mg_calloc(nres, sizeof *res);
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        if (res == NULL || ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
            s = mg_fail(err, MG_E_LIMIT, "out of memory");
        for (size_t i = 0; s == MG_OK && i < nres; i++) {
            s = parse_resource(json_array_get(resources, i), i, &ser, single_name, &res[i], err);
            if (s == MG_OK &&
                EVP_DigestUpdate(ctx, res[i].digest, mg_digest_len(ser.alg)) != 1)
                s = mg_fail(err, MG_E_LIMIT, "SHA-256 failed");
        }
        uint8_t have_root[32];
        unsigned hl = 0;
        if (s == MG_OK && EVP_DigestFinal_ex(ctx, have_root, &hl) != 1)
            s = mg_fail(err, MG_E_LIMIT, "SHA-256 failed");
        EVP_MD_CTX_free(ctx);
        if (s == MG_OK && !mg_digest_equal(have_root, want_root, 32))
            s = mg_fail(err, MG_E_SIGNATURE, "OMS statement: the subject digest is not the "
                        "SHA-256 of the resource digests (inconsistent manifest)");
    }
    if (s == MG_OK) {
        qsort(res, nres, sizeof *res, cmp_resource);
        for (size_t i = 1; s == MG_OK && i < nres; i++) {
            if (ser.shards && strcmp(res[i].path, res[i - 1].path) == 0 &&
                res[i].start == res[i - 1].start)
                s = mg_fail(err, MG_E_SIGNATURE, "OMS statement: shard %.200s:%llu is listed "
                            "twice", res[i].path, (unsigned long long)res[i].start);
        }
        if (s == MG_OK)
            s = build_files(res, nres, &ser, o, err);
    }
    if (s == MG_OK) {
        o->shards = ser.shards;
        o->allow_symlinks = ser.allow_symlinks;
    }
    for (size_t i = 0; res != NULL && i < nres; i++)
        free(res[i].path);
    free(res);
    json_decref(st);
    return s;
}

mg_status mg_oms_verify(const mg_policy *pol, const mg_policy_model *entry, const uint8_t *bundle,
                        size_t len, const char *single_name, mg_oms *out, mg_error *err)
{
    memset(out, 0, sizeof *out);
    const mg_oms_policy *op = entry->oms;
    if (op == NULL)
        return mg_fail(err, MG_E_USAGE, "not an OMS model entry");
    json_t *b = mg_json_parse(bundle, len, "OMS bundle", MG_E_SIGNATURE, &mg_json_caps_manifest, err);
    if (b == NULL)
        return MG_E_SIGNATURE;
    envelope e;
    memset(&e, 0, sizeof e);
    mg_status s = MG_OK;
    json_t *vm = json_object_get(b, "verificationMaterial");
    if (!json_is_object(b) || !str_is(json_object_get(b, "mediaType"), BUNDLE_MEDIA_TYPE))
        s = mg_fail(err, MG_E_SIGNATURE, "OMS bundle: mediaType is not %s", BUNDLE_MEDIA_TYPE);
    else if (!json_is_object(vm))
        s = mg_fail(err, MG_E_SIGNATURE, "OMS bundle: no verificationMaterial");
    else
        s = parse_envelope(json_object_get(b, "dsseEnvelope"), &e, err);
    if (s == MG_OK)
        s = op->sigstore_mode ? verify_sigstore(op, vm, &e, err)
            : op->cert_mode   ? verify_cert(op, vm, &e, err)
                              : verify_keys(pol, entry, vm, &e, err);
    if (s == MG_OK)
        s = parse_statement(&e, single_name, out, err);
    static const char *const git[] = {".git", ".gitattributes", ".github", ".gitignore"};
    for (size_t i = 0; s == MG_OK && single_name == NULL && i < 4; i++)
        s = add_ignore(out, git[i], err);
    for (size_t i = 0; s == MG_OK && i < op->ignore_count; i++)
        s = add_ignore(out, op->ignore[i], err);
    if (s == MG_OK && single_name == NULL)
        s = add_ignore(out, op->bundle, err);
    if (s == MG_OK)
        out->allow_symlinks = out->allow_symlinks && op->allow_symlinks;
    envelope_free(&e);
    json_decref(b);
    return s;
}

mg_status mg_oms_parse_statement_unverified(const uint8_t *payload, size_t len,
                                            const char *single_name, mg_oms *out, mg_error *err)
{
    memset(out, 0, sizeof *out);
    envelope e;
    memset(&e, 0, sizeof e);
    e.payload = (uint8_t *)(uintptr_t)payload;
    e.payload_len = len;
    return parse_statement(&e, single_name, out, err);
}

bool mg_oms_checkpoint_check(const char *text, size_t len, const uint8_t *spki_der,
                             size_t spki_len, const uint8_t log_id[32], uint64_t tree_size,
                             const uint8_t root_hash[32], char *why, size_t why_len)
{
    EVP_PKEY *k = NULL;
    if (spki_der != NULL && spki_len <= LONG_MAX) {
        const unsigned char *p = spki_der;
        k = d2i_PUBKEY(NULL, &p, (long)spki_len);
        ERR_clear_error();
    }
    bool ok = checkpoint_ok(text, len, k, log_id, tree_size, root_hash, why, why_len);
    EVP_PKEY_free(k);
    return ok;
}

/* ---- the model folder ----------------------------------------------------------------- */

bool mg_oms_ignored(const mg_oms *o, const char *rel)
{
    for (size_t i = 0; i < o->ignore_count; i++) {
        size_t n = strlen(o->ignore[i]);
        if (strncmp(rel, o->ignore[i], n) == 0 && (rel[n] == '\0' || rel[n] == '/'))
            return true;
    }
    return false;
}

typedef struct found {
    char **names;
    size_t count, cap;
} found;

static mg_status found_add(found *f, const char *name, mg_error *err)
{
    if (f->count >= MG_MAX_FILES)
        return mg_fail(err, MG_E_LIMIT, "more than %u files in the model directory",
                       MG_MAX_FILES);
    if (f->count == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        char **n = mg_reallocarray(f->names, cap, sizeof *n);
        if (n == NULL)
            return mg_fail(err, MG_E_LIMIT, "out of memory");
        f->names = n;
        f->cap = cap;
    }
    if ((f->names[f->count] = mg_strdup(name)) == NULL)
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    f->count++;
    return MG_OK;
}

static mg_status walk(const mg_oms *o, int dirfd, const char *prefix, unsigned depth, found *out,
                      mg_error *err)
{
    if (depth > MG_MAX_DIR_DEPTH)
        return mg_fail(err, MG_E_LIMIT, "model directory nested deeper than %u levels",
                       MG_MAX_DIR_DEPTH);
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return mg_fail(err, MG_E_IO, "cannot read the model directory: %s", strerror(errno));
    }
    mg_status s = MG_OK;
    struct dirent *e;
    char rel[4096 + 258];
    while (s == MG_OK && (errno = 0, e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        int n = snprintf(rel, sizeof rel, "%s%s", prefix, e->d_name);
        if (n < 0 || (size_t)n >= sizeof rel - 1) {
            s = mg_fail(err, MG_E_LIMIT, "a path in the model directory is too long");
            break;
        }
        if (mg_oms_ignored(o, rel))
            continue;
        struct stat st;
        if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            s = mg_fail(err, MG_E_IO, "cannot stat a file of the model: %s", strerror(errno));
            mg_error_set_file(err, rel);
            break;
        }
        if (S_ISLNK(st.st_mode)) {
            if (!o->allow_symlinks) {
                s = mg_fail(err, MG_E_INTEGRITY, "a symlink in the model directory is refused "
                            "(the bundle and the policy must both allow symlinks)");
                mg_error_set_file(err, rel);
                break;
            }
            if (fstatat(fd, e->d_name, &st, 0) != 0) {
                s = mg_fail(err, MG_E_INTEGRITY, "a dangling symlink in the model directory");
                mg_error_set_file(err, rel);
                break;
            }
            if (S_ISDIR(st.st_mode))
                continue; /* not entered, as the reference verifier does */
        }
        if (S_ISREG(st.st_mode)) {
            if (!(o->shards && st.st_size == 0))
                s = found_add(out, rel, err);
        } else if (S_ISDIR(st.st_mode)) {
            int sub = openat(fd, e->d_name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) {
                s = mg_fail(err, MG_E_IO, "cannot open a folder of the model: %s",
                            strerror(errno));
                mg_error_set_file(err, rel);
            } else {
                rel[n] = '/';
                rel[n + 1] = '\0';
                s = walk(o, sub, rel, depth + 1, out, err);
                close(sub);
            }
        } else {
            s = mg_fail(err, MG_E_INTEGRITY, "a special file in the model directory is refused");
            mg_error_set_file(err, rel);
        }
    }
    if (s == MG_OK && errno != 0)
        s = mg_fail(err, MG_E_IO, "cannot read the model directory: %s", strerror(errno));
    closedir(d);
    return s;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

mg_status mg_oms_check_file_set(const mg_oms *o, int dirfd, mg_error *err)
{
    found have = {0};
    mg_status s = walk(o, dirfd, "", 0, &have, err);
    if (s == MG_OK && have.count > 1)
        qsort(have.names, have.count, sizeof *have.names, cmp_str);
    size_t i = 0, j = 0;
    while (s == MG_OK && (i < have.count || j < o->file_count)) {
        int c = i >= have.count ? 1 : j >= o->file_count ? -1
                                    : strcmp(have.names[i], o->files[j].path);
        if (c < 0) {
            s = mg_fail(err, MG_E_INTEGRITY, "a file the bundle does not list is in the model "
                        "directory");
            mg_error_set_file(err, have.names[i]);
        } else if (c > 0) {
            s = mg_fail(err, MG_E_INTEGRITY, "a file the bundle lists is missing");
            mg_error_set_file(err, o->files[j].path);
        } else {
            i++;
            j++;
        }
    }
    for (size_t k = 0; k < have.count; k++)
        free(have.names[k]);
    free(have.names);
    return s;
}

int mg_oms_open(const mg_oms *o, int dirfd, const char *rel)
{
    if (!o->allow_symlinks)
        return mg_openat_nofollow(dirfd, rel, O_RDONLY | O_NONBLOCK);
    const char *slash = strrchr(rel, '/');
    int parent = dirfd;
    if (slash != NULL) {
        char *dir = mg_strndup(rel, (size_t)(slash - rel));
        if (dir == NULL) {
            errno = ENOMEM;
            return -1;
        }
        parent = mg_openat_nofollow(dirfd, dir, O_PATH | O_DIRECTORY);
        free(dir);
        if (parent < 0)
            return -1;
    }
    int fd = openat(parent, slash != NULL ? slash + 1 : rel, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    int saved = errno;
    if (parent != dirfd)
        close(parent);
    errno = saved;
    return fd;
}
