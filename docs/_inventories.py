"""Offline intersphinx inventories, built from the installed packages.

Intersphinx normally downloads each project's ``objects.inv``; fairskl's docs must build without
network. This module writes an inventory per project by walking the public names of the
installed package and mapping each to the page where that project's docs put it (the URL
patterns below). Links point to the projects' online docs, for the versions we pin.
"""

import importlib
import inspect
import zlib
from pathlib import Path

#: project -> (base URL, modules to walk, page of a name)
PROJECTS = {
    "sklearn": (
        "https://scikit-learn.org/stable/",
        ["sklearn", "sklearn.base", "sklearn.pipeline", "sklearn.model_selection",
         "sklearn.metrics", "sklearn.linear_model", "sklearn.decomposition", "sklearn.utils",
         "sklearn.utils.parallel", "sklearn.utils.validation", "sklearn.preprocessing",
         "sklearn.exceptions", "sklearn.compose", "sklearn.inspection"],
        lambda name: f"modules/generated/{name}.html#{name}",
    ),
    "fairlearn": (
        "https://fairlearn.org/main/",
        ["fairlearn.metrics", "fairlearn.reductions", "fairlearn.postprocessing"],
        lambda name: f"api_reference/generated/{name}.html#{name}",
    ),
    "skorch": (
        "https://skorch.readthedocs.io/en/stable/",
        ["skorch", "skorch.net", "skorch.classifier", "skorch.regressor", "skorch.callbacks",
         "skorch.helper", "skorch.dataset"],
        lambda name: f"{name.split('.')[1] if name.count('.') > 1 else 'net'}.html#{name}",
    ),
    "torch": (
        "https://docs.pytorch.org/docs/stable/",
        ["torch", "torch.nn", "torch.optim", "torch.utils.data", "torch.amp"],
        lambda name: f"generated/{name}.html#{name}",
    ),
    "torchvision": (
        "https://docs.pytorch.org/vision/stable/",
        ["torchvision.models"],
        lambda name: f"models/generated/{name}.html#{name}",
    ),
}


def _public_objects(module_name):
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]
    for name in names:
        try:
            obj = getattr(module, name, None)
        except ImportError:  # e.g. scikit-learn's experimental names
            continue
        if inspect.isclass(obj):
            yield f"{module_name}.{name}", "py:class", obj
        elif inspect.isfunction(obj) or inspect.isbuiltin(obj):
            yield f"{module_name}.{name}", "py:function", obj


def write_inventory(project, folder):
    """Write ``<folder>/<project>.inv`` and return its path."""
    base, modules, page = PROJECTS[project]
    lines, seen = [], set()
    for module_name in modules:
        for name, role, obj in _public_objects(module_name):
            if name in seen:
                continue
            seen.add(name)
            lines.append(f"{name} {role} 1 {page(name)} -")
            if role == "py:class":  # methods link to their class page
                for attr, member in vars(obj).items():
                    if not attr.startswith("_") and callable(member):
                        lines.append(f"{name}.{attr} py:method 1 {page(name)}.{attr} -")
    root = importlib.import_module(project)
    header = (f"# Sphinx inventory version 2\n# Project: {project}\n"
              f"# Version: {getattr(root, '__version__', '')}\n"
              f"# The remainder of this file is compressed using zlib.\n").encode()
    path = Path(folder) / f"{project}.inv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + zlib.compress(("\n".join(lines) + "\n").encode()))
    return path


def intersphinx_mapping(folder):
    """``intersphinx_mapping`` for conf.py, with every inventory written to ``folder``."""
    return {project: (PROJECTS[project][0], str(write_inventory(project, folder)))
            for project in PROJECTS}
