// Response (Fetch Standard): the constructor, json(), redirect(), error(), clone().

// WebIDL `unsigned short`: NaN and infinities are 0, fractions truncate, then modulo 2^16.
function unsignedShort(v) {
  const n = Number(v);
  if (!Number.isFinite(n)) return 0;
  return ((Math.trunc(n) % 65536) + 65536) % 65536;
}

const NULL_BODY_STATUS = [101, 103, 204, 205, 304];
const REDIRECT_STATUS = [301, 302, 303, 307, 308];

class Response extends Body {
  _status = 200; _statusText = ""; _headers; _type = "default"; _url = ""; _redirected = false;
  constructor(body = null, init = {}) {
    super();
    if (body === INTERNAL) return;
    if (init === null || init === undefined) init = {};
    else if (typeof init !== "object" && typeof init !== "function") throw new TypeError("ResponseInit must be an object");
    if (init.status !== undefined) {
      const s = unsignedShort(init.status);
      // 101 only with a webSocket (Cloudflare Workers' WebSocket upgrade answer, 85_websocket.js)
      const upgrade = s === 101 && init.webSocket instanceof WebSocket;
      if ((s < 200 || s > 599) && !upgrade) throw new RangeError(`Response status must be in the range 200 to 599, got ${init.status}`);
      this._status = s;
    }
    if (init.webSocket !== undefined && init.webSocket !== null) {
      if (!(init.webSocket instanceof WebSocket) || this._status !== 101) throw new TypeError("ResponseInit.webSocket needs status 101 and a WebSocket");
      this._webSocket = init.webSocket;
    }
    if (init.statusText !== undefined) {
      const t = String(init.statusText);
      if (/[^\t\x20-\x7e\x80-\xff]/.test(t)) throw new TypeError("Invalid statusText");
      this._statusText = t;
    }
    this._headers = init.headers instanceof Headers ? new Headers(init.headers) : new Headers(init.headers);
    if (body !== null && body !== undefined) {
      if (NULL_BODY_STATUS.includes(this._status)) throw new TypeError(`Response with null body status ${this._status} cannot have a body`);
      const [b, type] = extractBody(body);
      this._body = b;
      if (type && !this._headers.has("content-type")) this._headers._list.push(["content-type", type]);
    }
  }
  static json(data, init = {}) {
    const text = JSON.stringify(data);
    if (text === undefined) throw new TypeError("Value is not JSON serializable");
    const r = new Response(text, init);
    if (!init || !init.headers || !new Headers(init.headers).has("content-type")) r._headers.set("content-type", "application/json");
    return r;
  }
  static redirect(url, status = 302) {
    const parsed = new URL(String(url));
    status = unsignedShort(status);
    if (!REDIRECT_STATUS.includes(status)) throw new RangeError(`Invalid redirect status: ${status}`);
    const r = new Response(null, { status });
    r._headers.set("location", parsed.href);
    r._headers._guard = "immutable";
    return r;
  }
  static error() {
    const r = new Response(INTERNAL);
    r._status = 0; r._type = "error"; r._headers = new Headers(); r._headers._guard = "immutable";
    return r;
  }
  get status() { return this._status; }
  get statusText() { return this._statusText; }
  get ok() { return this._status >= 200 && this._status <= 299; }
  get headers() { return this._headers; }
  get type() { return this._type; }
  get url() { return this._url; }
  get redirected() { return this._redirected; }
  get webSocket() { return this._webSocket || null; }
  clone() {
    const r = new Response(INTERNAL);
    r._status = this._status; r._statusText = this._statusText; r._headers = new Headers(this._headers); r._headers._guard = this._headers._guard;
    r._type = this._type; r._url = this._url; r._redirected = this._redirected;
    r._body = this._cloneBody();
    return r;
  }
  get [Symbol.toStringTag]() { return "Response"; }
  [INSPECT]() { return `Response { status: ${this._status}, statusText: ${quoteString(this._statusText)}, headers: ${inspect(this._headers)}, bodyUsed: ${this.bodyUsed} }`; }
}

includeBody(Response);
expose("Response", Response);
