#!/usr/bin/env bash
# The control API from a shell script: start a three-broker agentbus with --control, then
# drive it with `agentbus control`. AGENTBUS names the binary (default: agentbus on PATH).
set -euo pipefail
AGENTBUS=${AGENTBUS:-agentbus}
out=$(mktemp)
"$AGENTBUS" broker --brokers 3 --listen 127.0.0.1:0 --control 127.0.0.1:0 >"$out" &
broker=$!
trap 'kill $broker 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 100); do grep -q "ready" "$out" && break; sleep 0.05; done
export AGENTBUS_CONTROL_URL=$(grep -o 'control http://[^)]*' "$out" | cut -d' ' -f2)
bootstrap=$(grep -o 'bootstrap [^ ]*' "$out" | cut -d' ' -f2)
echo "bootstrap $bootstrap, control $AGENTBUS_CONTROL_URL"

ctl() { "$AGENTBUS" control "$@"; }
ctl cluster
ctl stop-node 2                         # connections to node 2 drop; leaders move
ctl cluster | grep -c '"up": false'     # 1
ctl start-node 2
ctl record on
ctl inject --api Produce --error NOT_LEADER_OR_FOLLOWER --times 2
ctl inject --api Fetch --delay-ms 200 --node 3
ctl faults
ctl remove --all
ctl advance 60000                       # past every session timeout
ctl requests
echo "control example done"
