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

exec cargo test --workspace "$@"
