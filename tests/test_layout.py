"""The package's layout: no module borrows another module's private helper (a name with a
leading underscore) across fairskl's modules; a helper two modules need is public in its own
module (without the underscore), e.g. ``fairskl.metrics._bootstrap.replicates``."""

import ast
from pathlib import Path

import fairskl

ROOT = Path(fairskl.__file__).parent
#: the private base class of every classifier: subclassing it is what the estimators do
ALLOWED = {("fairskl._base", "_RegularizedClassifier")}


def _module_name(path):
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _borrowed_private_names():
    modules = {_module_name(p) for p in ROOT.rglob("*.py")}
    packages = {_module_name(p) for p in ROOT.rglob("__init__.py")}
    for path in sorted(ROOT.rglob("*.py")):
        here = _module_name(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or node.module is None:
                continue
            source = node.module
            if node.level:  # relative: resolve against this module's package
                base = here.split(".")
                base = base[: len(base) - node.level + (here in packages)]
                source = ".".join([*base, node.module])
            if not source.startswith("fairskl"):
                continue
            for alias in node.names:
                private = alias.name.startswith("_") and not alias.name.startswith("__")
                submodule = f"{source}.{alias.name}" in modules
                if private and not submodule and (source, alias.name) not in ALLOWED:
                    yield f"{here} imports {alias.name} from {source}"


def test_no_module_imports_another_modules_private_helper():
    assert list(_borrowed_private_names()) == []
