"""The web APIs inside QuickJS, checked against what the standards require (WPT-style cases).

One JS context (the eval worker) serves every test in this module: each test sends JS code and
compares the JSON the code returns.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.runtime.js.harness import JS_DIR, Harness

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def js() -> AsyncIterator[Harness]:
    h = await Harness.load(JS_DIR / "eval_worker.js")
    yield h
    await h.close()


# ---------------------------------------------------------------- Headers
async def test_headers_case_insensitive_and_combined(js: Harness) -> None:
    out = await js.eval("""
        const h = new Headers({"Content-Type": "text/plain"});
        h.append("X-Multi", "a");
        h.append("x-multi", " b ");
        h.append("Set-Cookie", "a=1");
        h.append("set-cookie", "b=2");
        return {
          ct: h.get("content-type"), CT: h.get("CONTENT-TYPE"), multi: h.get("X-MULTI"),
          cookie: h.get("set-cookie"), cookies: h.getSetCookie(), has: h.has("x-MULTI"),
          entries: [...h], missing: h.get("nope"),
        };
    """)
    assert out["ct"] == out["CT"] == "text/plain"
    assert out["multi"] == "a, b"  # combined with ", ", value whitespace trimmed
    assert out["cookie"] == "a=1, b=2"
    assert out["cookies"] == ["a=1", "b=2"]
    assert out["has"] is True and out["missing"] is None
    # iteration: lowercased names, sorted, combined, set-cookie kept apart
    assert out["entries"] == [
        ["content-type", "text/plain"], ["set-cookie", "a=1"], ["set-cookie", "b=2"], ["x-multi", "a, b"],
    ]  # fmt: skip


async def test_headers_set_delete_and_invalid_names(js: Harness) -> None:
    out = await js.eval("""
        const h = new Headers([["a", "1"], ["b", "2"], ["A", "3"]]);
        h.set("a", "4");
        h.delete("B");
        let bad = null;
        try { h.append("bad name", "x"); } catch (e) { bad = e.constructor.name; }
        let badValue = null;
        try { h.set("x", "a\\r\\nb"); } catch (e) { badValue = e.constructor.name; }
        let notByteString = null;
        try { h.set("x", "price: €1"); } catch (e) { notByteString = e.constructor.name; }
        let immutable = null;
        try { Response.redirect("http://x/").headers.set("a", "b"); } catch (e) { immutable = e.constructor.name; }
        return { entries: [...h], bad, badValue, notByteString, immutable };
    """)
    assert out == {
        "entries": [["a", "4"]], "bad": "TypeError", "badValue": "TypeError", "notByteString": "TypeError",
        "immutable": "TypeError",
    }  # fmt: skip


# ---------------------------------------------------------------- URL
URL_CASES = [
    # (input, base, expected href) -- from WPT urltestdata.json
    ("g", "http://a/b/c/d;p?q", "http://a/b/c/g"),
    ("./g", "http://a/b/c/d;p?q", "http://a/b/c/g"),
    ("g/", "http://a/b/c/d;p?q", "http://a/b/c/g/"),
    ("/g", "http://a/b/c/d;p?q", "http://a/g"),
    ("//g", "http://a/b/c/d;p?q", "http://g/"),
    ("?y", "http://a/b/c/d;p?q", "http://a/b/c/d;p?y"),
    ("#s", "http://a/b/c/d;p?q", "http://a/b/c/d;p?q#s"),
    ("../../../g", "http://a/b/c/d;p?q", "http://a/g"),
    ("../..", "http://a/b/c/d;p?q", "http://a/"),
    ("g;x=1/../y", "http://a/b/c/d;p?q", "http://a/b/c/y"),
    ("", "http://example.org/foo/bar", "http://example.org/foo/bar"),
    ("\\\\server\\file", "http://example.org/foo/bar", "http://server/file"),
    ("http://example.com/foo/%2e%2E/bar", None, "http://example.com/bar"),
    ("HTTP://EXAMPLE.com:80/a b?c d#e f", None, "http://example.com/a%20b?c%20d#e%20f"),
    ("https://example.com:443/", None, "https://example.com/"),
    ("http://0x7f.1/", None, "http://127.0.0.1/"),
    ("http://[0:0:0:0:0:0:0:1]:8080/", None, "http://[::1]:8080/"),
    ("http://user:pa ss@host/", None, "http://user:pa%20ss@host/"),
    ("http://mañana.com/", None, "http://xn--maana-pta.com/"),
    ("file:///C:/x/../y", None, "file:///C:/y"),
    ("mailto:someone@example.com", None, "mailto:someone@example.com"),
    ("non-special://host/a/../b", None, "non-special://host/b"),
    ("http://example.com/?q=ü", None, "http://example.com/?q=%C3%BC"),
    ("http://localhost:8787/favicon.ico?v=1.2&p=a/b", None, "http://localhost:8787/favicon.ico?v=1.2&p=a/b"),
    ("http://h:80/a/./b/../c/%2e%2E/d", None, "http://h/a/d"),
    ("wss://h:443/socket?x", None, "wss://h/socket?x"),
]


async def test_url_parsing_and_relative_resolution(js: Harness) -> None:
    cases = [[i, b, e] for i, b, e in URL_CASES]
    import json

    out = await js.eval(f"""
        return {json.dumps(cases)}.map(([input, base, expected]) => {{
          try {{ return new URL(input, base ?? undefined).href; }} catch (e) {{ return "ERR " + e; }}
        }});
    """)
    assert out == [e for _, _, e in URL_CASES]


async def test_url_failures_and_components(js: Harness) -> None:
    out = await js.eval("""
        const fails = ["http://", "http://a b/", "//x", "http://[::1/", "http://300.0.0.1/"].map((s) => URL.canParse(s));
        let err = null;
        try { new URL("/relative"); } catch (e) { err = e.constructor.name; }
        const u = new URL("https://user:pw@example.com:8443/p/a/t/h?query=string&a=1#hash");
        return {
          fails, err, parts: [u.protocol, u.username, u.password, u.host, u.hostname, u.port, u.pathname, u.search, u.hash, u.origin],
          json: JSON.stringify({ u: new URL("http://x/y") }),
        };
    """)
    assert out["fails"] == [False] * 5
    assert out["err"] == "TypeError"
    assert out["parts"] == [
        "https:", "user", "pw", "example.com:8443", "example.com", "8443", "/p/a/t/h", "?query=string&a=1", "#hash",
        "https://example.com:8443",
    ]  # fmt: skip
    assert out["json"] == '{"u":"http://x/y"}'


async def test_url_search_params_live_link(js: Harness) -> None:
    out = await js.eval("""
        const u = new URL("http://x/?a=1&b=2&a=3");
        const sp = u.searchParams;
        const before = [sp.get("a"), sp.getAll("a"), sp.has("b")];
        sp.append("c", "x y&z");
        sp.delete("b");
        const afterEdit = u.href;
        u.search = "?n=%E2%82%AC+1";
        const afterSearch = [sp.get("n"), sp.size];
        const p = new URLSearchParams({ z: "1", a: "2" });
        p.sort();
        return { before, afterEdit, afterSearch, sorted: p.toString(),
                 plus: new URLSearchParams("q=a+b%20c").get("q"), iter: [...new URLSearchParams([["k", "v"]])] };
    """)
    assert out["before"] == ["1", ["1", "3"], True]
    assert out["afterEdit"] == "http://x/?a=1&a=3&c=x+y%26z"
    assert out["afterSearch"] == ["€ 1", 1]
    assert out["sorted"] == "a=2&z=1"
    assert out["plus"] == "a b c"
    assert out["iter"] == [["k", "v"]]


# ---------------------------------------------------------------- encoding
async def test_text_decoder_streaming_split_multibyte(js: Harness) -> None:
    out = await js.eval("""
        const bytes = new TextEncoder().encode("a€b😀c");  // 1 + 3 + 1 + 4 + 1 bytes
        const results = [];
        for (let cut = 1; cut < bytes.length; cut++) {
          const d = new TextDecoder();
          results.push(d.decode(bytes.subarray(0, cut), { stream: true }) + d.decode(bytes.subarray(cut)));
        }
        // byte by byte
        const d = new TextDecoder();
        let s = "";
        for (const b of bytes) s += d.decode(new Uint8Array([b]), { stream: true });
        s += d.decode();
        // an incomplete sequence at the very end is replaced, or throws when fatal
        const loose = new TextDecoder().decode(new Uint8Array([0x61, 0xe2, 0x82]));
        let fatal = null;
        try { new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array([0xff])); } catch (e) { fatal = e.constructor.name; }
        const bom = new TextDecoder().decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x68, 0x69]));
        const keepBom = new TextDecoder("utf-8", { ignoreBOM: true }).decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x68])).length;
        return { len: bytes.length, results, s, loose, fatal, bom, keepBom,
                 invalid: new TextDecoder().decode(new Uint8Array([0x61, 0xff, 0x62, 0xc0, 0x80])) };
    """)
    assert out["len"] == 10
    assert set(out["results"]) == {"a€b😀c"}
    assert out["s"] == "a€b😀c"
    assert out["loose"] == "a\ufffd"
    assert out["fatal"] == "TypeError"
    assert out["bom"] == "hi"
    assert out["keepBom"] == 2
    assert out["invalid"] == "a\ufffdb\ufffd\ufffd"


async def test_text_encoder_and_base64(js: Harness) -> None:
    out = await js.eval("""
        const enc = new TextEncoder();
        const into = new Uint8Array(4);
        const r = enc.encodeInto("a€b", into);
        let atobErr = null;
        try { atob("a"); } catch (e) { atobErr = e.name; }
        let btoaErr = null;
        try { btoa("€"); } catch (e) { btoaErr = e.name; }
        return { lone: Array.from(enc.encode("\\ud800")), r, into: Array.from(into),
                 b64: btoa("hello\\u00ff"), back: atob(" aGVs bG8= "), atobErr, btoaErr };
    """)
    assert out["lone"] == [0xEF, 0xBF, 0xBD]
    assert out["r"] == {"read": 2, "written": 4}
    assert out["into"] == [0x61, 0xE2, 0x82, 0xAC]
    assert out["b64"] == "aGVsbG//"
    assert out["back"] == "hello"
    assert out["atobErr"] == "InvalidCharacterError"
    assert out["btoaErr"] == "InvalidCharacterError"


# ---------------------------------------------------------------- streams
async def test_readable_stream_backpressure_and_cancel(js: Harness) -> None:
    out = await js.eval("""
        let pulls = 0, cancelled = null;
        const rs = new ReadableStream({
          pull(c) { pulls++; c.enqueue(pulls); },
          cancel(reason) { cancelled = reason; },
        }, { highWaterMark: 3 });
        await new Promise((r) => setTimeout(r, 5));
        const pullsBeforeRead = pulls;  // filled up to the high-water mark, not beyond
        const reader = rs.getReader();
        const first = await reader.read();
        await new Promise((r) => setTimeout(r, 5));
        const pullsAfterRead = pulls;  // one taken, one pulled to refill
        await reader.cancel("enough");
        const afterCancel = await reader.read();
        return { pullsBeforeRead, first, pullsAfterRead, cancelled, afterCancel, locked: rs.locked };
    """)
    assert out["pullsBeforeRead"] == 3
    assert out["first"] == {"value": 1, "done": False}
    assert out["pullsAfterRead"] == 4
    assert out["cancelled"] == "enough"
    assert out["afterCancel"] == {"done": True}
    assert out["locked"] is True


async def test_readable_stream_tee_iteration_and_from(js: Harness) -> None:
    out = await js.eval("""
        const src = ReadableStream.from(["a", "b", "c"]);
        const [x, y] = src.tee();
        const xs = [];
        for await (const v of x) xs.push(v);
        const ys = [];
        for await (const v of y) ys.push(v);
        let cancelled = false;
        const s = new ReadableStream({ pull(c) { c.enqueue(1); }, cancel() { cancelled = true; } });
        for await (const v of s) break;  // breaking out of for-await cancels the stream
        let errored = null;
        const bad = new ReadableStream({ start(c) { c.error(new RangeError("nope")); } });
        try { await bad.getReader().read(); } catch (e) { errored = e.message; }
        return { xs, ys, cancelled, errored };
    """)
    assert out == {"xs": ["a", "b", "c"], "ys": ["a", "b", "c"], "cancelled": True, "errored": "nope"}


async def test_transform_and_writable_streams(js: Harness) -> None:
    out = await js.eval("""
        const upper = new TransformStream({ transform(chunk, c) { c.enqueue(chunk.toUpperCase()); } });
        const written = [];
        const sink = new WritableStream({ write(chunk) { written.push(chunk); } });
        await ReadableStream.from(["a", "b"]).pipeThrough(upper).pipeTo(sink);
        const text = await new Response(
          ReadableStream.from(["hé", "llo"]).pipeThrough(new TextEncoderStream())
        ).text();
        const dec = [];
        await new Response(new Uint8Array([0xe2, 0x82, 0xac, 0x21])).body
          .pipeThrough(new TextDecoderStream()).pipeTo(new WritableStream({ write(c) { dec.push(c); } }));
        // a WritableStream with highWaterMark 1 signals backpressure through writer.ready / desiredSize
        let release;
        const slow = new WritableStream({ write() { return new Promise((r) => (release = r)); } });
        const w = slow.getWriter();
        w.write("1");
        const desired = w.desiredSize;
        return { written, text, dec, desired };
    """)
    assert out == {"written": ["A", "B"], "text": "héllo", "dec": ["€!"], "desired": 0}


# ---------------------------------------------------------------- Request / Response / bodies
async def test_response_json_and_statics(js: Harness) -> None:
    out = await js.eval("""
        const r = Response.json({ a: 1 }, { status: 201, headers: { "x-extra": "1" } });
        const custom = Response.json([], { headers: { "content-type": "application/vnd.api+json" } });
        const redirect = Response.redirect("https://example.com/a b", 301);
        let badStatus = null;
        try { new Response("x", { status: 99 }); } catch (e) { badStatus = e.constructor.name; }
        let badRedirect = null;
        try { Response.redirect("http://x/", 200); } catch (e) { badRedirect = e.constructor.name; }
        const err = Response.error();
        return {
          status: r.status, ct: r.headers.get("content-type"), extra: r.headers.get("x-extra"), body: await r.text(),
          customCt: custom.headers.get("content-type"),
          redirect: [redirect.status, redirect.headers.get("location")],
          badStatus, badRedirect, err: [err.type, err.status],
          textCt: new Response("hi").headers.get("content-type"),
          nullBody: new Response(null, { status: 204 }).body,
        };
    """)
    assert out["status"] == 201 and out["ct"] == "application/json" and out["extra"] == "1"
    assert out["body"] == '{"a":1}'
    assert out["customCt"] == "application/vnd.api+json"
    assert out["redirect"] == [301, "https://example.com/a%20b"]
    assert out["badStatus"] == "RangeError" and out["badRedirect"] == "RangeError"
    assert out["err"] == ["error", 0]
    assert out["textCt"] == "text/plain;charset=UTF-8"
    assert out["nullBody"] is None


async def test_body_used_clone_and_formats(js: Harness) -> None:
    out = await js.eval("""
        const r = new Response("hello");
        const c = r.clone();
        const t1 = await r.text();
        let again = null;
        try { await r.text(); } catch (e) { again = e.constructor.name; }
        const fd = new FormData();
        fd.append("name", "ploy");
        fd.append("file", new Blob(["abc"], { type: "text/plain" }), "a.txt");
        const req = new Request("http://x/upload", { method: "POST", body: fd });
        const parsed = await req.formData();
        const file = parsed.get("file");
        const form = await new Response(new URLSearchParams("a=1&b=%20")).formData();
        const blob = new Blob(["ab", new Uint8Array([99])], { type: "TEXT/Plain" });
        return {
          t1, t2: await c.text(), used: r.bodyUsed, again,
          name: parsed.get("name"), file: [file.name, file.type, await file.text(), file instanceof File],
          form: [...form], blob: [blob.size, blob.type, await blob.slice(1).text()],
          ab: Array.from(new Uint8Array(await new Response("é").arrayBuffer())),
          reqJson: await new Request("http://x/", { method: "post", body: '{"k":[1]}' }).json(),
          method: new Request("http://x/", { method: "patch" }).method,
          getBody: (() => { try { new Request("http://x/", { body: "x" }); } catch (e) { return e.constructor.name; } })(),
        };
    """)
    assert out["t1"] == out["t2"] == "hello" and out["used"] is True and out["again"] == "TypeError"
    assert out["name"] == "ploy"
    assert out["file"] == ["a.txt", "text/plain", "abc", True]
    assert out["form"] == [["a", "1"], ["b", " "]]
    assert out["blob"] == [3, "text/plain", "bc"]
    assert out["ab"] == [0xC3, 0xA9]
    assert out["reqJson"] == {"k": [1]}
    assert out["method"] == "patch"  # only the standard methods are uppercased
    assert out["getBody"] == "TypeError"


# ---------------------------------------------------------------- timers, microtasks, clone, crypto, abort
async def test_set_timeout_ordering(js: Harness) -> None:
    out = await js.eval("""
        const order = [];
        await new Promise((done) => {
          setTimeout(() => order.push("t20"), 20);
          setTimeout(() => order.push("t0-a"), 0);
          setTimeout(() => { order.push("t0-b"); queueMicrotask(() => order.push("micro-after-t0-b")); }, 0);
          const cancelled = setTimeout(() => order.push("cancelled"), 1);
          setTimeout(() => order.push("t5"), 5);
          clearTimeout(cancelled);
          setTimeout(() => order.push("t0-c"), 0);
          let n = 0;
          const iv = setInterval(() => { order.push("iv" + ++n); if (n === 2) clearInterval(iv); }, 8);
          setTimeout(done, 40);
          Promise.resolve().then(() => order.push("micro"));
        });
        return order;
    """)
    assert out == ["micro", "t0-a", "t0-b", "micro-after-t0-b", "t0-c", "t5", "iv1", "iv2", "t20"]


async def test_structured_clone(js: Harness) -> None:
    out = await js.eval("""
        const a = { name: "a", when: new Date(0), re: /x+/gi, bytes: new Uint8Array([1, 2]), m: new Map([[1, { k: 1 }]]), s: new Set([1]) };
        a.self = a;
        a.list = [a, a.m];
        const c = structuredClone(a);
        let fnErr = null;
        try { structuredClone({ f() {} }); } catch (e) { fnErr = [e.name, e instanceof DOMException]; }
        return {
          distinct: c !== a, cycle: c.self === c, listCycle: c.list[0] === c && c.list[1] === c.m,
          date: c.when instanceof Date && c.when.getTime() === 0, re: [c.re.source, c.re.flags],
          bytes: c.bytes instanceof Uint8Array && c.bytes.buffer !== a.bytes.buffer && c.bytes[1] === 2,
          map: c.m.get(1).k === 1 && c.m.get(1) !== a.m.get(1), set: c.s.has(1), fnErr,
        };
    """)
    assert out == {
        "distinct": True, "cycle": True, "listCycle": True, "date": True, "re": ["x+", "gi"], "bytes": True,
        "map": True, "set": True, "fnErr": ["DataCloneError", True],
    }  # fmt: skip


async def test_crypto(js: Harness) -> None:
    out = await js.eval("""
        const uuids = new Set(Array.from({ length: 50 }, () => crypto.randomUUID()));
        const u = crypto.randomUUID();
        const a = crypto.getRandomValues(new Uint8Array(32));
        let quota = null;
        try { crypto.getRandomValues(new Uint8Array(65537)); } catch (e) { quota = e.name; }
        let floatErr = null;
        try { crypto.getRandomValues(new Float32Array(2)); } catch (e) { floatErr = e.name; }
        const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode("abc")));
        const key = await crypto.subtle.importKey("raw", new TextEncoder().encode("key"), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
        const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode("The quick brown fox jumps over the lazy dog")));
        const ok = await crypto.subtle.verify("HMAC", key, mac, new TextEncoder().encode("The quick brown fox jumps over the lazy dog"));
        const bad = await crypto.subtle.verify("HMAC", key, mac, new TextEncoder().encode("tampered"));
        const hex = (u8) => Array.from(u8, (b) => b.toString(16).padStart(2, "0")).join("");
        return { n: uuids.size, u, nonZero: a.some((x) => x !== 0), quota, floatErr, digest: hex(digest), mac: hex(mac), ok, bad };
    """)
    assert out["n"] == 50
    assert out["u"][14] == "4" and out["u"][19] in "89ab" and len(out["u"]) == 36
    assert out["nonZero"] and out["quota"] == "QuotaExceededError" and out["floatErr"] == "TypeMismatchError"
    assert out["digest"] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert (
        out["mac"] == "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    )  # RFC 4231-style vector
    assert out["ok"] is True and out["bad"] is False


async def test_abort_controller_and_events(js: Harness) -> None:
    out = await js.eval("""
        const ac = new AbortController();
        const seen = [];
        ac.signal.addEventListener("abort", (e) => seen.push(e.type));
        ac.signal.onabort = () => seen.push("onabort");
        ac.abort();
        const reason = [ac.signal.reason.name, ac.signal.aborted];
        const custom = AbortSignal.abort("why").reason;
        const t = AbortSignal.timeout(5);
        await new Promise((r) => t.addEventListener("abort", r));
        const et = new EventTarget();
        let count = 0;
        et.addEventListener("ping", () => count++, { once: true });
        et.dispatchEvent(new Event("ping"));
        et.dispatchEvent(new Event("ping"));
        let thrown = null;
        try { ac.signal.throwIfAborted(); } catch (e) { thrown = e.name; }
        return { seen, reason, custom, timeout: t.reason.name, count, thrown };
    """)
    assert out == {
        "seen": ["abort", "onabort"], "reason": ["AbortError", True], "custom": "why", "timeout": "TimeoutError",
        "count": 1, "thrown": "AbortError",
    }  # fmt: skip


async def test_globals_exist(js: Harness) -> None:
    names = (
        "Request Response Headers URL URLSearchParams TextEncoder TextDecoder ReadableStream WritableStream "
        "TransformStream atob btoa setTimeout clearTimeout setInterval clearInterval queueMicrotask structuredClone "
        "console AbortController AbortSignal fetch Blob File FormData performance crypto Event EventTarget DOMException "
        "TextEncoderStream TextDecoderStream navigator"
    ).split()
    out = await js.eval(f"return {names!r}.filter((n) => typeof globalThis[n] === 'undefined');")
    assert out == []
    assert await js.eval("return [navigator.userAgent, typeof performance.now()]") == ["Ploy", "number"]


async def test_pipe_to_options_and_error_propagation(js: Harness) -> None:
    out = await js.eval("""
        // preventClose leaves the destination open
        let closed = false;
        const chunks = [];
        const dest = new WritableStream({ write(c) { chunks.push(c); }, close() { closed = true; } });
        await ReadableStream.from([1, 2]).pipeTo(dest, { preventClose: true });
        const openAfter = !closed && !dest.locked;
        // a source error aborts the destination and rejects pipeTo
        let aborted = null;
        const failing = new ReadableStream({ pull(c) { c.error(new Error("source broke")); } });
        const sink = new WritableStream({ abort(r) { aborted = r.message; } });
        let pipeErr = null;
        try { await failing.pipeTo(sink); } catch (e) { pipeErr = e.message; }
        // a sink error cancels the source
        let cancelled = null;
        const src = new ReadableStream({ pull(c) { c.enqueue("x"); }, cancel(r) { cancelled = r.message; } });
        let sinkErr = null;
        try { await src.pipeTo(new WritableStream({ write() { throw new Error("sink broke"); } })); } catch (e) { sinkErr = e.message; }
        // an AbortSignal stops the pipe with its reason
        const ac = new AbortController();
        const endless = new ReadableStream({ async pull(c) { await new Promise((r) => setTimeout(r, 1)); c.enqueue(1); } });
        setTimeout(() => ac.abort(new Error("stop")), 10);
        let abortErr = null;
        try { await endless.pipeTo(new WritableStream(), { signal: ac.signal }); } catch (e) { abortErr = e.message; }
        // flush runs once at the end
        const t = new TransformStream({ transform(c, ctl) { ctl.enqueue(c * 2); }, flush(ctl) { ctl.enqueue("end"); } });
        const got = [];
        await ReadableStream.from([1, 2]).pipeThrough(t).pipeTo(new WritableStream({ write(c) { got.push(c); } }));
        return { chunks, openAfter, aborted, pipeErr, cancelled, sinkErr, abortErr, got };
    """)
    assert out == {
        "chunks": [1, 2], "openAfter": True, "aborted": "source broke", "pipeErr": "source broke",
        "cancelled": "sink broke", "sinkErr": "sink broke", "abortErr": "stop", "got": [2, 4, "end"],
    }  # fmt: skip
