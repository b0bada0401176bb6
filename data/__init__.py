"""The bundled dataset (data/shops/) and the generator that made it."""
