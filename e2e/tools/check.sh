#!/usr/bin/env bash
# e2e/tools/check.sh -- proves the binaries in e2e/tools/bin work on this machine.
#
#   e2e/tools/check.sh            versions + smoke starts of everything
#   make tools-check              same, after building what is missing
#
# For every binary: its version command.  Then, each on 127.0.0.1 with free
# random ports and temp dirs (removed afterwards), bounded in time:
#   etcd            start, GET /health, put+range a key over the v3 JSON gateway
#   kube-apiserver  start against that etcd, `kubectl get ns` with a token
#                   kubeconfig, apply + read a ConfigMap
#   helm            `helm install` of a tiny chart into that apiserver
#   jaeger          start with e2e/tools/jaeger/config.yaml, GET /api/services,
#                   POST one OTLP/HTTP span, see its service in /api/services
# Exits non-zero on the first failure; every process it started is killed.
#
# Env: TOOLS_BIN (default: the bin/ next to this script),
#      CHECK_KEEP=1 keeps the temp dir (logs) for inspection.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN=${TOOLS_BIN:-$here/bin}
JAEGER_CONFIG=$here/jaeger/config.yaml

work=$(mktemp -d "${TMPDIR:-/tmp}/dbward-tools-check.XXXXXX")
pids=()
# stop PID: SIGTERM, wait up to 10 s, then SIGKILL.
stop() {
  local pid=$1 n
  kill "$pid" 2>/dev/null || return 0
  for ((n = 0; n < 50; n++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  # newest first: kube-apiserver must be gone before etcd is stopped (with its
  # etcd gone, kube-apiserver hangs in shutdown for 30 s and more)
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    stop "${pids[i]}"
  done
  if [[ $rc -ne 0 ]]; then
    echo "check.sh: FAILED (logs in $work)" >&2
    for f in "$work"/*.log; do
      [[ -f $f ]] || continue
      echo "----- tail $f" >&2
      tail -n 25 "$f" >&2
    done
  elif [[ ${CHECK_KEEP:-0} != 1 ]]; then
    rm -rf "$work"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "check.sh: $*" >&2; exit 1; }
step() { printf '== %s\n' "$*"; t0=$SECONDS; }
t0=$SECONDS
elapsed() { echo "$((SECONDS - t0))s"; }

for b in etcd kube-apiserver kubectl helm jaeger; do
  [[ -x $BIN/$b ]] || fail "missing $BIN/$b (run: make tools)"
done
command -v curl >/dev/null || fail "curl is required"

# free_ports N: N distinct currently-free TCP ports on 127.0.0.1.
free_ports() {
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# wait_for SECONDS PID CMD...: retry CMD every 0.2 s until it succeeds; fail
# if PID dies or time runs out.
wait_for() {
  local secs=$1 pid=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || fail "process $pid exited while waiting for: $*"
    ((SECONDS < deadline)) || fail "timed out after ${secs}s waiting for: $*"
    sleep 0.2
  done
}

# ---------------------------------------------------------------- versions
step "versions"
"$BIN/etcd" --version
"$BIN/kube-apiserver" --version
"$BIN/kubectl" version --client
"$BIN/helm" version
"$BIN/jaeger" version 2>/dev/null; echo

# -------------------------------------------------------------------- etcd
step "etcd smoke start"
read -r ETCD_CLIENT ETCD_PEER APISERVER_PORT < <(free_ports 3)
etcd_url=http://127.0.0.1:$ETCD_CLIENT
"$BIN/etcd" \
  --name=check --data-dir="$work/etcd" \
  --listen-client-urls="$etcd_url" --advertise-client-urls="$etcd_url" \
  --listen-peer-urls="http://127.0.0.1:$ETCD_PEER" \
  --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER" \
  --initial-cluster="check=http://127.0.0.1:$ETCD_PEER" \
  --unsafe-no-fsync --quota-backend-bytes=$((256 * 1024 * 1024)) \
  --log-level=warn >"$work/etcd.log" 2>&1 &
etcd_pid=$!
pids+=("$etcd_pid")
wait_for 10 "$etcd_pid" curl -fsS "$etcd_url/health"
curl -fsS "$etcd_url/health" | grep -q '"health":"true"' || fail "etcd /health not healthy"
# key "check" = Y2hlY2s=, value "ok" = b2s=
curl -fsS -X POST "$etcd_url/v3/kv/put" -d '{"key":"Y2hlY2s=","value":"b2s="}' >/dev/null
curl -fsS -X POST "$etcd_url/v3/kv/range" -d '{"key":"Y2hlY2s="}' | grep -q '"value":"b2s="' \
  || fail "etcd: key written over the v3 gateway could not be read back"
echo "etcd OK on $etcd_url (ready + checked in $(elapsed))"

# ---------------------------------------------------------- kube-apiserver
step "kube-apiserver smoke start (against the etcd above)"
pki=$work/pki
mkdir -p "$pki"
# service-account token signing key pair
openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
# static bearer token for an admin (group system:masters bypasses RBAC)
admin_token=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
echo "$admin_token,admin,admin-uid,\"system:masters\"" >"$pki/tokens.csv"
apiserver_url=https://127.0.0.1:$APISERVER_PORT
"$BIN/kube-apiserver" \
  --etcd-servers="$etcd_url" \
  --etcd-prefix=/registry \
  --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
  --secure-port="$APISERVER_PORT" \
  --cert-dir="$pki/serving" \
  --token-auth-file="$pki/tokens.csv" \
  --authorization-mode=RBAC \
  --service-account-issuer="$apiserver_url" \
  --service-account-key-file="$pki/sa.pub" \
  --service-account-signing-key-file="$pki/sa.key" \
  --service-cluster-ip-range=10.0.0.0/24 \
  --disable-admission-plugins=ServiceAccount \
  --allow-privileged=true \
  >"$work/kube-apiserver.log" 2>&1 &
apiserver_pid=$!
pids+=("$apiserver_pid")

kubeconfig=$work/kubeconfig
wait_for 20 "$apiserver_pid" test -s "$pki/serving/apiserver.crt"
"$BIN/kubectl" config --kubeconfig="$kubeconfig" set-cluster check \
  --server="$apiserver_url" --certificate-authority="$pki/serving/apiserver.crt" --embed-certs >/dev/null
"$BIN/kubectl" config --kubeconfig="$kubeconfig" set-credentials admin --token="$admin_token" >/dev/null
"$BIN/kubectl" config --kubeconfig="$kubeconfig" set-context check --cluster=check --user=admin >/dev/null
"$BIN/kubectl" config --kubeconfig="$kubeconfig" use-context check >/dev/null
kc() { "$BIN/kubectl" --kubeconfig="$kubeconfig" "$@"; }

# /readyz needs the bootstrap controllers (RBAC roles, priority levels, ...).
wait_for 60 "$apiserver_pid" kc get --raw=/readyz
kc version
kc get ns
kc get ns default -o name | grep -qx 'namespace/default' || fail "namespace default missing"
kc -n default create configmap check --from-literal=k=v >/dev/null
[[ $(kc -n default get configmap check -o 'jsonpath={.data.k}') == v ]] || fail "configmap round trip failed"
kc auth can-i '*' '*' --all-namespaces | grep -qx yes || fail "admin token is not cluster-admin"
echo "kube-apiserver OK on $apiserver_url (ready + checked in $(elapsed))"

# -------------------------------------------------------------------- helm
step "helm install into that apiserver"
chart=$work/chart
mkdir -p "$chart/templates"
cat >"$chart/Chart.yaml" <<'EOF'
apiVersion: v2
name: check
version: 0.1.0
EOF
cat >"$chart/values.yaml" <<'EOF'
greeting: hello
EOF
cat >"$chart/templates/configmap.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-cm
data:
  greeting: {{ .Values.greeting | quote }}
EOF
export HELM_CACHE_HOME=$work/helm/cache HELM_CONFIG_HOME=$work/helm/config HELM_DATA_HOME=$work/helm/data
"$BIN/helm" lint "$chart" >/dev/null
"$BIN/helm" --kubeconfig="$kubeconfig" install check "$chart" -n default --set greeting=hi >/dev/null
[[ $(kc -n default get configmap check-cm -o 'jsonpath={.data.greeting}') == hi ]] || fail "helm release not applied"
"$BIN/helm" --kubeconfig="$kubeconfig" list -n default | grep -q '^check' || fail "helm list misses the release"
"$BIN/helm" --kubeconfig="$kubeconfig" uninstall check -n default >/dev/null
echo "helm OK ($(elapsed))"

stop "$apiserver_pid"
stop "$etcd_pid"

# ------------------------------------------------------------------ jaeger
step "jaeger smoke start ($JAEGER_CONFIG)"
read -r p1 p2 p3 p4 p5 p6 < <(free_ports 6)
JAEGER_OTLP_GRPC_PORT=$p1 JAEGER_OTLP_HTTP_PORT=$p2 JAEGER_QUERY_HTTP_PORT=$p3 \
JAEGER_QUERY_GRPC_PORT=$p4 JAEGER_HEALTH_PORT=$p5 JAEGER_METRICS_PORT=$p6 \
  "$BIN/jaeger" --config "$JAEGER_CONFIG" >"$work/jaeger.log" 2>&1 &
jaeger_pid=$!
pids+=("$jaeger_pid")
query=http://127.0.0.1:$p3
wait_for 10 "$jaeger_pid" curl -fsS "http://127.0.0.1:$p5/status"
wait_for 10 "$jaeger_pid" curl -fsS "$query/api/services"
curl -fsS "$query/api/services" | grep -q '"data"' || fail "jaeger /api/services: unexpected body"

# one span over OTLP/HTTP (JSON encoding), then find its service via the query API
now=$(date +%s%N)
trace_id=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
span_id=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
curl -fsS -X POST "http://127.0.0.1:$p2/v1/traces" -H 'Content-Type: application/json' -d @- >/dev/null <<EOF
{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"dbward-tools-check"}}]},
 "scopeSpans":[{"scope":{"name":"check.sh"},"spans":[{"traceId":"$trace_id","spanId":"$span_id",
 "name":"smoke","kind":1,"startTimeUnixNano":"$((now - 1000000))","endTimeUnixNano":"$now"}]}]}]}
EOF
services_have_check() { curl -fsS "$query/api/services" | grep -q '"dbward-tools-check"'; }
wait_for 10 "$jaeger_pid" services_have_check
curl -fsS "$query/api/traces/$trace_id" | grep -q "\"$span_id\"" || fail "jaeger: span not found by trace id"
echo "jaeger OK: OTLP/HTTP :$p2, OTLP/gRPC :$p1, query :$p3 (ready + checked in $(elapsed))"

step "all checks passed"
