"""PyTorch backend: ``torch.Tensor`` on any device, through array-api-compat."""

NAME = "torch"
INSTALL = "pip install 'bce_compat[torch]'"


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


def engines():
    from bce_compat.backends import torch_fast

    return (torch_fast.ENGINE,)
