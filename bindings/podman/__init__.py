"""Podman through its CLI, asynchronously, for every binding that runs Podman (bridge.py: the bridge
network, which the sandbox backend and the AI gateway both depend on).

The CLI is the default: it needs no `podman system service` kept alive beside `ploy dev`, and its
arguments are the one description of a sandbox's container. The one exception is `start` of a container
that exists (api.py), where a second podman process would cost ~40-80 ms of every cold start with a
disk limit. Hot paths (exec, files) never touch Podman: they go to the in-container agent.

The machine facts (NOTES.md) are applied on every call that creates a container: runc (crun fails on
hybrid cgroups here) and explicit ulimits (the defaults cannot be set here).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from typing import IO, Any

from bindings.error_codes import PODMAN_ERROR
from bindings.errors import PloyError

PODMAN = os.environ.get("PLOY_PODMAN", "podman")
RUNTIME_FLAGS = ("--runtime", "runc")
# nproc is counted per host uid (root here), so it must stay far above what one sandbox uses; the
# per-sandbox bound on processes is --pids-limit.
ULIMIT_FLAGS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=32768:32768")


class PodmanError(PloyError):
    code = PODMAN_ERROR


@dataclass
class Result:
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def text(self) -> str:
        return self.stdout.decode(errors="replace").strip()


async def run(*args: str, check: bool = True) -> Result:
    """Run podman in a worker thread with plain subprocess.

    Not asyncio's subprocess: under uvloop the child inherited descriptors of ours (the server's
    listening socket ended up held by conmon, which outlives `podman run -d`), and its socketpair stdio
    stayed open in conmon so reading output to EOF never finished. subprocess closes every other fd, and
    output goes to temp files, which need no EOF.
    """

    def call() -> tuple[int, bytes, bytes]:
        with tempfile.TemporaryFile() as out_f, tempfile.TemporaryFile() as err_f:
            code = subprocess.call(
                [PODMAN, *args], stdin=subprocess.DEVNULL, stdout=out_f, stderr=err_f, close_fds=True
            )
            out_f.seek(0)
            err_f.seek(0)
            return code, out_f.read(), err_f.read()

    try:
        code, out, err = await asyncio.to_thread(call)
    except FileNotFoundError:
        raise PodmanError(
            f"{PODMAN} is not installed: sandboxes need Podman (apt-get install podman runc)"
        ) from None
    res = Result(code, out, err)
    if check and res.returncode != 0:
        raise PodmanError(f"podman {args[0]} failed: {err.decode(errors='replace').strip()}", args=list(args))
    return res


async def image_exists(ref: str) -> bool:
    return (await run("image", "exists", ref, check=False)).returncode == 0


async def container_state(name: str) -> str | None:
    """'running', 'exited', 'created', ... or None when the container does not exist."""
    res = await run("container", "inspect", "--format", "{{.State.Status}}", name, check=False)
    if res.returncode != 0:
        return None
    return res.text or None


async def ps(labels: dict[str, str]) -> list[dict[str, Any]]:
    args = ["ps", "-a", "--format", "json"]
    for k, v in labels.items():
        args += ["--filter", f"label={k}={v}"]
    res = await run(*args)
    data = json.loads(res.stdout or b"[]")
    return data if isinstance(data, list) else []


async def remove(name: str) -> None:
    await run("rm", "-f", "-t", "0", name, check=False)


def _owned_by_root(src: IO[bytes], dst: IO[bytes]) -> None:
    """Relay a tar stream with every entry owned by 0:0. `podman cp` out of a container in a user
    namespace writes the host's ids (2000000000...), which `podman cp` into another cannot map."""
    with (
        tarfile.open(fileobj=src, mode="r|") as tin,
        tarfile.open(fileobj=dst, mode="w|", format=tarfile.PAX_FORMAT) as tout,
    ):
        for ti in tin:
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = ""
            ti.pax_headers = {
                k: v for k, v in ti.pax_headers.items() if k not in ("uid", "gid", "uname", "gname")
            }
            tout.addfile(ti, tin.extractfile(ti) if ti.isreg() else None)


async def copy_between(source: str, path: str, target: str, into_dir: str) -> None:
    """`path` of container `source` (running or stopped) into folder `into` of container `target`, as a
    tar stream from one `podman cp` to another: nothing needs to run in the source, and the images need
    no tool of their own. (podman cp makes the copies' owner the target's root.)"""

    def copy() -> tuple[int, int, bytes]:
        with tempfile.TemporaryFile() as err_f:
            out = subprocess.Popen(
                [PODMAN, "cp", f"{source}:{path}", "-"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err_f,
                close_fds=True,
            )
            assert out.stdout is not None
            try:
                into = subprocess.Popen(
                    [PODMAN, "cp", "-", f"{target}:{into_dir}"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=err_f,
                    close_fds=True,
                )
                assert into.stdin is not None
                try:
                    _owned_by_root(out.stdout, into.stdin)
                except (OSError, tarfile.TarError):
                    pass  # a side that failed says why on stderr
                finally:
                    into.stdin.close()
                    into_code = into.wait()
            finally:
                out.stdout.close()
                out_code = out.wait()
            err_f.seek(0)
            return out_code, into_code, err_f.read()

    out_code, into_code, err = await asyncio.to_thread(copy)
    if out_code or into_code:
        raise PodmanError(
            f"podman cp of {source}:{path} to {target}:{into_dir} failed: {err.decode(errors='replace').strip()}"
        )
