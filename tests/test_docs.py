"""The written word stays true: README commands are the ones CI runs, the README's bound table is
the contract table, and every ``proofs/<file>.md, Theorem <ID>`` cited anywhere exists."""

import importlib
import re
from pathlib import Path

import pytest

from softlog_numerics.testing.contract import LOSS_GRAD_BOUNDS, ULP_BOUNDS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
CITATION = re.compile(r"proofs/([\w-]+\.md), Theorem ([\w.-]*\w)")


def _commands():
    block = re.search(r"```(?:bash|sh)\n(.*?)```", README, re.S)
    assert block, "README must open with a fenced bash block holding the two commands"
    return [ln.strip() for ln in block.group(1).splitlines() if ln.strip() and not ln.startswith("#")]


def test_readme_opens_with_two_commands_and_ci_runs_the_test_one():
    cmds = _commands()
    assert len(cmds) == 2, cmds
    assert "softlog-numerics" in cmds[0]
    ci = (ROOT / ".ci" / "run").read_text()
    assert cmds[1] in ci, f"CI must run the README's test command {cmds[1]!r}"


def test_readme_bound_table_is_the_contract():
    for function, row in {**ULP_BOUNDS, **LOSS_GRAD_BOUNDS}.items():
        m = re.search(rf"^\| `{function}` \|(.*)\|\s*$", README, re.M)
        assert m, f"README's accuracy table lacks {function}"
        cells = [c.strip() for c in m.group(1).split("|")]
        numbers = [int(re.match(r"\d+", c).group()) for c in cells[:4]]
        assert numbers == [row[d] for d in ("float16", "bfloat16", "float32", "float64")], function


def _sources():
    for path in list((ROOT / "softlog_numerics").rglob("*.py")) + [ROOT / "README.md"] + list(
        (ROOT / "proofs").glob("*.md")
    ):
        yield path, path.read_text()


def test_every_cited_theorem_exists():
    missing = []
    n = 0
    for path, text in _sources():
        for file, theorem in CITATION.findall(text):
            n += 1
            target = ROOT / "proofs" / file
            if not target.exists() or not re.search(
                rf"^#+ Theorem {re.escape(theorem)}\b", target.read_text(), re.M
            ):
                missing.append(f"{path.relative_to(ROOT)} cites {file}, Theorem {theorem}")
    assert n > 0
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize("proof", sorted((ROOT / "proofs").glob("*.md")), ids=lambda p: p.name)
def test_every_theorem_names_its_machine_check(proof):
    if proof.name == "README.md":
        return
    text = proof.read_text()
    sections = re.split(r"^(?=#+ Theorem )", text, flags=re.M)[1:]
    for s in sections:
        title = s.splitlines()[0]
        m = re.search(r"Machine check:\s*`?(tests/[\w/]+\.py)(::[\w\[\]-]+)?", s)
        assert m, f"{proof.name}: {title} has no 'Machine check: tests/...' line"
        test_file = ROOT / m.group(1)
        assert test_file.exists(), f"{proof.name}: {title} names missing {m.group(1)}"
        if m.group(2):
            name = m.group(2)[2:].split("[")[0]
            assert re.search(rf"def {name}\b", test_file.read_text()), f"{proof.name}: {title}: no {name}"


def test_proof_index_is_up_to_date():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_index", ROOT / "proofs" / "make_index.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert (ROOT / "proofs" / "README.md").read_text() == mod.build(), "run: python proofs/make_index.py"


MODULE_REF = re.compile(r"softlog_numerics(?:[./][A-Za-z_]\w*)+")


def _resolves(ref: str) -> bool:
    """A dotted ``softlog_numerics.a.b`` names an importable module or an attribute of one; a
    ``softlog_numerics/a/b.py`` path names a file or folder of the repository."""
    if "/" in ref:
        path = ROOT / ref
        return path.exists() or path.with_suffix(".py").exists()
    parts = ref.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for name in parts[i:]:
            if not hasattr(obj, name):
                return False
            obj = getattr(obj, name)
        return True
    return False


def test_every_module_path_in_the_docs_exists():
    """Every ``softlog_numerics.<module>[.<name>]`` and ``softlog_numerics/<path>.py`` written in the
    package's docstrings, the README, tests/README.md, benchmarks/README.md, proofs/ and the
    committed report names something that exists (a move that leaves a stale path fails here)."""
    texts = list(_sources()) + [
        (p, p.read_text())
        for p in [ROOT / "tests" / "README.md", ROOT / "benchmarks" / "README.md", ROOT / "figures" / "report.md"]
    ]
    stale = []
    for path, text in texts:
        for m in MODULE_REF.finditer(text):
            ref = m.group(0).rstrip(".")
            if ref.endswith("__main__"):
                continue
            if not _resolves(ref):
                stale.append(f"{path.relative_to(ROOT)}: {ref}")
    assert not stale, "\n".join(sorted(set(stale)))
