"""pytest plugin: ``pytest --bce-impl MODULE:CALLABLE --bce-dialect torch`` runs the conformance cases on it.

Installed with bce_compat (entry point ``pytest11``, plugin name ``bce_compat``) and inactive
unless ``--bce-impl`` is given: importing it imports pytest and bce_compat's own package (no array
library, not the suite); it adds its options and otherwise leaves a test run alone. Given
``--bce-impl``, the cases that apply to the callable are collected, one test per case and dtype
(``ours-inf-pos-y1-is-zero[float32]``), with no test file of the user's needed; each runs on
every backend of ``--bce-backends`` (default: every installed one) and fails if any backend
fails, saying which and why. A case the callable does not support (its TypeError, or no
half-precision kernel) is a skip with that reason.

    pytest --bce-impl mylib.losses:bce --bce-dialect torch --bce-backends torch
"""

from __future__ import annotations

from typing import Any

import pytest

_DIALECTS = ("torch", "paddle", "keras", "tf", "optax")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bce_compat", "bce_compat: the conformance suite on a BCE implementation")
    group.addoption("--bce-impl", metavar="MODULE:CALLABLE", default=None,
                    help="run bce_compat's conformance cases on this callable (e.g. mylib.losses:bce)")
    group.addoption("--bce-dialect", choices=_DIALECTS, default=None,
                    help="the signature of --bce-impl: its argument names and order (required with --bce-impl)")
    group.addoption("--bce-function", metavar="NAME", default=None,
                    help="which of the dialect's functions --bce-impl is (default: its with-logits loss)")
    group.addoption("--bce-backends", metavar="NAMES", default=None,
                    help="comma-separated backends to run on (default: every installed one)")
    group.addoption("--bce-cases", metavar="PATTERNS", default=None,
                    help="comma-separated case filters: id/file globs or substrings")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("bce_impl") is None:
        if config.getoption("bce_dialect") or config.getoption("bce_function"):
            raise pytest.UsageError("--bce-dialect and --bce-function need --bce-impl MODULE:CALLABLE")
        return
    if config.getoption("bce_dialect") is None:
        raise pytest.UsageError(f"--bce-impl needs --bce-dialect ({', '.join(_DIALECTS)})")
    config.pluginmanager.register(_Suite(config), "bce_compat-conformance")


class _Suite:
    """The active part: loads the implementation and the backends, and adds the cases as tests."""

    def __init__(self, config: pytest.Config):
        from bce_compat._cli_quiet import silence_framework_logs
        from bce_compat.conformance import casedata, frameworks, implementation

        silence_framework_logs()  # before any framework is imported
        raw = config.getoption("bce_backends")
        names = [b.strip() for b in raw.split(",") if b.strip()] if raw else list(frameworks.selected_names())
        unknown = [b for b in names if b not in frameworks.bench_names()]
        if unknown or not names:
            raise pytest.UsageError(f"--bce-backends: unknown backend {', '.join(map(repr, unknown)) or repr(raw)}; "
                                    f"known: {', '.join(frameworks.bench_names())}")
        self.benches = frameworks.available(names)  # imports the frameworks in the one safe order
        if not self.benches:
            raise pytest.UsageError(f"--bce-backends: none of {', '.join(names)} is installed")
        try:
            self.impl = implementation.load(config.getoption("bce_impl"), config.getoption("bce_dialect"),
                                            config.getoption("bce_function"))
        except implementation.ImplementationError as exc:
            raise pytest.UsageError(str(exc)) from exc
        raw_cases = config.getoption("bce_cases")
        cases = casedata.load_cases([p.strip() for p in raw_cases.split(",")] if raw_cases else None)
        self.cases, self.not_applicable = self.impl.applicable(cases)
        if not self.cases:
            raise pytest.UsageError(f"no case applies to {self.impl.describe()}")

    @pytest.hookimpl(tryfirst=True)  # before -k / -m deselect, so they select among these tests too
    def pytest_collection_modifyitems(self, session: pytest.Session, config: pytest.Config,
                                      items: list[pytest.Item]) -> None:
        suite = Conformance.from_parent(session, name="bce_compat", nodeid="bce_compat", suite=self)
        collected = suite.collect()
        # reported as pytest reports a collected file, so "collected N items" and -k's counts include them
        nodes: list[pytest.Item | pytest.Collector] = [*collected]
        config.hook.pytest_collectreport(report=pytest.CollectReport(suite.nodeid, "passed", None, nodes))
        items.extend(collected)

    def pytest_report_header(self, config: pytest.Config) -> str:
        return (f"bce_compat conformance: {self.impl.describe()} on {', '.join(self.benches)}; "
                f"{len(self.cases)} cases apply, {len(self.not_applicable)} do not")

    def run(self, case: Any, dtype: str) -> Any:
        """The runner's outcomes for one case and dtype on every bench."""
        from bce_compat.conformance import runner

        result = runner.Result(cases=[case], backends=list(self.benches), impl=self.impl.describe())
        modules = {name: fw.module for name, fw in self.benches.items()}
        with runner.synchronous_dask(self.benches):
            runner.run_case(case, self.benches, modules, {}, result, native=False, shim=False, impl=self.impl,
                            dtypes=[dtype])
        return result


class Conformance(pytest.Collector):
    """The cases that apply to the implementation, one test per case and dtype."""

    def __init__(self, *, suite: _Suite, **kwargs: Any):
        super().__init__(**kwargs)
        self.suite = suite

    def collect(self) -> list[pytest.Item]:
        return [CaseTest.from_parent(self, name=f"{case.id}[{dtype}]", case=case, dtype=dtype)
                for case in self.suite.cases for dtype in case.dtypes]


class CaseFailed(Exception):
    """A case failed on at least one backend (the message lists each)."""


class CaseTest(pytest.Item):
    """One conformance case in one dtype, on every selected backend."""

    def __init__(self, *, case: Any, dtype: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.case, self.dtype = case, dtype

    def runtest(self) -> None:
        parent = self.parent
        assert isinstance(parent, Conformance)
        outcomes = parent.suite.run(self.case, self.dtype).outcomes
        failed = [o for o in outcomes if o.status == "fail"]
        if failed:
            raise CaseFailed("\n".join(f"{o.backend}: {o.detail}" for o in failed))
        if not any(o.status == "pass" for o in outcomes):
            reasons = sorted({f"{o.status}: {o.detail}" if o.status == "unsupported" else o.detail for o in outcomes})
            pytest.skip("; ".join(reasons))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, CaseFailed):
            return f"{self.case.id} ({self.dtype}) [{self.case.source}] {self.case.quote}\n{excinfo.value}"
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, f"bce_compat case {self.name}"
