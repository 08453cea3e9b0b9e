"""Which files a scan reads: models named outright, and every ``*.onnx`` below a folder or glob,
leaving out hidden folders, virtual environments, ``--exclude`` patterns and git-ignored files."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from convaudit.config.globs import glob_matches
from convaudit.errors import ModelLoadError
from convaudit.records import Skipped
from convaudit.safe_io import shown

# Folders no one keeps their own models in; ruff and black skip the same ones. Hidden folders
# (.git, .venv, .tox, ...) and any folder holding a pyvenv.cfg (a venv under any name) are
# skipped too.
SKIPPED_FOLDERS = frozenset({"node_modules", "site-packages", "__pypackages__", "__pycache__"})


__all__ = ["SKIPPED_FOLDERS", "Discovery", "Skipped", "discover", "source_root"]


@dataclass(frozen=True, kw_only=True)
class Discovery:
    """The models to scan (sorted, unique) and what was left out on the way."""

    models: tuple[str, ...]
    skipped: tuple[Skipped, ...] = ()


@dataclass(frozen=True)
class _Patterns:
    """``--exclude`` globs and the folders a pattern with a '/' may start at: the config's
    folder (or the current one) and the folder being scanned."""

    patterns: Sequence[str]
    bases: tuple[str | None, ...]

    def match(self, path: str) -> str | None:
        """The first pattern matching ``path``, the way config model globs match (.gitignore)."""
        for pattern in self.patterns:
            if any(glob_matches(path, pattern, base) for base in self.bases):
                return pattern
        return None

    def match_or_parent(self, path: str) -> str | None:
        """A pattern matching ``path`` or a folder it lies in (a glob's match is not pruned)."""
        p = Path(path)
        for candidate in (p, *p.parents):
            if str(candidate) in ("", ".", "/", candidate.anchor):
                break
            pattern = self.match(str(candidate))
            if pattern is not None:
                return pattern
        return None


def _folder_reason(folder: str, name: str, patterns: _Patterns | None) -> str | None:
    if name.startswith(".") and name not in (".", ".."):
        return "hidden folder"
    if name in SKIPPED_FOLDERS:
        return f"{name} folder"
    if os.path.isfile(os.path.join(folder, "pyvenv.cfg")):
        return "virtual environment"
    pattern = None if patterns is None else patterns.match(folder)
    return None if pattern is None else f"excluded by {shown(pattern)}"


def _walk(top: str, patterns: _Patterns, skipped: list[Skipped]) -> list[str]:
    found: list[str] = []
    for folder, dirs, files in os.walk(top, followlinks=False):
        kept = []
        for d in sorted(dirs):
            sub = os.path.join(folder, d)
            reason = _folder_reason(sub, d, patterns)
            if reason is None:
                kept.append(d)
            else:
                skipped.append(Skipped(path=sub, reason=reason))
        dirs[:] = kept  # os.walk descends only into what is left here
        for f in sorted(files):
            if not f.endswith(".onnx"):
                continue
            path = os.path.join(folder, f)
            pattern = patterns.match(path)
            if pattern is not None:
                skipped.append(Skipped(path=path, reason=f"excluded by {shown(pattern)}"))
            elif os.path.isfile(path):
                found.append(path)
    return found


def _git_ignored(top: str, paths: list[str]) -> set[str]:
    """The paths git ignores (tracked files never are), or none outside a git work tree."""
    if not paths:
        return set()
    import subprocess  # only a folder scan asks git: a scan of named files never imports it

    try:
        done = subprocess.run(
            ["git", "-C", top, "check-ignore", "-z", "--stdin"],
            input="\0".join(os.path.relpath(p, top) for p in paths).encode(),
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return set()  # no git here: nothing is ignored
    if done.returncode not in (0, 1):  # 128: not a work tree
        return set()
    names = [p for p in done.stdout.decode().split("\0") if p]
    ignored = {os.path.normpath(os.path.join(top, p)) for p in names}
    return {p for p in paths if os.path.normpath(p) in ignored}


def _hidden_or_venv(path: str) -> str | None:
    """Why a glob match lies in a folder a folder scan skips, if it does."""
    parent = Path(path).parent
    for part in [*reversed(parent.parents), parent]:
        if part.name and _folder_reason(str(part), part.name, None) is not None:
            return _folder_reason(str(part), part.name, None)
    return None


def source_root(start: str) -> str:
    """The git work tree holding ``start`` (the nearest folder with a ``.git`` folder or file,
    as a worktree or submodule has), else ``start``: where SARIF paths start (%SRCROOT%)."""
    here = Path(start).resolve()
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return str(folder)
    return str(here)


def discover(
    paths: Iterable[str | os.PathLike[str]],
    *,
    exclude: Sequence[str] = (),
    gitignore: bool = True,
    root: str | None = None,
) -> Discovery:
    """Files, folders (every ``*.onnx`` below) and globs -> the models to scan.

    A file named outright is always scanned. Below a folder or through a glob, hidden folders,
    virtual environments, ``exclude`` patterns and (inside a git work tree) git-ignored files are
    left out. ``exclude`` patterns match like the config's model globs (``convaudit.config.globs``):
    without a '/' a file or folder name at any depth; with one, a path from ``root`` (the config
    file's folder; the current folder when None) or from the folder being scanned. A path that
    names nothing, a folder without models and a glob matching no file are errors.
    """
    found: list[str] = []
    skipped: list[Skipped] = []
    for raw in paths:
        text = os.fspath(raw)
        p = Path(text)
        if p.is_dir():
            before = len(skipped)
            below = _walk(text, _Patterns(exclude, (root, text)), skipped)
            ignored = _git_ignored(text, below) if gitignore else set()
            skipped.extend(Skipped(path=m, reason="ignored by git") for m in sorted(ignored))
            models = sorted(m for m in below if m not in ignored)
            if not models and any(s.path.endswith(".onnx") for s in skipped[before:]):
                raise ModelLoadError(
                    "every .onnx model below it was left out (excluded or ignored by git): "
                    "name the files, or see what was skipped with --verbose",
                    path=text,
                )
            if not models:
                raise ModelLoadError("directory contains no .onnx models", path=text)
            found.extend(models)
        elif p.exists():
            found.append(text)
        elif glob.has_magic(text):
            matches = []
            for m in sorted(glob.glob(text, recursive=True)):
                if not Path(m).is_file():
                    continue
                why = _hidden_or_venv(m)
                pattern = _Patterns(exclude, (root,)).match_or_parent(m)
                if why is None and pattern is not None:
                    why = f"excluded by {shown(pattern)}"
                if why is None:
                    matches.append(m)
                else:
                    skipped.append(Skipped(path=m, reason=why))
            if not matches:
                raise ModelLoadError("pattern matches no files", path=text)
            found.extend(matches)
        else:
            raise ModelLoadError("no such file or directory", path=text)
    return Discovery(models=tuple(sorted(dict.fromkeys(found))), skipped=tuple(skipped))
