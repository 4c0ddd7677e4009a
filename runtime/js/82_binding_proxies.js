// Binding proxies: the objects in `env` (and those their methods return) whose methods run on the host.
// Built generically from the ObjectSpec the host sends; nothing here knows about sandboxes.

const specs = new Map(); // spec name -> [[method, kind, returns], ...]
const protos = new Map(); // spec name -> prototype
let nextLocalHandle = -1; // handles allocated by JS (results of sync methods) are negative
const released = new FinalizationRegistry((handle) => hostSend("release", handle));
const handleObjects = new Map(); // handle -> WeakRef(proxy), so late props can be filled in

function protoFor(specName) {
  let proto = protos.get(specName);
  if (proto) return proto;
  const methods = specs.get(specName);
  if (!methods) throw new TypeError(`unknown binding type ${specName}`);
  proto = {};
  for (const [name, kind, returns, propsFromArgs, streamArgs] of methods) {
    let fn;
    if (kind === "sync") {
      fn = function (...args) {
        if (!returns) throw new TypeError(`${specName}.${name}: synchronous methods must return a binding object`);
        const handle = nextLocalHandle--;
        hostSend("callSync", handle, this[PROXY_HANDLE], name, encodeForHost(args));
        // Props the spec says equal the arguments are known now; the rest arrive with the host's answer.
        const props = {};
        (propsFromArgs || []).forEach((p, i) => { props[p] = args[i]; });
        return makeProxy({ handle, spec: returns, props });
      };
    } else {
      fn = function (...args) {
        // The host's answer arrives on a fresh stack; keep the caller's, so an uncaught binding error
        // points at the user's `await sandbox.x()` line instead of ploy's bridge.
        const site = new Error();
        if (streamArgs && streamArgs.length) {
          args = args.slice();
          for (const i of streamArgs) if (i < args.length) args[i] = streamArgument(args[i], `${specName}.${name}`);
        }
        return hostCall("call", this[PROXY_HANDLE], name, encodeForHost(args)).catch((err) => {
          if (err instanceof Error && typeof site.stack === "string") err.stack = site.stack;
          throw err;
        });
      };
    }
    Object.defineProperty(fn, "name", { value: name });
    Object.defineProperty(proto, name, { value: fn, writable: true, configurable: true, enumerable: false });
  }
  Object.defineProperty(proto, Symbol.toStringTag, { value: specName });
  protos.set(specName, proto);
  return proto;
}

// An argument the spec marks as a possible stream: a ReadableStream or an async iterable becomes a
// handle the host pulls one chunk at a time (so a 1 GB upload never sits in this heap); anything else
// is sent as it is. A host stream passed on untouched (a fetch body, another binding's stream) goes
// back to the host as it is, and its bytes never enter JS.
function streamArgument(v, where) {
  if (v instanceof ReadableStream) {
    if (v.locked) throw new TypeError(`${where}: the ReadableStream is locked (already being read)`);
    if (v._hostSid !== undefined && !v._disturbed) {
      v._disturbed = true;
      v._reader = { _readRequests: [], _closed: deferred() }; // locked for good: the host owns it now
      return { __ploy_hoststream: v._hostSid };
    }
    return { __ploy_jsstream: registerJsStream(v.getReader(), currentRid, where) };
  }
  if (v !== null && typeof v === "object" && typeof v[Symbol.asyncIterator] === "function") {
    const it = v[Symbol.asyncIterator]();
    const reader = {
      read() {
        try { return Promise.resolve(it.next()); } catch (err) { return Promise.reject(err); }
      },
      cancel(reason) {
        try { return Promise.resolve(typeof it.return === "function" ? it.return(reason) : undefined); } catch (err) { return Promise.reject(err); }
      },
    };
    return { __ploy_jsstream: registerJsStream(reader, currentRid, where) };
  }
  return v;
}

function makeProxy(desc) {
  if (desc.methods) specs.set(desc.spec, desc.methods);
  const obj = Object.create(protoFor(desc.spec));
  Object.defineProperty(obj, PROXY_HANDLE, { value: desc.handle });
  Object.assign(obj, desc.props || {});
  released.register(obj, desc.handle);
  if (desc.handle < 0) handleObjects.set(desc.handle, new WeakRef(obj));
  return obj;
}

// Host entry: props of an object a sync method returned, known once the host ran the method.
function setProps(handle, json) {
  const ref = handleObjects.get(handle);
  handleObjects.delete(handle);
  const obj = ref && ref.deref();
  if (obj) Object.assign(obj, JSON.parse(json));
}
