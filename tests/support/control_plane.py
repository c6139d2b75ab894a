"""A real Kubernetes control plane (etcd and kube-apiserver) on loopback, for tests and the demo.

The pytest fixtures in ``tests/fixtures/cluster.py`` and the demo script both start one through
:class:`ControlPlane`. It is synchronous on purpose: it is used from session fixtures and plain
scripts, never from inside the operator's event loop.

What it sets up, and why:

- A certificate authority made on the spot signs the API server's serving certificate and the
  admin's client certificate (``O=system:masters``), so clients authenticate the way they do
  against a real cluster and RBAC is enforced for everyone else.
- A service-account signing key pair and issuer, so that ServiceAccount tokens can be requested
  (``kubectl create token``) and a test can act with exactly the permissions RBAC grants.
- etcd with ``--unsafe-no-fsync`` and a temporary data directory: test data needs no durability.
- ``--advertise-address=127.0.0.1``, because the API server refuses to start on a machine
  without a default route otherwise.

Every process is started with a parent-death signal, so that a killed test run leaves none behind.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import datetime
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
ASSETS_SCRIPT = REPOSITORY_ROOT / "hack" / "k8s-assets.sh"
LOOPBACK = "127.0.0.1"
STARTUP_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 10.0
PORT_ATTEMPTS = 3


class ControlPlaneError(RuntimeError):
    """The control plane could not be started or used."""


def locate_assets() -> Path:
    """Return the directory holding kube-apiserver, etcd and kubectl.

    ``KUBEBUILDER_ASSETS`` wins when set; otherwise ``hack/k8s-assets.sh`` finds the cache or
    builds the binaries (minutes on a cold machine).
    """
    configured = os.environ.get("KUBEBUILDER_ASSETS")
    if configured:
        return Path(configured)
    result = subprocess.run([str(ASSETS_SCRIPT)], check=True, stdout=subprocess.PIPE, text=True)
    return Path(result.stdout.strip())


def free_port() -> int:
    """Return a TCP port on loopback that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def _die_with_parent() -> None:
    """Ask Linux to send SIGTERM to this child when the process that started it dies."""
    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


_spawner: concurrent.futures.ThreadPoolExecutor | None = None


def _spawn_thread() -> concurrent.futures.ThreadPoolExecutor:
    """Return the one thread that starts every child process.

    Linux sends the parent-death signal when the *thread* that forked the child ends, not the
    process. Children started from a short-lived thread (``asyncio.to_thread``, whose executor
    pytest-asyncio shuts down after each test) would be killed with it. This thread lives as
    long as the process.
    """
    global _spawner
    if _spawner is None:
        _spawner = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="child-spawner"
        )
    return _spawner


def start_process(
    args: Sequence[str], log_path: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a child process whose output goes to ``log_path`` and which dies with its parent."""

    def spawn() -> subprocess.Popen[bytes]:
        with log_path.open("ab") as log_file:
            return subprocess.Popen(
                list(args),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
                preexec_fn=_die_with_parent,
            )

    return _spawn_thread().submit(spawn).result()


def stop_process(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT_SECONDS) -> None:
    """Stop a child with SIGTERM, then SIGKILL if it is still running after ``timeout`` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)


def tail(path: Path, lines: int = 30) -> str:
    """Return the last lines of a log file, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log written)"


class _Certificates:
    """The CA, serving, admin and service-account key material of one control plane."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        now = datetime.datetime.now(datetime.UTC)
        self._not_before = now - datetime.timedelta(minutes=5)
        self._not_after = now + datetime.timedelta(days=2)

        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "experio-test-ca")])
        self.ca_cert = (
            self._builder(ca_name, ca_name, self.ca_key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.ca_key, hashes.SHA256())
        )
        self.ca_path = self._write_cert("ca.crt", self.ca_cert)

        self.serving_cert_path, self.serving_key_path = self._issue(
            "serving",
            common_name="kube-apiserver",
            organization=None,
            server=True,
        )
        self.admin_cert_path, self.admin_key_path = self._issue(
            "admin",
            common_name="experio-test-admin",
            organization="system:masters",
            server=False,
        )

        service_account_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.service_account_key_path = self._write_key("service-account.key", service_account_key)
        self.service_account_public_key_path = directory / "service-account.pub"
        self.service_account_public_key_path.write_bytes(
            service_account_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def _builder(
        self, subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
    ) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._not_before)
            .not_valid_after(self._not_after)
        )

    def _issue(
        self, stem: str, *, common_name: str, organization: str | None, server: bool
    ) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
        if organization:
            attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
        builder = self._builder(x509.Name(attributes), self.ca_cert.subject, key.public_key())
        if server:
            import ipaddress

            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.DNSName("kubernetes.default.svc"),
                        x509.IPAddress(ipaddress.ip_address(LOOPBACK)),
                    ]
                ),
                critical=False,
            ).add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
        else:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
            )
        cert = builder.sign(self.ca_key, hashes.SHA256())
        return self._write_cert(f"{stem}.crt", cert), self._write_key(f"{stem}.key", key)

    def _write_cert(self, name: str, cert: x509.Certificate) -> Path:
        path = self.directory / name
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path

    def _write_key(self, name: str, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> Path:
        path = self.directory / name
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        path.chmod(0o600)
        return path


class ControlPlane:
    """etcd and kube-apiserver on loopback, with an admin kubeconfig and kubectl at hand.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. ``work_dir`` is created
    when not given and removed by :meth:`stop` in that case.
    """

    def __init__(self, assets: Path | None = None, work_dir: Path | None = None) -> None:
        self.assets = assets or locate_assets()
        for binary in ("kube-apiserver", "etcd", "kubectl"):
            if not (self.assets / binary).is_file():
                raise ControlPlaneError(
                    f"{binary} not found in {self.assets}; run 'make k8s-assets' "
                    "or point KUBEBUILDER_ASSETS at a directory that has it"
                )
        self._owns_work_dir = work_dir is None
        self.work_dir = work_dir or Path(tempfile.mkdtemp(prefix="experio-control-plane-"))
        self.etcd_process: subprocess.Popen[bytes] | None = None
        self.apiserver_process: subprocess.Popen[bytes] | None = None
        self.etcd_port = 0
        self.apiserver_port = 0
        self.kubeconfig = self.work_dir / "admin.kubeconfig"
        self.startup_seconds = 0.0

    # --- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def server_url(self) -> str:
        return f"https://{LOOPBACK}:{self.apiserver_port}"

    def start(self) -> None:
        """Start etcd and kube-apiserver and wait until the API server reports ready."""
        started = time.monotonic()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.certificates = _Certificates(self.work_dir)
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                self._start_etcd()
                self.start_apiserver()
                self._write_admin_kubeconfig()
                break
            except ControlPlaneError as exc:
                # A port picked as free can be taken by another process before the server
                # binds it; start over on new ports.
                self._stop_processes()
                if "address already in use" not in str(exc) or attempt == PORT_ATTEMPTS:
                    self.stop()
                    raise
                self.etcd_port = self.apiserver_port = 0
                shutil.rmtree(self.work_dir / "etcd-data", ignore_errors=True)
            except BaseException:
                self.stop()
                raise
        self.startup_seconds = time.monotonic() - started

    def stop(self) -> None:
        """Stop both processes and remove the work directory when this object created it."""
        self._stop_processes()
        if self._owns_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def _stop_processes(self) -> None:
        if self.apiserver_process is not None:
            stop_process(self.apiserver_process)
            self.apiserver_process = None
        if self.etcd_process is not None:
            stop_process(self.etcd_process)
            self.etcd_process = None

    def _start_etcd(self) -> None:
        self.etcd_port = free_port()
        peer_port = free_port()
        client_url = f"http://{LOOPBACK}:{self.etcd_port}"
        peer_url = f"http://{LOOPBACK}:{peer_port}"
        log_path = self.work_dir / "etcd.log"
        self.etcd_process = start_process(
            [
                str(self.assets / "etcd"),
                "--name=default",
                f"--data-dir={self.work_dir / 'etcd-data'}",
                f"--listen-client-urls={client_url}",
                f"--advertise-client-urls={client_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=default={peer_url}",
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
            log_path,
        )
        self._wait(
            lambda: self._http_ok(f"{client_url}/health"),
            process=self.etcd_process,
            log_path=log_path,
            what="etcd",
        )

    def start_apiserver(self) -> None:
        """Start kube-apiserver (again, after :meth:`stop_apiserver`, on the same port)."""
        if not self.apiserver_port:
            self.apiserver_port = free_port()
        certificates = self.certificates
        log_path = self.work_dir / "kube-apiserver.log"
        self.apiserver_process = start_process(
            [
                str(self.assets / "kube-apiserver"),
                f"--etcd-servers=http://{LOOPBACK}:{self.etcd_port}",
                f"--bind-address={LOOPBACK}",
                f"--advertise-address={LOOPBACK}",
                f"--secure-port={self.apiserver_port}",
                f"--cert-dir={self.work_dir / 'apiserver-certs'}",
                f"--tls-cert-file={certificates.serving_cert_path}",
                f"--tls-private-key-file={certificates.serving_key_path}",
                f"--client-ca-file={certificates.ca_path}",
                "--authorization-mode=RBAC",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={certificates.service_account_public_key_path}",
                f"--service-account-signing-key-file={certificates.service_account_key_path}",
                # The range is only recorded for Services; nothing is routed to it.
                "--service-cluster-ip-range=10.0.0.0/24",
                "--endpoint-reconciler-type=none",
                "--enable-priority-and-fairness=false",
                "--allow-privileged=true",
                "--v=1",
            ],
            log_path,
        )
        self._wait(
            self._apiserver_ready,
            process=self.apiserver_process,
            log_path=log_path,
            what="kube-apiserver",
        )

    def stop_apiserver(self) -> None:
        """Stop kube-apiserver and leave etcd running, to test how clients ride out a restart."""
        if self.apiserver_process is not None:
            stop_process(self.apiserver_process)
            self.apiserver_process = None

    # --- readiness ---------------------------------------------------------------------------

    @staticmethod
    def _http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            return False

    def admin_ssl_context(self) -> ssl.SSLContext:
        """Return a TLS context that trusts the test CA and presents the admin certificate."""
        context = ssl.create_default_context(cafile=str(self.certificates.ca_path))
        context.load_cert_chain(
            str(self.certificates.admin_cert_path), str(self.certificates.admin_key_path)
        )
        return context

    def _apiserver_ready(self) -> bool:
        return self._http_ok(f"{self.server_url}/readyz", context=self.admin_ssl_context())

    @staticmethod
    def _wait(
        check: object,
        *,
        process: subprocess.Popen[bytes],
        log_path: Path,
        what: str,
    ) -> None:
        assert callable(check)
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise ControlPlaneError(
                    f"{what} exited with code {process.returncode} while starting; "
                    f"last lines of {log_path}:\n{tail(log_path)}"
                )
            if check():
                return
            time.sleep(0.1)
        raise ControlPlaneError(
            f"{what} was not ready after {STARTUP_TIMEOUT_SECONDS:.0f} s; "
            f"last lines of {log_path}:\n{tail(log_path)}"
        )

    # --- clients -----------------------------------------------------------------------------

    def _write_admin_kubeconfig(self) -> None:
        certificates = self.certificates
        self.write_kubeconfig(
            self.kubeconfig,
            user_name="admin",
            user={
                "client-certificate": str(certificates.admin_cert_path),
                "client-key": str(certificates.admin_key_path),
            },
        )

    def write_kubeconfig(self, path: Path, *, user_name: str, user: dict[str, str]) -> Path:
        """Write a kubeconfig for this API server with the given user credentials."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "experio-test",
                    "cluster": {
                        "server": self.server_url,
                        "certificate-authority": str(self.certificates.ca_path),
                    },
                }
            ],
            "users": [{"name": user_name, "user": user}],
            "contexts": [
                {
                    "name": "experio-test",
                    "context": {"cluster": "experio-test", "user": user_name},
                }
            ],
            "current-context": "experio-test",
        }
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        kubeconfig: Path | None = None,
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this control plane, as admin unless ``kubeconfig`` is given."""
        result = subprocess.run(
            [str(self.assets / "kubectl"), f"--kubeconfig={kubeconfig or self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise ControlPlaneError(
                f"kubectl {' '.join(args)} failed with code {result.returncode}: "
                f"{result.stderr.strip()}"
            )
        return result

    def service_account_kubeconfig(
        self, namespace: str, name: str, path: Path | None = None, duration: str = "2h"
    ) -> Path:
        """Write a kubeconfig that authenticates as a ServiceAccount with a requested token.

        The ServiceAccount must exist. The token comes from the TokenRequest API, so RBAC checks
        exactly ``system:serviceaccount:<namespace>:<name>``.
        """
        token = self.kubectl(
            "create", "token", name, "-n", namespace, f"--duration={duration}"
        ).stdout.strip()
        path = path or self.work_dir / f"{namespace}-{name}.kubeconfig"
        return self.write_kubeconfig(path, user_name=f"{namespace}-{name}", user={"token": token})
