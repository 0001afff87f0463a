"""Backend adapters: one module per array library, all with the same names.

The contract is written out in ``contract.py``: ``AdapterModule`` (what an adapter provides) and
``ArrayNamespace`` (what ``namespace(x)`` returns); ``tests/test_contract.py`` checks every
adapter, built-in or plugin, against both. In short, each adapter module defines:

- ``NAME``: the backend's name, which is also the array library's module name
  (the one that must already be in ``sys.modules`` for its arrays to exist);
- ``INSTALL``: how a user installs the library;
- ``array_types()``: the array classes the backend accepts (imports the library);
- ``namespace(x)``: an array-API namespace for arrays like ``x``;
- ``version()``: the library's version string;
- ``values_are_concrete(x)``: whether ``x`` holds values a check may read now
  (False under tracing or for lazy arrays, where value checks are skipped);
- ``engines()``: the backend's fast paths, a tuple (possibly empty) of engines, each called
  with a ``contract.Problem`` and returning the result or a ``contract.Declined``;
- optionally ``as_result(value)``: a last conversion of the result (NumPy: scalar -> 0-d array);
- optionally the test bench: ``bench()`` returning a ``contract.Bench`` (NumPy data in, arrays
  out, read back, gradients), ``AUTOGRAD = True`` where the library differentiates, and
  ``BENCH_NAME`` where the bench is not named ``NAME``. With it, the conformance suite and the
  tests run on the backend.

The one list of backends (built-ins, then entry-point plugins) is ``bce_compat._registry``;
adding a backend is one module here plus one line in its ``BUILTIN_ADAPTERS``.
"""
