"""The sweep's outputs: markdown tables (one per family), a summary, JSON, plots, bench/README.md.

ratio = ours / theirs (below 1: ours is faster); Δ = ours − theirs, shown where the contender
takes under 100 µs. The goal (issue 26): ratio ≤ 1, or Δ ≤ +10 µs where the contender takes
under 100 µs (against torch.compile: ratio ≤ 1).

>>> rec = {"framework": "torch", "status": "ok", "ours_s": 45e-6, "theirs_s": 40e-6}
>>> meets_goal(rec), fmt_delta(rec)
(True, '+5.0')
>>> meets_goal({**rec, "framework": "torch.compile"})
False
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
from collections import defaultdict

from _cases import ENTRIES, FLOOR, Family, not_applicable
from sweep import relative_difference

# how far the forward losses of ours and the contender may differ before the table says so (a
# contender computing another loss, or one that loses digits: float16 means summed in float16)
VALUE_TOLERANCE = {"float16": 5e-2, "bfloat16": 5e-2, "float32": 1e-3, "float64": 1e-6}
SMALL_OP_SECONDS = 100e-6
ALLOWANCE_SECONDS = 10e-6
README_START = "<!-- bench/run.py sweep: start (written by `python bench/run.py --update-readme`) -->"
README_END = "<!-- bench/run.py sweep: end -->"
FLOOR_TEXT = ("`x.sum()` and `y.sum()` in torch, at torch's default threads: each input read once, vectorised, "
              "one add per element. At large N no loss can beat it, as every loss reads x and y (forward+backward "
              "also writes dL/dx, which the floor leaves out); at small N it is two torch calls' fixed cost, a "
              "reference rather than a bound.")


def meets_goal(record: dict) -> bool | None:
    """Whether ours is at or under the contender (with the small-op allowance); None where not timed."""
    if record["status"] != "ok" or record["framework"] == FLOOR:
        return None
    ours, theirs = record["ours_s"], record["theirs_s"]
    if ours <= theirs:
        return True
    allowed = record["framework"] != "torch.compile" and theirs < SMALL_OP_SECONDS
    return allowed and ours - theirs <= ALLOWANCE_SECONDS


def fmt_delta(record: dict) -> str:
    if record["status"] != "ok" or record["theirs_s"] >= SMALL_OP_SECONDS:
        return ""
    return f"{(record['ours_s'] - record['theirs_s']) * 1e6:+.1f}"


def fmt_ratio(ratio: float) -> str:
    """Two decimals; three significant digits below 0.1.

    >>> fmt_ratio(0.8712), fmt_ratio(0.01234), fmt_ratio(12.5)
    ('0.87', '0.0123', '12.50')
    """
    return f"{ratio:.2f}" if ratio >= 0.1 else f"{ratio:.3g}"


def fmt_us(seconds: float | None) -> str:
    """Microseconds, 3 significant digits below 1000.

    >>> fmt_us(12.345e-6), fmt_us(2.5e-3), fmt_us(None)
    ('12.3', '2500', '–')
    """
    if seconds is None:
        return "–"
    us = seconds * 1e6
    return f"{us:.3g}" if us < 1000 else f"{us:.0f}"


def family_of(record: dict) -> Family:
    return Family(record["framework"], record["entry"], record["dtype"], record["direction"])


def by_family(records: list[dict]) -> dict[Family, list[dict]]:
    """Records grouped by family, in the order of ``records``, each group by size."""
    groups: dict[Family, list[dict]] = defaultdict(list)
    for record in records:
        groups[family_of(record)].append(record)
    return {family: sorted(rows, key=lambda r: r["n"]) for family, rows in groups.items()}


def floors(records: list[dict]) -> dict[tuple[str, int], float]:
    """(dtype, N) -> seconds to read x and y once."""
    return {(r["dtype"], r["n"]): r["ours_s"] for r in records if r["framework"] == FLOOR and r["status"] == "ok"}


# ---------------------------------------------------------------- markdown


def family_table(family: Family, rows: list[dict], floor: dict[tuple[str, int], float]) -> str:
    """One family's table: a row per size."""
    ok = [r for r in rows if r["status"] == "ok"]
    title = f"#### {family.label}"
    if not ok:
        return f"{title}\n\nnot measured: {rows[0]['status']}: {rows[0]['reason']}\n"
    compiled = family.framework == "torch.compile"
    lines = [title, "", f"against `{ok[0]['contender']}`", ""]
    head = "| N | ours µs | theirs µs | ratio | Δ µs | goal | floor µs |" + (" compile s |" if compiled else "")
    lines += [head, "|---:|---:|---:|---:|---:|:-:|---:|" + ("---:|" if compiled else "")]
    for r in rows:
        size = f"2^{r['exponent']}"
        if r["status"] != "ok":
            lines.append(f"| {size} | {r['status']}: {r['reason']} |" + " |" * (6 + compiled))
            continue
        goal = {True: "yes", False: "**no**", None: ""}[meets_goal(r)]
        cells = [size, fmt_us(r["ours_s"]), fmt_us(r["theirs_s"]), fmt_ratio(r["ours_s"] / r["theirs_s"]), fmt_delta(r),
                 goal, fmt_us(floor.get((r["dtype"], r["n"])))]  # fmt: skip
        if compiled:
            cells.append(f"{r['compile_s']:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n" + values_note(ok)


def values_note(rows: list[dict]) -> str:
    """Whether the forward losses of ours and the contender agree at every size ("" for fwd+bwd).

    >>> values_note([{"status": "ok", "dtype": "float32", "exponent": 7, "ours_value": 1.0, "theirs_value": 1.5}])
    '\\n**losses differ** (relative difference above 0.001): 2^7 (0.333)\\n'
    """
    differ = differing(rows)
    if differ is None:
        return ""
    tolerance = VALUE_TOLERANCE[rows[0]["dtype"]]
    if differ:
        return f"\n**losses differ** (relative difference above {tolerance:g}): {', '.join(differ)}\n"
    return f"\nlosses agree within {tolerance:g} (relative) at every size\n"


def floor_table(dtype: str, rows: list[dict]) -> str:
    lines = [f"#### memory floor · {dtype}", "",
             "x.sum() and y.sum() in torch (each input read once), against torch's op (forward) on the same tensors", "",
             "| N | floor µs | torch op µs | floor / op |", "|---:|---:|---:|---:|"]  # fmt: skip
    for r in rows:
        if r["status"] == "ok":
            lines.append(f"| 2^{r['exponent']} | {fmt_us(r['ours_s'])} | {fmt_us(r['theirs_s'])} | {fmt_ratio(r['ours_s'] / r['theirs_s'])} |")
        else:
            lines.append(f"| 2^{r['exponent']} | {r['status']}: {r['reason']} | | |")
    return "\n".join(lines) + "\n"


def differing(rows: list[dict]) -> list[str] | None:
    """The sizes (and relative differences) where the two forward losses differ beyond the
    dtype's tolerance; None where no row returned scalar losses (fwd+bwd)."""
    checked = [(r, relative_difference(r)) for r in rows if r["status"] == "ok"]
    checked = [(r, d) for r, d in checked if d is not None]
    if not checked:
        return None
    return [f"2^{r['exponent']} ({d:.3g})" for r, d in checked if d > VALUE_TOLERANCE[r["dtype"]]]


def summary_table(groups: dict[Family, list[dict]]) -> str:
    """One row per family: ratio range, the worst size, sizes over the goal, time spent."""
    lines = ["| family | sizes | ratio min–max | worst (N) | over goal | losses | time s |", "|---|---|---|---|---|---|---:|"]
    for family, rows in groups.items():
        if family.framework == FLOOR:
            continue
        ok = [r for r in rows if r["status"] == "ok"]
        seconds = sum(r.get("seconds", 0.0) for r in rows)
        sizes = f"2^{rows[0]['exponent']}–2^{rows[-1]['exponent']}" if len(rows) > 1 else f"2^{rows[0]['exponent']}"
        if not ok:
            lines.append(f"| {family.label} | {sizes} | {rows[0]['status']}: {rows[0]['reason']} | | | | {seconds:.0f} |")
            continue
        ratios = [(r["ours_s"] / r["theirs_s"], r) for r in ok]
        worst_ratio, worst = max(ratios, key=lambda item: item[0])
        over = [f"2^{r['exponent']}" for r in ok if meets_goal(r) is False]
        over_text = f"**{len(over)}**: {', '.join(over)}" if over else "0"
        not_ok = len(rows) - len(ok)
        if not_ok:
            over_text += f" ({not_ok} not measured)"
        differ = differing(rows)
        losses = "" if differ is None else f"**differ**: {', '.join(differ)}" if differ else "agree"
        lines.append(f"| {family.label} | {sizes} | {fmt_ratio(min(r for r, _ in ratios))}–{fmt_ratio(worst_ratio)} | "
                     f"{fmt_ratio(worst_ratio)} (2^{worst['exponent']}) | {over_text} | {losses} | {seconds:.0f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def excluded(meta: dict) -> list[str]:
    """The selected combinations that are not part of the sweep, with the reason."""
    sel = meta["selection"]
    reasons: dict[str, list[str]] = defaultdict(list)
    for framework in sel["frameworks"]:
        for entry in sel["entries"]:
            for dtype in sel["dtypes"]:
                for direction in sel["directions"]:
                    reason = not_applicable(Family(framework, entry, dtype, direction))
                    if reason:
                        reasons[reason].append(f"{framework} · {entry} · {dtype} · {direction}")
    return [f"{reason} ({len(families)} families)" for reason, families in reasons.items()]


def header(meta: dict) -> str:
    m = meta["machine"]
    memory = "; ".join(f"{dtype}: x {v['mean']:.3f} of the input for mean, {v['none']:.3f} for none"
                       for dtype, v in meta.get("peak_extra_memory", {}).items())  # fmt: skip
    lines = [
        f"- **Date** {meta['date']} · **commit** {meta['commit']} · **duration** {meta['duration_s'] / 60:.1f} min",
        f"- **Machine** {m['cpu']}, {m['isa']}, {m['cpus']} cpus, {m['memory_gib']} GiB; {m['software']}",
        f"- **Command** `{meta['command']}`",
        f"- **Load average** {meta['load_start']:.2f} at the start, {meta['load_end']:.2f} at the end",
        f"- **Timing** medians of {meta['sampling']['min_samples']}–{meta['sampling']['max_samples']} interleaved samples "
        f"per row (ours and the contender taking turns, the order reversed every other round; a sample runs "
        f"≥ {meta['sampling']['sample_seconds'] * 1e3:g} ms of calls); frameworks' default threads. "
        "ratio = ours / theirs; Δ = ours − theirs where theirs < 100 µs; goal: ratio ≤ 1, or Δ ≤ +10 µs where theirs "
        "< 100 µs (against torch.compile: ratio ≤ 1).",
        f"- **Memory floor** {FLOOR_TEXT}",
        "- **Data** logits [N/64, 64] (normal × 3), targets in {0, 1}, pos_weight [64], reduction mean; "
        "each entry point changes one thing: " + "; ".join(f"*{name}* {what}" for name, what in ENTRIES.items()),
    ]
    if memory:
        lines.append(f"- **Peak extra memory** (NumPy, tracemalloc, 2^{meta['peak_extra_memory_exponent']}, beyond the result) {memory}")
    if meta.get("import_ms") is not None:
        lines.append(f"- **import bce_compat** {meta['import_ms']:.1f} ms (fresh interpreters, the best of several)")
    for reason in excluded(meta):
        lines.append(f"- not part of the sweep: {reason}")
    for name, why in meta.get("unavailable", {}).items():
        lines.append(f"- {name}: {why}")
    return "\n".join(lines) + "\n"


def markdown(meta: dict, records: list[dict], figures: dict[tuple[str, str], str]) -> str:
    """The whole report: header, summary, then per dtype × direction its figure and tables."""
    groups = by_family(records)
    floor = floors(records)
    parts = [header(meta), "### Summary\n", summary_table(groups)]
    for dtype in meta["selection"]["dtypes"]:
        floor_rows = groups.get(Family(FLOOR, "logits", dtype, "fwd"))
        for direction in meta["selection"]["directions"]:
            mine = [(f, rows) for f, rows in groups.items() if f.dtype == dtype and f.direction == direction and f.framework != FLOOR]
            if not mine:
                continue
            parts.append(f"### {dtype} · {direction}\n")
            if (dtype, direction) in figures:
                parts.append(f"![ratio vs N, {dtype} {direction}]({figures[dtype, direction]})\n")
            parts.append(f"<details><summary>{dtype} · {direction}: {len(mine)} tables</summary>\n")
            parts += [family_table(f, rows, floor) for f, rows in mine]
            if floor_rows and direction == "fwd":
                parts.append(floor_table(dtype, floor_rows))
            parts.append("</details>\n")
    return "\n".join(parts)


# ---------------------------------------------------------------- plots


_STYLE = {"torch": "-", "numpy": ":", "paddle": "--", "tensorflow": "-."}


def plot(records: list[dict], dtype: str, direction: str, path: str) -> bool:
    """ratio vs N for every family of this dtype and direction, with the memory floor and
    torch.compile lines; False where there is nothing to draw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = {f: [r for r in rows if r["status"] == "ok"] for f, rows in by_family(records).items()
              if f.dtype == dtype and f.direction == direction}  # fmt: skip
    groups = {f: rows for f, rows in groups.items() if rows}
    if not any(f.framework != FLOOR for f in groups):
        return False
    entries = list(dict.fromkeys(f.entry for f in groups))
    fig, ax = plt.subplots(figsize=(10, 5.5))
    for family, rows in groups.items():
        if family.framework == FLOOR:
            continue
        xs, ys = [r["n"] for r in rows], [r["ours_s"] / r["theirs_s"] for r in rows]
        if family.framework == "torch.compile":
            ax.plot(xs, ys, "k--", lw=2.2, label="torch: ours / torch.compile")
        else:
            color = f"C{entries.index(family.entry) % 10}"
            ax.plot(xs, ys, _STYLE.get(family.framework, "-"), color=color, marker="o", ms=2.5, lw=1.2,
                    label=f"{family.framework} · {family.entry}")  # fmt: skip
    floor_xs, floor_ys = _floor_line(records, dtype, direction)
    if floor_xs:
        ax.plot(floor_xs, floor_ys, color="0.45", lw=3, alpha=0.6, label="memory floor / torch's op (logits)")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set(xscale="log", yscale="log", xlabel="elements N ([N/64, 64], mean)", ylabel="time / contender's time",
           title=f"{dtype}, {direction}: ours / contender (below 1: ours is faster)")  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def _floor_line(records: list[dict], dtype: str, direction: str) -> tuple[list[int], list[float]]:
    """The floor in units of torch's op for the logits entry in this direction: forward from the
    floor rows (timed interleaved with the op), forward+backward against torch's fwd+bwd rows."""
    floor = floors(records)
    if direction == "fwd":
        ops = {r["n"]: r["theirs_s"] for r in records if r["framework"] == FLOOR and r["dtype"] == dtype and r["status"] == "ok"}
    else:
        ops = {r["n"]: r["theirs_s"] for r in records if r["status"] == "ok" and r["dtype"] == dtype
               and (r["framework"], r["entry"], r["direction"]) == ("torch", "logits", direction)}  # fmt: skip
    xs = sorted(n for n in ops if (dtype, n) in floor)
    return xs, [floor[dtype, n] / ops[n] for n in xs]


# ---------------------------------------------------------------- files


def figure_name(dtype: str, direction: str) -> str:
    return f"{dtype}-{direction.replace('+', '_')}.png"


def write(out_dir: str, meta: dict, records: list[dict], extras: dict, plots: bool = True) -> dict[str, object]:
    """sweep.json, sweep.md and the figures under ``out_dir``; returns what was written."""
    os.makedirs(out_dir, exist_ok=True)
    figures: dict[tuple[str, str], str] = {}
    note = None
    if plots:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            note = "no matplotlib: no plots (pip install -c .ci/constraints.txt '.[bench]')"
        else:
            for dtype in meta["selection"]["dtypes"]:
                for direction in meta["selection"]["directions"]:
                    name = figure_name(dtype, direction)
                    if plot(records, dtype, direction, os.path.join(out_dir, name)):
                        figures[dtype, direction] = name
    text = markdown(meta, records, figures)
    with open(os.path.join(out_dir, "sweep.md"), "w") as fh:
        fh.write(text)
    with open(os.path.join(out_dir, "sweep.json"), "w") as fh:
        json.dump({"meta": meta, "records": records, **extras}, fh, indent=1)
    return {"markdown": text, "figures": figures, "note": note}


def update_readme(readme: str, meta: dict, records: list[dict], out_dir: str, figures: dict) -> None:
    """Replace the text between the README's markers with the report; the figures it shows are
    copied next to it (``figures/``), as ``out_dir`` is not in git."""
    with open(readme) as fh:
        text = fh.read()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise SystemExit(f"{readme}: the markers {README_START!r} and {README_END!r} are missing")
    target = os.path.join(os.path.dirname(readme), "figures")
    os.makedirs(target, exist_ok=True)
    for name in figures.values():
        shutil.copy(os.path.join(out_dir, name), os.path.join(target, name))
    report = markdown(meta, records, {key: f"figures/{name}" for key, name in figures.items()})
    with open(readme, "w") as fh:
        fh.write(text[: start + len(README_START)] + "\n\n" + report + "\n" + text[end:])


# ---------------------------------------------------------------- the run's description


def machine() -> dict:
    """The CPU (model, vector ISA), core count, memory and the versions of what is imported."""
    cpu, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name") and cpu in ("", platform.machine()):
                    cpu = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    isa = "AVX-512" if "avx512f" in flags else "AVX2, no AVX-512" if "avx2" in flags else "no AVX2"
    try:
        memory = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)
    except (ValueError, OSError, AttributeError):
        memory = None
    software = [f"Python {platform.python_version()}"]
    for name in ("numpy", "torch", "paddle", "tensorflow"):
        module = sys.modules.get(name)
        if module is not None:
            software.append(f"{name} {getattr(module, '__version__', '?')}")
    if "torch" in sys.modules:
        software.append(f"torch threads {sys.modules['torch'].get_num_threads()}")
    return {"cpu": cpu, "isa": isa, "cpus": os.cpu_count(), "memory_gib": memory, "software": ", ".join(software)}


def commit(repo: str) -> str:
    """The short commit, with "+ uncommitted changes" where the tree differs from it."""
    try:
        head = subprocess.run(["git", "-C", repo, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head + (" + uncommitted changes" if dirty else "")


def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
