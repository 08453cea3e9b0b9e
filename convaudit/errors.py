"""Error types: each problem with the user's input is a ConvauditError, printed in one line."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from convaudit.lazyre import LazyPattern

# The backstop of the one-line contract: whatever a message echoes (a 10 MB rule id, a YAML
# parser's multi-line context), the line printed stays one line of bounded length. Messages cut
# echoed text themselves first (safe_io.shown); this only catches what slips through.
MESSAGE_LIMIT = 1000
_BREAKS = LazyPattern(r"[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]+\s*")


def one_line(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """``text`` with line breaks turned to spaces, cut to ``limit`` characters with an ellipsis."""
    flat = _BREAKS.sub(" ", text[: limit * 2]).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def nearest(word: str, candidates: Iterable[str], *, quote: bool = False) -> str:
    """`` (did you mean X?)`` for the closest candidate, or an empty string.

    The one did-you-mean of the project; ``quote`` prints the candidate as a repr ('select'),
    as messages that quote the user's word do.
    """
    if len(word) > 200:  # no name is that long, and difflib on megabytes would hang
        return ""
    import difflib  # only on an error path: a scan that goes well never needs it

    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    if not close:
        return ""
    return f" (did you mean {close[0]!r}?)" if quote else f" (did you mean {close[0]}?)"


class ConvauditError(Exception):
    """Base class: bad input or usage. The CLI prints ``str(error)`` on one line and exits 2."""

    def __init__(self, message: str, *, path: str | Path | None = None) -> None:
        self.path = one_line(str(path)) if path is not None else None
        self.message = one_line(message)
        super().__init__(f"{self.path}: {self.message}" if self.path else self.message)

    def at(self, path: str | Path) -> ConvauditError:
        """The same error located at ``path`` (its type and fields kept, for callers to act on)."""
        located = type(self).__new__(type(self))
        located.__dict__.update(self.__dict__)
        located.path = str(path)
        Exception.__init__(located, f"{located.path}: {self.message}")
        return located


class ModelLoadError(ConvauditError):
    """The file is missing, empty, truncated, not ONNX, or its external data cannot be read."""


class ShapeError(ConvauditError):
    """A shape needed for a cost cannot be resolved (dynamic dims left unset) or overflows."""


class InputShapeError(ShapeError):
    """Given input shapes do not fit the model (an unknown input name, a wrong rank).

    The model layer raises it without knowing where the shapes came from; the layer that read
    them (flags or a config file) turns it into a ConfigError.
    """


class RuleFileError(ConvauditError):
    """A YAML rule file is malformed or refers to unknown facts, ops or params."""


class ConfigError(ConvauditError):
    """The configuration (pyproject.toml / convaudit.toml / flags) is invalid."""


class FixError(ConvauditError):
    """A rewrite was refused or cannot be performed."""


class UnknownInputError(InputShapeError):
    """An input shape names an input the model lacks; the caller says where the shape came from."""

    def __init__(self, name: str, inputs: Iterable[str], *, path: str | Path | None = None) -> None:
        self.input_name = name
        self.inputs = tuple(sorted(inputs))
        listed = ", ".join(self.inputs) or "(none)"
        self.detail = f"names unknown input {name!r}; the model's inputs are {listed}"
        super().__init__(f"--input-shape {self.detail}", path=path)


class UnknownDimError(InputShapeError):
    """A dim value names a symbol the model does not have; the caller says where it came from."""

    def __init__(
        self, name: str, symbols: Iterable[str], *, path: str | Path | None = None
    ) -> None:
        self.symbol = name
        self.symbols = tuple(sorted(symbols))
        # A case slip (Batch for batch) is the likeliest, and difflib may rank another first.
        same = [s for s in self.symbols if s.lower() == name.lower()]
        close = nearest(name, self.symbols, quote=True)
        self.hint = f" (did you mean {same[0]!r}?)" if same else close
        listed = ", ".join(self.symbols[:20]) + (", ..." if len(self.symbols) > 20 else "")
        self.detail = f"has no symbolic dim {name!r}{self.hint}; its symbols are {listed}"
        super().__init__(f"--dim {name}: the model {self.detail}", path=path)


class ConfigWarning(UserWarning):
    """A config entry that changes nothing (e.g. a model glob matching no scanned model)."""
