"""``dataclasses.dataclass``, with the code of the methods it writes compiled once per user.

For each class, dataclasses writes the source of ``__init__``, ``__repr__``, ``__eq__`` and
(frozen) ``__hash__``, ``__setattr__``, ``__delattr__``, and compiles each with ``exec``: on
CPython 3.11 that compiling was about a third of the CPU a scan spends importing convaudit. The
text is the same in every process, so its compiled code is kept in the user cache (``marshal``,
one file per Python build, keyed by the text itself) and later processes ``exec`` the stored
code instead of compiling it again. Only the compile step changes: dataclasses builds the methods
from the same text either way, so the classes are the same. The file is one this tool wrote, in a
folder only the user can write (``usercache``); anything unreadable means "compile as usual".
"""

from __future__ import annotations

import builtins
import dataclasses as _dataclasses
import marshal
import sys
from types import CodeType
from typing import TYPE_CHECKING, Any

from convaudit import usercache

KIND = "dataclass-code-1"  # bump when what is stored changes
MAX_ENTRIES = 2000  # a folder kept across many edits of the records is started afresh past this

_codes: dict[str, CodeType] | None = None  # the stored code, read on first use
_new: dict[str, CodeType] = {}  # compiled in this process, not stored yet


def cache_key() -> str:
    """One file per Python version (pre-releases apart): bytecode and marshal's format belong
    to the interpreter."""
    return f"{sys.implementation.cache_tag}-{sys.hexversion:08x}"


def _stored() -> dict[str, CodeType]:
    global _codes
    if _codes is None:
        _codes = {}
        data = usercache.read_bytes(KIND, cache_key(), suffix=".marshal")
        if data is not None:
            try:
                loaded = marshal.loads(data)
            except (ValueError, EOFError, TypeError):
                loaded = None
            if isinstance(loaded, dict) and all(
                isinstance(k, str) and isinstance(v, CodeType) for k, v in loaded.items()
            ):
                _codes = loaded
    return _codes


def _exec(source: Any, globals: Any = None, locals: Any = None) -> None:
    """``exec`` as dataclasses calls it, with the compiled text looked up first (for
    convaudit's own classes: another thread's class made meanwhile is compiled as usual)."""
    if isinstance(source, str) and _ours(globals):
        code = _stored().get(source) or _new.get(source)
        if code is None:
            # exec(str) from dataclasses (no __future__ imports) compiles exactly like this
            code = compile(source, "<string>", "exec", dont_inherit=True)
            _new[source] = code
        source = code
    builtins.exec(source, globals, locals)


def _ours(namespace: Any) -> bool:
    """Whether dataclasses is writing methods for a class of a convaudit module."""
    return isinstance(namespace, dict) and str(namespace.get("__name__", "")).startswith(
        "convaudit."
    )


def _store() -> None:
    """Add what this process compiled to the stored code (a new file past MAX_ENTRIES)."""
    if not _new:
        return
    stored = _stored()
    merged = {**stored, **_new} if len(stored) + len(_new) <= MAX_ENTRIES else dict(_new)
    usercache.write_bytes(KIND, cache_key(), marshal.dumps(merged), suffix=".marshal")
    stored.update(_new)
    _new.clear()


def _dataclass(cls: Any = None, /, **options: Any) -> Any:
    if cls is None:
        return lambda c: _dataclass(c, **options)
    if usercache.cache_dir() is None:  # CONVAUDIT_NO_CACHE: dataclasses exactly as shipped
        return _dataclasses.dataclass(cls, **options)
    # dataclasses calls exec by its global name: for this one call, that name is ours
    _dataclasses.exec = _exec  # type: ignore[attr-defined]
    try:
        made = _dataclasses.dataclass(cls, **options)
    finally:
        _dataclasses.__dict__.pop("exec", None)
    _store()
    return made


if TYPE_CHECKING:  # type checkers see the standard decorator (and its dataclass semantics)
    from dataclasses import dataclass as dataclass
else:
    dataclass = _dataclass
