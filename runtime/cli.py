"""The `ploy` command: dev and types, then each binding plugin's commands (sandbox, image, login, ai)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path


def _dev(args: argparse.Namespace) -> int:
    from runtime.config import ConfigError
    from runtime.entry import EntryError
    from runtime.server import PortInUse, serve
    from runtime.workers.base import WorkerError

    project = Path(args.dir).resolve()
    try:
        try:
            import uvloop

            return uvloop.run(serve(project, args.host, args.port, args))
        except ImportError:
            return asyncio.run(serve(project, args.host, args.port, args))
    except ConfigError as e:
        print(f"ploy: {e}", file=sys.stderr)
        return 2
    except (EntryError, PortInUse) as e:
        print(f"ploy: {e}", file=sys.stderr)
        return 1
    except WorkerError as e:
        print(f"ploy: the worker failed to load:\n{e.stack}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ploy", description="Local runtime for Ploy workers.")
    sub = parser.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="serve the worker of a project folder over HTTP, reloading on change")
    dev.add_argument("dir", nargs="?", default=".", help="project folder holding ploy.yaml (default: .)")
    dev.add_argument("--port", type=int, default=8787, help="port to listen on (default 8787)")
    dev.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    dev.set_defaults(func=_dev)

    from runtime import types_cmd
    from runtime.config import load_config
    from runtime.plugins import plugins

    types_cmd.register(sub)
    for plugin in plugins():
        plugin.add_dev_arguments(dev)
        plugin.register_cli(sub, load_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.func is not _dev:
        # bindings used from the shell (`ploy sandbox exec`) say what they have to say on stderr
        from runtime.log import Sink, route_loggers

        route_loggers(Sink(sys.stderr))
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
