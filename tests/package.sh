#!/usr/bin/env bash
# Builds the release binaries and the Debian package, then checks the
# package as an operator would meet it: its files and modes, every binary
# answers --version with the crate version, the dummy answers the seed
# example, the example configs are there, and the post-install script hands
# the backends to the agent's user in a way the agent accepts (checked with
# secret-backend-check). The script runs against the unpacked tree; it does
# not install anything on this machine. SKIP_RELEASE_BUILD=1 packages the
# release binaries already built.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
tools="$target/tools"
if [ ! -x "$tools/bin/cargo-deb" ]; then
  cargo install --quiet --locked cargo-deb@3.8.0 --root "$tools"
fi
[ "${SKIP_RELEASE_BUILD:-0}" = 1 ] || cargo build --release --workspace --locked
"$tools/bin/cargo-deb" -p backend-multi --no-build --output "$target/debian/secret-backend.deb" >/dev/null
deb="$target/debian/secret-backend.deb"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)

fail() { echo "package test: $*" >&2; exit 1; }

listing=$(dpkg-deb -c "$deb")
for b in secret-backend secret-backend-vault secret-backend-aws secret-backend-file secret-backend-dummy; do
  grep -Eq "^-r-x------ 0/0 .* \./opt/secret-backend/bin/$b\$" <<<"$listing" || fail "$b missing or not 0500 root"
done
grep -Eq "^-rwxr-xr-x 0/0 .* \./opt/secret-backend/bin/secret-backend-check\$" <<<"$listing" || fail "secret-backend-check missing or not 0755"
for e in multi.yaml vault-approle.yaml aws.yaml file-docker.yaml; do
  grep -q "\./etc/secret-backend/examples/$e\$" <<<"$listing" || fail "example $e missing"
done

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
dpkg-deb -x "$deb" "$root"
dpkg-deb -e "$deb" "$root/DEBIAN"
bin="$root/opt/secret-backend/bin"
for b in secret-backend secret-backend-vault secret-backend-aws secret-backend-file secret-backend-dummy secret-backend-check; do
  out=$("$bin/$b" --version)
  grep -q "^$b $version (git " <<<"$out" || fail "$b --version said: $out"
done
seed=$(printf '%s' '{"version":"1.0","secrets":["db_prod_user","db_prod_password"]}' | "$bin/secret-backend-dummy")
[ "$seed" = '{"db_prod_user":{"value":"decrypted_db_prod_user","error":null},"db_prod_password":{"value":"decrypted_db_prod_password","error":null}}' ] \
  || fail "seed example: $seed"

# The post-install script, for an agent user of this machine ('nobody'
# stands in for stackstate-agent / dd-agent).
SECRET_BACKEND_BIN="$bin" AGENT_USER=nobody sh "$root/DEBIAN/postinst" configure >/dev/null
chmod 0755 "$root" "$root/opt" "$root/opt/secret-backend" "$bin"
for b in secret-backend secret-backend-vault secret-backend-aws secret-backend-file secret-backend-dummy; do
  "$bin/secret-backend-check" rights "$bin/$b" --user nobody >/dev/null || fail "the agent would refuse $b after postinst"
done
# ...and the agent's user can run it and gets the seed example.
seed=$(printf '%s' '{"version":"1.0","secrets":["x"]}' | runuser -u nobody -- "$bin/secret-backend-dummy")
[ "$seed" = '{"x":{"value":"decrypted_x","error":null}}' ] || fail "as nobody: $seed"
echo "package test: $(basename "$deb") ok ($(du -h "$deb" | cut -f1))"
