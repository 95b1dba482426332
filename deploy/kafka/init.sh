#!/bin/sh
# One-shot provisioning of the development cluster, run by deploy/compose.yaml (service
# kafka-init) in the apache/kafka image once all three nodes are healthy:
#   1. SCRAM-SHA-512 credentials for every client principal (gateway, adapter-<p>, auditor,
#      witness);
#   2. the topics (topics.sh: replication 3, min.insync.replicas 2);
#   3. the ACLs (acls.sh, the output of `broker deploy acls --format kafka-acls`).
# Every step is idempotent, so the job can be re-run after a change.
#
# Passwords are read from /run/secrets (compose secrets); only the admin's reaches a file,
# the client properties in /tmp, which is a tmpfs that dies with the container.
set -eu
umask 077

PATH=/opt/kafka/bin:$PATH
secrets=/run/secrets
here=$(cd "$(dirname "$0")" && pwd)
export BOOTSTRAP=${BOOTSTRAP:-kafka-1:9093,kafka-2:9093,kafka-3:9093}
export ADMIN_CONFIG=/tmp/admin.properties

{
    echo "security.protocol=SASL_SSL"
    echo "sasl.mechanism=SCRAM-SHA-512"
    printf 'sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="%s";\n' \
        "$(cat "$secrets/admin-password")"
    echo "ssl.truststore.type=PEM"
    echo "ssl.truststore.location=/etc/kafka/tls/ca.pem"
} > "$ADMIN_CONFIG"

attempt=0
until kafka-topics.sh --bootstrap-server "$BOOTSTRAP" --command-config "$ADMIN_CONFIG" \
        --list >/dev/null 2>&1; do
    attempt=$((attempt + 1))
    if [ "$attempt" -ge 30 ]; then
        echo "kafka-init: the cluster did not answer the admin at $BOOTSTRAP" >&2
        exit 1
    fi
    sleep 2
done

for user in gateway auditor witness adapter-gb adapter-rs adapter-mk adapter-xk adapter-tr adapter-al; do
    # The password crosses the command line of this short-lived container only; production
    # clusters (Strimzi) generate and hold SCRAM secrets themselves.
    kafka-configs.sh --bootstrap-server "$BOOTSTRAP" --command-config "$ADMIN_CONFIG" \
        --alter --entity-type users --entity-name "$user" \
        --add-config "SCRAM-SHA-512=[iterations=8192,password=$(cat "$secrets/kafka-password-$user")]"
done

sh "$here/topics.sh"
sh "$here/acls.sh"
echo "kafka-init: users, topics and ACLs are in place"
