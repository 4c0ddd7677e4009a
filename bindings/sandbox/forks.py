"""What a new sandbox starts from: `env.SANDBOX.get(id, {from})` with a backup id (the sandbox starts
as usual, warm pool included, and the backup is restored into its directory before the first call
runs) or a snapshot id (the container runs from the snapshot's image).

`from` applies only when the id is new: `get` of an existing sandbox returns it as it is, so a worker
may pass the same `from` on every request. A fork that cannot be made (an unknown or expired backup,
a deleted snapshot) fails the first call and leaves no sandbox behind; the next call tries again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bindings.error_codes import INVALID_ARGUMENT
from bindings.errors import PloyError
from bindings.sandbox import backups, snapshots


@dataclass(frozen=True)
class Origin:
    kind: str  # "backup" or "snapshot"
    id: str

    @property
    def image(self) -> str | None:
        return snapshots.image_of(self.id) if self.kind == "snapshot" else None


def parse_from(value: Any) -> Origin:
    """A backup or snapshot id, or the object createBackup / snapshot returned."""
    raw = value.get("id") if isinstance(value, dict) else value
    if isinstance(raw, str) and raw.startswith("snap-"):
        return Origin("snapshot", snapshots.snapshot_id(raw))
    if isinstance(raw, str) and backups.ID_RE.match(raw):
        return Origin("backup", raw)
    raise PloyError(
        f"from must be a backup id (createBackup) or a snapshot id (snapshot), got {value!r}",
        code=INVALID_ARGUMENT,
        argument="from",
    )


def write_origin(d: Path, origin: Origin) -> None:
    """Beside meta.json in the sandbox's token folder (host-only), for recover() to make it again."""
    (d / "origin.json").write_text(json.dumps({"kind": origin.kind, "id": origin.id, "image": origin.image}))


def origin_image(d: Path) -> str | None:
    """The image a sandbox forked from a snapshot runs (None for every other sandbox)."""
    try:
        image = json.loads((d / "origin.json").read_text()).get("image")
    except (OSError, ValueError):
        return None
    return image if isinstance(image, str) else None
