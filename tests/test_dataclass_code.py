"""dataclass_code.dataclass makes the classes dataclasses.dataclass makes, whether the methods'
code is compiled or read back from the user cache; anything wrong with the cache means compiling
as usual. The standard decorator is the oracle."""

from __future__ import annotations

import dataclasses
import inspect
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from convaudit import dataclass_code, usercache

MODULE = "convaudit._dataclass_code_probe"  # only convaudit's classes use the cache


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A process that has read nothing from the cache yet, with a convaudit module to define in."""
    monkeypatch.setattr(dataclass_code, "_codes", None)
    monkeypatch.setattr(dataclass_code, "_new", {})
    monkeypatch.setitem(sys.modules, MODULE, types.ModuleType(MODULE))
    yield


def _record(decorator: Callable[..., Any]) -> type:
    """The same class body each call, made by ``decorator``."""

    class Probe:
        name: str
        shape: tuple[int, ...] | None = None
        tags: list[str] = dataclasses.field(default_factory=list, hash=False)
        note: str = dataclasses.field(default="", compare=False, repr=False)

    Probe.__module__ = MODULE
    made: type = decorator(frozen=True, kw_only=True)(Probe)
    return made


def _behaviour(cls: type) -> list[Any]:
    """What a user of the record can observe."""
    a = cls(name="conv", shape=(1, 3), tags=["x"], note="n")
    b = cls(name="conv", shape=(1, 3), tags=["x"], note="other")
    seen: list[Any] = [
        repr(a),
        a == b,
        a != cls(name="conv"),
        hash(cls(name="c", shape=(2,))) == hash(cls(name="c", shape=(2,))),
        str(inspect.signature(cls)),
        [(f.name, f.compare, f.repr, f.kw_only) for f in dataclasses.fields(cls)],
        repr(dataclasses.replace(a, shape=None)),
        cls(name="d").tags is not cls(name="d").tags,
        cls.__match_args__,
    ]
    for attempt in (lambda: setattr(a, "name", "y"), lambda: delattr(a, "name")):
        with pytest.raises(dataclasses.FrozenInstanceError) as frozen:
            attempt()
        seen.append(str(frozen.value))
    with pytest.raises(TypeError) as positional:
        cls("conv")
    seen.append(str(positional.value))
    return seen


def _no_compiling(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("compiled although the code is stored")

    monkeypatch.setattr(dataclass_code, "compile", refuse, raising=False)


def test_compiled_and_stored_code_make_the_standard_class(
    fresh: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    oracle = _behaviour(_record(dataclasses.dataclass))
    assert _behaviour(_record(dataclass_code.dataclass)) == oracle  # compiles, stores
    monkeypatch.setattr(dataclass_code, "_codes", None)  # as a new process would start
    _no_compiling(monkeypatch)
    assert _behaviour(_record(dataclass_code.dataclass)) == oracle


def test_the_stored_file_holds_each_method_once(fresh: None) -> None:
    _record(dataclass_code.dataclass)
    _record(dataclass_code.dataclass)
    stored = usercache.read_bytes(
        dataclass_code.KIND, dataclass_code.cache_key(), suffix=".marshal"
    )
    assert stored is not None
    import marshal

    texts = marshal.loads(stored)
    # __init__, __repr__, __eq__, __hash__, __setattr__, __delattr__
    assert len(texts) == 6
    assert all("def __create_fn__" in t for t in texts)


@pytest.mark.parametrize(
    "content",
    [b"", b"not marshal", b"\xe9" * 40, b"N", None],
    ids=["empty", "text", "bytes", "none", "marshalled-list"],
)
def test_a_bad_cache_file_means_compiling_as_usual(fresh: None, content: bytes | None) -> None:
    import marshal

    data = marshal.dumps([1, 2]) if content is None else content
    usercache.write_bytes(dataclass_code.KIND, dataclass_code.cache_key(), data, suffix=".marshal")
    oracle = _behaviour(_record(dataclasses.dataclass))
    assert _behaviour(_record(dataclass_code.dataclass)) == oracle


def test_with_caching_off_nothing_is_stored(
    fresh: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CONVAUDIT_NO_CACHE", "1")
    oracle = _behaviour(_record(dataclasses.dataclass))
    assert _behaviour(_record(dataclass_code.dataclass)) == oracle
    monkeypatch.delenv("CONVAUDIT_NO_CACHE")
    assert (
        usercache.read_bytes(dataclass_code.KIND, dataclass_code.cache_key(), suffix=".marshal")
        is None
    )


def test_other_modules_classes_are_compiled_and_not_stored(fresh: None) -> None:
    @dataclass_code.dataclass(frozen=True)
    class Elsewhere:  # this test module's, not convaudit's
        x: int

    assert Elsewhere(x=1) == Elsewhere(x=1)
    assert dataclass_code._new == {}
    assert "exec" not in vars(dataclasses)  # the standard exec again once the class is made
