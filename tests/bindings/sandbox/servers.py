"""Servers the reach tests run inside a sandbox (python3 stdlib only, as the image has it).

ECHO_SERVER answers HTTP and WebSockets on one port:
  GET  /hello            200 "hello from the sandbox"
  *    /echo             200 JSON {method, path, headers, body}
  GET  /redirect         302 Location: /hello
  GET  /status/NNN       that status
  GET  /stream           5 chunks, 50 ms apart (chunked)
  GET  /big              2 MB
  GET  /ws (Upgrade)     a WebSocket echo (text and binary), closes with the code it is sent "close:NNNN"
"""

ECHO_SERVER = r"""
import base64, hashlib, json, socket, struct, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ws_frames(sock):
    buf = b""
    def need(n):
        nonlocal buf
        while len(buf) < n:
            chunk = sock.recv(65536)
            if not chunk:
                raise EOFError
            buf += chunk
        out, buf = buf[:n], buf[n:]
        return out
    while True:
        b0, b1 = need(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", need(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", need(8))[0]
        mask = need(4) if b1 & 0x80 else b"\0\0\0\0"
        data = bytes(c ^ mask[i % 4] for i, c in enumerate(need(n)))
        yield b0 & 0x0F, data


def ws_send(sock, op, data):
    n = len(data)
    head = bytes([0x80 | op]) + (bytes([n]) if n < 126 else b"\x7e" + struct.pack(">H", n) if n < 65536 else b"\x7f" + struct.pack(">Q", n))
    sock.sendall(head + data)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        sys.stderr.write("%s %s\n" % (self.command, self.path))

    def reply(self, status, body, ctype="text/plain", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        if self.headers.get("Upgrade", "").lower() == "websocket" and self.path == "/ws":
            return self.websocket()
        if self.path == "/hello":
            return self.reply(200, b"hello from the sandbox", extra=[("X-Sandbox", "yes")])
        if self.path == "/redirect":
            return self.reply(302, b"", extra=[("Location", "/hello")])
        if self.path.startswith("/status/"):
            return self.reply(int(self.path.rsplit("/", 1)[1]), b"status")
        if self.path == "/big":
            return self.reply(200, b"x" * (2 * 1024 * 1024))
        if self.path == "/stream":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(5):
                part = ("part %d\n" % i).encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.flush()
                time.sleep(0.05)
            self.wfile.write(b"0\r\n\r\n")
            return
        return self.echo()

    def echo(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        doc = {"method": self.command, "path": self.path, "headers": dict(self.headers.items()), "body": body.decode("latin-1")}
        self.reply(200, json.dumps(doc).encode(), "application/json")

    do_POST = do_PUT = do_DELETE = do_PATCH = echo

    def do_HEAD(self):
        return self.reply(200, b"hello from the sandbox")

    def websocket(self):
        key = self.headers["Sec-WebSocket-Key"]
        accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        protocols = self.headers.get("Sec-WebSocket-Protocol")
        if protocols:
            self.send_header("Sec-WebSocket-Protocol", protocols.split(",")[0].strip())
        self.end_headers()
        self.wfile.flush()
        sock = self.connection
        try:
            for op, data in ws_frames(sock):
                if op == 8:
                    ws_send(sock, 8, data[:2] or struct.pack(">H", 1000))
                    return
                if op == 9:
                    ws_send(sock, 10, data)
                elif op == 1 and data.startswith(b"close:"):
                    ws_send(sock, 8, struct.pack(">H", int(data[6:])))
                    return
                elif op in (1, 2):
                    ws_send(sock, op, data)
        except (EOFError, OSError):
            pass
        self.close_connection = True


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), Handler).serve_forever()
"""
