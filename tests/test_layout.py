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

from intnet_builders import tiny_network

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
# n_layers=2, weight_bits=bits, seed=7) with prefix "pinned"; and the digest of the model file itself, so that a
# change of the test builder is told apart from a change of the C. First computed before the tree was
# reorganised (the move left them unchanged); a deliberate change of the generated C updates them here, with the
# reason in its commit (since then: the state check at step entry, C++-safe restrict, header guards that cannot
# meet a library's, CMakeLists.txt; the DSP / Helium / packed int4 kernels with their padded and packed
# matrices, packing limits, the reduced leak and the profile regions; integer spec 2, which changes the
# banner's spec version and the model digest).
PINNED = {
    (None, 8): ("cb0f9ee299ab79198004fc3ce2ad834baec59336f7595e2f963f1a2be66bf15a",
                "8b238c61fc53ea7d0d883218602cb99e2841b4255a6da64f7aa85e1495d925b4"),
    (None, 16): ("3976139ecb0f72f78cdf2572d33cb9dd769f69dd6d30905bd43767d72d65a628",
                 "e3499dc3f6ba7d1c195b8b963bc63a734db2583320c3c33c8efe4b43c02a60b0"),
    (None, 4): ("d77759e96dc73dbf6a79a8ed55839f807b50ec65468634c9ff99a55874ea3f7b",
                "4804077daaf1cd534783c8ba2e1075f9d74dac20f7ae96abb108c8e4e7b91a7d"),
    ("conv", 8): ("28e26de255a7b6151e819eb66b72f861b04dfae8a1155de4e439d1428416b230",
                  "8b7c27c9a97cab0944448357ecaedf21a37f66ee0963e7c9617ac81abf2d6768"),
    ("conv", 16): ("02334a5fef8154be75efe2c4701307e391cb83fc00d2b5c430932d492b321b70",
                   "6d50df65aa3ce1750ae72f7096fda6c5adaa38300885d78da23340a237b958a3"),
    ("conv", 4): ("bceb745c32a8e30363b41394eb7e4c6ea9d333317b38b63111161a9ea47aad55",
                  "a06406d5340d883e7ff48aba2d161eefb7304b69bca2fd41904503ee11820a26"),
    ("dense", 8): ("c56d133056ff3e2b0bcf7798b6c968ca374fbb41c41815ba37c088a9ec7c6c68",
                   "d126de54f73e9f1bab4045d1707eb0b560f16d9203c45c97dcbd68ee73957ec2"),
    ("dense", 16): ("53278037fe2bcafe2dbfd75fefaaa94df0d16db475b8fe10eee9114d0b0f526c",
                    "ba31f4a17f0d1cf80687f20814162a775b531eabc4430fe3e48959b3eb3dc09c"),
    ("dense", 4): ("cccb361ebbc7e71b2e61382e408e5ca4d32be204bbc4a62c59bfe0992d2ad6c6",
                   "1b01eb29c24d294ad6447af109b8278d30f7fef3347379c3d881597b07c7aa30"),
    ("conv-nodelay", 8): ("05e5ecee6e4f614c11ad57df873ba489cdb112f7db4531428fa84a8e383be230",
                          "d4959e553a00a98755a505d26c1b2a7cf236bbf532202f275fb3d708affe4ca9"),
    ("conv-nodelay", 16): ("0bb19e7bd20739decbc61dccd8ba43ea784d7d98b51a642c7b6d3ab877314f32",
                           "994ded44b4b1b65aaf42e920660f58abffa5387c29abe96efb342a06a57852e5"),
    ("taps", 8): ("0289faf3c062b183bfba7e95cb66b8c3d39583584adaf75c33dea833666c72ba",
                  "83ff38a501c80701dc19161d8d4150a7792e7d374a879309bfda2665af26e8d7"),
    ("taps", 16): ("37874d7b596a78a5862abd71048172443443f6ce961acc85a1a22552736fe6ee",
                   "1c6095f321e68fdbc9c2757dc3ff78f1c976d2e11394ebbad44440872696f5f7"),
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


def test_generated_c_with_a_front_end_is_pinned():
    """The same for a model that hears: tiny_network("conv", n_in=32, ...) with the default integer front end."""
    import dataclasses

    from codegen.generator.emit import generate
    from codegen.integer.frontend import FrontEndConfig, design
    from codegen.integer.modelfile import network_digest

    net = tiny_network("conv", n_in=32, n=8, n_layers=2, weight_bits=8, seed=7)
    net = dataclasses.replace(net, bin_ms=10.0, frontend=design(FrontEndConfig()))
    assert network_digest(net) == "106fd8e6048e1db717169ae4a14635ad8c3425a94c69ac7976392c302205cc8b"
    files = generate(net, "pinned")[1]
    assert "pinned_frontend.c" in files and "delrec_frontend.h" in files
    assert folder_digest(files) == "3e151e814fefd758463952bdace99273f9729be7510c401fe775603215578039"


def test_the_import_scan_sees_lazy_and_relative_imports(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("import numpy\n\ndef f():\n    from ..model import network\n    import torch\n")
    names = _imports(source, "pytrain.export.m")
    assert {"pytrain.model", "pytrain.model.network", "torch", "numpy"} <= names
    assert _stage("pytrain", "pytrain.model.network") < _stage("pytrain", "pytrain.export.m")
    assert _stage("pytrain", "pytrain.cli.train") > _stage("pytrain", "pytrain.export.m")


# The same builder at integer spec 1, computed before the front end existed (spec 2): a spec-1 model file is
# still read, and generates the very C it generated then, byte for byte.
PINNED_SPEC1 = {
    (None, 8): ("b3ffe4721234b1275ae7829656e06e726dd9fffdfa6a6973dc4b3bf7a71ba227",
                "978ee1dc04e9056979c231d09ee861367a9f68ff72217b6e798af2bf82a56bdd"),
    ("conv", 8): ("f7ef4dd4616a4a56a619bbbe709d3948181f621af0f1acf5bb160a732de89f47",
                  "b541bb8d26aaa14829629098de14e21695b430934234a40a35d82746f646ec1f"),
    ("taps", 16): ("ab8fc76d2e5bab9d1aead0e20b18a383a1a9ece6f72a4e5bef58391ce7e4a1ef",
                   "39626f3265e34de4606e327f55c5cb406871c0bb4a8c55e3bd1a454d6888ff3a"),
}


@pytest.mark.parametrize("variant,bits", sorted(PINNED_SPEC1, key=str))
def test_spec1_model_files_read_and_generate_as_before(variant, bits, tmp_path):
    import dataclasses

    from codegen.generator.emit import generate
    from codegen.integer.modelfile import load_network, network_bytes, network_digest, save_network

    model_digest, c_digest = PINNED_SPEC1[(variant, bits)]
    net = dataclasses.replace(tiny_network(variant, n_in=5, n=8, n_layers=2, weight_bits=bits, seed=7), spec_version=1)
    assert network_digest(net) == model_digest and b'"frontend"' not in network_bytes(net)
    path = tmp_path / "old.int.npz"
    save_network(net, path)
    loaded = load_network(path)
    assert loaded.spec_version == 1 and network_digest(loaded) == model_digest
    files = generate(loaded, "pinned")[1]
    assert folder_digest(files) == c_digest and "(integer spec 1)" in files["pinned.c"]
