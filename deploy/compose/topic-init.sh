#!/bin/bash
# Creates every topic of the topics.conf files (name, partitions, key=value configs; TOPICS_CONF
# may name several, space-separated) that is missing, with
# replication factor $REPLICATION_FACTOR. Runs in the apache/kafka image (compose's topic-init
# service and the Kubernetes topic-init Job, which carries a copy of this file that
# scripts/check-deploy keeps identical). Existing topics are left as they are.
set -euo pipefail
BOOTSTRAP="${BOOTSTRAP_SERVERS:?BOOTSTRAP_SERVERS is required}"
CONF="${TOPICS_CONF:-/etc/leadflow/topics.conf}"
RF="${REPLICATION_FACTOR:-3}"
TOPICS="${KAFKA_TOPICS_SH:-/opt/kafka/bin/kafka-topics.sh}"

for conf in $CONF; do
    [ -r "$conf" ] || { echo "topic-init: cannot read $conf" >&2; exit 1; }
done

for attempt in $(seq 1 60); do
    "$TOPICS" --bootstrap-server "$BOOTSTRAP" --list >/dev/null 2>&1 && break
    [ "$attempt" -eq 60 ] && { echo "topic-init: Kafka at $BOOTSTRAP never answered" >&2; exit 1; }
    sleep 2
done

created=0
# shellcheck disable=SC2086 # CONF is a space-separated list of files
while read -r name partitions rest; do
    case "$name" in '' | '#'*) continue ;; esac
    args=(--create --if-not-exists --topic "$name" --partitions "$partitions" --replication-factor "$RF")
    for kv in $rest; do
        case "$kv" in '#'*) break ;; esac
        args+=(--config "$kv")
    done
    "$TOPICS" --bootstrap-server "$BOOTSTRAP" "${args[@]}"
    created=$((created + 1))
done < <(cat $CONF)
echo "topic-init: $created topics present (replication factor $RF)"
"$TOPICS" --bootstrap-server "$BOOTSTRAP" --describe | grep -E '^Topic:' || true
