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
  for (const [name, kind, returns, propsFromArgs] of methods) {
    let fn;
    if (kind === "sync") {
      fn = function (...args) {
        if (!returns) throw new TypeError(`${specName}.${name}: synchronous methods must return a binding object`);
        const handle = nextLocalHandle--;
        hostSend("callSync", handle, this[PROXY_HANDLE], name, encodeArgsForHost(args));
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
        return hostCall("call", this[PROXY_HANDLE], name, encodeArgsForHost(args)).catch((err) => {
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
