#!/usr/bin/env bash
# The test command: installs what is missing (see install.sh), then runs the whole suite.
#   ./test.sh                 everything (Podman tests build the sandbox image once, on first use)
#   ./test.sh -m "not podman" the fast unit tests only, in seconds
set -euo pipefail
cd "$(dirname "$0")"
./install.sh --no-serve
exec .venv/bin/python -m pytest "$@"
