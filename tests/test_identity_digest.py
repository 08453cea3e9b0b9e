"""identity.sha256_hex is hashlib's SHA-256 (the fingerprints of every baseline file depend on
it), whether it comes from CPython's own module or from hashlib."""

from __future__ import annotations

import hashlib
import importlib

import pytest

from convaudit import identity

SAMPLES = [
    b"",
    b"abc",
    "CA101\x1fmodèle.onnx\x1fmain\x1fconv\x1fConv".encode(),
    bytes(range(256)) * 9,
]


@pytest.mark.parametrize("data", SAMPLES, ids=range(len(SAMPLES)))
def test_the_digest_is_hashlibs(data: bytes) -> None:
    assert identity.sha256_hex(data) == hashlib.sha256(data).hexdigest()


def test_without_cpythons_module_hashlib_gives_the_same_digest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.import_module

    def no_builtin(name: str, package: str | None = None) -> object:
        if name in ("_sha2", "_sha256"):
            raise ImportError(name)
        return real(name, package)

    identity._sha256.cache_clear()
    monkeypatch.setattr(importlib, "import_module", no_builtin)
    try:
        assert identity._sha256() is hashlib.sha256
        assert identity.sha256_hex(b"abc") == hashlib.sha256(b"abc").hexdigest()
    finally:
        identity._sha256.cache_clear()


def test_the_rfc_6234_test_vector() -> None:
    assert identity.sha256_hex(b"abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
