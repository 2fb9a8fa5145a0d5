#!/usr/bin/env bash
# The compose broker: TLS and SASL/SCRAM-SHA-512 on every client listener, the ACL authorizer, no
# plaintext but the KRaft controller's listener on the container's own loopback. Secrets come from the
# environment (secrets/kafka.env, made by `python -m deploy.compose.credentials`); this file holds none.
# On the first start it formats the storage with every user's SCRAM credential (KRaft keeps them in its
# metadata); later starts find the storage formatted and keep the users it has.
set -euo pipefail
: "${CLUSTER_ID:?}" "${KAFKA_STORE_PASSWORD:?}" "${CIRCLES_KAFKA_ADMIN_PASSWORD:?}" "${CIRCLES_SCRAM_USERS:?}"
umask 077
config=/opt/kafka/config/circles-server.properties
scram=org.apache.kafka.common.security.scram.ScramLoginModule
cat > "$config" <<PROPERTIES
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:9093
controller.listener.names=CONTROLLER
listeners=INTERNAL://:9092,CONTROLLER://127.0.0.1:9093,HOST://:9094
advertised.listeners=INTERNAL://kafka:9092,HOST://127.0.0.1:9094
listener.security.protocol.map=CONTROLLER:PLAINTEXT,INTERNAL:SASL_SSL,HOST:SASL_SSL
inter.broker.listener.name=INTERNAL
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.internal.scram-sha-512.sasl.jaas.config=$scram required username="circles-admin" password="$CIRCLES_KAFKA_ADMIN_PASSWORD";
connections.max.reauth.ms=3600000
ssl.keystore.type=PKCS12
ssl.keystore.location=/etc/kafka/tls/broker.p12
ssl.keystore.password=$KAFKA_STORE_PASSWORD
ssl.key.password=$KAFKA_STORE_PASSWORD
ssl.truststore.type=PKCS12
ssl.truststore.location=/etc/kafka/tls/truststore.p12
ssl.truststore.password=$KAFKA_STORE_PASSWORD
ssl.enabled.protocols=TLSv1.3,TLSv1.2
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:circles-admin
log.dirs=/var/lib/kafka/data
auto.create.topics.enable=false
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
PROPERTIES
credentials=()
for pair in $CIRCLES_SCRAM_USERS; do
    credentials+=(--add-scram "SCRAM-SHA-512=[name=${pair%%=*},password=${pair#*=}]")
done
/opt/kafka/bin/kafka-storage.sh format --ignore-formatted --cluster-id "$CLUSTER_ID" -c "$config" "${credentials[@]}"
exec /opt/kafka/bin/kafka-server-start.sh "$config"
