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
    paddle_code = "import paddle\nl = paddle.nn.functional.binary_cross_entropy(q, y, w, 'sum', 'n')\n"
    new = rewrite(paddle_code, "portable")
    assert "from bce_compat.dialects import paddle as bce_paddle\n" in new
    assert "l = bce_paddle.binary_cross_entropy(q, y, w, 'sum', 'n')\n" in new


def test_portable_module_constructions_become_the_framework_module_classes():
    """So ``.to(device)``, ``state_dict`` and checkpoints keep working (issue 11.2)."""
    legacy = "import torch.nn as nn\nm = nn.BCELoss(w, False).to(device)\n"
    assert rewrite(legacy, "portable") == "import bce_compat.torch\n\nm = bce_compat.torch.BCELoss(w, reduction='sum').to(device)\n"
    both = ("import torch\nimport torch.nn.functional as F\n"
            "c = torch.nn.BCEWithLogitsLoss(pos_weight=p)\nl = F.binary_cross_entropy_with_logits(x, y)\nt = torch.ones(1)\n")
    assert rewrite(both, "portable") == (
        "import torch\nimport bce_compat\nimport bce_compat.torch\n\n"
        "c = bce_compat.torch.BCEWithLogitsLoss(pos_weight=p)\nl = bce_compat.binary_cross_entropy_with_logits(x, y)\n"
        "t = torch.ones(1)\n"
    )
    paddle_code = "import paddle\nm = paddle.nn.BCELoss(w, 'sum', 'n')\nk = paddle.nn.BCEWithLogitsLoss(pos_weight=p)\n"
    outcome = migrate_source(paddle_code, "portable")
    assert outcome.code == (
        "import bce_compat.paddle\n\n"
        "m = bce_compat.paddle.BCELoss(w, 'sum', 'n')\nk = bce_compat.paddle.BCEWithLogitsLoss(pos_weight=p)\n"
    )
    assert [f.severity for f in outcome.findings] == ["note"]  # Paddle's -100 semantics, once
    assert migrate_source(outcome.code, "portable").code == outcome.code  # idempotent
    with_name_taken = "import torch.nn as nn\nbce_compat = 1\nm = nn.BCELoss()\n"
    assert "already means something else" in left(with_name_taken, "portable")[0]


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
        ("import torch.nn as nn\nnn.BCELoss(w, False, size_average=True)\n", "given twice"),
        ("try:\n    from torch.nn import BCELoss\nexcept ImportError:\n    from mylib import BCELoss\nBCELoss()\n",
         "may name different things"),
    ],
)
def test_unsafe_calls_are_left_and_say_why(code, why):
    messages = left(code)
    assert len(messages) == 1 and why in messages[0]


TORCH_FILE = (
    "import torch.nn as nn\nimport torch.nn.functional as F\n"
    "a = F.binary_cross_entropy(q, y)\n"
    "b = F.binary_cross_entropy_with_logits(x, y)\n"
    "c = nn.BCEWithLogitsLoss(pos_weight=p)\n"
    "d = F.binary_cross_entropy_with_logits(x, y, reduction='sum')\n"
)
PADDLE_FILE = (
    "import paddle\nimport paddle.nn.functional as F\n"
    "a = F.binary_cross_entropy(q, y)\n"
    "b = F.binary_cross_entropy_with_logits(x, y)\n"
    "c = paddle.nn.BCEWithLogitsLoss(pos_weight=p)\n"
    "d = F.binary_cross_entropy_with_logits(x, y, reduction='sum')\n"
)
CROSSINGS = [("paddle", TORCH_FILE, "torch"), ("torch", PADDLE_FILE, "torch"), ("portable", PADDLE_FILE, "bce_compat")]


def _notes(outcome) -> list[tuple[int, str]]:
    return [(f.line, f.message) for f in outcome.findings if f.severity == "note"]


@pytest.mark.parametrize(("to", "code", "other"), CROSSINGS, ids=["torch-to-paddle", "paddle-to-torch", "paddle-to-portable"])
def test_crossing_paddles_op_is_noted_once_per_file_and_correctly(to, code, other):
    """Issue 12.4: a note where behaviour changes, saying it correctly, once per file (not on every call)."""
    outcome = migrate_source(code, to)
    assert outcome.left == [] and outcome.converted == 4
    notes = _notes(outcome)
    assert [line for line, _ in notes] == [4]  # the first with-logits call; the probability loss is unaffected
    message = notes[0][1]
    assert "ignores labels equal to -100" in message and f"and {other} does not" in message
    assert "paddle does not" not in message.lower()
    # Paddle's wrong gradient at a logit of exactly 0 concerns the code that will run Paddle's op
    assert ("gradient at a logit of exactly 0 is 1 too small" in message) == (to == "paddle")


@pytest.mark.parametrize(("to", "code"), [
    ("portable", TORCH_FILE),  # torch -> bce_compat: same meaning, exact where torch is
    ("paddle", "import torch.nn as nn\nl = nn.BCELoss(w)\n"),  # both clamp log at -100
    ("torch", "import paddle\nl = paddle.nn.functional.binary_cross_entropy(q, y)\n"),
])
def test_no_note_where_behaviour_does_not_change(to, code):
    outcome = migrate_source(code, to)
    assert outcome.converted and outcome.findings == []


def test_the_note_goes_to_the_first_call_actually_converted():
    code = TORCH_FILE.replace("b = F.binary_cross_entropy_with_logits(x, y)", "b = F.binary_cross_entropy_with_logits(x, y, **kw)")
    outcome = migrate_source(code, "paddle")
    assert [f.line for f in outcome.left] == [4] and [line for line, _ in _notes(outcome)] == [5]


@pytest.mark.parametrize(("to", "code", "other"), CROSSINGS, ids=["torch-to-paddle", "paddle-to-torch", "paddle-to-portable"])
def test_a_file_with_minus_100_keeps_its_with_logits_calls_and_says_why_correctly(to, code, other):
    outcome = migrate_source("IGNORE = -100\n" + code, to)
    assert [f.line for f in outcome.left] == [5, 6, 7] and _notes(outcome) == []
    for finding in outcome.left:
        assert f"-100 (their loss is 0) and {other} does not; this file uses the literal -100" in finding.message
    assert outcome.converted == 1  # the probability loss, which Paddle does not treat specially


def test_torch_to_portable_with_minus_100_is_converted():
    assert migrate_source("IGNORE = -100\n" + TORCH_FILE, "portable").findings == []


def test_cli_prints_one_note_per_file(tmp_path, capsys):
    for name in ("one.py", "two.py"):
        (tmp_path / name).write_text(PADDLE_FILE)
    assert main(["migrate", "--to", "torch", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert err.count(": note: ") == 2 and f"{tmp_path / 'one.py'}:4:5: note: converted;" in err


def test_a_side_effect_in_name_is_left():
    assert left("import paddle\npaddle.nn.functional.binary_cross_entropy_with_logits(x, y, name=make())\n", "torch")


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
    assert done.stdout == "import bce_compat.torch\n\nloss = bce_compat.torch.BCEWithLogitsLoss(pos_weight=p)\n"


def test_help_names_every_source_that_portable_converts(capsys):
    """``migrate --help`` said "between torch and Paddle" only (issue 23, item 5)."""
    with pytest.raises(SystemExit):
        main(["migrate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for source in ("torch", "Paddle", "Keras", "tf.nn", "optax"):
        assert source in text, source
    assert "loss calls only" in text  # --to paddle / --to torch leave the rest of the script as it is


@pytest.mark.parametrize("spelling", ["-100", "-100.0", "-1_00", "-1e2"])
def test_every_spelling_of_minus_100_keeps_the_with_logits_calls(spelling):
    """Ignored labels are often floats (``y[mask] = -100.0``): any spelling of -100 keeps Paddle's meaning apart."""
    code = f"import torch.nn.functional as F\ny[mask] = {spelling}\nF.binary_cross_entropy_with_logits(x, y)\n"
    messages = left(code)
    assert len(messages) == 1 and "this file uses the literal -100" in messages[0]


def test_write_keeps_the_files_permissions(tmp_path):
    """``--write`` replaces the file through a temporary one: an executable script stays executable."""
    script = tmp_path / "train.py"
    script.write_text("#!/usr/bin/env python\nimport torch.nn as nn\nl = nn.BCELoss()\n")
    script.chmod(0o754)
    assert main(["migrate", "--write", str(script)]) == 0
    assert "paddle.nn.BCELoss()" in script.read_text()
    assert script.stat().st_mode & 0o7777 == 0o754


def test_a_virtual_environment_under_any_name_is_skipped(tmp_path, capsys):
    """A folder with ``pyvenv.cfg`` is a virtual environment (installed packages), whatever it is called."""
    env = tmp_path / "env"
    (env / "lib").mkdir(parents=True)
    (env / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (env / "lib" / "site.py").write_text("import torch.nn as nn\nl = nn.BCELoss()\n")
    (tmp_path / "train.py").write_text("import torch.nn as nn\nl = nn.BCELoss()\n")
    assert main(["migrate", "--to", "paddle", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "train.py" in out and "site.py" not in out


@pytest.mark.parametrize("module, to", [("torch.nn.modules.loss", "paddle"), ("torch.nn.modules", "paddle"),
                                        ("paddle.nn.layer.loss", "torch"), ("paddle.nn.layer", "torch")])
@pytest.mark.parametrize("cls", ["BCELoss", "BCEWithLogitsLoss"])
def test_each_module_path_spelling_is_its_own_class(module, to, cls):
    """``from torch.nn.modules.loss import BCELoss`` is BCELoss (probabilities), never its with-logits sibling."""
    assert f"l = {to}.nn.{cls}(w)\n" in rewrite(f"from {module} import {cls}\nl = {cls}(w)\n", to)
