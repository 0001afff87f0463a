"""Marks that tell frameworks' graph tracers to call a function as it is, set without importing them.

``paddle.jit.to_static`` either simulates Python bytecode (SOT) or rewrites the source (AST)
of every function it meets. Our front end is Python-level logic (dispatch, validation, the
per-signature plan memo) that needs neither: given graph values instead of eager tensors it
already adds plain Paddle ops to the program, exactly as a static-graph program does. So
the loss is marked as Paddle marks its own APIs (``paddle.jit.marker.unified``): to_static
records a call of it, runs it once on graph values, and keeps the ops it adds. Paddle reads
the mark from a function attribute holding an object with two methods; we set it ourselves
because ``import bce_compat`` must not import Paddle (tests check Paddle agrees with it).

>>> def f(): pass
>>> unified_in_graphs(f).___jit_transform_options___.need_transform("SOT")
False
"""

from __future__ import annotations

PADDLE_MARK = "___jit_transform_options___"  # paddle.jit.dy2static.utils.TransformOptions.TRANSFORM_OPTIONS_ATTR_NAME
# TF's AutoGraph rewrites every function a tf.function calls, and its rewrite of our dispatch
# code (namespace methods, generators) breaks it; an "AutoGraph artifact" is called as it is
# (tensorflow/python/autograph/impl/api.py: is_autograph_artifact), which is all we need: on
# graph tensors our code adds plain TF ops, as in eager mode.
TF_AUTOGRAPH_MARK = "autograph_info__"


class _PaddleUnified:
    """Paddle's ``TransformOptions`` protocol: transform in no to_static mode, capture no control flow."""

    __slots__ = ()

    def need_transform(self, mode) -> bool:
        return False

    def need_capture_control_flow(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "bce_compat: unified in dygraph and static graphs"


def unified_in_graphs(fn):
    """``fn``, marked so that Paddle's to_static (SOT and AST) and TF's AutoGraph call it instead of tracing into it."""
    setattr(fn, PADDLE_MARK, _PaddleUnified())
    setattr(fn, TF_AUTOGRAPH_MARK, frozenset())
    return fn
