#!/usr/bin/env bash
# The benchmark harness of issue 9, one command:
#
#   bash bench/run.sh                     # full run: release build, venv, servers, RESULTS.md
#   bash bench/run.sh --smoke --bin-dir target/debug    # seconds; what CI runs
#
# Options:
#   --bin-dir DIR   use the binaries in DIR instead of building release ones
#   --smoke         tiny cases, one run each, no baselines that need installs,
#                   nothing written; exits non-zero on any wrong reply
#   --runs N        timed runs per command after the warm-up (default 10)
#   --slow-runs N   timed runs for the shell baselines (default: --runs; each of
#                   their runs takes tens of seconds)
#   --no-write      print the table, do not append it to bench/RESULTS.md
#   --cases LIST    only these cases (dummy, file, vault, aws, k8s, gcp, azure,
#                   multi, or exact keys such as aws-1); the others are left out
#                   of the table
#   --variant NAME:LABEL=PATH   also time another build of one of ours (e.g.
#                   vault:ring=/tmp/x/secret-backend-vault), side by side
#
# The full run builds each release binary with its own `cargo build -p`
# (a crate that does not build is reported "not built", never timed) and
# the fake servers of backend-tests (fake-k8s, fake-google, fake-azure;
# smoke runs take them from the bin dir, where cargo test --workspace puts
# them, or from FAKE_K8S, FAKE_GOOGLE, FAKE_AZURE), installs
# bench/requirements.txt into target/bench-venv, and needs curl, bash, GNU
# time (/usr/bin/time, for peak RSS) and drongo, the GCP Secret Manager
# emulator (DRONGO, else PATH or target/test-venv/bin, which
# tests/run-all.sh installs) on the machine.
set -euo pipefail
cd "$(dirname "$0")/.."

smoke=0
bin_dir=""
pass=()
while [ $# -gt 0 ]; do
  case $1 in
    --smoke) smoke=1; pass+=("$1") ;;
    --bin-dir) bin_dir=$2; shift ;;
    --bin-dir=*) bin_dir=${1#*=} ;;
    --runs|--slow-runs|--cases|--variant|--many) pass+=("$1" "$2"); shift ;;
    --no-write|--runs=*|--slow-runs=*|--cases=*|--variant=*) pass+=("$1") ;;
    -h|--help) sed -n '2,/^set -e/{/^set -e/d;p}' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if [ "$smoke" = 1 ]; then
  # Stdlib Python only; OpenBao and moto are used when they are around (the
  # test venv of tests/run-all.sh, BAO_BIN / MOTO_SERVER, or PATH).
  if [ -z "$bin_dir" ]; then
    bin_dir="${CARGO_TARGET_DIR:-target}/debug"
  fi
  exec python3 bench/bench.py --bin-dir "$bin_dir" "${pass[@]}"
fi

if [ -z "$bin_dir" ]; then
  target="${CARGO_TARGET_DIR:-$PWD/target}"
  bin_dir="$target/release"
  for crate in backend-dummy backend-file backend-vault backend-aws backend-k8s backend-gcp \
      backend-azure backend-multi; do
    echo "run.sh: cargo build --release --locked -p $crate" >&2
    if ! cargo build --release --locked -p "$crate" >&2; then
      echo "run.sh: $crate does not build; its cases will say 'not built'" >&2
      # A stale binary from an earlier build must not be timed as this tree's.
      case $crate in
        backend-multi) rm -f "$bin_dir/secret-backend" ;;
        *) rm -f "$bin_dir/secret-${crate}" ;;
      esac
    fi
  done
  # The fake servers of the k8s, gcp and azure cases: built, not
  # installed; without one the run fails.
  for fake in fake-k8s fake-google fake-azure; do
    echo "run.sh: cargo build --release --locked -p backend-tests --bin $fake" >&2
    if ! cargo build --release --locked -p backend-tests --bin "$fake" >&2; then
      echo "run.sh: $fake does not build; its case will fail" >&2
      rm -f "$bin_dir/$fake"
    fi
  done
fi

venv="${SECRET_BACKEND_BENCH_VENV:-$PWD/target/bench-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
for tool in bao moto_server aws; do
  if [ ! -x "$venv/bin/$tool" ]; then
    echo "run.sh: $tool is missing from $venv after the install" >&2
    exit 1
  fi
done
export PATH="$venv/bin:$PATH"
export BAO_BIN="$venv/bin/bao" MOTO_SERVER="$venv/bin/moto_server"
exec "$venv/bin/python" bench/bench.py --bin-dir "$bin_dir" --python "$venv/bin/python" "${pass[@]}"
