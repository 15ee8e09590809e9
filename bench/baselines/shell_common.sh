# Sourced by the shell baselines: the protocol around a per-handle `fetch`
# function that prints one value (exit non-zero on failure). The JSON in and
# out is done by python3, as operators' scripts do with jq or python; the
# handles themselves are fetched one CLI call each, which is the point.
run_backend() {
  local tmp
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  cat >"$tmp/request"
  python3 -c 'import json,sys
r = json.load(open(sys.argv[1]))
assert str(r["version"]).startswith("1")
seen = set()
for h in r["secrets"]:
    if h not in seen and "\n" not in h:
        seen.add(h); print(h)' "$tmp/request" >"$tmp/handles" || return 1
  local i=0 handle
  while IFS= read -r handle; do
    i=$((i + 1))
    printf '%s' "$handle" >"$tmp/h$i"
    if fetch "$handle" >"$tmp/v$i" 2>/dev/null; then :; else rm -f "$tmp/v$i"; fi
  done <"$tmp/handles"
  python3 -c 'import json,os,sys
d = sys.argv[1]; n = int(sys.argv[2]); out = {}
for i in range(1, n + 1):
    h = open(f"{d}/h{i}").read()
    try:
        v = open(f"{d}/v{i}").read()
    except OSError:
        out[h] = {"value": None, "error": f"{h}: fetch failed"}; continue
    v = v[:-1] if v.endswith("\n") else v
    out[h] = {"value": v, "error": None} if v else {"value": None, "error": "secret is empty"}
sys.stdout.write(json.dumps(out))' "$tmp" "$i"
}
