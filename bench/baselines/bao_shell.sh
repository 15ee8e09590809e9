#!/usr/bin/env bash
# Baseline: the common shell backend, one `bao kv get -field=<key> <path>`
# per handle (`<path>;<key>`), with VAULT_ADDR / VAULT_TOKEN from the
# environment.
set -u
. "$(dirname "$0")/shell_common.sh"
fetch() {
  bao kv get -field="${1#*;}" "${1%%;*}"
}
run_backend
