"""Convert one call's arguments from torch's signature to Paddle's or back, node by node.

Each argument keeps its own node (comments and whitespace included) and its place in the call, so
arguments are still evaluated in the user's order; only keywords are renamed or added, legacy
``size_average``/``reduce`` become the equivalent ``reduction``, and Paddle's ``name`` is dropped.

>>> import libcst as cst
>>> from bce_compat.migrate._table import API_BY_NAME
>>> call = cst.parse_expression("f(x, y, w, False)")
>>> src = API_BY_NAME["torch.nn.functional.binary_cross_entropy_with_logits"]
>>> dst = API_BY_NAME["paddle.nn.functional.binary_cross_entropy_with_logits"]
>>> cst.Module([]).code_for_node(call.with_changes(args=convert_args(call.args, src, dst)))
"f(x, y, w, reduction='sum')"
"""

from __future__ import annotations

import ast

import libcst as cst

from bce_compat.migrate._table import Api, canonical, params_by_canonical

REDUCTIONS = ("none", "mean", "sum")
_LITERALS = {"True": True, "False": False, "None": None}
_TIGHT_EQUAL = cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace(""))


class Unconvertible(Exception):
    """The call cannot be converted safely; the message says why (shown to the user)."""


def bind(args, api: Api) -> list[tuple[str, cst.Arg]]:
    """``[(parameter name, arg node)]`` in the call's order, as Python would bind them."""
    bound, seen = [], set()
    for position, arg in enumerate(args):
        if arg.star:
            code = cst.Module([]).code_for_node(arg.value)
            raise Unconvertible(f"`{arg.star}{code}` cannot be seen into, so the arguments it holds are unknown")
        if arg.keyword is None:
            if position >= len(api.params):
                raise Unconvertible(
                    f"{len(args)} positional arguments, {api.qualified} takes at most {len(api.params)}")
            name = api.params[position]
        else:
            name = arg.keyword.value
            if name not in api.params:
                raise Unconvertible(f"{api.qualified} has no argument {name!r}")
        if name in seen:
            raise Unconvertible(f"argument {name!r} given twice")
        seen.add(name)
        bound.append((name, arg))
    return bound


def legacy_reduction(size_average, reduce) -> str:
    """torch's mapping: reduce=False -> "none"; else size_average=False -> "sum"; else "mean"."""
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    return ("mean" if size_average else "sum") if reduce else "none"


def convert_args(args, source: Api, target: Api) -> list[cst.Arg]:
    """The call's arguments for ``target``; raises :class:`Unconvertible` with the reason."""
    bound = bind(args, source)
    given = dict(bound)
    override = _legacy_override(given)
    _check_reduction(given.get("reduction"), target)
    to_target = params_by_canonical(target)

    out: list[cst.Arg] = []
    keyword_emitted = False
    for name, arg in bound:
        if name in ("size_average", "reduce"):
            continue  # literals only (checked above), so dropping them drops no side effect
        if name == "name" and "name" not in target.params:
            if not _side_effect_free(arg.value):
                raise Unconvertible(
                    "`name=` is dropped for torch but its value is an expression that may have side effects")
            continue
        new_name = to_target.get(canonical(source.framework, name))
        if new_name is None:
            raise Unconvertible(f"{target.qualified} has no equivalent of {name!r}")
        if name == "reduction" and override is not None:
            if not _side_effect_free(arg.value):
                raise Unconvertible(
                    "legacy size_average/reduce override `reduction`, whose value may have side effects")
            arg = arg.with_changes(value=cst.SimpleString(repr(override)))
        # Positional stays positional only at the same index in both signatures; otherwise a keyword.
        same_place = target.params.index(new_name) == len(out) == source.params.index(name)
        if arg.keyword is None and not keyword_emitted and same_place:
            out.append(arg)
            continue
        keyword_emitted = True
        if arg.keyword is None:
            arg = arg.with_changes(keyword=cst.Name(new_name), equal=_TIGHT_EQUAL)
        elif arg.keyword.value != new_name:
            arg = arg.with_changes(keyword=cst.Name(new_name))
        out.append(arg)

    if override is not None and "reduction" not in given and override != "mean":
        out.append(cst.Arg(keyword=cst.Name("reduction"), value=cst.SimpleString(repr(override)), equal=_TIGHT_EQUAL))
    return _fix_commas(out, args)


def _legacy_override(given: dict) -> str | None:
    """The reduction the legacy arguments impose, or None when neither is given (or both are None)."""
    values = {}
    for name in ("size_average", "reduce"):
        if name in given:
            node = given[name].value
            if not (isinstance(node, cst.Name) and node.value in _LITERALS):
                raise Unconvertible(
                    f"`{name}` is not a literal True/False/None, so the equivalent `reduction` is unknown")
            values[name] = _LITERALS[node.value]
    if values.get("size_average") is None and values.get("reduce") is None:
        return None
    return legacy_reduction(values.get("size_average"), values.get("reduce"))


def _check_reduction(arg, target: Api) -> None:
    if arg is not None and isinstance(arg.value, cst.SimpleString):
        value = ast.literal_eval(arg.value.value)
        if value not in REDUCTIONS:
            raise Unconvertible(
                f"reduction={value!r} is not one of {', '.join(map(repr, REDUCTIONS))} accepted by {target.framework}")


def _side_effect_free(node) -> bool:
    """A literal string, a name or a dotted name: evaluating it (or not) changes nothing."""
    if isinstance(node, (cst.SimpleString, cst.ConcatenatedString, cst.Name)):
        return True
    return isinstance(node, cst.Attribute) and _side_effect_free(node.value)


def _fix_commas(out: list[cst.Arg], original) -> list[cst.Arg]:
    """The last argument takes the original last argument's trailing comma (or none); inner ones get ", "."""
    if not out:
        return out
    last = out[-1].with_changes(comma=original[-1].comma)
    return [*out[:-1], last]
