// bench/hello.py's streaming case: a ReadableStream of 1,000 small chunks as the response body.
const CHUNK = new TextEncoder().encode("a small chunk of a streamed body\n");

export default {
  fetch() {
    let sent = 0;
    const body = new ReadableStream({
      pull(controller) {
        if (sent++ < 1000) controller.enqueue(CHUNK);
        else controller.close();
      },
    });
    return new Response(body, { headers: { "content-type": "text/plain; charset=utf-8" } });
  },
};
