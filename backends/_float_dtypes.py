"""Array-API dtype helpers for libraries whose namespace we write ourselves (Paddle, TF)."""

_FLOAT_BITS = {"float16": 16, "bfloat16": 16, "float32": 32, "float64": 64}
_INTEGRAL = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")


_NAMES: dict = {}


def dtype_name(dtype):
    """``paddle.float32`` -> ``"float32"``; ``tf.float32`` -> ``"float32"``."""
    # keyed with the dtype's type first: a dict probe may compare dtypes of two libraries, which
    # some refuse with a warning (array-api-strict against NumPy); tuples compare the types first
    key = (type(dtype), dtype)
    try:
        return _NAMES[key]
    except KeyError:
        name = _NAMES[key] = str(getattr(dtype, "name", dtype)).rsplit(".", 1)[-1].lower()
        return name
    except TypeError:  # an unhashable dtype object
        return str(getattr(dtype, "name", dtype)).rsplit(".", 1)[-1].lower()


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
