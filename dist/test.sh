#!/usr/bin/env bash
# Runs the workspace's test suites against the executables dist/build.sh
# ships: bash dist/test.sh [TARGET] [-- extra test binary arguments]
#
# The tests are built by the release's toolchain and flags (cargo-zigbuild,
# --release, glibc 2.17), then the executables the end-to-end tests run
# (CARGO_BIN_EXE_*, in target/<TARGET>/release/) are replaced by the ones
# of target/dist/ (cargo test builds them with the tests' dev-dependency
# features), and every test binary is run as cargo test runs it (from its
# package's folder), so the end-to-end tests run exactly the shipped bytes.
# Run `bash tests/run-all.sh` once before (it installs the test servers
# used here) and `bash dist/build.sh`. Not part of CI: it builds the
# workspace a second time (the tests unwind where the release aborts).
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

# (No cargo auditable here: the executables built for the tests are
# replaced by the shipped ones, which carry their dependency lists.)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo-zigbuild test --release --locked --workspace --target "$TARGET.$GLIBC_FLOOR" \
  --no-run --message-format=json-render-diagnostics >"$work/build.json"
python3 -c '
import json, os, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["profile"]["test"] and m.get("executable"):
        print(os.path.dirname(m["manifest_path"]) + "\t" + m["executable"])
' "$work/build.json" | sort >"$work/tests"
[ -s "$work/tests" ] || dist_fail "no test binaries were built"
for b in "${BINARIES[@]}"; do
  [ -f "$STAGE/bin/$b" ] || dist_fail "$STAGE/bin/$b is missing: run bash dist/build.sh $TARGET"
  install -m 0755 "$STAGE/bin/$b" "$RELEASE_DIR/$b"
done
failed=()
while IFS=$'\t' read -r dir exe; do
  echo "dist test: $exe"
  (cd "$dir" && "$exe" "$@") || failed+=("$exe")
done <"$work/tests"
for b in "${BINARIES[@]}"; do
  cmp -s "$RELEASE_DIR/$b" "$STAGE/bin/$b" || dist_fail "$b changed during the run"
done
if [ "${#failed[@]}" -gt 0 ]; then
  printf 'dist test: failed: %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "dist test: $(wc -l <"$work/tests") test binaries passed against the executables of $STAGE/bin"
