"""A real SMTP relay for tests (aiosmtpd on a loopback port) that keeps what it receives.

It can refuse chosen recipients with 550, start later on a port chosen now (a relay that
is down, then up), and require STARTTLS with AUTH (a self-signed certificate made here).
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import shutil
import ssl
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from bridge.demo.synapse import free_port


@dataclass(frozen=True)
class Received:
    """One mail as the relay took it: the envelope and the parsed message."""

    mail_from: str
    recipients: tuple[str, ...]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.raw, policy=default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    def body(self, subtype: str = "plain") -> str:
        part = self.message.get_body(preferencelist=(subtype,))
        assert part is not None, f"no text/{subtype} part"
        content = part.get_content()
        assert isinstance(content, str)
        return content


class _Handler:
    def __init__(self, mailbox: Mailbox) -> None:
        self._mailbox = mailbox

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address.lower() in self._mailbox.refused:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        content = envelope.original_content or b""
        self._mailbox.received.append(
            Received(str(envelope.mail_from), tuple(envelope.rcpt_tos), bytes(content))
        )
        return "250 Message accepted"


@dataclass(frozen=True)
class TlsFiles:
    certificate: Path
    key: Path


class RelayTls:
    """The relay's certificate, loaded (its files are gone once this exists)."""

    def __init__(self) -> None:
        directory = Path(tempfile.mkdtemp(prefix="relay-tls-"))
        try:
            files = self_signed(directory)
            self.certificate_pem = files.certificate.read_text()
            self.server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.server_context.load_cert_chain(str(files.certificate), str(files.key))
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    def client_context(self) -> ssl.SSLContext:
        """What a client trusts to reach this relay."""
        return ssl.create_default_context(cadata=self.certificate_pem)


def self_signed(directory: Path) -> TlsFiles:
    """A certificate for 127.0.0.1 and localhost: with `cryptography` if installed, else
    with the `openssl` command; neither is a failure, not a skip."""
    certificate, key = directory / "relay.crt", directory / "relay.key"
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        openssl = shutil.which("openssl")
        if openssl is None:
            raise RuntimeError(
                "A STARTTLS relay needs a certificate: install the `cryptography` package "
                "or the `openssl` command"
            ) from None
        subprocess.run(
            [
                openssl,
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost,IP:127.0.0.1",
                "-keyout",
                str(key),
                "-out",
                str(certificate),
            ],
            check=True,
            capture_output=True,
        )
        return TlsFiles(certificate, key)
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    certificate.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return TlsFiles(certificate, key)


class Mailbox:
    """The relay. `start()` it (again after `stop()`: same port); `received` fills up."""

    host = "127.0.0.1"

    def __init__(
        self,
        *,
        port: int | None = None,
        refuse: Iterable[str] = (),
        login: tuple[str, str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.refused = {address.lower() for address in refuse}
        self.received: list[Received] = []
        self.login = login
        self.tls: RelayTls | None = None
        self.logins: list[str] = []
        self._controller: Controller | None = None
        if login is not None:
            self.tls = RelayTls()

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth: Any
    ) -> AuthResult:
        if (
            self.login is not None
            and isinstance(auth, LoginPassword)
            and (auth.login.decode(), auth.password.decode()) == self.login
        ):
            self.logins.append(auth.login.decode())
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    def start(self) -> None:
        options: dict[str, Any] = {}
        if self.tls is not None:
            options = {
                "tls_context": self.tls.server_context,
                "require_starttls": True,
                "authenticator": self._authenticate,
                "auth_required": True,
            }
        # Its own loop, in its own thread, closed on stop (the controller leaves it open).
        self._loop = asyncio.new_event_loop()
        self._controller = Controller(
            _Handler(self), hostname=self.host, port=self.port, loop=self._loop, **options
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
            self._loop.close()

    def to(self, address: str) -> list[Received]:
        return [mail for mail in self.received if address in mail.recipients]

    def smtp_config(self) -> dict[str, Any]:
        """The bridge's `email.smtp` section for this relay."""
        if self.login is None:
            return {"host": self.host, "port": self.port, "security": "none"}
        return {
            "host": self.host,
            "port": self.port,
            "security": "starttls",
            "username": self.login[0],
            "password": self.login[1],
        }
