// TextEncoder and TextDecoder (UTF-8 via native escape/encodeURIComponent; UTF-16, windows-1252,
// x-user-defined), atob and btoa with WebIDL argument checks.

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
    if (!(dest instanceof Uint8Array)) throw new TypeError("encodeInto: the destination must be a Uint8Array");
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
  get [Symbol.toStringTag]() { return "TextEncoder"; }
}

// Encoding Standard labels of the encodings decoded here (the rest throw RangeError, as unknown).
const ENCODING_LABELS = new Map();
for (const [name, labels] of [
  ["utf-8", "unicode-1-1-utf-8 unicode11utf8 unicode20utf8 utf-8 utf8 x-unicode20utf8"],
  ["utf-16le", "csunicode iso-10646-ucs-2 ucs-2 unicode unicodefeff utf-16 utf-16le"],
  ["utf-16be", "unicodefffe utf-16be"],
  ["windows-1252", "ansi_x3.4-1968 ascii cp1252 cp819 csisolatin1 ibm819 iso-8859-1 iso-ir-100 iso8859-1 iso88591 iso_8859-1 iso_8859-1:1987 l1 latin1 us-ascii windows-1252 x-cp1252"],
  ["x-user-defined", "x-user-defined"],
]) for (const l of labels.split(" ")) ENCODING_LABELS.set(l, name);

// windows-1252 bytes 0x80-0x9f (the rest map to the same code point)
const CP1252 = "\u20ac\u0081\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\u008d\u017d\u008f" +
  "\u0090\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\u009d\u017e\u0178";

// A WebIDL dictionary argument: undefined or null (an empty one) or an object.
function checkOptionsDict(v, what) {
  if (v !== undefined && v !== null && typeof v !== "object" && typeof v !== "function") throw new TypeError(`${what} must be an object`);
}

class TextDecoder {
  #encoding;
  #fatal;
  #ignoreBOM;
  #pending = []; // bytes of an incomplete sequence from the previous chunk
  #bomSeen = false;
  constructor(label = "utf-8", options = {}) {
    checkOptionsDict(options, "TextDecoder options");
    const key = String(label).replace(/^[\t\n\f\r ]+|[\t\n\f\r ]+$/g, "").toLowerCase();
    const enc = ENCODING_LABELS.get(key);
    if (enc === undefined) throw new RangeError(`The encoding label provided ('${label}') is invalid.`);
    this.#encoding = enc;
    this.#fatal = !!(options && options.fatal);
    this.#ignoreBOM = !!(options && options.ignoreBOM);
  }
  get encoding() { return this.#encoding; }
  get fatal() { return this.#fatal; }
  get ignoreBOM() { return this.#ignoreBOM; }
  decode(input, options) {
    checkOptionsDict(options, "TextDecoder.decode options");
    const stream = !!(options && options.stream);
    let bytes = input === undefined ? new Uint8Array(0) : toU8(input);
    let out;
    if (this.#encoding === "windows-1252") {
      out = bytesToLatin1(bytes);
      if (/[\x80-\x9f]/.test(out)) out = out.replace(/[\x80-\x9f]/g, (c) => CP1252[c.charCodeAt(0) - 0x80]);
    } else if (this.#encoding === "x-user-defined") {
      out = bytesToLatin1(bytes).replace(/[\x80-\xff]/g, (c) => String.fromCharCode(0xf700 + c.charCodeAt(0)));
    } else {
      if (this.#pending.length) {
        const joined = new Uint8Array(this.#pending.length + bytes.length);
        joined.set(this.#pending);
        joined.set(bytes, this.#pending.length);
        bytes = joined;
        this.#pending = [];
      }
      out = this.#encoding === "utf-8" ? this.#utf8(bytes, stream) : this.#utf16(bytes, stream, this.#encoding === "utf-16be");
    }
    if (!this.#bomSeen && out.length) {
      this.#bomSeen = true;
      if (!this.#ignoreBOM && out.charCodeAt(0) === 0xfeff) out = out.slice(1);
    }
    if (!stream) { this.#bomSeen = false; this.#pending = []; }
    return out;
  }
  #utf8(bytes, stream) {
    let end = bytes.length;
    if (stream) {
      // Keep a trailing incomplete sequence for the next call.
      let i = end - 1;
      let back = 0;
      while (i >= 0 && back < 3 && (bytes[i] & 0xc0) === 0x80) { i--; back++; }
      if (i >= 0) {
        const b = bytes[i];
        const need = b >= 0xf0 && b <= 0xf4 ? 4 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xc2 && b <= 0xdf ? 2 : 1;
        // only a sequence that can still complete waits; one already broken (F0 8F) is decoded now
        if (need > 1 && end - i < need && (end - i < 2 || utf8SecondByteOk(b, bytes[i + 1]))) {
          this.#pending = Array.from(bytes.subarray(i));
          end = i;
        }
      }
    }
    return utf8Decode(bytes.subarray(0, end), this.#fatal);
  }
  #utf16(bytes, stream, bigEndian) {
    let n = bytes.length & ~1;
    // a trailing odd byte, or a high surrogate whose pair may come next, waits for the next chunk
    if (stream) {
      if (n >= 2) {
        const last = bigEndian ? (bytes[n - 2] << 8) | bytes[n - 1] : bytes[n - 2] | (bytes[n - 1] << 8);
        if (last >= 0xd800 && last <= 0xdbff) n -= 2;
      }
      if (n < bytes.length) this.#pending = Array.from(bytes.subarray(n));
    }
    let s = "";
    const parts = [];
    for (let i = 0; i < n; i += 2) {
      const cu = bigEndian ? (bytes[i] << 8) | bytes[i + 1] : bytes[i] | (bytes[i + 1] << 8);
      s += String.fromCharCode(cu);
      if (s.length > 8192) { parts.push(s); s = ""; }
    }
    parts.push(s);
    let out = parts.join("");
    const odd = !stream && n < bytes.length;
    if (out.isWellFormed() && !odd) return out;
    if (this.#fatal) throw new TypeError(`The encoded data was not valid for encoding ${this.#encoding}`);
    out = out.toWellFormed();
    return odd ? out + "\ufffd" : out;
  }
  get [Symbol.toStringTag]() { return "TextDecoder"; }
}

// The WHATWG UTF-8 decoder's bounds for the byte after a lead byte (the later ones are 80-BF).
function utf8SecondByteOk(lead, b) {
  const lower = lead === 0xe0 ? 0xa0 : lead === 0xf0 ? 0x90 : 0x80;
  const upper = lead === 0xed ? 0x9f : lead === 0xf4 ? 0x8f : 0xbf;
  return b >= lower && b <= upper;
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

// The engine's atob/btoa, with the "1 argument required" TypeError WebIDL gives.
const nativeAtob = atob, nativeBtoa = btoa;
expose("atob", function atob(data) {
  if (arguments.length === 0) throw new TypeError("atob requires 1 argument");
  return nativeAtob(data);
});
expose("btoa", function btoa(data) {
  if (arguments.length === 0) throw new TypeError("btoa requires 1 argument");
  return nativeBtoa(data);
});
expose("TextEncoder", TextEncoder);
expose("TextDecoder", TextDecoder);
