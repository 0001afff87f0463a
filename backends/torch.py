"""PyTorch backend: ``torch.Tensor`` on any device, through array-api-compat."""

NAME = "torch"
INSTALL = "pip install 'bce_compat[torch]'"
AUTOGRAD = True


def array_types():
    import torch

    return (torch.Tensor,)


def namespace(x):
    import array_api_compat.torch as xp

    return xp


def version():
    import torch

    return torch.__version__


def values_are_concrete(x):
    import torch

    return not (torch.compiler.is_compiling() or x.device.type == "meta")


def result_type(dtypes):
    """The promoted dtype of the arrays' floating dtypes, by ``torch.promote_types``, which
    ``torch.compile`` traces. (array-api-compat's ``result_type`` makes tensors and calls
    ``torch.result_type`` for float16/bfloat16, a graph break under ``fullgraph=True``.) For
    floating dtypes torch's table is the array API's, with float16 + bfloat16 -> float32.

    >>> import torch
    >>> result_type([torch.float16, torch.bfloat16]), result_type([torch.float32, torch.float64])
    (torch.float32, torch.float64)
    """
    import functools

    import torch

    return functools.reduce(torch.promote_types, dtypes)


def autocast(x, y, weight, pos_weight):
    """Where ``torch.autocast`` is on for x's device: the tensors among the arguments, float16 and
    bfloat16 ones cast to float32 (differentiably), as autocast does for torch's own
    ``binary_cross_entropy(_with_logits)``, which run in float32; else None. (On CUDA torch
    refuses ``binary_cross_entropy`` under autocast as unsafe in half precision; ours computes it
    in float32 there too.)

    >>> import torch
    >>> x = torch.zeros(2, dtype=torch.bfloat16)
    >>> autocast(x, x, None, 2.0) is None
    True
    >>> with torch.autocast("cpu", dtype=torch.bfloat16):
    ...     [a if a is None or isinstance(a, float) else a.dtype for a in autocast(x, x, None, 2.0)]
    [torch.float32, torch.float32, None, 2.0]
    """
    import torch

    if not _autocast_on(torch, x.device.type):
        return None
    half = (torch.float16, torch.bfloat16)
    arrays = (x, y, weight, pos_weight)
    return tuple(a.float() if isinstance(a, torch.Tensor) and a.dtype in half else a for a in arrays)


def _autocast_on(torch, device_type: str) -> bool:
    try:
        return bool(torch.is_autocast_enabled(device_type))
    except TypeError:  # torch < 2.4 takes no device type: CUDA's, and the CPU's own query
        if device_type == "cpu":
            return bool(torch.is_autocast_cpu_enabled())
        return device_type == "cuda" and bool(torch.is_autocast_enabled())


def float64_available(x):
    """Every torch device computes in float64 except Apple's MPS."""
    return x.device.type != "mps"


def engines():
    from bce_compat.backends import torch_fast

    return (torch_fast.ENGINE,)


def bench():
    """The test bench: CPU tensors from NumPy, gradients by ``torch.autograd.grad``."""
    import numpy as np
    import torch

    from bce_compat.contract import Bench

    def asarray(values, dtype):
        return torch.as_tensor(np.asarray(values, dtype=np.float64)).to(getattr(torch, dtype))

    def to_numpy(t):
        t = t.detach().cpu()
        return (t.double() if t.dtype in (torch.float16, torch.bfloat16) else t).numpy()

    def value_and_grad(fn, args, wrt):
        args = [a.clone().requires_grad_(True) if i in wrt else a for i, a in enumerate(args)]
        value = fn(*args)
        grads = torch.autograd.grad(value.sum(), [args[i] for i in wrt], allow_unused=True)
        return value, [None if g is None else to_numpy(g) for g in grads]

    return Bench("torch", torch, asarray, to_numpy, torch.as_tensor, value_and_grad)
