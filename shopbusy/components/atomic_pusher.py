"""A Pusher whose push becomes visible at once: no reader of the serving directory ever sees
a version folder without a complete SavedModel.

TFX's Pusher copies the model file by file into SERVING/<version>/; a process killed half
way leaves a partial version there for good. This executor lets the stock Pusher write into
a hidden staging folder beside the versions, then renames the finished folder into place
(atomic on one filesystem) and clears staging left by killed pushes. Last it writes the
version's pushed.json marker (components/served_models.py): on GCS the rename copies object by
object, and readers trust only marked versions there.

A model that is already the newest served version is not pushed again. That is a scheduled
run over data that did not change: every task up to the Trainer is a cache hit, so the
"candidate" is the served model itself (on Vertex AI also the Evaluator's baseline). A second
copy under a new version number would tell model servers and readers that something changed.
"""

import json
import os

from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.io import fileio

from shopbusy.components import served_models
from shopbusy.components.served_models import STAGING_DIR


class AtomicPusherExecutor(pusher_executor.Executor):
    def Do(self, input_dict, output_dict, exec_properties):
        destination = json.loads(exec_properties["push_destination"])
        serving_dir = destination["filesystem"]["base_directory"]
        pushed_model = output_dict["pushed_model"][0]
        newest = served_models.latest(serving_dir)
        if newest and served_models.read_marker(newest).get("model") == input_dict["model"][0].uri:
            pushed_model.set_int_custom_property("pushed", 0)
            pushed_model.set_string_custom_property(served_models.ALREADY_SERVED, os.path.basename(newest))
            pushed_model.set_string_custom_property("pushed_destination", newest)
            return
        staging_dir = os.path.join(serving_dir, STAGING_DIR)
        if fileio.exists(staging_dir):
            fileio.rmtree(staging_dir)  # what a killed push left behind
        destination["filesystem"]["base_directory"] = staging_dir
        super().Do(input_dict, output_dict, dict(exec_properties, push_destination=json.dumps(destination)))

        if pushed_model.get_int_custom_property("pushed") == 1:
            version = pushed_model.get_string_custom_property("pushed_version")
            final = os.path.join(serving_dir, version)
            fileio.rename(os.path.join(staging_dir, version), final)
            pushed_model.set_string_custom_property("pushed_destination", final)
            blessing = input_dict["model_blessing"][0]
            recipe = json.loads(exec_properties.get("custom_config") or "null") or {}
            trained_on = served_models.trained_on(
                blessing.get_int_custom_property(served_models.DATA_SPAN),
                blessing.get_string_custom_property(served_models.DATA_FINGERPRINT),
                recipe.get(served_models.RECIPE, ""),
            )
            served_models.write_marker(final, version, input_dict["model"][0].uri, blessing.uri, trained_on)
        if fileio.exists(staging_dir):
            fileio.rmtree(staging_dir)
