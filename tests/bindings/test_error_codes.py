"""Error codes are declared once (bindings/error_codes.py): the code, the READMEs and the typings agree."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from bindings import error_codes
from bindings.errors import InvalidArgument, NotFound, PloyError
from bindings.sandbox import image
from tests.conftest import REPO

README_BLOCK = re.compile(r"<!-- error-codes:(\w+) -->\n(.*?)<!-- /error-codes -->", re.S)


def test_each_code_is_one_constant_of_its_own_name() -> None:
    constants = {k: v for k, v in vars(error_codes).items() if k.isupper() and k in error_codes.CODES}
    assert constants == {code: code for code in error_codes.CODES}
    for c in error_codes.CODES.values():
        assert (
            c.meaning
            and c.raised_by
            and set(c.raised_by) <= {error_codes.SANDBOX, error_codes.AI, error_codes.FETCH}
        )
        assert c.http_status is None or 400 <= c.http_status < 600


@pytest.mark.parametrize(
    ("readme", "raised_by", "http"),
    [
        ("bindings/sandbox/README.md", error_codes.SANDBOX, False),
        ("bindings/ai/README.md", error_codes.AI, True),
    ],
)
def test_readme_error_tables_are_the_declaration(readme: str, raised_by: str, http: bool) -> None:
    blocks = dict(README_BLOCK.findall((REPO / readme).read_text()))
    assert blocks.get(raised_by) == error_codes.markdown_table(raised_by, http=http), (
        f"{readme}: regenerate the table with `python -m bindings.error_codes {raised_by}`"
    )


@pytest.mark.parametrize(
    ("typings", "union", "raised_by"),
    [
        ("typings/sandbox.d.ts", "SandboxErrorCode", error_codes.SANDBOX),
        ("typings/ai.d.ts", "AiErrorCode", error_codes.AI),
    ],
)
def test_typed_error_code_unions_name_only_declared_codes(typings: str, union: str, raised_by: str) -> None:
    text = (REPO / typings).read_text()
    body = re.search(rf"export type {union} =(.*?);", text, re.S)
    assert body is not None
    named = set(re.findall(r'"([A-Z_]+)"', body.group(1)))
    assert named and named <= {c.code for c in error_codes.CODES.values() if raised_by in c.raised_by}


def test_no_module_spells_a_code_itself() -> None:
    """Outside the declaration, a code is its constant: a string literal equal to one is a second spelling."""
    declaration = REPO / "bindings" / "error_codes.py"
    found = []
    for top in ("bindings", "runtime"):
        for path in sorted((REPO / top).rglob("*.py")):
            if path == declaration:
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Constant) and node.value in error_codes.CODES:
                    found.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.value!r}")
    assert not found, "\n".join(found)


def test_exception_types_build_on_the_declaration() -> None:
    assert PloyError("x").code == error_codes.INTERNAL
    assert (
        InvalidArgument("x").code == error_codes.INVALID_ARGUMENT
        and NotFound("x").code == error_codes.NOT_FOUND
    )
    assert PloyError("x", error_codes.TIMEOUT, stdout="a").to_json() == {
        "name": "PloyError",
        "code": "TIMEOUT",
        "message": "x",
        "stdout": "a",
    }
    assert error_codes.http_status(error_codes.AI_NOT_CONFIGURED) == 503
    with pytest.raises(ValueError):
        error_codes.http_status(error_codes.TIMEOUT)


def test_the_declaration_ships_with_the_agent_and_changes_the_image_tag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    declaration = REPO / "bindings" / "error_codes.py"
    assert ("agent/error_codes.py", declaration) in image._layer_files()
    before = image.default_tag()
    changed = tmp_path / "error_codes.py"
    changed.write_text(declaration.read_text() + "\n# changed\n")
    monkeypatch.setattr(image, "AGENT_SHARED", (changed,))
    assert image.default_tag() != before
