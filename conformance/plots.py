"""The accuracy atlas as pictures: one PNG per contender (matplotlib, the ``report`` extra).

Each picture has four panels, value and gradient in float32 and float64, each the error in ulp
(symmetric-log scale) over x from -100 to 100, with a narrow strip for the extremes at its
right; one line per target y. Results that are NaN or infinite where the exact value is not
sit on the top band. matplotlib's object API is used without pyplot, so no global backend is
chosen and a user's own matplotlib settings are left alone.

>>> available() in (True, False)
True
"""

from __future__ import annotations

import importlib.util
import io
from typing import Any

import numpy as np

from bce_compat.conformance.atlas import DTYPES, EXTREMES, QUANTITIES, TARGETS, Atlas, Row

INSTALL_HINT = "pip install 'bce_compat[report]'"
_NONFINITE = 1e17  # where a NaN/inf result is drawn
_CAP = 1e15  # larger finite errors are drawn at the cap
_COLORS = {0.0: "#1f77b4", 0.5: "#ff7f0e", 1.0: "#2ca02c"}
_TICKS = [0, 1, 4, 1e2, 1e4, 1e8, 1e12, _NONFINITE]
_TICK_LABELS = ["0", "1", "4", "100", "1e4", "1e8", "1e12", "NaN/inf"]


def available() -> bool:
    """Whether matplotlib can be imported (the plots need it; the rest of the page does not)."""
    try:
        return importlib.util.find_spec("matplotlib") is not None and _figure_class() is not None
    except (ImportError, ValueError):
        return False


def _figure_class() -> Any:
    from matplotlib.figure import Figure

    return Figure


def contender_png(atlas: Atlas, row: Row, dpi: int = 80) -> bytes:
    """The four panels of one contender, as PNG bytes."""
    fig = _figure_class()(figsize=(13.5, 6.4), dpi=dpi, layout="constrained")
    fig.suptitle(f"{row.label}   (on {row.bench}'s arrays)", fontsize=12, x=0.01, ha="left")
    outer = fig.add_gridspec(2, 2, wspace=0.04, hspace=0.06)
    for i, quantity in enumerate(QUANTITIES):
        for j, dtype in enumerate(DTYPES):
            inner = outer[i, j].subgridspec(1, 2, width_ratios=[6, 1.4], wspace=0.03)
            main, side = fig.add_subplot(inner[0]), fig.add_subplot(inner[1])
            _panel(main, side, atlas, row, dtype, quantity, legend=(i == 0 and j == 0))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _panel(main: Any, side: Any, atlas: Atlas, row: Row, dtype: str, quantity: str, legend: bool) -> None:
    errors = row.errors.get((dtype, quantity))
    main.set_title(f"{quantity}, {dtype}", fontsize=10, loc="left")
    for ax in (main, side):
        ax.set_yscale("symlog", linthresh=1.0, linscale=0.6)
        ax.set_ylim(-0.05, _NONFINITE * 4)
        ax.axhspan(_CAP * 3, _NONFINITE * 4, color="#f3d6d6", zorder=0)
        ax.axhline(4, color="#888888", linewidth=0.8, linestyle="--", zorder=1)
        ax.grid(True, axis="y", color="#e4e4e4", linewidth=0.6)
    main.set_yticks(_TICKS, _TICK_LABELS, fontsize=8)
    side.set_yticks(_TICKS, [""] * len(_TICKS))
    main.set_xlim(-102, 102)
    main.tick_params(axis="x", labelsize=8)
    main.set_xlabel("x", fontsize=9, labelpad=1)
    main.set_ylabel("error (ulp)", fontsize=9)
    side.set_xlim(-0.6, len(EXTREMES) - 0.4)
    side.set_xticks(range(len(EXTREMES)), EXTREMES, rotation=90, fontsize=7)
    if errors is None:
        reason = next((n for n in row.notes if n.startswith(dtype)), "not available")
        main.text(0.5, 0.5, _wrap(reason), transform=main.transAxes, ha="center", va="center", fontsize=9,
                  color="#555555")
        return
    x = atlas.x[dtype][:atlas.n_main]
    for k, y in enumerate(TARGETS):
        shown = _shown(errors[k])
        color = _COLORS[y]
        main.plot(x, shown[:atlas.n_main], color=color, linewidth=1.1, label=f"y = {y:g}", zorder=3)
        bad = ~np.isfinite(errors[k][:atlas.n_main])
        if bad.any():
            main.plot(x[bad], shown[:atlas.n_main][bad], "x", color=color, markersize=4, zorder=4)
        side.plot(np.arange(len(EXTREMES)) + (k - 1) * 0.2, shown[atlas.n_main:], "o", color=color,
                  markersize=4, zorder=3)
    if legend:
        main.legend(loc="upper left", fontsize=8, ncols=3, framealpha=0.9)


def _shown(errors: np.ndarray) -> np.ndarray:
    """Errors as drawn: capped, and non-finite ones on the top band."""
    return np.where(np.isfinite(errors), np.minimum(errors, _CAP), _NONFINITE)


def _wrap(text: str, width: int = 60) -> str:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + len(word) + 1 > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join([*lines, line])
