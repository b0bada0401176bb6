"""The pipeline: the DAG (pipeline.py), its TFMA configuration (eval_config.py), every default
and the gates table (config.py), the TFX names it uses (tfx_api.py) and the local runner."""
