"""``fednet ca init`` and ``fednet ca issue``: a private CA in a folder.

The folder holds ``ca.crt`` and ``ca.key`` and, for every name issued,
``NAME.crt`` and ``NAME.key``. Keys are written 0600 and never overwritten:
a name is issued once, and a new CA goes in a new folder.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

from fednet import pki
from fednet.server.sites import SITE_NAME

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
KEY_MODE = 0o600
CERT_MODE = 0o644
DIR_MODE = 0o700


def init_command(args: argparse.Namespace) -> int:
    """Run ``fednet ca init DIR``: create ``DIR/ca.crt`` and ``DIR/ca.key``."""
    folder: Path = args.dir
    existing = [p for p in (folder / CA_CERT, folder / CA_KEY) if p.exists()]
    if existing:
        return _refuse(
            "init",
            f"{existing[0]} exists: {folder} already holds a CA, refusing to"
            f" overwrite it (issue with it: fednet ca issue {folder} NAME,"
            " or start a new CA in another folder)",
        )
    if not folder.exists():
        folder.mkdir(parents=True, mode=DIR_MODE)
        folder.chmod(DIR_MODE)
    name = getattr(args, "name", None) or f"fednet CA {folder.resolve().name}"
    ca = pki.build_ca(name, _now())
    written = _write_pair("init", folder / CA_CERT, folder / CA_KEY, ca)
    if written:
        return written
    print(f"wrote {folder / CA_CERT} and {folder / CA_KEY} ({pki.describe(ca.cert)})")
    print(f"  keep {folder / CA_KEY} private; hand out only {folder / CA_CERT}.")
    print("next: a certificate for the coordinator's host name and address, and one")
    print("per site (its client --name):")
    print(f"  fednet ca issue {folder} coordinator.example.org --san 203.0.113.7")
    print(f"  fednet ca issue {folder} SITE")
    return 0


def issue_command(args: argparse.Namespace) -> int:
    """Run ``fednet ca issue DIR NAME``: write ``DIR/NAME.crt`` and ``DIR/NAME.key``."""
    folder: Path = args.dir
    name: str = args.name
    if not SITE_NAME.match(name):
        return _refuse(
            "issue",
            f"invalid name {name!r}: a site name has 1 to 128 letters, digits"
            " and . _ @ + - and starts with a letter or digit",
        )
    if name == "ca":
        return _refuse("issue", "the name 'ca' is the CA's own (ca.crt, ca.key)")
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    try:
        ca_cert = (folder / CA_CERT).read_bytes()
        ca_key = (folder / CA_KEY).read_bytes()
    except FileNotFoundError:
        return _refuse(
            "issue", f"{folder} holds no CA: create one with fednet ca init {folder}"
        )
    existing = [p for p in (cert_path, key_path) if p.exists()]
    if existing:
        return _refuse(
            "issue",
            f"{existing[0]} exists: {name} was issued already, refusing to"
            " overwrite it (delete both files first to issue it again)",
        )
    ca = pki.load_ca(ca_cert, ca_key)
    leaf = pki.build_leaf(ca, name, args.san, _now())
    written = _write_pair("issue", cert_path, key_path, leaf)
    if written:
        return written
    ca_path = folder / CA_CERT
    print(f"wrote {cert_path} and {key_path} ({pki.describe(leaf.cert)})")
    print(f"  copy them with {ca_path} to the machine that uses them;")
    print(f"  keep {key_path} private.")
    print("next, on a site whose --name is", name, "(mutual TLS):")
    print(
        f"  fednet client --name {name} --server wss://COORDINATOR:PORT/ws"
        f" --ca-file {ca_path} --tls-cert {cert_path} --tls-key {key_path}"
    )
    print("or on a coordinator reached as", name, "(--tls-client-ca: mutual TLS):")
    print(
        f"  fednet server --host 0.0.0.0 --tls-cert {cert_path} --tls-key {key_path}"
        f" --tls-client-ca {ca_path} --admin-token ..."
    )
    return 0


def _write_pair(
    action: str, cert_path: Path, key_path: Path, issued: pki.Issued
) -> int:
    """Write the key (0600) and then the certificate; never overwrite either.

    Returns 0, or the exit code after a refusal.
    """
    try:
        _write_new(key_path, issued.key_pem(), KEY_MODE)
    except FileExistsError:
        return _refuse(action, f"{key_path} appeared meanwhile; not overwritten")
    try:
        _write_new(cert_path, issued.cert_pem(), CERT_MODE)
    except FileExistsError:
        key_path.unlink()
        return _refuse(action, f"{cert_path} appeared meanwhile; not overwritten")
    return 0


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with exactly ``mode``; raise FileExistsError if it exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb", closefd=False) as f:
            f.write(data)
    finally:
        os.close(fd)


def _refuse(action: str, message: str) -> int:
    print(f"fednet ca {action}: {message}", file=sys.stderr)
    return 2


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
