// FormData (XHR Standard), and its multipart/form-data encoding and parsing for bodies.

function formName(argc, name) {
  if (argc === 0) throw new TypeError("FormData: a name argument is required");
  return toUSVString(name);
}

class FormData {
  _entries = [];
  constructor(form) {
    if (form !== undefined) throw new TypeError("FormData(form) is not supported outside a browser");
  }
  #entry(name, value, filename) {
    name = toUSVString(name);
    if (value instanceof Blob) {
      if (!(value instanceof File) || filename !== undefined) {
        // a File keeps its lastModified under its new name (XHR's "create an entry")
        const opts = value instanceof File ? { type: value.type, lastModified: value.lastModified } : { type: value.type };
        const f = new File([], filename !== undefined ? String(filename) : value instanceof File ? value.name : "blob", opts);
        f._bytes = value._bytes;
        value = f;
      }
    } else value = toUSVString(value);
    return [name, value];
  }
  append(name, value, filename) {
    if (arguments.length < 2) throw new TypeError("FormData.append requires 2 arguments");
    if (arguments.length > 2 && !(value instanceof Blob)) throw new TypeError("FormData.append: a filename needs a Blob value");
    this._entries.push(this.#entry(name, value, filename));
  }
  delete(name) { name = formName(arguments.length, name); this._entries = this._entries.filter(([k]) => k !== name); }
  get(name) { name = formName(arguments.length, name); const e = this._entries.find(([k]) => k === name); return e ? e[1] : null; }
  getAll(name) { name = formName(arguments.length, name); return this._entries.filter(([k]) => k === name).map(([, v]) => v); }
  has(name) { name = formName(arguments.length, name); return this._entries.some(([k]) => k === name); }
  set(name, value, filename) {
    if (arguments.length < 2) throw new TypeError("FormData.set requires 2 arguments");
    if (arguments.length > 2 && !(value instanceof Blob)) throw new TypeError("FormData.set: a filename needs a Blob value");
    const e = this.#entry(name, value, filename);
    const i = this._entries.findIndex(([k]) => k === e[0]);
    if (i < 0) this._entries.push(e);
    else this._entries = [...this._entries.slice(0, i), e, ...this._entries.slice(i + 1).filter(([k]) => k !== e[0])];
  }
  forEach(cb, thisArg) { for (const [k, v] of this._entries.slice()) cb.call(thisArg, v, k, this); }
  entries() { return PairIterator("FormData Iterator", () => this._entries, "entries"); }
  keys() { return PairIterator("FormData Iterator", () => this._entries, "keys"); }
  values() { return PairIterator("FormData Iterator", () => this._entries, "values"); }
  [Symbol.iterator]() { return this.entries(); }
  get [Symbol.toStringTag]() { return "FormData"; }
}

function encodeMultipart(fd) {
  const rnd = new Uint8Array(12);
  randomBytesInto(rnd);
  const boundary = "----PloyFormBoundary" + Array.from(rnd, (b) => b.toString(16).padStart(2, "0")).join("");
  // names get their newlines normalized to CRLF, filenames do not; both then escape " CR LF
  const esc = (s) => s.replace(/"/g, "%22").replace(/\r/g, "%0D").replace(/\n/g, "%0A");
  const chunks = [];
  for (const [name, value] of fd._entries) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${esc(name.replace(/\r\n|\r|\n/g, "\r\n"))}"`;
    if (value instanceof File) {
      head += `; filename="${esc(value.name)}"\r\nContent-Type: ${value.type || "application/octet-stream"}\r\n\r\n`;
      chunks.push(utf8Encode(head), value._bytes, utf8Encode("\r\n"));
    } else {
      chunks.push(utf8Encode(head + "\r\n\r\n" + value.replace(/\r\n|\r|\n/g, "\r\n") + "\r\n"));
    }
  }
  if (chunks.length !== 0) chunks.push(utf8Encode(`--${boundary}--\r\n`)); // an empty FormData is an empty body, as in browsers
  return { bytes: concatBytes(chunks), type: `multipart/form-data; boundary=${boundary}` };
}

function parseMultipart(bytes, contentType) {
  const m = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType);
  if (!m) throw new TypeError("multipart/form-data without a boundary");
  const boundary = "--" + (m[1] || m[2]).trim();
  const bin = bytesToLatin1(bytes);
  const fd = new FormData();
  const parts = bin.split(boundary);
  if (parts.length < 2) throw new TypeError("multipart/form-data body without its boundary");
  for (let i = 1; i < parts.length; i++) {
    let part = parts[i];
    if (part.startsWith("--")) break;
    part = part.replace(/^\r\n/, "").replace(/\r\n$/, "");
    const sep = part.indexOf("\r\n\r\n");
    if (sep < 0) continue;
    const head = utf8Decode(latin1ToBytes(part.slice(0, sep)), false);
    const body = part.slice(sep + 4);
    const disp = /content-disposition:[^\r\n]*?\bname="([^"]*)"/i.exec(head);
    if (!disp) continue;
    const fn = /filename="([^"]*)"/i.exec(head);
    const ct = /content-type:\s*([^\r\n]*)/i.exec(head);
    if (fn) {
      const f = new File([], fn[1], { type: ct ? ct[1].trim() : "" });
      f._bytes = latin1ToBytes(body);
      fd.append(disp[1], f);
    } else fd.append(disp[1], utf8Decode(latin1ToBytes(body), false));
  }
  return fd;
}

expose("FormData", FormData);
