"""Reaching what runs in a sandbox (issue 12): the process object and its waits, preview URLs routed by
host name, wsConnect, and terminals, against real containers."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from bindings.errors import PloyError
from bindings.sandbox import SandboxBinding, SandboxClient
from bindings.sandbox.preview import preview_label
from bindings.sandbox.state import container_name
from bindings.web import WebResponse, WebSocket
from runtime.http import Request
from tests.bindings.sandbox.helpers import container_state, wait_until
from tests.bindings.sandbox.servers import ECHO_SERVER

pytestmark = pytest.mark.podman

Run = Callable[..., Any]


@pytest.fixture(scope="module")
def binding(bindings: Any) -> SandboxBinding:
    b: SandboxBinding = bindings.make("reach")
    b.ctx.dev_host = "localhost:8787"
    return b


@pytest.fixture(scope="module")
def sb(binding: SandboxBinding) -> SandboxClient:
    return binding.get("reach")


@pytest.fixture(scope="module")
def echo_port(run: Run, sb: SandboxClient) -> int:
    """The echo server (servers.py) running in `sb` on port 8080, exposed."""
    run(sb.writeFile("/srv/echo.py", ECHO_SERVER))
    proc = run(sb.startProcess("python3 /srv/echo.py 8080"))
    run(proc.waitForPort(8080, {"path": "/hello", "timeoutMs": 15000}))
    return 8080


def upgrade_request(url: str = "http://x/ws", protocols: str | None = None) -> Request:
    headers = {"upgrade": "websocket", "connection": "Upgrade", "sec-websocket-version": "13"}
    if protocols:
        headers["sec-websocket-protocol"] = protocols
    return Request(url, "GET", headers)


async def _preview(
    binding: SandboxBinding, url: str, method: str = "GET", body: bytes | None = None, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    host = url.split("//", 1)[1].split("/", 1)[0]
    r = await binding.preview_fetch(Request(url, method, {"host": host, **headers}, body))
    assert r is not None, f"{url} was not taken for a preview URL"
    data = r.body if isinstance(r.body, bytes) else b"".join([c async for c in r.body]) if r.body else b""
    return r.status, dict(r.headers), data


def preview(
    run: Run, binding: SandboxBinding, url: str, method: str = "GET", **kw: Any
) -> tuple[int, dict[str, str], bytes]:
    result: tuple[int, dict[str, str], bytes] = run(_preview(binding, url, method, **kw))
    return result


def code_of(run: Run, coro: Any) -> str:
    with pytest.raises(PloyError) as e:
        run(coro)
    return str(e.value.code)


# ---- the process object ------------------------------------------------------------------------


def test_process_object_is_its_record_plus_methods(run: Run, sb: SandboxClient) -> None:
    proc = run(sb.startProcess("echo one; sleep 0.3; echo two"))
    record = run(sb.getProcess(proc["id"]))
    # the same JSON as the plain record (Response.json(proc) in the docs' builder example)
    assert json.loads(json.dumps(proc)) == {k: proc[k] for k in proc}
    assert list(proc) == ["id", "pid", "command", "startedAt", "status", "exitCode"]
    assert proc.id == proc["id"] and proc.status == "running" and proc.exitCode is None
    assert run(proc.getStatus()) == "running"
    done = run(proc.waitForExit({"timeoutMs": 10000}))
    assert done["status"] == "completed" and done["exitCode"] == 0
    assert run(proc.getStatus()) == "completed"
    # getProcessLogs itself: combined, and stdout and stderr apart
    assert run(proc.getLogs()) == {
        "logs": "one\ntwo\n",
        "stdout": "one\ntwo\n",
        "stderr": "",
        "processId": proc.id,
    }
    assert proc.status == "running"  # the object is the snapshot it was fetched as
    assert record is not None and record.id == proc.id and run(record.getStatus()) == "completed"
    assert [p.id for p in run(sb.listProcesses())].count(proc.id) == 1


def test_wait_for_port_http_tcp_status_and_timeouts(run: Run, sb: SandboxClient, echo_port: int) -> None:
    server = run(sb.startProcess("sleep 0.3; exec python3 /srv/echo.py 8090"))
    started = time.monotonic()
    assert run(server.waitForPort(8090, {"timeoutMs": 10000})) == {"port": 8090, "status": 200}
    assert time.monotonic() - started < 5
    assert run(server.waitForPort(8090, {"mode": "tcp"})) == {"port": 8090}
    assert run(server.waitForPort(8090, {"path": "/status/204", "status": 204})) == {
        "port": 8090,
        "status": 204,
    }
    with pytest.raises(PloyError) as e:
        run(server.waitForPort(8090, {"path": "/status/500", "timeoutMs": 300}))
    assert e.value.code == "TIMEOUT" and "HTTP 500" in str(e.value)
    assert code_of(run, server.waitForPort(8099, {"mode": "tcp", "timeout": 200})) == "TIMEOUT"
    run(server.kill())


def test_waits_fail_fast_when_the_process_exits(run: Run, sb: SandboxClient) -> None:
    proc = run(sb.startProcess("echo starting; sleep 0.2; exit 4"))
    with pytest.raises(PloyError) as e:
        run(proc.waitForPort(8091, {"timeoutMs": 20000}))
    assert e.value.code == "PROCESS_EXITED_BEFORE_READY" and e.value.details["exitCode"] == 4
    with pytest.raises(PloyError) as e:
        run(proc.waitForLog("never printed", {"timeoutMs": 20000}))
    assert e.value.code == "PROCESS_EXITED_BEFORE_READY" and e.value.details["exitCode"] == 4


def test_wait_for_log_string_pattern_and_timeout(run: Run, sb: SandboxClient) -> None:
    proc = run(sb.startProcess("echo boot; sleep 0.2; echo 'listening on port 4242'; sleep 30"))
    assert run(proc.waitForLog("boot")) == {"line": "boot"}
    found = run(proc.waitForLog(re.compile(r"port (\d+)"), {"timeoutMs": 10000}))
    assert found == {"line": "listening on port 4242", "match": ["port 4242", "4242"]}
    assert code_of(run, proc.waitForLog("nothing like it", 300)) == "TIMEOUT"
    assert code_of(run, proc.waitForExit({"timeoutMs": 200})) == "TIMEOUT"
    assert code_of(run, proc.waitForLog(42)) == "INVALID_ARGUMENT"
    run(proc.kill("SIGKILL"))


def test_kill_with_a_signal(run: Run, sb: SandboxClient) -> None:
    proc = run(sb.startProcess("trap 'echo got-hup' HUP; echo trapped; while true; do sleep 0.05; done"))
    # the trap must be set before the signal (a fixed 0.3 s was not always enough on a loaded CI machine)
    run(proc.waitForLog("trapped", {"timeoutMs": 15000}))
    after = run(proc.kill("SIGHUP", {"graceMs": 300}))
    assert after["status"] == "running"  # a signal it handles is sent, never escalated
    assert run(proc.waitForLog("got-hup", {"timeoutMs": 5000}))["line"] == "got-hup"
    assert code_of(run, proc.kill("SIGNOPE")) == "INVALID_ARGUMENT"
    # SIGTERM, not SIGINT: bash lets a SIGINT go when the sleep it waits on happens to exit on its own
    # (its "wait and cooperative exit"), which a loaded CI machine hit
    done = run(proc.kill("SIGTERM", {"graceMs": 5000}))
    assert done["status"] == "failed" and done["killed"] is True


@pytest.mark.parametrize("port", [0, 65536, -1, "8080", 80.5, True])
def test_ports_out_of_range_are_invalid(run: Run, sb: SandboxClient, port: Any) -> None:
    proc = run(sb.startProcess("sleep 5"))
    assert code_of(run, proc.waitForPort(port)) == "INVALID_ARGUMENT"
    assert code_of(run, sb.exposePort(port)) == "INVALID_ARGUMENT"
    assert code_of(run, sb.wsConnect(upgrade_request(), port)) == "INVALID_ARGUMENT"


# ---- preview URLs ------------------------------------------------------------------------------


def test_preview_url_forwards_http_as_it_is(
    run: Run, binding: SandboxBinding, sb: SandboxClient, echo_port: int
) -> None:
    exposed = run(sb.exposePort(echo_port, {"name": "echo"}))
    m = re.match(r"^http://8080-reach-([a-z0-9]{16})\.localhost:8787/$", exposed["url"])
    assert m and exposed["port"] == 8080 and exposed["name"] == "echo", exposed
    url = exposed["url"]
    status, headers, body = preview(run, binding, url + "hello")
    assert (status, body, headers["x-sandbox"]) == (200, b"hello from the sandbox", "yes")
    # the same request straight to the container's address gives the same answer
    address, _ = run(sb._mgr.previews.target(sb.id))
    assert httpx.get(f"http://{address}:8080/hello").content == body
    status, headers, body = preview(run, binding, url + "redirect")
    assert status == 302 and headers["location"] == "/hello"  # redirects are the client's to follow
    assert preview(run, binding, url + "status/418")[0] == 418
    status, _, body = preview(
        run, binding, url + "echo?q=1", "PUT", body=b"\x00payload\xff", **{"x-custom": "v", "cookie": "a=b"}
    )
    doc = json.loads(body)
    assert doc["method"] == "PUT" and doc["path"] == "/echo?q=1" and doc["body"] == "\x00payload\xff"
    sent = {k.lower(): v for k, v in doc["headers"].items()}
    assert sent["x-custom"] == "v" and sent["cookie"] == "a=b"
    assert sent["host"] == url.split("//")[1].rstrip("/")  # the preview host, as browsers send it
    assert sent["x-forwarded-proto"] == "http"
    assert preview(run, binding, url + "big")[2] == b"x" * (2 * 1024 * 1024)
    assert preview(run, binding, url + "stream")[2] == b"".join(b"part %d\n" % i for i in range(5))
    assert preview(run, binding, url + "hello", "HEAD")[:2][0] == 200
    assert run(sb.isPortExposed(8080)) and not run(sb.isPortExposed(8081))
    assert [p["url"] for p in run(sb.getExposedPorts())] == [url]
    assert run(sb.exposePort(8080))["url"] == url  # exposing again keeps the URL


def test_other_hosts_are_not_previews(run: Run, binding: SandboxBinding) -> None:
    for url in ("http://localhost:8787/", "http://127.0.0.1:8787/x", "http://8080-reach.localhost:8787/"):
        assert run(binding.preview_fetch(Request(url))) is None


def test_wrong_old_and_unexposed_tokens_are_404(
    run: Run, binding: SandboxBinding, sb: SandboxClient, echo_port: int
) -> None:
    url = run(sb.exposePort(echo_port))["url"]
    token = url.split("-")[-1].split(".")[0]
    wrong = url.replace(token, "a" * 16)
    status, _, body = preview(run, binding, wrong)
    assert status == 404 and json.loads(body)["code"] == "INVALID_TOKEN"
    assert run(sb.validatePortToken(8080, token)) and not run(sb.validatePortToken(8080, "a" * 16))
    assert not run(sb.validatePortToken(8081, token))  # the token is the port's own
    assert not run(sb.validatePortToken(8080, token[:-1])) and not run(sb.validatePortToken(8080, ""))
    assert not run(sb.validatePortToken(8080, "\ud800"))  # a lone surrogate (JS strings may hold one)
    assert preview(run, binding, url.replace("8080-", "8081-"))[0] == 404  # the token is the port's own
    run(sb.unexposePort(8080))
    assert preview(run, binding, url + "hello")[0] == 404
    assert not run(sb.isPortExposed(8080)) and not run(sb.validatePortToken(8080, token))
    again = run(sb.exposePort(8080))["url"]
    assert again != url and preview(run, binding, again + "hello")[0] == 200
    assert preview(run, binding, url + "hello")[0] == 404  # the old URL stays dead
    custom = run(sb.exposePort(8080, {"token": "my_token"}))["url"]
    assert custom == "http://8080-reach-my_token.localhost:8787/"
    assert run(sb.validatePortToken(8080, "my_token")) and not run(sb.validatePortToken(8080, token))
    assert preview(run, binding, custom + "hello")[0] == 200
    assert code_of(run, sb.exposePort(8081, {"token": "my_token"})) == "ALREADY_EXISTS"
    assert code_of(run, sb.exposePort(8081, {"token": "Bad-Token"})) == "INVALID_ARGUMENT"


def test_ids_that_are_no_dns_label_get_a_stable_safe_one(run: Run, bindings: Any) -> None:
    b = bindings.make("labels")
    b.ctx.dev_host = "localhost:9"
    assert preview_label("box-1") == "box-1"
    label = preview_label("My_Box.1")
    assert re.match(r"^my-box-1-[0-9a-f]{10}$", label) and label == preview_label("My_Box.1")
    assert preview_label("my_box.1") != label  # ids differing in case only stay apart
    sb = b.get("My_Box.1")
    run(sb.writeFile("/srv/echo.py", ECHO_SERVER))
    run(run(sb.startProcess("python3 /srv/echo.py 8080")).waitForPort(8080, {"timeoutMs": 15000}))
    url = run(sb.exposePort(8080))["url"]
    assert f"-{label}-" in url
    assert preview(run, b, url + "hello")[:3:2] == (200, b"hello from the sandbox")


def test_restart_makes_urls_stale_until_exposed_again(run: Run, bindings: Any) -> None:
    b = bindings.make("stale")
    b.ctx.dev_host = "localhost:9"
    sb = b.get("stale")
    run(sb.writeFile("/srv/echo.py", ECHO_SERVER))
    run(run(sb.startProcess("python3 /srv/echo.py 8080")).waitForPort(8080, {"timeoutMs": 15000}))
    url = run(sb.exposePort(8080))["url"]
    assert preview(run, b, url + "hello")[0] == 200
    name = container_name(b.manager.state.read_claim("stale") or "")
    subprocess.run(["podman", "stop", "-t", "1", name], check=True, capture_output=True)
    assert run(sb.exec("true"))["success"]  # the next use starts the container again: a new start
    status, _, body = preview(run, b, url + "hello")
    assert status == 410 and json.loads(body)["code"] == "STALE_PREVIEW_URL"
    assert run(sb.getExposedPorts()) == [] and not run(sb.isPortExposed(8080))
    token = url.split("-")[-1].split(".")[0]
    assert run(sb.validatePortToken(8080, token))  # the record stands until unexposePort, as Cloudflare's
    run(run(sb.startProcess("python3 /srv/echo.py 8080")).waitForPort(8080, {"timeoutMs": 15000}))
    assert run(sb.exposePort(8080))["url"] == url  # Cloudflare's semantics: the same URL, current again
    assert preview(run, b, url + "hello")[0] == 200


def test_a_suspended_sandbox_is_not_woken_by_its_preview(run: Run, bindings: Any) -> None:
    b = bindings.make("asleep", sleep_after_s=1.5)
    b.ctx.dev_host = "localhost:9"
    sb = b.get("asleep")
    run(sb.writeFile("/srv/index.html", "hi"))
    url = run(sb.exposePort(8080))["url"]  # nothing listens yet: the URL is valid all the same
    status, _, body = preview(run, b, url)
    assert status == 502 and json.loads(body)["code"] == "PORT_UNREACHABLE"
    name = container_name(b.manager.state.read_claim("asleep") or "")
    assert wait_until(lambda: container_state(name) == "exited", timeout=30)
    status, headers, body = preview(run, b, url)
    assert status == 503 and json.loads(body)["code"] == "SANDBOX_NOT_RUNNING", body
    time.sleep(1)
    assert container_state(name) == "exited"  # still asleep
    assert run(sb.getExposedPorts()) == [] and container_state(name) == "exited"


def test_a_destroyed_sandbox_has_no_previews(run: Run, bindings: Any) -> None:
    b = bindings.make("gone")
    b.ctx.dev_host = "localhost:9"
    sb = b.get("gone")
    url = run(sb.exposePort(8080))["url"]
    run(sb.destroy())
    assert preview(run, b, url)[0] == 404


# ---- WebSockets to the sandbox ---------------------------------------------------------------


async def _talk(ws: WebSocket, messages: list[str | bytes]) -> list[str | bytes]:
    ws.accept()
    out = []
    for m in messages:
        await ws.send(m)
        out.append(await ws.receive())
    await ws.close()
    return out


def test_ws_connect_and_preview_websockets(
    run: Run, binding: SandboxBinding, sb: SandboxClient, echo_port: int
) -> None:
    r: WebResponse = run(sb.wsConnect(upgrade_request("http://x/ws", "chat, other"), echo_port))
    assert r.status == 101 and r.webSocket is not None and r.webSocket.protocol == "chat"
    assert run(_talk(r.webSocket, ["hi", b"\x00\xff"])) == ["hi", b"\x00\xff"]
    url = run(sb.exposePort(echo_port))["url"]
    host = url.split("//")[1].rstrip("/")
    r = run(binding.preview_fetch(_with_host(upgrade_request(url + "ws"), host)))
    assert r is not None and r.status == 101 and r.webSocket is not None
    assert run(_talk(r.webSocket, ["through the preview"])) == ["through the preview"]
    # a server that refuses the upgrade: its answer comes back as it is
    refused = run(sb.wsConnect(upgrade_request("http://x/hello"), echo_port))
    assert refused.status == 200 and refused.webSocket is None
    assert code_of(run, sb.wsConnect(Request("http://x/ws"), echo_port)) == "INVALID_ARGUMENT"


def test_servers_on_localhost_only_are_previewed_and_ws_connected(
    run: Run, binding: SandboxBinding, sb: SandboxClient
) -> None:
    """Vite, many dev servers and node's listen(port, "localhost") answer on the sandbox's loopback
    only, which its bridge address does not reach (E2B and Cloudflare ask users to bind 0.0.0.0):
    previews and wsConnect reach them inside the sandbox's network namespace."""
    run(sb.writeFile("/srv/lo/index.html", "on loopback only"))
    run(sb.writeFile("/srv/echo-lo.py", ECHO_SERVER.replace('(("0.0.0.0",', '(("127.0.0.1",')))
    for port, bind in ((8090, "127.0.0.1"), (8091, "::1")):
        proc = run(sb.startProcess(f"python3 -m http.server {port} --bind {bind}", {"cwd": "/srv/lo"}))
        run(proc.waitForPort(port, {"timeoutMs": 15000}))
        url = run(sb.exposePort(port))["url"]
        status, _, body = preview(run, binding, url + "index.html")
        assert (status, body) == (200, b"on loopback only"), (bind, status, body)
        status, _, body = preview(run, binding, url + "index.html")  # a pooled or a new connection
        assert status == 200
    proc = run(sb.startProcess("python3 /srv/echo-lo.py 8092"))
    run(proc.waitForPort(8092, {"path": "/hello", "timeoutMs": 15000}))
    r: WebResponse = run(sb.wsConnect(upgrade_request("http://x/ws"), 8092))
    assert r.status == 101 and r.webSocket is not None
    assert run(_talk(r.webSocket, ["via loopback"])) == ["via loopback"]
    # nothing listening at all: still a clear 502
    url = run(sb.exposePort(8093))["url"]
    status, _, body = preview(run, binding, url)
    assert status == 502 and json.loads(body)["code"] == "PORT_UNREACHABLE"


# http.server's files over HTTP/1.1 (keep-alive; `-m http.server` closes after each response)
KEEP_ALIVE_FILES = (
    'python3 -c "import http.server as h; '
    "h.test(HandlerClass=h.SimpleHTTPRequestHandler, protocol='HTTP/1.1', port={port})\""
)


def test_a_sandbox_without_a_network_is_previewed(run: Run, bindings: Any) -> None:
    """`network: none` leaves a sandbox no address to forward to; its own namespace still reaches its
    servers, so exposePort, previews and wsConnect work as for any other sandbox."""
    b = bindings.make("reach-none", network="none")
    b.ctx.dev_host = "localhost:8787"
    sb = b.get("isolated")
    run(sb.writeFile("/srv/n/index.html", "no network here"))
    run(sb.writeFile("/srv/echo.py", ECHO_SERVER))
    proc = run(sb.startProcess(KEEP_ALIVE_FILES.format(port=8095), {"cwd": "/srv/n"}))
    run(proc.waitForPort(8095, {"timeoutMs": 15000}))
    url = run(sb.exposePort(8095))["url"]
    assert preview(run, b, url + "index.html")[::2] == (200, b"no network here")
    proc = run(sb.startProcess("python3 /srv/echo.py 8096"))
    run(proc.waitForPort(8096, {"path": "/hello", "timeoutMs": 15000}))
    r: WebResponse = run(sb.wsConnect(upgrade_request("http://x/ws"), 8096))
    assert r.status == 101 and r.webSocket is not None
    assert run(_talk(r.webSocket, ["isolated"])) == ["isolated"]
    assert run(sb.exec("ls /sys/class/net"))["stdout"].split() == ["lo"]  # and it still has no network
    # another one on the same port: each preview reaches its own sandbox, pooled connections included
    other = b.get("isolated-2")
    run(other.writeFile("/srv/n/index.html", "the other one"))
    proc = run(other.startProcess(KEEP_ALIVE_FILES.format(port=8095), {"cwd": "/srv/n"}))
    run(proc.waitForPort(8095, {"timeoutMs": 15000}))
    other_url = run(other.exposePort(8095))["url"]
    for _ in range(3):
        assert preview(run, b, url + "index.html")[2] == b"no network here"
        assert preview(run, b, other_url + "index.html")[2] == b"the other one"


def _with_host(request: Request, host: str) -> Request:
    request.headers.set("host", host)
    return request


# ---- terminals -------------------------------------------------------------------------------


class Term:
    def __init__(self, run: Run, response: WebResponse) -> None:
        assert response.status == 101 and response.webSocket is not None
        self.run, self.ws, self.out, self.pos = run, response.webSocket, b"", 0
        assert self.run(self._accept()) == '{"type":"ready"}'

    async def _accept(self) -> str | bytes:
        self.ws.accept()  # on the loop: it starts the task reading the terminal
        return await self.ws.receive()

    def send(self, data: str | bytes) -> None:
        self.run(self.ws.send(data))

    def until(self, needle: bytes, timeout: float = 15) -> bytes:
        async def read() -> bytes:
            while needle not in self.out[self.pos :]:
                m = await self.ws.receive()
                self.out += m if isinstance(m, bytes) else m.encode()
            self.pos = self.out.index(needle, self.pos) + len(needle)  # the next wait looks past it
            return self.out

        try:
            return self.run(asyncio.wait_for(read(), timeout))
        except TimeoutError:
            raise AssertionError(f"{needle!r} not seen in {self.out[-600:]!r}") from None


def test_terminal_types_resizes_interrupts_and_runs_full_screen_programs(run: Run, sb: SandboxClient) -> None:
    t = Term(run, run(sb.terminal(upgrade_request(), {"cols": 100, "rows": 30})))
    t.send(b"echo hi-$((6*7))\r")
    t.until(b"hi-42")
    t.send(b"stty size\r")
    t.until(b"30 100")
    t.send('{"type":"resize","cols":132,"rows":43}')
    t.send(b"stty size; tput cols\r")
    t.until(b"43 132")
    t.send("echo typed-as-text\r")  # text that is no control message is typed
    t.until(b"typed-as-text")
    t.send(b"sleep 100; echo after-$((1+1))-sleep\r")
    time.sleep(0.3)
    t.send(b"\x03")  # Ctrl-C
    t.send(b"echo interrupted-$?\r")
    t.until(b"interrupted-130")
    assert b"after-2-sleep" not in t.out
    t.send(b"vi /tmp/vi-file\r")
    t.until(b"\x1b[?1049h")  # vi switched to the alternate screen
    t.send(b"ihello from vi\x1b:wq\r")
    t.until(b"\x1b[?1049l")  # back from the alternate screen: vi exited
    t.send(b"cat /tmp/vi-file\r")
    t.until(b"hello from vi\r\n")
    t.send(b"top -b -n 1 | head -3\r")
    t.until(b"load average")
    t.send(b"top -d 0.2\r")
    t.until(b"PID")
    time.sleep(0.5)
    t.send(b"q")  # top reads single keys in raw mode
    t.until(b"\x1b[?2004hroot@")  # the shell's prompt again (top drops what was typed meanwhile)
    t.send(b"echo top-$((2+3))-done\r")
    t.until(b"top-5-done")
    t.send(b"exit 3\r")
    t.until(b'{"type": "exit", "code": 3}')
    assert wait_until(lambda: t.ws.readyState == 3, timeout=5)


def test_closing_the_terminal_ends_the_shell(run: Run, sb: SandboxClient) -> None:
    t = Term(run, run(sb.terminal(upgrade_request())))
    t.send(b"sleep 777 & sleep 778\r")
    time.sleep(0.5)
    assert "sleep 778" in run(sb.exec("ps -eo args"))["stdout"]
    run(t.ws.close())
    assert wait_until(lambda: "sleep 77" not in run(sb.exec("ps -eo args"))["stdout"], timeout=10)


def test_a_sessions_terminal_shares_its_cwd_and_env(run: Run, sb: SandboxClient) -> None:
    session = run(sb.createSession({"cwd": "/tmp/term-session", "env": {"GREETING": "from-session"}}))
    run(session.exec("export LATER=set-later; cd /tmp"))
    t = Term(run, run(session.terminal(upgrade_request())))
    t.send(b'echo "$GREETING $LATER $(pwd)"\r')
    t.until(b"from-session set-later /tmp\r\n")


def test_terminal_needs_an_upgrade_and_a_shell(run: Run, sb: SandboxClient) -> None:
    assert code_of(run, sb.terminal(Request("http://x/"))) == "INVALID_ARGUMENT"
    assert code_of(run, sb.terminal(upgrade_request(), {"shell": "/no/such/shell"})) == "INVALID_ARGUMENT"
    assert code_of(run, sb.terminal(upgrade_request(), {"cols": 0})) == "INVALID_ARGUMENT"
