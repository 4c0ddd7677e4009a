// The request entry: the worker's fetch handler run for each request, its Response handed to the host
// (respond/fail) and a streamed body pulled chunk by chunk (pull/cancel); then every host entry, from
// all the files, exposed as a `__ploy_<name>` global. (The host drains the job queue and reads
// __ploy_out after each call into one.)

let userDefault = null;
let env = {};
const jsStreams = new Map(); // sid -> its state (registerJsStream): JS streams the host pulls (response bodies, stream arguments)
let nextStreamId = 1;

// A JS stream the host pulls (pull/takeChunks/cancel below). `reader` needs read() and cancel().
// `stream`: for a response body, the ReadableStream it reads, which lets it read ahead what is
// already queued; a binding method's stream argument (`stream` undefined) is read one chunk per pull,
// at the method's pace (a method that stops after one chunk makes its source produce no more). `arg`
// (the method it was given to, e.g. "SandboxClient.writeFile", or false for a response body): a
// stream argument says nothing about the request when it ends (its abort signal is left alone).
function registerJsStream(reader, rid, arg, stream = null) {
  const sid = nextStreamId++;
  jsStreams.set(sid, { stream, reader, rid, arg, buf: [], size: 0, reading: false, done: false, notified: false });
  return sid;
}

const execCtx = {
  waitUntil(p) { Promise.resolve(p).catch((err) => reportError(err)); },
  passThroughOnException() {},
  props: {},
};

function errorText(err) {
  if (err instanceof Error) return [`${err.name}: ${err.message}`, String(err.stack || "")];
  if (err && typeof err === "object" && typeof err.message === "string") return [`${err.name || "Error"}: ${err.message}`, String(err.stack || "")];
  return ["Uncaught " + inspect(err), ""];
}

function fail(rid, err) {
  requestAborters.delete(rid);
  const [headline, stack] = errorText(err);
  hostSend("fail", rid, headline, stack);
}

function respond(rid, resp) {
  if (!(resp instanceof Response)) {
    fail(rid, new TypeError(`The fetch handler must return a Response, got ${inspect(resp, 0)}`));
    return;
  }
  if (resp[kType] === "error") {
    fail(rid, new TypeError("The fetch handler returned Response.error()"));
    return;
  }
  const b = resp[kBody];
  let kind = 0;
  let data = "";
  if (b !== null) {
    if (resp[kUsed] || (b.stream !== null && b.stream._disturbed)) { fail(rid, new TypeError("The returned Response's body has already been used")); return; }
    resp[kUsed] = true;
    if (b.stream === null) {
      // JSON-quoted: the host's binding reads strings as C strings (a NUL would end them) and as
      // strict UTF-8 (a lone surrogate would fail)
      if (b.bin !== undefined) { kind = 2; data = stringify(b.bin); }
      else if (b.json === true) { kind = 5; data = b.source; }
      else if (typeof b.source === "string") { kind = 1; data = stringify(b.source); }
      else { kind = 2; data = stringify(bytesToLatin1(b.source)); }
    } else if (b.stream._hostSid !== undefined && !b.stream.locked && !b.stream._disturbed) {
      // A host stream passed through untouched (fetch body, execStream): the host pipes it itself.
      kind = 4; data = b.stream._hostSid;
      b.stream._disturbed = true;
      b.stream._reader = { _readRequests: [], _closed: deferred() };
    } else {
      if (b.stream.locked) { fail(rid, new TypeError("The returned Response's body stream is locked")); return; }
      kind = 3; data = registerJsStream(b.stream.getReader(), rid, false, b.stream);
    }
  }
  if (kind !== 3 && requestAborters.size !== 0) requestAborters.delete(rid);
  if (resp[kWebSocket] !== null) {
    // a 101 upgrade (85_websocket.js): rare, so it keeps its own JSON op beside the text one
    let ws;
    try { ws = handOverSocket(resp); } catch (err) { fail(rid, err); return; }
    hostSend("respondWebSocket", rid, resp[kStatus], resp[kStatusText], responseHeaderList(resp), ws);
    return;
  }
  // As lines, not JSON (no header name, value or status text can hold a line break): the one op of
  // every request, cheaper to build here and to split in Python than JSON both ways.
  const list = responseHeaderList(resp);
  const n = list.length;
  let text = rid + "\n" + resp[kStatus] + "\n" + kind + "\n" + resp[kStatusText] + "\n" + n;
  for (let i = 0; i < n; i++) text += "\n" + list[i][0] + "\n" + list[i][1];
  text += "\n";
  hostSendText("respond", data.length <= 512 ? text + data : [text, data].join(""));
}

// --- host entries ---
function setDefault(value) {
  userDefault = value;
}

function init(envJson) {
  const desc = JSON.parse(envJson);
  for (const s of desc.specs) specs.set(s[0], s[1]);
  env = {};
  for (const [k, v] of Object.entries(desc.env)) env[k] = v !== null && typeof v === "object" ? makeProxy(v.__ploy_obj) : v;
  if (userDefault === null || userDefault === undefined) return "The worker module has no default export (expected `export default { fetch(request, env) { ... } }`)";
  if (typeof userDefault.fetch !== "function") return "The worker's default export has no fetch(request, env) method";
  return "";
}

function request(rid, method, url, headersFlat, body, text) {
  currentRid = rid;
  let result;
  try {
    result = userDefault.fetch(incomingRequest(rid, method, url, headersFlat, body, text), env, execCtx);
  } catch (err) {
    fail(rid, err);
    return;
  }
  if (result instanceof Response) respond(rid, result);
  else if (result instanceof Promise) result.then((r) => respond(rid, r), (err) => fail(rid, err));
  else Promise.resolve(result).then((r) => respond(rid, r), (err) => fail(rid, err));
}

// A response body that is a JS ReadableStream is read on, without waiting for the host, as long as
// the stream has chunks ready (queued, or enqueued by the pull under way), up to BODY_BATCH
// characters: the chunks produced while the job queue runs are joined into one batch, which the host
// takes (takeChunks) when it handles the one "chunk" op the batch's first chunk sent. A stream of
// 1,000 small chunks crosses to the host once, not 1,000 times; a source is never pulled for more
// than its highWaterMark asks before the host wants more (backpressure).
const BODY_BATCH = 65536;

// With the QuickJS hooks in place (runtime/workers/quickjs_hooks.py), the host copies a batch's bytes
// straight out of a Uint8Array left in this slot, instead of JS turning every chunk into a latin-1
// string and the host parsing that back: bytes then cross as one memcpy.
const FAST_BYTES = globalThis.__ploy_fastBytes === true;
delete globalThis.__ploy_fastBytes;
Object.defineProperty(globalThis, "__ploy_bytesOut", { value: undefined, writable: true, configurable: false, enumerable: false });

// Host entry: the host wants more of stream `sid` (it has taken everything read so far).
function pull(sid) {
  const s = jsStreams.get(sid);
  if (!s) { hostSend("chunk", sid); return; }
  if (!s.reading && !s.done) readAhead(sid, s);
}

function readAhead(sid, s) {
  s.reading = true;
  currentRid = s.rid;
  const onError = (err) => {
    s.reading = false;
    jsStreams.delete(sid);
    if (!s.arg) requestAborters.delete(s.rid);
    hostSend("chunkError", sid, ...errorText(err));
  };
  const step = (result) => {
    if (result.done) {
      s.reading = false;
      s.done = true;
      if (!s.arg) requestAborters.delete(s.rid);
      notifyChunk(sid, s);
      return;
    }
    const value = result.value;
    let text;
    // FAST_BYTES: a copy (native), as the latin-1 string was: the source may reuse its buffer
    if (value instanceof Uint8Array) text = FAST_BYTES ? value.slice() : bytesToLatin1(value);
    else if (typeof value === "string") text = FAST_BYTES ? utf8Encode(value) : bytesToLatin1(utf8Encode(value));
    else if (value instanceof ArrayBuffer || ArrayBuffer.isView(value)) text = FAST_BYTES ? toU8(value).slice() : bytesToLatin1(toU8(value));
    else {
      const err = new TypeError(s.arg
        ? `${s.arg}: a stream chunk must be a Uint8Array or a string, got ${inspect(value, 0)}`
        : `A response body stream chunk must be a Uint8Array, got ${inspect(value, 0)}`);
      Promise.resolve(s.reader.cancel(err)).catch(() => {});
      onError(err);
      return;
    }
    if (text.length !== 0) {
      s.buf.push(text);
      notifyChunk(sid, s);
      s.size += text.length;
    }
    // an empty chunk: the host still waits for something (or the end), so read on
    if (!s.notified) { s.reader.read().then(step, onError); return; }
    // a stream argument (no stream here): its next chunk waits for the next pull
    if (s.size >= BODY_BATCH || !s.stream) { s.reading = false; return; }
    const c = s.stream._controller;
    if (c._pulling && c._onPulled === null && c instanceof ReadableStreamDefaultController) c._onPulled = () => more(c);
    else more(c);
  };
  const more = (c) => {
    if (c._queue.length !== 0 || s.stream._state !== "readable") s.reader.read().then(step, onError);
    else s.reading = false;
  };
  s.reader.read().then(step, onError);
}

function notifyChunk(sid, s) {
  if (s.notified) return;
  s.notified = true;
  hostSend("chunk", sid);
}

// Host entry: what stream `sid` read since the last take, as "1" (the end follows) or "0", then the
// bytes as a JSON-quoted latin-1 string; with FAST_BYTES only the flag, the bytes left in __ploy_bytesOut.
function takeChunks(sid) {
  const s = jsStreams.get(sid);
  if (!s) return FAST_BYTES ? takeBytes(new Uint8Array(0), "1") : "1\"\"";
  s.notified = false;
  const buf = s.buf;
  s.buf = [];
  s.size = 0;
  if (s.done) jsStreams.delete(sid);
  const flag = s.done ? "1" : "0";
  if (FAST_BYTES) return takeBytes(buf.length === 1 ? buf[0] : concatBytes(buf), flag);
  const data = buf.length === 1 ? buf[0] : buf.join("");
  return [flag, stringify(data)].join(""); // joined: a long concatenation is a rope, which the host cannot read
}

function takeBytes(u8, flag) {
  globalThis.__ploy_bytesOut = u8;
  return flag;
}

// concatBytes: 71_blob.js

function cancel(sid) {
  const s = jsStreams.get(sid);
  if (!s) return;
  jsStreams.delete(sid);
  currentRid = s.rid;
  if (s.arg) {
    // the host is done with a stream argument before its end (the call failed or stopped reading)
    Promise.resolve(s.reader.cancel(new DOMException("The binding call stopped reading the stream", "AbortError"))).catch(() => {});
    return;
  }
  const reason = new DOMException("The client disconnected", "AbortError");
  s.reader.cancel(reason).catch(() => {});
  const ac = requestAborters.get(s.rid);
  requestAborters.delete(s.rid);
  if (ac) ac.abort(reason);
}

const ENTRIES = { setDefault, init, request, pull, takeChunks, cancel, settle, settleBytes, settleResponse, feedEntropy, take, fireTimer, setProps, reportRejections, rid: () => currentRid };
for (const [k, v] of Object.entries(ENTRIES)) expose("__ploy_" + k, v);
