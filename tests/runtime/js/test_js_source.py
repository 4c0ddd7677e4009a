"""js_source: ploy's JS files concatenated after the bundle, and a module line mapped back to
`ploy:js/<file>:<line>` (what a stack shows for a frame inside ploy's web APIs)."""

from __future__ import annotations

from runtime.workers.js_source import JS_DIR, assemble, runtime_js, runtime_location


def test_every_line_of_every_runtime_file_maps_back_to_it() -> None:
    bundle = "export default { fetch() { return new Response('x'); } };\nconst a = 1;\n"
    layout = assemble(bundle)
    module_lines = layout.source.split("\n")
    names = [name for _, name in runtime_js().files]
    assert names == sorted(p.name for p in JS_DIR.glob("*.js")) and names[0] == "00_bridge.js"
    for first, name in runtime_js().files:
        file_lines = (JS_DIR / name).read_text().rstrip("\n").split("\n")
        for i, text in enumerate(file_lines, start=1):
            module_line = layout.runtime_start + first + i - 1
            assert runtime_location(layout, module_line) == (name, i)
            assert module_lines[module_line - 1] == text


def test_bundle_lines_and_the_prelude_are_not_ploy_files() -> None:
    layout = assemble("export default {};\n")
    assert runtime_location(layout, 1) is None
    assert runtime_location(layout, layout.runtime_start - 1) is None
    assert runtime_location(layout, layout.runtime_start) == ("prelude", 1)  # the captured built-ins
