"""GPU benchmark (issue 6, part 1): the Triton fast path vs torch's op, torch.compile and JAX jit.

Data: logits [N/64, 64] float32 on CUDA, targets in {0, 1}, pos_weight [64], reduction "mean".
Timed with CUDA events, best of --repeat, each side alternating. Memory floor: bytes that must
move / copy bandwidth (a device-to-device copy of N float32, 8 bytes per element, timed here):
forward reads x and y (8 bytes per element); forward + backward also writes dL/dx (12).
Peak memory: torch.cuda.max_memory_allocated over one forward + backward, beyond the inputs.

    python bench/bench_gpu.py                       # 2**27, plus the size sweep and its plot
    python bench/bench_gpu.py --sizes 16 20 24 27 --plot bench/gpu_time_vs_size.png
"""

from __future__ import annotations

import argparse
import math

from _timing import cuda_interleaved, print_table, row


def available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def _data(n: int):
    import torch

    gen = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(n // 64, 64, device="cuda", generator=gen) * 3
    y = (torch.rand(n // 64, 64, device="cuda", generator=gen) > 0.5).float()
    p = torch.rand(64, device="cuda", generator=gen) + 0.5
    return x, y, p


def measure(n: int, repeat: int = 20, with_compile: bool = True, with_jax: bool = True) -> dict[str, float]:
    """Seconds for each contender: '<name> fwd' and '<name> fwd+bwd', plus 'copy'."""
    import torch

    import bce_compat

    x, y, p = _data(n)
    xg = x.clone().requires_grad_(True)
    native = torch.nn.functional.binary_cross_entropy_with_logits
    fns = {
        "copy": lambda: torch.empty_like(x).copy_(x),
        "ours fwd": lambda: bce_compat.binary_cross_entropy_with_logits(x, y, pos_weight=p),
        "ours fwd+bwd": lambda: torch.autograd.grad(bce_compat.binary_cross_entropy_with_logits(xg, y, pos_weight=p), xg),
        "torch fwd": lambda: native(x, y, pos_weight=p),
        "torch fwd+bwd": lambda: torch.autograd.grad(native(xg, y, pos_weight=p), xg),
    }
    if with_compile:
        compiled = torch.compile(native)
        fns["compile fwd"] = lambda: compiled(x, y, pos_weight=p)
        fns["compile fwd+bwd"] = lambda: torch.autograd.grad(compiled(xg, y, pos_weight=p), xg)
    jax_fns = _jax_fns(n) if with_jax else {}
    fns.update(jax_fns)
    return cuda_interleaved(fns, repeat)


def _jax_fns(n: int) -> dict:
    """JAX jit on the GPU, when JAX has one (inputs made on the device, results blocked on)."""
    try:
        import jax
        import jax.numpy as jnp

        if not jax.devices("gpu"):
            return {}
    except Exception:
        return {}
    key = jax.random.PRNGKey(0)
    x = jax.random.normal(key, (n // 64, 64), jnp.float32) * 3
    y = (jax.random.uniform(key, (n // 64, 64)) > 0.5).astype(jnp.float32)
    p = jax.random.uniform(key, (64,)) + 0.5

    def loss(x, y, p):  # torch's formula, as a JAX user writes it (optax-style stable form)
        log_sig = jax.nn.log_sigmoid(x)
        return jnp.mean(-(p * y * log_sig + (1 - y) * jax.nn.log_sigmoid(-x)))

    fwd, fwd_bwd = jax.jit(loss), jax.jit(jax.grad(loss))
    return {
        "jax fwd": lambda: fwd(x, y, p).block_until_ready(),
        "jax fwd+bwd": lambda: fwd_bwd(x, y, p).block_until_ready(),
    }


def peak_extra_bytes(n: int) -> dict[str, int]:
    """Peak allocated bytes during one forward + backward, beyond the inputs (x, y, pos_weight)."""
    import torch

    import bce_compat

    out = {}
    native = torch.nn.functional.binary_cross_entropy_with_logits
    for name, fn in (("ours", bce_compat.binary_cross_entropy_with_logits), ("torch", native)):
        x, y, p = _data(n)
        xg = x.requires_grad_(True)
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        (grad,) = torch.autograd.grad(fn(xg, y, pos_weight=p), xg)
        torch.cuda.synchronize()
        out[name] = torch.cuda.max_memory_allocated() - base
        del grad, x, y, p, xg
    return out


def rows(n: int = 2**27, repeat: int = 20) -> list[dict]:
    t = measure(n, repeat)
    per_byte = t["copy"] / (8 * n)
    floors = {"fwd": 8 * n * per_byte, "fwd+bwd": 12 * n * per_byte}
    size = f"2^{int(math.log2(n))}"
    out = []
    for stage in ("fwd", "fwd+bwd"):
        ours = t[f"ours {stage}"]
        out.append(row(f"GPU triton, mean {stage}, {size}", ours, t[f"torch {stage}"], "torch CUDA op", floors[stage]))
        if f"compile {stage}" in t:
            out.append(row(f"GPU triton, mean {stage}, {size}", ours, t[f"compile {stage}"], "torch.compile", floors[stage]))
        if f"jax {stage}" in t:
            out.append(row(f"GPU triton, mean {stage}, {size}", ours, t[f"jax {stage}"], "JAX jit", floors[stage]))
    peak = peak_extra_bytes(n)
    out.append(row(f"GPU peak extra memory fwd+bwd, {size}", peak["ours"] / 2**20 / 1e3, peak["torch"] / 2**20 / 1e3, "torch CUDA op",
                   note=f"MiB beyond inputs: ours {peak['ours'] / 2**20:.0f}, torch {peak['torch'] / 2**20:.0f}; gradient alone {4 * n / 2**20:.0f}"))  # fmt: skip
    return out


def sweep(exponents, repeat: int = 20) -> list[dict]:
    """(size, seconds per contender) for the plot; torch.compile recompiles per shape, so it is included."""
    return [{"n": 2**e, **measure(2**e, repeat, with_jax=False)} for e in exponents]


def plot(points: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [pt["n"] for pt in points]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, label in (("ours fwd+bwd", "bce_compat (Triton)"), ("torch fwd+bwd", "torch op"), ("compile fwd+bwd", "torch.compile")):
        ax.plot(sizes, [pt[key] * 1e3 for pt in points], marker="o", label=label)
    ax.plot(sizes, [pt["copy"] * 1.5 * 1e3 for pt in points], "k--", label="memory floor (12 B/elem)")
    ax.set(xscale="log", yscale="log", xlabel="elements (float32, [N/64, 64], pos_weight [64])", ylabel="forward + backward, ms")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=27, help="log2 of the element count for the table")
    parser.add_argument("--sizes", type=int, nargs="*", default=[16, 18, 20, 22, 24, 26, 27], help="log2 sizes for the plot")
    parser.add_argument("--plot", default="bench/gpu_time_vs_size.png")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    if not available():
        raise SystemExit("no CUDA device: the GPU benchmark needs torch with CUDA")
    print_table(rows(2**args.size, args.repeat))
    if args.sizes:
        plot(sweep(args.sizes, args.repeat), args.plot)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
