#!/bin/sh
# Start one Apache Kafka node of the development cluster in KRaft combined mode
# (broker + controller). Run by deploy/compose.yaml inside the apache/kafka image.
#
# Listeners:
#   CLIENT     :9093  SASL_SSL, SCRAM-SHA-512    partners' adapters, the gateway, the admin
#   INTERNAL   :9091  SSL with client certificates (mTLS)   broker to broker
#   CONTROLLER :9094  SSL with client certificates (mTLS)   the KRaft quorum
# The controller listener cannot use SCRAM: SCRAM credentials live in the metadata log the
# controllers serve. Brokers prove who they are with their certificate (CN=kafka-N ->
# User:kafka-N, a super user); no plaintext listener exists.
#
# Environment: NODE_ID (1..3), CLUSTER_ID (22 characters, the same on every node),
# ADMIN_PASSWORD_FILE (the admin's SCRAM password, created in the metadata at format time).
set -eu
umask 077

: "${NODE_ID:?set NODE_ID}"
: "${CLUSTER_ID:?set CLUSTER_ID}"
: "${ADMIN_PASSWORD_FILE:?set ADMIN_PASSWORD_FILE}"
node="kafka-$NODE_ID"
tls=/etc/kafka/tls
conf_dir=/tmp/kafka-config
mkdir -p "$conf_dir"
conf="$conf_dir/server.properties"

cat > "$conf" <<PROPERTIES
process.roles=broker,controller
node.id=$NODE_ID
controller.quorum.voters=1@kafka-1:9094,2@kafka-2:9094,3@kafka-3:9094
controller.listener.names=CONTROLLER
listeners=CLIENT://:9093,INTERNAL://:9091,CONTROLLER://:9094
advertised.listeners=CLIENT://$node:9093,INTERNAL://$node:9091
listener.security.protocol.map=CLIENT:SASL_SSL,INTERNAL:SSL,CONTROLLER:SSL
inter.broker.listener.name=INTERNAL
log.dirs=/var/lib/kafka/data

ssl.keystore.type=PEM
ssl.keystore.location=$tls/$node.keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$tls/ca.pem
ssl.endpoint.identification.algorithm=https
ssl.enabled.protocols=TLSv1.3,TLSv1.2
listener.name.internal.ssl.client.auth=required
listener.name.controller.ssl.client.auth=required
ssl.principal.mapping.rules=RULE:^CN=(kafka-[0-9]+),O=broker development$/\$1/,DEFAULT

listener.name.client.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.client.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;

authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:admin;User:kafka-1;User:kafka-2;User:kafka-3

auto.create.topics.enable=false
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
unclean.leader.election.enable=false
message.max.bytes=1100000
PROPERTIES

admin_password=$(cat "$ADMIN_PASSWORD_FILE")
# --ignore-formatted: a restart keeps the existing log; the admin credential is written only
# into the bootstrap metadata of a fresh cluster.
/opt/kafka/bin/kafka-storage.sh format --ignore-formatted --cluster-id "$CLUSTER_ID" \
    --config "$conf" --add-scram "SCRAM-SHA-512=[name=admin,password=$admin_password]"
unset admin_password
exec /opt/kafka/bin/kafka-server-start.sh "$conf"
