"""ploy's local runtime: CLI, ploy.yaml, the HTTP server, worker loaders and the web APIs inside QuickJS."""
