"""The conformance cases: TOML files in ``cases/``, one per source document, read as ``Case`` objects.

Each file names its ``source`` (a file in ``shared/seeds/``, or ``SPEC.md`` for our own cases,
``kind = "ours"``); each ``[[case]]`` quotes the sentence or example it checks, gives inputs
(literal, ``{fill, shape}``, ``{values, shape, dtype}``, ``{random, shape, seed}`` or
``{python = number}``), the call (dialects, function, kwargs) and the expectation
(``value`` with a tolerance, ``error``, ``shape``, ``warns``, ``formulas``; every case also
checks the exact reference and that all backends agree). Keys are checked against the schema
below: an unknown or mistyped key is an error naming the file and the case, so a typo cannot
silently turn a check off.

>>> cases = load_cases(); any(c.id == "paddle-F-logits-example" for c in cases)
True
"""

from __future__ import annotations

import fnmatch
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from bce_compat.conformance.calls import OPTION_KWARGS

# A case is written in canonical (torch) terms: the function, ``input``/``target``/``weight``/
# ``pos_weight`` and kwargs; ``calls.py`` maps it onto each dialect's own signature.
FUNCTIONS = ("binary_cross_entropy_with_logits", "binary_cross_entropy", "BCEWithLogitsLoss", "BCELoss",
             "sigmoid_focal_loss")
ARRAY_ARGS = ("input", "target", "weight", "pos_weight")
DEFAULT_DTYPES = ("float32", "float64")
DIALECTS = ("torch", "paddle", "keras", "tf", "optax")
DEFAULT_DIALECTS = ("torch", "paddle")  # for a file that names no ``dialects``
_GENERATORS = ("randn", "rand", "bernoulli", "sigmoid_randn")

# The schema: key -> the TOML types it may have.
_NUMBER, _LIST = (int, float), (list,)
FILE_KEYS = {"source": (str,), "kind": (str,), "function": (str,), "dtypes": _LIST,
             "default_dialect": (str,), "dialects": _LIST, "case": _LIST}
CASE_KEYS = {"id": (str,), "source": (str,), "kind": (str,), "quote": (str,), "function": (str,),
             "dialects": _LIST, "dtypes": _LIST, "inputs": (dict,), "kwargs": (dict,), "expect": (dict,),
             "advice": (str,), "eager_only": (bool,)}
REQUIRED_CASE_KEYS = ("id", "quote", "inputs")
EXPECT_KEYS = {
    "value": _NUMBER, "value_atol": _NUMBER, "value_rtol": _NUMBER,  # a documented number
    "values": _LIST,  # documented numbers, one per element (tolerance: value_atol/value_rtol)
    "error": (str,),  # the exception class name the call must raise
    "shape": _LIST, "doc_shape": _LIST,  # the result's shape; the shape the document claims
    "reduction": (str,),  # the reduction the result must have (after legacy arguments)
    "warns": (bool,), "finite": (bool,),
    "grad": (bool,), "grad_wrt": _LIST,  # check gradients (of these arguments only)
    "formulas": _LIST,  # other formulas the result must also match (reference.exact)
}
INPUT_KEYS = {"fill": _NUMBER, "shape": _LIST, "values": _LIST, "dtype": (str,), "random": (str,),
              "seed": (int,), "scale": _NUMBER, "python": _NUMBER}


@dataclass(frozen=True)
class Case:
    """One executable claim: inputs, call and expectation, with the sentence it comes from."""

    id: str
    file: str
    source: str
    kind: str  # "documented" (from a seed document) or "ours" (SPEC numerics)
    quote: str
    function: str
    dialects: tuple
    dtypes: tuple
    inputs: dict  # argument name -> spec (see module docstring)
    kwargs: dict
    expect: dict
    advice: str = ""
    eager_only: bool = False

    @property
    def logits(self) -> bool:
        """Whether ``input`` holds logits (the focal loss takes logits too)."""
        return self.function in ("binary_cross_entropy_with_logits", "BCEWithLogitsLoss", "sigmoid_focal_loss")

    @property
    def focal(self) -> bool:
        return self.function == "sigmoid_focal_loss"

    @property
    def reduction(self) -> str:
        """The reduction the result must have (after legacy arguments are applied)."""
        default = "none" if self.focal else "mean"  # torchvision's focal loss defaults to "none"
        return self.expect.get("reduction") or self.kwargs.get("reduction", default)

    @property
    def options(self) -> dict:
        """The options the exact reference applies (label smoothing, ignore_index, mean over an axis, focal)."""
        opts = {k: self.kwargs[k] for k in OPTION_KWARGS if k in self.kwargs}
        if self.focal:
            opts["focal"] = (float(self.kwargs.get("alpha", 0.25)), float(self.kwargs.get("gamma", 2.0)))
        return opts

    def shapes(self) -> dict:
        """Argument name -> shape (``None`` for a Python number)."""
        return {name: (None if isinstance(v, str) else tuple(np.shape(v)))
                for name, (v, _) in self.numpy_inputs("float64").items()}

    @property
    def error(self) -> str | None:
        return self.expect.get("error")

    def numpy_inputs(self, dtype: str) -> dict:
        """Argument name -> (float64 numpy values rounded to ``dtype``, dtype name) or ("python", number)."""
        return {name: _materialise(spec, dtype) for name, spec in self.inputs.items()}


def load_cases(patterns: Iterable[str] | None = None) -> list[Case]:
    """Every case from the packaged TOML files, optionally filtered by id/file glob patterns (or substrings)."""
    cases = []
    folder = resources.files("bce_compat.conformance").joinpath("cases")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            cases.extend(parse_file(entry.name, entry.read_text(encoding="utf-8")))
    ids = [c.id for c in cases]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise ValueError(f"duplicate case ids: {sorted(duplicates)}")
    return [c for c in cases if matches(c, patterns)] if patterns else cases


def matches(case: Case, patterns: Iterable[str]) -> bool:
    """True if any pattern (glob or substring) matches the case id, its file name or its kind."""
    for pattern in patterns:
        for text in (case.id, case.file, case.kind):
            if fnmatch.fnmatch(text, pattern) or pattern in text:
                return True
    return False


def parse_file(name: str, text: str) -> list[Case]:
    """The cases of one TOML file (``name`` is for error messages), validated against the schema.

    >>> case = 'id = "a"\\nquote = "q"\\ninputs = {input = [0.0], target = [1.0]}\\nexpect = {vale = 1.0}'
    >>> parse_file("x.toml", f'source = "s"\\nfunction = "binary_cross_entropy"\\n[[case]]\\n{case}')
    Traceback (most recent call last):
    ...
    ValueError: x.toml: case 'a': unknown key 'vale' in expect (known: value, value_atol, value_rtol, ...)
    """
    data = tomllib.loads(text)
    _check_keys(data, FILE_KEYS, f"{name}: file", "the file")
    if "source" not in data:
        raise ValueError(f"{name}: the file has no 'source'")
    cases = []
    for raw in data.get("case", []):
        where = f"{name}: case {raw.get('id')!r}"
        _check_case(raw, where)
        function = raw.get("function", data.get("function"))
        if function not in FUNCTIONS:
            raise ValueError(f"{where}: function must be one of {FUNCTIONS}, got {function!r}")
        default_dialects = _file_dialects(name, data)
        cases.append(
            Case(
                id=raw["id"],
                file=name,
                source=raw.get("source", data["source"]),
                kind=raw.get("kind", data.get("kind", "documented")),
                quote=raw["quote"],
                function=function,
                dialects=_check_dialects(where, raw.get("dialects", default_dialects)),
                dtypes=tuple(raw.get("dtypes", data.get("dtypes", DEFAULT_DTYPES))),
                inputs=dict(raw["inputs"]),
                kwargs=dict(raw.get("kwargs", {})),
                expect=dict(raw.get("expect", {})),
                advice=raw.get("advice", ""),
                eager_only=bool(raw.get("eager_only", False)),
            )
        )
    return cases


def _file_dialects(name: str, data: dict[str, Any]) -> tuple[str, ...]:
    """The dialects a file's cases run on by default: its ``dialects``, its ``default_dialect`` first."""
    dialects = _check_dialects(f"{name}: file", data.get("dialects", DEFAULT_DIALECTS))
    first = data.get("default_dialect")
    return dialects if first is None else (first, *[d for d in dialects if d != first])


def _check_dialects(where: str, dialects: Iterable[str]) -> tuple[str, ...]:
    unknown = [d for d in dialects if d not in DIALECTS]
    if unknown:
        raise ValueError(f"{where}: unknown dialect {unknown[0]!r} (known: {', '.join(DIALECTS)})")
    return tuple(dialects)


def _check_case(raw: dict[str, Any], where: str) -> None:
    """Raise ValueError (naming ``where``) for a key outside the schema, a wrong type, or a missing key."""
    _check_keys(raw, CASE_KEYS, where, "the case")
    for key in REQUIRED_CASE_KEYS:
        if key not in raw:
            raise ValueError(f"{where}: missing {key!r}")
    _check_keys(raw.get("expect", {}), EXPECT_KEYS, where, "expect")
    for arg, spec in raw["inputs"].items():
        if arg not in ARRAY_ARGS:
            raise ValueError(f"{where}: unknown input {arg!r} (known: {', '.join(ARRAY_ARGS)})")
        if isinstance(spec, dict):
            _check_keys(spec, INPUT_KEYS, where, f"input {arg!r}")


def _check_keys(table: dict[str, Any], schema: Mapping[str, tuple[type, ...]], where: str, what: str) -> None:
    for key, value in table.items():
        if key not in schema:
            known = ", ".join(list(schema)[:3]) + (", ..." if len(schema) > 3 else "")
            raise ValueError(f"{where}: unknown key {key!r} in {what} (known: {known})")
        types = schema[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            expected = " or ".join(t.__name__ for t in types)
            raise ValueError(f"{where}: {what} key {key!r} must be {expected}, got {value!r}")


def _materialise(spec: Any, dtype: str) -> tuple[Any, Any]:
    """One input as (numpy values, dtype name); float values are rounded to ``dtype`` and held as float64."""
    if isinstance(spec, dict) and "python" in spec:
        return ("python", float(spec["python"]))
    own_dtype = spec.get("dtype") if isinstance(spec, dict) else None
    if isinstance(spec, list):
        values = np.asarray(spec, dtype=np.float64)
    elif "fill" in spec:
        values = np.full(spec["shape"], spec["fill"], dtype=np.float64)
    elif "values" in spec:
        values = np.asarray(spec["values"])
        if "shape" in spec:
            values = values.reshape(spec["shape"])
    elif "random" in spec:
        values = _generate(spec["random"], spec["shape"], spec["seed"]) * spec.get("scale", 1.0)
    else:
        raise ValueError(f"input spec not understood: {spec!r}")
    if own_dtype is not None:  # integer / bool labels keep their own dtype
        return (values.astype(own_dtype), own_dtype)
    return (round_to(values.astype(np.float64), dtype), dtype)


def _generate(kind: str, shape: list[int], seed: int) -> np.ndarray:
    """Seeded stand-ins for torch.randn / torch.rand / torch.empty(...).random_(2)."""
    rng = np.random.default_rng(seed)
    if kind == "randn":
        return rng.standard_normal(shape)
    if kind == "rand":
        return rng.random(shape)
    if kind == "bernoulli":
        return rng.integers(0, 2, shape).astype(np.float64)
    if kind == "sigmoid_randn":
        return 1.0 / (1.0 + np.exp(-rng.standard_normal(shape)))
    raise ValueError(f"random generator must be one of {_GENERATORS}, got {kind!r}")


def round_to(values: np.ndarray, dtype: str) -> np.ndarray:
    """``values`` rounded to ``dtype`` and returned as float64 (the exact inputs the backends see)."""
    if dtype == "bfloat16":
        import ml_dtypes

        return values.astype(ml_dtypes.bfloat16).astype(np.float64)
    return values.astype(dtype).astype(np.float64)
