"""Signed manifests: chain of custody against someone who can rewrite the outputs.

``manifest.json`` holds the SHA-256 of every output and a digest over them, so ``reason verify``
finds any file altered after the run; but whoever can rewrite a file can rewrite its digest too.
``reason ... --sign KEY`` signs the manifest's bytes with an Ed25519 private key (PEM, PKCS#8,
as ``openssl genpkey -algorithm ed25519`` writes it) into ``manifest.json.sig`` (the base64 of the
64-byte signature); ``reason verify OUT --key PUB`` checks it against the public key (PEM,
``openssl pkey -in KEY -pubout``). Needs the ``cryptography`` package (``pip install
'reasoner[sign]'``), imported only when a key is given.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from reasoner.errors import UsageError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = ["SIGNATURE", "check_signature", "key_fingerprint", "load_private_key", "load_public_key", "sign"]

SIGNATURE = "manifest.json.sig"


def _serialization():  # type: ignore[no-untyped-def]
    try:
        from cryptography.hazmat.primitives import serialization
    except ImportError:
        raise UsageError(
            "signing needs the 'cryptography' package: pip install 'reasoner[sign]' (or pip install cryptography)"
        ) from None
    return serialization


def _read(path: Path, option: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise UsageError(f"{option} {path}: cannot read: {error.strerror or error}") from None


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in the PEM file ``path`` (unencrypted PKCS#8), or a ``UsageError``."""
    serialization = _serialization()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    data = _read(path, "--sign")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise UsageError(f"--sign {path}: the key is encrypted; give an unencrypted PKCS#8 PEM key") from None
    except (ValueError, binascii.Error):
        raise UsageError(
            f"--sign {path}: not a PEM private key; make one with 'openssl genpkey -algorithm ed25519 -out {path}'"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UsageError(f"--sign {path}: expected an Ed25519 key, got {type(key).__name__.removeprefix('_')}")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The Ed25519 public key in the PEM file ``path``, or a ``UsageError``."""
    serialization = _serialization()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    data = _read(path, "--key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, binascii.Error):
        raise UsageError(f"--key {path}: not a PEM public key; make one with 'openssl pkey -in KEY -pubout'") from None
    if not isinstance(key, Ed25519PublicKey):
        raise UsageError(f"--key {path}: expected an Ed25519 public key, got {type(key).__name__.removeprefix('_')}")
    return key


def sign(data: bytes, key: Ed25519PrivateKey) -> str:
    """The text of ``manifest.json.sig`` for the manifest bytes ``data``: base64 and a newline."""
    return base64.b64encode(key.sign(data)).decode("ascii") + "\n"


def check_signature(data: bytes, signature: str, key: Ed25519PublicKey) -> bool:
    """Whether ``signature`` (the text of ``manifest.json.sig``) signs ``data`` with ``key``."""
    from cryptography.exceptions import InvalidSignature

    try:
        key.verify(base64.b64decode(signature.strip(), validate=True), data)
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def key_fingerprint(key: Ed25519PublicKey) -> str:
    """SHA-256 of the raw public key, in hex: how a report or a letter names the key."""
    serialization = _serialization()
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()
