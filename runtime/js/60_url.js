// URL and URLSearchParams: the WHATWG URL Standard's basic URL parser (state machine), host parsing
// (IPv4/IPv6/opaque/domain with punycode), serializers and the searchParams live link.

const SPECIAL = { "ftp:": 21, "file:": null, "http:": 80, "https:": 443, "ws:": 80, "wss:": 443 };
const isSpecialScheme = (s) => Object.prototype.hasOwnProperty.call(SPECIAL, s + ":");
const ALPHA = /[A-Za-z]/;
const ALNUM_PLUS = /[A-Za-z0-9+\-.]/;
const HEXDIG = /[0-9A-Fa-f]/;

// percent-encode sets, as predicates over code points
const C0 = (c) => c < 0x20 || c > 0x7e;
const FRAGMENT_SET = (c) => C0(c) || c === 0x20 || c === 0x22 || c === 0x3c || c === 0x3e || c === 0x60;
const QUERY_SET = (c) => C0(c) || c === 0x20 || c === 0x22 || c === 0x23 || c === 0x3c || c === 0x3e;
const SPECIAL_QUERY_SET = (c) => QUERY_SET(c) || c === 0x27;
const PATH_SET = (c) => QUERY_SET(c) || c === 0x3f || c === 0x5e || c === 0x60 || c === 0x7b || c === 0x7d;
const USERINFO_SET = (c) => PATH_SET(c) || c === 0x2f || c === 0x3a || c === 0x3b || c === 0x3d || c === 0x40 || (c >= 0x5b && c <= 0x5d) || c === 0x7c;
const COMPONENT_SET = (c) => USERINFO_SET(c) || (c >= 0x24 && c <= 0x26) || c === 0x2b || c === 0x2c;
const FORM_SET = (c) => COMPONENT_SET(c) || c === 0x21 || (c >= 0x27 && c <= 0x29) || c === 0x7e;

function pctEncodeCodePoint(cp, set) {
  if (!set(cp)) return String.fromCodePoint(cp);
  const bytes = utf8Encode(String.fromCodePoint(cp));
  let s = "";
  for (const b of bytes) s += "%" + (b < 16 ? "0" : "") + b.toString(16).toUpperCase();
  return s;
}

function pctEncodeString(str, set, spaceAsPlus = false) {
  let out = "";
  for (const ch of str) {
    const cp = ch.codePointAt(0);
    if (spaceAsPlus && cp === 0x20) out += "+";
    else out += pctEncodeCodePoint(cp, set);
  }
  return out;
}

function pctDecodeBytes(bytes) {
  const out = [];
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b === 0x25 && i + 2 < bytes.length && isHexByte(bytes[i + 1]) && isHexByte(bytes[i + 2])) {
      out.push(parseInt(String.fromCharCode(bytes[i + 1], bytes[i + 2]), 16));
      i += 2;
    } else out.push(b);
  }
  return new Uint8Array(out);
}
const isHexByte = (b) => (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);

// ---------------------------------------------------------------- hosts
function parseIPv4Number(s) {
  if (s === "") return NaN;
  let radix = 10;
  if (s.length >= 2 && (s.startsWith("0x") || s.startsWith("0X"))) { s = s.slice(2); radix = 16; }
  else if (s.length >= 2 && s[0] === "0") { s = s.slice(1); radix = 8; }
  if (s === "") return 0;
  const re = radix === 10 ? /^[0-9]+$/ : radix === 16 ? /^[0-9A-Fa-f]+$/ : /^[0-7]+$/;
  if (!re.test(s)) return NaN;
  return parseInt(s, radix);
}

function endsInNumber(host) {
  const parts = host.split(".");
  if (parts[parts.length - 1] === "") { if (parts.length === 1) return false; parts.pop(); }
  const last = parts[parts.length - 1];
  if (last !== "" && /^[0-9]+$/.test(last)) return true;
  return !Number.isNaN(parseIPv4Number(last));
}

function parseIPv4(host) {
  const parts = host.split(".");
  if (parts[parts.length - 1] === "" && parts.length > 1) parts.pop();
  if (parts.length > 4) return null;
  const nums = [];
  for (const p of parts) {
    const n = parseIPv4Number(p);
    if (Number.isNaN(n)) return null;
    nums.push(n);
  }
  for (let i = 0; i < nums.length - 1; i++) if (nums[i] > 255) return null;
  if (nums[nums.length - 1] >= 256 ** (5 - nums.length)) return null;
  let ipv4 = nums[nums.length - 1];
  for (let i = 0; i < nums.length - 1; i++) ipv4 += nums[i] * 256 ** (3 - i);
  return ipv4;
}

function serializeIPv4(n) {
  const out = [];
  for (let i = 0; i < 4; i++) { out.unshift(String(n % 256)); n = Math.floor(n / 256); }
  return out.join(".");
}

function parseIPv6(input) {
  const addr = [0, 0, 0, 0, 0, 0, 0, 0];
  let piece = 0, compress = null, p = 0;
  const cps = Array.from(input, (c) => c.codePointAt(0));
  const at = (i) => cps[i];
  if (at(p) === 0x3a) {
    if (at(p + 1) !== 0x3a) return null;
    p += 2; piece++; compress = piece;
  }
  while (at(p) !== undefined) {
    if (piece === 8) return null;
    if (at(p) === 0x3a) {
      if (compress !== null) return null;
      p++; piece++; compress = piece; continue;
    }
    let value = 0, length = 0;
    while (length < 4 && at(p) !== undefined && HEXDIG.test(String.fromCodePoint(at(p)))) {
      value = value * 16 + parseInt(String.fromCodePoint(at(p)), 16); p++; length++;
    }
    if (at(p) === 0x2e) {
      if (length === 0) return null;
      p -= length;
      if (piece > 6) return null;
      let numbersSeen = 0;
      while (at(p) !== undefined) {
        let v4 = null;
        if (numbersSeen > 0) {
          if (at(p) === 0x2e && numbersSeen < 4) p++; else return null;
        }
        if (at(p) === undefined || at(p) < 0x30 || at(p) > 0x39) return null;
        while (at(p) >= 0x30 && at(p) <= 0x39) {
          const n = at(p) - 0x30;
          if (v4 === null) v4 = n; else if (v4 === 0) return null; else v4 = v4 * 10 + n;
          if (v4 > 255) return null;
          p++;
        }
        addr[piece] = addr[piece] * 256 + v4;
        numbersSeen++;
        if (numbersSeen === 2 || numbersSeen === 4) piece++;
      }
      if (numbersSeen !== 4) return null;
      break;
    } else if (at(p) === 0x3a) {
      p++;
      if (at(p) === undefined) return null;
    } else if (at(p) !== undefined) return null;
    addr[piece] = value;
    piece++;
  }
  if (compress !== null) {
    let swaps = piece - compress;
    piece = 7;
    while (piece !== 0 && swaps > 0) {
      const t = addr[compress + swaps - 1];
      addr[compress + swaps - 1] = addr[piece];
      addr[piece] = t;
      piece--; swaps--;
    }
  } else if (piece !== 8) return null;
  return addr;
}

function serializeIPv6(addr) {
  // compress the first longest run of two or more zero pieces
  let best = -1, bestLen = 1, cur = -1, curLen = 0;
  for (let i = 0; i < 8; i++) {
    if (addr[i] === 0) {
      if (cur === -1) { cur = i; curLen = 1; } else curLen++;
      if (curLen > bestLen) { best = cur; bestLen = curLen; }
    } else cur = -1;
  }
  let out = "";
  let ignore0 = false;
  for (let i = 0; i < 8; i++) {
    if (ignore0 && addr[i] === 0) continue;
    ignore0 = false;
    if (best === i) { out += i === 0 ? "::" : ":"; ignore0 = true; continue; }
    out += addr[i].toString(16);
    if (i !== 7) out += ":";
  }
  return "[" + out + "]";
}

const FORBIDDEN_HOST = /[\x00\t\n\r #/:<>?@[\\\]^|]/;
const FORBIDDEN_DOMAIN = /[\x00-\x1f\t\n\r #%/:<>?@[\\\]^|\x7f]/;

// RFC 3492 parameters and bias adaptation, shared by the encoder and the decoder.
const PUNYCODE = { base: 36, tMin: 1, tMax: 26, skew: 38, damp: 700 };
function punycodeAdapt(delta, numPoints, first) {
  const { base, tMin, tMax, skew, damp } = PUNYCODE;
  delta = first ? Math.floor(delta / damp) : delta >> 1;
  delta += Math.floor(delta / numPoints);
  let k = 0;
  while (delta > ((base - tMin) * tMax) >> 1) { delta = Math.floor(delta / (base - tMin)); k += base; }
  return k + Math.floor(((base - tMin + 1) * delta) / (delta + skew));
}

function punycodeEncode(input) {
  const { base, tMin, tMax } = PUNYCODE;
  const cps = Array.from(input, (c) => c.codePointAt(0));
  let n = 128, delta = 0, bias = 72;
  let out = cps.filter((c) => c < 128).map((c) => String.fromCharCode(c)).join("");
  const b = out.length;
  let h = b;
  if (b) out += "-";
  const digit = (d) => String.fromCharCode(d + 22 + 75 * (d < 26));
  while (h < cps.length) {
    const m = Math.min(...cps.filter((c) => c >= n));
    delta += (m - n) * (h + 1);
    n = m;
    for (const c of cps) {
      if (c < n) delta++;
      if (c === n) {
        let q = delta;
        for (let k = base; ; k += base) {
          const t = k <= bias ? tMin : k >= bias + tMax ? tMax : k - bias;
          if (q < t) break;
          out += digit(t + ((q - t) % (base - t)));
          q = Math.floor((q - t) / (base - t));
        }
        out += digit(q);
        bias = punycodeAdapt(delta, h + 1, h === b);
        delta = 0;
        h++;
      }
    }
    delta++; n++;
  }
  return out;
}

function punycodeDecode(input) {
  const { base, tMin, tMax } = PUNYCODE;
  const d = input.lastIndexOf("-");
  const out = d > 0 ? Array.from(input.slice(0, d), (c) => c.codePointAt(0)) : [];
  if (out.some((c) => c >= 0x80)) return null;
  let n = 128, i = 0, bias = 72;
  for (let p = d > 0 ? d + 1 : 0; p < input.length;) {
    const oldi = i;
    for (let w = 1, k = base; ; k += base) {
      if (p >= input.length) return null;
      const c = input.charCodeAt(p++);
      const digit = c - 48 < 10 ? c - 22 : c - 65 < 26 ? c - 65 : c - 97 < 26 ? c - 97 : base;
      if (digit >= base) return null;
      i += digit * w;
      const t = k <= bias ? tMin : k >= bias + tMax ? tMax : k - bias;
      if (digit < t) break;
      w *= base - t;
      if (i > 0x7fffffff) return null;
    }
    bias = punycodeAdapt(i - oldi, out.length + 1, oldi === 0);
    n += Math.floor(i / (out.length + 1));
    i %= out.length + 1;
    if (n > 0x10ffff) return null;
    out.splice(i++, 0, n);
  }
  return String.fromCodePoint(...out);
}

// UTS #46 "ignored" code points (mapped to nothing)
const IDNA_IGNORED = /[\u00ad\u034f\u180b-\u180d\u180f\u200b\u2060\ufe00-\ufe0f\ufeff]|\ud82f[\udca0-\udca3]|\udb40[\udd00-\uddef]/g;

// Code points UTS #46 disallows in a label whatever the options: unassigned ones and noncharacters
// (U+FDD0-U+FDEF, U+xxFFFE/F, all general category Cn), private use, controls, surrogates, U+FFFD.
const IDNA_DISALLOWED = /[\p{Cn}\p{Co}\p{Cc}\p{Cs}\ufffd]/u;

function domainToASCII(domain) {
  // A reduced UTS #46: ignored code points dropped, compatibility mapping (NFKC) and case fold,
  // dot variants, punycode for non-ASCII labels and a check of the "xn--" labels given.
  let mapped = domain;
  if (!/^[\x00-\x7f]*$/.test(mapped)) {
    mapped = mapped.replace(IDNA_IGNORED, "").normalize("NFKC").replace(/[\u3002\uff0e\uff61]/g, ".");
  }
  mapped = mapped.toLowerCase();
  const labels = mapped.split(".");
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i];
    if (!/^[\x00-\x7f]*$/.test(label)) {
      if (IDNA_DISALLOWED.test(label)) return null;
      labels[i] = "xn--" + punycodeEncode(label);
    } else if (label.startsWith("xn--")) {
      // UTS #46 processing: the label must decode (Punycode), to a label that would encode back to
      // it, and that holds no code point UTS #46 disallows
      const u = punycodeDecode(label.slice(4));
      if (u === null || u === "" || /^[\x00-\x7f]*$/.test(u) || /[\x80-\x9f]/.test(u) || u.normalize("NFC") !== u) return null;
      if (IDNA_DISALLOWED.test(u) || "xn--" + punycodeEncode(u) !== label) return null;
      // ... and none that UTS #46 maps to something else (compatibility forms, upper case)
      if (u.normalize("NFKC").toLowerCase() !== u) return null;
    }
  }
  return labels.join(".");
}

function parseHost(input, isOpaque) {
  if (input.startsWith("[")) {
    if (!input.endsWith("]")) return null;
    const a = parseIPv6(input.slice(1, -1));
    return a === null ? null : serializeIPv6(a);
  }
  if (isOpaque) {
    if (FORBIDDEN_HOST.test(input)) return null;
    return pctEncodeString(input, C0);
  }
  const bytes = pctDecodeBytes(utf8Encode(input));
  let domain;
  try { domain = utf8Decode(bytes, true); } catch { return null; }
  const ascii = domainToASCII(domain);
  if (ascii === null || ascii === "" || FORBIDDEN_DOMAIN.test(ascii)) return null;
  if (endsInNumber(ascii)) {
    const v4 = parseIPv4(ascii);
    return v4 === null ? null : serializeIPv4(v4);
  }
  return ascii;
}

// ---------------------------------------------------------------- the basic URL parser
function isWindowsDriveLetter(s, normalizedOnly) {
  return s.length === 2 && ALPHA.test(s[0]) && (s[1] === ":" || (!normalizedOnly && s[1] === "|"));
}
function startsWithWindowsDriveLetter(cps, p) {
  if (cps.length - p < 2) return false;
  if (!ALPHA.test(cps[p]) || (cps[p + 1] !== ":" && cps[p + 1] !== "|")) return false;
  if (cps.length - p === 2) return true;
  return "/\\?#".includes(cps[p + 2]);
}
function shortenPath(url) {
  const path = url.path;
  if (url.scheme === "file" && path.length === 1 && isWindowsDriveLetter(path[0], true)) return;
  path.pop();
}
const isSingleDot = (s) => s === "." || s.toLowerCase() === "%2e";
const isDoubleDot = (s) => ["..", ".%2e", "%2e.", "%2e%2e"].includes(s.toLowerCase());

function newRecord() {
  return { scheme: "", username: "", password: "", host: null, port: null, path: [], opaque: false, query: null, fragment: null };
}

function basicParse(input, base, url, stateOverride) {
  if (!url) {
    url = newRecord();
    input = input.replace(/^[\x00-\x20]+|[\x00-\x20]+$/g, "");
  }
  input = input.replace(/[\t\n\r]/g, "");
  let state = stateOverride || "scheme start";
  let buffer = "";
  let atSeen = false, insideBrackets = false, passwordTokenSeen = false;
  const cps = Array.from(input);
  for (let p = 0; p <= cps.length; p++) {
    const c = cps[p]; // undefined = EOF
    switch (state) {
      case "scheme start":
        if (c !== undefined && ALPHA.test(c)) { buffer += c.toLowerCase(); state = "scheme"; }
        else if (!stateOverride) { state = "no scheme"; p--; }
        else return null;
        break;
      case "scheme":
        if (c !== undefined && ALNUM_PLUS.test(c)) buffer += c.toLowerCase();
        else if (c === ":") {
          if (stateOverride) {
            if (isSpecialScheme(url.scheme) !== isSpecialScheme(buffer)) return url;
            if ((url.username || url.password || url.port !== null) && buffer === "file") return url;
            if (url.scheme === "file" && url.host === "") return url;
          }
          url.scheme = buffer;
          if (stateOverride) {
            if (url.port === SPECIAL[url.scheme + ":"]) url.port = null;
            return url;
          }
          buffer = "";
          if (url.scheme === "file") state = "file";
          else if (isSpecialScheme(url.scheme) && base && base.scheme === url.scheme) state = "special relative or authority";
          else if (isSpecialScheme(url.scheme)) state = "special authority slashes";
          else if (cps[p + 1] === "/") { state = "path or authority"; p++; }
          else { url.opaque = true; url.path = ""; state = "opaque path"; }
        } else if (!stateOverride) { buffer = ""; state = "no scheme"; p = -1; }
        else return null;
        break;
      case "no scheme":
        if (!base || (base.opaque && c !== "#")) return null;
        if (base.opaque && c === "#") {
          url.scheme = base.scheme; url.path = base.path; url.opaque = true; url.query = base.query; url.fragment = ""; state = "fragment";
        } else if (base.scheme !== "file") { state = "relative"; p--; }
        else { state = "file"; p--; }
        break;
      case "special relative or authority":
        if (c === "/" && cps[p + 1] === "/") { state = "special authority ignore slashes"; p++; }
        else { state = "relative"; p--; }
        break;
      case "path or authority":
        if (c === "/") state = "authority";
        else { state = "path"; p--; }
        break;
      case "relative":
        url.scheme = base.scheme;
        if (c === "/") state = "relative slash";
        else if (isSpecialScheme(url.scheme) && c === "\\") state = "relative slash";
        else {
          url.username = base.username; url.password = base.password; url.host = base.host; url.port = base.port;
          url.path = base.path.slice(); url.query = base.query;
          if (c === "?") { url.query = ""; state = "query"; }
          else if (c === "#") { url.fragment = ""; state = "fragment"; }
          else if (c !== undefined) { url.query = null; shortenPath(url); state = "path"; p--; }
        }
        break;
      case "relative slash":
        if (isSpecialScheme(url.scheme) && (c === "/" || c === "\\")) state = "special authority ignore slashes";
        else if (c === "/") state = "authority";
        else {
          url.username = base.username; url.password = base.password; url.host = base.host; url.port = base.port;
          state = "path"; p--;
        }
        break;
      case "special authority slashes":
        if (c === "/" && cps[p + 1] === "/") { state = "special authority ignore slashes"; p++; }
        else { state = "special authority ignore slashes"; p--; }
        break;
      case "special authority ignore slashes":
        if (c !== "/" && c !== "\\") { state = "authority"; p--; }
        break;
      case "authority":
        if (c === "@") {
          if (atSeen) buffer = "%40" + buffer;
          atSeen = true;
          for (const ch of buffer) {
            if (ch === ":" && !passwordTokenSeen) { passwordTokenSeen = true; continue; }
            const enc = pctEncodeCodePoint(ch.codePointAt(0), USERINFO_SET);
            if (passwordTokenSeen) url.password += enc; else url.username += enc;
          }
          buffer = "";
        } else if (c === undefined || c === "/" || c === "?" || c === "#" || (isSpecialScheme(url.scheme) && c === "\\")) {
          if (atSeen && buffer === "") return null;
          p -= Array.from(buffer).length + 1;
          buffer = "";
          state = "host";
        } else buffer += c;
        break;
      case "host":
      case "hostname":
        if (stateOverride && url.scheme === "file") { p--; state = "file host"; }
        else if (c === ":" && !insideBrackets) {
          if (buffer === "") return null;
          if (stateOverride === "hostname") return null;
          const host = parseHost(buffer, !isSpecialScheme(url.scheme));
          if (host === null) return null;
          url.host = host; buffer = ""; state = "port";
        } else if (c === undefined || c === "/" || c === "?" || c === "#" || (isSpecialScheme(url.scheme) && c === "\\")) {
          p--;
          if (isSpecialScheme(url.scheme) && buffer === "") return null;
          if (stateOverride && buffer === "" && (url.username || url.password || url.port !== null)) return null;
          const host = parseHost(buffer, !isSpecialScheme(url.scheme));
          if (host === null) return null;
          url.host = host; buffer = ""; state = "path start";
          if (stateOverride) return url;
        } else {
          if (c === "[") insideBrackets = true;
          if (c === "]") insideBrackets = false;
          buffer += c;
        }
        break;
      case "port":
        if (c !== undefined && /[0-9]/.test(c)) buffer += c;
        else if (c === undefined || c === "/" || c === "?" || c === "#" || (isSpecialScheme(url.scheme) && c === "\\") || stateOverride) {
          // With a state override the spec edits the URL in place and a failure here keeps what was
          // already set (the host setter's host), so return `url` rather than failure.
          if (buffer !== "") {
            const port = parseInt(buffer, 10);
            if (port > 65535) return stateOverride ? url : null;
            url.port = SPECIAL[url.scheme + ":"] === port ? null : port;
            buffer = "";
            if (stateOverride) return url;
          }
          if (stateOverride) return url;
          state = "path start"; p--;
        } else return null;
        break;
      case "file":
        url.scheme = "file";
        url.host = "";
        if (c === "/" || c === "\\") state = "file slash";
        else if (base && base.scheme === "file") {
          url.host = base.host; url.path = base.path.slice(); url.query = base.query;
          if (c === "?") { url.query = ""; state = "query"; }
          else if (c === "#") { url.fragment = ""; state = "fragment"; }
          else if (c !== undefined) {
            url.query = null;
            if (!startsWithWindowsDriveLetter(cps, p)) shortenPath(url);
            else url.path = [];
            state = "path"; p--;
          }
        } else { state = "path"; p--; }
        break;
      case "file slash":
        if (c === "/" || c === "\\") state = "file host";
        else {
          if (base && base.scheme === "file") {
            url.host = base.host;
            if (!startsWithWindowsDriveLetter(cps, p) && base.path.length && isWindowsDriveLetter(base.path[0], true)) url.path.push(base.path[0]);
          }
          state = "path"; p--;
        }
        break;
      case "file host":
        if (c === undefined || c === "/" || c === "\\" || c === "?" || c === "#") {
          p--;
          if (!stateOverride && isWindowsDriveLetter(buffer, false)) state = "path";
          else if (buffer === "") {
            url.host = "";
            if (stateOverride) return url;
            state = "path start";
          } else {
            let host = parseHost(buffer, false);
            if (host === null) return null;
            if (host === "localhost") host = "";
            url.host = host;
            if (stateOverride) return url;
            buffer = ""; state = "path start";
          }
        } else buffer += c;
        break;
      case "path start":
        if (isSpecialScheme(url.scheme)) { state = "path"; if (c !== "/" && c !== "\\") p--; }
        else if (!stateOverride && c === "?") { url.query = ""; state = "query"; }
        else if (!stateOverride && c === "#") { url.fragment = ""; state = "fragment"; }
        else if (c !== undefined) { state = "path"; if (c !== "/") p--; }
        else if (stateOverride && url.host === null) url.path.push("");
        break;
      case "path":
        if (c === undefined || c === "/" || (isSpecialScheme(url.scheme) && c === "\\") || (!stateOverride && (c === "?" || c === "#"))) {
          const slash = c === "/" || (isSpecialScheme(url.scheme) && c === "\\");
          if (isDoubleDot(buffer)) {
            shortenPath(url);
            if (!slash) url.path.push("");
          } else if (isSingleDot(buffer) && !slash) url.path.push("");
          else if (!isSingleDot(buffer)) {
            if (url.scheme === "file" && url.path.length === 0 && isWindowsDriveLetter(buffer, false)) buffer = buffer[0] + ":";
            url.path.push(buffer);
          }
          buffer = "";
          if (c === "?") { url.query = ""; state = "query"; }
          if (c === "#") { url.fragment = ""; state = "fragment"; }
        } else buffer += pctEncodeCodePoint(c.codePointAt(0), PATH_SET);
        break;
      case "opaque path":
        if (c === "?") { url.query = ""; state = "query"; }
        else if (c === "#") { url.fragment = ""; state = "fragment"; }
        // a space before the query or fragment is encoded, so that removing them leaves it intact
        else if (c === " " && (cps[p + 1] === "?" || cps[p + 1] === "#")) url.path += "%20";
        else if (c !== undefined) url.path += pctEncodeCodePoint(c.codePointAt(0), C0);
        break;
      case "query":
        if ((!stateOverride && c === "#") || c === undefined) {
          url.query += pctEncodeString(buffer, isSpecialScheme(url.scheme) ? SPECIAL_QUERY_SET : QUERY_SET);
          buffer = "";
          if (c === "#") { url.fragment = ""; state = "fragment"; }
        } else buffer += c;
        break;
      case "fragment":
        if (c !== undefined) url.fragment += pctEncodeCodePoint(c.codePointAt(0), FRAGMENT_SET);
        break;
    }
  }
  return url;
}

// Fast path for the URLs every request has (`http://host:port/path?query`): already in the form the
// full parser would produce, so the record is built directly. Anything unusual (dots in the path,
// characters needing percent-encoding, numeric hosts, credentials) falls back to basicParse.
const SIMPLE_URL = /^(https?|wss?):\/\/([a-z0-9-]+(?:\.[a-z0-9-]+)*)(?::([0-9]{1,5}))?((?:\/[A-Za-z0-9\-._~!$&'()*+,;=:@%]*)*)(?:\?([A-Za-z0-9\-._~!$&()*+,;=:@%/?]*))?$/;
const NUMERIC_LABEL = /(?:^|\.)(?:[0-9]+|0x[0-9a-f]*)\.?$/;
const CANONICAL_IPV4 = /^(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$/;

function fastParse(input) {
  const m = SIMPLE_URL.exec(input);
  if (m === null || m[2].includes("xn--")) return null;
  if (NUMERIC_LABEL.test(m[2]) && !CANONICAL_IPV4.test(m[2])) return null;
  const path = m[4] || "/";
  if (path.includes("/.") && /\/\.\.?(?:\/|$)/.test(path)) return null;
  if (path.includes("%") && /%(?![0-9A-Fa-f]{2})|%2e/i.test(path)) return null;
  if (m[5] !== undefined && /%(?![0-9A-Fa-f]{2})/.test(m[5])) return null;
  let port = null;
  if (m[3] !== undefined) {
    port = parseInt(m[3], 10);
    if (port > 65535) return null;
    if (port === SPECIAL[m[1] + ":"]) port = null;
  }
  return {
    scheme: m[1], username: "", password: "", host: m[2], port,
    path: path.slice(1).split("/"), opaque: false, query: m[5] === undefined ? null : m[5], fragment: null,
  };
}

// A worker parses the same few URLs over and over (`new URL(request.url)` on every request): keep the
// records of recent base-less parses, shared (`shared: true`) by the URLs made from them until a
// setter copies its own (URL's #writable).
const parsedURLs = new Map();
const PARSED_URLS_MAX = 512;
function cachedParse(str) {
  let rec = parsedURLs.get(str);
  if (rec === undefined) {
    rec = fastParse(str) || basicParse(toUSVString(str), null);
    if (rec === null || str.length > 2048) return rec;
    if (parsedURLs.size >= PARSED_URLS_MAX) parsedURLs.clear();
    rec.shared = true;
    parsedURLs.set(str, rec);
  }
  return rec;
}

function serializePath(url) {
  if (url.opaque) return url.path;
  let out = "";
  for (const seg of url.path) out += "/" + seg;
  return out;
}

function serializeURL(url, excludeFragment) {
  let out = url.scheme + ":";
  if (url.host !== null) {
    out += "//";
    if (url.username !== "" || url.password !== "") {
      out += url.username;
      if (url.password !== "") out += ":" + url.password;
      out += "@";
    }
    out += url.host;
    if (url.port !== null) out += ":" + url.port;
  } else if (!url.opaque && url.path.length > 1 && url.path[0] === "") out += "/.";
  out += serializePath(url);
  if (url.query !== null) out += "?" + url.query;
  if (!excludeFragment && url.fragment !== null) out += "#" + url.fragment;
  return out;
}

// ---------------------------------------------------------------- application/x-www-form-urlencoded
function formDecode(s) {
  const out = [];
  for (const seq of s.split("&")) {
    if (seq === "") continue;
    const i = seq.indexOf("=");
    const name = i >= 0 ? seq.slice(0, i) : seq;
    const value = i >= 0 ? seq.slice(i + 1) : "";
    const dec = (x) => utf8DecodeLoose(pctDecodeBytes(utf8Encode(x.replaceAll("+", " "))));
    out.push([dec(name), dec(value)]);
  }
  return out;
}

function formEncode(list) {
  return list.map(([k, v]) => pctEncodeString(k, FORM_SET, true) + "=" + pctEncodeString(v, FORM_SET, true)).join("&");
}


function argc(n, need, what) {
  if (n < need) throw new TypeError(`${what} requires ${need} argument${need > 1 ? "s" : ""}`);
}

function toUSVString(v) {
  return String(v).replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd");
}

let linkParams, urlRecord; // set by the classes' static blocks: their private state, for each other

class URLSearchParams {
  #list = [];
  #url = null; // the URL this object is linked to
  static { linkParams = (params, url) => { params.#url = url; }; }
  constructor(init = "") {
    // WebIDL (sequence<sequence<USVString>> or record<USVString, USVString> or USVString), converted
    // in the standard's order: @@iterator read once and used even on a URLSearchParams
    if (init !== null && (typeof init === "object" || typeof init === "function")) {
      const method = init[Symbol.iterator];
      if (method !== undefined && method !== null) {
        if (typeof method !== "function") throw new TypeError("URLSearchParams init's Symbol.iterator is not a function");
        for (const pair of iterateWith(init, method)) {
          if (pair === null || (typeof pair !== "object" && typeof pair !== "function")) throw new TypeError("Each query pair must be an iterable [name, value] tuple");
          const inner = pair[Symbol.iterator];
          if (typeof inner !== "function") throw new TypeError("Each query pair must be an iterable [name, value] tuple");
          const arr = [];
          for (const v of iterateWith(pair, inner)) arr.push(toUSVString(v));
          if (arr.length !== 2) throw new TypeError("Each query pair must be an iterable [name, value] tuple");
          this.#list.push(arr);
        }
      } else {
        const seen = new Map(); // a record: keys that convert alike keep the first's place, the last's value
        for (const k of Reflect.ownKeys(init)) {
          if (!Object.prototype.propertyIsEnumerable.call(init, k)) continue;
          if (typeof k === "symbol") throw new TypeError("URLSearchParams init keys must be strings");
          const key = toUSVString(k);
          const value = toUSVString(init[k]);
          const at = seen.get(key);
          if (at === undefined) { seen.set(key, this.#list.length); this.#list.push([key, value]); }
          else this.#list[at][1] = value;
        }
      }
      return;
    }
    init = toUSVString(init);
    if (init.startsWith("?")) init = init.slice(1);
    this.#list = formDecode(init);
  }
  _setList(list) { this.#list = list; }
  #update() {
    if (!this.#url) return;
    const q = formEncode(this.#list);
    const rec = urlRecord(this.#url);
    rec.query = q === "" ? null : q;
  }
  get size() { return this.#list.length; }
  append(name, value) { argc(arguments.length, 2, "URLSearchParams.append"); this.#list.push([toUSVString(name), toUSVString(value)]); this.#update(); }
  delete(name, value) {
    argc(arguments.length, 1, "URLSearchParams.delete");
    name = toUSVString(name);
    this.#list = this.#list.filter(([k, v]) => !(k === name && (value === undefined || v === toUSVString(value))));
    this.#update();
  }
  get(name) { argc(arguments.length, 1, "URLSearchParams.get"); name = toUSVString(name); const e = this.#list.find(([k]) => k === name); return e ? e[1] : null; }
  getAll(name) { argc(arguments.length, 1, "URLSearchParams.getAll"); name = toUSVString(name); return this.#list.filter(([k]) => k === name).map(([, v]) => v); }
  has(name, value) {
    argc(arguments.length, 1, "URLSearchParams.has");
    name = toUSVString(name);
    return this.#list.some(([k, v]) => k === name && (value === undefined || v === toUSVString(value)));
  }
  set(name, value) {
    argc(arguments.length, 2, "URLSearchParams.set");
    name = toUSVString(name); value = toUSVString(value);
    const i = this.#list.findIndex(([k]) => k === name);
    if (i < 0) this.#list.push([name, value]);
    else {
      this.#list[i][1] = value;
      this.#list = this.#list.filter(([k], j) => j <= i || k !== name);
    }
    this.#update();
  }
  sort() {
    // stable sort by UTF-16 code units of the names
    this.#list = this.#list.map((p, i) => [p, i]).sort((a, b) => (a[0][0] < b[0][0] ? -1 : a[0][0] > b[0][0] ? 1 : a[1] - b[1])).map(([p]) => p);
    this.#update();
  }
  forEach(cb, thisArg) { for (const [k, v] of this.#list.slice()) cb.call(thisArg, v, k, this); }
  entries() { return PairIterator("URLSearchParams Iterator", () => this.#list, "entries"); }
  keys() { return PairIterator("URLSearchParams Iterator", () => this.#list, "keys"); }
  values() { return PairIterator("URLSearchParams Iterator", () => this.#list, "values"); }
  [Symbol.iterator]() { return this.entries(); }
  toString() { return formEncode(this.#list); }
  get [Symbol.toStringTag]() { return "URLSearchParams"; }
  [INSPECT]() { return `URLSearchParams {${this.#list.map(([k, v]) => ` ${quoteString(k)} => ${quoteString(v)}`).join(",")} }`; }
}

class URL {
  #rec;
  #sp = null;
  static { urlRecord = (url) => url.#writable(); }
  constructor(url, base = undefined) {
    let baseRec = null;
    if (arguments.length === 0) throw new TypeError("URL constructor requires at least 1 argument");
    if (base !== undefined) {
      baseRec = basicParse(toUSVString(base), null);
      if (baseRec === null) throw new TypeError(`Invalid base URL: ${base}`);
    }
    const str = typeof url === "string" ? url : toUSVString(url);
    const rec = baseRec === null ? cachedParse(str) : basicParse(toUSVString(str), baseRec);
    if (rec === null) throw new TypeError(`Invalid URL: ${url}`);
    this.#rec = rec;
  }
  static canParse(url, base = undefined) {
    argc(arguments.length, 1, "URL.canParse");
    try { new URL(url, base); return true; } catch { return false; }
  }
  static parse(url, base = undefined) {
    argc(arguments.length, 1, "URL.parse");
    try { return new URL(url, base); } catch { return null; }
  }
  get href() { return serializeURL(this.#rec); }
  set href(v) {
    const rec = basicParse(toUSVString(v), null);
    if (rec === null) throw new TypeError(`Invalid URL: ${v}`);
    this.#rec = rec;
    if (this.#sp) this.#sp._setList(formDecode(rec.query || ""));
  }
  get origin() {
    const r = this.#writable();
    if (r.scheme === "blob") {
      try { const inner = new URL(serializePath(r)); if (inner.protocol === "http:" || inner.protocol === "https:") return inner.origin; } catch {}
      return "null";
    }
    if (!isSpecialScheme(r.scheme) || r.scheme === "file") return "null";
    return `${r.scheme}://${r.host}${r.port !== null ? ":" + r.port : ""}`;
  }
  get protocol() { return this.#rec.scheme + ":"; }
  set protocol(v) { basicParse(toUSVString(v) + ":", null, this.#writable(), "scheme start"); }
  get username() { return this.#rec.username; }
  set username(v) {
    const r = this.#writable();
    if (r.host === null || r.host === "" || r.scheme === "file") return;
    r.username = pctEncodeString(toUSVString(v), USERINFO_SET);
  }
  get password() { return this.#rec.password; }
  set password(v) {
    const r = this.#writable();
    if (r.host === null || r.host === "" || r.scheme === "file") return;
    r.password = pctEncodeString(toUSVString(v), USERINFO_SET);
  }
  get host() {
    const r = this.#rec;
    if (r.host === null) return "";
    return r.port === null ? r.host : `${r.host}:${r.port}`;
  }
  set host(v) { if (!this.#rec.opaque) this.#reparse(v, "host"); }
  get hostname() { return this.#rec.host === null ? "" : this.#rec.host; }
  set hostname(v) { if (!this.#rec.opaque) this.#reparse(v, "hostname"); }
  get port() { return this.#rec.port === null ? "" : String(this.#rec.port); }
  set port(v) {
    const r = this.#writable();
    if (r.host === null || r.host === "" || r.scheme === "file") return;
    v = toUSVString(v);
    if (v === "") r.port = null;
    else this.#reparse(v, "port");
  }
  get pathname() { return serializePath(this.#rec); }
  set pathname(v) {
    const r = this.#writable();
    if (r.opaque) return;
    const copy = { ...r, path: [] };
    const out = basicParse(toUSVString(v), null, copy, "path start");
    if (out) r.path = out.path;
  }
  get search() { const q = this.#rec.query; return q === null || q === "" ? "" : "?" + q; }
  set search(v) {
    const r = this.#writable();
    v = toUSVString(v);
    if (v === "") { r.query = null; if (this.#sp) this.#sp._setList([]); return; }
    if (v.startsWith("?")) v = v.slice(1);
    r.query = "";
    basicParse(v, null, r, "query");
    if (this.#sp) this.#sp._setList(formDecode(v));
  }
  get searchParams() {
    if (!this.#sp) {
      this.#sp = new URLSearchParams();
      this.#sp._setList(formDecode(this.#rec.query || ""));
      linkParams(this.#sp, this);
    }
    return this.#sp;
  }
  get hash() { const f = this.#rec.fragment; return f === null || f === "" ? "" : "#" + f; }
  set hash(v) {
    const r = this.#writable();
    v = toUSVString(v);
    if (v === "") { r.fragment = null; return; }
    if (v.startsWith("#")) v = v.slice(1);
    r.fragment = "";
    basicParse(v, null, r, "fragment");
  }
  // Records from the parse cache are shared by every URL parsed from the same string: copied before
  // a setter changes one.
  #writable() {
    const r = this.#rec;
    if (!r.shared) return r;
    return (this.#rec = { scheme: r.scheme, username: r.username, password: r.password, host: r.host, port: r.port,
      path: r.opaque ? r.path : r.path.slice(), opaque: r.opaque, query: r.query, fragment: r.fragment });
  }
  #reparse(v, state) {
    const copy = { ...this.#rec, path: Array.isArray(this.#rec.path) ? this.#rec.path.slice() : this.#rec.path };
    const out = basicParse(toUSVString(v), null, copy, state);
    if (out) this.#rec = out;
  }
  toString() { return this.href; }
  toJSON() { return this.href; }
  get [Symbol.toStringTag]() { return "URL"; }
  [INSPECT]() { return `URL { href: ${quoteString(this.href)} }`; }
}

expose("URL", URL);
expose("URLSearchParams", URLSearchParams);
