#!/bin/bash
# Where the policy path's cost goes: the sidecar without a policy, with a minimal policy (no rules,
# classification off: analysis and enforcement machinery only) and with the 20-rule bench policy,
# interleaved in rounds; pgbench -S simple, 8 clients; CPU µs per transaction of the sidecar.
# Needs a PostgreSQL on 127.0.0.1:${PGPORT:-55432} initialised with pgbench -i (user postgres, trust).
set -u
cd "$(dirname "$0")/../../.."
PGPORT=${PGPORT:-55432}
for round in 1 2 3; do
  for name in plain minimal rules20; do
    case $name in plain) ARGS="";; minimal) ARGS="--policy e2e/bench/experiments/minimal-policy.yaml";; rules20) ARGS="--policy e2e/bench/policy-20-rules.yaml --environment production --identity serviceAccount=bench";; esac
    node sidecar/dist/main.js --upstream "postgres://127.0.0.1:$PGPORT?sslmode=disable" --listen 127.0.0.1:56995 --log-level warn $ARGS >/dev/null 2>&1 & PID=$!; sleep 1.2
    pgbench -S -M simple -c 8 -j 2 -T 2 -h 127.0.0.1 -p 56995 -U postgres postgres >/dev/null 2>&1
    T0=$(awk '{print $14+$15}' /proc/$PID/stat)
    TX=$(pgbench -S -M simple -c 8 -j 2 -T 6 -h 127.0.0.1 -p 56995 -U postgres postgres 2>&1 | grep processed | awk '{print $NF}' | cut -d/ -f1)
    T1=$(awk '{print $14+$15}' /proc/$PID/stat)
    echo "round=$round $name tps=$((TX/6)) us_per_tx=$(echo "scale=1; ($T1-$T0)*10000/$TX" | bc)"
    kill $PID; wait $PID 2>/dev/null
  done
done
