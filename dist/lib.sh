# Sourced by dist/build.sh, check.sh and test.sh, from the workspace root: the
# target and the names of the artifacts, the executables to ship, where each
# file goes when installed, and the pinned tools (installed on first use, so
# that a fresh machine builds and checks the same way).

# The oldest glibc the executables may need: Rust's own floor for
# *-linux-gnu. cargo-zigbuild links against exactly this version's symbols.
# The packages declare it too (Cargo.toml of backend-multi: the deb's
# Depends, the rpm's Requires); dist/check.sh holds all three to it.
GLIBC_FLOOR=2.17

ZIGLANG_VERSION=0.15.2           # PyPI: the zig compiler, in a wheel
CARGO_ZIGBUILD_VERSION=0.24.1    # PyPI
CARGO_AUDITABLE_VERSION=0.7.7    # crates.io: the dependency list in each binary
CARGO_DEB_VERSION=3.8.0          # crates.io
CARGO_GENERATE_RPM_VERSION=0.21.1 # crates.io

# Executables that are not backends: installed 0755 and left to root. Every
# other executable of the workspace is a backend, installed 0500 and handed
# to the agent's user by the post-install script.
NOT_BACKENDS=(secret-backend-check)

dist_fail() {
  echo "dist: $*" >&2
  exit 1
}

# dist_setup [TARGET]: TARGET (default: this host's), ARCH, DEB_ARCH,
# VERSION, BINARIES, TARGET_DIR, TOOLS, RELEASE_DIR, DIST, NAME, STAGE.
dist_setup() {
  command -v python3 >/dev/null || dist_fail "python3 is needed"
  TARGET="${1:-$(rustc -vV | sed -n 's/^host: //p')}"
  case "$TARGET" in
    x86_64-unknown-linux-gnu) DEB_ARCH=amd64 ;;
    aarch64-unknown-linux-gnu) DEB_ARCH=arm64 ;;
    *) dist_fail "unsupported target '$TARGET': x86_64-unknown-linux-gnu or aarch64-unknown-linux-gnu" ;;
  esac
  ARCH="${TARGET%%-*}"
  TARGET_DIR="$(realpath -m "${CARGO_TARGET_DIR:-target}")"
  TOOLS="$TARGET_DIR/tools"
  RELEASE_DIR="$TARGET_DIR/$TARGET/release"
  # The executables: every binary target of a workspace member that is
  # published (test-support crates say `publish = false`), so that a new
  # store ships without an edit here. The version is the package's.
  local meta
  meta=$(cargo metadata --format-version 1 --no-deps --locked | python3 -c '
import json, sys
m = json.load(sys.stdin)
members = set(m["workspace_members"])
pkgs = [p for p in m["packages"] if p["id"] in members]
print(next(p["version"] for p in pkgs if p["name"] == "backend-multi"))
for p in pkgs:
    if p.get("publish") != []:
        for t in p["targets"]:
            if "bin" in t["kind"]:
                print(t["name"])
') || dist_fail "cargo metadata failed"
  VERSION=$(head -n 1 <<<"$meta")
  mapfile -t BINARIES < <(tail -n +2 <<<"$meta" | sort)
  [ "${#BINARIES[@]}" -gt 0 ] || dist_fail "no executables found in the workspace"
  DIST="$TARGET_DIR/dist"
  NAME="secret-backend-$VERSION-$ARCH-linux-gnu"
  STAGE="$DIST/$NAME"
}

# dist_mode BINARY: its installed mode.
dist_mode() {
  local t
  for t in "${NOT_BACKENDS[@]}"; do
    [ "$1" = "$t" ] && { echo 0755; return; }
  done
  echo 0500
}

# dist_install_path PATH: where a file of the tarball's tree (relative to
# its top folder) is installed by the packages. The deb's assets in
# backend-multi/Cargo.toml say the same; dist/check.sh compares all three.
dist_install_path() {
  case "$1" in
    bin/*) echo "/opt/secret-backend/$1" ;;
    examples/*) echo "/etc/secret-backend/$1" ;;
    */*) dist_fail "no install path for $1" ;;
    *) echo "/usr/share/doc/secret-backend/$1" ;;
  esac
}

# dist_link_flags: RUSTFLAGS for the zig build. cargo-zigbuild links zig's
# own static libunwind where rustc asks for libgcc_s: 26 to 36 KB more per
# executable, which takes secret-backend-file and -aws over their size
# targets. Linking this host's libgcc_s.so.1 instead, as a native build
# does, gives a native build's dependencies (libgcc_s, whose symbol versions
# dist/check.sh holds to GCC 4.2's) and size. Only its symbol table is read:
# --allow-shlib-undefined, as this host's libgcc_s itself needs a newer
# glibc than the executables may (the target host has its own libgcc_s).
dist_link_flags() {
  local tag lib
  case "$ARCH" in x86_64) tag=x86-64 ;; aarch64) tag=AArch64 ;; esac
  # awk reads to the end (no early `exit`): ldconfig would otherwise die of
  # SIGPIPE now and then, and with pipefail the build with it (exit 141).
  lib=$(ldconfig -p | awk -v tag="(libc6,$tag)" '$1 == "libgcc_s.so.1" && $2 == tag && lib == "" { lib = $NF } END { print lib }')
  [ -f "$lib" ] || dist_fail "no libgcc_s.so.1 for $TARGET on this host (ldconfig -p)"
  export RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=$lib -C link-arg=-Wl,--allow-shlib-undefined"
}

# dist_toolchain: what `cargo auditable zigbuild --target $TARGET.2.17`
# needs: the target's standard library, zig, cargo-zigbuild,
# cargo-auditable, the link flags.
dist_toolchain() {
  [ -d "$(rustc --print sysroot)/lib/rustlib/$TARGET/lib" ] \
    || dist_fail "the Rust standard library for $TARGET is not installed (rustup target add $TARGET)"
  dist_zig_tools
  dist_cargo_tool cargo-auditable "$CARGO_AUDITABLE_VERSION"
  dist_link_flags
}

# The tools, pinned. Each fails loudly when it cannot be installed.
dist_zig_tools() {
  local venv="$TARGET_DIR/dist-venv"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "ziglang==$ZIGLANG_VERSION" "cargo-zigbuild==$CARGO_ZIGBUILD_VERSION" \
    || dist_fail "installing ziglang and cargo-zigbuild from PyPI failed"
  export PATH="$venv/bin:$PATH"
  # The zig binary the ziglang wheel ships, named for cargo-zigbuild (which
  # otherwise tries `zig`, then `python3 -m ziglang` of whatever python3
  # comes first on PATH).
  CARGO_ZIGBUILD_ZIG_PATH=$("$venv/bin/python" -c 'import os, ziglang; print(os.path.join(os.path.dirname(ziglang.__file__), "zig"))')
  [ -x "$CARGO_ZIGBUILD_ZIG_PATH" ] || dist_fail "no zig in the ziglang package ($CARGO_ZIGBUILD_ZIG_PATH)"
  export CARGO_ZIGBUILD_ZIG_PATH
}

dist_cargo_tool() { # CRATE VERSION
  if ! grep -q "^\"$1 $2 " "$TOOLS/.crates.toml" 2>/dev/null; then
    cargo install --quiet --locked "$1@$2" --root "$TOOLS" || dist_fail "cargo install $1@$2 failed"
  fi
  case ":$PATH:" in *":$TOOLS/bin:"*) ;; *) export PATH="$TOOLS/bin:$PATH" ;; esac
}

dist_apt_tool() { # COMMAND PACKAGE
  command -v "$1" >/dev/null && return
  echo "dist: installing $2 (for $1) with apt-get" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; } \
    || dist_fail "apt-get install $2 failed (needs root)"
  command -v "$1" >/dev/null || dist_fail "$1 is still missing after installing $2"
}
