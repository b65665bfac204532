#!/usr/bin/env bash
# The kafka-init service (docker-compose.yml): one-shot, as the admin principal, once the broker answers.
#   1. a SCRAM-SHA-512 user for every principal in acls.txt, its password from SASL_PASSWORD_<PRINCIPAL>
#      (upper case, `-` as `_`: agency-witness-care -> SASL_PASSWORD_AGENCY_WITNESS_CARE);
#   2. every grant in acls.txt;
#   3. faust's single-partition leader-election topic, which the workers do not create themselves.
# Running it again changes nothing but the passwords, which it sets to the environment's.
set -euo pipefail

# Where compose mounts them; tests/unit/test_deploy.py runs this script with stand-ins for the Kafka tools.
BIN=${KAFKA_BIN:-/opt/kafka/bin}
ACLS=${KAFKA_ACLS:-/etc/kafka/hub/acls.txt}
CA=${KAFKA_CA:-/etc/kafka/ca/ca.crt}
BOOTSTRAP=kafka:9092

# Passwords go into files only this process can read, never on a command line (other processes see those).
umask 077
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

password_variable() {
  printf 'SASL_PASSWORD_%s' "$(printf '%s' "$1" | tr 'a-z-' 'A-Z_')"
}

# The grants, without comments and blank lines: principal, type, pattern, name, operations.
sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$ACLS" >"$WORK/grants"
principals=$(awk '{print $1}' "$WORK/grants" | sort -u)

# Every password first, so a missing one stops the script before it changes anything.
for principal in admin $principals; do
  variable=$(password_variable "$principal")
  if [[ -z "${!variable:-}" ]]; then
    echo "kafka-init: $variable is not set (the password of principal $principal)" >&2
    exit 1
  fi
done

variable=$(password_variable admin)
cat >"$WORK/admin.properties" <<EOF
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="${!variable}";
ssl.truststore.type=PEM
ssl.truststore.location=$CA
EOF
ADMIN=(--bootstrap-server "$BOOTSTRAP" --command-config "$WORK/admin.properties")

for principal in $principals; do
  variable=$(password_variable "$principal")
  printf 'SCRAM-SHA-512=[iterations=8192,password=%s]\n' "${!variable}" >"$WORK/scram.properties"
  "$BIN/kafka-configs.sh" "${ADMIN[@]}" --alter --entity-type users --entity-name "$principal" \
    --add-config-file "$WORK/scram.properties" </dev/null
done

while read -r principal type pattern name operations; do
  arguments=()
  for operation in $operations; do
    arguments+=(--operation "$operation")
  done
  "$BIN/kafka-acls.sh" "${ADMIN[@]}" --add --allow-principal "User:$principal" \
    "--$type" "$name" --resource-pattern-type "$pattern" "${arguments[@]}" </dev/null
done <"$WORK/grants"

# Its name is the workers' consumer group (HUB_APP_ID) and a suffix; faust would otherwise ask the broker to
# auto-create it, which the broker does not do.
"$BIN/kafka-topics.sh" "${ADMIN[@]}" --create --if-not-exists --topic "$FAUST_LEADER_TOPIC" \
  --partitions 1 --replication-factor 1 </dev/null
