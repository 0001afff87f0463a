"""What the ports of torch's own tests share: upstream's seed and ``common_utils``' gradcheck wrappers.

Imported after ``pytest.importorskip("torch")`` (it imports torch), e.g.
``from _torch_upstream import SEED, gradcheck, gradgradcheck``.
"""

from __future__ import annotations

import torch

SEED = 1234  # torch.testing._internal.common_utils.SEED: TestCase.setUp seeds every test with it


def gradcheck(fn, inputs, **kwargs):
    """``torch.testing._internal.common_utils.gradcheck``, which upstream's tests call: ``check_batched_grad``
    and ``fast_mode`` on unless given."""
    for key in ("check_batched_grad", "fast_mode"):
        if kwargs.get(key) is None:
            kwargs[key] = True
    return torch.autograd.gradcheck(fn, inputs, **kwargs)


def gradgradcheck(fn, inputs, grad_outputs=None, **kwargs):
    """``torch.testing._internal.common_utils.gradgradcheck``, with the same defaults."""
    for key in ("check_batched_grad", "fast_mode"):
        if kwargs.get(key) is None:
            kwargs[key] = True
    return torch.autograd.gradgradcheck(fn, inputs, grad_outputs, **kwargs)
