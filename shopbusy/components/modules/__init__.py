"""TFX module files. Everything in this folder is packaged into the Transform and Trainer
user-code wheels, so only module code lives here: a change to it re-runs those components,
and a change elsewhere does not invalidate their cache."""
