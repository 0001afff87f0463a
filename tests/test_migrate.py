"""``bce-compat migrate``: what each call becomes, what is left and reported, and the command's contract."""

from __future__ import annotations

import subprocess
import sys
import tempfile

import pytest

pytest.importorskip("libcst")
from bce_compat.cli import main  # noqa: E402
from bce_compat.migrate._source import migrate_source  # noqa: E402


def rewrite(code: str, to: str = "paddle") -> str:
    outcome = migrate_source(code, to)
    assert outcome.error is None and outcome.left == [], outcome.findings
    return outcome.code


def left(code: str, to: str = "paddle") -> list[str]:
    outcome = migrate_source(code, to)
    assert outcome.code == code, "a call that is left must leave the file unchanged"
    return [f.message for f in outcome.left]


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        ("F.binary_cross_entropy_with_logits(x, y)", "paddle.nn.functional.binary_cross_entropy_with_logits(x, y)"),
        ("F.binary_cross_entropy_with_logits(input=x, target=y, pos_weight=p)",
         "paddle.nn.functional.binary_cross_entropy_with_logits(logit=x, label=y, pos_weight=p)"),
        ("F.binary_cross_entropy_with_logits(x, y, w, None, None, 'sum', p)",
         "paddle.nn.functional.binary_cross_entropy_with_logits(x, y, w, reduction='sum', pos_weight=p)"),
        # legacy pair, exactly as torch: reduce=False -> none; else size_average=False -> sum; else mean
        ("F.binary_cross_entropy_with_logits(x, y, size_average=False)",
         "paddle.nn.functional.binary_cross_entropy_with_logits(x, y, reduction='sum')"),
        ("F.binary_cross_entropy_with_logits(x, y, reduce=False, size_average=False, reduction='mean')",
         "paddle.nn.functional.binary_cross_entropy_with_logits(x, y, reduction='none')"),
        ("F.binary_cross_entropy_with_logits(x, y, w, True, True, 'sum')",
         "paddle.nn.functional.binary_cross_entropy_with_logits(x, y, w, reduction='mean')"),
        ("F.binary_cross_entropy_with_logits(x, y, size_average=None, reduce=None, reduction=r)",
         "paddle.nn.functional.binary_cross_entropy_with_logits(x, y, reduction=r)"),
        ("F.binary_cross_entropy(q, y, w, False)", "paddle.nn.functional.binary_cross_entropy(q, y, w, reduction='sum')"),
        ("nn.BCEWithLogitsLoss(w, False, pos_weight=p)", "paddle.nn.BCEWithLogitsLoss(w, pos_weight=p, reduction='sum')"),
        ("nn.BCELoss(reduce=False)", "paddle.nn.BCELoss(reduction='none')"),
        ("nn.BCELoss(w, None, None, 'sum')", "paddle.nn.BCELoss(w, reduction='sum')"),
    ],
)
def test_torch_calls_become_paddle_calls(call, expected):
    code = f"import torch.nn as nn\nimport torch.nn.functional as F\n\nl = {call}\nnn.Linear\nF.relu\n"
    assert f"l = {expected}\n" in rewrite(code)


@pytest.mark.parametrize(
    "imports, call",
    [
        ("import torch", "torch.nn.functional.binary_cross_entropy_with_logits(x, y)"),
        ("from torch.nn import functional as G", "G.binary_cross_entropy_with_logits(x, y)"),
        ("from torch.nn.functional import binary_cross_entropy_with_logits as bce", "bce(x, y)"),
        ("import torch.nn.functional", "torch.nn.functional.binary_cross_entropy_with_logits(x, y)"),
    ],
)
def test_any_import_alias_is_resolved(imports, call):
    assert "paddle.nn.functional.binary_cross_entropy_with_logits(x, y)" in rewrite(f"{imports}\nl = {call}\n")


def test_paddle_calls_become_torch_calls():
    code = "import paddle.nn.functional as F\nl = F.binary_cross_entropy_with_logits(x, y, w, 'sum', p, 'n')\n"
    new = rewrite(code, "torch")
    assert "torch.nn.functional.binary_cross_entropy_with_logits(x, y, w, reduction='sum', pos_weight=p)" in new
    assert "import torch\n" in new and "paddle" not in new  # the Paddle import only served this call
    module = "from paddle.nn import BCEWithLogitsLoss\nm = BCEWithLogitsLoss(label_weight, 'none', name='bce')\n"
    assert "m = torch.nn.BCEWithLogitsLoss(label_weight, reduction='none')\n" in rewrite(module, "torch")


def test_portable_keeps_the_arguments_and_uses_the_right_dialect():
    torch_code = "import torch.nn.functional as F\nl = F.binary_cross_entropy(q, y, size_average=sa, **kw)\n"
    assert rewrite(torch_code, "portable") == "import bce_compat\n\nl = bce_compat.binary_cross_entropy(q, y, size_average=sa, **kw)\n"
    legacy = "import torch.nn as nn\nm = nn.BCELoss(w, False)\n"
    assert rewrite(legacy, "portable").endswith("m = bce_compat.BCELoss(w, reduction='sum')\n")
    paddle_code = "import paddle\nm = paddle.nn.BCELoss(w, 'sum', 'n')\n"
    new = rewrite(paddle_code, "portable")
    assert "from bce_compat.dialects import paddle as bce_paddle\n" in new
    assert "m = bce_paddle.BCELoss(w, 'sum', 'n')\n" in new


def test_comments_formatting_and_other_code_are_kept():
    code = (
        "# header\n"
        "import torch  # used elsewhere\n"
        "import torch.nn as nn\n\n"
        "x = torch.ones(3)   # odd   spacing\n"
        "crit = nn.BCEWithLogitsLoss(\n"
        "    pos_weight=x,  # rare positives\n"
        "    size_average=False,\n"
        ")\n"
    )
    assert rewrite(code) == (
        "# header\n"
        "import torch  # used elsewhere\n"
        "import paddle\n\n"
        "x = torch.ones(3)   # odd   spacing\n"
        "crit = paddle.nn.BCEWithLogitsLoss(\n"
        "    pos_weight=x,  # rare positives\n"
        "    reduction='sum',\n"
        ")\n"
    )


def test_imports_still_used_are_kept_and_nothing_else_changes():
    code = "import torch.nn as nn\nlayer = nn.Linear(2, 1)\nl = nn.BCELoss()\n"
    assert rewrite(code) == "import torch.nn as nn\nimport paddle\n\nlayer = nn.Linear(2, 1)\nl = paddle.nn.BCELoss()\n"
    untouched = "import torch\nimport paddle\ny = torch.ones(1)\n"
    assert migrate_source(untouched, "paddle").code == untouched


@pytest.mark.parametrize(
    ("code", "why"),
    [
        ("import torch.nn.functional as F\nF.binary_cross_entropy(q, y, **kw)\n", "cannot be seen into"),
        ("import torch.nn.functional as F\nF.binary_cross_entropy(q, y, *rest)\n", "cannot be seen into"),
        ("import torch.nn as nn\nnn.BCELoss(size_average=flag)\n", "not a literal"),
        ("import torch.nn as nn\nclass Mine(nn.BCEWithLogitsLoss):\n    pass\n", "without being called"),
        ("import torch.nn.functional as F\nfn = F.binary_cross_entropy_with_logits\n", "without being called"),
        ("import torch.nn as nn\nnn.BCELoss(reduction='elementwise_mean')\n", "not one of"),
        ("import torch.nn as nn\nnn.BCELoss(w, 1, 2, 3, 4)\n", "positional"),
        ("import torch.nn as nn\npaddle = 3\nnn.BCELoss()\n", "already means something else"),
        ("import torch.nn.functional as F\ny[mask] = -100\nF.binary_cross_entropy_with_logits(x, y)\n", "-100"),
    ],
)
def test_unsafe_calls_are_left_and_say_why(code, why):
    messages = left(code)
    assert len(messages) == 1 and why in messages[0]


def test_paddle_to_torch_notes_the_minus_100_difference_and_refuses_where_it_shows():
    code = "import paddle.nn.functional as F\nl = F.binary_cross_entropy_with_logits(x, y)\n"
    outcome = migrate_source(code, "torch")
    assert outcome.left == [] and [f.severity for f in outcome.findings] == ["note"]
    assert "-100" in outcome.findings[0].message
    assert "-100" in left("IGNORE = -100\n" + code, "torch")[0]
    assert "-100" in left("IGNORE = -100\n" + code, "portable")[0]
    assert left("import paddle\nF.binary_cross_entropy_with_logits(x, y, name=make())\n".replace("F.", "paddle.nn.functional."), "torch")


def test_a_file_that_does_not_parse_is_reported_and_left_alone(tmp_path, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text("import torch.nn as nn\nl = nn.BCELoss(\n")
    assert main(["migrate", "--write", str(bad)]) == 2
    assert bad.read_text() == "import torch.nn as nn\nl = nn.BCELoss(\n"
    assert f"{bad}:" in capsys.readouterr().err


def test_cli_dry_run_write_directories_and_exit_status(tmp_path, capsys):
    good = tmp_path / "pkg" / "good.py"
    good.parent.mkdir()
    good.write_text("import torch.nn as nn\nl = nn.BCELoss()\n")
    hidden = tmp_path / ".venv" / "lib.py"
    hidden.parent.mkdir()
    hidden.write_text("import torch.nn as nn\nl = nn.BCELoss()\n")
    assert main(["migrate", "--to", "paddle", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "\n-l = nn.BCELoss()\n" in out and "\n+l = paddle.nn.BCELoss()\n" in out and ".venv" not in out
    assert good.read_text() == "import torch.nn as nn\nl = nn.BCELoss()\n"  # dry run
    assert main(["migrate", "--write", str(good)]) == 0
    assert good.read_text() == "import paddle\n\nl = paddle.nn.BCELoss()\n"
    assert main(["migrate", "--write", str(good)]) == 0 and good.read_text().count("paddle") == 2  # idempotent

    partial = tmp_path / "partial.py"
    partial.write_text("import torch.nn as nn\na = nn.BCELoss()\nb = nn.BCELoss(**kw)\n")
    assert main(["migrate", "--write", str(partial)]) == 1
    err = capsys.readouterr().err
    assert f"{partial}:3:5: left unchanged: `**kw` cannot be seen into" in err
    assert "b = nn.BCELoss(**kw)\n" in partial.read_text() and "a = paddle.nn.BCELoss()" in partial.read_text()
    assert main(["migrate", str(tmp_path / "missing.py")]) == 2


def test_cli_reads_stdin_and_imports_no_framework():
    script = (
        "import sys\nfrom bce_compat.cli import main\n"
        "code = main(['migrate', '--to', 'portable', '--write', '-'])\n"
        "assert not {'torch', 'paddle', 'tensorflow'} & set(sys.modules), sorted(sys.modules)\n"
        "sys.exit(code)\n"
    )
    source = "from torch.nn import BCEWithLogitsLoss as L\nloss = L(pos_weight=p)\n"
    # run outside the source tree, so the installed package is imported, not ./bce_compat
    done = subprocess.run(
        [sys.executable, "-c", script], input=source, capture_output=True, text=True, timeout=60, cwd=tempfile.gettempdir()
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "import bce_compat\n\nloss = bce_compat.BCEWithLogitsLoss(pos_weight=p)\n"
