#!/usr/bin/env bash
# Installs Node.js 22 (pinned) into conformance/.node unless it is already there, and prints the
# path of its `node` binary on stdout (messages go to stderr).
#
# The official Node binaries are published on the npm registry as the packages node-linux-<arch>;
# `npm pack` fetches the pinned one, so this needs npm (any version) on PATH and nothing but the
# npm registry. Used by conformance/run.sh (the official conformance suite) and scripts/test.sh
# (the TypeScript SDK interop test, crates/mcpbus-cli/tests/interop_ts.rs).
#
# Idempotent and quiet when the right version is already installed. Runnable from any directory.
set -euo pipefail

NODE_VERSION=22.23.3

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
node_dir="$root/conformance/.node"
node="$node_dir/bin/node"

say() { printf 'install-node.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 2; }

if [[ -x "$node" ]] && [[ "$("$node" --version 2>/dev/null)" == "v$NODE_VERSION" ]]; then
    printf '%s\n' "$node"
    exit 0
fi

command -v npm >/dev/null || die "npm is needed to fetch Node $NODE_VERSION from the npm registry"
case "$(uname -m)" in
    x86_64 | amd64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) die "no Node package for $(uname -m)" ;;
esac
say "installing Node $NODE_VERSION (node-linux-$arch) into conformance/.node"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "node-linux-$arch@$NODE_VERSION" >/dev/null)
rm -rf "$node_dir"
mkdir -p "$node_dir"
tar xzf "$tmp/node-linux-$arch-$NODE_VERSION.tgz" -C "$node_dir" --strip-components=1
got="$("$node" --version)" || die "the installed Node does not run"
[[ "$got" == "v$NODE_VERSION" ]] || die "installed Node reports $got, expected v$NODE_VERSION"
printf '%s\n' "$node"
