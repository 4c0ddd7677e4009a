// The request entry: the worker's fetch handler run for each request, its Response handed to the host
// (respond/fail) and a streamed body pulled chunk by chunk (pull/cancel); then every host entry, from
// all the files, exposed as a `__ploy_<name>` global. (The host drains the job queue and reads
// __ploy_out after each call into one.)

let userDefault = null;
let env = {};
const jsStreams = new Map(); // sid -> {reader, rid, arg}: JS streams the host pulls (response bodies, stream arguments)
let nextStreamId = 1;

// A JS stream the host pulls chunk by chunk (pull/cancel below). `reader` needs read() and cancel();
// `arg` (the method it was given to, e.g. "SandboxClient.writeFile", or false for a response body): a
// binding method's stream argument says nothing about the request when it ends (its abort signal is
// left alone).
function registerJsStream(reader, rid, arg) {
  const sid = nextStreamId++;
  jsStreams.set(sid, { reader, rid, arg });
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
  if (resp._type === "error") {
    fail(rid, new TypeError("The fetch handler returned Response.error()"));
    return;
  }
  const b = resp._body;
  let kind = 0;
  let data = null;
  if (b !== null) {
    if (resp.bodyUsed) { fail(rid, new TypeError("The returned Response's body has already been used")); return; }
    resp._used = true;
    if (b.stream === null) {
      if (b.bin !== undefined) { kind = 2; data = b.bin; }
      else if (typeof b.source === "string") { kind = 1; data = b.source; }
      else { kind = 2; data = bytesToLatin1(b.source); }
    } else if (b.stream._hostSid !== undefined && !b.stream.locked && !b.stream._disturbed) {
      // A host stream passed through untouched (fetch body, execStream): the host pipes it itself.
      kind = 4; data = b.stream._hostSid;
      b.stream._disturbed = true;
      b.stream._reader = { _readRequests: [], _closed: deferred() };
    } else {
      if (b.stream.locked) { fail(rid, new TypeError("The returned Response's body stream is locked")); return; }
      kind = 3; data = registerJsStream(b.stream.getReader(), rid, false);
    }
  }
  if (kind !== 3) requestAborters.delete(rid);
  hostSend("respond", rid, resp._status, resp._statusText, resp._headers._list, kind, data);
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

function request(rid, method, url, headersFlat, body) {
  currentRid = rid;
  let result;
  try {
    result = userDefault.fetch(incomingRequest(rid, method, url, headersFlat, body), env, execCtx);
  } catch (err) {
    fail(rid, err);
    return;
  }
  if (result instanceof Response) respond(rid, result);
  else Promise.resolve(result).then((r) => respond(rid, r), (err) => fail(rid, err));
}

function pull(sid) {
  const s = jsStreams.get(sid);
  if (!s) { hostSend("chunk", sid, null, 0); return; }
  currentRid = s.rid;
  s.reader.read().then(({ value, done }) => {
    if (done) { jsStreams.delete(sid); if (!s.arg) requestAborters.delete(s.rid); hostSend("chunk", sid, null, 0); return; }
    if (typeof value === "string") hostSend("chunk", sid, value, 1);
    else if (value instanceof ArrayBuffer || ArrayBuffer.isView(value)) {
      const u8 = toU8(value);
      if (u8.length < BIG_CHUNK) hostSend("chunk", sid, bytesToLatin1(u8), 0);
      else {
        // A big chunk waits here for the host to take it (takeChunk), as base64: no JSON.stringify
        // and json.loads of a megabyte (they cost more than the copy), no latin-1 step (a string the
        // host reads directly ends at its first NUL), and the engine's native toBase64 is the
        // cheapest way out. Uploads of 1 MB chunks went from ~125 to ~300 MB/s.
        bigChunks.set(sid, u8.toBase64());
        hostSend("chunk", sid, null, 2);
      }
    }
    else {
      const err = new TypeError(s.arg
        ? `${s.arg}: a stream chunk must be a Uint8Array or a string, got ${inspect(value, 0)}`
        : `A response body stream chunk must be a Uint8Array, got ${inspect(value, 0)}`);
      jsStreams.delete(sid);
      Promise.resolve(s.reader.cancel(err)).catch(() => {});
      hostSend("chunkError", sid, ...errorText(err));
    }
  }, (err) => {
    jsStreams.delete(sid);
    hostSend("chunkError", sid, ...errorText(err));
  });
}

const BIG_CHUNK = 16384;
const bigChunks = new Map(); // sid -> a big chunk (latin-1) the host is about to take

// Host entry: the big chunk pull() left for this stream, base64.
function takeChunk(sid) {
  const chunk = bigChunks.get(sid);
  bigChunks.delete(sid);
  return chunk === undefined ? "" : chunk;
}

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

const ENTRIES = { setDefault, init, request, pull, cancel, takeChunk, settle, settleBytes, feedEntropy, take, fireTimer, setProps, rid: () => currentRid };
for (const [k, v] of Object.entries(ENTRIES)) expose("__ploy_" + k, v);
