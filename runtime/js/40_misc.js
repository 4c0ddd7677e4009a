// structuredClone, crypto, navigator, TextEncoder/TextDecoder.

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
  else if (value instanceof ArrayBuffer) out = value.slice(0);
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
  } else if (value instanceof Error) {
    const ctor = { EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError }[value.name] || Error;
    out = new ctor(value.message);
    memory.set(value, out);
    if (value.stack !== undefined) out.stack = String(value.stack);
    if ("cause" in value) out.cause = rec(value.cause);
    return out;
  } else if (typeof Blob !== "undefined" && value instanceof Blob) {
    out = value; // immutable
  } else if (value instanceof Promise || value instanceof WeakMap || value instanceof WeakSet || value instanceof ReadableStream) {
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

expose("structuredClone", function structuredClone(value, options) {
  if (arguments.length === 0) throw new TypeError("structuredClone requires 1 argument");
  return structuredCloneImpl(value, new Map());
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
expose("navigator", { userAgent: "Ploy", hardwareConcurrency: 1, language: "en-US" });

// --- encoding ---
function utf8Encode(s) {
  s = String(s);
  let bin;
  try {
    bin = unescape(encodeURIComponent(s)); // native UTF-8 encoding into a latin-1 string
  } catch {
    bin = unescape(encodeURIComponent(s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd")));
  }
  return latin1ToBytes(bin);
}

class TextEncoder {
  get encoding() { return "utf-8"; }
  encode(input = "") { return utf8Encode(input); }
  encodeInto(src, dest) {
    const bytes = utf8Encode(src);
    // Only write whole characters: back off to a character boundary.
    let n = Math.min(bytes.length, dest.length);
    if (n < bytes.length) while (n > 0 && (bytes[n] & 0xc0) === 0x80) n--;
    dest.set(bytes.subarray(0, n));
    let read = 0;
    let i = 0;
    while (i < n) {
      const b = bytes[i];
      const len = b < 0x80 ? 1 : b < 0xe0 ? 2 : b < 0xf0 ? 3 : 4;
      i += len;
      read += len === 4 ? 2 : 1;
    }
    return { read, written: n };
  }
}

const LABELS = new Set(["utf-8", "utf8", "unicode-1-1-utf-8", "unicode11utf8", "unicode20utf8", "x-unicode20utf8"]);

class TextDecoder {
  #fatal;
  #ignoreBOM;
  #pending = []; // bytes of an incomplete sequence from the previous chunk
  #bomSeen = false;
  constructor(label = "utf-8", options = {}) {
    label = String(label).trim().toLowerCase();
    if (!LABELS.has(label)) {
      if (label === "latin1" || label === "iso-8859-1" || label === "ascii" || label === "windows-1252") this._latin1 = true;
      else throw new RangeError(`The encoding label provided ('${label}') is invalid.`);
    }
    this.#fatal = !!(options && options.fatal);
    this.#ignoreBOM = !!(options && options.ignoreBOM);
  }
  get encoding() { return this._latin1 ? "windows-1252" : "utf-8"; }
  get fatal() { return this.#fatal; }
  get ignoreBOM() { return this.#ignoreBOM; }
  decode(input, options) {
    const stream = !!(options && options.stream);
    let bytes = input === undefined ? new Uint8Array(0) : toU8(input);
    if (this._latin1) return bytesToLatin1(bytes);
    if (this.#pending.length) {
      const joined = new Uint8Array(this.#pending.length + bytes.length);
      joined.set(this.#pending);
      joined.set(bytes, this.#pending.length);
      bytes = joined;
      this.#pending = [];
    }
    let end = bytes.length;
    if (stream) {
      // Keep a trailing incomplete sequence for the next call.
      let i = end - 1;
      let back = 0;
      while (i >= 0 && back < 3 && (bytes[i] & 0xc0) === 0x80) { i--; back++; }
      if (i >= 0) {
        const b = bytes[i];
        const need = b >= 0xf0 && b <= 0xf4 ? 4 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xc2 && b <= 0xdf ? 2 : 1;
        if (need > 1 && end - i < need) {
          this.#pending = Array.from(bytes.subarray(i));
          end = i;
        }
      }
    }
    let out = utf8Decode(bytes.subarray(0, end), this.#fatal);
    if (!this.#bomSeen && out.length) {
      this.#bomSeen = true;
      if (!this.#ignoreBOM && out.charCodeAt(0) === 0xfeff) out = out.slice(1);
    }
    if (!stream) this.#bomSeen = false;
    return out;
  }
}

function utf8Decode(bytes, fatal) {
  if (bytes.length === 0) return "";
  return utf8DecodeBin(bytesToLatin1(bytes), fatal, bytes);
}

// UTF-8 bytes held as a latin-1 string (how they arrive from the host) to text.
function utf8DecodeBin(bin, fatal, bytes) {
  try {
    return decodeURIComponent(escape(bin)); // native UTF-8 decoding; throws on malformed input
  } catch {
    if (fatal) throw new TypeError("The encoded data was not valid for encoding utf-8");
    return utf8DecodeLoose(bytes || latin1ToBytes(bin));
  }
}

// WHATWG UTF-8 decode with U+FFFD replacement (maximal subpart practice).
function utf8DecodeLoose(bytes) {
  const out = [];
  let s = "";
  let i = 0;
  const n = bytes.length;
  while (i < n) {
    const b = bytes[i];
    let cp = 0xfffd;
    let len = 1;
    if (b < 0x80) cp = b;
    else if (b >= 0xc2 && b <= 0xf4) {
      const need = b < 0xe0 ? 1 : b < 0xf0 ? 2 : 3;
      let lower = 0x80, upper = 0xbf;
      if (b === 0xe0) lower = 0xa0; else if (b === 0xed) upper = 0x9f; else if (b === 0xf0) lower = 0x90; else if (b === 0xf4) upper = 0x8f;
      let c = b & (need === 1 ? 0x1f : need === 2 ? 0x0f : 0x07);
      let j = 1;
      for (; j <= need; j++) {
        const x = bytes[i + j];
        if (x === undefined || x < lower || x > upper) break;
        lower = 0x80; upper = 0xbf;
        c = (c << 6) | (x & 0x3f);
      }
      if (j > need) { cp = c; len = need + 1; } else { len = j; }
    }
    i += len;
    s += String.fromCodePoint(cp);
    if (s.length > 8192) { out.push(s); s = ""; }
  }
  out.push(s);
  return out.join("");
}

expose("TextEncoder", TextEncoder);
expose("TextDecoder", TextDecoder);
