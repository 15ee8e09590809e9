#!/usr/bin/env python3
"""The benchmark driver behind bench/run.sh.

Starts an OpenBao dev server and a moto server on free ports, and the
test fakes of backend-tests as executables (fake-k8s; fake-google, which
runs drongo; fake-azure), seeds them, and times every case of issue 9 (and
of the stores added since) side by side with its baselines and floors:
each command runs once as a warm-up and then `--runs` times, the payload on
stdin, and every reply is checked (ours and the baselines alike: a wrong
answer is a failure, never a number). It also counts the requests the
servers saw per call (OpenBao's file audit device; a counting proxy in front
of moto), measures peak RSS at 1,000 handles (`wait4`'s `ru_maxrss`) and the
stripped size of each binary, and appends a dated section to RESULTS.md.

Standard library only, so `--smoke` runs with any python3; the baselines
that need hvac, boto3 or awscli run under the venv run.sh makes.
"""

import argparse
import base64
import datetime
import http.client
import http.server
import json
import os
import platform
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
BASELINES = os.path.join(HERE, "baselines")

# Our executables: short name -> (binary, crate), in table order.
BINARIES = {
    "dummy": ("secret-backend-dummy", "backend-dummy"),
    "file": ("secret-backend-file", "backend-file"),
    "vault": ("secret-backend-vault", "backend-vault"),
    "aws": ("secret-backend-aws", "backend-aws"),
    "k8s": ("secret-backend-k8s", "backend-k8s"),
    "gcp": ("secret-backend-gcp", "backend-gcp"),
    "azure": ("secret-backend-azure", "backend-azure"),
    "multi": ("secret-backend", "backend-multi"),
}

# Stripped size targets, in MB (10^6 bytes): issue 14's ("dummy and file
# < 1 MB, vault < 3.5, aws < 5, multi < 6 MB"), which every binary meets
# again since the AWS store speaks to AWS without the SDK's loader and
# service crates (about 2.2 MB of aws, vault and secret-backend: the
# reasons in backend-aws/src/credentials.rs and api.rs) and backend-core
# dropped tracing-subscriber (file 1,001,736 -> 996,488 bytes). Earlier
# rounds had raised file to 1.1, aws to 5.2, vault to 4.7 (aws-config for
# its aws login) and secret-backend to 7.0; RESULTS.md has the history.
# k8s, gcp and azure: 3.5 (one HTTPS client, ring, a JSON store; azure
# also reads PKCS#12 and encrypted keys). dist/check.sh holds the shipped
# binaries to these too.
SIZE_TARGETS_MB = {"dummy": 1.0, "file": 1.0, "vault": 3.5, "aws": 5.0, "k8s": 3.5,
                   "gcp": 3.5, "azure": 3.5, "multi": 6.0}
RSS_TARGET_MB = 20.0
# The store layout; the full run's numbers are the issue's.
VAULT_PATHS = 20
VAULT_KEYS = 50  # keys per path: 20 x 50 = the 1,000-handle RSS payload
AWS_SECRETS = 100
AWS_DOC_KEYS = 10  # keys per JSON secret: 100 x 10 = the RSS payload
K8S_SECRETS = 20
K8S_KEYS = 50  # keys per Secret: 20 x 50 = the 1,000-handle RSS payload
# The fake Kubernetes API server (tests/src/bin/fake-k8s), built with the
# binaries: `cargo build -p backend-tests --bin fake-k8s` (cargo test
# --workspace builds it too).
FAKE_K8S = "fake-k8s"
# GCP Secret Manager: drongo, the emulator the gcp tests run (DRONGO, else
# target/test-venv/bin/drongo from tests/run-all.sh), behind the fake
# Google token endpoint and front (tests/src/bin/fake-google, which starts
# and seeds drongo itself): GCP_SECRETS secrets of GCP_KEYS JSON keys.
FAKE_GOOGLE = "fake-google"
GCP_SECRETS = 20
GCP_KEYS = 50  # 20 x 50 = the 1,000-handle RSS payload
# Azure Key Vault and Entra ID: the fake of the azure tests
# (tests/src/bin/fake-azure), TLS with its own CA, a client secret.
FAKE_AZURE = "fake-azure"
AZURE_SECRETS = 20
AZURE_KEYS = 50  # 20 x 50 = the 1,000-handle RSS payload
FILES = 1000
RSS_HANDLES = 1000
# Issue 13: 200,000 handles (3.9 MB, under the 4 MiB input limit) must be
# answered before a 5 s deadline in under 100 MB, whatever the store.
MANY_HANDLES = 200_000
MANY_TARGET_MB = 100.0
MANY_TIMEOUT_S = 5
RUN_TIMEOUT = 600  # seconds; a hung command fails its row


# --------------------------------------------------------------- helpers


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, seconds=30.0):
    """Polls `url` until the server answers anything."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server at {url} did not come up in {seconds:.0f} s")


def payload(handles):
    """The request as an agent writes it: compact, keys sorted, no newline."""
    return json.dumps({"secrets": handles, "version": "1.0"}, separators=(",", ":")).encode()


def run_once(argv, stdin, env, timeout=RUN_TIMEOUT):
    """Runs one command; returns (seconds, rc, stdout, stderr, maxrss_kb).

    Timed from spawn to reaped, the way the agent experiences it; `wait4`
    gives this child's own peak RSS.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    out = {}

    def drain(name, stream):
        out[name] = stream.read()

    readers = [
        threading.Thread(target=drain, args=("out", proc.stdout)),
        threading.Thread(target=drain, args=("err", proc.stderr)),
    ]
    for t in readers:
        t.start()
    # A floor such as `curl` never reads its stdin and may be gone before
    # the payload is written (or flushed by close): not an error.
    try:
        proc.stdin.write(stdin)
        proc.stdin.close()
    except BrokenPipeError:
        try:
            proc.stdin.close()
        except BrokenPipeError:
            pass
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    for t in readers:
        t.join()
    return elapsed, proc.returncode, out.get("out", b""), out.get("err", b""), usage.ru_maxrss


def check_reply(stdout, expected):
    """None when `stdout` answers exactly the `expected` handles with their values."""
    try:
        reply = json.loads(stdout)
    except ValueError:
        return f"reply is not JSON ({len(stdout)} bytes)"
    if not isinstance(reply, dict):
        return "reply is not an object"
    if set(reply) != set(expected):
        missing = len(set(expected) - set(reply))
        extra = len(set(reply) - set(expected))
        return f"reply has {missing} handle(s) missing, {extra} extra"
    for handle, want in expected.items():
        entry = reply[handle]
        if not isinstance(entry, dict) or entry.get("error") not in (None, ""):
            err = entry.get("error") if isinstance(entry, dict) else entry
            return f"{handle!r}: error {str(err)[:200]!r}"
        if entry.get("value") != want:
            return f"{handle!r}: wrong value"
    return None


def fmt_ms(seconds):
    ms = seconds * 1000
    return f"{ms:.0f}" if ms >= 100 else f"{ms:.1f}" if ms >= 10 else f"{ms:.2f}"


def fmt_ratio(x):
    return f"{x:.0f}x" if x >= 100 else f"{x:.1f}x" if x >= 10 else f"{x:.2f}x"


# --------------------------------------------------------------- servers


class OpenBao:
    """A dev server with a file audit device (declared in a -config file:
    OpenBao refuses to enable audit devices through the API)."""

    def __init__(self, bao, workdir):
        self.port = free_port()
        self.addr = f"http://127.0.0.1:{self.port}"
        self.audit = os.path.join(workdir, "audit.log")
        hcl = os.path.join(workdir, "bao.hcl")
        with open(hcl, "w") as f:
            f.write(
                'audit "file" "bench" {\n  options {\n'
                f'    file_path = "{self.audit}"\n  }}\n}}\n'
            )
        self.log = open(os.path.join(workdir, "bao.log"), "wb")
        self.proc = subprocess.Popen(
            [bao, "server", "-dev", "-dev-root-token-id=root",
             f"-dev-listen-address=127.0.0.1:{self.port}", "-config", hcl],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        wait_http(f"{self.addr}/v1/sys/health")

    def api(self, method, path, body=None):
        req = urllib.request.Request(
            f"{self.addr}/v1/{path}", method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"X-Vault-Token": "root"},
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.read()

    def seed(self, paths, keys):
        """secret/bench/app<p> = {k<j>: "vault-<p>-<j>"}; returns the lookup."""
        values = {}
        for p in range(paths):
            data = {f"k{j}": f"vault-{p}-{j}" for j in range(keys)}
            self.api("POST", f"secret/data/bench/app{p}", {"data": data})
            for k, v in data.items():
                values[f"secret/bench/app{p};{k}"] = v
        return values

    def audit_offset(self):
        try:
            return os.path.getsize(self.audit)
        except OSError:
            return 0

    def requests_since(self, offset):
        """The requests logged after `offset`, classified."""
        counts = {}
        with open(self.audit, "rb") as f:
            f.seek(offset)
            for line in f:
                entry = json.loads(line)
                if entry.get("type") != "request":
                    continue
                path = entry.get("request", {}).get("path", "")
                if path.startswith("sys/internal/ui/mounts"):
                    kind = "mount lookup"
                elif path.startswith("secret/"):
                    kind = "read"
                else:
                    kind = path
                counts[kind] = counts.get(kind, 0) + 1
        return counts

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


def amz_request(port, target, body):
    """One unsigned Secrets Manager call to moto (it does not check
    signatures; the Authorization header only names region and key)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/", body=json.dumps(body), headers={
        "X-Amz-Target": f"secretsmanager.{target}",
        "Content-Type": "application/x-amz-json-1.1",
        "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/"
                         "secretsmanager/aws4_request, SignedHeaders=host, Signature=0",
    })
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    if resp.status != 200:
        raise RuntimeError(f"moto {target}: HTTP {resp.status}")
    return json.loads(data)


class Moto:
    """moto_server on a free port."""

    def __init__(self, moto, workdir):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(os.path.join(workdir, "moto.log"), "wb")
        self.proc = subprocess.Popen(
            [moto, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        wait_http(f"{self.url}/moto-api/")

    def seed(self, plain, docs, doc_keys):
        """bench/plain<i> = "aws-<i>" and bench/doc<i> = {k<j>: ...};
        returns the lookup of handle -> value."""
        values = {}
        for i in range(plain):
            name, value = f"bench/plain{i}", f"aws-{i}"
            amz_request(self.port, "CreateSecret", {"Name": name, "SecretString": value})
            values[name] = value
        for i in range(docs):
            doc = {f"k{j}": f"aws-doc-{i}-{j}" for j in range(doc_keys)}
            name = f"bench/doc{i}"
            amz_request(self.port, "CreateSecret", {"Name": name, "SecretString": json.dumps(doc)})
            for k, v in doc.items():
                values[f"{name};{k}"] = v
        # The first call to a service is slow in moto: not ours to time.
        amz_request(self.port, "GetSecretValue", {"SecretId": "bench/plain0"})
        return values

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


class FakeServer:
    """One of the test fakes of backend-tests run as an executable
    (tests/src/bin/fake-*): it prints one JSON line saying what it serves,
    answers `take` on its stdin with the requests it saw since the last
    one, and stops when its stdin closes."""

    name = "fake"

    def __init__(self, argv, workdir, env=None):
        self.log_path = os.path.join(workdir, f"{self.name}.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, env=env,
        )
        self.lock = threading.Lock()
        self.info = json.loads(self.read_line(60))

    def read_line(self, seconds):
        import select
        ready, _, _ = select.select([self.proc.stdout], [], [], seconds)
        line = self.proc.stdout.readline() if ready else b""
        if not line:
            try:
                with open(self.log_path, "rb") as f:
                    tail = f.read()[-600:].decode(errors="replace").strip()
            except OSError:
                tail = ""
            raise RuntimeError(f"{self.name} did not answer in {seconds} s "
                               f"(exit {self.proc.poll()}); its stderr: {tail or '(empty)'}")
        return line

    def take(self):
        """The requests the server saw since the last take, classified
        (`read`, `token`, ...; see the executable's doc)."""
        with self.lock:
            self.proc.stdin.write(b"take\n")
            self.proc.stdin.flush()
            return json.loads(self.read_line(30))["counts"]

    def stop(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()


class FakeK8s(FakeServer):
    """The fake Kubernetes API server of the tests (tests/src/k8s.rs) as an
    executable: TLS with its own CA, one bearer token; `read` counts a
    secret answered 200."""

    name = "fake-k8s"

    def __init__(self, binary, workdir, secrets, keys):
        super().__init__([binary, "--secrets", str(secrets), "--keys", str(keys)], workdir)
        info = self.info
        self.url = info["api_server"]
        self.ca_path = info["ca_path"]
        self.token_path = info["token_path"]
        self.token = info["token"]
        self.namespace = info["namespace"]
        self.values = {f"{self.namespace}/app{i};k{j}": f"k8s-{i}-{j}"
                       for i in range(secrets) for j in range(keys)}
        self.take()  # nothing yet; starts the count

    def secret_url(self, name):
        return f"{self.url}/api/v1/namespaces/{self.namespace}/secrets/{name}"


class FakeStore(FakeServer):
    """fake-google and fake-azure: `secrets` JSON secrets `app<i>` of `keys`
    keys `k<j>` = `<prefix>-<i>-<j>`; `info` holds what the config needs."""

    prefix = ""

    def __init__(self, binary, workdir, secrets, keys, env=None):
        super().__init__([binary, "--secrets", str(secrets), "--keys", str(keys)], workdir,
                         env=env)
        self.values = {f"app{i};k{j}": f"{self.prefix}-{i}-{j}"
                       for i in range(secrets) for j in range(keys)}
        self.take()  # nothing yet; starts the count


class FakeGoogle(FakeStore):
    """drongo, the Secret Manager emulator, behind the fake Google token
    endpoint and front of the tests (tests/src/drongo.rs, gcp_auth.rs), one
    executable that starts drongo itself (DRONGO in its environment):
    `token` counts a token granted, `access` a version's `:access`
    forwarded to drongo."""

    name = "fake-google"
    prefix = "gcp"


class FakeAzure(FakeStore):
    """The fake Key Vault and Entra ID of the tests (tests/src/azure.rs) as
    an executable: TLS with its own CA, one application with a client
    secret; `token` counts a token issued, `read` a secret answered 200."""

    name = "fake-azure"
    prefix = "azure"


class CountingProxy:
    """A plain HTTP proxy in front of moto that counts the API operations
    (X-Amz-Target) it forwards. Used only for the counting run, never
    while timing."""

    def __init__(self, target_port):
        counts = self.counts = {}
        lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                self.forward("POST")

            def do_GET(self):
                self.forward("GET")

            def forward(self, method):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                op = self.headers.get("X-Amz-Target") or f"{method} {self.path}"
                with lock:
                    counts[op] = counts.get(op, 0) + 1
                conn = http.client.HTTPConnection("127.0.0.1", target_port, timeout=60)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("connection", "transfer-encoding")}
                conn.request(method, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("connection", "transfer-encoding", "content-length",
                                         "server", "date"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take(self):
        """The counts since the last take."""
        counts = dict(self.counts)
        self.counts.clear()
        return counts

    def stop(self):
        self.server.shutdown()


# --------------------------------------------------------------- cases


class Contender:
    """One command of a case: ours, a baseline or a floor."""

    def __init__(self, label, kind, argv, env, check, count=None):
        self.label = label
        self.kind = kind  # "ours", "baseline" or "floor"
        self.argv = argv
        self.env = env
        self.check = check  # stdout -> None or the reason it is wrong
        # count(run) -> {what: n}: runs the command once and returns what
        # the server saw; None when there is no server to ask.
        self.count = count
        self.times = []
        self.failure = None
        self.requests = None
        self.skipped = None  # why it did not run ("not built", ...)


class Case:
    def __init__(self, key, title, handles, note=""):
        self.key = key
        self.title = title
        self.handles = handles
        self.stdin = payload(handles)
        self.note = note
        self.contenders = []

    def add(self, contender):
        self.contenders.append(contender)
        return contender

    def get(self, label):
        return next((c for c in self.contenders if c.label == label), None)


class Bench:
    def __init__(self, args):
        self.args = args
        self.smoke = args.smoke
        self.runs = args.runs
        self.work = tempfile.mkdtemp(prefix="secret-backend-bench-")
        self.failures = []
        self.notes = []
        self.bins = {name: self.find_bin(binary) for name, (binary, _) in BINARIES.items()}
        self.variants = {}
        for spec in args.variant:
            name, label, path = self.parse_variant(spec)
            self.variants.setdefault(name, []).append((f"{BINARIES[name][0]} ({label})", path))
        self.bao = self.find_tool("BAO_BIN", "bao")
        self.moto_bin = self.find_tool("MOTO_SERVER", "moto_server")
        self.fake_k8s_bin = os.environ.get("FAKE_K8S") or self.find_bin(FAKE_K8S)
        self.fake_google_bin = os.environ.get("FAKE_GOOGLE") or self.find_bin(FAKE_GOOGLE)
        self.fake_azure_bin = os.environ.get("FAKE_AZURE") or self.find_bin(FAKE_AZURE)
        # fake-google runs drongo from a directory of its own: an absolute path.
        self.drongo = self.find_tool("DRONGO", "drongo")
        if self.drongo and shutil.which(self.drongo):
            self.drongo = os.path.abspath(shutil.which(self.drongo))
        self.python = args.python or sys.executable
        self.time_bin = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
        if not self.time_bin:
            self.notes.append("GNU time (/usr/bin/time) not found: peak RSS figures include "
                              "the Python launcher's RSS (upper bounds)")
        self.vault = self.moto = self.proxy = self.k8s = self.gcp = self.azure = None
        self.cases = []
        self.rss = {}
        self.many = {}
        self.sizes = {}

    # ---- discovery

    @staticmethod
    def parse_variant(spec):
        """`vault:ring=/path/to/secret-backend-vault` -> (name, label, path)."""
        try:
            head, path = spec.split("=", 1)
            name, label = head.split(":", 1)
        except ValueError:
            raise SystemExit(f"bench: --variant {spec!r}: expected NAME:LABEL=PATH") from None
        if name not in BINARIES or not os.access(path, os.X_OK):
            raise SystemExit(f"bench: --variant {spec!r}: unknown name or not an executable")
        return name, label, os.path.abspath(path)

    def wanted(self, name):
        """Whether --cases lets the cases of store `name` run."""
        if not self.args.cases:
            return True
        return any(w == name or w.startswith(f"{name}-") for w in self.args.cases.split(","))

    def find_bin(self, binary):
        path = os.path.join(self.args.bin_dir, binary)
        return path if os.access(path, os.X_OK) else None

    def find_tool(self, env_var, name):
        if os.environ.get(env_var):
            return os.environ[env_var]
        found = shutil.which(name)
        if found:
            return found
        for venv in ("bench-venv", "test-venv"):
            path = os.path.join(HERE, "..", "target", venv, "bin", name)
            if os.access(path, os.X_OK):
                return os.path.abspath(path)
        return None

    def base_env(self, **extra):
        """A clean environment: no stray AWS_/VAULT_/KUBERNETES_/GOOGLE_/AZURE_
        settings, KUBECONFIG or managed identity endpoints, an empty HOME (no
        ~/.aws, ~/.vault-token, ~/.kube, gcloud's ADC file), metadata probing
        off."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AWS_", "VAULT_", "BAO_", "SECRET_BACKEND_", "KUBERNETES_",
                                    "GOOGLE_", "CLOUDSDK_", "AZURE_", "MSI_", "IDENTITY_"))
               and k not in ("KUBECONFIG", "GCE_METADATA_HOST", "IMDS_ENDPOINT")}
        env["HOME"] = self.home
        env["PATH"] = os.pathsep.join([os.path.dirname(self.python), env.get("PATH", "")])
        env.update(extra)
        return env

    def vault_env(self):
        return self.base_env(VAULT_ADDR=self.vault.addr, VAULT_TOKEN="root")

    def aws_env(self, endpoint):
        return self.base_env(
            AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
            AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1",
            AWS_EC2_METADATA_DISABLED="true", AWS_ENDPOINT_URL=endpoint,
        )

    # ---- setup

    def setup(self):
        self.home = os.path.join(self.work, "home")
        os.makedirs(self.home)
        self.files_dir = os.path.join(self.work, "files")
        os.makedirs(self.files_dir)
        self.file_values = {}
        for i in range(FILES):
            name = f"f{i:04d}"
            value = f"file-{i}"
            with open(os.path.join(self.files_dir, name), "w") as f:
                f.write(value)
            self.file_values[name] = value
        wants_vault = self.bins["vault"] or self.bins["multi"] or not self.smoke
        wants_aws = self.bins["aws"] or self.bins["multi"] or not self.smoke
        self.vault_values = self.aws_values = {}
        if wants_vault:
            if self.bao:
                self.vault = OpenBao(self.bao, self.work)
                self.vault_values = self.vault.seed(VAULT_PATHS, VAULT_KEYS)
            else:
                self.notes.append("OpenBao (`bao`) not found: vault cases skipped")
        if wants_aws:
            if self.moto_bin:
                self.moto = Moto(self.moto_bin, self.work)
                docs = 10 if self.smoke else AWS_SECRETS
                self.aws_values = self.moto.seed(AWS_SECRETS, docs, AWS_DOC_KEYS)
                self.proxy = CountingProxy(self.moto.port)
            else:
                self.notes.append("moto (`moto_server`) not found: aws cases skipped")
        if self.needs_fake("k8s", self.fake_k8s_bin, FAKE_K8S, "FAKE_K8S",
                           "the fake Kubernetes API server"):
            self.k8s = FakeK8s(self.fake_k8s_bin, self.work, K8S_SECRETS, K8S_KEYS)
            self.k8s_values = self.k8s.values
        if self.needs_fake("gcp", self.fake_google_bin, FAKE_GOOGLE, "FAKE_GOOGLE",
                           "the fake Google token endpoint and front"):
            if not self.drongo or not os.access(self.drongo, os.X_OK):
                self.failures.append(
                    "drongo, the GCP Secret Manager emulator, is missing (DRONGO, PATH, "
                    "target/test-venv/bin): install it with tests/run-all.sh (or pip install "
                    "drongo==0.8.0) or name it with DRONGO; the gcp case cannot run")
            else:
                self.gcp = FakeGoogle(self.fake_google_bin, self.work, GCP_SECRETS, GCP_KEYS,
                                      env=dict(os.environ, DRONGO=self.drongo))
        if self.needs_fake("azure", self.fake_azure_bin, FAKE_AZURE, "FAKE_AZURE",
                           "the fake Azure Key Vault"):
            self.azure = FakeAzure(self.fake_azure_bin, self.work, AZURE_SECRETS, AZURE_KEYS)

    def needs_fake(self, name, fake_bin, fake_name, env_var, what):
        """Whether the case of store `name` runs against its fake server.
        Unlike OpenBao and moto the fakes are ours, built with the binaries:
        a missing fake, or (smoke) a missing secret-backend-<name>, is a
        failure of the run, never a skipped case."""
        if not self.wanted(name):
            return False
        binary, crate = BINARIES[name]
        if not self.bins[name]:
            if self.smoke:
                self.failures.append(
                    f"{binary} not in {self.args.bin_dir}: build it "
                    f"(cargo build -p {crate}); the {name} case cannot run")
            if not self.variants.get(name):
                return False
        if not fake_bin or not os.access(fake_bin, os.X_OK):
            where = fake_bin or os.path.join(self.args.bin_dir, fake_name)
            self.failures.append(
                f"{what} is missing ({where}): build it (cargo build -p backend-tests "
                f"--bin {fake_name}, or cargo test --workspace) or name it with {env_var}; "
                f"the {name} case cannot run")
            return False
        return True

    def teardown(self):
        for server in (self.proxy, self.moto, self.vault, self.k8s, self.gcp, self.azure):
            if server:
                try:
                    server.stop()
                except Exception as e:  # keep tearing down the others
                    print(f"bench: stopping a server: {e}", file=sys.stderr)
        shutil.rmtree(self.work, ignore_errors=True)

    # ---- contenders

    def builds(self, name):
        """(label, path or None) of each build of one of our binaries: the
        one in --bin-dir, then the --variant builds."""
        return [(BINARIES[name][0], self.bins[name]), *self.variants.get(name, [])]

    def ours(self, case, name, argv_extra, env, values, servers=(), extra_for=None,
             env_for=None):
        """Our binary `name` (and its variants) in `case`. `servers` names
        the servers to count requests on; `extra_for(endpoint)` gives the
        arguments for the counting run when they differ (the multi config
        names the endpoint), `env_for(endpoint)` its environment."""
        expected = {h: values[h] for h in case.handles}
        for label, binary in self.builds(name):
            count = None
            if servers and binary:
                count = self.counter(
                    servers,
                    lambda ep, b=binary: [b, *(extra_for(ep) if extra_for else argv_extra)],
                    env_for or (lambda _: env))
            c = case.add(Contender(label, "ours", [binary or label, *argv_extra], env,
                                   lambda out: check_reply(out, expected), count))
            if not binary:
                c.skipped = "not built"

    def baseline(self, case, label, argv, env, values, count=None, needs=None):
        expected = {h: values[h] for h in case.handles}
        c = case.add(Contender(label, "baseline", argv, env,
                               lambda out: check_reply(out, expected), count))
        if needs and not shutil.which(needs, path=env.get("PATH")):
            c.skipped = f"`{needs}` not found"
        return c

    def cat_floor(self, case):
        stdin = case.stdin
        case.add(Contender("cat", "floor", ["cat"], self.base_env(),
                           lambda out: None if out == stdin else "cat changed the payload"))

    def counter(self, servers, argv_for, env_for):
        """A count(case) function: runs the command once and returns what
        the servers it talks to saw."""

        def count(case):
            argv = argv_for(self.proxy.url if self.proxy else None)
            result = {}
            off = self.vault.audit_offset() if "vault" in servers else 0
            if "aws" in servers:
                self.proxy.take()
            fakes = [f for f in ("k8s", "gcp", "azure") if f in servers]
            for f in fakes:
                getattr(self, f).take()
            run_once(argv, case.stdin, env_for(self.proxy.url if self.proxy else None))
            for f in fakes:
                result.update(getattr(self, f).take())
            if "vault" in servers:
                result.update(self.vault.requests_since(off))
            if "aws" in servers:
                result.update({k.removeprefix("secretsmanager."): v
                               for k, v in self.proxy.take().items()})
            return result

        return count

    # ---- the cases

    def build_cases(self):
        dummy_values = lambda hs: {h: f"decrypted_{h}" for h in hs}  # noqa: E731
        small = self.smoke

        # dummy
        for n in ([1, 10] if small else [1, 10_000]):
            handles = [f"handle_{i}" for i in range(n)]
            case = Case(f"dummy-{n}", f"dummy, {n:,} handle{'s' if n > 1 else ''}", handles)
            self.ours(case, "dummy", [], self.base_env(), dummy_values(handles))
            self.cat_floor(case)
            self.cases.append(case)

        # file
        n = 10 if small else 100
        handles = [f"f{i:04d}" for i in range(n)]
        case = Case("file-100", f"file, {n} handles", handles)
        self.ours(case, "file", ["--dir", self.files_dir], self.base_env(), self.file_values)
        self.baseline(case, "python file script",
                      [self.python, os.path.join(BASELINES, "file_backend.py"), self.files_dir],
                      self.base_env(), self.file_values)
        self.cat_floor(case)
        self.cases.append(case)

        if self.vault:
            self.build_vault_cases(small)
        if self.moto:
            self.build_aws_cases(small)
        if self.k8s:
            self.build_k8s_case(small)
        if self.gcp:
            self.build_store_case("gcp", self.gcp, small, self.gcp_config())
        if self.azure:
            self.build_store_case("azure", self.azure, small, self.azure_config())
        if self.vault and self.moto:
            self.build_multi_case(small)
        elif self.bins["multi"]:
            self.notes.append("multi case skipped: it needs both OpenBao and moto")

    def vault_handles(self, paths, keys):
        return [f"secret/bench/app{p};k{j}" for p in range(paths) for j in range(keys)]

    def build_vault_cases(self, small):
        paths, keys = (4, 2) if small else (VAULT_PATHS, 5)
        handles = self.vault_handles(paths, keys)
        case = Case("vault-100", f"vault, {len(handles)} handles over {paths} paths", handles)
        env = self.vault_env()
        self.ours(case, "vault", [], env, self.vault_values, servers={"vault"})
        if not small:
            argv = ["bash", os.path.join(BASELINES, "bao_shell.sh")]
            self.baseline(case, "bao kv get shell script", argv, env, self.vault_values,
                          self.counter({"vault"}, lambda _: argv, lambda _: env), needs="bao")
            argv_h = [self.python, os.path.join(BASELINES, "hvac_backend.py")]
            self.baseline(case, "python hvac script", argv_h, env, self.vault_values,
                          self.counter({"vault"}, lambda _: argv_h, lambda _: env))
        if shutil.which("curl"):
            want = self.vault_values["secret/bench/app0;k0"]

            def check_curl(out):
                try:
                    got = json.loads(out)["data"]["data"]["k0"]
                except (ValueError, KeyError, TypeError):
                    return "curl reply is not the secret"
                return None if got == want else "curl: wrong value"

            case.add(Contender(
                "curl of one path", "floor",
                ["curl", "-sS", "--fail", "-H", "X-Vault-Token: root",
                 f"{self.vault.addr}/v1/secret/data/bench/app0"],
                env, check_curl))
            # The same reads as ours in one process: what the server costs.
            wants = {f"vault-{p}-0" for p in range(paths)}

            def check_all(out):
                found = {v for v in wants if f'"k0":"{v}"' in out.decode(errors="replace")}
                return None if found == wants else f"curl: {len(wants - found)} path(s) missing"

            urls = [f"{self.vault.addr}/v1/secret/data/bench/app{p}" for p in range(paths)]
            case.add(Contender(
                f"curl of the {paths} paths, one process, --parallel", "floor",
                ["curl", "-sS", "--fail", "--parallel", "--parallel-immediate",
                 "-H", "X-Vault-Token: root", *urls], env, check_all))
        self.cases.append(case)

    def build_aws_cases(self, small):
        n = 10 if small else AWS_SECRETS
        for count_n, key in ([(n, "aws-100")] if small else [(1, "aws-1"), (n, "aws-100")]):
            handles = [f"bench/plain{i}" for i in range(count_n)]
            title = (f"aws, {count_n} handles over {count_n} secrets" if count_n > 1
                     else "aws, 1 handle")
            case = Case(key, title, handles)
            env = self.aws_env(self.moto.url)
            self.ours(case, "aws", [], env, self.aws_values, servers={"aws"},
                      env_for=self.aws_env)
            if not small:
                argv_b = [self.python, os.path.join(BASELINES, "boto3_backend.py")]
                self.baseline(case, "python boto3 script", argv_b, env, self.aws_values,
                              self.counter({"aws"}, lambda _, a=argv_b: a, self.aws_env))
                argv_c = ["bash", os.path.join(BASELINES, "awscli_shell.sh")]
                self.baseline(case, "aws cli shell script", argv_c, env, self.aws_values,
                              self.counter({"aws"}, lambda _, a=argv_c: a, self.aws_env),
                              needs="aws")
            if count_n == 1 and shutil.which("curl"):
                self.add_signed_curl(case, env)
            self.cases.append(case)

    def add_signed_curl(self, case, env):
        """The floor for one secret: curl of the same signed request."""
        want = self.aws_values["bench/plain0"]

        def check(out):
            try:
                got = json.loads(out)["SecretString"]
            except (ValueError, KeyError, TypeError):
                return "curl reply is not the secret"
            return None if got == want else "curl: wrong value"

        case.add(Contender(
            "curl of the signed GetSecretValue", "floor",
            ["curl", "-sS", "--fail", "--aws-sigv4", "aws:amz:us-east-1:secretsmanager",
             "--user", "testing:testing",
             "-H", "X-Amz-Target: secretsmanager.GetSecretValue",
             "-H", "Content-Type: application/x-amz-json-1.1",
             "--data", '{"SecretId":"bench/plain0"}', f"{self.moto.url}/"],
            env, check))

    def private_config(self, name, text):
        """A config file of the work dir, mode 0600 (the backends refuse
        group- or world-writable ones), written once."""
        path = os.path.join(self.work, name)
        if not os.path.exists(path):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(text)
        return path

    def k8s_config(self):
        """The in-cluster settings, named as the Datadog connector names them."""
        return self.private_config(
            "k8s.yaml",
            f"api_server: \"{self.k8s.url}\"\n"
            f"token_path: \"{self.k8s.token_path}\"\n"
            f"ca_path: \"{self.k8s.ca_path}\"\n")

    def gcp_config(self):
        """The project, the fake front as the endpoint, the service account
        key whose token_uri is the fake token endpoint (one token per call:
        no token_cache_file)."""
        g = self.gcp.info
        return self.private_config(
            "gcp.yaml",
            f"project_id: \"{g['project']}\"\n"
            f"endpoint: \"{g['endpoint']}\"\n"
            f"credentials_file: \"{g['credentials_file']}\"\n")

    def azure_config(self):
        """The Datadog connector's keys: the vault, and a service principal
        with a client secret; the fake's authority host and CA."""
        az = self.azure.info
        return self.private_config(
            "azure.yaml",
            f"keyvaulturl: \"{az['vault_url']}\"\n"
            f"authority_host: \"{az['authority_host']}\"\n"
            f"ca_file: \"{az['ca_file']}\"\n"
            "azure_session:\n"
            f"  azure_tenant_id: \"{az['tenant']}\"\n"
            f"  azure_client_id: \"{az['client_id']}\"\n"
            f"  azure_client_secret: \"{az['client_secret']}\"\n")

    @staticmethod
    def app_handles(secrets, keys):
        """`app<i>;k<j>`: key j of JSON secret i, in the gcp and azure fakes."""
        return [f"app{i};k{j}" for i in range(secrets) for j in range(keys)]

    def build_store_case(self, name, server, small, config):
        """The gcp and azure cases: 100 handles over 20 JSON secrets (5 keys
        each), as k8s's, one token per call. The floor is our dummy
        answering the same handles (spawn, parse, reply: what any backend
        costs), so `vs floor` is the ratio to the dummy."""
        secrets, keys = (4, 2) if small else (20, 5)
        handles = self.app_handles(secrets, keys)
        case = Case(f"{name}-100", f"{name}, {len(handles)} handles over {secrets} secrets",
                    handles)
        env = self.base_env()
        self.ours(case, name, ["--config", config], env, server.values, servers={name})
        expected = {h: f"decrypted_{h}" for h in handles}
        case.add(Contender("secret-backend-dummy, same handles", "floor",
                           [self.bins["dummy"]], env, lambda out: check_reply(out, expected)))
        self.add_store_curl(case, name, server, env)
        self.cases.append(case)

    def add_store_curl(self, case, name, server, env):
        """The other floor the issues ask for: one `curl` of one secret
        (app0), with a token got once beforehand (from the fake metadata
        server for gcp, with the client secret for azure): the cost of the
        HTTP exchange alone."""
        if not shutil.which("curl"):
            self.failures.append(f"curl not found: the {name} case has no curl floor")
            return
        want = server.values["app0;k0"]
        try:
            if name == "gcp":
                g = server.info
                req = urllib.request.Request(
                    g["endpoint"] + "/computeMetadata/v1/instance/service-accounts/default/token",
                    headers={"Metadata-Flavor": "Google"})
                with urllib.request.urlopen(req, timeout=30) as r:
                    token = json.load(r)["access_token"]
                url = (f"{g['endpoint']}/v1/projects/{g['project']}/secrets/app0"
                       "/versions/latest:access")
                extra = []
            else:
                az = server.info
                body = urllib.parse.urlencode({
                    "grant_type": "client_credentials", "client_id": az["client_id"],
                    "client_secret": az["client_secret"],
                    "scope": "https://vault.azure.net/.default"}).encode()
                ctx = ssl.create_default_context(cafile=az["ca_file"])
                req = urllib.request.Request(
                    f"{az['authority_host']}/{az['tenant']}/oauth2/v2.0/token", data=body)
                with urllib.request.urlopen(req, timeout=30, context=ctx) as r:
                    token = json.load(r)["access_token"]
                url = f"{az['vault_url']}/secrets/app0?api-version=7.5"
                extra = ["--cacert", az["ca_file"]]
        except (OSError, ValueError, KeyError) as e:
            self.failures.append(f"{name}: no token for the curl floor ({e})")
            return

        def check_curl(out):
            try:
                doc = json.loads(out)
                text = (base64.b64decode(doc["payload"]["data"]).decode() if name == "gcp"
                        else doc["value"])
                got = json.loads(text)["k0"]
            except (ValueError, KeyError, TypeError):
                return "curl reply is not the secret"
            return None if got == want else "curl: wrong value"

        argv = ["curl", "-sS", "--fail", *extra, "-H", f"Authorization: Bearer {token}", url]
        case.add(Contender("curl of one secret", "floor", argv, env, check_curl))

    def k8s_handles(self, secrets, keys):
        return [f"{self.k8s.namespace}/app{i};k{j}" for i in range(secrets) for j in range(keys)]

    def build_k8s_case(self, small):
        secrets, keys = (4, 2) if small else (K8S_SECRETS, 5)
        handles = self.k8s_handles(secrets, keys)
        case = Case("k8s-100", f"k8s, {len(handles)} handles over {secrets} secrets", handles)
        env = self.base_env()
        self.ours(case, "k8s", ["--config", self.k8s_config()], env, self.k8s_values,
                  servers={"k8s"})
        if not shutil.which("curl"):
            self.failures.append("curl not found: the k8s case has no floor")
            self.cases.append(case)
            return
        auth = ["--cacert", self.k8s.ca_path, "-H", f"Authorization: Bearer {self.k8s.token}"]
        want = self.k8s_values[f"{self.k8s.namespace}/app0;k0"]

        def check_curl(out):
            try:
                got = base64.b64decode(json.loads(out)["data"]["k0"]).decode()
            except (ValueError, KeyError, TypeError):
                return "curl reply is not the secret"
            return None if got == want else "curl: wrong value"

        argv = ["curl", "-sS", "--fail", *auth, self.k8s.secret_url("app0")]
        case.add(Contender("curl of one secret", "floor", argv, env, check_curl,
                           self.counter({"k8s"}, lambda _, a=argv: a, lambda _: env)))
        # The same reads as ours in one process: what the server costs.
        wants = {base64.b64encode(f"k8s-{i}-0".encode()).decode() for i in range(secrets)}

        def check_all(out):
            text = out.decode(errors="replace")
            found = {v for v in wants if f'"k0":"{v}"' in text}
            return None if found == wants else f"curl: {len(wants - found)} secret(s) missing"

        argv_p = ["curl", "-sS", "--fail", "--parallel", "--parallel-immediate", *auth,
                  *[self.k8s.secret_url(f"app{i}") for i in range(secrets)]]
        case.add(Contender(f"curl of the {secrets} secrets, one process, --parallel", "floor",
                           argv_p, env, check_all,
                           self.counter({"k8s"}, lambda _, a=argv_p: a, lambda _: env)))
        self.cases.append(case)

    def multi_config(self, endpoint):
        path = os.path.join(self.work, f"multi-{free_port()}.yaml")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(
                "backends:\n"
                f"  vault: {{type: vault, address: \"{self.vault.addr}\"}}\n"
                f"  aws: {{type: aws, region: us-east-1, endpoint_url: \"{endpoint}\"}}\n"
                f"  files: {{type: file, dir: \"{self.files_dir}\"}}\n"
            )
        return path

    def multi_handles(self, small):
        vault = self.vault_handles(2, 2) if small else self.vault_handles(VAULT_PATHS, 2)
        aws = [f"bench/plain{i}" for i in range(len(vault))]
        files = [f"f{i:04d}" for i in range(100 - 2 * len(vault) if not small else 2)]
        handles = ([f"vault:{h}" for h in vault] + [f"aws:{h}" for h in aws]
                   + [f"files:{h}" for h in files])
        values = {f"vault:{h}": self.vault_values[h] for h in vault}
        values.update({f"aws:{h}": self.aws_values[h] for h in aws})
        values.update({f"files:{h}": self.file_values[h] for h in files})
        return handles, values, (len(vault), len(aws), len(files))

    def build_multi_case(self, small):
        handles, values, (nv, na, nf) = self.multi_handles(small)
        case = Case("multi-100", f"multi, {len(handles)} handles ({nv} vault over "
                    f"{nv // 2} paths, {na} aws, {nf} file)", handles)
        env = self.vault_env()
        env.update(self.aws_env(self.moto.url))
        config = self.multi_config(self.moto.url)
        configs = {}

        def extra_for(endpoint):
            if endpoint not in configs:
                configs[endpoint] = self.multi_config(endpoint)
            return ["--config", configs[endpoint]]

        self.ours(case, "multi", ["--config", config], env, values, servers={"vault", "aws"},
                  extra_for=extra_for)
        self.cases.append(case)

    # ---- running

    def runs_of(self, c):
        """Timed runs of `c` (after its warm-up)."""
        if self.smoke:
            return 1
        if c.kind == "baseline" and self.args.slow_runs and self.slow(c):
            return self.args.slow_runs
        return self.runs

    def run_one(self, case, c, timed):
        """One run of `c`; False (and the failure noted) when its reply is wrong."""
        elapsed, rc, out, err, _ = run_once(c.argv, case.stdin, c.env)
        why = c.check(out) if rc == 0 else f"exit {rc}: {err.decode(errors='replace')[-300:]}"
        if why:
            c.failure = why
            self.failures.append(f"{case.title} / {c.label}: {why}")
            return False
        if timed:
            c.times.append(elapsed)
        return True

    def time_case(self, case):
        """Every contender of `case`, the runs interleaved (ours, baseline,
        floor, ours, ...) so that a server warming up or load from outside
        weighs on all of them alike, not on whichever runs first."""
        live = [c for c in case.contenders if not c.skipped]
        for c in live:
            print(f"bench: {case.title} / {c.label} ...", file=sys.stderr, flush=True)
        if not self.smoke:  # one warm-up run each, not timed
            live = [c for c in live if self.run_one(case, c, timed=False)]
        for i in range(max((self.runs_of(c) for c in live), default=0)):
            live = [c for c in live
                    if i >= self.runs_of(c) or self.run_one(case, c, timed=True)]
        for c in case.contenders:
            if c.count and not c.skipped and not c.failure:
                try:
                    c.requests = c.count(case)
                except Exception as e:  # the count is extra information: report, go on
                    c.requests = {"count failed": str(e)[:80]}

    def slow(self, c):
        return "shell" in c.label

    def run_cases(self):
        if self.args.cases:
            wanted = self.args.cases.split(",")
            self.cases = [c for c in self.cases if c.key.split("-")[0] in wanted
                          or c.key in wanted]
        for case in self.cases:
            self.time_case(case)

    def measure_rss(self):
        """Peak RSS of each binary answering 1,000 handles."""
        n = 10 if self.smoke else RSS_HANDLES
        plans = {
            "dummy": ([f"handle_{i}" for i in range(n)], [], self.base_env()),
            "file": ([f"f{i:04d}" for i in range(n)], ["--dir", self.files_dir], self.base_env()),
        }
        if self.vault:
            keys = max(1, n // VAULT_PATHS)
            plans["vault"] = (self.vault_handles(VAULT_PATHS, keys), [], self.vault_env())
        if self.moto:
            docs = max(1, n // AWS_DOC_KEYS)
            plans["aws"] = ([f"bench/doc{i};k{j}" for i in range(docs) for j in range(AWS_DOC_KEYS)],
                            [], self.aws_env(self.moto.url))
        if self.k8s:
            keys = max(1, n // K8S_SECRETS)
            plans["k8s"] = (self.k8s_handles(K8S_SECRETS, keys), ["--config", self.k8s_config()],
                            self.base_env())
        if self.gcp:
            keys = max(1, n // GCP_SECRETS)
            plans["gcp"] = (self.app_handles(GCP_SECRETS, keys), ["--config", self.gcp_config()],
                            self.base_env())
        if self.azure:
            keys = max(1, n // AZURE_SECRETS)
            plans["azure"] = (self.app_handles(AZURE_SECRETS, keys),
                              ["--config", self.azure_config()], self.base_env())
        if self.vault and self.moto:
            third = n // 3
            handles = ([f"vault:{h}" for h in self.vault_handles(VAULT_PATHS, VAULT_KEYS)[:third]]
                       + [f"aws:bench/plain{i}" for i in range(min(third, AWS_SECRETS))]
                       + [f"files:f{i:04d}" for i in range(n - third - min(third, AWS_SECRETS))])
            env = self.vault_env()
            env.update(self.aws_env(self.moto.url))
            plans["multi"] = (handles, ["--config", self.multi_config(self.moto.url)], env)
        for name, (handles, extra, env) in plans.items():
            for label, binary in self.builds(name):
                if binary:
                    self.measure_rss_of(label, [binary, *extra], handles, env)

    def measure_many(self):
        """Peak RSS and wall time of each binary given 200,000 distinct
        handles and a 5 s deadline: every handle must be answered (a value
        or an error such as `timed out`), exit 0, in time."""
        n = self.args.many or (2_000 if self.smoke else MANY_HANDLES)
        plans = {
            "dummy": ([f"h{i:06d}" for i in range(n)], [], self.base_env()),
            "file": ([f"missing/{i:06d}" for i in range(n)], ["--dir", self.files_dir],
                     self.base_env()),
        }
        if self.vault:
            plans["vault"] = ([f"bench/m{i:06d};k" for i in range(n)], [], self.vault_env())
        if self.moto:
            plans["aws"] = ([f"bench/many{i:06d}" for i in range(n)], [],
                            self.aws_env(self.moto.url))
        if self.k8s:
            plans["k8s"] = ([f"{self.k8s.namespace}/m{i:06d};k" for i in range(n)],
                            ["--config", self.k8s_config()], self.base_env())
        if self.gcp:
            plans["gcp"] = ([f"m{i:06d};k" for i in range(n)], ["--config", self.gcp_config()],
                            self.base_env())
        if self.azure:
            plans["azure"] = ([f"m{i:06d};k" for i in range(n)],
                              ["--config", self.azure_config()], self.base_env())
        if self.vault and self.moto:
            env = self.vault_env()
            env.update(self.aws_env(self.moto.url))
            third = n // 3
            handles = ([f"vault:m/{i:06d};k" for i in range(third)]
                       + [f"aws:m{i:06d}" for i in range(third)]
                       + [f"files:x/{i:06d}" for i in range(n - 2 * third)])
            plans["multi"] = (handles, ["--config", self.multi_config(self.moto.url)], env)
        for name, (handles, extra, env) in plans.items():
            for label, binary in self.builds(name):
                if not binary:
                    continue
                argv = [binary, *extra, "--timeout", str(MANY_TIMEOUT_S),
                        "--max-output-bytes", str(64 << 20)]
                elapsed, rc, out, _, rss = self.run_for_rss(argv, payload(handles), env)
                try:
                    reply = json.loads(out) if rc == 0 else {}
                except ValueError:
                    reply = {}
                missing = sum(1 for h in handles if not isinstance(reply.get(h), dict))
                why = f"exit {rc}, {missing} handle(s) unanswered" if rc != 0 or missing else None
                self.many[label] = (len(handles), rss / 1024, elapsed, why)
                if why:
                    self.failures.append(f"{len(handles)}-handle run of {label}: {why}")

    def measure_rss_of(self, label, argv, handles, env):
        peak, why = 0, None
        for _ in range(1 if self.smoke else 3):
            _, rc, out, err, rss = self.run_for_rss(argv, payload(handles), env)
            try:
                reply = json.loads(out) if rc == 0 else {}
            except ValueError:
                reply = {}
            bad = [h for h in handles if not isinstance(reply.get(h), dict)
                   or reply[h].get("error")]
            if rc != 0 or bad:
                why = f"exit {rc}, {len(bad)} handle(s) failed"
                break
            peak = max(peak, rss)
        self.rss[label] = (len(handles), peak / 1024, why)
        if why:
            self.failures.append(f"RSS run of {label}: {why}")

    def run_for_rss(self, argv, stdin, env):
        """run_once, with the peak RSS of the command alone.

        Linux keeps a child's high-water RSS across exec, and a child
        spawned by this Python starts as a copy of it (some 25 MB): wait4's
        figure would be Python's. GNU time forks from its own small image
        and reports the command's `ru_maxrss`; without it, wait4's number is
        reported as an upper bound.
        """
        if not self.time_bin:
            return run_once(argv, stdin, env)
        report = os.path.join(self.work, "time.out")
        elapsed, rc, out, err, _ = run_once(
            [self.time_bin, "-f", "%M", "-o", report, *argv], stdin, env)
        with open(report) as f:
            kb = int(f.read().strip().splitlines()[-1])
        return elapsed, rc, out, err, kb

    def measure_sizes(self):
        strip = shutil.which("strip")
        for name in BINARIES:
            for i, (label, path) in enumerate(self.builds(name)):
                if not path:
                    continue
                size = os.path.getsize(path)
                stripped = size
                if strip:
                    copy = os.path.join(self.work, f"strip-{name}-{i}")
                    shutil.copy(path, copy)
                    subprocess.run([strip, copy], check=False, capture_output=True)
                    stripped = os.path.getsize(copy)
                self.sizes[label] = (size, stripped)

    # ---- report

    def median(self, case_key, label):
        case = next((c for c in self.cases if c.key == case_key), None)
        c = case.get(label) if case else None
        return statistics.median(c.times) if c and c.times else None

    def timing_table(self):
        rows = ["| case | command | kind | runs | median ms | min ms | vs floor | "
                "ours faster by | server requests per call |",
                "|---|---|---|---:|---:|---:|---:|---:|---|"]
        for case in self.cases:
            floor = next((c for c in case.contenders if c.kind == "floor" and c.times), None)
            ours = next((c for c in case.contenders if c.kind == "ours" and c.times), None)
            for c in case.contenders:
                if c.skipped or c.failure or not c.times:
                    why = c.skipped or f"FAILED: {c.failure}"
                    rows.append(f"| {case.title} | `{c.label}` | {c.kind} | | {why} | | | | |")
                    continue
                med = statistics.median(c.times)
                vs_floor = (fmt_ratio(med / statistics.median(floor.times))
                            if floor and c is not floor else "")
                faster = (fmt_ratio(med / statistics.median(ours.times))
                          if ours and c.kind == "baseline" else "")
                reqs = ", ".join(f"{n} {k}" for k, n in sorted(c.requests.items())) \
                    if c.requests else ""
                rows.append(f"| {case.title} | `{c.label}` | {c.kind} | {len(c.times)} | "
                            f"{fmt_ms(med)} | {fmt_ms(min(c.times))} | {vs_floor} | {faster} | "
                            f"{reqs} |")
        return rows

    def sums(self):
        """The multi case's comparison: the three single-store cases, summed."""
        parts = {
            "ours (vault + aws + file, run one after another)":
                [("vault-100", "secret-backend-vault"), ("aws-100", "secret-backend-aws"),
                 ("file-100", "secret-backend-file")],
            "python scripts (hvac + boto3 + file)":
                [("vault-100", "python hvac script"), ("aws-100", "python boto3 script"),
                 ("file-100", "python file script")],
            "shell scripts (bao + aws cli + python file)":
                [("vault-100", "bao kv get shell script"), ("aws-100", "aws cli shell script"),
                 ("file-100", "python file script")],
        }
        out = []
        for label, items in parts.items():
            values = [self.median(k, l) for k, l in items]
            total = sum(values) if all(v is not None for v in values) else None
            out.append((label, total))
        return out

    def targets(self):
        """(target, measured, verdict) rows for the issue's targets."""
        rows = []

        def verdict(ok):
            return "met" if ok else "**missed**"

        def add(name, value, ok):
            if value is None:
                rows.append((name, "not measured (not built or failed)", "—"))
            else:
                rows.append((name, value, verdict(ok)))

        m = self.median
        v, curl = m("vault-100", "secret-backend-vault"), m("vault-100", "curl of one path")
        add("vault 100/20: <= 1.5x one curl", v and curl and fmt_ratio(v / curl),
            v and curl and v / curl <= 1.5)
        shell = m("vault-100", "bao kv get shell script")
        add("vault 100/20: >= 300x faster than the bao shell script",
            v and shell and f"{fmt_ratio(shell / v)} faster", v and shell and shell / v >= 300)
        vcase = next((c for c in self.cases if c.key == "vault-100"), None)
        vc = vcase.get("secret-backend-vault") if vcase else None
        if vc and vc.requests:
            reads = vc.requests.get("read", 0)
            mounts = vc.requests.get("mount lookup", 0)
            others = sum(n for k, n in vc.requests.items() if k not in ("read", "mount lookup"))
            paths = len({h.split(";")[0] for h in vcase.handles})
            add(f"vault: exactly {paths} reads + at most 1 mount lookup",
                f"{reads} reads, {mounts} mount lookups, {others} other",
                reads == paths and mounts <= 1 and others == 0)
        else:
            add("vault: exactly 20 reads + at most 1 mount lookup", None, False)
        a = m("aws-100", "secret-backend-aws")
        acase = next((c for c in self.cases if c.key == "aws-100"), None)
        ac = acase.get("secret-backend-aws") if acase else None
        if ac and ac.requests:
            total = sum(n for n in ac.requests.values() if isinstance(n, int))
            add("aws 100/100: at most 6 API requests", f"{total}", total <= 6)
        else:
            add("aws 100/100: at most 6 API requests", None, False)
        b = m("aws-100", "python boto3 script")
        add("aws 100/100: >= 10x faster than boto3", a and b and f"{fmt_ratio(b / a)} faster",
            a and b and b / a >= 10)
        a1 = m("aws-1", "secret-backend-aws")
        c1 = m("aws-1", "curl of the signed GetSecretValue")
        add("aws 1 secret: <= 1.3x curl of the signed request", a1 and c1 and fmt_ratio(a1 / c1),
            a1 and c1 and a1 / c1 <= 1.3)
        kcase = next((c for c in self.cases if c.key == "k8s-100"), None)
        kc = kcase.get("secret-backend-k8s") if kcase else None
        if kc and kc.requests:
            reads = kc.requests.get("read", 0)
            others = sum(n for k, n in kc.requests.items()
                         if k != "read" and isinstance(n, int))
            secrets = len({h.split(";")[0] for h in kcase.handles})
            add(f"k8s: exactly {secrets} secret reads ({len(kcase.handles)} handles)",
                f"{reads} reads, {others} other", reads == secrets and others == 0)
        else:
            add(f"k8s: exactly {K8S_SECRETS} secret reads (100 handles)", None, False)
        k, kcurl = m("k8s-100", "secret-backend-k8s"), m("k8s-100", "curl of one secret")
        # Issue 15 asks for the time against one curl, with no bound: reported.
        if k and kcurl:
            rows.append(("k8s 100/20 against one curl of one secret (reported, no bound)",
                         fmt_ratio(k / kcurl), "—"))
        else:
            add("k8s 100/20 against one curl of one secret (reported, no bound)", None, False)
        for name, secrets in (("gcp", GCP_SECRETS), ("azure", AZURE_SECRETS)):
            # What the stores promise (one token per call, one read per
            # secret), and the time against the dummy on the same handles,
            # reported: no issue sets a bound on it yet.
            read = "access" if name == "gcp" else "read"
            scase = next((c for c in self.cases if c.key == f"{name}-100"), None)
            sc = scase.get(BINARIES[name][0]) if scase else None
            if sc and sc.requests:
                reads = sc.requests.get(read, 0)
                tokens = sc.requests.get("token", 0)
                others = sum(n for k, n in sc.requests.items()
                             if k not in (read, "token") and isinstance(n, int))
                want = len({h.split(";")[0] for h in scase.handles})
                add(f"{name}: 1 token and exactly {want} secret reads "
                    f"({len(scase.handles)} handles)",
                    f"{tokens} token, {reads} reads, {others} other",
                    tokens == 1 and reads == want and others == 0)
            else:
                add(f"{name}: 1 token and exactly {secrets} secret reads (100 handles)",
                    None, False)
            # Issues 18 and 19 ask for the time against one curl of one
            # secret, with no bound: reported.
            ours, curl = m(f"{name}-100", BINARIES[name][0]), m(f"{name}-100",
                                                               "curl of one secret")
            label = f"{name} 100/{secrets} against one curl of one secret (reported, no bound)"
            if ours and curl:
                rows.append((label, fmt_ratio(ours / curl), "—"))
            else:
                add(label, None, False)
            t = m(f"{name}-100", BINARIES[name][0])
            dt = m(f"{name}-100", "secret-backend-dummy, same handles")
            what = f"{name} 100/20 against the dummy on the same handles (reported, no bound)"
            if t and dt:
                rows.append((what, fmt_ratio(t / dt), "—"))
            else:
                add(what, None, False)
        d = m("dummy-10000", "secret-backend-dummy")
        add("dummy 10,000 handles: < 30 ms", d and f"{fmt_ms(d)} ms", d and d < 0.030)
        d1, cat1 = m("dummy-1", "secret-backend-dummy"), m("dummy-1", "cat")
        add("dummy 1 handle: <= 2x cat", d1 and cat1 and fmt_ratio(d1 / cat1),
            d1 and cat1 and d1 / cat1 <= 2)
        for name in BINARIES:
            for label, _ in self.builds(name):
                if label in self.rss and not self.rss[label][2]:
                    mb = self.rss[label][1]
                    add(f"peak RSS `{label}` < {RSS_TARGET_MB:.0f} MB", f"{mb:.1f} MB",
                        mb < RSS_TARGET_MB)
                else:
                    add(f"peak RSS `{label}` < {RSS_TARGET_MB:.0f} MB", None, False)
        for name in BINARIES:
            for label, _ in self.builds(name):
                got = self.many.get(label)
                what = f"{MANY_HANDLES:,} handles `{label}`: < {MANY_TARGET_MB:.0f} MB, " \
                       f"answered in < {MANY_TIMEOUT_S} s"
                if got and not got[3]:
                    add(what, f"{got[1]:.1f} MB, {got[2]:.2f} s",
                        got[1] < MANY_TARGET_MB and got[2] < MANY_TIMEOUT_S)
                else:
                    add(what, None, False)
        for name, limit in SIZE_TARGETS_MB.items():
            for label, _ in self.builds(name):
                if label in self.sizes:
                    mb = self.sizes[label][1] / 1e6
                    add(f"stripped size `{label}` < {limit} MB", f"{mb:.2f} MB", mb < limit)
                else:
                    add(f"stripped size `{label}` < {limit} MB", None, False)
        return rows

    def environment(self):
        def version(argv):
            try:
                out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
                return (out.stdout or out.stderr).strip().splitlines()[0]
            except (OSError, IndexError, subprocess.TimeoutExpired):
                return "?"

        cpu = "?"
        try:
            with open("/proc/cpuinfo") as f:
                cpu = next(line.split(":", 1)[1].strip() for line in f
                           if line.startswith("model name"))
        except (OSError, StopIteration):
            pass
        rev = version(["git", "-C", HERE, "rev-parse", "--short", "HEAD"])
        dirty = subprocess.run(["git", "-C", HERE, "status", "--porcelain", "--", ".."],
                               capture_output=True, text=True).stdout.strip()
        return [
            f"- git {rev}{' (with uncommitted changes in the tree)' if dirty else ''}; "
            f"binaries from `{self.args.bin_dir_shown}`",
            f"- {os.cpu_count()} cores ({cpu}), load average at the end "
            f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}",
            f"- {platform.python_implementation()} {platform.python_version()}; "
            f"OpenBao: {version([self.bao, 'version']) if self.bao else 'none'}; "
            f"moto_server: {self.moto_bin or 'none'}; "
            f"fake-k8s: {self.fake_k8s_bin if self.k8s else 'none'}; "
            f"fake-google: {self.fake_google_bin if self.gcp else 'none'} "
            f"(drongo: {self.drongo if self.gcp else 'none'}); "
            f"fake-azure: {self.fake_azure_bin if self.azure else 'none'}",
        ]

    def report(self):
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        lines = [f"## {now}{' (smoke)' if self.smoke else ''}", ""]
        lines += self.environment() + [""]
        lines += ["Wall time per call, spawn to exit, stdin = the payload; "
                  + ("one run each, no warm-up (smoke: the times mean nothing)"
                     if self.smoke else "median of the runs after one warm-up run; the runs of a "
                     "case's commands interleaved")
                  + "; every reply checked.", ""]
        lines += self.timing_table() + [""]
        if self.smoke:
            lines += ["", "Peak RSS (10 handles):", ""] + [
                f"- `{label}`: {why or f'{mb:.1f} MB'}"
                for label, (_, mb, why) in self.rss.items()]
            lines += ["", f"Many handles ({MANY_TIMEOUT_S} s deadline):", ""] + [
                f"- `{label}`: {n} handles, {why or f'{mb:.1f} MB, {t:.2f} s'}"
                for label, (n, mb, t, why) in self.many.items()]
            lines += [f"- note: {n}" for n in self.notes]
            lines += [f"- **correctness failure**: {f}" for f in self.failures]
            return lines
        sums = self.sums()
        mm = self.median("multi-100", "secret-backend")
        lines += ["Multi case against the three single-store cases (100 handles each) summed:", ""]
        lines += ["| what | median ms |", "|---|---:|"]
        lines += [f"| `secret-backend`, multi case | {fmt_ms(mm) if mm else 'not measured'} |"]
        lines += [f"| {label} | {fmt_ms(t) if t else 'not measured'} |" for label, t in sums]
        lines += ["", "Peak RSS at 1,000 handles (GNU time's ru_maxrss, max of 3 runs):", "",
                  "| binary | handles | peak RSS MB |", "|---|---:|---:|"]
        for name in BINARIES:
            for label, path in self.builds(name):
                if label in self.rss:
                    n, mb, why = self.rss[label]
                    lines.append(f"| `{label}` | {n} | {why or f'{mb:.1f}'} |")
                else:
                    lines.append(f"| `{label}` | | {'not built' if not path else 'no server'} |")
        lines += ["", f"{MANY_HANDLES:,} distinct handles, --timeout {MANY_TIMEOUT_S} (one run; "
                  "every handle answered, most with `not found` or `timed out`):", "",
                  "| binary | handles | peak RSS MB | wall s |", "|---|---:|---:|---:|"]
        for name in BINARIES:
            for label, _ in self.builds(name):
                if label in self.many:
                    n, mb, t, why = self.many[label]
                    lines.append(f"| `{label}` | {n:,} | {why or f'{mb:.1f}'} | {t:.2f} |")
        lines += ["", "Release binary sizes:", "",
                  "| binary | as built, bytes | stripped, bytes | stripped MB |",
                  "|---|---:|---:|---:|"]
        for name in BINARIES:
            for label, _ in self.builds(name):
                if label in self.sizes:
                    size, stripped = self.sizes[label]
                    lines.append(f"| `{label}` | {size:,} | {stripped:,} | "
                                 f"{stripped / 1e6:.2f} |")
                else:
                    lines.append(f"| `{label}` | not built | | |")
        lines += ["", "Targets of issues 9, 13 and 15:", "", "| target | measured | verdict |",
                  "|---|---|---|"]
        lines += [f"| {t} | {m} | {v} |" for t, m, v in self.targets()]
        if self.notes or self.failures:
            lines += [""] + [f"- note: {n}" for n in self.notes]
            lines += [f"- **correctness failure**: {f}" for f in self.failures]
        return lines

    def write_results(self, lines):
        path = self.args.results
        head = ("# Benchmark results\n\nWritten by `bench/run.sh` (see README.md), newest first; "
                "older sections are kept as they were.\n\n")
        old = ""
        if os.path.exists(path):
            with open(path) as f:
                old = f.read()
            old = old[len(head):] if old.startswith(head) else old
        with open(path, "w") as f:
            f.write(head + "\n".join(lines) + "\n\n" + old)
        self.update_readme(lines)

    def update_readme(self, lines):
        """README.md shows the latest section, between two markers."""
        path = os.path.join(HERE, "README.md")
        start, end = "<!-- latest results: written by bench.py -->", "<!-- end of latest results -->"
        with open(path) as f:
            text = f.read()
        if start not in text or end not in text:
            return
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1]
        with open(path, "w") as f:
            f.write(before + start + "\n\n" + "\n".join(lines) + "\n\n" + end + after)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin-dir", required=True, help="where our binaries are")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny cases, one run each, no baselines needing installs")
    parser.add_argument("--runs", type=int, default=10, help="timed runs per command")
    parser.add_argument("--slow-runs", type=int, default=0,
                        help="timed runs for the shell baselines (default: --runs)")
    parser.add_argument("--python", help="python with hvac and boto3, for the baselines")
    parser.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"))
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--cases", help="only these cases, e.g. vault,aws-1 "
                        "(dummy-1, dummy-10000, file-100, vault-100, aws-1, aws-100, k8s-100, "
                        "gcp-100, azure-100, multi-100)")
    parser.add_argument("--many", type=int, default=0, metavar="N",
                        help=f"handles of the many-handles run (default {MANY_HANDLES:,}; "
                        "smoke: 2,000)")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME:LABEL=PATH",
                        help="also time another build of one of ours, e.g. "
                             "vault:ring=/tmp/ring/secret-backend-vault")
    args = parser.parse_args()
    args.bin_dir_shown = args.bin_dir
    args.bin_dir = os.path.abspath(args.bin_dir)
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    bench = Bench(args)
    if not bench.bins["dummy"]:
        print(f"bench: no secret-backend-dummy in {args.bin_dir}: build first", file=sys.stderr)
        return 1
    try:
        bench.setup()
        bench.build_cases()
        bench.run_cases()
        bench.measure_rss()
        bench.measure_many()
        if not args.smoke:
            bench.measure_sizes()
        lines = bench.report()
    finally:
        bench.teardown()
    print("\n".join(lines))
    if not args.smoke and not args.no_write:
        bench.write_results(lines)
        print(f"\nbench: appended to {args.results}", file=sys.stderr)
    ran = [c for case in bench.cases for c in case.contenders if not c.skipped]
    failed = [c for c in ran if c.failure]
    # The plain closing line CI reads: every command whose replies were checked.
    print(f"\nbench: {len(ran) - len(failed)} passed, {len(failed)} failed"
          + (f" ({len(bench.failures)} correctness failure(s))" if bench.failures else ""))
    return 1 if bench.failures else 0


if __name__ == "__main__":
    sys.exit(main())
