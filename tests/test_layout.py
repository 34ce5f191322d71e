"""The tree reads as the chain, and its import graph runs one way.

* ``codegen`` (the integer side) never imports ``pytrain`` or torch: every one of its modules imports in a
  fresh interpreter where both are blocked, and no ``import`` statement in it, at module level or inside a
  function, names them.
* Inside each package the stages import only the stages before them (the order below); an import of a later
  stage, even a lazy one inside a function, fails this test.
* The generated C did not change with the move: the folders generated for fixed models are pinned by digest.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

from support.intnet_builders import tiny_network

ROOT = Path(__file__).resolve().parents[1]

# each package's sub-packages (or top-level modules) in the order of the chain; a stage may import itself and
# the stages before it, never one after it
STAGES = {
    "codegen": ["common", "integer", "generator", "verify"],
    "pytrain": ["runfolder", "data", "model", "training", "export", "deploy", ("bench", "report", "interop"), ("cli", "__main__")],
}


def _modules(package: str) -> list[str]:
    pkg = __import__(package)
    return sorted(m.name for m in pkgutil.walk_packages(pkg.__path__, prefix=package + "."))


def _imports(path: Path, module: str) -> set[str]:
    """Every module an ``import`` statement in ``path`` names (relative imports resolved), at any depth."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.add(name)
            out.update(f"{name}.{alias.name}" for alias in node.names)
    return out


def _source(module: str) -> Path:
    rel = Path(*module.split("."))
    path = ROOT / rel.with_suffix(".py")
    return path if path.is_file() else ROOT / rel / "__init__.py"


def _stage(package: str, module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != package or len(parts) < 2:
        return None
    for rank, stage in enumerate(STAGES[package]):
        if parts[1] in (stage if isinstance(stage, tuple) else (stage,)):
            return rank
    return None


def test_every_module_belongs_to_a_stage():
    for package in STAGES:
        for module in _modules(package):
            assert _stage(package, module) is not None, f"{module} is in no stage of {package}: add it to STAGES"


def test_codegen_never_names_pytrain_or_torch():
    for module in _modules("codegen"):
        bad = {m for m in _imports(_source(module), module) if m.split(".")[0] in ("pytrain", "torch")}
        assert not bad, f"{module} imports {sorted(bad)}"


@pytest.mark.parametrize("package", sorted(STAGES))
def test_stages_import_only_earlier_stages(package):
    for module in _modules(package):
        rank = _stage(package, module)
        for target in _imports(_source(module), module):
            other = _stage(package, target)
            assert other is None or other <= rank, (
                f"{module} (stage {STAGES[package][rank]}) imports {target} (stage {STAGES[package][other]})")


def test_every_codegen_module_imports_without_pytrain_or_torch():
    blocker = (
        "import sys, importlib, importlib.abc, pkgutil\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('pytrain', 'torch'):\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import codegen\n"
        "names = sorted(m.name for m in pkgutil.walk_packages(codegen.__path__, prefix='codegen.'))\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('pytrain', 'torch')]\n"
        "print(len(names))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", blocker], capture_output=True, text=True, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) == len(_modules("codegen")) >= 15


# sha256 over the generated files (name, NUL, bytes, NUL, in name order) of tiny_network(variant, n_in=5, n=8,
# n_layers=2, weight_bits=bits, seed=7) with prefix "pinned", last changed on purpose by the DSP / Helium / packed
# int4 kernels (padded and packed matrices, their packing limits, the reduced leak, the profile regions); and the
# digest of the model file itself, so that a change of the test builder is told apart from a change of the C.
PINNED = {
    (None, 8): ("b3ffe4721234b1275ae7829656e06e726dd9fffdfa6a6973dc4b3bf7a71ba227",
                "827aeaa2cd1f0079d9c96817cac46350bf1729b24d9772664d0ff70dc95d09e0"),
    (None, 16): ("74e049f5a73bef3e5510ce7a3dbe455138973a6bd8c87c6d1c76300245797b2e",
                 "46ba4f709aa503174096f4fc1b038229615ec28179024db1f8a3a918eeb2ef0c"),
    (None, 4): ("cb709ae19a503f96eda267b01c4aa98b598574089ea5814fce865926e8ae535a",
                "0983f6b003d6f28e90d9f3db3442c3099405adb3d3926636f9c189b43731844d"),
    ("conv", 8): ("f7ef4dd4616a4a56a619bbbe709d3948181f621af0f1acf5bb160a732de89f47",
                  "835af9d086993e877bfd57d2acf9f5abcfa8c8a05718b8f718ca54e302634dd7"),
    ("conv", 16): ("9b9cbaa604c702a2e5a6b02b32007f3b4ee397c1b1df653d828f63a19769e576",
                   "a5a65134b5ce738ed311ee38ac091ebefc614717e2acc28dc892ca61d334644c"),
    ("conv", 4): ("8ecf236f126d5cbdff4451791da4de304a9365cb7e9949babc3a1ea8604304b5",
                  "c40c0e9a26c02e3efd5800cb30dcb28f68cd6ca7635dd6446d4972ad7b92c65a"),
    ("dense", 8): ("2a0860679a010f5f76de55a765cc311162f5ae98664d93d060af77ca703f34dd",
                   "fe21f0f0d5136ac264014df386bf635e7609d4113b40f5c2e5bcaf446b142bfc"),
    ("dense", 16): ("dbcd824203024eea5258d097f6c410587c20f705ccdeccf2cf270e34f8d52d07",
                    "0aa19b6cc86c6092c5844bd090770cb5978694826a5ecfa96202c29c77ea0932"),
    ("dense", 4): ("d693b1b40e140dfb1e0e73f683b0907b3b6a6b8894d0370662d318d22fc7a99a",
                   "e6f3baef73179219db744b53be7f1625555377dd250a070ab79c942619e28aac"),
    ("conv-nodelay", 8): ("1f1e1bc665ed6dfc1d8b54ca15a2d7a4eb14953e02d4fab8ccd9af0ab04b3d33",
                          "e4938311e105a3a6b80e066e9eb90ca5bba674235d2899eaba240aa9f54bccb0"),
    ("conv-nodelay", 16): ("fe884bfd3a914fa6e81ab6bb31c064b4ff6c9cdb41e3fc2220785180fc7fc148",
                           "89d07bc01424a08bda1edfaff6bde525128108d731fc4bfefb79da421bfca505"),
    ("taps", 8): ("716eb4c3b5dcd4ddb385f6af592fd393dce06859ae27f13edbd35b8e583d9f68",
                  "ced7508319ab13bd1e5c61cede2aed77c912be5804927b74751609b02bd83729"),
    ("taps", 16): ("ab8fc76d2e5bab9d1aead0e20b18a383a1a9ece6f72a4e5bef58391ce7e4a1ef",
                   "5a9e0d891904587bd92b4dd64a99917db8f734083ceb9f5a5c7cd766da05dbd8"),
}


def folder_digest(files: dict[str, str]) -> str:
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + files[name].encode("utf-8") + b"\0")
    return h.hexdigest()


@pytest.mark.parametrize("variant,bits", sorted(PINNED, key=json.dumps))
def test_generated_c_is_pinned(variant, bits):
    from codegen.generator.emit import generate
    from codegen.integer.modelfile import network_digest

    net = tiny_network(variant, n_in=5, n=8, n_layers=2, weight_bits=bits, seed=7)
    model_digest, c_digest = PINNED[(variant, bits)]
    assert network_digest(net) == model_digest, "the test builder changed, not the generator"
    assert folder_digest(generate(net, "pinned")[1]) == c_digest


def test_the_import_scan_sees_lazy_and_relative_imports(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("import numpy\n\ndef f():\n    from ..model import network\n    import torch\n")
    names = _imports(source, "pytrain.export.m")
    assert {"pytrain.model", "pytrain.model.network", "torch", "numpy"} <= names
    assert _stage("pytrain", "pytrain.model.network") < _stage("pytrain", "pytrain.export.m")
    assert _stage("pytrain", "pytrain.cli.train") > _stage("pytrain", "pytrain.export.m")
