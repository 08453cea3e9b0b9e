"""Atomic file output: write a temporary file beside the target, then rename over it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from convaudit.errors import ConvauditError
from convaudit.safe_io import check_output_path


def write_atomic(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the whole new one, never half."""
    target = Path(path)
    # A device or FIFO is refused, never replaced: as root, -o /dev/null would swap the real
    # /dev/null for a regular file.
    check_output_path(target, error=ConvauditError)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:  # the user's path, not a bug: one line naming it, exit 2
        raise ConvauditError(
            f"cannot write the output ({exc.strerror or exc})", path=target
        ) from None
    try:
        # mkstemp makes the file 0600; a report or baseline gets the mode a plain open() would
        # give it (the existing file's, else 0666 less the umask), so CI and teammates can read it.
        os.chmod(tmp, _mode_for(target))
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ConvauditError(
            f"cannot write the output ({exc.strerror or exc})", path=target
        ) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _mode_for(target: Path) -> int:
    try:
        return target.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
