"""The conformance suite: documented examples as data, run on every installed backend.

``bce_compat.conformance.frameworks`` moves NumPy data into each framework and takes gradients
there; the cases and the runner build on it.
"""
