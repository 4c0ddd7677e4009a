// structuredClone (HTML's StructuredSerialize/Deserialize within one realm, with transfer).

function dataCloneError(what) {
  return new DOMException(`${what} could not be cloned.`, "DataCloneError");
}

function structuredCloneImpl(value, memory) {
  if (value === null || (typeof value !== "object" && typeof value !== "function" && typeof value !== "symbol")) return value;
  if (typeof value === "symbol") throw dataCloneError(value.toString());
  if (typeof value === "function") throw dataCloneError(inspect(value));
  if (memory.has(value)) return memory.get(value);
  let out;
  const rec = (v) => structuredCloneImpl(v, memory);
  if (value instanceof Date) out = new Date(value.getTime());
  else if (value instanceof RegExp) out = new RegExp(value.source, value.flags);
  else if (value instanceof Boolean) out = new Boolean(value.valueOf());
  else if (value instanceof Number) out = new Number(value.valueOf());
  else if (value instanceof String) out = new String(value.valueOf());
  else if (value instanceof BigInt) out = Object(BigInt.prototype.valueOf.call(value));
  else if (value instanceof Symbol) throw dataCloneError("A Symbol object");
  else if (value instanceof ArrayBuffer) {
    if (value.detached) throw dataCloneError("A detached ArrayBuffer");
    if (value.resizable) {
      out = new ArrayBuffer(value.byteLength, { maxByteLength: value.maxByteLength });
      new Uint8Array(out).set(new Uint8Array(value));
    } else out = value.slice(0);
  }
  else if (value instanceof DataView) {
    let offset, length;
    try { offset = value.byteOffset; length = value.byteLength; } catch { throw dataCloneError("An out-of-bounds DataView"); }
    memory.set(value, null);
    const src = value.buffer;
    const buf = rec(src);
    out = tracksLength(src, offset, length) ? new DataView(buf, offset) : new DataView(buf, offset, length);
  } else if (ArrayBuffer.isView(value)) {
    try { value.at(0); } catch { throw dataCloneError("An out-of-bounds TypedArray"); } // at() validates it
    const src = value.buffer;
    const buf = rec(src);
    out = tracksLength(src, value.byteOffset, value.byteLength) ? new value.constructor(buf, value.byteOffset) : new value.constructor(buf, value.byteOffset, value.length);
  } else if (value instanceof Map) {
    out = new Map();
    memory.set(value, out);
    for (const [k, v] of value) out.set(rec(k), rec(v));
    return out;
  } else if (value instanceof Set) {
    out = new Set();
    memory.set(value, out);
    for (const v of value) out.add(rec(v));
    return out;
  } else if (value instanceof DOMException) {
    out = new DOMException(value.message, value.name);
  } else if (value instanceof Error) {
    const ctor = { EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError }[value.name] || Error;
    out = new ctor();
    memory.set(value, out);
    // own properties of a new Error are non-enumerable: keep it that way
    const hidden = (k, v) => Object.defineProperty(out, k, { value: v, writable: true, configurable: true, enumerable: false });
    const msg = Object.getOwnPropertyDescriptor(value, "message"); // only an own data property is kept
    if (msg !== undefined && "value" in msg) hidden("message", String(msg.value));
    if (value.stack !== undefined) hidden("stack", String(value.stack));
    if ("cause" in value) hidden("cause", rec(value.cause));
    return out;
  } else if (value instanceof Blob) {
    // a new object sharing the (immutable) bytes
    out = value instanceof File ? new File([], value.name, { type: value.type, lastModified: value.lastModified }) : new Blob([], { type: value.type });
    out._bytes = value._bytes;
  } else if (value instanceof Promise || value instanceof WeakMap || value instanceof WeakSet || value instanceof WeakRef || isPlatformObject(value)) {
    throw dataCloneError(ctorName(value) + " object");
  } else if (Array.isArray(value)) {
    out = new Array(value.length);
    memory.set(value, out);
    for (const k of Object.keys(value)) out[k] = rec(value[k]);
    return out;
  } else {
    out = {};
    memory.set(value, out);
    for (const k of Object.keys(value)) out[k] = rec(value[k]);
    return out;
  }
  memory.set(value, out);
  return out;
}

// A view over a resizable buffer that reaches its end is taken as length-tracking (made without a
// length): JS cannot tell it from one made with exactly that length, and tracking is the common case.
function tracksLength(buffer, offset, length) {
  return buffer.resizable === true && offset + length === buffer.byteLength;
}

// Instances of the web API classes here are platform objects that HTML does not make serializable.
function isPlatformObject(v) {
  return v instanceof EventTarget || v instanceof Event || v instanceof AbortController || v instanceof Headers ||
    v instanceof Request || v instanceof Response || v instanceof FormData || v instanceof URL ||
    v instanceof URLSearchParams || v instanceof ReadableStream || v instanceof WritableStream ||
    v instanceof TransformStream || v instanceof TextEncoder || v instanceof TextDecoder ||
    v instanceof ReadableStreamDefaultReader || v instanceof WritableStreamDefaultWriter || v instanceof Crypto;
}

expose("structuredClone", function structuredClone(value, options) {
  if (arguments.length === 0) throw new TypeError("structuredClone requires 1 argument");
  if (options !== undefined && options !== null && typeof options !== "object" && typeof options !== "function") {
    throw new TypeError("structuredClone options must be an object");
  }
  const t = options ? options.transfer : undefined;
  if (t !== undefined && (t === null || typeof t !== "object" || typeof t[Symbol.iterator] !== "function")) {
    throw new TypeError("structuredClone options.transfer must be a sequence");
  }
  const transfer = t !== undefined ? Array.from(t) : [];
  if (transfer.length === 0) return structuredCloneImpl(value, new Map());
  const memory = new Map();
  for (const buf of transfer) {
    if (!(buf instanceof ArrayBuffer)) throw dataCloneError(`${inspect(buf, 0)} is not transferable; it`);
    if (memory.has(buf)) throw dataCloneError("An ArrayBuffer listed twice in transfer");
    if (buf.detached) throw dataCloneError("A detached ArrayBuffer");
    memory.set(buf, null);
  }
  // Serialize against copies, then detach the originals only once that has succeeded.
  for (const buf of transfer) {
    let copy = buf.slice(0);
    if (buf.resizable) {
      copy = new ArrayBuffer(buf.byteLength, { maxByteLength: buf.maxByteLength });
      new Uint8Array(copy).set(new Uint8Array(buf));
    }
    memory.set(buf, copy);
  }
  const out = structuredCloneImpl(value, memory);
  for (const buf of transfer) buf.transfer();
  return out;
});
