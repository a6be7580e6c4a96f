"""``fednet ca``: a private CA whose certificates pass real TLS handshakes."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import stat
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from fednet.cli import main
from fednet.tlsctx import (
    client_ssl_context,
    peer_common_name,
    server_ssl_context,
    tls_failure,
)


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    """A CA with a coordinator certificate (localhost, 127.0.0.1) and site-1's."""
    folder = tmp_path / "pki"
    assert main(["ca", "init", str(folder)]) == 0
    assert main(["ca", "issue", str(folder), "localhost", "--san", "127.0.0.1"]) == 0
    assert main(["ca", "issue", str(folder), "site-1"]) == 0
    return folder


class _Peer:
    """What :func:`peer_common_name` reads from an asyncio transport."""

    def __init__(self, sock: ssl.SSLObject) -> None:
        self.sock = sock

    def get_extra_info(self, name: str) -> Any:
        assert name == "peercert"
        return self.sock.getpeercert()


def _handshake(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, host: str
) -> tuple[ssl.SSLObject, ssl.SSLObject]:
    """Run a TLS handshake in memory; return (server side, client side).

    Raises:
        ssl.SSLError: the handshake failed on either side.
    """
    bios = [ssl.MemoryBIO() for _ in range(4)]
    server = server_ctx.wrap_bio(bios[0], bios[1], server_side=True)
    client = client_ctx.wrap_bio(bios[2], bios[3], server_hostname=host)
    done = {id(server): False, id(client): False}
    for _ in range(20):
        pairs = ((client, bios[3], bios[0]), (server, bios[1], bios[2]))
        for side, outgoing, incoming in pairs:
            if not done[id(side)]:
                try:
                    side.do_handshake()
                    done[id(side)] = True
                except ssl.SSLWantReadError:
                    pass
            incoming.write(outgoing.read())
        if all(done.values()):
            # TLS 1.3: the server judges the client's certificate after the
            # client is done; a refusal reaches the client on its first read.
            client.write(b"ping")
            bios[0].write(bios[3].read())
            assert server.read(4) == b"ping"
            return server, client
    raise AssertionError("the handshake did not finish")


def test_ca_and_leaves_carry_what_tls_needs(ca_dir: Path) -> None:
    """The CA signs leaves only; each leaf serves and authenticates, with SANs."""
    ca, host, site = (_load(ca_dir / f"{n}.crt") for n in ("ca", "localhost", "site-1"))
    basic = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca and basic.value.path_length == 0
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        "fednet CA pki"
    )
    assert ca.not_valid_after_utc - ca.not_valid_before_utc > dt.timedelta(days=3600)
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value

    sans = host.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert sans.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1")
    ]
    for leaf, name in ((host, "localhost"), (site, "site-1")):
        assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == name
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert set(eku) == {
            ExtendedKeyUsageOID.SERVER_AUTH,
            ExtendedKeyUsageOID.CLIENT_AUTH,
        }
        aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
        assert aki.value.key_identifier == ca_ski.digest
        assert leaf.issuer == ca.subject
        life = leaf.not_valid_after_utc - leaf.not_valid_before_utc
        assert dt.timedelta(days=700) < life < dt.timedelta(days=740)
    assert host.serial_number != site.serial_number

    verifier = PolicyBuilder().store(Store([ca]))
    chain = verifier.build_server_verifier(x509.DNSName("localhost")).verify(host, [])
    assert chain[-1] == ca
    if hasattr(verifier, "build_client_verifier"):  # cryptography 43 and later
        assert verifier.build_client_verifier().verify(site, []).subjects


def test_mutual_tls_handshake_with_the_ca_names_the_site(ca_dir: Path) -> None:
    """Coordinator and site verify each other; a stranger's certificate fails."""
    server_ctx = server_ssl_context(
        ca_dir / "localhost.crt", ca_dir / "localhost.key", ca_dir / "ca.crt"
    )
    site_ctx = client_ssl_context(
        ca_dir / "ca.crt", ca_dir / "site-1.crt", ca_dir / "site-1.key"
    )
    for host in ("localhost", "127.0.0.1"):
        server, client = _handshake(server_ctx, site_ctx, host)
        assert peer_common_name(_Peer(server)) == "site-1"
        assert peer_common_name(_Peer(client)) == "localhost"

    # No client certificate: the handshake passes (browsers), no name.
    bare_ctx = client_ssl_context(ca_dir / "ca.crt")
    server, _ = _handshake(server_ctx, bare_ctx, "localhost")
    assert peer_common_name(_Peer(server)) is None

    stranger = trustme.CA().issue_cert("site-1")
    with stranger.private_key_and_cert_chain_pem.tempfile() as pem:
        other_ctx = client_ssl_context(ca_dir / "ca.crt", Path(pem), Path(pem))
        with pytest.raises(ssl.SSLError):
            _handshake(server_ctx, other_ctx, "localhost")

    # A client that does not trust the private CA refuses the coordinator.
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(server_ctx, client_ssl_context(None), "localhost")
    # Nor is the site certificate good for a host name it does not carry.
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(server_ctx, site_ctx, "coordinator.example.org")


def test_keys_are_private_and_nothing_is_overwritten(
    ca_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Keys 0600, folder 0700; a second init or issue is refused, files unchanged."""
    assert _mode(ca_dir) == 0o700
    for name in ("ca", "localhost", "site-1"):
        assert _mode(ca_dir / f"{name}.key") == 0o600
    before = {p.name: p.read_bytes() for p in ca_dir.iterdir()}
    capsys.readouterr()

    assert main(["ca", "init", str(ca_dir)]) == 2
    assert "already holds a CA" in capsys.readouterr().err
    assert main(["ca", "issue", str(ca_dir), "site-1"]) == 2
    assert "site-1 was issued already" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in ca_dir.iterdir()} == before


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["bad/name"], "invalid name"),
        (["--", "-dash"], "invalid name"),
        (["two words"], "invalid name"),
        (["ca"], "the CA's own"),
        (["site-2", "--san", "not a host"], "neither an IP address nor a DNS name"),
        (["site-2", "--san=-bad.example"], "neither an IP address nor a DNS name"),
    ],
)
def test_bad_names_are_refused_with_the_reason(
    ca_dir: Path, capsys: pytest.CaptureFixture[str], args: list[str], reason: str
) -> None:
    """A name that is no site name, or a SAN that is no host, writes nothing."""
    before = sorted(p.name for p in ca_dir.iterdir())
    capsys.readouterr()
    assert main(["ca", "issue", str(ca_dir), *args]) == 2
    assert reason in capsys.readouterr().err
    assert sorted(p.name for p in ca_dir.iterdir()) == before


def test_issue_needs_a_ca_and_names_the_next_step(
    tmp_path: Path, ca_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No CA in the folder: refused; a site name that is no host: CN only."""
    assert main(["ca", "issue", str(tmp_path / "none"), "site-1"]) == 2
    assert "fednet ca init" in capsys.readouterr().err

    assert main(["ca", "issue", str(ca_dir), "lab@uni", "--san", "::1"]) == 0
    out = capsys.readouterr().out
    assert f"--tls-cert {ca_dir / 'lab@uni.crt'}" in out
    leaf = _load(ca_dir / "lab@uni.crt")
    cn = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert cn[0].value == "lab@uni"
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == []
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("::1")]

    named = tmp_path / "named"
    assert main(["ca", "init", str(named), "--name", "Acme federation CA"]) == 0
    ca = _load(named / "ca.crt")
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        "Acme federation CA"
    )


def test_tls_failures_are_named_with_their_fix(ca_dir: Path) -> None:
    """What a client logs when TLS fails: the cause and the flag that fixes it."""
    server_ctx = server_ssl_context(ca_dir / "localhost.crt", ca_dir / "localhost.key")
    with pytest.raises(ssl.SSLCertVerificationError) as failed:
        _handshake(server_ctx, client_ssl_context(None), "localhost")
    wrapped = ConnectionError("cannot connect")
    wrapped.__cause__ = failed.value
    message = tls_failure(wrapped, presented_cert=False)
    assert message is not None
    assert "not verified" in message and "--ca-file" in message
    assert "--tls-cert" in (tls_failure(ssl.SSLError(1, "alert"), True) or "")
    closed = tls_failure(ConnectionError("closed"), True, closed_early=True)
    assert closed is not None and "--tls-client-ca" in closed
    assert tls_failure(ConnectionError("closed"), False, closed_early=True) is None
