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
const kRedirected = Symbol("redirected"), kWebSocket = Symbol("webSocket");
// A Response builds its Headers only if someone reads them (respond() reads the list without them):
// until then kHeaders is null, kHeaderList the init headers converted (or null), and kContentType the
// content type its body adds when they have none.
const kContentType = Symbol("contentType"), kHeaderList = Symbol("headerList");

function lazyResponseHeaders(r) {
  const list = r[kHeaderList];
  const h = list === null ? new Headers() : headersWithList(list);
  const type = r[kContentType];
  if (type !== null) headersList(h).push(["content-type", type]);
  return (r[kHeaders] = h);
}

// The header list a Response would have, without making its Headers.
function responseHeaderList(r) {
  const h = r[kHeaders];
  if (h !== null) return headersList(h);
  const list = r[kHeaderList];
  const type = r[kContentType];
  if (type === null) return list === null ? [] : list;
  return list === null ? [["content-type", type]] : [...list, ["content-type", type]];
}

function hasContentType(list) {
  for (let i = 0; i < list.length; i++) if (list[i][0] === "content-type") return true;
  return false;
}

class Response {
  constructor(body = null, init = undefined) {
    if (body === INTERNAL) return;
    let list = null;
    let status = 200;
    if (init !== undefined && init !== null) {
      if (typeof init !== "object" && typeof init !== "function") throw new TypeError("ResponseInit must be an object");
      if (init.status !== undefined) {
        status = unsignedShort(init.status);
        // 101 only with a webSocket (Cloudflare Workers' WebSocket upgrade answer, 85_websocket.js)
        const upgrade = status === 101 && init.webSocket instanceof WebSocket;
        if ((status < 200 || status > 599) && !upgrade) throw new RangeError(`Response status must be in the range 200 to 599, got ${init.status}`);
        if (status !== 200) this[kStatus] = status;
      }
      if (init.webSocket !== undefined && init.webSocket !== null) {
        if (!(init.webSocket instanceof WebSocket) || status !== 101) throw new TypeError("ResponseInit.webSocket needs status 101 and a WebSocket");
        this[kWebSocket] = init.webSocket;
      }
      if (init.statusText !== undefined) {
        const t = String(init.statusText);
        if (/[^\t\x20-\x7e\x80-\xff]/.test(t)) throw new TypeError("Invalid statusText");
        this[kStatusText] = t;
      }
      if (init.headers !== undefined) this[kHeaderList] = list = headersInitList(init.headers);
    }
    if (body !== null && body !== undefined) {
      if (status !== 200 && NULL_BODY_STATUS.includes(status)) throw new TypeError(`Response with null body status ${status} cannot have a body`);
      let type;
      if (typeof body === "string") {
        this[kBody] = { source: body, stream: null };
        type = "text/plain;charset=UTF-8";
      } else {
        const b = extractBody(body);
        this[kBody] = b[0];
        type = b[1];
      }
      if (type && (list === null || !hasContentType(list))) this[kContentType] = type;
    }
  }
  static json(data, init = undefined) {
    const text = JSON.stringify(data);
    if (text === undefined) throw new TypeError("Value is not JSON serializable");
    const r = new Response(null, init);
    if (NULL_BODY_STATUS.includes(r[kStatus])) throw new TypeError(`Response with null body status ${r[kStatus]} cannot have a body`);
    // `json`: the text can cross to the host as it is (JSON.stringify escapes NUL and lone surrogates)
    r[kBody] = { source: text, stream: null, json: true };
    const list = r[kHeaderList];
    if (list === null || !hasContentType(list)) r[kContentType] = "application/json";
    return r;
  }
  static redirect(url, status = 302) {
    const parsed = new URL(String(url));
    status = unsignedShort(status);
    if (!REDIRECT_STATUS.includes(status)) throw new RangeError(`Invalid redirect status: ${status}`);
    const r = new Response(null, { status });
    r.headers.set("location", parsed.href);
    r.headers._guard = "immutable";
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
  get headers() { const h = this[kHeaders]; return h !== null ? h : lazyResponseHeaders(this); }
  get type() { return this[kType]; }
  get url() { return this[kUrl]; }
  get redirected() { return this[kRedirected]; }
  get webSocket() { return this[kWebSocket]; }
  clone() {
    const r = new Response(INTERNAL);
    r[kStatus] = this[kStatus]; r[kStatusText] = this[kStatusText]; r[kHeaders] = new Headers(this.headers); r[kHeaders]._guard = this.headers._guard;
    r[kType] = this[kType]; r[kUrl] = this[kUrl]; r[kRedirected] = this[kRedirected];
    r[kBody] = cloneBody(this);
    return r;
  }
  get [Symbol.toStringTag]() { return "Response"; }
  [INSPECT]() { return `Response { status: ${this[kStatus]}, statusText: ${quoteString(this[kStatusText])}, headers: ${inspect(this.headers)}, bodyUsed: ${this.bodyUsed} }`; }
}

includeBody(Response);
internalDefaults(Response.prototype, [[kStatus, 200], [kStatusText, ""], [kType, "default"], [kUrl, ""], [kRedirected, false],
  [kHeaders, null], [kContentType, null], [kHeaderList, null], [kWebSocket, null]]);
expose("Response", Response);
