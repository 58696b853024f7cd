#!/bin/sh
# Make a throw-away test CA and server certificates for tests/tls/server.py, with the
# openssl command-line tool only. Usage: make_certs.sh OUTDIR
#
#   ca.pem                      the test CA (give it to modelgate as ca_file)
#   good.pem / good.key         signed by the CA, SAN IP:127.0.0.1 and DNS:localhost
#   wronghost.pem / .key        signed by the CA, SAN DNS:wrong-host.invalid only
#   expired.pem / .key          signed by the CA, SAN as good, valid 2020-01-01..2020-01-02
#   selfsigned.pem / .key       SAN as good, self-signed (not under the CA)
#
# Keys are P-256 so the whole set takes well under a second. Nothing here is secret.
set -eu
out=$1
mkdir -p "$out"
cd "$out"
umask 077

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

key ca.key
openssl req -x509 -new -key ca.key -subj "/CN=modelgate test CA" -days 2 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out ca.pem 2>/dev/null

leaf_ext() {
    printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' "$1"
}

# signed NAME SAN: a leaf certificate signed by the test CA, valid from now for 2 days.
signed() {
    key "$1.key"
    openssl req -new -key "$1.key" -subj "/CN=$1" -out "$1.csr" 2>/dev/null
    leaf_ext "$2" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -sha256 \
        -extfile "$1.ext" -out "$1.pem" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}

signed good "IP:127.0.0.1,DNS:localhost"
signed wronghost "DNS:wrong-host.invalid"

# An expired leaf: `openssl ca` is the CLI's way to set explicit validity dates.
key expired.key
openssl req -new -key expired.key -subj "/CN=expired" -out expired.csr 2>/dev/null
mkdir -p ca.db
: > ca.db/index.txt
printf '1000\n' > ca.db/serial
cat > ca.cnf <<CNF
[ ca ]
default_ca = test_ca
[ test_ca ]
dir = ca.db
database = ca.db/index.txt
serial = ca.db/serial
new_certs_dir = ca.db
certificate = ca.pem
private_key = ca.key
default_md = sha256
policy = any_policy
unique_subject = no
copy_extensions = none
x509_extensions = leaf
[ any_policy ]
commonName = supplied
[ leaf ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
CNF
openssl ca -batch -config ca.cnf -in expired.csr -startdate 20200101000000Z \
    -enddate 20200102000000Z -out expired.pem -notext 2>/dev/null
rm -rf ca.db ca.cnf expired.csr ca.srl

key selfsigned.key
openssl req -x509 -new -key selfsigned.key -subj "/CN=127.0.0.1" -days 2 -sha256 \
    -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" -out selfsigned.pem 2>/dev/null
chmod 0644 *.pem
