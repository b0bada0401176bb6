"""The Transform and Trainer user code (TFX's module files). The pipeline names its functions
by import path and puts a digest of this folder's sources in those components'
custom_config (pipeline.module_digest), so only module code lives here: a change to it
re-runs those components, and a change elsewhere does not invalidate their cache."""
