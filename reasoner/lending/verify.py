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
from reasoner.evidence import file_sha256

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

    @property
    def ok(self) -> bool:
        return not (self.altered or self.missing or self.added) and self.digest_matches


def verify(out: Path) -> Verification:
    """Re-check every output digest recorded in ``out/manifest.json``."""
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
        elif file_sha256(file) != recorded[name]:
            altered.append(name)
    present = {str(file.relative_to(out)) for file in out.rglob("*") if file.is_file()}
    added = sorted(present - set(recorded) - {MANIFEST})
    expected = hashlib.sha256("".join(f"{n}:{d}\n" for n, d in sorted(recorded.items())).encode()).hexdigest()
    digest_matches = record.get("outputs_digest") == expected
    return Verification(tuple(sorted(recorded)), tuple(altered), tuple(missing), tuple(added), digest_matches)


def render_verification(result: Verification, out: Path) -> str:
    """One line when everything matches, else one line per difference."""
    if result.ok:
        return f"verified {len(result.checked)} files in {out} against manifest.json"
    lines = [f"{out}/{name}: altered after the run (its SHA-256 differs from manifest.json)" for name in result.altered]
    lines += [f"{out}/{name}: missing (recorded in manifest.json)" for name in result.missing]
    lines += [f"{out}/{name}: added after the run (not recorded in manifest.json)" for name in result.added]
    if not result.digest_matches:
        lines.append(f"{out}/manifest.json: outputs_digest does not match its file digests (the manifest was edited)")
    return "\n".join(lines)
