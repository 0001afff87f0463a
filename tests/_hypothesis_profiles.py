"""Hypothesis profiles: the test suite is deterministic unless a developer asks to explore.

``default`` (always loaded, CI and local runs alike): ``derandomize=True`` draws the same
examples on every run and machine, and ``database=None`` keeps no example database, so a
failure found once is never replayed from ``.hypothesis/`` into later, unrelated runs. A red
run therefore means the code changed, not the dice.

``explore`` (``HYPOTHESIS_PROFILE=explore pytest tests/test_properties.py``): random draws
and the local example database, for hunting new bugs; whatever it finds becomes
an ``@example`` in the test so that the default run checks it from then on.

>>> from hypothesis import settings
>>> settings.get_profile("default").derandomize
True
"""

from __future__ import annotations

import os

from hypothesis import settings
from hypothesis.database import DirectoryBasedExampleDatabase

settings.register_profile("default", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False, database=DirectoryBasedExampleDatabase(".hypothesis/examples"))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
