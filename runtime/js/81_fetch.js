// fetch() (Fetch Standard): http(s) requests go to the host, data: URLs are answered here.

// Fetch Standard, "port blocking": ports of other protocols a request must not reach
const BAD_PORTS = new Set([0, 1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102,
  103, 104, 109, 110, 111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161, 179, 389, 427, 465, 512, 513, 514, 515, 526,
  530, 531, 532, 540, 548, 554, 556, 563, 587, 601, 636, 989, 990, 993, 995, 1719, 1720, 1723, 2049, 3659, 4045, 4190,
  5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080]);

function fetchImpl(input, init) {
  let req;
  try {
    req = new Request(input, init);
  } catch (err) {
    return Promise.reject(err);
  }
  const signal = req[kSignal];
  if (signal && signal.aborted) return Promise.reject(signal.reason);
  const scheme = req[kUrl].slice(0, req[kUrl].indexOf(":"));
  if (scheme === "data") return dataUrlResponse(req[kUrl]);
  if (scheme !== "http" && scheme !== "https") return Promise.reject(new TypeError(`fetch: unsupported URL scheme "${scheme}:"`));
  if ((req.headers.get("upgrade") || "").toLowerCase() === "websocket") return websocketFetch(req);
  const port = new URL(req[kUrl]).port;
  if (port !== "" && BAD_PORTS.has(Number(port))) return Promise.reject(new TypeError(`fetch: port ${port} is blocked (Fetch Standard "bad port")`));
  const bodyP = req[kBody] === null ? Promise.resolve(null) : consumeBody(req, (v) => v);
  return bodyP.then((body) => {
    const id = nextOpId; // the id hostCall is about to use, so abort can name it
    const p = hostCall("fetch", encodeForHost({
      url: req[kUrl],
      method: req[kMethod],
      headers: req[kHeaders]._list,
      body: body === null ? null : typeof body === "string" ? utf8Encode(body) : body.bin !== undefined ? { __ploy_bytes: body.bin } : body,
      redirect: req[kRedirect],
    }));
    if (!signal) return p.then((meta) => fetchResponse(meta, null));
    return new Promise((resolve, reject) => {
      let aborted = false;
      const onAbort = (reason) => {
        aborted = true;
        pending.delete(id); // the host cancels the op and never settles it
        hostSend("abortOp", id);
        reject(reason);
      };
      signal._algorithms.add(onAbort);
      p.then((meta) => {
        signal._algorithms.delete(onAbort);
        if (aborted) { if (meta.stream !== null) cancelHostStream(meta.stream); return; }
        const resp = fetchResponse(meta, signal);
        resolve(resp);
      }, (err) => { signal._algorithms.delete(onAbort); if (!aborted) reject(err); });
    });
  });
}

// Fetch's "data: URL processor", answered without the host.
function dataUrlResponse(url) {
  const hash = url.indexOf("#");
  const input = (hash < 0 ? url : url.slice(0, hash)).slice(5);
  const comma = input.indexOf(",");
  if (comma < 0) return Promise.reject(new TypeError("fetch: a data: URL needs a comma"));
  let mime = input.slice(0, comma).replace(/^[\t\n\f\r ]+|[\t\n\f\r ]+$/g, "");
  let body = bytesToLatin1(pctDecodeBytes(utf8Encode(input.slice(comma + 1))));
  const b64 = /;[ ]*base64$/i.exec(mime);
  if (b64) {
    mime = mime.slice(0, b64.index);
    try { body = atob(body); } catch { return Promise.reject(new TypeError("fetch: invalid base64 in a data: URL")); }
  }
  if (mime.startsWith(";")) mime = "text/plain" + mime;
  const m = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+)\/([!#$%&'*+\-.^_`|~0-9A-Za-z]+)[\t\n\f\r ]*((?:;.*)?)$/.exec(mime);
  let type = "text/plain;charset=US-ASCII";
  if (m) {
    type = `${m[1]}/${m[2]}`.toLowerCase();
    for (const param of m[3].split(";").slice(1)) {
      const eq = param.indexOf("=");
      if (eq <= 0) continue;
      const name = param.slice(0, eq).trim().toLowerCase();
      if (name) type += `;${name}=${param.slice(eq + 1)}`;
    }
  }
  const r = new Response(INTERNAL);
  r[kStatus] = 200; r[kStatusText] = "OK"; r[kType] = "basic"; r[kUrl] = url;
  r[kHeaders] = headersFromFlat(`content-type\n${type}`, "immutable");
  r[kBody] = { source: null, bin: body, stream: null };
  return Promise.resolve(r);
}

function fetchResponse(meta, signal) {
  const r = new Response(INTERNAL);
  r[kStatus] = meta.status;
  r[kStatusText] = meta.statusText;
  r[kHeaders] = new Headers();
  r[kHeaders]._list = meta.headers;
  r[kHeaders]._guard = "immutable";
  r[kUrl] = meta.url;
  r[kRedirected] = meta.redirected;
  r[kType] = "basic";
  if (meta.stream !== null) {
    const stream = hostReadableStream(meta.stream);
    r[kBody] = { source: null, stream };
    if (signal) {
      const onAbort = (reason) => {
        stream._controller.error(reason);
        cancelHostStream(meta.stream);
      };
      signal._algorithms.add(onAbort);
    }
  }
  return r;
}

expose("fetch", function fetch(input, init) {
  return fetchImpl(input, init);
});
