"""A real Kubernetes API server on loopback: etcd + kube-apiserver, started like envtest.

`KubeApiServer(workdir).start()` makes a fresh PKI (a CA, a serving certificate for
127.0.0.1/localhost, an admin client certificate in `system:masters`, a service-account signing
key), starts etcd and kube-apiserver on free loopback ports with `--authorization-mode=RBAC`, polls
`/readyz`, and writes an admin kubeconfig to `workdir/kubeconfig`. Everything it writes stays in
`workdir`; `stop()` ends kube-apiserver, then etcd, and returns only when both are gone.

Other identities are client certificates signed by the same CA (`kubeconfig_for`), as envtest's
`AddUser` does: the API server maps the certificate's CN to the user name and its O fields to the
groups, so a certificate for `system:serviceaccount:NS:NAME` is bound by RBAC exactly like that
ServiceAccount. That lets a test run the operator with the restricted RBAC it ships, without a
token controller (none runs here: there is no kube-controller-manager).

There is no scheduler, no kubelet and no controller-manager: objects are stored and validated,
nothing runs them. This module must not build binaries (binaries.py does) nor decide anything
about the controller's resources.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import ssl
import subprocess
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from controller.testing.binaries import Binaries, ensure_binaries
from controller.testing.ports import StartedProcess, exited_error, free_port, spawn, wait_until

SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"


# --- certificates -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Issued:
    cert_pem: bytes
    key_pem: bytes


@dataclass(frozen=True)
class CertificateAuthority:
    """A throwaway CA: the API server trusts client certificates it signs, and serves with one."""

    cert_pem: bytes
    key_pem: bytes

    @classmethod
    def create(cls, now: datetime.datetime) -> CertificateAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "release-controller-test-ca")])
        cert = (
            _builder(name, name, key.public_key(), now)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, key_cert_sign=True, crl_sign=True,
                    content_commitment=False, key_encipherment=False, data_encipherment=False,
                    key_agreement=False, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))

    def issue_serving(self, hosts: Sequence[str], now: datetime.datetime) -> _Issued:
        sans: list[x509.GeneralName] = []
        for host in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                sans.append(x509.DNSName(host))
        return self._issue(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]),
            ExtendedKeyUsageOID.SERVER_AUTH,
            now,
            x509.SubjectAlternativeName(sans),
        )

    def issue_client(self, user: str, groups: Sequence[str], now: datetime.datetime) -> _Issued:
        attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, user))
        return self._issue(x509.Name(attributes), ExtendedKeyUsageOID.CLIENT_AUTH, now, None)

    def _issue(
        self,
        subject: x509.Name,
        usage: x509.ObjectIdentifier,
        now: datetime.datetime,
        sans: x509.SubjectAlternativeName | None,
    ) -> _Issued:
        ca_key = serialization.load_pem_private_key(self.key_pem, password=None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        ca_cert = x509.load_pem_x509_certificate(self.cert_pem)
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            _builder(subject, ca_cert.subject, key.public_key(), now)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
        )
        if sans is not None:
            builder = builder.add_extension(sans, critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        return _Issued(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, now: datetime.datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        # Backdated a little: a clock a few seconds behind must not see a not-yet-valid cert.
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=365))
    )


def _key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes) -> None:
    path.touch(mode=0o600)
    path.write_bytes(data)


def kubeconfig_document(
    server: str, ca_pem: bytes, client: _Issued, user: str, context: str = "local"
) -> dict[str, object]:
    """A self-contained kubeconfig (certificates inline), so it can be copied anywhere."""

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "local", "cluster": {"server": server, "certificate-authority-data": b64(ca_pem)}}
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": b64(client.cert_pem),
                    "client-key-data": b64(client.key_pem),
                },
            }
        ],
        "contexts": [{"name": context, "context": {"cluster": "local", "user": user}}],
        "current-context": context,
    }


# --- the servers --------------------------------------------------------------------------------


@dataclass
class KubeApiServer:
    """etcd + kube-apiserver with state, certificates, logs and kubeconfigs under `workdir`."""

    workdir: Path
    binaries: Binaries | None = None
    etcd_client_port: int = 0
    etcd_peer_port: int = 0
    secure_port: int = 0
    _ca: CertificateAuthority | None = field(default=None, repr=False)
    _etcd: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _apiserver: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _started: list[StartedProcess] = field(default_factory=list, repr=False)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.secure_port}"

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def certs_dir(self) -> Path:
        return self.workdir / "pki"

    @property
    def processes(self) -> list[StartedProcess]:
        """What is running, in start order (stop in reverse)."""
        return list(self._started)

    def start(self, timeout: float = 180) -> Path:
        """Start etcd and kube-apiserver; return the admin kubeconfig once /readyz says ok."""
        self.workdir = Path(self.workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        binaries = self.binaries or ensure_binaries()
        self.binaries = binaries
        self.etcd_client_port = self.etcd_client_port or free_port()
        self.etcd_peer_port = self.etcd_peer_port or free_port()
        self.secure_port = self.secure_port or free_port()
        try:
            self._write_pki()
            self._start_etcd(binaries.etcd, timeout)
            self._start_apiserver(binaries.kube_apiserver, timeout)
        except BaseException:
            self.stop()
            raise
        return self.kubeconfig

    def stop(self, timeout: float = 20) -> None:
        """Stop kube-apiserver, then etcd (it holds the data the API server is flushing)."""
        for started in reversed(self._started):
            started.stop(timeout)
        for proc in (self._apiserver, self._etcd):
            if proc is not None:
                proc.poll()  # reap, so no zombie is left in this process
        self._started.clear()
        self._apiserver = self._etcd = None

    def stop_apiserver(self, timeout: float = 20) -> None:
        """An API server outage: kube-apiserver stops, etcd (and so every object) stays."""
        for started in [p for p in self._started if p.name == "kube-apiserver"]:
            started.stop(timeout)
            self._started.remove(started)
        if self._apiserver is not None:
            self._apiserver.poll()
        self._apiserver = None

    def start_apiserver(self, timeout: float = 180) -> None:
        """The API server back after `stop_apiserver`, on the same port and etcd."""
        assert self.binaries is not None and self._apiserver is None
        self._start_apiserver(self.binaries.kube_apiserver, timeout)

    def kubeconfig_for(
        self, user: str, groups: Sequence[str] = (), path: Path | None = None
    ) -> Path:
        """Write a kubeconfig that authenticates as `user` in `groups` (a CA-signed client cert).

        RBAC applies to it like to any user: it may do exactly what its bindings allow.
        """
        if self._ca is None:
            self._ca = self._load_ca()
        client = self._ca.issue_client(user, groups, _now())
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in user)
        target = path or self.workdir / f"kubeconfig-{safe}"
        doc = kubeconfig_document(self.url, self._ca.cert_pem, client, user)
        _write_private(target, yaml.safe_dump(doc, sort_keys=False).encode())
        return target

    def service_account_kubeconfig(
        self, namespace: str, name: str, path: Path | None = None
    ) -> Path:
        """A kubeconfig with the identity of ServiceAccount `namespace/name` as RBAC sees it."""
        return self.kubeconfig_for(
            f"system:serviceaccount:{namespace}:{name}",
            ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"],
            path,
        )

    # --- internals ---

    def _load_ca(self) -> CertificateAuthority:
        return CertificateAuthority(
            (self.certs_dir / "ca.crt").read_bytes(), (self.certs_dir / "ca.key").read_bytes()
        )

    def _write_pki(self) -> None:
        now = _now()
        pki = self.certs_dir
        pki.mkdir(parents=True, exist_ok=True)
        ca = CertificateAuthority.create(now)
        self._ca = ca
        (pki / "ca.crt").write_bytes(ca.cert_pem)
        _write_private(pki / "ca.key", ca.key_pem)
        serving = ca.issue_serving(["127.0.0.1", "localhost", "10.0.0.1", "kubernetes.default"], now)
        (pki / "apiserver.crt").write_bytes(serving.cert_pem)
        _write_private(pki / "apiserver.key", serving.key_pem)
        sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _write_private(pki / "sa.key", _key_pem(sa_key))
        (pki / "sa.pub").write_bytes(
            sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        admin = ca.issue_client("admin", ["system:masters"], now)
        (pki / "admin.crt").write_bytes(admin.cert_pem)
        _write_private(pki / "admin.key", admin.key_pem)
        doc = kubeconfig_document(self.url, ca.cert_pem, admin, "admin")
        _write_private(self.kubeconfig, yaml.safe_dump(doc, sort_keys=False).encode())

    def _start_etcd(self, etcd: Path, timeout: float) -> None:
        client = f"http://127.0.0.1:{self.etcd_client_port}"
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        log = self.workdir / "etcd.log"
        self._etcd, started = spawn(
            "etcd",
            [
                str(etcd),
                "--name=default",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=default={peer}",
                # Test data is thrown away: skipping fsync makes the API server several times faster.
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
            log,
        )
        self._started.append(started)

        def healthy() -> bool:
            assert self._etcd is not None
            if self._etcd.poll() is not None:
                raise exited_error(self._etcd, "etcd", log)
            with urllib.request.urlopen(f"{client}/health", timeout=2) as resp:
                return b'"true"' in resp.read()

        wait_until(healthy, timeout, "etcd")

    def _start_apiserver(self, apiserver: Path, timeout: float) -> None:
        pki = self.certs_dir
        log = self.workdir / "kube-apiserver.log"
        self._apiserver, started = spawn(
            "kube-apiserver",
            [
                str(apiserver),
                f"--etcd-servers=http://127.0.0.1:{self.etcd_client_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.secure_port}",
                f"--cert-dir={pki}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                "--authorization-mode=RBAC",
                f"--service-account-issuer={self.url}",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                # No token controller runs here, so pods could never get their token volume.
                "--disable-admission-plugins=ServiceAccount",
                "--allow-privileged=true",
            ],
            log,
        )
        self._started.append(started)
        context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))

        def ready() -> bool:
            assert self._apiserver is not None
            if self._apiserver.poll() is not None:
                raise exited_error(self._apiserver, "kube-apiserver", log)
            with urllib.request.urlopen(f"{self.url}/readyz", timeout=5, context=context) as resp:
                return bool(resp.status == 200)

        wait_until(ready, timeout, "kube-apiserver", interval=0.25)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)
