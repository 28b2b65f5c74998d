"""The documentation builds: ``python -m sphinx -W -b html docs docs/_build`` (the README's command)
succeeds with warnings as errors, every public name has an entry in the built inventory, and every
proof and every committed figure is on a page."""

import importlib
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

import softlog_numerics

ROOT = Path(__file__).resolve().parents[1]
INVENTORY_LINE = re.compile(r"(?P<name>.+?)\s+(?P<domain>[^\s:]+):(?P<role>\S+)\s+-?\d+\s+\S*\s+.*")


def public_names():
    """Every public dotted name: ``softlog_numerics.<n>`` for ``n`` in ``__all__``, and, for each
    public module among them (and the public modules those list, such as ``oracle.grad``), every
    name in that module's ``__all__``, under the public path."""
    names, todo = [], [("softlog_numerics", softlog_numerics)]
    while todo:
        path, module = todo.pop()
        for name in module.__all__:
            names.append(f"{path}.{name}")
            obj = getattr(module, name)
            if isinstance(obj, type(sys)):
                todo.append((f"{path}.{name}", importlib.import_module(f"{path}.{name}")))
    return sorted(names)


def read_inventory(path):
    """The Python names of a Sphinx ``objects.inv`` (version 2: four header lines, then zlib)."""
    raw = Path(path).read_bytes()
    header, _, body = raw.partition(b"# The remainder of this file is compressed using zlib.\n")
    assert header.startswith(b"# Sphinx inventory version 2"), header[:40]
    names = set()
    for line in zlib.decompress(body).decode().splitlines():
        m = INVENTORY_LINE.fullmatch(line)
        if m and m["domain"] == "py":
            names.add(m["name"])
    return names


def undocumented(names, inventory):
    return [n for n in names if n not in inventory]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("docs_build")
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-b", "html", "-q", str(ROOT / "docs"), str(out)],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert proc.returncode == 0, f"the docs build failed (warnings are errors):\n{proc.stderr}"
    return out


def test_the_readme_documents_the_build_command():
    assert "python -m sphinx -W -b html docs docs/_build" in (ROOT / "README.md").read_text()


def test_every_public_name_is_documented(built):
    names = public_names()
    assert "softlog_numerics.grad.softmax_jvp" in names and "softlog_numerics.oracle.grad.sld" in names
    assert not undocumented(names, read_inventory(built / "objects.inv"))


def test_the_check_catches_a_missing_name(built):
    inventory = read_inventory(built / "objects.inv")
    names = public_names()
    for gone in ("softlog_numerics.strategies.cotangents", "softlog_numerics.oracle.MAX_PRECISION"):
        assert undocumented(names, inventory - {gone}) == [gone]
    assert undocumented(names + ["softlog_numerics.no_such_name"], inventory) == [
        "softlog_numerics.no_such_name"
    ]


def test_every_proof_and_figure_is_on_a_page(built):
    for proof in (ROOT / "proofs").glob("*.md"):
        page = "index" if proof.name == "README.md" else proof.stem
        assert (built / "proofs" / f"{page}.html").exists(), proof.name
    images = {p.name for p in (built / "_images").iterdir()}
    missing = [p.name for p in (ROOT / "figures").glob("*.png") if p.name not in images]
    assert not missing, f"figures not shown on any page: {missing}"
