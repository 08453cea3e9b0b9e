"""The public names of ``convaudit`` stay what the README says, whatever was imported before."""

from __future__ import annotations

import subprocess
import sys

import convaudit


def test_fix_stays_the_function_after_fix_modules_are_imported() -> None:
    # A fresh interpreter: importing a module of the convaudit.fix package used to rebind the
    # package over the function, so `from convaudit import fix; fix(...)` called a module.
    code = (
        "import convaudit.fix.stages, convaudit.fix.pipeline\n"
        "import convaudit, convaudit.api\n"
        "from convaudit import fix\n"
        "assert fix is convaudit.api.fix and convaudit.fix is convaudit.api.fix, fix\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_every_exported_name_is_there() -> None:
    for name in convaudit.__all__:
        assert getattr(convaudit, name) is not None, name
    assert callable(convaudit.fix) and callable(convaudit.scan)
