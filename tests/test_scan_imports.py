"""A scan imports what it uses and nothing else (issue 12): no YAML parser once the rule pack is
cached, no TOML parser without a config that names convaudit, and none of the modules of other
commands or other report formats."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "sample_models" / "textbook_5x5.onnx"

# Modules a JSON scan of one model has no use for: each is some other path's dependency.
UNUSED = (
    "yaml",  # rule files: parsed once, then read from the user cache
    "tomllib",  # no config file names convaudit above the model
    "networkx",
    "jsonschema",
    "onnxruntime",
    "onnx.reference",
    "rich",
    "importlib.resources",  # the built-in rules are found beside the package's files
    "tempfile",  # only a cache write needs it
    "subprocess",  # only a folder scan asks git what it ignores
    "typer",  # a plain scan's options are read without it (convaudit.launch)
    "_hashlib",  # OpenSSL: the few digests a scan takes come from CPython's own SHA-256
    # (convaudit.fix itself is imported by convaudit/__init__ so the name stays the function)
    "convaudit.fix.pipeline",
    "convaudit.fix.factorize",
    "convaudit.fix.rewrite",
    "convaudit.diff",
    "convaudit.baseline",
    "convaudit.weights",
    "convaudit.rules.yaml_lines",
    "convaudit.rules.validate",  # the validated rules are read back (rules.compiled)
    "convaudit.rules.explain",
    "convaudit.rules.json_schema",
    "convaudit.report.sarif",
    "convaudit.report.html",
    "convaudit.report.junit",
    "convaudit.report.markdown",
    "convaudit.report.github",
    "convaudit.report.table",
    "convaudit.report.diff_report",
)


def _scan_modules(tmp_path: Path, pyproject: str = "[project]\nname = 'x'\n") -> list[str]:
    model = tmp_path / "project" / MODEL.name  # no pyproject.toml above it (the repo's has one)
    model.parent.mkdir(exist_ok=True)
    shutil.copy(MODEL, model)
    (tmp_path / "pyproject.toml").write_text(pyproject, encoding="utf-8")
    code = (
        "import sys\n"
        f"sys.argv = ['convaudit', 'scan', {str(model)!r}, '--format', 'json']\n"
        "from convaudit.launch import main\n"  # the console script
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {UNUSED!r} if m in sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert '"reports"' in done.stdout, done.stderr
    return done.stderr.strip().splitlines()[-1:]


def test_a_warm_json_scan_imports_nothing_it_does_not_use(tmp_path: Path) -> None:
    first = _scan_modules(tmp_path)  # fills the rule cache (this test's own XDG_CACHE_HOME)
    # a cold scan parses the rule files and fills the caches (writing imports tempfile; onnx,
    # imported to fill the schema table, brings importlib.resources and subprocess)
    assert first == [
        "['convaudit.rules.validate', 'convaudit.rules.yaml_lines', 'importlib.resources', "
        "'subprocess', 'tempfile', 'yaml']"
    ]
    assert _scan_modules(tmp_path) == ["[]"]


def test_a_warm_scan_with_a_config_imports_no_toml_parser(tmp_path: Path) -> None:
    config = "[project]\nname = 'x'\n[tool.convaudit]\nfail-on = 'never'\n"
    first = _scan_modules(tmp_path, config)  # parses the config and the rule files once
    assert first == [
        "['convaudit.rules.validate', 'convaudit.rules.yaml_lines', 'importlib.resources', "
        "'subprocess', 'tempfile', 'tomllib', 'yaml']"
    ]
    assert _scan_modules(tmp_path, config) == ["[]"]
