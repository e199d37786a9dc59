"""The layering rule and the one-definition rule, enforced as tests."""

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "apex"
ROOT = SRC.parents[1]


def test_import_layers_hold() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def public_class_definitions() -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                found[node.name].append(str(path.relative_to(SRC)))
    return found


def test_every_public_class_is_defined_once() -> None:
    duplicates = {
        name: where for name, where in public_class_definitions().items() if len(where) > 1
    }
    assert duplicates == {}


def test_the_duplicate_check_sees_classes() -> None:
    names = public_class_definitions()
    assert "Settings" in names and "Database" in names
