// TextEncoder and TextDecoder (UTF-8; native escape/encodeURIComponent do the heavy lifting).

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
