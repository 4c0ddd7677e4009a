"""`ploy image build` and `ploy sandbox list|exec|fault|sleep|recreate|prune|destroy`: manage sandboxes from the shell.

Sandboxes are keyed by the project folder (bindings.context.project_key), so run these in the project
folder or pass --project DIR; ploy.yaml supplies the project name and the bindings' options.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

from bindings.context import BindingContext
from bindings.error_codes import SANDBOX_UNAVAILABLE
from bindings.errors import NotFound, PloyError
from bindings.plugin import ProjectLoader, Subparsers
from bindings.sandbox.agent import wire
from bindings.sandbox.options import SandboxOptions


def _project(args: argparse.Namespace) -> tuple[BindingContext, dict[str, SandboxOptions]]:
    root = Path(args.project or ".").resolve()
    name: str | None = None
    options: dict[str, SandboxOptions] = {}
    if (root / "ploy.yaml").is_file():
        try:
            project = args.load_project(root)
            name, options = project.name, dict(project.sections.get("sandbox") or {})
        except Exception as exc:  # a broken ploy.yaml must not stop `ploy sandbox destroy`
            print(f"ploy: warning: {exc}; using default sandbox options", file=sys.stderr)
    return BindingContext.for_project(root, name), options


def _binding(args: argparse.Namespace) -> Any:
    from bindings.sandbox import SandboxBinding

    ctx, options = _project(args)
    name = args.binding or (next(iter(options)) if options else "SANDBOX")
    opts = options.get(name) or SandboxOptions(binding=name)
    # the CLI never needs a warm pool
    return SandboxBinding(ctx, SandboxOptions(**{**opts.__dict__, "pool": 0}))


async def _list(args: argparse.Namespace) -> int:
    from bindings.sandbox import SandboxBinding

    ctx, options = _project(args)
    bindings_dir = ctx.project_state / "sandboxes"
    names = sorted(
        {*options, *(p.name for p in bindings_dir.iterdir() if p.is_dir())}
        if bindings_dir.is_dir()
        else options
    )
    rows = []
    for name in names:
        b = SandboxBinding(ctx, SandboxOptions(binding=name, pool=0))
        rows += await b.manager.list()
    if not rows:
        print(f"no sandboxes for project {ctx.project_name} ({ctx.project_key})")
        return 0
    print(f"{'ID':<24} {'BINDING':<12} {'STATUS':<10} CONTAINER")
    for r in rows:
        # ids are any string: one with a newline or a control character is shown quoted, on one line
        shown = r["id"] if r["id"].isprintable() else json.dumps(r["id"], ensure_ascii=False)
        print(f"{shown:<24} {r['binding']:<12} {r['status']:<10} {r['container']}")
    return 0


def _exec_command(args: argparse.Namespace) -> list[str]:
    """The command after `--`; options written between the id and `--` (`exec ID --cwd /tmp -- ls`)
    land in the remainder too, so they are parsed here."""
    command = list(args.command)
    if "--" in command and command[0].startswith("-"):
        cut = command.index("--")
        late = argparse.ArgumentParser(prog="ploy sandbox exec ID", add_help=False)
        for flag in ("--project", "--binding", "--cwd"):
            late.add_argument(flag)
        late.add_argument("--create", action="store_true", default=None)
        for key, value in vars(late.parse_args(command[:cut])).items():
            if value is not None:
                setattr(args, key, value)
        command = command[cut:]
    return command[1:] if command and command[0] == "--" else command


def _missing(b: Any, sandbox_id: str, more: str = "") -> NotFound:
    from bindings.sandbox.state import claim_name

    binding = b.options.binding
    others = sorted(
        p.parent.name
        for p in (b.ctx.project_state / "sandboxes").glob(f"*/{claim_name(sandbox_id)}")
        if p.is_symlink() and p.parent.name != binding
    )
    hint = f" (it exists for binding {others[0]}: pass --binding {others[0]})" if others else ""
    return NotFound(
        f"no sandbox {sandbox_id!r} for binding {binding} of project {b.ctx.project_name}{hint}; "
        f"`ploy sandbox list` shows the existing ones{more}"
    )


async def _exec(args: argparse.Namespace) -> int:
    from bindings.sandbox.state import validate_id

    command = _exec_command(args)
    if not command:
        print("ploy sandbox exec: give a command after --", file=sys.stderr)
        return 2
    text = command[0] if len(command) == 1 else shlex.join(command)
    b = _binding(args)
    if not args.create and not b.manager.exists(validate_id(args.id)):
        # a typo must not silently make (and leave running) a new empty sandbox
        raise _missing(b, args.id, ", --create makes a new one")
    try:
        options: dict[str, Any] = {}
        if args.cwd:
            options["cwd"] = args.cwd
        result = await b.get(args.id).exec(text, options)
    finally:
        await b.close()
    sys.stdout.write(result["stdout"])
    sys.stderr.write(result["stderr"])
    return int(result["exitCode"])


# ---- faults on demand: how a worker copes when its sandbox goes away or wakes up ----------------------


async def _existing(b: Any, sandbox_id: str) -> tuple[Any, str | None]:
    """The id's sandbox (never created nor started here) and its container's state."""
    from bindings import podman
    from bindings.sandbox.state import validate_id

    token = b.manager.state.read_claim(validate_id(sandbox_id))
    if token is None:
        raise _missing(b, sandbox_id)
    e = b.manager.containers.entry(sandbox_id, token)
    return e, await podman.container_state(e.container)


def _not_running(sandbox_id: str, state: str | None, what: str) -> PloyError:
    return PloyError(
        f"sandbox {sandbox_id!r} is not running ({state or 'no container'}): {what}",
        code=SANDBOX_UNAVAILABLE,
    )


async def _kill_agent(b: Any, e: Any, state: str | None) -> None:
    if state != "running":
        raise _not_running(e.id, state, "there is no agent to kill")
    pid = await e.agent.agent_pid()
    info = await b.manager.containers.inspect(e.token) or {}
    init = int((info.get("State") or {}).get("Pid") or 0)
    # what answers on the socket must be the agent, PID 1's child in that container (the run folder is
    # writable from inside: nothing else is ever killed on its word)
    if pid is None or init <= 0 or _parent(pid) != init:
        raise PloyError(
            f"the agent of sandbox {e.id!r} could not be found on this host (pid {pid}, container "
            f"init {init}): `podman exec {e.container} kill -9 <agent pid>` does the same",
            code=SANDBOX_UNAVAILABLE,
        )
    os.kill(pid, signal.SIGKILL)
    print(
        f"killed the agent of sandbox {e.id} (pid {pid} on this host): calls in flight fail with "
        "SANDBOX_UNAVAILABLE (mayHaveRun); the container's init starts a new agent at once"
    )


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


async def _fault(args: argparse.Namespace) -> int:
    from bindings import podman

    b = _binding(args)
    try:
        e, state = await _existing(b, args.id)
        if args.kill_agent:
            await _kill_agent(b, e, state)
        elif args.stop:
            if state not in ("running", "paused"):
                print(f"already stopped: sandbox {e.id} ({state or 'no container'})")
                return 0
            await podman.run("stop", "-t", "10", e.container)
            print(
                f"stopped sandbox {e.id} (container {e.container}): its next use starts it again, files kept"
            )
        elif args.pause is not None:
            if state != "running":
                raise _not_running(e.id, state, "only a running sandbox can be paused")
            await podman.run("pause", e.container)
            print(f"paused sandbox {e.id} (container {e.container}) for {args.pause:g} s", flush=True)
            try:
                await asyncio.sleep(args.pause)
            finally:
                # also when interrupted: a pause must not outlive the command that made it
                await podman.run("unpause", e.container, check=False)
                print(f"unpaused sandbox {e.id}")
        else:
            if state != "running":
                raise _not_running(e.id, state, "there are no connections to drop")
            result, _ = await e.agent.call({"op": wire.DROP_CONNECTIONS.name})
            print(f"dropped {result['dropped']} connection(s) to the agent of sandbox {e.id}")
        return 0
    finally:
        await b.close()


async def _sleep(args: argparse.Namespace) -> int:
    from bindings import podman

    b = _binding(args)
    try:
        e, state = await _existing(b, args.id)
        if state == "paused":
            raise _not_running(e.id, state, "`podman unpause` it first")
        if state != "running":
            status = (await b.manager.state_of(e.id))["status"]
            print(f"already {status}: sandbox {e.id}")
            return 0
        await e.agent.call({"op": wire.SLEEP.name})
        deadline = time.monotonic() + 15
        while await podman.container_state(e.container) == "running" and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        print(
            f"sandbox {e.id} is sleeping, as after sleepAfter: its next use wakes it with its files "
            "(background processes and session shells ended)"
        )
        return 0
    finally:
        await b.close()


async def _recreate(args: argparse.Namespace) -> int:
    b = _binding(args)
    try:
        e, _ = await _existing(b, args.id)
        old, new = await b.manager.recreate(e.id)
        settings = ", ".join(f"{k} {v}" for k, v in b.options.settings().items())
        print(f"recreated sandbox {e.id} with {settings}: container {new} (was {old}), /workspace kept")
        return 0
    finally:
        await b.close()


async def _destroy(args: argparse.Namespace) -> int:
    b = _binding(args)
    try:
        existed = await b.manager.destroy(args.id)
    finally:
        await b.close()  # the last sandbox of its network takes the network and its rules with it
    print(f"destroyed {args.id}" if existed else f"no sandbox {args.id}")
    return 0 if existed else 1


async def _prune(args: argparse.Namespace) -> int:
    """Remove the project's unclaimed warm-pool containers (e.g. left by a killed `ploy dev`) and its
    deleted snapshots' images no sandbox uses any more, then the machine's sandbox images of older image
    recipes that no container uses."""
    from bindings import podman
    from bindings.sandbox import disks
    from bindings.sandbox.containers import home_label

    ctx, _ = _project(args)
    claimed: set[str] = set()
    root = ctx.project_state / "sandboxes"
    for link in root.glob("*/*") if root.is_dir() else []:
        if link.is_symlink():
            claimed.add(Path(os.readlink(link)).name)
    removed = 0
    for c in await podman.ps(
        {"ploy.project": ctx.project_key, "ploy.home": home_label(ctx.state_dir), "ploy.pool": "1"}
    ):
        name = c["Names"][0]
        token = name.removeprefix("ploy-")
        if token in claimed:
            continue
        entries = list((ctx.state_dir / "pool").glob(f"*/{token}"))
        try:
            for entry in entries:
                os.unlink(entry)  # claim it first, so no running `ploy dev` hands it out meanwhile
        except FileNotFoundError:
            continue
        await podman.remove(name)
        disks.release(ctx.state_dir / "s" / token)  # before rmtree, which would empty a mounted disk
        shutil.rmtree(ctx.state_dir / "s" / token, ignore_errors=True)
        removed += 1
    print(f"removed {removed} unclaimed pool container(s)")
    from bindings.sandbox.network import sweep

    nets = await sweep({"ploy.project": ctx.project_key, "ploy.home": home_label(ctx.state_dir)})
    print(f"removed {len(nets)} sandbox network(s) no container uses, with their firewall rules")
    # disks whose container was removed behind ploy's back (`podman rm` removes only the layer's link):
    # freed now rather than on the id's next call
    alive = {
        c["Names"][0].removeprefix("ploy-") for c in await podman.ps({"ploy.home": home_label(ctx.state_dir)})
    }
    freed = 0
    for d in (ctx.state_dir / "s").iterdir() if (ctx.state_dir / "s").is_dir() else []:
        # a disk made in the last minute may belong to a container `ploy dev` is creating right now
        if d.name not in alive and disks.has_disk(d) and time.time() - d.stat().st_mtime > 60:
            disks.release(d)
            freed += 1
    if freed:
        print(f"freed {freed} disk(s) of sandboxes whose container was removed")
    from bindings.sandbox.snapshots import SnapshotStore

    # deleted snapshots whose image stayed while a sandbox forked from it ran
    await SnapshotStore(ctx, home_label(ctx.state_dir)).prune()
    from bindings.sandbox.image import prune_stale_images

    images = await prune_stale_images()
    for name in images:
        print(f"removed image {name}")
    print(f"removed {len(images)} stale sandbox image name(s) (of older image recipes, used by no container)")
    return 0


async def _image_build(args: argparse.Namespace) -> int:
    from bindings.sandbox.image import ensure_image
    from bindings.sandbox.progress import StderrProgress

    tag = await ensure_image(progress=StderrProgress("ploy: building sandbox image"), force=args.force)
    print(tag)
    return 0


def _pause_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < seconds <= 3600:
        raise argparse.ArgumentTypeError(f"{text} must be more than 0 and at most 3600 seconds")
    return seconds


def _runner(fn: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return int(asyncio.run(fn(args)))
        except PloyError as exc:
            print(f"ploy: {exc.code}: {exc.message}", file=sys.stderr)
            return 1

    return run


def register(subparsers: Subparsers, load_project: ProjectLoader) -> None:
    """`ploy image` and `ploy sandbox`; `load_project` reads a project's ploy.yaml (the runtime's)."""
    image = subparsers.add_parser("image", help="the default sandbox image")
    image_sub = image.add_subparsers(dest="image_command", required=True)
    build = image_sub.add_parser("build", help="build (or rebuild with --force) the default sandbox image")
    build.add_argument("--force", action="store_true", help="rebuild even if an image for this recipe exists")
    build.set_defaults(func=_runner(_image_build))

    from bindings.sandbox.hosts import cli as hosts_cli

    hosts_cli.register(subparsers)

    sandbox = subparsers.add_parser(
        "sandbox", help="list, run commands in, and destroy a project's sandboxes"
    )
    sandbox.set_defaults(load_project=load_project)
    sandbox_sub = sandbox.add_subparsers(dest="sandbox_command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--project", help="project folder (default: the current folder)")
        p.add_argument("--binding", help="binding name from ploy.yaml (default: the first sandbox binding)")

    ls = sandbox_sub.add_parser("list", help="list the project's sandboxes")
    common(ls)
    ls.set_defaults(func=_runner(_list))

    ex = sandbox_sub.add_parser(
        "exec", help="run a command in an existing sandbox: ploy sandbox exec ID -- CMD"
    )
    common(ex)
    ex.add_argument("--cwd", help="working directory inside the sandbox")
    ex.add_argument(
        "--create",
        action="store_true",
        help="create the sandbox if it does not exist (without it, an unknown ID is an error)",
    )
    ex.add_argument("id")
    ex.add_argument("command", nargs=argparse.REMAINDER)
    ex.set_defaults(func=_runner(_exec))

    pr = sandbox_sub.add_parser(
        "prune",
        help="remove the project's unclaimed warm-pool containers and unused "
        "sandbox images of older image recipes",
    )
    common(pr)
    pr.set_defaults(func=_runner(_prune))

    fault = sandbox_sub.add_parser(
        "fault",
        help="make a sandbox fail now, to see how the worker copes: ploy sandbox fault ID --stop",
    )
    common(fault)
    fault.add_argument("id")
    kind = fault.add_mutually_exclusive_group(required=True)
    kind.add_argument(
        "--kill-agent", action="store_true", help="SIGKILL the agent (the container's init restarts it)"
    )
    kind.add_argument("--stop", action="store_true", help="stop the container, as `podman stop` would")
    kind.add_argument(
        "--pause",
        type=_pause_seconds,
        metavar="SECONDS",
        help="freeze the container for SECONDS (0-3600), then resume it",
    )
    kind.add_argument(
        "--drop-connections",
        action="store_true",
        help="cut every connection between the host and the agent",
    )
    fault.set_defaults(func=_runner(_fault))

    sleep = sandbox_sub.add_parser(
        "sleep", help="suspend a sandbox now, as its idle timeout (sleepAfter) would; its next use wakes it"
    )
    common(sleep)
    sleep.add_argument("id")
    sleep.set_defaults(func=_runner(_sleep))

    again = sandbox_sub.add_parser(
        "recreate",
        help="make a sandbox again with ploy.yaml's settings now (image, memory, cpus, pids, network), "
        "keeping /workspace",
    )
    common(again)
    again.add_argument("id")
    again.set_defaults(func=_runner(_recreate))

    rm = sandbox_sub.add_parser("destroy", help="destroy a sandbox and its files")
    common(rm)
    rm.add_argument("id")
    rm.set_defaults(func=_runner(_destroy))
