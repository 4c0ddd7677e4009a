// Response (Fetch Standard): the constructor, json(), redirect(), error(), clone().

// WebIDL `unsigned short`: NaN and infinities are 0, fractions truncate, then modulo 2^16.
function unsignedShort(v) {
  const n = Number(v);
  if (!Number.isFinite(n)) return 0;
  return ((Math.trunc(n) % 65536) + 65536) % 65536;
}

const NULL_BODY_STATUS = [101, 103, 204, 205, 304];
const REDIRECT_STATUS = [301, 302, 303, 307, 308];

const kStatus = Symbol("status"), kStatusText = Symbol("statusText"), kType = Symbol("type");
const kRedirected = Symbol("redirected");

class Response {
  constructor(body = null, init = undefined) {
    if (body === INTERNAL) return;
    let headers;
    if (init === undefined || init === null) headers = new Headers();
    else {
      if (typeof init !== "object" && typeof init !== "function") throw new TypeError("ResponseInit must be an object");
      const status = init.status;
      if (status !== undefined) {
        const s = unsignedShort(status);
        if (s < 200 || s > 599) throw new RangeError(`Response status must be in the range 200 to 599, got ${status}`);
        if (s !== 200) this[kStatus] = s;
      }
      if (init.statusText !== undefined) {
        const t = String(init.statusText);
        if (/[^\t\x20-\x7e\x80-\xff]/.test(t)) throw new TypeError("Invalid statusText");
        this[kStatusText] = t;
      }
      headers = new Headers(init.headers);
    }
    this[kHeaders] = headers;
    if (body !== null && body !== undefined) {
      if (NULL_BODY_STATUS.includes(this[kStatus])) throw new TypeError(`Response with null body status ${this[kStatus]} cannot have a body`);
      if (typeof body === "string") {
        this[kBody] = { source: body, stream: null };
        if (!headers.has("content-type")) headers._list.push(["content-type", "text/plain;charset=UTF-8"]);
      } else {
        const [b, type] = extractBody(body);
        this[kBody] = b;
        if (type && !headers.has("content-type")) headers._list.push(["content-type", type]);
      }
    }
  }
  static json(data, init = undefined) {
    const text = JSON.stringify(data);
    if (text === undefined) throw new TypeError("Value is not JSON serializable");
    const r = new Response(null, init);
    if (NULL_BODY_STATUS.includes(r[kStatus])) throw new TypeError(`Response with null body status ${r[kStatus]} cannot have a body`);
    r[kBody] = { source: text, stream: null };
    const headers = r[kHeaders];
    if (!headers.has("content-type")) headers._list.push(["content-type", "application/json"]);
    return r;
  }
  static redirect(url, status = 302) {
    const parsed = new URL(String(url));
    status = unsignedShort(status);
    if (!REDIRECT_STATUS.includes(status)) throw new RangeError(`Invalid redirect status: ${status}`);
    const r = new Response(null, { status });
    r[kHeaders].set("location", parsed.href);
    r[kHeaders]._guard = "immutable";
    return r;
  }
  static error() {
    const r = new Response(INTERNAL);
    r[kStatus] = 0; r[kType] = "error"; r[kHeaders] = new Headers(); r[kHeaders]._guard = "immutable";
    return r;
  }
  get status() { return this[kStatus]; }
  get statusText() { return this[kStatusText]; }
  get ok() { return this[kStatus] >= 200 && this[kStatus] <= 299; }
  get headers() { return this[kHeaders]; }
  get type() { return this[kType]; }
  get url() { return this[kUrl]; }
  get redirected() { return this[kRedirected]; }
  get webSocket() { return null; }
  clone() {
    const r = new Response(INTERNAL);
    r[kStatus] = this[kStatus]; r[kStatusText] = this[kStatusText]; r[kHeaders] = new Headers(this[kHeaders]); r[kHeaders]._guard = this[kHeaders]._guard;
    r[kType] = this[kType]; r[kUrl] = this[kUrl]; r[kRedirected] = this[kRedirected];
    r[kBody] = cloneBody(this);
    return r;
  }
  get [Symbol.toStringTag]() { return "Response"; }
  [INSPECT]() { return `Response { status: ${this[kStatus]}, statusText: ${quoteString(this[kStatusText])}, headers: ${inspect(this[kHeaders])}, bodyUsed: ${this.bodyUsed} }`; }
}

includeBody(Response);
internalDefaults(Response.prototype, [[kStatus, 200], [kStatusText, ""], [kType, "default"], [kUrl, ""], [kRedirected, false]]);
expose("Response", Response);
