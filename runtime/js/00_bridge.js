// The bridge between this QuickJS context and the Python host.
//
// JS never calls into Python (impossible once a CPU time limit is set): it queues host operations
// as JSON texts. After every entry into JS the host drains the job queue and then reads the global
// `__ploy_out`: "" (nothing queued), the one queued op's JSON (the usual case: a request's response),
// or 1 (several: the host calls take() for them all). Reading a global is not a call into JS, so the
// usual case skips the CPU-clock read (a real syscall) that every call pays while a time limit is
// set. (Several ops are not concatenated into __ploy_out: a long concatenation is a rope string, which
// the host's binding cannot read.) The host answers by calling `settle(id, ok, payload)`.
// Every .js file under runtime/js/ is concatenated into one function body, so they share this scope.
// Each host op is handled by the Python module beside the file that sends it (runtime/js/README.md).

const stringify = JSON.stringify;
// Non-configurable, so worker code cannot turn it into an accessor that would run JS (without a time
// limit) when the host reads it.
Object.defineProperty(globalThis, "__ploy_out", { value: "", writable: true, configurable: false, enumerable: false });
const queued = []; // JSON texts of ops not taken yet
const pending = new Map(); // op id -> {resolve, reject, rid}
let nextOpId = 1;
let currentRid = 0; // the request whose code is running now (for console tagging)

function emit(op) {
  const s = stringify(op);
  if (globalThis.__ploy_out === "") queued.length = 0; // the host took what was there
  queued.push(s);
  globalThis.__ploy_out = queued.length === 1 ? s : 1;
}

// A host operation without an answer, sent as a text rather than JSON: `op`, a line break, then
// `text` in the format its handler parses (a JSON text starts with "[", so the host tells them
// apart). Concatenating a string longer than 512 characters makes a rope, which the host's binding
// cannot read: joined then (a rope that gets here anyway makes the host call take(), which flattens).
function hostSendText(op, text) {
  const s = text.length <= 512 ? op + "\n" + text : [op, text].join("\n");
  if (globalThis.__ploy_out === "") queued.length = 0;
  queued.push(s);
  globalThis.__ploy_out = queued.length === 1 ? s : 1;
}

// Host entry: every queued op, as the items of a JSON array (hostSendText's as JSON strings).
function take() {
  for (let i = 0; i < queued.length; i++) if (queued[i][0] !== "[") queued[i] = stringify(queued[i]);
  const s = queued.join(",");
  queued.length = 0;
  globalThis.__ploy_out = "";
  return s;
}

function expose(name, value) {
  Object.defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });
  if (typeof value === "function" && value.prototype) {
    enumerable(value.prototype);
    enumerable(value);
  }
}

// WebIDL makes an interface's operations and attributes enumerable (`for (k in headers)` lists
// `append`, ...); class syntax makes them non-enumerable. Internals (`_x`) and symbols stay hidden.
function enumerable(obj) {
  const ctor = typeof obj === "function";
  for (const key of Object.getOwnPropertyNames(obj)) {
    if (key === "constructor" || key[0] === "_" || (ctor && (key === "prototype" || key === "length" || key === "name"))) continue;
    const desc = Object.getOwnPropertyDescriptor(obj, key);
    if (!desc.enumerable && desc.configurable) Object.defineProperty(obj, key, { enumerable: true });
  }
}

// A host operation whose answer comes back through settle(); resolves with the decoded payload.
function hostCall(op, ...args) {
  const id = nextOpId++;
  const rid = currentRid;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject, rid });
    emit([op, id, ...args]);
  });
}

// hostCall sent as a text op (see hostSendText): the op id, a line break, then `text`. For ops on the
// hot path whose arguments are cheaper to write as lines than as JSON (proxyToSandbox).
function hostCallText(op, text) {
  const id = nextOpId++;
  const rid = currentRid;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject, rid });
    hostSendText(op, id + "\n" + text);
  });
}

// A host operation without an answer.
function hostSend(op, ...args) {
  emit([op, ...args]);
}

// Host entry: the answer to the hostCall with this id (`special`: the payload has tagged values).
function settle(id, ok, payload, special) {
  const p = pending.get(id);
  if (!p) return;
  pending.delete(id);
  currentRid = p.rid;
  if (ok) p.resolve(decodeFromHost(payload, special));
  else p.reject(hostError(JSON.parse(payload)));
}

// Host entry: the answer to a hostCall whose result is bytes (a `read`), as latin-1; null at the end;
// 0 when the host left them as a Uint8Array in __ploy_bytesIn (the QuickJS hooks: one copy).
Object.defineProperty(globalThis, "__ploy_bytesIn", { value: undefined, writable: true, configurable: false, enumerable: false });
function settleBytes(id, latin1) {
  let bytes = null;
  if (latin1 === 0) {
    bytes = globalThis.__ploy_bytesIn;
    globalThis.__ploy_bytesIn = undefined;
  } else if (latin1 !== null) {
    bytes = latin1ToBytes(latin1);
  }
  const p = pending.get(id);
  if (!p) return;
  pending.delete(id);
  currentRid = p.rid;
  p.resolve(bytes);
}

// --- binary <-> latin-1 strings: the only cheap way bytes cross the boundary ---
// Large inputs go through the engine's native base64 (btoa/atob, Uint8Array.fromBase64/toBase64):
// ~60x faster than a per-byte JS loop in QuickJS's interpreter.
function bytesToLatin1(u8) {
  if (u8.length > 256) return atob(u8.toBase64());
  return String.fromCharCode.apply(null, u8);
}

function latin1ToBytes(s) {
  const n = s.length;
  if (n > 256) return Uint8Array.fromBase64(btoa(s));
  const u8 = new Uint8Array(n);
  for (let i = 0; i < n; i++) u8[i] = s.charCodeAt(i);
  return u8;
}

// Values to the host: JSON with bytes and binding proxies tagged.
const PROXY_HANDLE = Symbol("ploy.handle");
function encodeForHost(value) {
  return JSON.stringify(value, function (key, v) {
    const raw = this[key];
    if (raw instanceof Uint8Array || raw instanceof ArrayBuffer || ArrayBuffer.isView(raw)) {
      return { __ploy_bytes: bytesToLatin1(toU8(raw)) };
    }
    if (raw && typeof raw === "object" && raw[PROXY_HANDLE] !== undefined) {
      return { __ploy_handle: raw[PROXY_HANDLE] };
    }
    if (raw instanceof Request) return { __ploy_request: requestForHost(raw) }; // 86_preview.js
    if (raw instanceof RegExp) return { __ploy_regexp: [raw.source, raw.flags] };
    if (typeof raw === "bigint") return Number(raw);
    return v;
  });
}

// A tag the bridge itself made for an argument (82_binding_proxies.js: a stream handed to the host), sent
// as it is; a worker's own object of the same shape is escaped like any other.
class HostArgTag {
  constructor(json) { this.json = json; }
}

// Arguments of binding methods are the worker's own values, so two things JSON would get wrong are
// kept: NaN and +-Infinity stay numbers ({__ploy_num}: JSON makes them null, and `timeoutMs: NaN` then
// meant no timeout at all), and a plain object with a key that looks like one of the tags above keeps
// it (renamed "__ploy_plain:<key>" on the way, restored by the host) instead of being read as a tag.
function encodeArgsForHost(args) {
  return JSON.stringify(args, function (key, v) {
    const raw = this[key];
    if (raw instanceof HostArgTag) return raw.json;
    if (typeof raw === "number") return Number.isFinite(raw) ? raw : { __ploy_num: String(raw) };
    if (raw instanceof Uint8Array || raw instanceof ArrayBuffer || ArrayBuffer.isView(raw)) {
      return { __ploy_bytes: bytesToLatin1(toU8(raw)) };
    }
    if (raw && typeof raw === "object" && raw[PROXY_HANDLE] !== undefined) {
      return { __ploy_handle: raw[PROXY_HANDLE] };
    }
    if (raw instanceof Request) return { __ploy_request: requestForHost(raw) }; // 86_preview.js
    if (raw instanceof RegExp) return { __ploy_regexp: [raw.source, raw.flags] };
    if (typeof raw === "bigint") return Number(raw);
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      let escaped = null;
      for (const k of Object.keys(v)) {
        if (k.startsWith("__ploy_")) {
          escaped = {};
          for (const k2 of Object.keys(v)) escaped[k2.startsWith("__ploy_") ? "__ploy_plain:" + k2 : k2] = v[k2];
          break;
        }
      }
      if (escaped) return escaped;
    }
    return v;
  });
}

function toU8(v) {
  if (v instanceof Uint8Array) return v;
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  throw new TypeError("expected an ArrayBuffer or ArrayBufferView");
}

// Values from the host: `special` says whether tagged values need reviving (skips the walk otherwise).
function decodeFromHost(json, special) {
  if (json === "" || json === undefined) return undefined;
  const v = JSON.parse(json);
  return special ? revive(v) : v;
}

function revive(v) {
  if (v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = revive(v[i]);
    return v;
  }
  if (typeof v.__ploy_bytes === "string") return latin1ToBytes(v.__ploy_bytes);
  if (v.__ploy_obj) return makeProxy(v.__ploy_obj);
  if (v.__ploy_stream !== undefined) return hostReadableStream(v.__ploy_stream);
  if (v.__ploy_response !== undefined) return responseFromHost(revive(v.__ploy_response)); // 85_websocket.js
  if (v.__ploy_ws !== undefined) return wsFromHost(v.__ploy_ws);
  for (const k of Object.keys(v)) v[k] = revive(v[k]);
  return v;
}

function hostError(info) {
  const Ctor = { TypeError, RangeError, SyntaxError }[info.name] || Error;
  const err = new Ctor(info.message);
  if (Ctor === Error) err.name = info.name || "Error";
  if (info.code !== undefined) err.code = info.code;
  for (const k of Object.keys(info)) {
    if (k !== "message" && k !== "name" && k !== "code" && k !== "stack") err[k] = info[k];
  }
  return err;
}

// WebIDL pair iterator: an index into a list that is re-read at every step (so it is live), with
// %IteratorPrototype% as its prototype's prototype and a "<Interface> Iterator" tag.
const IteratorPrototype = Object.getPrototypeOf(Object.getPrototypeOf([][Symbol.iterator]()));
const pairIteratorProtos = new Map();
function PairIterator(tag, list, kind) {
  let proto = pairIteratorProtos.get(tag);
  if (!proto) {
    proto = Object.create(IteratorPrototype, {
      next: {
        value: function next() {
          const pairs = this._list();
          if (this._index >= pairs.length) return { value: undefined, done: true };
          const p = pairs[this._index++];
          return { value: this._kind === "keys" ? p[0] : this._kind === "values" ? p[1] : [p[0], p[1]], done: false };
        },
        writable: true, configurable: true, enumerable: true,
      },
      [Symbol.toStringTag]: { value: tag, configurable: true },
    });
    pairIteratorProtos.set(tag, proto);
  }
  const it = Object.create(proto);
  it._list = list; it._kind = kind; it._index = 0;
  return it;
}
