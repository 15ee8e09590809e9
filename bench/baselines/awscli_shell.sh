#!/usr/bin/env bash
# Baseline: the common shell backend, one
# `aws secretsmanager get-secret-value` per handle (`<secret-id>[;<key>]`),
# the key picked from the JSON secret; region, credentials and endpoint
# from the usual AWS_* environment.
set -u
. "$(dirname "$0")/shell_common.sh"
fetch() {
  local id=${1%%;*} doc
  doc=$(aws secretsmanager get-secret-value --secret-id "$id" --query SecretString --output text) || return 1
  case $1 in
    *';'*) python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$doc" "${1#*;}" ;;
    *) printf '%s\n' "$doc" ;;
  esac
}
run_backend
