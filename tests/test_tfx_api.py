"""pipeline.tfx_api must be a faithful subset of TFX's public API, not a fork of it."""

from types import SimpleNamespace

from pipeline.tfx_api import tfx as subset


def _names(namespace, prefix=()):
    for name, value in vars(namespace).items():
        if isinstance(value, SimpleNamespace):
            yield from _names(value, prefix + (name,))
        else:
            yield prefix + (name,), value


def test_every_name_is_the_object_tfx_v1_exports():
    from tfx import v1 as public

    names = list(_names(subset))
    assert len(names) >= 20
    for path, value in names:
        exported = public
        for part in path:
            exported = getattr(exported, part)
        if path[-1] == "standard_artifacts":  # v1 re-exports the module's classes in a module of its own
            assert exported.Model is value.Model and exported.ModelBlessing is value.ModelBlessing
        else:
            assert exported is value, ".".join(path)
