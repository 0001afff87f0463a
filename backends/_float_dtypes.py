"""Array-API dtype helpers for libraries whose namespace we write ourselves (Paddle, TF)."""

import math

_FLOAT_BITS = {"float16": 16, "bfloat16": 16, "float32": 32, "float64": 64}
_INTEGRAL = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")


_NAMES: dict = {}
# Paddle's legacy-IR VarType names (a static program under paddle.pir_utils.OldIrGuard)
_LEGACY = {"fp16": "float16", "bf16": "bfloat16", "fp32": "float32", "fp64": "float64"}


def dtype_name(dtype):
    """``paddle.float32`` -> ``"float32"``; ``tf.float32`` -> ``"float32"``; Paddle's legacy-IR
    ``VarType.FP64`` (named "FP64") -> ``"float64"``.

    >>> class LegacyVarType:
    ...     name = "FP64"
    >>> dtype_name(LegacyVarType())
    'float64'
    """
    # keyed with the dtype's type first: a dict probe may compare dtypes of two libraries, which
    # some refuse with a warning (array-api-strict against NumPy); tuples compare the types first
    key = (type(dtype), dtype)
    try:
        return _NAMES[key]
    except KeyError:
        name = _NAMES[key] = _name_of(dtype)
        return name
    except TypeError:  # an unhashable dtype object
        return _name_of(dtype)


def _name_of(dtype) -> str:
    name = str(getattr(dtype, "name", dtype)).rsplit(".", 1)[-1].lower()
    return _LEGACY.get(name, name)


def isdtype(dtype, kind):
    """The array-API ``isdtype`` for the kinds the frontend asks about."""
    if isinstance(kind, tuple):
        return any(isdtype(dtype, k) for k in kind)
    name = dtype_name(dtype)
    if kind == "real floating":
        return name in _FLOAT_BITS
    if kind == "integral":
        return name in _INTEGRAL
    if kind == "bool":
        return name == "bool"
    if kind == "complex floating":
        return name.startswith("complex")
    return dtype == kind


def float_result_type(by_name, *dtypes):
    """Promote floating dtypes by the array-API table: the widest wins, float16+bfloat16 -> float32."""
    names = {dtype_name(d) for d in dtypes}
    if not names <= set(_FLOAT_BITS):
        raise TypeError(f"cannot promote {sorted(names)}: only floating dtypes are promoted here")
    if {"float16", "bfloat16"} <= names:
        names.add("float32")
    widest = max(names, key=lambda n: (_FLOAT_BITS[n], n != "bfloat16"))
    return by_name[widest]


_FORMATS = {"float16": (11, -24, 65520.0), "bfloat16": (8, -133, 2.0**128), "float32": (24, -149, 2.0**128)}


def round_to(value: float, name: str) -> float:
    """``value`` rounded once, to nearest-even, to float16, bfloat16 or float32 (overflow to inf).

    Libraries convert a double to a half dtype through float32 (TF's cast, ml_dtypes), rounding
    twice: 1 + 2**-8 + 2**-30 becomes the bfloat16 midpoint 1 + 2**-8 and then 1.0, where one
    rounding gives 1 + 2**-7. The value returned here is exact in ``name``'s format.

    >>> round_to(1.0 + 2.0**-8 + 2.0**-30, "bfloat16"), round_to(1e39, "bfloat16"), round_to(2.0**-140, "bfloat16")
    (1.0078125, inf, 0.0)
    """
    if not math.isfinite(value) or value == 0.0:
        return value
    digits, lowest, top = _FORMATS[name]  # significand bits, smallest exponent of a quantum, overflow
    quantum = max(math.frexp(value)[1] - digits, lowest)
    rounded = math.copysign(round(value / 2.0**quantum) * 2.0**quantum, value)  # half-to-even; exact scaling
    return math.copysign(math.inf, value) if abs(rounded) >= top else rounded


_HALF = ("float16", "bfloat16")
_FLOAT32_MAX = 3.4028234663852886e38


def once_rounded(value, name: str):
    """``value`` as a library's own double -> ``name`` conversion must receive it for the result
    to be rounded once: float16 and bfloat16 values rounded here (TF's cast, ml_dtypes and Paddle
    go through float32: twice), float32 values past float32's range too (to inf: C's double ->
    float conversion is undefined there); any other value as it is.

    >>> once_rounded(1.0 + 2.0**-8 + 2.0**-30, "bfloat16"), once_rounded(1e39, "float32"), once_rounded(0.1, "float32")
    (1.0078125, inf, 0.1)
    """
    if name in _HALF or (name == "float32" and not abs(value) <= _FLOAT32_MAX):
        return round_to(float(value), name)
    return value
