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
  let desc;
  try { desc = requestForHost(request); } catch (err) { return Promise.reject(err); }
  // a plain object, not encodeForHost's replacer walk: this runs on every preview request
  return hostCall("previewProxy", desc, handles);
}

// A Request as the host rebuilds it (encodeForHost's __ploy_request): method, url, headers, and the
// body when it is already in memory (the incoming request's always is).
function requestForHost(req) {
  const b = req[kBody];
  let body = null;
  if (b !== null) {
    if (b.stream !== null || req.bodyUsed) throw new TypeError("a Request passed to a binding must have an unread body that is not a stream");
    body = b.bin !== undefined ? b.bin : typeof b.source === "string" ? bytesToLatin1(utf8Encode(b.source)) : bytesToLatin1(b.source);
  }
  return { method: req[kMethod], url: req[kUrl], headers: req.headers._list, body };
}

expose("proxyToSandbox", proxyToSandbox);
