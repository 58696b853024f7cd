#!/usr/bin/env bash
# Regenerate the signature test data (keys made once for tests, signatures made by the real
# tools, and forgeries that must fail). Needs: openssl 3, minisign, Debian's python3 with
# python3-cryptography. Keys are random: rerunning changes every file; commit the result.
# The private keys here are TEST KEYS ONLY.
set -euo pipefail
cd "$(dirname "$0")"
rm -f ./*.pem ./*.sig ./*.minisig ./*.pub ./*.sec ./*.txt ./*.bin ./*.json ./vectors.tsv ./keys.tsv

# ---- keys -------------------------------------------------------------------------------
openssl genpkey -algorithm ED25519 -out ed25519.key.pem
openssl genpkey -algorithm ED25519 -out ed25519-other.key.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out p256.key.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out p384.key.pem
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa2048.key.pem
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out rsa1024.key.pem
openssl genpkey -algorithm ED448 -out ed448.key.pem
openssl genpkey -algorithm X25519 -out x25519.key.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:secp256k1 -out secp256k1.key.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-521 -out p521.key.pem
for k in ed25519 ed25519-other p256 p384 rsa2048 rsa1024 ed448 x25519 secp256k1 p521; do
  openssl pkey -in $k.key.pem -pubout -out $k.pub.pem
done
openssl ec -in p256.key.pem -pubout -param_enc explicit -out p256-explicit.pub.pem 2>/dev/null
openssl ec -in p256.key.pem -pubout -conv_form compressed -out p256-compressed.pub.pem 2>/dev/null
openssl rsa -in rsa2048.key.pem -RSAPublicKey_out -out rsa2048-pkcs1.pub.pem 2>/dev/null
{ cat ed25519.pub.pem; echo "trailing"; } > ed25519-trailing.pub.pem
{ echo "leading text"; cat ed25519.pub.pem; } > ed25519-leading.pub.pem
{ cat ed25519.pub.pem; cat p256.pub.pem; } > two-keys.pub.pem
sed 's/=$/A=/' p256.pub.pem > p256-badb64.pub.pem
tr -d '\n' < ed25519.pub.pem > ed25519-oneline.pub.pem
sed 's/$/\r/' ed25519.pub.pem > ed25519-crlf.pub.pem
minisign -G -W -p minisign.pub -s minisign.sec >/dev/null
minisign -G -W -p minisign-other.pub -s minisign-other.sec >/dev/null

# ---- messages ---------------------------------------------------------------------------
printf '{"modelgate_manifest":1,"name":"vec","version":1,"files":[]}\n' > msg.txt
printf 'another message\n' > other.txt
printf 'hello\n' > hello.txt
openssl dgst -sha256 -binary msg.txt > msg.sha256.bin

# ---- signatures by the openssl CLI ------------------------------------------------------
openssl pkeyutl -sign -inkey rsa2048.key.pem -in msg.sha256.bin -out rsa-pss-saltmax.openssl.sig \
  -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:max -pkeyopt digest:sha256
openssl dgst -sha256 -sign rsa2048.key.pem -sigopt rsa_padding_mode:pss \
  -sigopt rsa_pss_saltlen:digest -out rsa-pss-salt32.openssl.sig msg.txt
openssl dgst -sha256 -sign rsa2048.key.pem -sigopt rsa_padding_mode:pss \
  -sigopt rsa_pss_saltlen:0 -out rsa-pss-salt0.openssl.sig msg.txt
openssl dgst -sha256 -sign rsa2048.key.pem -out forged-rsa-pkcs1v15.openssl.sig msg.txt
openssl dgst -sha512 -sign rsa2048.key.pem -sigopt rsa_padding_mode:pss \
  -sigopt rsa_mgf1_md:sha512 -out forged-rsa-pss-sha512.openssl.sig msg.txt
openssl pkeyutl -sign -rawin -inkey ed25519.key.pem -in msg.txt -out ed25519.openssl.sig
openssl pkeyutl -sign -rawin -inkey ed25519-other.key.pem -in msg.txt -out forged-ed25519-otherkey.openssl.sig
openssl dgst -sha256 -sign p256.key.pem -out p256.openssl.sig msg.txt
openssl dgst -sha384 -sign p384.key.pem -out p384.openssl.sig msg.txt
openssl dgst -sha384 -sign p256.key.pem -out forged-p256-sha384.openssl.sig msg.txt
openssl dgst -sha256 -sign p384.key.pem -out forged-p384-sha256.openssl.sig msg.txt

# ---- signatures by minisign ---------------------------------------------------------------
minisign -S -s minisign.sec -m msg.txt -x msg.minisig -t "file:msg.txt purpose:test" >/dev/null
minisign -S -l -s minisign.sec -m msg.txt -x forged-legacy.minisig -t "legacy" >/dev/null
minisign -S -s minisign-other.sec -m msg.txt -x forged-otherkey.minisig >/dev/null
minisign -S -s minisign.sec -m other.txt -x forged-othermsg.minisig >/dev/null
minisign -V -H -p minisign.pub -m msg.txt -x msg.minisig -q

# ---- signatures by Python cryptography, and the forgeries ---------------------------------
/usr/bin/python3 - <<'PY'
import base64
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding

def key(name):
    with open(name, "rb") as f:
        return serialization.load_pem_private_key(f.read(), None)

msg = open("msg.txt", "rb").read()
def out(name, data):
    with open(name, "wb") as f:
        f.write(data)

rsa = key("rsa2048.key.pem")
pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)
out("rsa-pss-saltmax.py.sig", rsa.sign(msg, pss, hashes.SHA256()))
out("ed25519.py.sig", key("ed25519.key.pem").sign(msg))
out("p256.py.sig", key("p256.key.pem").sign(msg, ec.ECDSA(hashes.SHA256())))
out("p384.py.sig", key("p384.key.pem").sign(msg, ec.ECDSA(hashes.SHA384())))

ed = bytearray(open("ed25519.openssl.sig", "rb").read())
flipped = bytearray(ed); flipped[10] ^= 1
out("forged-ed25519-bitflip.sig", bytes(flipped))
# Malleability: S + L encodes the same scalar; RFC 8032 verifiers must refuse S >= L.
L = 2**252 + 27742317777372353535851937790883648493
s = int.from_bytes(ed[32:], "little") + L
out("forged-ed25519-s-plus-l.sig", bytes(ed[:32]) + s.to_bytes(32, "little"))
out("forged-ed25519-truncated.sig", bytes(ed[:63]))
out("forged-ed25519-extended.sig", bytes(ed) + b"\0")
der = open("p256.openssl.sig", "rb").read()
out("forged-p256-trailing.sig", der + b"\0")
# The same (r, s) as fixed-width r||s instead of DER.
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
r, s_ = decode_dss_signature(der)
out("forged-p256-raw-rs.sig", r.to_bytes(32, "big") + s_.to_bytes(32, "big"))
# BER long-form length in the SEQUENCE header: same values, non-DER encoding.
body = der[2:]
out("forged-p256-ber.sig", b"\x30\x81" + bytes([len(body)]) + body)
rs = open("rsa-pss-saltmax.openssl.sig", "rb").read()
out("forged-rsa-pss-bitflip.sig", rs[:-1] + bytes([rs[-1] ^ 0x40]))
out("forged-rsa-pss-truncated.sig", rs[1:])
out("forged-empty.sig", b"")

# minisign forgeries from the good signature.
lines = open("msg.minisig", "rb").read().split(b"\n")
def ms(name, ls):
    out(name, b"\n".join(ls))
t = list(lines); t[2] = b"trusted comment: file:msg.txt purpose:prod"
ms("forged-trusted-comment.minisig", t)
sig = bytearray(base64.b64decode(lines[1])); sig[20] ^= 1
t = list(lines); t[1] = base64.b64encode(bytes(sig)); ms("forged-sig-bitflip.minisig", t)
g = bytearray(base64.b64decode(lines[3])); g[5] ^= 1
t = list(lines); t[3] = base64.b64encode(bytes(g)); ms("forged-global-bitflip.minisig", t)
# Global signature of another signature file moved over (comment/sig mix and match).
other = open("forged-othermsg.minisig", "rb").read().split(b"\n")
t = list(lines); t[3] = other[3]; ms("forged-global-swapped.minisig", t)
t = list(lines); t[1] = t[1][:2].replace(b"RU", b"RW") + t[1][2:]
ms("forged-alg-Ed-label.minisig", t)
ms("forged-three-lines.minisig", lines[:3])
ms("forged-extra-line.minisig", lines[:4] + [b"extra", b""])
t = list(lines); t[0] = b"untrusted: x"; ms("forged-no-untrusted-prefix.minisig", t)
t = list(lines); t[2] = b"trusted comment: a\x01b"; ms("forged-control-char.minisig", t)
t = list(lines); t[1] = t[1] + b"A"; ms("forged-long-b64.minisig", t)
ms("msg-crlf.minisig", [l + b"\r" if l else l for l in lines])
ms("msg-no-final-newline.minisig", lines[:4])
PY

# ---- a manifest signed three ways (tests/unit/test_manifest.c) --------------------------------
cat > manifest-vec.json <<'V'
{
  "modelgate_manifest": 1,
  "name": "vec",
  "version": 3,
  "expires": "2099-12-31T23:59:59Z",
  "files": [
    { "path": "weights/model.safetensors", "size": 6, "sha256": "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03" }
  ]
}
V
openssl pkeyutl -sign -rawin -inkey ed25519.key.pem -in manifest-vec.json -out manifest-vec.json.ed25519.sig
openssl dgst -sha256 -sign p256.key.pem -out manifest-vec.json.p256.sig manifest-vec.json
minisign -S -s minisign.sec -m manifest-vec.json -x manifest-vec.json.minisig >/dev/null
# The Ed25519 PEM key's public half as a minisign key, and a .minisig made with it by an
# independent implementation (Python: BLAKE2b-512 prehash, then the global signature).
/usr/bin/python3 - <<'PY'
import base64, hashlib
from cryptography.hazmat.primitives import serialization
sk = serialization.load_pem_private_key(open("ed25519.key.pem", "rb").read(), None)
pk = sk.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
keyid = bytes.fromhex("0102030405060708")
with open("ed25519.minisign.pub", "wb") as f:
    f.write(b"untrusted comment: the key of ed25519.key.pem as a minisign key\n")
    f.write(base64.b64encode(b"Ed" + keyid + pk) + b"\n")
msg = open("manifest-vec.json", "rb").read()
sig = sk.sign(hashlib.blake2b(msg, digest_size=64).digest())
comment = b"file:manifest-vec.json"
glob = sk.sign(sig + comment)
with open("manifest-vec.json.ed25519.minisig", "wb") as f:
    f.write(b"untrusted comment: made from ed25519.key.pem\n")
    f.write(base64.b64encode(b"ED" + keyid + sig) + b"\n")
    f.write(b"trusted comment: " + comment + b"\n")
    f.write(base64.b64encode(glob) + b"\n")
PY
minisign -V -H -p ed25519.minisign.pub -m manifest-vec.json -x manifest-vec.json.ed25519.minisig -q

# ---- the trust.md §2.5 test vectors (minisign 0.11; message "hello\n") -----------------------
cat > trustmd.pub <<'V'
untrusted comment: minisign public key 4D3B9DA57975C09D
RWSdwHV5pZ07TVoo+JFdi1zf0RD/C+Ibwlj6k11+ro55skOFy6YxKgk6
V
cat > trustmd-hello.minisig <<'V'
untrusted comment: test vector
RUSdwHV5pZ07TUtdtn7Ect9wqNtiSbnjymB3P/HHpmXzCvGplaEAuO8s2xyPF2vVJ29X9cX3Mh/jcOFP8CZxTXAxqunF4wKDIAY=
trusted comment: file:hello.txt version:1
0A3IwKkU/dhs3DTDzEcG35o0qzMaCTE6G4/LVSsRDyhw7mDwl2mSwpXJCLFdkF91TXPTE9imMR5JCG4rpTBIBA==
V
cat > trustmd-hello-legacy.minisig <<'V'
untrusted comment: test vector legacy
RWSdwHV5pZ07TXLVxwe8bGz53bGvRixTE7SyKpQKpkDekdZURGdWj19oeGQbfVeT3SMeF8oj3sdnl3uevg38A2gxO6OlGaeYgwg=
trusted comment: file:hello.txt legacy
wZPpqzjPpErNym+PnSVKO2wwh8ucFqouzNEUEgv3dMaECLi6jSfEYzYxBOtiNlzymYYlCdE03cw9+PDPeePDDA==
V
minisign -V -p trustmd.pub -m hello.txt -x trustmd-hello.minisig -q

# ---- the tables the unit test iterates ----------------------------------------------------
{
  printf 'ed25519.pub.pem\t0\tEd25519 SubjectPublicKeyInfo\n'
  printf 'ed25519-crlf.pub.pem\t0\tCRLF line endings\n'
  printf 'p256.pub.pem\t0\tECDSA P-256\n'
  printf 'p384.pub.pem\t0\tECDSA P-384\n'
  printf 'rsa2048.pub.pem\t0\tRSA 2048\n'
  printf 'rsa1024.pub.pem\t3\tRSA below 2048 bits\n'
  printf 'ed448.pub.pem\t3\tEd448 is not accepted\n'
  printf 'x25519.pub.pem\t3\tX25519 is not a signature key\n'
  printf 'secp256k1.pub.pem\t3\tcurve not accepted\n'
  printf 'p521.pub.pem\t0\tECDSA P-521 (SHA-512; OMS bundles)\n'
  printf 'p256-explicit.pub.pem\t3\texplicit curve parameters\n'
  printf 'p256-compressed.pub.pem\t%s\tcompressed point\n' "${COMPRESSED_EXPECT:-0}"
  printf 'rsa2048-pkcs1.pub.pem\t3\tPKCS#1 RSAPublicKey, not SubjectPublicKeyInfo\n'
  printf 'ed25519-trailing.pub.pem\t3\ttrailing garbage\n'
  printf 'ed25519-leading.pub.pem\t3\tleading text\n'
  printf 'two-keys.pub.pem\t3\ttwo PEM blocks\n'
  printf 'p256-badb64.pub.pem\t3\tbad base64 in the body\n'
  printf 'ed25519-oneline.pub.pem\t3\tno line breaks\n'
  printf 'ed25519.key.pem\t3\ta private key\n'
  printf 'minisign.pub\t3\ta minisign key file is not PEM\n'
} > keys.tsv
{
  v() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@"; }
  v rsa2048.pub.pem msg.txt rsa-pss-saltmax.openssl.sig raw 0 "openssl pkeyutl PSS salt=max over the SHA-256"
  v rsa2048.pub.pem msg.txt rsa-pss-salt32.openssl.sig raw 0 "openssl dgst PSS salt=digest"
  v rsa2048.pub.pem msg.txt rsa-pss-salt0.openssl.sig raw 0 "openssl dgst PSS salt=0"
  v rsa2048.pub.pem msg.txt rsa-pss-saltmax.py.sig raw 0 "cryptography PSS MAX_LENGTH"
  v rsa2048.pub.pem other.txt rsa-pss-saltmax.py.sig raw 5 "PSS over another message"
  v rsa2048.pub.pem msg.txt forged-rsa-pkcs1v15.openssl.sig raw 5 "PKCS#1 v1.5 padding"
  v rsa2048.pub.pem msg.txt forged-rsa-pss-sha512.openssl.sig raw 5 "PSS with SHA-512"
  v rsa2048.pub.pem msg.txt forged-rsa-pss-bitflip.sig raw 5 "PSS bit flipped"
  v rsa2048.pub.pem msg.txt forged-rsa-pss-truncated.sig raw 5 "PSS truncated"
  v rsa2048.pub.pem msg.txt forged-empty.sig raw 5 "empty signature"
  v ed25519.pub.pem msg.txt ed25519.openssl.sig raw 0 "openssl pkeyutl -rawin"
  v ed25519.pub.pem msg.txt ed25519.py.sig raw 0 "cryptography Ed25519"
  v ed25519.pub.pem other.txt ed25519.py.sig raw 5 "Ed25519 over another message"
  v ed25519.pub.pem msg.txt forged-ed25519-otherkey.openssl.sig raw 5 "Ed25519 by another key"
  v ed25519.pub.pem msg.txt forged-ed25519-bitflip.sig raw 5 "Ed25519 bit flipped"
  v ed25519.pub.pem msg.txt forged-ed25519-s-plus-l.sig raw 5 "Ed25519 S+L (malleated)"
  v ed25519.pub.pem msg.txt forged-ed25519-truncated.sig raw 5 "Ed25519 63 bytes"
  v ed25519.pub.pem msg.txt forged-ed25519-extended.sig raw 5 "Ed25519 65 bytes"
  v ed25519.pub.pem msg.txt p256.openssl.sig raw 5 "ECDSA signature under an Ed25519 key"
  v p256.pub.pem msg.txt p256.openssl.sig raw 0 "openssl dgst -sha256 ECDSA P-256"
  v p256.pub.pem msg.txt p256.py.sig raw 0 "cryptography ECDSA P-256"
  v p256.pub.pem other.txt p256.py.sig raw 5 "P-256 over another message"
  v p256.pub.pem msg.txt forged-p256-sha384.openssl.sig raw 5 "P-256 with SHA-384"
  v p256.pub.pem msg.txt forged-p256-trailing.sig raw 5 "DER with a trailing byte"
  v p256.pub.pem msg.txt forged-p256-raw-rs.sig raw 5 "r||s instead of DER"
  v p256.pub.pem msg.txt forged-p256-ber.sig raw 5 "BER long-form length"
  v p384.pub.pem msg.txt p384.openssl.sig raw 0 "openssl dgst -sha384 ECDSA P-384"
  v p384.pub.pem msg.txt p384.py.sig raw 0 "cryptography ECDSA P-384"
  v p384.pub.pem msg.txt forged-p384-sha256.openssl.sig raw 5 "P-384 with SHA-256"
  v minisign.pub msg.txt msg.minisig minisig 0 "minisign 0.11 prehashed"
  v minisign.pub msg.txt msg-crlf.minisig minisig 0 "CRLF line endings"
  v minisign.pub msg.txt msg-no-final-newline.minisig minisig 0 "no final newline"
  v minisign.pub other.txt msg.minisig minisig 5 "another message"
  v minisign.pub msg.txt forged-legacy.minisig minisig 5 "legacy Ed refused"
  v minisign.pub msg.txt forged-otherkey.minisig minisig 5 "key id mismatch"
  v minisign.pub msg.txt forged-othermsg.minisig minisig 5 "signature of another message"
  v minisign.pub msg.txt forged-trusted-comment.minisig minisig 5 "trusted comment edited"
  v minisign.pub msg.txt forged-sig-bitflip.minisig minisig 5 "signature bit flipped"
  v minisign.pub msg.txt forged-global-bitflip.minisig minisig 5 "global signature bit flipped"
  v minisign.pub msg.txt forged-global-swapped.minisig minisig 5 "global signature of another file"
  v minisign.pub msg.txt forged-alg-Ed-label.minisig minisig 5 "ED relabelled Ed"
  v minisign.pub msg.txt forged-three-lines.minisig minisig 5 "three lines"
  v minisign.pub msg.txt forged-extra-line.minisig minisig 5 "a fifth line"
  v minisign.pub msg.txt forged-no-untrusted-prefix.minisig minisig 5 "line 1 prefix"
  v minisign.pub msg.txt forged-control-char.minisig minisig 5 "control character in trusted comment"
  v minisign.pub msg.txt forged-long-b64.minisig minisig 5 "line 2 too long"
  v minisign-other.pub msg.txt msg.minisig minisig 5 "another minisign key"
  v trustmd.pub hello.txt trustmd-hello.minisig minisig 0 "trust.md 2.5 prehashed vector"
  v trustmd.pub msg.txt trustmd-hello.minisig minisig 5 "trust.md vector, wrong message"
  v trustmd.pub hello.txt trustmd-hello-legacy.minisig minisig 5 "trust.md 2.5 legacy vector (refused by design)"
} > vectors.tsv
rm -f msg.sha256.bin
