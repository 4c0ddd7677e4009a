#!/usr/bin/env bash
# One command on a fresh Debian machine: installs what ploy needs, then serves an example worker.
#   ./install.sh                  install, then `ploy dev examples/hello` on http://127.0.0.1:8787
#   ./install.sh examples/basic   install, then serve another example
#   ./install.sh --no-serve       install only (what test.sh and CI use)
# Idempotent: a second run only checks, in about a second.
set -euo pipefail
cd "$(dirname "$0")"
serve=1
example=examples/hello
for arg in "$@"; do
  case "$arg" in
    --no-serve) serve=0 ;;
    *) example=$arg ;;
  esac
done

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Debian packages: podman+runc for sandboxes (crun fails on this cgroup setup), debootstrap builds the
# sandbox image without a registry, e2fsprogs+mount make and mount sandbox disks (the disk limit), git for
# gitCheckout tests, wrk for bench/, chromium for page tests, iptables for the sandboxes' network policy
# (bindings/sandbox/network.py; Podman only suggests it).
debs=(podman runc iptables debootstrap e2fsprogs mount git wrk curl ca-certificates iproute2 python3-venv chromium)
# node/npm may come from elsewhere (nodesource, nvm): ask apt for them only when absent.
command -v node >/dev/null && command -v npm >/dev/null || debs+=(nodejs npm)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "ploy needs these Debian packages; run:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

# Python: a project-local virtualenv, so nothing clashes with the system's packages.
py=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "$py" -m venv .venv
fi
stamp=.venv/.ploy-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  say "pip install -e .[dev]"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e '.[dev]'
  touch "$stamp"
fi

# npm: esbuild bundles JS/TS workers, typescript checks typings/ and examples.
if [ ! -x node_modules/.bin/esbuild ] || [ ! -x node_modules/.bin/tsc ] || [ package.json -nt node_modules ]; then
  say "npm install"
  npm install --no-audit --no-fund --loglevel=error
  touch node_modules
fi

# Examples with npm dependencies of their own (examples/terminal: xterm.js, bundled by the worker).
for pkg in examples/*/package.json; do
  dir=$(dirname "$pkg")
  if [ ! -d "$dir/node_modules" ] || [ "$pkg" -nt "$dir/node_modules" ]; then
    say "npm install in $dir"
    (cd "$dir" && npm install --no-audit --no-fund --loglevel=error)
    touch "$dir/node_modules"
  fi
done

# `ploy` on PATH for root; others get the line to add.
if [ "$(id -u)" = 0 ] && [ -d /usr/local/bin ]; then
  ln -sf "$PWD/.venv/bin/ploy" /usr/local/bin/ploy
elif ! command -v ploy >/dev/null; then
  echo "add ploy to your PATH:  export PATH=\"$PWD/.venv/bin:\$PATH\"" >&2
fi

if ((serve)); then
  say "ploy dev $example  (Ctrl-C to stop)"
  exec .venv/bin/ploy dev "$example"
fi
