"""The pipeline: the DAG (pipeline.py), its TFMA configuration (eval_config.py), every default
and the gates table (config.py), the TFX names it uses (tfx_api.py), which earlier spans a
run reads (resolvers.py; ingested.py, without TFX) and the local runner."""
