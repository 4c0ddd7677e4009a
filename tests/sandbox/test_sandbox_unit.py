"""Fast checks that need no Podman: ids, the wire format, the image recipe hash."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bindings.errors import PloyError
from bindings.sandbox import image
from bindings.sandbox.agent import proto
from bindings.sandbox.manager import validate_id


def test_ids() -> None:
    assert validate_id("a") == "a" and validate_id("A-1_b.c") == "A-1_b.c" and validate_id("x" * 63)
    for bad in ["", "-a", ".a", "a/b", "a b", "x" * 64, "é", None, 3]:
        with pytest.raises(PloyError) as info:
            validate_id(bad)
        assert info.value.code == "INVALID_ARGUMENT"


def test_frames_roundtrip_binary_without_bloat() -> None:
    payload = bytes(range(256)) * 1000

    async def go() -> list[tuple[bytes, bytes]]:
        reader = asyncio.StreamReader()
        reader.feed_data(proto.json_frame({"op": "x"}) + proto.frame(b"D", payload) + proto.frame(b"D", b""))
        reader.feed_eof()
        return [await proto.read_frame(reader) for _ in range(3)]

    frames = asyncio.run(go())
    assert frames[0] == (b"J", b'{"op":"x"}') and frames[1] == (b"D", payload) and frames[2] == (b"D", b"")
    assert len(proto.frame(b"D", payload)) == len(payload) + proto.HEADER.size


def test_recipe_hash_covers_image_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(image, "BIN_DIR", tmp_path)
    empty = image.default_tag()
    (tmp_path / "soulforge").write_text("#!/usr/bin/env python3\n")
    with_tool = image.default_tag()
    (tmp_path / "soulforge").write_text("#!/usr/bin/env python3\nprint('v2')\n")
    assert len({empty, with_tool, image.default_tag()}) == 3
    assert "COPY bin/ /usr/local/bin/" in image._containerfile(image.base_tag(), image._layer_files())
    assert image.default_tag().startswith("localhost/ploy-sandbox:")
