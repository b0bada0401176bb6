"""The bundled dataset (shops/), the generator that made it, and the pre-flight checks every
CSV passes before TFX reads it (inputs.py)."""
