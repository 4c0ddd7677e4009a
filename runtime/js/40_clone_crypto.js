// structuredClone, crypto (getRandomValues, randomUUID, subtle digest/HMAC), navigator.

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
    memory.set(value, null);
    out = new DataView(rec(value.buffer), value.byteOffset, value.byteLength);
  } else if (ArrayBuffer.isView(value)) {
    const buf = rec(value.buffer);
    out = new value.constructor(buf, value.byteOffset, value.length);
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
  for (const buf of transfer) memory.set(buf, buf.slice(0));
  const out = structuredCloneImpl(value, memory);
  for (const buf of transfer) buf.transfer();
  return out;
});

// --- crypto ---
const INTEGER_ARRAYS = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, BigInt64Array, BigUint64Array];

const DIGESTS = { "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512" };
const algName = (a) => String(typeof a === "object" && a !== null ? a.name : a).toUpperCase();
function hashOf(algorithm) {
  const alg = DIGESTS[algName(algorithm)];
  if (!alg) throw new DOMException(`Unrecognized algorithm name: ${algName(algorithm)}`, "NotSupportedError");
  return alg;
}

// Only what the host can do simply and workers commonly need: digests and HMAC (webhook signatures).
class CryptoKey {
  constructor(key, raw, algorithm, extractable, usages) {
    if (key !== SIGNAL_KEY) throw new TypeError("Illegal constructor");
    this._raw = raw;
    this.type = "secret";
    this.algorithm = algorithm;
    this.extractable = extractable;
    this.usages = usages;
  }
}

const subtle = {
  async digest(algorithm, data) {
    const out = await hostCall("digest", hashOf(algorithm), bytesToLatin1(toU8(data)));
    return out.buffer;
  },
  async importKey(format, keyData, algorithm, extractable, usages) {
    if (algName(algorithm) !== "HMAC") throw new DOMException(`importKey: only HMAC keys are supported`, "NotSupportedError");
    let raw;
    if (format === "raw") raw = toU8(keyData).slice();
    else if (format === "jwk" && keyData && typeof keyData.k === "string") raw = Uint8Array.fromBase64(keyData.k, { alphabet: "base64url" });
    else throw new DOMException(`importKey: unsupported format ${format}`, "NotSupportedError");
    const hash = { name: algName(algorithm.hash) };
    hashOf(hash);
    return new CryptoKey(SIGNAL_KEY, raw, { name: "HMAC", hash, length: raw.length * 8 }, !!extractable, Array.from(usages || []));
  },
  async exportKey(format, key) {
    if (!key.extractable) throw new DOMException("key is not extractable", "InvalidAccessError");
    if (format !== "raw") throw new DOMException(`exportKey: unsupported format ${format}`, "NotSupportedError");
    return key._raw.slice().buffer;
  },
  async sign(algorithm, key, data) {
    if (algName(algorithm) !== "HMAC" || !(key instanceof CryptoKey)) throw new DOMException("sign: only HMAC is supported", "NotSupportedError");
    if (!key.usages.includes("sign")) throw new DOMException("key usages do not include 'sign'", "InvalidAccessError");
    const out = await hostCall("hmac", hashOf(key.algorithm.hash), bytesToLatin1(key._raw), bytesToLatin1(toU8(data)));
    return out.buffer;
  },
  async verify(algorithm, key, signature, data) {
    if (algName(algorithm) !== "HMAC" || !(key instanceof CryptoKey)) throw new DOMException("verify: only HMAC is supported", "NotSupportedError");
    if (!key.usages.includes("verify")) throw new DOMException("key usages do not include 'verify'", "InvalidAccessError");
    const expected = new Uint8Array(await hostCall("hmac", hashOf(key.algorithm.hash), bytesToLatin1(key._raw), bytesToLatin1(toU8(data))));
    const got = toU8(signature);
    let diff = expected.length ^ got.length;
    for (let i = 0; i < expected.length && i < got.length; i++) diff |= expected[i] ^ got[i];
    return diff === 0;
  },
};

class Crypto {
  get subtle() { return subtle; }
  getRandomValues(array) {
    if (arguments.length === 0) throw new TypeError("getRandomValues requires 1 argument");
    if (!INTEGER_ARRAYS.some((T) => array instanceof T)) {
      throw new DOMException("The provided ArrayBufferView is not an integer array type", "TypeMismatchError");
    }
    if (array.byteLength > 65536) {
      throw new DOMException(`The ArrayBufferView's byte length (${array.byteLength}) exceeds 65536`, "QuotaExceededError");
    }
    randomBytesInto(new Uint8Array(array.buffer, array.byteOffset, array.byteLength));
    return array;
  }
  randomUUID() {
    const b = new Uint8Array(16);
    randomBytesInto(b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }
}
expose("crypto", new Crypto());
expose("Crypto", Crypto);
expose("CryptoKey", CryptoKey);
class Navigator {
  get userAgent() { return "Ploy"; }
  get hardwareConcurrency() { return 1; }
  get language() { return "en-US"; }
  get languages() { return ["en-US"]; }
  get [Symbol.toStringTag]() { return "Navigator"; }
}
expose("navigator", new Navigator());
expose("Navigator", Navigator);
expose("self", globalThis);
expose("reportError", function (e) {
  if (arguments.length === 0) throw new TypeError("reportError requires 1 argument");
  reportError(e);
});
// The engine's performance.timeOrigin counts from a monotonic clock's epoch (and cannot be
// redefined); HR-Time says Unix epoch milliseconds, so workers get a Performance of ours.
const nativeNow = performance.now.bind(performance);
const TIME_ORIGIN = Date.now() - nativeNow();
class Performance extends EventTarget {
  get timeOrigin() { return TIME_ORIGIN; }
  now() { return nativeNow(); }
  toJSON() { return { timeOrigin: TIME_ORIGIN }; }
  get [Symbol.toStringTag]() { return "Performance"; }
}
expose("performance", new Performance());
expose("Performance", Performance);
