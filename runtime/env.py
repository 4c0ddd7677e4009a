"""Builds the `env` a worker receives from ploy.yaml: vars from .dev.vars/.env and the declared bindings."""
