"""The one gate for every file convaudit opens besides writing: regular files only, external
data only inside the model's folder, sizes parsed strictly and held to a memory budget.

Models arrive in pull requests, so each path is hostile until checked here. A FIFO opened for
reading blocks until a writer appears, a device reads forever, a symlink can lead a weight file
to ``/proc/self/environ``: every reader goes through ``open_regular`` (non-blocking open, then
``fstat``) and external data through ``external_data`` (the *resolved* path must stay inside the
model's folder, as onnx's own fix for CVE-2024-27318 checks).
"""

from __future__ import annotations

import errno
import io
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from convaudit.errors import ConvauditError, ModelLoadError
from convaudit.lazyre import LazyPattern

__all__ = [
    "BUDGET_ENV",
    "ExternalData",
    "check_output_path",
    "check_size",
    "clip",
    "external_data",
    "memory_budget",
    "open_regular",
    "read_regular",
    "shown",
]

# Echoed user text longer than this is cut: an error is one line, not a 10 MB rule id.
ECHO_LIMIT = 200
BUDGET_ENV = "CONVAUDIT_MEMORY_BUDGET"
DEFAULT_BUDGET = 2 * 1024**3  # bytes one array built from declared sizes may take
# Text files (rules, configs, baselines) larger than this are no hand-written file.
TEXT_LIMIT = 64 * 1024**2
_INT64_MAX = 2**63 - 1
_DIGITS = LazyPattern(r"[0-9]{1,19}")
_SIZE = LazyPattern(r"([0-9]{1,19})\s*([KMGT]?)(?:i?B)?", re.IGNORECASE)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def clip(text: str, limit: int = ECHO_LIMIT) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    one = " ".join(text[: limit * 4].split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


def shown(value: object, limit: int = ECHO_LIMIT) -> str:
    """``repr(value)`` cut to ``limit`` characters with an ellipsis: how messages echo input."""
    if isinstance(value, str | bytes) and len(value) > limit:
        value = value[: limit + 1]  # repr of a 10 MB string costs 10 MB first
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def human_bytes(n: int) -> str:
    for unit, size in (
        ("EiB", 1024**6),
        ("PiB", 1024**5),
        ("TiB", 1024**4),
        ("GiB", 1024**3),
        ("MiB", 1024**2),
        ("KiB", 1024),
    ):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


def memory_budget() -> int:
    """Bytes one allocation from declared sizes may take: $CONVAUDIT_MEMORY_BUDGET or 2 GiB."""
    raw = os.environ.get(BUDGET_ENV, "").strip()
    if not raw:
        return DEFAULT_BUDGET
    match = _SIZE.fullmatch(raw)
    if match is None:
        raise ConvauditError(f"{BUDGET_ENV}={shown(raw)} is not a size: use bytes or e.g. 8G, 512M")
    return int(match.group(1)) * _UNITS[match.group(2).upper()]


def check_size(
    nbytes: int, what: str, *, path: str | Path | None = None, error: type[ConvauditError]
) -> None:
    """Refuse to allocate ``nbytes`` for ``what`` beyond the memory budget (before allocating)."""
    budget = memory_budget()
    if nbytes > budget:
        raise error(
            f"{what} would take {human_bytes(nbytes)}, over the memory budget of "
            f"{human_bytes(budget)} (raise it with {BUDGET_ENV}=8G)",
            path=path,
        )


def _describe(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def open_regular(
    path: str | Path,
    *,
    error: type[ConvauditError],
    what: str = "file",
    follow: bool = True,
    missing: str | None = None,
) -> io.FileIO:
    """Open ``path`` for reading if it is a regular file, else ``error`` naming it.

    O_NONBLOCK makes opening a FIFO return at once instead of waiting for a writer; the check
    is made on the opened descriptor (``fstat``), so the file cannot be swapped after it.
    ``follow=False`` adds O_NOFOLLOW: the last component must not be a symlink.
    """
    p = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    if not follow:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(p, flags)
    except FileNotFoundError:
        raise error(missing or f"{what} not found", path=p) from None
    except IsADirectoryError:
        raise error(f"{what} is a directory, not a file", path=p) from None
    except OSError as exc:
        if not follow and exc.errno == errno.ELOOP:
            raise error(f"{what} is a symlink: it is not followed", path=p) from None
        raise error(f"cannot read the {what} ({exc.strerror or exc})", path=p) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise error(f"{what} is {_describe(mode)}: only regular files are read", path=p)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return io.FileIO(fd, "rb", closefd=True)
    except BaseException:
        os.close(fd)
        raise


def read_regular(
    path: str | Path,
    *,
    error: type[ConvauditError],
    what: str = "file",
    limit: int = TEXT_LIMIT,
    missing: str | None = None,
) -> bytes:
    """The bytes of a small regular file (rules, config, baseline), at most ``limit``."""
    with open_regular(path, error=error, what=what, missing=missing) as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > limit:
            raise error(
                f"{what} is {human_bytes(size)}, over the {human_bytes(limit)} limit", path=path
            )
        try:
            data = fh.read(limit + 1)
        except OSError as exc:
            raise error(f"cannot read the {what} ({exc.strerror or exc})", path=path) from None
    if len(data) > limit:  # grew since fstat
        raise error(f"{what} is over the {human_bytes(limit)} limit", path=path)
    return data


def check_output_path(path: str | Path, *, error: type[ConvauditError]) -> None:
    """An output may replace a regular file or create a new one; never a device, FIFO or socket
    (``-o /dev/null`` as root would otherwise replace the real /dev/null with a file)."""
    p = Path(path)
    try:
        mode = os.stat(p).st_mode  # follows links: a link to /dev/null is /dev/null
    except OSError:  # a new path, or one the writer itself will fail on and say why
        return
    if stat.S_ISDIR(mode):
        raise error("is a directory: name the output file", path=p)
    if not stat.S_ISREG(mode):
        raise error(
            f"output is {_describe(mode)}: convaudit writes only regular files or new paths",
            path=p,
        )


# -- external data ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ExternalData:
    """One tensor's external-data entry, checked: where its bytes are and how many."""

    path: Path  # resolved, inside the model's folder: what is opened
    named: Path  # the model's folder joined with the location: what messages say
    offset: int
    length: int | None  # None: to the end of the file (the spec makes length optional)


def _whole(value: str, key: str, tensor: str, model: Path) -> int:
    # Plain decimal digits only: int() would take "1_000", " 7", "١٢" and 5,000 digits.
    if not _DIGITS.fullmatch(value) or int(value) > _INT64_MAX:
        raise ModelLoadError(
            f"tensor {shown(tensor)} has an invalid external data {key} {shown(value)}: "
            "it must be a whole number of bytes",
            path=model,
        )
    return int(value)


def external_data(model: str | Path, entries: dict[str, str], tensor: str) -> ExternalData:
    """Check one tensor's external-data ``entries`` (location, offset, length) of ``model``.

    The location must be a relative path whose resolved target (symlinks followed) is inside
    the model's folder; offset and length plain whole numbers. Unknown keys are ignored
    (onnx writes ``checksum``; others are harmless).
    """
    model_path = Path(model)
    location = entries.get("location", "")
    relative = Path(location)
    bad = (
        not location
        or "\x00" in location
        or relative.is_absolute()
        or ".." in relative.parts
        or location.startswith(("/", "\\"))
    )
    folder = os.path.realpath(model_path.parent)
    target = os.path.realpath(os.path.join(folder, location)) if not bad else ""
    if bad or os.path.commonpath([folder, target]) != folder or target == folder:
        raise ModelLoadError(
            f"tensor {shown(tensor)} has an invalid external data location {shown(location)}: "
            "only files inside the model's folder are read",
            path=model_path,
        )
    offset = _whole(entries.get("offset", "0"), "offset", tensor, model_path)
    length = entries.get("length")
    return ExternalData(
        path=Path(target),
        named=model_path.parent / location,
        offset=offset,
        length=None if length is None else _whole(length, "length", tensor, model_path),
    )


def open_external(model: str | Path, info: ExternalData, tensor: str) -> tuple[io.FileIO, int]:
    """The opened data file (regular, not a symlink) and the tensor's byte count, checked
    against the file's size and the memory budget before anything is allocated."""
    what = f"external data file of tensor {shown(tensor)}"
    try:
        fh = open_regular(info.path, error=ModelLoadError, what=what, follow=False)
    except ModelLoadError as exc:  # name the file as the model does, not its resolved path
        raise ModelLoadError(exc.message, path=info.named) from None
    try:
        size = os.fstat(fh.fileno()).st_size
        length = max(size - info.offset, 0) if info.length is None else info.length
        if info.offset + length > size:
            raise ModelLoadError(
                f"file is too short: tensor {shown(tensor)} needs bytes "
                f"{info.offset}..{info.offset + length}, the file has {size}",
                path=info.named,
            )
        check_size(length, f"tensor {shown(tensor)}", path=model, error=ModelLoadError)
        return fh, length
    except BaseException:
        fh.close()
        raise
