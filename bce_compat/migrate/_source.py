"""Rewrite one source text: parse with libcst, transform the loss calls, add the imports they need.

>>> source = "import torch.nn.functional as F\\nl = F.binary_cross_entropy(q, y, reduction='sum')\\n"
>>> out = migrate_source(source, "paddle")
>>> print(out.code, end="")  # the torch import went: only the converted call used it
import paddle
<BLANKLINE>
l = paddle.nn.functional.binary_cross_entropy(q, y, reduction='sum')
>>> out.findings, out.error
([], None)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import AnyStr, Generic


@dataclass
class Outcome(Generic[AnyStr]):
    """The rewritten source (``code``, same type as given), what was left or noted, or a parse ``error``."""

    code: AnyStr
    findings: list = field(default_factory=list)
    converted: int = 0
    error: str | None = None  # set when the source does not parse; ``code`` is then the input unchanged

    @property
    def left(self) -> list:
        return [f for f in self.findings if f.severity == "left"]


def migrate_source(source: AnyStr, to: str) -> Outcome[AnyStr]:
    """The source with every convertible torch/Paddle BCE call rewritten for ``to``; bytes keep their encoding."""
    import libcst as cst
    from libcst.codemod import CodemodContext
    from libcst.codemod.visitors import AddImportsVisitor, RemoveImportsVisitor
    from libcst.metadata import MetadataWrapper

    from bce_compat.migrate._transformer import LossCallTransformer, file_has_minus_100

    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as exc:
        where = f"{exc.editor_line}:{exc.editor_column}"
        return Outcome(source, error=f"{where}: cannot parse, file left alone: {exc.message}")
    except (SyntaxError, UnicodeDecodeError, LookupError) as exc:
        return Outcome(source, error=f"1:1: cannot read, file left alone: {exc}")

    transformer = LossCallTransformer(to, minus_100_in_file=file_has_minus_100(module))
    new_module = MetadataWrapper(module).visit(transformer)
    if transformer.needed_imports:
        context = CodemodContext()
        for module_name, obj, alias in sorted(transformer.needed_imports, key=str):
            AddImportsVisitor.add_needed_import(context, module_name, obj, alias)
        new_module = AddImportsVisitor(context).transform_module(new_module)
        # An import only the converted calls used goes; one used anywhere else (or in __all__) stays.
        context = CodemodContext()
        for module_name, obj, alias in sorted(transformer.maybe_unused_imports, key=str):
            RemoveImportsVisitor.remove_unused_import(context, module_name, obj, alias)
        new_module = RemoveImportsVisitor(context).transform_module(new_module)

    new_code = new_module.bytes if isinstance(source, bytes) else new_module.code
    findings = sorted(transformer.findings, key=lambda f: (f.line, f.column))
    if new_code != source and _compiles(module.code) and not _compiles(new_module.code):  # never hand back broken code
        return Outcome(source, findings, error="1:1: the rewrite would not compile; file left alone")
    return Outcome(new_code, findings, transformer.converted)


def _compiles(code: str) -> bool:
    try:
        compile(code, "<source>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True
