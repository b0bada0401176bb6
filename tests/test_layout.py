"""The tree is the architecture: each package imports only the packages below it; the
command line, at the top, may import them all."""

import ast
import os

from tests.helpers import REPO_ROOT

PACKAGE = os.path.join(REPO_ROOT, "shopbusy")
# What each part of shopbusy may import from the others.
MAY_IMPORT = {
    "components": set(),  # TFX component code: module files, custom components
    "data": {"components"},  # the data contract's columns
    "pipeline": {"components"},  # the DAG is made of the components
    "results": {"components", "pipeline"},  # reads what a pipeline run wrote
    "serving": {"components", "data", "pipeline"},
    "kubeflow": {"components", "data", "pipeline"},  # compiles the same DAG; reads the serving layout
    "cli": {"components", "data", "pipeline", "results", "serving", "kubeflow"},
}
# The one module that reaches up: the cluster's report task renders, inside its executor, the
# page the results package writes (the DAG is built from components, and results reads them).
EXCEPTIONS = {os.path.join("components", "slice_report.py"): {"results"}}


def _part(path: str) -> str:
    """'pipeline' for shopbusy/pipeline/config.py, 'serving' for shopbusy/serving.py."""
    return os.path.splitext(os.path.relpath(path, PACKAGE).split(os.sep)[0])[0]


def _imported_parts(path: str):
    with open(path) as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "shopbusy" and len(parts) > 1:
                yield parts[1]
            elif isinstance(node, ast.ImportFrom) and name == "shopbusy":
                yield from (alias.name for alias in node.names)


def test_no_package_imports_one_above_it():
    sources = [
        os.path.join(folder, name)
        for folder, _, names in os.walk(PACKAGE)
        for name in names
        if name.endswith(".py") and name != "__init__.py" or (name == "__init__.py" and folder != PACKAGE)
    ]
    assert {_part(path) for path in sources} == set(MAY_IMPORT)  # every part has its rule
    wrong = [
        f"{os.path.relpath(path, REPO_ROOT)} imports shopbusy.{part}"
        for path in sources
        for part in _imported_parts(path)
        if part != _part(path)
        and part not in MAY_IMPORT[_part(path)] | EXCEPTIONS.get(os.path.relpath(path, PACKAGE), set())
    ]
    assert wrong == []
