#!/usr/bin/env bash
# Runs the whole test suite. Installs what the build and the tests need when it is
# missing: OpenSSL's headers (libssl-dev, which librdkafka's TLS is built against), kcat
# (Debian's, librdkafka 2.0), Chromium (the status page of `agentbus dev`), promtool,
# docker-compose and systemd-analyze (the deployment files' checkers); the Python clients
# confluent-kafka and kafka-python (with the codec libraries kafka-python reads lz4, zstd
# and snappy batches with), pytest (the control API's Python example), DuckDB (a second
# Parquet implementation that reads the audit archive) and PyYAML (reads the Kubernetes
# manifests).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for pair in kcat:kcat chromium:chromium promtool:prometheus docker-compose:docker-compose \
  systemd-analyze:systemd; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
# librdkafka is built with TLS and SASL SCRAM against the system OpenSSL.
pkg-config --exists openssl 2>/dev/null || missing+=(libssl-dev pkg-config)
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Pinned, so CI does not move under the tests; bump on purpose and run the interop tests.
# kafka-python stays on 2.3: 3.0.x (3.0.12 seen) now and then hangs a consumer under load
# (its poll waits on its IO thread, which sleeps in select), and the group then drops it.
PY_CLIENTS="confluent-kafka==2.16.1 kafka-python==2.3.3 duckdb==1.4.2 PyYAML==6.0.3
  lz4==4.4.4 zstandard==0.23.0 python-snappy==0.7.3 cramjam==2.9.1 pytest==8.3.5"
if ! python3 - $PY_CLIENTS <<'PY' >/dev/null 2>&1; then
import sys
from importlib.metadata import version
sys.exit(any(version(n) != v for n, v in (a.split("==") for a in sys.argv[1:])))
PY
  python3 -m pip install -q --disable-pip-version-check $PY_CLIENTS
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
