#!/usr/bin/env bash
# The release command: bash dist/build.sh [TARGET]
#
# Builds every executable of the workspace for TARGET (default: this host's;
# x86_64-unknown-linux-gnu or aarch64-unknown-linux-gnu) against glibc 2.17
# with cargo-zigbuild, each carrying its dependency list (cargo auditable),
# and writes to target/dist/:
#   secret-backend-<version>-<arch>-linux-gnu/      the tree of the tarball
#   secret-backend-<version>-<arch>-linux-gnu.tar.gz
#   secret-backend_<version>-1_<debarch>.deb         (cargo-deb)
#   secret-backend-<version>-1.<arch>.rpm            (cargo-generate-rpm)
#   SHA256SUMS                                      over the three artifacts
# Both packages are made from the tarball's tree, so they hold the same
# files with the same modes. dist/check.sh checks the lot.
#
# The tools are installed on first use, pinned (dist/lib.sh): zig and
# cargo-zigbuild from PyPI into target/dist-venv, cargo-auditable, cargo-deb
# and cargo-generate-rpm from crates.io into target/tools. The target's Rust
# standard library must be installed (`rustup target add TARGET`): build on
# an aarch64 host for aarch64.
set -euo pipefail
cd "$(dirname "$0")/.."
. dist/lib.sh
dist_setup "${1:-}"

dist_toolchain
dist_cargo_tool cargo-deb "$CARGO_DEB_VERSION"
dist_cargo_tool cargo-generate-rpm "$CARGO_GENERATE_RPM_VERSION"

export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}"
bins=()
for b in "${BINARIES[@]}"; do bins+=(--bin "$b"); done
# The .2.17 suffix is cargo-zigbuild's: link against that glibc's symbols.
# The output lands in target/<TARGET>/release as for a plain --target build.
cargo auditable zigbuild --release --locked --workspace "${bins[@]}" --target "$TARGET.$GLIBC_FLOOR"

# The tarball's tree, with the modes as installed.
rm -rf "$DIST"
mkdir -p "$STAGE/bin"
for b in "${BINARIES[@]}"; do
  install -m "$(dist_mode "$b")" "$RELEASE_DIR/$b" "$STAGE/bin/$b"
done
install -m 0644 README.md SECURITY.md LICENSE "$STAGE/"
git ls-files -z examples | while IFS= read -r -d '' f; do
  install -D -m 0644 "$f" "$STAGE/$f"
done
find "$STAGE" -type d -exec chmod 0755 {} +

tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
  -C "$DIST" -cf - "$NAME" | gzip -9 -n >"$DIST/$NAME.tar.gz"

# The packagers read the tree through target/release/dist-root in their
# asset paths: with --target they resolve target/release/ to
# target/<TARGET>/release/.
ln -sfn "$STAGE" "$RELEASE_DIR/dist-root"
cargo deb -p backend-multi --no-build --no-strip --target "$TARGET" --output "$DIST/" >/dev/null
# The rpm's file list is made here, from the tree (cargo-generate-rpm takes
# no mode from the files): each file where dist_install_path puts it, with
# its mode; the top-level files as documentation, the files under /etc as
# %config(noreplace) (dpkg keeps an edited file under /etc alike).
assets="assets = ["
while IFS= read -r f; do
  rel="${f#"$STAGE"/}"
  dest=$(dist_install_path "$rel")
  mode=$(stat -c %a "$f")
  flags="doc = false"
  [[ "$rel" == */* ]] || flags="doc = true"
  [[ "$dest" != /etc/* ]] || flags="config = \"noreplace\""
  assets+="{ source = \"$f\", dest = \"$dest\", mode = \"$mode\", $flags },"
done < <(find "$STAGE" -type f | sort)
assets+="]"
# xz, as RHEL/CentOS 7, Amazon Linux 2 and SLES 12 compress their own
# packages: their rpm (before 4.14) cannot read the default zstd payload.
cargo generate-rpm -p backend-multi --target "$TARGET" --payload-compress xz \
  --set-metadata "$assets" --output "$DIST/" >/dev/null

(cd "$DIST" && sha256sum -- *.tar.gz *.deb *.rpm >SHA256SUMS)
echo "dist: $TARGET, glibc >= $GLIBC_FLOOR, in $DIST:"
(cd "$DIST" && ls -l -- *.tar.gz *.deb *.rpm SHA256SUMS)
