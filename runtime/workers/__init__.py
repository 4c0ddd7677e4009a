"""Worker loaders: a Python module, or an ES module bundle run in QuickJS. Both implement `base.Worker`."""
