"""Authenticated manifests: an HMAC-SHA256 of each manifest with ``backup.signing_key_file``.

Whoever can write to the backup folder can edit an archive and recompute its
sha256 in the manifest; only a key they cannot read tells such a manifest from
one ``backup create`` wrote. With a key, every manifest written is signed and
``verify``/``restore`` refuse one whose signature is missing or wrong. Without
one, manifests are written unsigned and reported as unauthenticated.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace

from docex_ops.backup.manifest import SIGNED_FORMAT, Manifest, canonical_json
from docex_ops.config.backup import read_signing_key
from docex_ops.config.settings import Settings

PREFIX = "hmac-sha256:"


def signing_key(settings: Settings) -> bytes | None:
    """The configured key, read and checked now (ConfigError if it went bad)."""
    if settings.signing_key_file is None:
        return None
    return read_signing_key(settings.signing_key_file)


def _mac(content: bytes, key: bytes) -> str:
    return PREFIX + hmac.new(key, content, hashlib.sha256).hexdigest()


def sign(manifest: Manifest, key: bytes | None) -> Manifest:
    """``manifest`` with its signature (and the format that carries one); as is without
    a key."""
    if key is None:
        return manifest
    signed = replace(manifest, format=SIGNED_FORMAT, signature=None)
    return replace(signed, signature=_mac(canonical_json(signed.to_dict()), key))


def signature_problem(manifest: Manifest, key: bytes) -> str | None:
    """Why ``manifest`` is not authenticated by ``key``, in one line; None if it is."""
    if manifest.signature is None:
        return (f"manifest {manifest.path} has no signature, and backup.signing_key_file is "
                "configured: refused (it was not written with the key, or was changed)")
    if not hmac.compare_digest(manifest.signature, _mac(manifest.signed_content, key)):
        return (f"manifest {manifest.path}: the signature is wrong: refused (the manifest "
                "was changed, or signed with another key)")
    return None
