"""Beam 2.59's DaskRunner with its two start-up bugs worked around, to show what stops TFX's
components on it (bench/notes.md, "A distributed engine"; not used by shopbusy itself).

    uv pip install --target /tmp/dask --no-deps dask==2024.8.0 distributed==2024.8.0 ...  # notes
    PYTHONPATH=/tmp/dask:. shopbusy run --data shops.csv --workdir /tmp/dask-run \\
        --beam-arg=--runner=bench.dask_runner.DaskRunner

1. `DaskRunner.run_pipeline` hands every non-default pipeline option (`runner` included) to
   `distributed.Client`, whose workers then fail: "Server.__init__() got an unexpected keyword
   argument 'runner'". Here only the Dask options are passed.
2. `DaskRunnerResult.wait_until_finish` calls `client.wait_for_workers(timeout=...)`, which
   distributed >= 2023 refuses without `n_workers`. Here it waits for the futures instead.

What remains is the runner's design: its ParDo calls `DoFn.process` on a Dask bag, without
`setup`/`start_bundle`/`finish_bundle` and without side inputs, so the first component fails
on side inputs ("'ArgumentPlaceholder' object is not iterable") or in Beam's own TFRecord sink
("'_WriteBundleDoFn' object has no attribute 'writer'"), whichever Dask task fails first.
"""

import dask.distributed as ddist
from apache_beam.runners.dask import dask_runner
from apache_beam.runners.dask.overrides import dask_overrides
from apache_beam.runners.runner import PipelineState

_CLIENT_OPTIONS = ("address", "timeout", "scheduler_file", "name", "connection_limit")


class _Result(dask_runner.DaskRunnerResult):
    def wait_until_finish(self, duration=None):
        try:
            ddist.wait(self.futures)
            self.client.gather(self.futures, errors="raise")
            self._state = PipelineState.DONE
        except BaseException:
            self._state = PipelineState.FAILED
            raise
        return self._state


class DaskRunner(dask_runner.DaskRunner):
    def run_pipeline(self, pipeline, options):
        all_options = options.view_as(dask_runner.DaskOptions).get_all_options(drop_default=True)
        client = ddist.Client(**{key: value for key, value in all_options.items() if key in _CLIENT_OPTIONS})
        pipeline.replace_all(dask_overrides())
        visitor = self.to_dask_bag_visitor()
        pipeline.visit(visitor)
        return _Result(client, client.compute(list(visitor.bags.values())))
