#!/usr/bin/env bash
# Runs the whole test suite. Installs what the interop tests drive when it is missing:
# kcat (Debian's, librdkafka 2.0) and the Python clients confluent-kafka and kafka-python.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v kcat >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq kcat >/dev/null
fi
if ! python3 -c 'import confluent_kafka, kafka' >/dev/null 2>&1; then
  python3 -m pip install -q --disable-pip-version-check confluent-kafka kafka-python
fi

# The PostgreSQL and Redis fixtures use DATABASE_URL / REDIS_URL, else the local servers
# when they answer, else private servers started from the installed binaries.
if [ -z "${DATABASE_URL:-}" ] && command -v psql >/dev/null 2>&1 &&
  psql "postgres://postgres@127.0.0.1:5432/postgres" -Atqc 'SELECT 1' >/dev/null 2>&1; then
  export DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres"
fi
if [ -z "${REDIS_URL:-}" ] && command -v redis-cli >/dev/null 2>&1 &&
  [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; then
  export REDIS_URL="redis://127.0.0.1:6379"
fi

exec cargo test --workspace "$@"
