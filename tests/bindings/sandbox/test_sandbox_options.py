"""The sandbox options' bounds (no Podman)."""

from __future__ import annotations

from bindings.sandbox import options
from bindings.sandbox.agent import args


def test_the_output_limit_ceiling_is_the_agents() -> None:
    """options.py cannot import the agent's modules (reading ploy.yaml loads only the schema): the two
    copies of the ceiling must agree, or ploy.yaml would accept what every exec then refuses."""
    assert options.OUTPUT_LIMIT_MAX == args.OUTPUT_LIMIT_MAX
    assert options.RANGES["outputLimit"][1] == args.OUTPUT_LIMIT_MAX


def test_memory_sizes() -> None:
    assert options.memory_bytes("512m") == 512 << 20
    assert options.memory_bytes("2g") == 2 << 30
    assert options.memory_bytes("1024") == 1024
    assert options.memory_bytes("1.5G") == 3 << 29
