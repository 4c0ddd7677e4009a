// proxyToSandbox(request, env): Cloudflare's helper a worker calls first, so requests for a sandbox's
// preview URL (`{port}-{sandbox}-{token}.localhost:{devport}`, from sandbox.exposePort) are answered by
// the server in the sandbox. Other hosts resolve to null here, without a call to the host.

const PREVIEW_HOST = /^[a-z][a-z0-9+.-]*:\/\/\d{1,5}-[a-z0-9][a-z0-9-]*-[a-z0-9_]{1,63}\./i;

function proxyToSandbox(request, env) {
  if (!(request instanceof Request)) return Promise.reject(new TypeError("proxyToSandbox(request, env): request must be a Request"));
  if (!PREVIEW_HOST.test(request[kUrl])) return Promise.resolve(null);
  const handles = [];
  for (const value of Object.values(env || {})) {
    if (value && typeof value === "object" && value[PROXY_HANDLE] !== undefined) handles.push(value[PROXY_HANDLE]);
  }
  if (handles.length === 0) return Promise.resolve(null);
  let text;
  try { text = previewRequestText(request, handles); } catch (err) { return Promise.reject(err); }
  return hostCallText("previewProxy", text);
}

// A Request as the host rebuilds it (encodeForHost's __ploy_request, for binding methods that take
// one: wsConnect, terminal): method, url, headers, and the body when it is already in memory (the
// incoming request's always is).
function requestForHost(req) {
  return { method: req[kMethod], url: req[kUrl], headers: req.headers._list, body: bodyForHost(req) };
}

function bodyForHost(req) {
  const b = req[kBody];
  if (b === null) return null;
  if (b.stream !== null || req.bodyUsed) throw new TypeError("a Request passed to a binding must have an unread body that is not a stream");
  return b.bin !== undefined ? b.bin : typeof b.source === "string" ? bytesToLatin1(utf8Encode(b.source)) : bytesToLatin1(b.source);
}

// The request as lines (preview.py parses them): the handles (comma-separated), method, url, the body
// (a JSON-quoted latin-1 string, as it may hold NUL; empty for none), then each header's name and
// value. No header, method or URL holds a line break. Joined, not concatenated: a long `+` chain
// makes a rope string, which the host cannot read.
function previewRequestText(req, handles) {
  const body = bodyForHost(req);
  const parts = [handles.join(","), req[kMethod], req[kUrl], body === null ? "" : stringify(body)];
  const h = req[kHeaders];
  if (h === null) {
    if (req[kHeadersFlat] !== "") parts.push(req[kHeadersFlat]); // the incoming request's, as the host sent them
  } else {
    for (const [k, v] of h._list) parts.push(k, v);
  }
  return parts.join("\n");
}

// Host entry: the answer to previewProxy, a Response given as its parts instead of JSON (that codec
// is a tenth of a preview request's cost): headers as name and value lines, the body as latin-1 bytes
// (`bin`) or a host stream id (`sid`). `status` 0: no preview URL after all, resolves with null.
function settleResponse(id, status, statusText, headersFlat, bin, sid) {
  const p = pending.get(id);
  if (!p) return;
  pending.delete(id);
  currentRid = p.rid;
  if (status === 0) { p.resolve(null); return; }
  const r = new Response(INTERNAL);
  r[kStatus] = status;
  if (statusText !== "") r[kStatusText] = statusText;
  if (headersFlat !== "") r[kHeaderList] = pairsFromFlat(headersFlat, []);
  if (sid !== null) r[kBody] = { source: null, stream: hostReadableStream(sid) };
  else if (bin !== null) r[kBody] = { source: null, bin, stream: null };
  p.resolve(r);
}

expose("proxyToSandbox", proxyToSandbox);
