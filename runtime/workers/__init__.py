"""Worker loaders: a Python module, or an ES module bundle run in QuickJS. Both implement `base.Worker`.

For JS: js_worker.py loads a bundle and maps stacks (js_sourcemap.py), js_source.py assembles the
module QuickJS evaluates, js_context.py drives one context (entries, draining, dispatching host ops,
tasks). The web APIs, and the handlers of the host ops they send, are in runtime/js/.
"""
