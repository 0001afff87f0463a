"""The libcst transformer: finds the loss calls under any import alias and rewrites them in place.

>>> import libcst as cst
>>> from libcst.metadata import MetadataWrapper
>>> t = LossCallTransformer("paddle", minus_100_in_file=False)
>>> MetadataWrapper(cst.parse_module("import torch.nn as nn\\nl = nn.BCELoss(size_average=False)\\n")).visit(t).code
"import torch.nn as nn\\nl = paddle.nn.BCELoss(reduction='sum')\\n"
>>> sorted(t.needed_imports)
[('paddle', None, None)]
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst
import libcst.matchers as m
from libcst.metadata import PositionProvider, QualifiedNameProvider, QualifiedNameSource, ScopeProvider

from bce_compat.migrate._arguments import Unconvertible, convert_args
from bce_compat.migrate._table import (
    API_BY_NAME,
    CONVERTIBLE_BETWEEN,
    Api,
    portable_callee,
    portable_import,
    target_api,
)

TARGETS = ("paddle", "torch", "portable")

# Paddle's binary_cross_entropy_with_logits departs from torch's and bce_compat's in two ways a
# rewrite across Paddle changes: labels equal to -100 give loss 0, and without pos_weight its
# gradient at a logit of exactly 0 is 1 too small (σ(0) − y − 1; measured on Paddle 3.3).
_IGNORES_100 = ("Paddle's binary_cross_entropy_with_logits ignores labels equal to -100 (their loss is 0) "
                "and {other} does not")
_LEFT_100 = _IGNORES_100 + "; this file uses the literal -100, so the result could change"
_NOTE_FROM_PADDLE = ("converted; " + _IGNORES_100 + ", so such labels would now count "
                     "(this file has no literal -100; said once per file)")
_NOTE_TO_PADDLE = ("converted; " + _IGNORES_100.format(other="torch") + ", and without pos_weight its gradient "
                   "at a logit of exactly 0 is 1 too small (σ(0) - y - 1); bce_compat.dialects.paddle computes "
                   "both exactly (said once per file)")


@dataclass(frozen=True)
class Finding:
    """One message for the user: ``severity`` is "left" (call kept as it was) or "note"."""

    line: int
    column: int
    severity: str
    message: str


class LossCallTransformer(cst.CSTTransformer):
    """Rewrites BCE calls for ``to`` ("paddle", "torch" or "portable"); collects findings.

    torch and Paddle calls convert to each other; with "portable", Keras, tf.nn and optax calls too.
    """

    METADATA_DEPENDENCIES = (PositionProvider, QualifiedNameProvider, ScopeProvider)

    def __init__(self, to: str, minus_100_in_file: bool):
        super().__init__()
        if to not in TARGETS:
            raise ValueError(f"`to` must be one of {', '.join(TARGETS)}; got {to!r}")
        self.to = to
        self.minus_100_in_file = minus_100_in_file
        self.findings: list[Finding] = []
        self.needed_imports: set[tuple[str, str | None, str | None]] = set()
        # Imports the converted calls used: removed afterwards only if nothing else uses them.
        self.maybe_unused_imports: set[tuple[str, str | None, str | None]] = set()
        self.converted = 0
        self._noted = False  # the behaviour note is said once per file, at the first call it concerns
        self._callees: set[int] = set()  # id() of call.func nodes, so bare references can be told apart

    # Imports name the APIs without using them.
    def visit_Import(self, node) -> bool:
        return False

    def visit_ImportFrom(self, node) -> bool:
        return False

    def visit_Call(self, node: cst.Call) -> None:
        self._callees.add(id(node.func))

    def visit_Name(self, node: cst.Name) -> None:
        self._check_bare_reference(node)

    def visit_Attribute(self, node: cst.Attribute) -> None:
        self._check_bare_reference(node)

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        if not isinstance(original.func, (cst.Name, cst.Attribute)):
            return updated  # e.g. ``BCELoss()(x, y)``: the inner call is the one to convert
        try:
            api = self._resolve(original.func)
        except Unconvertible as why:
            self._report(original, "left", str(why))
            return updated
        if api is None or not self._concerns(api):
            return updated
        try:
            callee, args, import_spec, expected_binding, note = self._plan(api, updated.args)
            self._check_root_name(original, callee.split(".")[0], expected_binding)
        except Unconvertible as why:
            self._report(original, "left", str(why))
            return updated
        self.needed_imports.add(import_spec)
        self.maybe_unused_imports |= self._imports_behind(original.func)
        self.converted += 1
        if note:
            self._noted = True
            self._report(original, "note", note)
        return updated.with_changes(func=cst.parse_expression(callee), args=args)

    def _concerns(self, api: Api | None) -> bool:
        """Whether this run converts ``api``: torch <-> Paddle, and every known API ``--to portable``."""
        if api is None or api.framework == self.to:
            return False
        return self.to == "portable" or api.framework in CONVERTIBLE_BETWEEN

    def _plan(self, api: Api, args):
        """(dotted callee, new args, import to add, qualified name the callee's root must have, note)."""
        note = self._behaviour_note(api)
        if self.to == "portable":
            # The dialect and the module classes have the source's exact signature: every argument stays.
            module, name, alias = portable_import(api)
            expected = f"{module}.{name}" if name else module.split(".")[0]
            return portable_callee(api), _drop_literal_legacy(args, api), (module, name, alias), expected, note
        target = target_api(api, self.to)
        return target.qualified, convert_args(args, api, target), (self.to, None, None), self.to, note

    def _behaviour_note(self, api: Api) -> str | None:
        """Where a with-logits call crosses Paddle's op: refuse if the file uses -100, else a note once per file.

        Only there does the meaning change (-100 labels) or a wrong value appear (Paddle's gradient
        at 0); elsewhere the target agrees with the source wherever the source's op is exact.
        """
        if api.loss != "with_logits" or "paddle" not in (api.framework, self.to):
            return None
        other = "bce_compat" if self.to == "portable" else "torch"
        if self.minus_100_in_file:
            raise Unconvertible(_LEFT_100.format(other=other))
        if self._noted:
            return None
        return _NOTE_TO_PADDLE if self.to == "paddle" else _NOTE_FROM_PADDLE.format(other=other)

    def _resolve(self, func) -> Api | None:
        """The table entry ``func`` names through the file's imports, or None."""
        qualified = self.get_metadata(QualifiedNameProvider, func, set())
        names = {q.name for q in qualified if q.source == QualifiedNameSource.IMPORT}
        apis = {API_BY_NAME[n] for n in names if n in API_BY_NAME}
        if not apis:
            return None
        if len(apis) > 1 or len(names) > 1:
            raise Unconvertible(f"`{_code(func)}` may name different things here ({', '.join(sorted(names))})")
        return apis.pop()

    def _check_root_name(self, node, root: str, expected: str) -> None:
        """The callee's first name must be unbound here or already the module we mean."""
        scope = self.get_metadata(ScopeProvider, node, None)
        if scope is None or root not in scope:
            return
        for assignment in scope[root]:
            qualified = ({q.name for q in assignment.get_qualified_names_for(root)}
                         if hasattr(assignment, "get_qualified_names_for") else set())
            is_import = isinstance(getattr(assignment, "node", None), (cst.Import, cst.ImportFrom))
            if not is_import or qualified != {expected}:
                raise Unconvertible(
                    f"the name `{root}` already means something else here, so `{root}.…` cannot be introduced")

    def _imports_behind(self, func) -> set:
        """``(module, obj, asname)`` of the import statements that bound ``func``'s first name."""
        root = func
        while isinstance(root, cst.Attribute):
            root = root.value
        scope = self.get_metadata(ScopeProvider, func, None)
        if not isinstance(root, cst.Name) or scope is None or root.value not in scope:
            return set()
        found: set[tuple[str, str | None, str | None]] = set()
        for assignment in scope[root.value]:
            statement = getattr(assignment, "node", None)
            if isinstance(statement, cst.Import):
                for alias in statement.names:
                    if (alias.evaluated_alias or alias.evaluated_name.split(".")[0]) == root.value:
                        found.add((alias.evaluated_name, None, alias.evaluated_alias))
            elif isinstance(statement, cst.ImportFrom) and not statement.relative and statement.module is not None \
                    and not isinstance(statement.names, cst.ImportStar):
                module = _code(statement.module)
                for alias in statement.names:
                    if (alias.evaluated_alias or alias.evaluated_name) == root.value:
                        found.add((module, alias.evaluated_name, alias.evaluated_alias))
        return found

    def _check_bare_reference(self, node) -> None:
        if id(node) in self._callees:
            return
        try:
            api = self._resolve(node)
        except Unconvertible:
            return
        if self._concerns(api):
            self._report(node, "left", f"`{_code(node)}` is used without being called here (passed, aliased or "
                                       "subclassed), so its arguments cannot be converted")

    def _report(self, node, severity: str, message: str) -> None:
        position = self.get_metadata(PositionProvider, node).start
        self.findings.append(Finding(position.line, position.column + 1, severity, message))


def _drop_literal_legacy(args, api: Api) -> list:
    """For the torch dialect, literal size_average/reduce become ``reduction`` (no deprecation warning);
    anything else stays exactly as written, which the dialect's identical signature accepts."""
    if api.framework != "torch":
        return list(args)
    try:
        return convert_args(args, api, api)
    except Unconvertible:
        return list(args)


def file_has_minus_100(module: cst.Module) -> bool:
    """Whether the source spells -100 anywhere (e.g. labels marked to be ignored, Paddle-style)."""
    for node in m.findall(module, m.UnaryOperation(operator=m.Minus(), expression=m.Integer() | m.Float())):
        if not isinstance(node, cst.UnaryOperation) or not isinstance(node.expression, (cst.Integer, cst.Float)):
            continue  # the matcher found only these; this tells the type checker
        try:
            if float(node.expression.value.replace("_", "")) == 100:
                return True
        except ValueError:
            continue
    return False


def _code(node) -> str:
    return cst.Module([]).code_for_node(node)
