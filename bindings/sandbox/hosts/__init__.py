"""Where sandbox containers run: "a container host" (base.py), this machine's Podman CLI (local.py, the
default) or a Podman host reached through its REST API (remote.py), the configured hosts (config.py,
`ploy hosts`) and which host a new sandbox goes to (placement.py)."""
