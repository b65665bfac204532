#!/usr/bin/env bash
# The kafka service's command (docker-compose.yml): the image's own start (/etc/kafka/docker/run: configure,
# then launch), with what needs the broker's passwords in between. They come from the environment and are
# written only inside the container:
# - the JAAS file: the broker's own credentials, as the SCRAM client of its inter-broker listener and as the
#   PLAIN user of its controller listener (KRaft controllers do not take SCRAM);
# - on the first start, the storage formatted with the SCRAM credentials of `broker` and `admin`: KRaft keeps
#   SCRAM users in its metadata, so these two must exist before it runs; kafka-init creates the rest as admin.
set -euo pipefail
: "${SASL_PASSWORD_BROKER:?set SASL_PASSWORD_BROKER}" "${SASL_PASSWORD_ADMIN:?set SASL_PASSWORD_ADMIN}"

umask 077
CONFIG=/opt/kafka/config

cat >"$CONFIG/kafka_server_jaas.conf" <<EOF
KafkaServer {
  org.apache.kafka.common.security.scram.ScramLoginModule required
  username="broker"
  password="$SASL_PASSWORD_BROKER";
};
controller.KafkaServer {
  org.apache.kafka.common.security.plain.PlainLoginModule required
  username="broker"
  password="$SASL_PASSWORD_BROKER"
  user_broker="$SASL_PASSWORD_BROKER";
};
EOF
export KAFKA_OPTS="-Djava.security.auth.login.config=$CONFIG/kafka_server_jaas.conf"

# The healthcheck's client settings (docker-compose.yml), as the broker's own principal.
cat >"$CONFIG/healthcheck.properties" <<EOF
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="broker" password="$SASL_PASSWORD_BROKER";
ssl.truststore.type=PEM
ssl.truststore.location=/etc/kafka/ca/ca.crt
EOF

/etc/kafka/docker/configure
# kafka-storage takes SCRAM credentials on its command line only; it runs before the broker, inside the container.
/opt/kafka/bin/kafka-storage.sh format --ignore-formatted --cluster-id "$CLUSTER_ID" \
  --config "$CONFIG/server.properties" \
  --add-scram "SCRAM-SHA-512=[name=broker,password=$SASL_PASSWORD_BROKER]" \
  --add-scram "SCRAM-SHA-512=[name=admin,password=$SASL_PASSWORD_ADMIN]"
exec /etc/kafka/docker/launch
