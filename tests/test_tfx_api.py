"""shopbusy.pipeline.tfx_api must be a faithful subset of TFX's public API, not a fork of it,
and exactly the part of it that the code using it needs."""

import ast
import os
from types import SimpleNamespace

from shopbusy.pipeline import tfx_api
from shopbusy.pipeline.tfx_api import tfx as subset
from tests.helpers import REPO_ROOT


def _names(namespace, prefix=()):
    for name, value in vars(namespace).items():
        if isinstance(value, SimpleNamespace):
            yield from _names(value, prefix + (name,))
        else:
            yield prefix + (name,), value


def _used_names():
    """Every `tfx.a.b.C` the modules that import the subset write, as ('a', 'b', 'C')."""
    used = set()
    for folder, _, files in os.walk(os.path.join(REPO_ROOT, "shopbusy")):
        for name in files:
            if not name.endswith(".py"):
                continue
            with open(os.path.join(folder, name)) as f:
                tree = ast.parse(f.read())
            if not any(isinstance(n, ast.ImportFrom) and n.module == tfx_api.__name__ for n in ast.walk(tree)):
                continue
            inner = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}  # a.b of a.b.c
            for node in ast.walk(tree):
                if id(node) in inner:
                    continue
                chain = []
                while isinstance(node, ast.Attribute):
                    chain.insert(0, node.attr)
                    node = node.value
                if isinstance(node, ast.Name) and node.id == "tfx" and chain:
                    used.add(tuple(chain))
    return used


def _resolve(namespace, path):
    """The subset's object for a used path, and the part of the path that named it."""
    value, named = namespace, ()
    for part in path:
        if not isinstance(value, SimpleNamespace):
            break  # an attribute of a class or proto (tfx.proto.Input.Split), not a name of the subset
        value, named = getattr(value, part), named + (part,)
    return value, named


def test_every_name_is_the_object_tfx_v1_exports():
    from tfx import v1 as public

    for path, value in _names(subset):
        exported = public
        for part in path:
            exported = getattr(exported, part)
        if path[-1] == "standard_artifacts":  # v1 re-exports the module's classes in a module of its own
            assert exported.Model is value.Model and exported.ModelBlessing is value.ModelBlessing
        else:
            assert exported is value, ".".join(path)


def test_the_subset_has_every_name_the_code_uses_and_no_other():
    used = _used_names()
    assert ("components", "Trainer") in used  # the scan sees the DAG
    named = set()
    for path in used:
        value, name = _resolve(subset, path)  # AttributeError: the code uses a name the subset lacks
        assert not isinstance(value, SimpleNamespace), ".".join(path)
        named.add(name)
    assert named == {path for path, _ in _names(subset)}


def test_the_installed_packages_start_from_compiled_bytecode():
    """`make install` writes every package's .pyc once (uv's --compile-bytecode): where
    PYTHONDONTWRITEBYTECODE is set, as on these machines, Python never writes them itself, and
    each process importing TFX would compile TensorFlow's sources again."""
    import importlib.util

    import apache_beam
    import tensorflow
    import tfx

    for package in (tensorflow, tfx, apache_beam):
        cached = importlib.util.cache_from_source(package.__file__)
        assert os.path.exists(cached), f"{package.__name__}: no {cached}; reinstall with `make install`"
