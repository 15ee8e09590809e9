#!/usr/bin/env bash
# Runs the workspace's test suites against the executables dist/build.sh
# ships: bash dist/test.sh [TARGET] [-- extra cargo test arguments]
#
# The tests are built by the release's toolchain and flags (cargo auditable
# zigbuild --release, glibc 2.17); before they run, the executables they
# run (CARGO_BIN_EXE_*, in target/<TARGET>/release/) are replaced by the
# ones of target/dist/ (cargo test builds them with the tests' dev-dependency
# features), and after the run they are compared with them again, so the
# end-to-end tests have run exactly the shipped bytes. Run
# `bash tests/run-all.sh` once before (it installs the test servers used
# here) and `bash dist/build.sh`. Not part of CI: it builds the workspace a
# second time (the tests unwind where the release aborts).
set -euo pipefail
cd "$(dirname "$0")/.."
. dist/lib.sh
target_arg=()
if [ "${1:-}" != "" ] && [ "$1" != "--" ]; then
  target_arg=("$1")
  shift
fi
[ "${1:-}" != "--" ] || shift
dist_setup "${target_arg[@]}"
dist_toolchain

venv="${SECRET_BACKEND_TEST_VENV:-$TARGET_DIR/test-venv}"
for tool in "$venv/bin/bao" "$venv/bin/moto_server" "$venv-bao-ldap/bin/bao"; do
  [ -x "$tool" ] || dist_fail "$tool is missing: run bash tests/run-all.sh once first"
done
export PATH="$venv/bin:$PATH" BAO_BIN="$venv/bin/bao" MOTO_SERVER="$venv/bin/moto_server"
export LDAP_PYTHON="$venv/bin/python" BAO_LDAP_BIN="$venv-bao-ldap/bin/bao"

test=(cargo auditable zigbuild test --release --locked --workspace --no-fail-fast --target "$TARGET.$GLIBC_FLOOR")
"${test[@]}" --no-run
for b in "${BINARIES[@]}"; do
  [ -f "$STAGE/bin/$b" ] || dist_fail "$STAGE/bin/$b is missing: run bash dist/build.sh $TARGET"
  install -m 0755 "$STAGE/bin/$b" "$RELEASE_DIR/$b"
done
"${test[@]}" "$@"
for b in "${BINARIES[@]}"; do
  cmp -s "$RELEASE_DIR/$b" "$STAGE/bin/$b" || dist_fail "$b was rebuilt during the run: the tests did not run the shipped one"
done
echo "dist test: the suites ran the executables of $STAGE/bin"
