"""The Transform and Trainer code: named by import path on every runner, with a digest of the
module sources that re-runs those components when the code changes (pipeline.module_digest)."""

import json
import shutil

from shopbusy.pipeline import config, pipeline


def _components(tmp_path):
    run = config.RunConfig.local(str(tmp_path), "*", config.Workdir(str(tmp_path / "workdir")))
    return {c.id: c for c in pipeline.create_pipeline(run).components}


def test_the_local_pipeline_names_user_code_by_import_path_with_the_modules_digest(tmp_path):
    components = _components(tmp_path)
    transform, trainer = components["Transform"], components["Trainer"]
    assert transform.exec_properties["preprocessing_fn"] == config.PREPROCESSING_FN
    assert trainer.exec_properties["run_fn"] == config.RUN_FN
    assert not transform.exec_properties.get("module_file") and not trainer.exec_properties.get("module_file")
    digest = pipeline.module_digest()
    assert json.loads(transform.exec_properties["custom_config"]) == {"module_digest": digest}
    assert json.loads(trainer.exec_properties["custom_config"])["module_digest"] == digest


def test_editing_a_module_changes_the_digest_and_so_the_components_cache_key(tmp_path, monkeypatch):
    modules = tmp_path / "modules"
    shutil.copytree(config.MODULES_DIR, modules, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(config, "MODULES_DIR", str(modules))
    assert pipeline.module_digest() == pipeline.module_digest()
    before = pipeline.module_digest()
    (modules / "notes.txt").write_text("not code")
    assert pipeline.module_digest() == before
    with open(modules / "model.py", "a") as f:
        f.write("\n# an edit\n")
    edited = pipeline.module_digest()
    assert edited != before
    assert json.loads(_components(tmp_path)["Trainer"].exec_properties["custom_config"])["module_digest"] == edited
