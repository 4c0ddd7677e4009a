// The request entry: the worker's fetch handler run for each request, its Response handed to the host
// (respond/fail) and a streamed body pulled chunk by chunk (pull/cancel); then every host entry, from
// all the files, exposed as a `__ploy_<name>` global. (The host drains the job queue and reads
// __ploy_out after each call into one.)

let userDefault = null;
let env = {};
const jsStreams = new Map(); // sid -> {reader, rid}: JS ReadableStreams the host is sending as response bodies
let nextStreamId = 1;

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
      else if (typeof b.source === "string") { kind = 1; data = stringify(b.source); }
      else { kind = 2; data = stringify(bytesToLatin1(b.source)); }
    } else if (b.stream._hostSid !== undefined && !b.stream.locked && !b.stream._disturbed) {
      // A host stream passed through untouched (fetch body, execStream): the host pipes it itself.
      kind = 4; data = b.stream._hostSid;
      b.stream._disturbed = true;
      b.stream._reader = { _readRequests: [], _closed: deferred() };
    } else {
      if (b.stream.locked) { fail(rid, new TypeError("The returned Response's body stream is locked")); return; }
      kind = 3; data = nextStreamId++;
      jsStreams.set(data, { reader: b.stream.getReader(), rid });
    }
  }
  if (kind !== 3 && requestAborters.size !== 0) requestAborters.delete(rid);
  // As lines, not JSON (no header name, value or status text can hold a line break): the one op of
  // every request, cheaper to build here and to split in Python than JSON both ways.
  const h = resp[kHeaders];
  let text = rid + "\n" + resp[kStatus] + "\n" + kind + "\n" + resp[kStatusText] + "\n";
  if (h === null) {
    const type = resp[kContentType];
    text += type === null ? "0\n" : "1\ncontent-type\n" + type + "\n";
  } else {
    const list = headersList(h);
    const n = list.length;
    text += n;
    for (let i = 0; i < n; i++) text += "\n" + list[i][0] + "\n" + list[i][1];
    text += "\n";
  }
  hostSendText("respond", text + data);
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
  else if (result instanceof Promise) result.then((r) => respond(rid, r), (err) => fail(rid, err));
  else Promise.resolve(result).then((r) => respond(rid, r), (err) => fail(rid, err));
}

function pull(sid) {
  const s = jsStreams.get(sid);
  if (!s) { hostSend("chunk", sid, null, 0); return; }
  currentRid = s.rid;
  s.reader.read().then(({ value, done }) => {
    if (done) { jsStreams.delete(sid); requestAborters.delete(s.rid); hostSend("chunk", sid, null, 0); return; }
    if (typeof value === "string") hostSend("chunk", sid, value, 1);
    else if (value instanceof ArrayBuffer || ArrayBuffer.isView(value)) hostSend("chunk", sid, bytesToLatin1(toU8(value)), 0);
    else {
      const err = new TypeError(`A response body stream chunk must be a Uint8Array, got ${inspect(value, 0)}`);
      jsStreams.delete(sid);
      s.reader.cancel(err);
      hostSend("chunkError", sid, ...errorText(err));
    }
  }, (err) => {
    jsStreams.delete(sid);
    hostSend("chunkError", sid, ...errorText(err));
  });
}

function cancel(sid) {
  const s = jsStreams.get(sid);
  if (!s) return;
  jsStreams.delete(sid);
  currentRid = s.rid;
  const reason = new DOMException("The client disconnected", "AbortError");
  s.reader.cancel(reason).catch(() => {});
  const ac = requestAborters.get(s.rid);
  requestAborters.delete(s.rid);
  if (ac) ac.abort(reason);
}

const ENTRIES = { setDefault, init, request, pull, cancel, settle, settleBytes, feedEntropy, take, fireTimer, setProps, reportRejections, rid: () => currentRid };
for (const [k, v] of Object.entries(ENTRIES)) expose("__ploy_" + k, v);
