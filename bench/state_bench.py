"""Sandbox state benchmarks (issue 14): backups, forks, snapshots, file watching, the code interpreter,
each beside the obvious alternative measured in the same run. One `name value unit` line per figure;
figures are medians over `--rounds` side-by-side rounds.

    python bench/state_bench.py [--rounds 3]

Targets: backup of a 100 MB /workspace (mixed files) <= 2 s, restore <= 2 s (beside `podman cp` out, and
`tar czf`/`tar xzf` inside the container through `podman exec`); a fork from a backup to its first exec
<= 1 s; a new sandbox from a snapshot reaches its first exec within 100 ms of a cold start from the default image; a watch event
<= 50 ms after the write, p50 (beside polling checkChanges every 100 ms); runCode("1+1") in a warm context
<= 5 ms p50 (beside `python3 -c` / `node -e` through exec); creating a context <= 150 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.sandbox_bench import emit, pct, timed  # noqa: E402
from bindings.context import BindingContext, project_key  # noqa: E402
from bindings.sandbox import SandboxBinding  # noqa: E402
from bindings.sandbox import image as images  # noqa: E402
from bindings.sandbox.leftovers import remove_leftovers  # noqa: E402
from bindings.sandbox.options import SandboxOptions  # noqa: E402

# ~100 MB in ~2,000 files: ~40% incompressible (media, archives), the rest source-like text
GENERATE = r"""
import os, random, sys
root, target = sys.argv[1], int(sys.argv[2])
rnd = random.Random(7)
words = ["".join(rnd.choice("abcdefghijklmnopqrstuvwxyz_") for _ in range(rnd.randint(2, 10))) for _ in range(3000)]
lines, size = [], 0
while size < 1 << 20:
    line = "    " * rnd.randint(0, 3) + " ".join(rnd.choice(words) for _ in range(rnd.randint(3, 12))) + "\n"
    lines.append(line); size += len(line)
block = "".join(lines)
total = i = 0
while total < target:
    d = os.path.join(root, f"pkg{i % 40}", f"sub{i % 7}")
    os.makedirs(d, exist_ok=True)
    if i % 20 == 0:
        n = rnd.randint(128, 768) << 10
        with open(os.path.join(d, f"blob{i}.bin"), "wb") as f: f.write(os.urandom(n))
    else:
        n = rnd.randint(2_000, 60_000)
        off = rnd.randint(0, len(block) - n)
        with open(os.path.join(d, f"mod{i}.js"), "w") as f: f.write(block[off:off + n])
    total += n; i += 1
print(i, total)
"""

WRITER = r"""
import os, sys, time
d = sys.argv[1]
for i in range(int(sys.argv[2])):
    time.sleep(float(sys.argv[3]))
    with open(os.path.join(d, repr(time.time())), "w") as f: f.write("x")
"""


def podman(*args: str, stdin: Any = None, stdout: Any = subprocess.DEVNULL) -> float:
    t = time.perf_counter()
    res = subprocess.run(["podman", *args], stdin=stdin, stdout=stdout, stderr=subprocess.PIPE)
    if res.returncode != 0:
        raise RuntimeError(f"podman {args[0]} failed: {res.stderr.decode(errors='replace').strip()}")
    return time.perf_counter() - t


class Figures:
    """Values per figure across rounds; printed as medians at the end."""

    def __init__(self) -> None:
        self.values: dict[str, tuple[list[float], str]] = {}

    def add(self, name: str, value: float, unit: str) -> None:
        self.values.setdefault(name, ([], unit))[0].append(value)

    def emit_all(self) -> None:
        for name, (values, unit) in self.values.items():
            emit(name, statistics.median(values), unit)


class Bench:
    def __init__(self, home: Path, project: Path, tmp: Path) -> None:
        self.home, self.project, self.tmp = home, project, tmp
        self.f = Figures()

    def binding(self, **opts: Any) -> SandboxBinding:
        ctx = BindingContext(
            project_root=self.project,
            project_name="bench",
            project_key=project_key(self.project),
            state_dir=self.home,
        )
        opts.setdefault("pool", 0)
        return SandboxBinding(ctx, SandboxOptions(binding="SANDBOX", **opts))

    @staticmethod
    async def ready_pool(b: SandboxBinding) -> None:
        pool = b.manager.pool
        pool.kick()
        deadline = time.monotonic() + 60
        while not pool._tokens() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if pool._task is not None:
            await pool._task  # a refill still running would compete with the measurement

    async def backups(self, rounds: int) -> None:
        b = self.binding(pool=1)
        src = b.get("data")
        await src.writeFile("/tmp/gen.py", GENERATE)
        out = await src.exec("python3 /tmp/gen.py /workspace/data 104857600")
        files, size = out["stdout"].split()
        emit("workspace_files", float(files), "files")
        emit("workspace_size", int(size) / 1e6, "MB")
        name = b.manager.entries["data"].container
        small = b.get("small")
        await small.writeFile("/tmp/gen.py", GENERATE)
        await small.exec("python3 /tmp/gen.py /workspace/app 10485760")
        small_backup = await small.createBackup({"dir": "/workspace"})
        tar = self.tmp / "out.tar"
        for r in range(rounds):
            t = time.perf_counter()
            backup = await src.createBackup({"dir": "/workspace"})
            self.f.add("backup_100mb", time.perf_counter() - t, "s")
            self.f.add("backup_100mb_archive", backup["size"] / 1e6, "MB")
            with open(tar, "wb") as f:
                self.f.add(
                    "alt_podman_cp_out_100mb_tar", podman("cp", f"{name}:/workspace", "-", stdout=f), "s"
                )
            with open(self.tmp / "out.tgz", "wb") as f:
                elapsed = podman("exec", name, "tar", "czf", "-", "-C", "/workspace", ".", stdout=f)
                self.f.add("alt_podman_exec_tar_czf_100mb", elapsed, "s")
            await src.exec("rm -rf /workspace/data/pkg1 && echo changed > /workspace/data/pkg2/sub2/mod2.js")
            t = time.perf_counter()
            await src.restoreBackup(backup["id"])
            self.f.add("restore_100mb", time.perf_counter() - t, "s")
            # The alternative way in: `podman cp` into a sandbox fails in its user namespace on Podman
            # 4.3 ("container ID 2000000000 cannot be mapped"), so the tar made above is unpacked by
            # `podman exec -i ... tar xzf -`
            with open(self.tmp / "out.tgz", "rb") as f:
                elapsed = podman("exec", "-i", name, "tar", "xzf", "-", "-C", "/workspace", stdin=f)
                self.f.add("alt_podman_exec_tar_xzf_100mb", elapsed, "s")
            # forks: with a warm pool (the default), without, and the plain alternatives side by side
            for label, binding in (("pool", b), ("no_pool", self.binding())):
                if label == "pool":
                    await self.ready_pool(b)
                fork = binding.get(f"fork-{label}-{r}", {"from": small_backup["id"]})
                t = time.perf_counter()
                await fork.exec("ls /workspace/app >/dev/null")
                self.f.add(
                    f"fork_from_backup_10mb_first_exec_{label}", (time.perf_counter() - t) * 1000, "ms"
                )
                if label == "pool":
                    await self.ready_pool(b)
                fork = binding.get(f"fork100-{label}-{r}", {"from": backup["id"]})
                t = time.perf_counter()
                await fork.exec("ls /workspace/data >/dev/null")
                self.f.add(
                    f"fork_from_backup_100mb_first_exec_{label}", (time.perf_counter() - t) * 1000, "ms"
                )
                if label == "pool":
                    await self.ready_pool(b)
                plain = binding.get(f"plain-{label}-{r}")
                t = time.perf_counter()
                await plain.exec("true")
                self.f.add(f"alt_new_sandbox_first_exec_{label}", (time.perf_counter() - t) * 1000, "ms")
                await fork.destroy()
                await plain.destroy()
                if binding is not b:
                    await binding.close()
            await src.deleteBackup(backup["id"])
        await b.close()

    async def snapshots(self, rounds: int) -> None:
        b = self.binding()
        src = b.get("snap-src")
        await src.writeFile("/tmp/gen.py", GENERATE)
        await src.exec("python3 /tmp/gen.py /workspace/node_modules 52428800")
        for r in range(rounds):
            t = time.perf_counter()
            snap = await src.snapshot()
            self.f.add("snapshot_create_50mb_layer", time.perf_counter() - t, "s")
            forks, colds = [], []
            for i in range(4):  # interleaved, so both see the same machine
                fork = b.get(f"snap-fork-{r}-{i}", {"from": snap["id"]})
                t = time.perf_counter()
                await fork.exec("true")
                forks.append((time.perf_counter() - t) * 1000)
                cold = b.get(f"cold-{r}-{i}")
                t = time.perf_counter()
                await cold.exec("true")
                colds.append((time.perf_counter() - t) * 1000)
                await fork.destroy()
                await cold.destroy()
            self.f.add("fork_from_snapshot_first_exec", statistics.median(forks), "ms")
            self.f.add("alt_cold_start_default_image_first_exec", statistics.median(colds), "ms")
            self.f.add(
                "fork_from_snapshot_minus_cold_start",
                statistics.median(forks) - statistics.median(colds),
                "ms",
            )
            await src.deleteSnapshot(snap["id"])
        await b.close()

    async def watch(self, rounds: int) -> None:
        b = self.binding()
        sb = b.get("watch")
        await sb.writeFile("/tmp/writer.py", WRITER)
        for r in range(rounds):
            d = f"/workspace/w{r}"
            await sb.mkdir(d)
            lat: list[float] = []
            stream = await sb.watch(d)
            it = aiter(stream)
            await anext(it)  # the `watching` event: the watch is in place
            await sb.startProcess(f"python3 /tmp/writer.py {d} 40 0.05")
            buf = b""
            while len(lat) < 40:
                buf += await asyncio.wait_for(anext(it), 10)
                now = time.time()
                while b"\n\n" in buf:
                    block, buf = buf.split(b"\n\n", 1)
                    event = json.loads(block.split(b"data: ", 1)[1])
                    if event["type"] == "create":
                        lat.append((now - float(event["path"].rsplit("/", 1)[1])) * 1000)
            await stream.aclose()  # type: ignore[attr-defined]
            self.f.add("watch_event_latency_p50", pct(lat, 50), "ms")
            self.f.add("watch_event_latency_p99", pct(lat, 99), "ms")
            # the alternative: poll (checkChanges every 100 ms, then list what is new)
            d2 = f"/workspace/p{r}"
            await sb.mkdir(d2)
            version = (await sb.checkChanges(d2))["version"]
            await sb.startProcess(f"python3 /tmp/writer.py {d2} 20 0.137")
            polled: list[float] = []
            while len(polled) < 20:
                await asyncio.sleep(0.1)
                res = await sb.checkChanges(d2, {"since": version})
                now = time.time()
                version = res["version"]
                for c in res.get("changes", []):
                    if c["type"] == "create":
                        polled.append((now - float(c["path"].rsplit("/", 1)[1])) * 1000)
            self.f.add("alt_poll_every_100ms_latency_p50", pct(polled, 50), "ms")
        await b.close()

    async def interpreter(self, rounds: int) -> None:
        b = self.binding()
        sb = b.get("code")
        for r in range(rounds):
            for language, alt in (
                ("python", "python3 -c 'print(1+1)'"),
                ("javascript", "node -e 'console.log(1+1)'"),
            ):
                fresh = b.get(f"ctx-{language}-{r}")
                await fresh.exec("true")
                t = time.perf_counter()
                ctx = await fresh.createCodeContext({"language": language})
                self.f.add(
                    f"create_context_{language}_first_in_sandbox", (time.perf_counter() - t) * 1000, "ms"
                )
                await fresh.runCode("1+1", {"context": ctx})
                self.f.add(  # what a user waits for before a first answer
                    f"create_context_{language}_first_in_sandbox_and_first_run",
                    (time.perf_counter() - t) * 1000,
                    "ms",
                )
                await asyncio.sleep(1.5)  # the spare the first context started is ready by now
                t = time.perf_counter()
                ctx = await fresh.createCodeContext({"language": language})
                self.f.add(f"create_context_{language}_next", (time.perf_counter() - t) * 1000, "ms")
                await fresh.destroy()
                ctx = await sb.createCodeContext({"language": language})
                for _ in range(30):
                    await sb.runCode("1+1", {"context": ctx})
                times = await timed(300, lambda ctx=ctx: sb.runCode("1+1", {"context": ctx}))  # type: ignore[misc]
                self.f.add(f"runcode_1plus1_{language}_p50", pct(times, 50), "ms")
                self.f.add(f"runcode_1plus1_{language}_p99", pct(times, 99), "ms")
                alts = await timed(20, lambda alt=alt: sb.exec(alt))  # type: ignore[misc]
                self.f.add(f"alt_exec_{language}_one_shot_p50", pct(alts, 50), "ms")
                await sb.deleteCodeContext(ctx)
        await b.close()


async def main(rounds: int, only: list[str]) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="ploy-sb-"))
    home = tmp / "h"
    project = tmp / "bench"
    project.mkdir()
    bench = Bench(home, project, tmp)
    try:
        await images.ensure_image()
        for part in only or ["backups", "snapshots", "watch", "interpreter"]:
            await getattr(bench, part)(rounds)
        bench.f.emit_all()
    finally:
        await remove_leftovers(home)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("parts", nargs="*", help="backups, snapshots, watch, interpreter (default: all)")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()  # what `ploy dev` runs on
    except ImportError:
        pass
    asyncio.run(main(args.rounds, args.parts))
