"""bce_compat's backend plugin for toyarray; the entry point is ``toyarray_bce:adapter``."""

from toyarray_bce import adapter  # noqa: F401  (the entry point's object)
