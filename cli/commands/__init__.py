"""The `baas` commands, one small module per command group; each parses its options, makes one call of the
Python API (baas.training.api) and prints the result with cli/render.py."""
