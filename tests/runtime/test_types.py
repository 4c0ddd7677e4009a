"""`ploy types` and the @meetploy/types package, checked with the real CLI and the real `tsc`.

TypeScript projects are checked in temporary copies: `ploy types` writes their env.d.ts (and a
tsconfig.json resolving @meetploy/types to typings/), then `tsc --noEmit` must pass, or must fail
when the code is deliberately wrong.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

TSC = REPO / "node_modules" / ".bin" / "tsc"
EXAMPLES = REPO / "examples"
TS_EXAMPLES = sorted(
    p.parent.parent for p in EXAMPLES.glob("*/src/*.ts") if p.parent.parent.joinpath("ploy.yaml").is_file()
)
PY_EXAMPLES = sorted(EXAMPLES.glob("*-py/src/index.py"))

DOCS_YAML = "kind: dynamic\nbuild: pnpm build\nout: dist\nsandbox:\n  SANDBOX: default\n"
DOCS_AI_YAML = "kind: dynamic\nbuild: pnpm build\nout: dist\nai: true\nsandbox:\n  SANDBOX: default\n"

# The docs' two complete workers, verbatim.
DOCS_BASIC = """\
export default {
	async fetch(request, env) {
		const url = new URL(request.url);
		const id = url.searchParams.get("id") ?? "default";
		const sandbox = env.SANDBOX.get(id);

		// Run a command
		if (url.pathname === "/exec") {
			const result = await sandbox.exec("echo hello from ploy sandbox");
			return Response.json(result);
		}

		// Write then read a file back
		if (url.pathname === "/file") {
			await sandbox.writeFile("note.txt", "written by the worker\\n");
			const { content } = await sandbox.readFile("note.txt");
			return Response.json({ content });
		}

		return new Response("Sandbox Worker");
	},
} satisfies Ploy;
"""

DOCS_BUILDER = """\
export default {
	async fetch(request, env) {
		const url = new URL(request.url);
		const sandbox = env.SANDBOX.get("builder");

		// Kick off a long job and return its handle right away.
		if (url.pathname === "/build/start") {
			const proc = await sandbox.startProcess("npm run build");
			return Response.json(proc);
			// → { id, pid, command, status: "running", exitCode: null, startedAt }
		}

		// Later request: check whether it finished.
		if (url.pathname === "/build/status") {
			const id = url.searchParams.get("id");
			const proc = await sandbox.getProcess(id);
			return Response.json(proc);
		}

		return new Response("Builder");
	},
} satisfies Ploy;
"""

# The docs' fragments, verbatim, each wrapped in a function giving the names they assume
# (`sandbox`, `id`, `env`); the type annotations assert the shapes the docs describe.
DOCS_SNIPPETS = """\
import type { Env } from "../env";
import type { SandboxClient, SandboxExecResult, SandboxFileEntry, SandboxProcessInfo } from "@meetploy/types";

export async function execSnippet(sandbox: SandboxClient) {
	const result = await sandbox.exec("ls -la", {
		cwd: "/tmp",
		env: { GREETING: "hi" },
		timeoutMs: 5000,
	});

	console.log(result.stdout);
	console.log(result.exitCode);
	console.log(result.success);
	const typed: SandboxExecResult = result;
	const ok: boolean = result.success;
	const code: number = result.exitCode;
	return { typed, ok, code };
}

export async function streamSnippet(sandbox: SandboxClient) {
	const stream = await sandbox.execStream("npm install");

	return new Response(stream, {
		headers: { "Content-Type": "text/plain; charset=utf-8" },
	});
}

export async function fileSnippets(sandbox: SandboxClient) {
	await sandbox.writeFile("config.json", JSON.stringify({ debug: true }));

	const { content } = await sandbox.readFile("config.json");
	const text: string = content;

	await sandbox.deleteFile("config.json");

	await sandbox.mkdir("/data/nested", { recursive: true });

	const entries = await sandbox.listFiles(".");

	for (const entry of entries) {
		console.log(entry.type, entry.name);
	}
	const first: SandboxFileEntry | undefined = entries[0];
	const kind: "file" | "directory" | undefined = first?.type;
	const size: number | undefined = first?.size;

	await sandbox.gitCheckout("https://github.com/owner/repo", {
		branch: "main",
		depth: 1,
		targetDir: "repo",
	});

	await sandbox.setEnvVars({ NODE_ENV: "production" });

	await sandbox.destroy();
	return { text, kind, size };
}

export async function processSnippets(sandbox: SandboxClient, id: string) {
	const proc1 = await sandbox.startProcess("python worker.py", {
		cwd: "/app",
		env: { WORKERS: "4" },
	});
	const started: SandboxProcessInfo = proc1;
	const status: "running" | "completed" | "failed" = started.status;
	const pid: number | null = started.pid;
	const exitCode: number | null = started.exitCode;
	const startedAt: string = started.startedAt;

	const all = await sandbox.listProcesses();
	const list: SandboxProcessInfo[] = all;

	const proc = await sandbox.getProcess(id);
	if (proc?.status === "completed") {
		// done
	}

	const { logs } = await sandbox.getProcessLogs(id);
	const text: string = logs;

	await sandbox.killProcess(id);
	return { status, pid, exitCode, startedAt, list, text };
}

export async function logStreamSnippet(sandbox: SandboxClient, id: string) {
	const stream = await sandbox.streamProcessLogs(id);

	return new Response(stream, {
		headers: { "Content-Type": "text/plain; charset=utf-8" },
	});
}

export async function sessionSnippet(sandbox: SandboxClient) {
	const session = await sandbox.createSession({
		cwd: "/tmp",
		env: { GREETING: "hello from a session" },
	});

	await session.exec("echo started > log.txt");
	const greeting = await session.exec("echo $GREETING");
	const log = await session.exec("cat /tmp/log.txt");

	console.log(session.sessionId);
	console.log(greeting.stdout.trim());
	console.log(log.stdout.trim());
}

export async function agentSnippet(env: Env) {
	const sandbox = env.SANDBOX.get("agent");

	// soulforge (the bundled agent) picks up OPENAI_BASE_URL / OPENAI_API_KEY and
	// streams its work back. No model credentials are passed in by you.
	const stream = await sandbox.execStream(
		`soulforge --headless --model openai/gpt-5.5 "summarize this repository"`,
	);

	return new Response(stream, {
		headers: { "Content-Type": "text/plain; charset=utf-8" },
	});
}

// Beyond the docs: the third fetch argument, as the JS runtime passes it.
export const withContext = {
	async fetch(request, env, ctx) {
		ctx.waitUntil(env.SANDBOX.get("bg").exec("true"));
		ctx.passThroughOnException();
		return new Response(request.url);
	},
} satisfies Ploy;

// Beyond the docs: catching a binding's typed error.
export async function errors(sandbox: SandboxClient) {
	try {
		await sandbox.readFile("missing.txt");
	} catch (e) {
		const err = e as PloyError;
		const code: string = err.code;
		return { code, name: err.name, stdout: err.stdout };
	}
}

// Beyond the docs: the shapes the runtime returns.
export async function runtimeShapes(sandbox: SandboxClient) {
	const bytes: Uint8Array = (await sandbox.readFile("a.bin", { encoding: "binary" })).content;
	const b64: string = (await sandbox.readFile("a.bin", { encoding: "base64" })).content;
	const killed: SandboxProcessInfo = await sandbox.killProcess("p1", { graceMs: 100 });
	const entries: SandboxFileEntry[] = await sandbox.listFiles();
	const checkout = await sandbox.gitCheckout("git://host/repo.git");
	const dir: string = checkout.targetDir;
	const session = await sandbox.getSession("session_1");
	const again: string = session.sessionId;
	const gone: boolean = (await sandbox.destroy()).destroyed;
	return { bytes, b64, killed, entries, dir, again, gone };
}

// Beyond the docs: reaching what runs in a sandbox (issue 12).
export async function reachShapes(sandbox: SandboxClient, request: Request, env: Env) {
	const proxied: Response | null = await proxyToSandbox(request, env);
	const proc = await sandbox.startProcess("python3 -m http.server 8080");
	const info: SandboxProcessInfo = proc;
	const ready: number = (await proc.waitForPort(8080, { path: "/", status: { min: 200, max: 299 }, timeoutMs: 5000 })).port;
	const line: string = (await proc.waitForLog(/Serving HTTP on (\\S+)/, 5000)).line;
	const exit: number | null = (await proc.waitForExit({ timeoutMs: 100 })).exitCode;
	const killed: SandboxProcessInfo = await proc.kill("SIGINT");
	const status: "running" | "completed" | "failed" = await proc.getStatus();
	const { logs } = await proc.getLogs();
	const again = await sandbox.getProcess(proc.id);
	const waits = again ? await again.waitForExit(1000) : null;
	const { url, port } = await sandbox.exposePort(8080, { name: "web", token: "abc" });
	const exposed: boolean = await sandbox.isPortExposed(port);
	const valid: boolean = await sandbox.validatePortToken(port, "abc");
	const ported = env.SANDBOX.get("Box", { keepAlive: true, sleepAfter: "10m", normalizeId: true, transport: "http", enableDefaultSession: false });
	const urls: string[] = (await sandbox.getExposedPorts()).map((p) => p.url);
	await sandbox.unexposePort(8080);
	const upgraded: Response = await sandbox.wsConnect(request, 8080);
	const socket: WebSocket | null = upgraded.webSocket;
	const term: Response = await (await sandbox.createSession()).terminal(request, { cols: 80, rows: 24 });
	const [client, server] = Object.values(new WebSocketPair());
	server.accept();
	server.addEventListener("message", (event) => server.send(event.data));
	const answer = new Response(null, { status: 101, webSocket: client });
	return { proxied, info, ready, line, exit, killed, status, logs, waits, url, exposed, urls, socket, term, answer };
}

export async function aiBindingSnippet(env: Env) {
	const completion = await env.AI.chat({ model: "openai/gpt-5.5", messages: [{ role: "user", content: "hi" }] });
	const answer: string | null | undefined = completion.choices[0]?.message.content as string | null;
	const stream: ReadableStream<Uint8Array> = await env.AI.chatStream({ model: "m", messages: [] });
	const base: string = env.AI.baseUrl + env.AI.apiKey;
	return { answer, stream, base };
}
"""


def ploy(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime.cli", "types", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def tsc(project: Path) -> subprocess.CompletedProcess[str]:
    if not TSC.exists():
        pytest.skip("npm `typescript` is not installed (run `npm install` at the repo root)")
    # skipLibCheck off so the typings and the generated env.d.ts are checked too.
    return subprocess.run(
        [str(TSC), "-p", str(project), "--noEmit", "--skipLibCheck", "false", "--pretty", "false"],
        capture_output=True,
        text=True,
        timeout=180,
    )


def make_project(tmp_path: Path, yaml: str, files: dict[str, str]) -> Path:
    project = tmp_path / "project"
    for name, text in {"ploy.yaml": yaml, **files}.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    done = ploy(project)
    assert done.returncode == 0, done.stderr
    return project


# --- ploy types -------------------------------------------------------------------------------


def test_writes_env_dts_as_in_the_docs(tmp_path: Path) -> None:
    project = make_project(tmp_path, DOCS_YAML, {})
    text = (project / "env.d.ts").read_text()
    assert 'import type { SandboxBinding } from "@meetploy/types";' in text
    assert "export interface Env {\n\tSANDBOX: SandboxBinding;\n}\n" in text
    assert "AI" not in text.split("export interface Env")[1]
    assert text.startswith("// Generated by `ploy types` from ploy.yaml sha256:")
    assert len(text.splitlines()) <= 12, "env.d.ts should stay small"


def test_ai_and_vars(tmp_path: Path) -> None:
    yaml = DOCS_AI_YAML + "vars:\n  GREETING: hello\n  DEBUG: true\n"
    project = make_project(tmp_path, yaml, {".dev.vars": "API_TOKEN=s3cret\nGREETING=override\n"})
    text = (project / "env.d.ts").read_text()
    assert 'import type { AiBinding, SandboxBinding } from "@meetploy/types";' in text
    assert (
        "export interface Env {\n\tSANDBOX: SandboxBinding;\n\tAI: AiBinding;\n"
        "\tGREETING: string;\n\tDEBUG: string;\n\tAPI_TOKEN: string;\n}\n"
    ) in text
    assert "s3cret" not in text


def test_output_is_stable_and_check_passes(tmp_path: Path) -> None:
    project = make_project(tmp_path, DOCS_YAML, {})
    first = (project / "env.d.ts").read_bytes()
    again = ploy(project)
    assert again.returncode == 0 and "unchanged" in again.stdout
    assert (project / "env.d.ts").read_bytes() == first
    assert ploy(project, "--check").returncode == 0


def test_check_detects_stale_and_missing(tmp_path: Path) -> None:
    project = make_project(tmp_path, DOCS_YAML, {})
    (project / "ploy.yaml").write_text(DOCS_AI_YAML)
    stale = ploy(project, "--check")
    assert stale.returncode == 1
    assert (
        "stale" in stale.stderr
        and "ploy.yaml changed" in stale.stderr
        and "+\tAI: AiBinding;" in stale.stderr
    )
    assert "AI" not in (project / "env.d.ts").read_text(), "--check must not write"

    assert ploy(project).returncode == 0
    assert ploy(project, "--check").returncode == 0

    (project / "env.d.ts").write_text((project / "env.d.ts").read_text().replace("\tAI: AiBinding;\n", ""))
    edited = ploy(project, "--check")
    assert edited.returncode == 1 and "differs" in edited.stderr

    (project / "env.d.ts").unlink()
    missing = ploy(project, "--check")
    assert missing.returncode == 1 and "missing" in missing.stderr


def test_crlf_checkout_is_not_stale(tmp_path: Path) -> None:
    project = make_project(tmp_path, DOCS_YAML, {})
    (project / "ploy.yaml").write_bytes(DOCS_YAML.replace("\n", "\r\n").encode())
    assert ploy(project, "--check").returncode == 0


def test_output_option(tmp_path: Path) -> None:
    project = make_project(tmp_path, DOCS_YAML, {})
    out = tmp_path / "types" / "worker-env.d.ts"
    assert ploy(project, "--output", out).returncode == 0
    assert out.read_text() == (project / "env.d.ts").read_text()
    assert ploy(project, "--check", "--output", out).returncode == 0


def test_bad_config_exits_2(tmp_path: Path) -> None:
    (tmp_path / "ploy.yaml").write_text("sandbox:\n  1bad: default\n")
    done = ploy(tmp_path)
    assert done.returncode == 2 and "ploy.yaml" in done.stderr
    assert ploy(tmp_path / "nowhere").returncode == 2


def test_tsconfig_written_once(tmp_path: Path) -> None:
    project = make_project(tmp_path, DOCS_YAML, {})
    assert '"@meetploy/types"' in (project / "tsconfig.json").read_text()
    (project / "tsconfig.json").write_text("{}\n")
    assert ploy(project).returncode == 0
    assert (project / "tsconfig.json").read_text() == "{}\n"


# --- tsc against typings/ ------------------------------------------------------------------------


def test_docs_examples_type_check(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        DOCS_AI_YAML,
        {"src/index.ts": DOCS_BASIC, "src/builder.ts": DOCS_BUILDER, "src/snippets.ts": DOCS_SNIPPETS},
    )
    done = tsc(project)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("wrong", "replacement", "error"),
    [
        ('sandbox.exec("echo hello from ploy sandbox")', "sandbox.exec(42)", "TS2345"),
        ('sandbox.readFile("note.txt")', 'sandbox.readFile("note.txt", { encoding: "hex" })', "TS2769"),
        ("env.SANDBOX.get(id)", "env.SANDBOXES.get(id)", "TS2551"),
        ("return Response.json(result);", "return result;", "TS2322"),
    ],
)
def test_wrong_calls_fail_to_type_check(tmp_path: Path, wrong: str, replacement: str, error: str) -> None:
    assert wrong in DOCS_BASIC
    project = make_project(tmp_path, DOCS_YAML, {"src/index.ts": DOCS_BASIC.replace(wrong, replacement, 1)})
    done = tsc(project)
    assert done.returncode != 0
    errors = [line for line in done.stdout.splitlines() if "error TS" in line]
    assert len(errors) == 1 and "src/index.ts" in errors[0] and f"error {error}:" in errors[0], done.stdout


def test_ai_binding_absent_without_ai_true(tmp_path: Path) -> None:
    code = DOCS_BASIC.replace('new Response("Sandbox Worker")', "new Response(env.AI.baseUrl)")
    project = make_project(tmp_path, DOCS_YAML, {"src/index.ts": code})
    done = tsc(project)
    assert done.returncode != 0 and "'AI'" in done.stdout


@pytest.mark.parametrize("example", TS_EXAMPLES, ids=lambda p: p.name)
def test_example_type_checks(example: Path, tmp_path: Path) -> None:
    project = tmp_path / example.name
    # A copy, so the example's own folder is never written to; ploy types gives it a fresh tsconfig.
    shutil.copytree(
        example, project, ignore=shutil.ignore_patterns("node_modules", "dist", ".ploy", "tsconfig.json")
    )
    done = ploy(project)
    assert done.returncode == 0, done.stderr
    checked = tsc(project)
    assert checked.returncode == 0, checked.stdout + checked.stderr


GENERATED = [*EXAMPLES.glob("*/env.d.ts"), *EXAMPLES.glob("*/src/ploy_env.py")]


@pytest.mark.parametrize("generated", GENERATED, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_committed_generated_types_are_fresh(generated: Path) -> None:
    example = generated.parent if generated.name == "env.d.ts" else generated.parent.parent
    done = ploy(example, "--check")
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("source", PY_EXAMPLES, ids=lambda p: p.parent.parent.name)
def test_python_example_passes_mypy(source: Path, tmp_path: Path) -> None:
    example = source.parent.parent
    project = tmp_path / example.name
    shutil.copytree(example, project, ignore=shutil.ignore_patterns("__pycache__", ".ploy"))
    assert ploy(project).returncode == 0  # ploy_env.py, for a worker that imports its Env
    done = mypy(project / "src" / "index.py")
    assert done.returncode == 0, done.stdout + done.stderr


# --- Python workers ------------------------------------------------------------------------------

PY_WORKER = """\
from ploy_env import Env

from runtime.http import Request, Response
from tests.conftest import REPO


async def fetch(request: Request, env: Env) -> Response:
    sandbox = env.SANDBOX.get("x")
    result = await sandbox.exec("echo hi")
    print(result)
    return Response(env.AI.baseUrl + env.GREETING)
"""


def mypy(source: Path) -> subprocess.CompletedProcess[str]:
    # follow-imports=silent: report the worker's errors only, as for an installed ploy.
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--no-incremental",
            "--check-untyped-defs",
            "--follow-imports=silent",
            str(source),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_python_worker_gets_ploy_env(tmp_path: Path) -> None:
    project = make_project(tmp_path, DOCS_AI_YAML + "vars:\n  GREETING: hi\n", {"src/index.py": PY_WORKER})
    text = (project / "src" / "ploy_env.py").read_text()
    assert "class Env(Protocol):\n    SANDBOX: SandboxBinding\n    AI: AiBinding\n    GREETING: str\n" in text
    assert not (project / "env.d.ts").exists() and not (project / "tsconfig.json").exists()
    assert ploy(project, "--check").returncode == 0
    (project / "ploy.yaml").write_text(DOCS_YAML)
    assert ploy(project, "--check").returncode == 1
    # Importable at run time without loading any binding (the imports are TYPE_CHECKING only).
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, ploy_env; print(ploy_env.Env.__name__, 'bindings' in sys.modules)",
        ],
        cwd=project / "src",
        capture_output=True,
        text=True,
    )
    assert done.stdout.split() == ["Env", "False"], done.stderr


def test_python_env_is_typed_for_mypy(tmp_path: Path) -> None:
    import bindings.sandbox

    if not hasattr(bindings.sandbox, "SandboxBinding"):
        pytest.skip("bindings.sandbox.SandboxBinding does not exist yet")
    project = make_project(tmp_path, DOCS_AI_YAML + "vars:\n  GREETING: hi\n", {"src/index.py": PY_WORKER})
    done = mypy(project / "src" / "index.py")
    assert done.returncode == 0, done.stdout
    (project / "src" / "index.py").write_text(PY_WORKER.replace('exec("echo hi")', "exec(42)"))
    wrong = mypy(project / "src" / "index.py")
    assert wrong.returncode == 1 and "exec" in wrong.stdout, wrong.stdout
