// CompressionStream and DecompressionStream (the Compression Streams standard): gzip, deflate and
// deflate-raw, done by the host's zlib one chunk at a time. Each stream owns a (de)compressor on the
// host, named by `id`, freed when the stream finishes, fails, is cancelled or is collected.

const COMPRESSION_FORMATS = ["deflate", "deflate-raw", "gzip"];
const zlibFreed = new FinalizationRegistry((id) => hostSend("zlibFree", id));
let nextZlibId = 1;

function zlibTransform(mode, format) {
  format = String(format);
  if (!COMPRESSION_FORMATS.includes(format)) {
    throw new TypeError(`Unsupported compression format: '${format}' (expected "deflate", "deflate-raw" or "gzip")`);
  }
  const id = nextZlibId++;
  const name = mode === "compress" ? "CompressionStream" : "DecompressionStream";
  let done = false;
  const finish = () => {
    done = true;
    zlibFreed.unregister(transformer);
  };
  const run = (data, final, controller) =>
    hostCall("zlib", id, mode, format, data, final).then(
      (chunks) => {
        if (final) finish();
        for (const c of chunks) controller.enqueue(c);
      },
      (err) => {
        finish(); // the host freed it when it failed
        throw err;
      },
    );
  const transformer = {
    transform(chunk, controller) {
      let bytes;
      try {
        bytes = toU8(chunk);
      } catch {
        throw new TypeError(`${name}: chunks must be an ArrayBuffer or ArrayBufferView`);
      }
      if (bytes.buffer instanceof SharedArrayBuffer) throw new TypeError(`${name}: chunks must not be backed by a SharedArrayBuffer`);
      return run(bytesToLatin1(bytes), false, controller);
    },
    flush(controller) {
      return run("", true, controller);
    },
    cancel() {
      if (!done) {
        finish();
        hostSend("zlibFree", id);
      }
    },
  };
  // The transformer lives exactly as long as the stream pair (pipeThrough drops the
  // CompressionStream object itself at once).
  zlibFreed.register(transformer, id, transformer);
  return new TransformStream(transformer);
}

class CompressionStream {
  #ts;
  constructor(format) {
    if (format === undefined) throw new TypeError("CompressionStream requires a format");
    this.#ts = zlibTransform("compress", format);
  }
  get readable() { return this.#ts.readable; }
  get writable() { return this.#ts.writable; }
  get [Symbol.toStringTag]() { return "CompressionStream"; }
}

class DecompressionStream {
  #ts;
  constructor(format) {
    if (format === undefined) throw new TypeError("DecompressionStream requires a format");
    this.#ts = zlibTransform("decompress", format);
  }
  get readable() { return this.#ts.readable; }
  get writable() { return this.#ts.writable; }
  get [Symbol.toStringTag]() { return "DecompressionStream"; }
}

expose("CompressionStream", CompressionStream);
expose("DecompressionStream", DecompressionStream);
