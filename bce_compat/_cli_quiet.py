"""Keep the frameworks' own log lines and warnings out of the CLI's output (issue 12, item 7).

TensorFlow (C++ logging and absl), Paddle (glog, its C++ log) and JAX print start-up and
per-op messages; those go through environment variables read when the library is first
imported, so ``silence_framework_logs()`` must run before any framework is imported. A
variable the user has set is kept (``TF_CPP_MIN_LOG_LEVEL=0 bce-compat conformance`` shows
TF's logs again). Lines a framework writes straight to fd 2 before its logging is set up ignore
those variables; the registry drops them while it imports the frameworks (``_stderr_lines``),
reading the same variables. ``framework_warnings_ignored()`` ignores Python warnings raised from a
framework's own modules while a command runs; warnings from bce_compat still show.

>>> import os
>>> with framework_warnings_ignored():
...     silence_framework_logs()
>>> os.environ["TF_CPP_MIN_LOG_LEVEL"] in {"0", "1", "2", "3"}
True
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings

# Read by the C++ side at import: TF (0 all .. 3 none), glog as used by Paddle (0 INFO .. 3 FATAL).
QUIET_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "GLOG_minloglevel": "3",
}
# Python loggers of the frameworks (Paddle installs a root handler, so JAX's INFO lines show).
FRAMEWORK_LOGGERS = ("tensorflow", "absl", "jax", "jax._src.xla_bridge", "paddle", "torch", "h5py", "distributed")
# Modules whose warnings are the frameworks' own business during a run.
FRAMEWORK_MODULES = (r"(paddle|tensorflow|tf_keras|keras|jax|jaxlib|optax|flax|torch|triton|dask|distributed|absl|"
                     r"google|ml_dtypes|h5py)(\.|$)")


def silence_framework_logs() -> None:
    """Set the frameworks' log-level variables (unless already set) and raise their Python loggers to ERROR."""
    for name, value in QUIET_ENV.items():
        os.environ.setdefault(name, value)
    for name in FRAMEWORK_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


@contextlib.contextmanager
def framework_warnings_ignored():
    """Within the block, Python warnings raised from a framework's modules are not printed."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=FRAMEWORK_MODULES)
        yield
