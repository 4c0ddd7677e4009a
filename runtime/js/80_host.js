// What the host does for JS: outbound fetch, byte streams that live in Python, binding proxies.

// A ReadableStream pulling from a Python AsyncIterator[bytes] (a fetch body, a sandbox execStream).
// highWaterMark 0: nothing is read from the host before someone asks (backpressure end to end).
function hostReadableStream(sid) {
  const rs = new ReadableStream({
    pull(c) {
      return hostCall("read", sid).then((chunk) => {
        if (chunk === null) c.close();
        else c.enqueue(chunk);
      });
    },
    cancel() {
      hostSend("cancelStream", sid);
    },
  }, { highWaterMark: 0 });
  rs._hostSid = sid;
  // A body nobody reads (e.g. `await fetch(url)` with the response ignored) must not hold the
  // host's connection forever: closing an already finished or handed-over stream is a no-op.
  unreadStreams.register(rs, sid);
  return rs;
}
const unreadStreams = new FinalizationRegistry((sid) => hostSend("cancelStream", sid));

function fetchImpl(input, init) {
  let req;
  try {
    req = new Request(input, init);
  } catch (err) {
    return Promise.reject(err);
  }
  const signal = req._signal;
  if (signal && signal.aborted) return Promise.reject(signal.reason);
  const scheme = req._url.slice(0, req._url.indexOf(":"));
  if (scheme === "data") return dataUrlResponse(req._url);
  if (scheme !== "http" && scheme !== "https") return Promise.reject(new TypeError(`fetch: unsupported URL scheme "${scheme}:"`));
  const bodyP = req._body === null ? Promise.resolve(null) : req._consume();
  return bodyP.then((body) => {
    const id = nextOpId; // the id hostCall is about to use, so abort can name it
    const p = hostCall("fetch", encodeForHost({
      url: req._url,
      method: req._method,
      headers: req._headers._list,
      body: body === null ? null : typeof body === "string" ? utf8Encode(body) : body.bin !== undefined ? { __ploy_bytes: body.bin } : body,
      redirect: req._redirect,
    }));
    if (!signal) return p.then((meta) => fetchResponse(meta, null));
    return new Promise((resolve, reject) => {
      let aborted = false;
      const onAbort = (reason) => {
        aborted = true;
        pending.delete(id); // the host cancels the op and never settles it
        hostSend("abortOp", id);
        reject(reason);
      };
      signal._algorithms.add(onAbort);
      p.then((meta) => {
        signal._algorithms.delete(onAbort);
        if (aborted) { if (meta.stream !== null) hostSend("cancelStream", meta.stream); return; }
        const resp = fetchResponse(meta, signal);
        resolve(resp);
      }, (err) => { signal._algorithms.delete(onAbort); if (!aborted) reject(err); });
    });
  });
}

// Fetch's "data: URL processor", answered without the host.
function dataUrlResponse(url) {
  const hash = url.indexOf("#");
  const input = (hash < 0 ? url : url.slice(0, hash)).slice(5);
  const comma = input.indexOf(",");
  if (comma < 0) return Promise.reject(new TypeError("fetch: a data: URL needs a comma"));
  let mime = input.slice(0, comma).replace(/^[\t\n\f\r ]+|[\t\n\f\r ]+$/g, "");
  let body = bytesToLatin1(pctDecodeBytes(utf8Encode(input.slice(comma + 1))));
  const b64 = /;[ ]*base64$/i.exec(mime);
  if (b64) {
    mime = mime.slice(0, b64.index);
    try { body = atob(body); } catch { return Promise.reject(new TypeError("fetch: invalid base64 in a data: URL")); }
  }
  if (mime.startsWith(";")) mime = "text/plain" + mime;
  const m = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+)\/([!#$%&'*+\-.^_`|~0-9A-Za-z]+)[\t\n\f\r ]*((?:;.*)?)$/.exec(mime);
  let type = "text/plain;charset=US-ASCII";
  if (m) {
    type = `${m[1]}/${m[2]}`.toLowerCase();
    for (const param of m[3].split(";").slice(1)) {
      const eq = param.indexOf("=");
      if (eq <= 0) continue;
      const name = param.slice(0, eq).trim().toLowerCase();
      if (name) type += `;${name}=${param.slice(eq + 1)}`;
    }
  }
  const r = new Response(INTERNAL);
  r._status = 200; r._statusText = "OK"; r._type = "basic"; r._url = url;
  r._headers = headersFromFlat(`content-type\n${type}`, "immutable");
  r._body = { source: null, bin: body, stream: null };
  return Promise.resolve(r);
}

function fetchResponse(meta, signal) {
  const r = new Response(INTERNAL);
  r._status = meta.status;
  r._statusText = meta.statusText;
  r._headers = new Headers();
  r._headers._list = meta.headers;
  r._headers._guard = "immutable";
  r._url = meta.url;
  r._redirected = meta.redirected;
  r._type = "basic";
  if (meta.stream !== null) {
    const stream = hostReadableStream(meta.stream);
    r._body = { source: null, stream };
    if (signal) {
      const onAbort = (reason) => {
        stream._controller.error(reason);
        hostSend("cancelStream", meta.stream);
      };
      signal._algorithms.add(onAbort);
    }
  }
  return r;
}

expose("fetch", function fetch(input, init) {
  return fetchImpl(input, init);
});

// ---------------------------------------------------------------- binding proxies
// Built generically from the ObjectSpec the host sends; nothing here knows about sandboxes.
const specs = new Map(); // spec name -> [[method, kind, returns], ...]
const protos = new Map(); // spec name -> prototype
let nextLocalHandle = -1; // handles allocated by JS (results of sync methods) are negative
const released = new FinalizationRegistry((handle) => hostSend("release", handle));
const handleObjects = new Map(); // handle -> WeakRef(proxy), so late props can be filled in

function protoFor(specName) {
  let proto = protos.get(specName);
  if (proto) return proto;
  const methods = specs.get(specName);
  if (!methods) throw new TypeError(`unknown binding type ${specName}`);
  proto = {};
  for (const [name, kind, returns, propsFromArgs] of methods) {
    let fn;
    if (kind === "sync") {
      fn = function (...args) {
        if (!returns) throw new TypeError(`${specName}.${name}: synchronous methods must return a binding object`);
        const handle = nextLocalHandle--;
        hostSend("callSync", handle, this[PROXY_HANDLE], name, encodeForHost(args));
        // Props the spec says equal the arguments are known now; the rest arrive with the host's answer.
        const props = {};
        (propsFromArgs || []).forEach((p, i) => { props[p] = args[i]; });
        return makeProxy({ handle, spec: returns, props });
      };
    } else {
      fn = function (...args) {
        // The host's answer arrives on a fresh stack; keep the caller's, so an uncaught binding error
        // points at the user's `await sandbox.x()` line instead of ploy's bridge.
        const site = new Error();
        return hostCall("call", this[PROXY_HANDLE], name, encodeForHost(args)).catch((err) => {
          if (err instanceof Error && typeof site.stack === "string") err.stack = site.stack;
          throw err;
        });
      };
    }
    Object.defineProperty(fn, "name", { value: name });
    Object.defineProperty(proto, name, { value: fn, writable: true, configurable: true, enumerable: false });
  }
  Object.defineProperty(proto, Symbol.toStringTag, { value: specName });
  protos.set(specName, proto);
  return proto;
}

function makeProxy(desc) {
  if (desc.methods) specs.set(desc.spec, desc.methods);
  const obj = Object.create(protoFor(desc.spec));
  Object.defineProperty(obj, PROXY_HANDLE, { value: desc.handle });
  Object.assign(obj, desc.props || {});
  released.register(obj, desc.handle);
  if (desc.handle < 0) handleObjects.set(desc.handle, new WeakRef(obj));
  return obj;
}

// Host entry: props of an object a sync method returned, known once the host ran the method.
function setProps(handle, json) {
  const ref = handleObjects.get(handle);
  handleObjects.delete(handle);
  const obj = ref && ref.deref();
  if (obj) Object.assign(obj, JSON.parse(json));
}
