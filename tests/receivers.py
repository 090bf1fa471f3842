"""Receivers on loopback for the deliveries: a webhook endpoint that checks signatures and can
fail on purpose, and an MLLP listener that acknowledges, rejects or drops the connection."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

START, END = b"\x0b", b"\x1c\x0d"


@dataclass
class WebhookReceiver:
    secret: str = ""
    # Answer 500 to this many requests before accepting.
    fail_first: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    bad_signatures: int = 0
    url: str = ""

    def verify(self, headers: Any, body: bytes) -> bool:
        """As a receiver is told to: HMAC-SHA256 of "<timestamp>.<body>" under its secret must
        equal one of the header's comma-separated v1= signatures."""
        timestamp = headers.get("X-Webhook-Timestamp", "")
        expected = "v1=" + hmac.new(self.secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        given = [part.strip() for part in headers.get("X-Webhook-Signature", "").split(",")]
        return any(hmac.compare_digest(expected, one) for one in given)


@contextmanager
def webhook_receiver(**options: Any) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(**options)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                entry = {
                    "id": self.headers.get("X-Webhook-Id"),
                    "signature": self.headers.get("X-Webhook-Signature", ""),
                    "body": json.loads(body),
                }
                receiver.requests.append(entry)
                if not receiver.verify(self.headers, body):
                    receiver.bad_signatures += 1
                    status = 401
                elif receiver.fail_first > 0:
                    receiver.fail_first -= 1
                    status = 500
                else:
                    receiver.accepted.append(entry)
                    status = 204
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class MllpListener:
    port: int
    # Decides what to do with each message: "AA", "AE", "AR" or "drop" (read it, close unacknowledged).
    answer: Callable[[str, int], str] = lambda message, n: "AA"
    received: list[str] = field(default_factory=list)
    # Messages it acknowledged with AA, first copy only (by MSH-10).
    processed: list[str] = field(default_factory=list)
    # Builds the acknowledgement's bytes from the message and the code.
    ack_bytes: Callable[[str, str], bytes] = lambda message, code: ack(message, code)


def control_id(message: str) -> str:
    return message.split("\r")[0].split("|")[9]


def ack(message: str, code: str) -> bytes:
    msh = message.split("\r")[0].split("|")
    detail = "" if code == "AA" else f"test says {code}"
    header = f"MSH|^~\\&|{msh[4]}|{msh[5]}|{msh[2]}|{msh[3]}|20270101000000||ACK^{msh[8].split('^')[1]}^ACK"
    text = f"{header}|A{msh[9]}|P|2.5.1\rMSA|{code}|{msh[9]}|{detail}\r"
    return START + text.encode() + END


@contextmanager
def mllp_listener(port: int = 0, **options: Any) -> Iterator[MllpListener]:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(16)
    listener = MllpListener(port=sock.getsockname()[1], **options)
    stop = threading.Event()

    def serve() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = sock.accept()
            except (TimeoutError, OSError):
                continue
            with connection:
                data = b""
                while END not in data:
                    chunk = connection.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                if END not in data:
                    continue
                message = data[data.find(START) + 1 : data.find(END)].decode()
                listener.received.append(message)
                decision = listener.answer(message, len(listener.received))
                if decision == "drop":
                    continue
                if decision == "AA" and control_id(message) not in {control_id(m) for m in listener.processed}:
                    listener.processed.append(message)
                connection.sendall(listener.ack_bytes(message, decision))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener
    finally:
        stop.set()
        thread.join(timeout=5)
        sock.close()
