#!/usr/bin/env bash
# Installs the tools `make bench` compares lambdaflow with: task-spooler,
# GNU parallel, Miller and wrk from Debian, and DuckDB's Node.js API from
# npm into bench/.deps (ignored by git). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")"

packages=(task-spooler parallel miller wrk)
# A Node.js that is already installed (which may bring its own npm) is kept.
command -v npm >/dev/null || packages+=(nodejs npm)
missing=()
for pkg in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	# The lock timeout lets a concurrent apt-get finish instead of failing.
	$sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}"
fi

# The npm package ships prebuilt DuckDB bindings as an optional dependency,
# so nothing is downloaded outside the registry.
duckdb_version=1.5.6-r.1
if [ "$(node -p "try{require('./.deps/node_modules/@duckdb/node-api/package.json').version}catch(e){''}" 2>/dev/null)" != "$duckdb_version" ]; then
	mkdir -p .deps
	npm install --silent --no-audit --no-fund --prefix .deps "@duckdb/node-api@$duckdb_version"
fi
echo "bench tools installed"
