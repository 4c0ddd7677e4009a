// crypto (Web Crypto): getRandomValues, randomUUID, and subtle digest/HMAC (the host computes them);
// the entropy pool that getRandomValues, randomUUID and multipart boundaries draw from.

// The host feeds os.urandom bytes; JS never uses Math.random for crypto.
let entropy = "";
let entropyPos = 0;
let entropyAsked = false;
function randomBytesInto(u8) {
  if (entropy.length - entropyPos < u8.length) {
    // More than the pool holds before the host can refill it (JS cannot wait for the host here):
    // a ChaCha20 keystream under a key taken from host entropy, rekeyed after every use.
    chachaFill(u8);
  } else {
    for (let i = 0; i < u8.length; i++) u8[i] = entropy.charCodeAt(entropyPos + i);
    entropyPos += u8.length;
  }
  if (!entropyAsked && entropy.length - entropyPos < 32768) {
    entropyAsked = true;
    hostSend("entropy");
  }
}

// ChaCha20 (RFC 8439) state: key words 4-11, block counter 12, nonce 13-15 (zero: fresh key per use).
const chachaKey = new Uint32Array(8);
// Mixes 32 host-entropy bytes (a latin-1 string) into the key.
function chachaRekey(bytes32) {
  for (let i = 0; i < 8; i++) {
    const o = i * 4;
    chachaKey[i] ^= bytes32.charCodeAt(o) | (bytes32.charCodeAt(o + 1) << 8) | (bytes32.charCodeAt(o + 2) << 16) | (bytes32.charCodeAt(o + 3) << 24);
  }
}

function chachaFill(u8) {
  const x = new Uint32Array(16);
  const out = new Uint8Array(64);
  const out32 = new Uint32Array(out.buffer);
  const k = chachaKey;
  const C0 = 0x61707865, C1 = 0x3320646e, C2 = 0x79622d32, C3 = 0x6b206574;
  const block = (counter) => {
    let x0 = C0, x1 = C1, x2 = C2, x3 = C3, x4 = k[0], x5 = k[1], x6 = k[2], x7 = k[3];
    let x8 = k[4], x9 = k[5], x10 = k[6], x11 = k[7], x12 = counter, x13 = 0, x14 = 0, x15 = 0;
    for (let r = 0; r < 10; r++) {
      x0 = (x0 + x4) | 0; x12 ^= x0; x12 = (x12 << 16) | (x12 >>> 16); x8 = (x8 + x12) | 0; x4 ^= x8; x4 = (x4 << 12) | (x4 >>> 20);
      x0 = (x0 + x4) | 0; x12 ^= x0; x12 = (x12 << 8) | (x12 >>> 24); x8 = (x8 + x12) | 0; x4 ^= x8; x4 = (x4 << 7) | (x4 >>> 25);
      x1 = (x1 + x5) | 0; x13 ^= x1; x13 = (x13 << 16) | (x13 >>> 16); x9 = (x9 + x13) | 0; x5 ^= x9; x5 = (x5 << 12) | (x5 >>> 20);
      x1 = (x1 + x5) | 0; x13 ^= x1; x13 = (x13 << 8) | (x13 >>> 24); x9 = (x9 + x13) | 0; x5 ^= x9; x5 = (x5 << 7) | (x5 >>> 25);
      x2 = (x2 + x6) | 0; x14 ^= x2; x14 = (x14 << 16) | (x14 >>> 16); x10 = (x10 + x14) | 0; x6 ^= x10; x6 = (x6 << 12) | (x6 >>> 20);
      x2 = (x2 + x6) | 0; x14 ^= x2; x14 = (x14 << 8) | (x14 >>> 24); x10 = (x10 + x14) | 0; x6 ^= x10; x6 = (x6 << 7) | (x6 >>> 25);
      x3 = (x3 + x7) | 0; x15 ^= x3; x15 = (x15 << 16) | (x15 >>> 16); x11 = (x11 + x15) | 0; x7 ^= x11; x7 = (x7 << 12) | (x7 >>> 20);
      x3 = (x3 + x7) | 0; x15 ^= x3; x15 = (x15 << 8) | (x15 >>> 24); x11 = (x11 + x15) | 0; x7 ^= x11; x7 = (x7 << 7) | (x7 >>> 25);
      x0 = (x0 + x5) | 0; x15 ^= x0; x15 = (x15 << 16) | (x15 >>> 16); x10 = (x10 + x15) | 0; x5 ^= x10; x5 = (x5 << 12) | (x5 >>> 20);
      x0 = (x0 + x5) | 0; x15 ^= x0; x15 = (x15 << 8) | (x15 >>> 24); x10 = (x10 + x15) | 0; x5 ^= x10; x5 = (x5 << 7) | (x5 >>> 25);
      x1 = (x1 + x6) | 0; x12 ^= x1; x12 = (x12 << 16) | (x12 >>> 16); x11 = (x11 + x12) | 0; x6 ^= x11; x6 = (x6 << 12) | (x6 >>> 20);
      x1 = (x1 + x6) | 0; x12 ^= x1; x12 = (x12 << 8) | (x12 >>> 24); x11 = (x11 + x12) | 0; x6 ^= x11; x6 = (x6 << 7) | (x6 >>> 25);
      x2 = (x2 + x7) | 0; x13 ^= x2; x13 = (x13 << 16) | (x13 >>> 16); x8 = (x8 + x13) | 0; x7 ^= x8; x7 = (x7 << 12) | (x7 >>> 20);
      x2 = (x2 + x7) | 0; x13 ^= x2; x13 = (x13 << 8) | (x13 >>> 24); x8 = (x8 + x13) | 0; x7 ^= x8; x7 = (x7 << 7) | (x7 >>> 25);
      x3 = (x3 + x4) | 0; x14 ^= x3; x14 = (x14 << 16) | (x14 >>> 16); x9 = (x9 + x14) | 0; x4 ^= x9; x4 = (x4 << 12) | (x4 >>> 20);
      x3 = (x3 + x4) | 0; x14 ^= x3; x14 = (x14 << 8) | (x14 >>> 24); x9 = (x9 + x14) | 0; x4 ^= x9; x4 = (x4 << 7) | (x4 >>> 25);
    }
    x[0] = x0 + C0; x[1] = x1 + C1; x[2] = x2 + C2; x[3] = x3 + C3; x[4] = x4 + k[0]; x[5] = x5 + k[1]; x[6] = x6 + k[2]; x[7] = x7 + k[3];
    x[8] = x8 + k[4]; x[9] = x9 + k[5]; x[10] = x10 + k[6]; x[11] = x11 + k[7]; x[12] = x12 + counter; x[13] = x13; x[14] = x14; x[15] = x15;
    out32.set(x); // little-endian on every platform QuickJS runs on here
  };
  // block 0 becomes the next key (fast key erasure); blocks 1.. are the output
  block(0);
  const nextKey = out32.slice(0, 8);
  let counter = 1;
  for (let o = 0; o < u8.length; o += 64) {
    block(counter++);
    u8.set(o + 64 <= u8.length ? out : out.subarray(0, u8.length - o), o);
  }
  chachaKey.set(nextKey);
  out.fill(0);
}

// Host entry: fresh os.urandom bytes, after JS asked with the entropy op (and once at load).
function feedEntropy(s) {
  chachaRekey(s.slice(0, 32));
  s = s.slice(32);
  entropy = entropy.slice(entropyPos) + s;
  entropyPos = 0;
  entropyAsked = false;
}

feedEntropy(globalThis.__ploy_seed || "");
delete globalThis.__ploy_seed;

// ---------------------------------------------------------------- crypto
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
