// Byte streams that live in Python (a fetch response body, a sandbox execStream) read as ReadableStreams.

// A ReadableStream pulling from a Python AsyncIterator[bytes] (a fetch body, a sandbox execStream).
// highWaterMark 0: nothing is read from the host before someone asks (backpressure end to end).
function hostReadableStream(sid) {
  const rs = new ReadableStream({
    pull(c) {
      return hostCall("read", sid).then((chunk) => {
        if (chunk === null) c.close();
        else c.enqueue(chunk);
      });
    },
    cancel() {
      cancelHostStream(sid);
    },
  }, { highWaterMark: 0 });
  rs._hostSid = sid;
  // A body nobody reads (e.g. `await fetch(url)` with the response ignored) must not hold the
  // host's connection forever: closing an already finished or handed-over stream is a no-op.
  unreadStreams.register(rs, sid);
  return rs;
}
const unreadStreams = new FinalizationRegistry((sid) => cancelHostStream(sid));

// The one sender of cancelStream, for fetch's abort paths too.
function cancelHostStream(sid) {
  hostSend("cancelStream", sid);
}
