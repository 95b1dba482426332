#!/bin/sh
# Development only, on a Linux host: give each generated secret to the container user that
# reads it, with the least permission that works (Docker Desktop maps ownership itself and
# does not need this). Run as root after deploy/tls/make-certs.sh and deploy/dev-setup.sh:
#
#   sudo deploy/dev-permissions.sh
#
#   uid 1000  (apache/kafka image): the node keystores, the admin password
#   uid 10001 (broker image):       the partners' and the gateway's keys and passphrases
#   both (group 10001, mode 0640):  the SCRAM passwords, which kafka-init sets and the daemons use
# Private keys stay 0600: the broker refuses a key file with any group or other permission.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tls="$here/tls/out"
dev="$here/dev"

chown 1000:1000 "$tls"/kafka-*.keystore.pem "$dev/secrets/admin-password"
chmod 0600 "$tls"/kafka-*.keystore.pem "$dev/secrets/admin-password"
chown 1000:10001 "$dev"/secrets/kafka-password-*
chmod 0640 "$dev"/secrets/kafka-password-*
chown 10001:10001 "$dev"/secrets/key-passphrase-*
chmod 0600 "$dev"/secrets/key-passphrase-*
chown -R 10001:10001 "$dev/keys"
find "$dev/keys" -type f -exec chmod 0600 {} +
chmod 0644 "$tls/ca.pem"
find "$dev/registry" "$dev/accords" -type f -exec chmod 0644 {} +
find "$dev/registry" "$dev/accords" -type d -exec chmod 0755 {} +
echo "permissions set for the development containers"
