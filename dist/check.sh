#!/usr/bin/env bash
# Checks what `bash dist/build.sh [TARGET]` wrote to target/dist/, as an
# operator of an old host would meet it. Any failure exits non-zero; a
# missing tool is installed (rpm, binutils: apt-get) or fails the check.
#   - SHA256SUMS verifies and covers exactly the tarball, the deb and the rpm;
#   - every executable needs at most glibc 2.17 (the highest GLIBC_ symbol
#     version of `objdump -T`) and libgcc_s symbols of GCC 4.2, links only
#     libc, libgcc_s, libm, libpthread, libdl and the dynamic loader (no
#     libssl), is stripped, carries its dependency list (cargo auditable's
#     .dep-v0 section), and stays within the size target of bench/bench.py
#     where it has one;
#   - the tarball, the deb (`dpkg-deb -c`) and the rpm (`rpm -qlp --dump`)
#     hold the same files with the same modes, owned by root, and the same
#     bytes, the same config files (/etc); the deb depends only on libc6 (>= 2.17), the rpm requires only
#     glibc >= 2.17 (and /bin/sh for its %post), asks nothing of rpm that
#     rpm 4.11 (RHEL 7, Amazon Linux 2, SLES 12) lacks, and has an xz
#     payload and SHA-256 file digests;
#   - the rpm installs into a scratch root (`rpm -i --root ... --nodeps`);
#     every executable of the tarball, the deb and the rpm answers --version
#     with the package version, and the dummy answers the seed example;
#   - the post-install script of each package, run against its unpacked
#     tree for the agent user `nobody`, hands the backends over in a way the
#     agent accepts (secret-backend-check rights), leaves
#     secret-backend-check to root, and `nobody` then gets the seed example.
set -euo pipefail
cd "$(dirname "$0")/.."
. dist/lib.sh
dist_setup "${1:-}"
dist_apt_tool objdump binutils
dist_apt_tool rpm rpm
for t in dpkg-deb runuser sha256sum; do
  command -v "$t" >/dev/null || dist_fail "$t is missing"
done

tarball="$DIST/$NAME.tar.gz"
deb="$DIST/secret-backend_${VERSION}-1_${DEB_ARCH}.deb"
rpm="$DIST/secret-backend-${VERSION}-1.${ARCH}.rpm"
for f in "$tarball" "$deb" "$rpm" "$DIST/SHA256SUMS"; do
  [ -f "$f" ] || dist_fail "$f is missing: run bash dist/build.sh $TARGET"
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Checksums.
(cd "$DIST" && sha256sum --strict --quiet -c SHA256SUMS) || dist_fail "SHA256SUMS does not verify"
[ "$(awk '{print $2}' "$DIST/SHA256SUMS" | sed 's/^\*//' | sort)" = "$(printf '%s\n' "${tarball##*/}" "${deb##*/}" "${rpm##*/}" | sort)" ] \
  || dist_fail "SHA256SUMS does not list exactly the three artifacts"

# The three trees: the tarball's, the deb's (unpacked), the rpm's
# (installed into a scratch root, without its %post, checked below).
mkdir -p "$work/tar" "$work/deb" "$work/rpm"
tar -xzf "$tarball" -C "$work/tar"
[ "$(ls -A "$work/tar")" = "$NAME" ] || dist_fail "the tarball's top-level folder is not $NAME"
dpkg-deb -x "$deb" "$work/deb"
dpkg-deb -e "$deb" "$work/deb/DEBIAN"
# (Debian's rpm warns on stderr that dpkg owns this system: not our case.)
rpm --root "$work/rpm" --initdb 2>/dev/null
rpm --root "$work/rpm" -i --nodeps --noscripts "$rpm" 2>"$work/rpm.err" || { cat "$work/rpm.err" >&2; dist_fail "rpm -i --root failed"; }
top="$work/tar/$NAME"

# Same files, modes, owner: each listing as "mode owner installed-path".
perms() { # ls-style permission string -> octal
  awk '{ m = 0; for (i = 2; i <= 10; i++) m = m * 2 + (substr($1, i, 1) != "-"); $1 = sprintf("%04o", m); print }'
}
tar -tvzf "$tarball" | awk '/^-/ { print $1, $2, $6 }' | perms | while read -r mode owner path; do
  echo "$mode $owner $(dist_install_path "${path#"$NAME"/}")"
done | sed -E 's, (root/root|0/0) , root ,' | sort >"$work/tar.list"
# cargo-deb adds Debian's copyright file; it is the only extra allowed.
dpkg-deb -c "$deb" >"$work/deb.contents"
awk '/^-/ { print $1, $2, $6 }' "$work/deb.contents" | perms | sed -E 's, (root/root|0/0) \./, root /,' \
  | grep -v ' /usr/share/doc/secret-backend/copyright$' | sort >"$work/deb.list"
rpm -qp --dump "$rpm" | while read -r path _ _ _ mode user group _; do
  printf '%04o %s %s\n' $((mode & 07777)) "$([ "$user" = "$group" ] && echo "$user" || echo "$user/$group")" "$path"
done | sort >"$work/rpm.list"
for p in deb rpm; do
  diff -u "$work/tar.list" "$work/$p.list" >&2 || dist_fail "the tarball and the $p differ in files, modes or owners (- tarball, + $p)"
done
grep -qv ' root ' "$work/tar.list" && dist_fail "files not owned by root"
grep -q " \./usr/share/doc/secret-backend/copyright$" "$work/deb.contents" || dist_fail "the deb has no copyright file"
(cd "$top" && find . -type f | sed 's,^\./,,') | while read -r rel; do
  path=$(dist_install_path "$rel")
  for p in deb rpm; do
    cmp -s "$top/$rel" "$work/$p$path" || dist_fail "$path differs between the tarball and the $p"
  done
done

[ "$(rpm -qp --configfiles "$rpm" | sort)" = "$(sort "$work/deb/DEBIAN/conffiles")" ] \
  || dist_fail "the rpm's %config files are not the deb's conffiles"

# Dependencies declared by the packages.
[ "$(dpkg-deb -f "$deb" Depends)" = "libc6 (>= $GLIBC_FLOOR)" ] || dist_fail "deb Depends: $(dpkg-deb -f "$deb" Depends)"
[ "$(dpkg-deb -f "$deb" Architecture)" = "$DEB_ARCH" ] || dist_fail "deb Architecture: $(dpkg-deb -f "$deb" Architecture)"
requires=$(rpm -qp --requires "$rpm" | sort -u)
# (config(...) is the package's own, for its %config files, as rpmbuild
# writes it.)
[ "$(grep -v '^rpmlib(' <<<"$requires")" \
  = "$(printf '%s\n' /bin/sh "config(secret-backend) = $VERSION-1" "glibc >= $GLIBC_FLOOR" | sort)" ] \
  || dist_fail "rpm Requires: $requires"
# What rpm 4.11 knows: anything else (PayloadIsZstd, LargeFiles,
# RichDependencies, ...) makes the package uninstallable there.
grep '^rpmlib(' <<<"$requires" | grep -Ev '^rpmlib\((CompressedFileNames|FileDigests|PayloadFilesHavePrefix|PayloadIsXz)\) ' \
  && dist_fail "the rpm needs rpm features that rpm 4.11 lacks"
[ "$(rpm -qp --qf '%{PAYLOADCOMPRESSOR} %{FILEDIGESTALGO} %{ARCH} %{POSTINPROG}' "$rpm")" = "xz 8 $ARCH /bin/sh" ] \
  || dist_fail "rpm payload, digest, arch or %post interpreter: $(rpm -qp --qf '%{PAYLOADCOMPRESSOR} %{FILEDIGESTALGO} %{ARCH} %{POSTINPROG}' "$rpm")"

# The executables.
size_targets=$(python3 - <<'EOF'
import ast
tree = ast.parse(open("bench/bench.py").read())
found = {}
for node in tree.body:
    if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
        if node.targets[0].id in ("BINARIES", "SIZE_TARGETS_MB"):
            found[node.targets[0].id] = ast.literal_eval(node.value)
for short, mb in found["SIZE_TARGETS_MB"].items():
    print(found["BINARIES"][short][0], mb)
EOF
) || dist_fail "could not read the size targets of bench/bench.py"
allowed='^(libc\.so\.6|libgcc_s\.so\.1|libm\.so\.6|libpthread\.so\.0|libdl\.so\.2|ld-linux-(x86-64|aarch64)\.so\.[12])$'
printf '%-24s %10s %6s %s\n' executable bytes glibc "crates listed"
for b in "${BINARIES[@]}"; do
  f="$top/bin/$b"
  [ -f "$f" ] || dist_fail "$b is not in the tarball"
  glibc=$(objdump -T "$f" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1)
  [ -n "$glibc" ] || dist_fail "$b: no GLIBC_ symbol versions (not a glibc executable?)"
  [ "$(printf '%s\n' "$glibc" "$GLIBC_FLOOR" | sort -V | tail -n 1)" = "$GLIBC_FLOOR" ] \
    || dist_fail "$b needs glibc $glibc, more than $GLIBC_FLOOR"
  gcc=$(objdump -T "$f" | grep -o 'GCC_[0-9.]*' | sed 's/GCC_//' | sort -uV | tail -n 1)
  [ "$(printf '%s\n' "${gcc:-0}" 4.2.0 | sort -V | tail -n 1)" = 4.2.0 ] \
    || dist_fail "$b needs libgcc_s symbols of GCC $gcc, newer than 4.2.0"
  objdump -p "$f" | awk '$1 == "NEEDED" { print $2 }' | grep -Ev "$allowed" \
    && dist_fail "$b links libraries other than glibc's and libgcc_s"
  readelf -S --wide "$f" | grep -Eq '\.symtab|\.debug_' && dist_fail "$b is not stripped"
  # Not `readelf | grep -q`: grep's early exit would kill readelf with
  # SIGPIPE now and then, which pipefail reports as a failure.
  sections=$(readelf -S --wide "$f")
  grep -q '\.dep-v0' <<<"$sections" || dist_fail "$b carries no dependency list (.dep-v0 section)"
  cp "$f" "$work/$b.copy" # objcopy rewrites the file it reads
  objcopy --dump-section ".dep-v0=$work/$b.dep" "$work/$b.copy"
  crates=$(python3 -c '
import json, sys, zlib
d = json.loads(zlib.decompress(open(sys.argv[1], "rb").read()))
roots = [p["name"] for p in d["packages"] if p.get("root")]
assert len(roots) == 1 and all(p["name"] and p["version"] for p in d["packages"]), roots
print(len(d["packages"]), "(" + roots[0] + ")")
' "$work/$b.dep") || dist_fail "$b: its dependency list does not decode"
  size=$(stat -c %s "$f")
  limit=$(awk -v b="$b" '$1 == b { print $2 }' <<<"$size_targets")
  if [ -n "$limit" ]; then
    awk -v s="$size" -v l="$limit" 'BEGIN { exit !(s < l * 1000000) }' \
      || dist_fail "$b is $size bytes, over its target of $limit MB (bench/bench.py)"
  fi
  printf '%-24s %10s %6s %s%s\n' "$b" "$size" "$glibc" "$crates" "${limit:+  (target < $limit MB)}"
done

# They run, from each of the three trees.
seed_request='{"version":"1.0","secrets":["db_prod_user","db_prod_password"]}'
seed_reply='{"db_prod_user":{"value":"decrypted_db_prod_user","error":null},"db_prod_password":{"value":"decrypted_db_prod_password","error":null}}'
for bin in "$top/bin" "$work/deb/opt/secret-backend/bin" "$work/rpm/opt/secret-backend/bin"; do
  for b in "${BINARIES[@]}"; do
    out=$("$bin/$b" --version) || dist_fail "$bin/$b --version failed"
    grep -q "^$b $VERSION (git " <<<"$out" || dist_fail "$bin/$b --version said: $out"
  done
  [ "$(printf '%s' "$seed_request" | "$bin/secret-backend-dummy")" = "$seed_reply" ] \
    || dist_fail "$bin/secret-backend-dummy: wrong answer to the seed example"
done

# The post-install script hands the backends to the agent's user ('nobody'
# stands in for stackstate-agent / dd-agent): ROOT SCRIPT ARG.
handover() {
  local bin="$1/opt/secret-backend/bin" b
  SECRET_BACKEND_BIN="$bin" AGENT_USER=nobody sh "$2" "$3" >/dev/null
  chmod 0755 "$work" "$1" "$1/opt" "$1/opt/secret-backend" "$bin"
  for b in "${BINARIES[@]}"; do
    if [ "$(dist_mode "$b")" = 0500 ]; then
      "$bin/secret-backend-check" rights "$bin/$b" --user nobody >"$work/rights" \
        || { cat "$work/rights" >&2; false; } || dist_fail "${2##*/}: the agent would refuse $b after the post-install script"
    else
      [ "$(stat -c '%a %U' "$bin/$b")" = "755 root" ] || dist_fail "${2##*/}: $b was handed over too"
    fi
  done
  [ "$(printf '%s' '{"version":"1.0","secrets":["x"]}' | runuser -u nobody -- "$bin/secret-backend-dummy")" \
    = '{"x":{"value":"decrypted_x","error":null}}' ] || dist_fail "${2##*/}: nobody does not get the seed example"
}
handover "$work/deb" "$work/deb/DEBIAN/postinst" configure
rpm -qp --qf '%{POSTIN}' "$rpm" >"$work/rpm-post.sh"
handover "$work/rpm" "$work/rpm-post.sh" 1

echo "dist check: $TARGET ok: $(cd "$DIST" && du -h -- *.tar.gz *.deb *.rpm | tr '\t' ' ' | paste -sd ',' | sed 's/,/, /g')"
