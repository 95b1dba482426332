#!/bin/sh
# A small private CA for the development cluster in deploy/compose.yaml.
#
#   deploy/tls/make-certs.sh [OUT_DIR]        (default: deploy/tls/out, which git ignores)
#
# Writes, with openssl only:
#   ca.pem                     the cluster CA certificate: every client trusts this file alone
#   ca.key                     the CA private key (mode 0600; never mounted into a container)
#   kafka-N.pem                broker N's certificate (CN=kafka-N; SANs kafka-N, localhost, 127.0.0.1)
#   kafka-N.key.pem            broker N's PKCS#8 key, unencrypted (Kafka's PEM keystore)
#   kafka-N.keystore.pem       key + certificate + CA in one file: ssl.keystore.type=PEM
#
# The brokers use their certificate both as TLS server identity (clients check the SAN) and as
# client identity on the internal and controller listeners (mTLS; CN=kafka-N maps to the super
# user User:kafka-N). Partners authenticate with SCRAM-SHA-512 over TLS and need only ca.pem.
#
# Key files are created mode 0600. The apache/kafka image runs as uid 1000: on a Linux host,
# deploy/dev-permissions.sh hands each file to the container user that reads it.
#
# Existing files are never overwritten: delete OUT_DIR to start again. Certificates are valid
# for DAYS days (default 397); the CA for CA_DAYS days (default 1825).
set -eu
umask 077

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-"$here/out"}
days=${DAYS:-397}
ca_days=${CA_DAYS:-1825}
nodes=${NODES:-"kafka-1 kafka-2 kafka-3"}

mkdir -p "$out"
cd "$out"

if [ ! -e ca.pem ]; then
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key
    openssl req -x509 -new -key ca.key -sha256 -days "$ca_days" \
        -subj "/O=broker development/CN=broker development CA" \
        -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash" \
        -out ca.pem
    chmod 0644 ca.pem
    echo "created $out/ca.pem"
fi

for node in $nodes; do
    if [ -e "$node.pem" ]; then
        echo "kept $out/$node.pem (delete it to issue a new one)"
        continue
    fi
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$node.key.pem"
    openssl req -new -key "$node.key.pem" -subj "/O=broker development/CN=$node" \
        -out "$node.csr"
    # serverAuth for the listeners clients connect to; clientAuth for broker-to-broker and
    # broker-to-controller mTLS, where this same certificate is the broker's identity.
    printf '%s\n' \
        "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature" \
        "extendedKeyUsage=serverAuth,clientAuth" \
        "subjectAltName=DNS:$node,DNS:localhost,IP:127.0.0.1" \
        "authorityKeyIdentifier=keyid" > "$node.ext"
    openssl x509 -req -in "$node.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
        -sha256 -days "$days" -extfile "$node.ext" -out "$node.pem"
    cat "$node.key.pem" "$node.pem" ca.pem > "$node.keystore.pem"
    rm -f "$node.csr" "$node.ext"
    chmod 0644 "$node.pem"
    chmod 0600 "$node.key.pem" "$node.keystore.pem"
    openssl verify -CAfile ca.pem "$node.pem" >/dev/null
    echo "created $out/$node.pem ($node.keystore.pem for Kafka)"
done
