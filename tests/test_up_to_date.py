"""The up-to-date check: which changes make a run necessary, and what ML Metadata records."""

import dataclasses

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from shopbusy import cli
from shopbusy.cli import common, up_to_date
from shopbusy.data import inputs
from shopbusy.pipeline import config
from shopbusy.results import metadata


def _digest(run_config, data):
    return up_to_date.inputs_digest(run_config, inputs.resolve(data))


def _run_config(data, workdir, **kwargs):
    source = inputs.resolve(data)
    return config.RunConfig.local(source.root, source.pattern, config.Workdir(str(workdir)), **kwargs)


def test_the_digest_changes_with_data_configuration_and_code(small_csv, tmp_path, monkeypatch):
    run_config = _run_config(small_csv, tmp_path / "workdir")
    digest = _digest(run_config, small_csv)
    assert _digest(run_config, small_csv) == digest  # stable

    assert _digest(dataclasses.replace(run_config, gates=config.Gates(min_accuracy=0.9)), small_csv) != digest
    assert _digest(dataclasses.replace(run_config, training=config.Training(seed=1)), small_csv) != digest
    assert _digest(dataclasses.replace(run_config, beam_args=["--direct_num_workers=2"]), small_csv) != digest

    with open(small_csv, "a") as f:  # one more row: size and time change, as CsvExampleGen sees it
        f.write(open(small_csv).read().splitlines()[-1] + "\n")
    touched = _digest(run_config, small_csv)
    assert touched != digest

    code = tmp_path / "code"
    code.mkdir()
    (code / "module.py").write_text("A = 1\n")
    monkeypatch.setattr(up_to_date, "CODE_ROOTS", [str(code)])
    before = _digest(run_config, small_csv)
    (code / "module.py").write_text("A = 2\n")
    assert _digest(run_config, small_csv) != before


def test_the_newest_run_with_the_same_digest_is_up_to_date(tmp_path):
    path = str(tmp_path / "metadata.sqlite")
    assert up_to_date.finished_run(path, "abc") is None  # no workdir yet

    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = path  # a new store, as the first pipeline run creates it
    store = metadata_store.MetadataStore(connection)
    run_type = store.put_context_type(metadata_store_pb2.ContextType(name=metadata.RUN_CONTEXT_TYPE))
    for name in ("run-1", "run-2"):
        store.put_contexts([metadata_store_pb2.Context(type_id=run_type, name=name)])
    assert up_to_date.finished_run(path, "abc") is None  # no run has finished

    up_to_date.record_finished(path, "run-1", "abc")
    assert up_to_date.finished_run(path, "abc") is None  # run-2 came after it

    up_to_date.record_finished(path, "run-2", "abc")
    record = up_to_date.finished_run(path, "abc")
    assert record.run_id == "run-2" and record.pushed_model is None
    assert up_to_date.finished_run(path, "other") is None


def test_an_unchanged_run_is_answered_before_the_pre_flight_reads_the_data(small_csv, tmp_path, monkeypatch, capsys):
    # The pre-flight reads every cell in Python; on large inputs that is most of the answer's
    # time. A finished run on the same inputs must be answered without it.
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    path = config.Workdir(str(workdir)).metadata_path
    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = path
    store = metadata_store.MetadataStore(connection)
    run_type = store.put_context_type(metadata_store_pb2.ContextType(name=metadata.RUN_CONTEXT_TYPE))
    store.put_contexts([metadata_store_pb2.Context(type_id=run_type, name="run-1")])
    up_to_date.record_finished(path, "run-1", "the-digest")

    def pre_flight(*args, **kwargs):
        raise AssertionError("the pre-flight ran")

    monkeypatch.setattr(up_to_date, "inputs_digest", lambda run_config, source: "the-digest")
    monkeypatch.setattr(inputs, "check", pre_flight)
    code = cli.main(["run", "--data", small_csv, "--workdir", str(workdir)])
    assert code == common.EXIT_NOT_BLESSED  # run-1 pushed nothing
    assert "up to date" in capsys.readouterr().out
