"""The `baas` command-line interface."""
