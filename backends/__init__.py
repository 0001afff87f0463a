"""Backend adapters: one module per array library, all with the same names.

Each adapter module defines:

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
- optionally ``as_result(value)``: a last conversion of the result (NumPy: scalar -> 0-d array).

The registry that picks an adapter for an array is ``bce_compat._registry``.
"""
