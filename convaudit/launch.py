"""The console script: a plain ``convaudit scan ...`` runs without importing typer.

Importing typer (its vendored click, subprocess, platform, shutil, datetime, gettext...) was a
fifth of a small model's whole scan once ``import onnx`` left the scan path. A scan is what CI
runs on every push, so its argv is read here when every token is one of the simple forms below,
and ``command.run_scan`` runs exactly as ``cli.scan`` would call it. Anything else (help, another
command, a typo, a value that needs click's checks or its error message; on Windows, where click
expands argv itself, or for a shell-completion request) goes to ``cli.app`` unread, so typer
still gives every message and every other behaviour.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

# option -> (run_scan parameter, kind); the same options as cli.scan, checked against its click
# command in tests/test_launch.py. Kinds: one value (str, int, path), a repeatable value (list),
# a flag setting True or False.
SCAN_OPTIONS: dict[str, tuple[str, str]] = {
    "--format": ("fmt", "str"),
    "-f": ("fmt", "str"),
    "--output": ("output", "path"),
    "-o": ("output", "path"),
    "--input-shape": ("input_shape", "list"),
    "--dim": ("dim", "list"),
    "--default-dim": ("default_dim", "int"),
    "--report": ("report", "list"),
    "--jobs": ("jobs", "int"),
    "-j": ("jobs", "int"),
    "--shard": ("shard", "str"),
    "--max-macs": ("max_macs", "str"),
    "--max-params": ("max_params", "str"),
    "--config": ("config_file", "str"),
    "--rules-dir": ("rules_dir", "list"),
    "--select": ("select", "list"),
    "--ignore": ("ignore", "list"),
    "--fail-on": ("fail_on", "str"),
    "--baseline": ("baseline", "str"),
    "--weights": ("weights", "true"),
    "--exclude": ("exclude", "list"),
    "--extend-exclude": ("extend_exclude", "list"),
    "--respect-gitignore": ("respect_gitignore", "true"),
    "--no-respect-gitignore": ("respect_gitignore", "false"),
    "--verbose": ("verbose", "true"),
    "-v": ("verbose", "true"),
    "--quiet": ("quiet", "true"),
    "-q": ("quiet", "true"),
    "--statistics": ("statistics", "true"),
    "--top": ("top", "int"),
    "--no-cache": ("no_cache", "true"),
}


def scan_options(argv: list[str]) -> dict[str, Any] | None:
    """``run_scan``'s arguments for ``argv`` = ["scan", ...], or None when argv is anything
    else or holds a token whose reading (or refusal) is click's to decide."""
    if not argv or argv[0] != "scan":
        return None
    options: dict[str, Any] = {}
    paths: list[str] = []
    rest = argv[1:]
    i = 0
    while i < len(rest):
        token = rest[i]
        i += 1
        if token == "-" or not token.startswith("-"):
            paths.append(token)
            continue
        name, eq, value = token.partition("=") if token.startswith("--") else (token, "", "")
        spec = SCAN_OPTIONS.get(name)
        if spec is None:  # unknown, --help, --, a short-option cluster, -fjson
            return None
        param, kind = spec
        if kind in ("true", "false"):
            if eq:  # --weights=yes: click's message
                return None
            options[param] = kind == "true"
            continue
        if not eq:
            if i == len(rest):  # a missing value: click's message
                return None
            value = rest[i]
            i += 1
        read = _value(kind, value)
        if read is None:
            return None
        if kind == "list":
            options.setdefault(param, []).append(read)
        else:
            options[param] = read  # click: the last one given wins
    if not paths:  # PATHS is required: click's message
        return None
    return {"paths": paths, **options}


def _value(kind: str, text: str) -> Any:
    """The option's value as typer would pass it, or None to leave the token to click."""
    if not text or text.startswith("-"):  # click would take it; its meaning is click's call
        return None
    if kind == "int":
        # click's int() also takes " 2", "+2", "2_0" and other digits: those go to click
        return int(text) if text.isascii() and text.isdigit() else None
    if kind == "path":
        # typer's Path type refuses a path that exists but cannot be read
        if os.path.exists(text) and not os.access(text, os.R_OK):
            return None
        return Path(text)
    return text


def _typer_only() -> bool:
    """Whether click would do more with this process than parse argv: expand globs, ``~`` and
    variables in it (Windows), or answer a shell-completion request (its environment variable,
    named after the program as click names it)."""
    name = os.path.basename(sys.argv[0]) or "convaudit"
    complete = "_" + name.replace("-", "_").replace(".", "_").upper() + "_COMPLETE"
    return os.name == "nt" or bool(os.environ.get(complete))


def main() -> None:
    """``convaudit``: the scan without typer when it can, cli.app otherwise."""
    options = None if _typer_only() else scan_options(sys.argv[1:])
    if options is None:
        from convaudit.cli import app

        app()
        return
    from convaudit.command import guarded, run_scan

    try:
        code = guarded(lambda: run_scan(**options))
    except KeyboardInterrupt:  # as typer: exit 130 (128 + SIGINT), nothing printed
        sys.exit(130)
    sys.exit(code)
