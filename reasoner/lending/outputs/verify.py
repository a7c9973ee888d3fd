"""``reason verify OUT``: do the output files still match the digests in ``manifest.json``?

The manifest records the SHA-256 of every output file and a digest over all of them. A file
whose digest differs was altered after the run, a recorded file that is gone is missing, a
file that is not recorded was added (the manifest itself excepted). ``verify`` returns a
``Verification`` listing each; the command exits 0 only when there is nothing to list.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from reasoner.errors import EvidenceError, UsageError
from reasoner.lending.outputs.signing import SIGNATURE, check_signature, key_fingerprint, load_public_key

__all__ = ["Verification", "render_verification", "verify"]

MANIFEST = "manifest.json"


@dataclass(frozen=True, slots=True)
class Verification:
    """What ``verify`` found: files checked, and those altered, missing or added (sorted names)."""

    checked: tuple[str, ...]
    altered: tuple[str, ...]
    missing: tuple[str, ...]
    added: tuple[str, ...]
    digest_matches: bool  # the manifest's ``outputs_digest`` agrees with its per-file digests
    # manifest.json.sig against the key given: "valid", "invalid" or "missing"; "not checked"
    # without a key ("unsigned" when there is no signature either)
    signature: str = "unsigned"
    key: str = ""  # the fingerprint of the key checked (SHA-256 of the raw public key)

    @property
    def ok(self) -> bool:
        signed = self.signature in ("valid", "not checked", "unsigned")
        return not (self.altered or self.missing or self.added) and self.digest_matches and signed


def verify(out: Path, *, key: Path | None = None) -> Verification:
    """Re-check every output digest recorded in ``out/manifest.json``, and with ``key`` (an
    Ed25519 public key, PEM) the manifest's signature ``manifest.json.sig``."""
    out = Path(out)
    if not out.is_dir():
        raise UsageError(f"{out}: no such output directory")
    path = out / MANIFEST
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EvidenceError(f"{path}: missing; is {out} the output directory of an audit?") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise EvidenceError(f"{path}: expected the JSON manifest of an audit, cannot read it: {error}") from None
    outputs = record.get("outputs") if isinstance(record, dict) else None
    if not isinstance(outputs, dict) or not all(
        isinstance(entry, dict) and isinstance(entry.get("sha256"), str) for entry in outputs.values()
    ):
        raise EvidenceError(f"{path}: expected an 'outputs' object of {{name: {{\"sha256\": digest}}}}")
    recorded = {str(name): entry["sha256"] for name, entry in outputs.items()}
    altered, missing = [], []
    for name in sorted(recorded):
        file = out / name
        if not file.is_file():
            missing.append(name)
        elif _sha256(file) != recorded[name]:
            altered.append(name)
    present = {str(file.relative_to(out)) for file in out.rglob("*") if file.is_file()}
    added = sorted(present - set(recorded) - {MANIFEST, SIGNATURE})
    expected = hashlib.sha256("".join(f"{n}:{d}\n" for n, d in sorted(recorded.items())).encode()).hexdigest()
    digest_matches = record.get("outputs_digest") == expected
    signature, fingerprint = _signature(out, key)
    return Verification(
        tuple(sorted(recorded)), tuple(altered), tuple(missing), tuple(added), digest_matches, signature, fingerprint
    )


def _signature(out: Path, key: Path | None) -> tuple[str, str]:
    file = out / SIGNATURE
    if key is None:
        return ("not checked" if file.is_file() else "unsigned"), ""
    public = load_public_key(key)
    fingerprint = key_fingerprint(public)
    if not file.is_file():
        return "missing", fingerprint
    try:
        text = file.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return "invalid", fingerprint
    valid = check_signature((out / MANIFEST).read_bytes(), text, public)
    return ("valid" if valid else "invalid"), fingerprint


def render_verification(result: Verification, out: Path) -> str:
    """One line when everything matches, else one line per difference."""
    if result.ok:
        signed = {
            "valid": f", signed by the key SHA256:{result.key[:16]}…",
            "not checked": f" ({SIGNATURE} not checked: give --key PUBLIC_KEY)",
        }.get(result.signature, "")
        return f"verified {len(result.checked)} files in {out} against manifest.json{signed}"
    lines = [f"{out}/{name}: altered after the run (its SHA-256 differs from manifest.json)" for name in result.altered]
    lines += [f"{out}/{name}: missing (recorded in manifest.json)" for name in result.missing]
    lines += [f"{out}/{name}: added after the run (not recorded in manifest.json)" for name in result.added]
    if not result.digest_matches:
        lines.append(f"{out}/manifest.json: outputs_digest does not match its file digests (the manifest was edited)")
    if result.signature == "missing":
        lines.append(f"{out}/{SIGNATURE}: missing; the manifest is not signed")
    elif result.signature == "invalid":
        lines.append(
            f"{out}/manifest.json: its signature does not match the key SHA256:{result.key[:16]}… "
            "(the manifest was altered after it was signed, or signed with another key)"
        )
    return "\n".join(lines)


def _sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, in hex (as ``reasoner.evidence.file_sha256``, which would import pandas)."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
