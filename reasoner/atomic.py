"""Files written whole or not at all: a temporary file beside the target, moved onto it at the end."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

__all__ = ["written_whole"]


@contextlib.contextmanager
def written_whole(path: Path) -> Iterator[Path]:
    """A fresh temporary path in ``path``'s directory to write to; when the block ends without an
    error it replaces ``path`` (``os.replace``: atomic on one file system), otherwise it is
    removed. A killed process leaves at most a hidden ``.NAME.*.partial`` file, never a truncated
    ``path``."""
    while True:  # created with the permissions of any new file (mkstemp's would be 0600)
        temporary = path.parent / f".{path.name}.{secrets.token_hex(4)}.partial"
        try:
            os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:
            continue
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
