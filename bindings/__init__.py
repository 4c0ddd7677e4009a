"""Bindings a worker receives on `env`: one self-contained module per binding (sandbox, ai).

Each binding declares its API once in its `spec.py` (a `bindings.spec.ObjectSpec` tree). The Python
class implements it, the JS shim inside QuickJS is derived from it, and `typings/` is tested against it.
Bindings know nothing of HTTP serving.
"""
