"""The part of TFX's public API (`tfx.v1`) that shopbusy uses, under the same names, imported
from the modules that define them.

`from tfx import v1` also imports every other public component and the Google Cloud AI
Platform and Vertex extensions, which shopbusy does not use; measured in
docs/benchmarks.md ("imports"), that is seconds of every `shopbusy run`. Each name below is
the very object `tfx.v1` exports (tests/test_tfx_api.py checks it), so code reads as the
TFX examples do: `from shopbusy.pipeline.tfx_api import tfx`, then `tfx.components.Trainer`.
"""

from types import SimpleNamespace

from tfx.components.example_validator.component import ExampleValidator
from tfx.components.pusher.component import Pusher
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.components.statistics_gen.component import StatisticsGen
from tfx.components.trainer.component import Trainer
from tfx.components.transform.component import Transform
from tfx.dsl.components.common.resolver import Resolver
from tfx.dsl.experimental.conditionals.conditional import Cond
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import LatestBlessedModelStrategy
from tfx.orchestration.local.local_dag_runner import LocalDagRunner
from tfx.orchestration.metadata import sqlite_metadata_connection_config
from tfx.orchestration.pipeline import Pipeline
from tfx.proto.example_gen_pb2 import Input, Output, SplitConfig
from tfx.proto.pusher_pb2 import PushDestination
from tfx.proto.range_config_pb2 import RangeConfig, StaticRange
from tfx.proto.trainer_pb2 import EvalArgs, TrainArgs
from tfx.proto.transform_pb2 import SplitsConfig
from tfx.types import standard_artifacts
from tfx.types.channel import Channel

tfx = SimpleNamespace(
    components=SimpleNamespace(
        StatisticsGen=StatisticsGen,
        ImportSchemaGen=ImportSchemaGen,
        ExampleValidator=ExampleValidator,
        Transform=Transform,
        Trainer=Trainer,
        Pusher=Pusher,
    ),
    dsl=SimpleNamespace(
        Pipeline=Pipeline,
        Resolver=Resolver,
        Channel=Channel,
        Cond=Cond,
        experimental=SimpleNamespace(LatestBlessedModelStrategy=LatestBlessedModelStrategy),
    ),
    proto=SimpleNamespace(
        Input=Input,
        Output=Output,
        SplitConfig=SplitConfig,
        SplitsConfig=SplitsConfig,
        TrainArgs=TrainArgs,
        EvalArgs=EvalArgs,
        PushDestination=PushDestination,
        RangeConfig=RangeConfig,
        StaticRange=StaticRange,
    ),
    orchestration=SimpleNamespace(
        LocalDagRunner=LocalDagRunner,
        metadata=SimpleNamespace(sqlite_metadata_connection_config=sqlite_metadata_connection_config),
    ),
    types=SimpleNamespace(standard_artifacts=standard_artifacts),
)
