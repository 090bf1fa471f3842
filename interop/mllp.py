"""A minimal MLLP client: one message, one acknowledgement, per connection.

MLLP frames a message as <VT> message <FS><CR>. A failure to connect means nothing was sent
(safe to retry); a connection that drops or times out after the message went means it may have
arrived, and the resend carries the same MSH-10 so the receiver can drop the repeat.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

START, END = b"\x0b", b"\x1c\x0d"
MAX_ACK_BYTES = 64 * 1024


class NotSent(Exception):
    """The receiver could not be reached: the message did not leave."""


class NoAck(Exception):
    """The message went but no acknowledgement came back (dropped, timed out, garbled)."""


@dataclass(frozen=True)
class Ack:
    code: str  # AA, AE, AR (or CA, CE, CR in enhanced mode)
    control_id: str
    text: str


def frame(message: str) -> bytes:
    return START + message.encode("utf-8") + END


def parse_ack(raw: bytes) -> Ack:
    """The MSA segment of an acknowledgement."""
    text = raw.decode("utf-8", errors="replace").strip("\x0b\x1c\r\n")
    for segment in text.replace("\n", "\r").split("\r"):
        fields = segment.split("|")
        if fields[0] == "MSA" and len(fields) > 2:
            return Ack(fields[1], fields[2], fields[3] if len(fields) > 3 else "")
    raise NoAck("the acknowledgement has no MSA segment")


def send(host: str, port: int, message: str, *, timeout: float) -> Ack:
    """Send one message and wait for its acknowledgement, all within ``timeout`` seconds from
    the connection (a receiver trickling its answer cannot hold the sender longer)."""
    try:
        connection = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise NotSent(type(exc).__name__) from exc
    deadline = time.monotonic() + timeout
    with connection:
        connection.settimeout(timeout)
        try:
            connection.sendall(frame(message))
        except OSError as exc:
            raise NoAck(f"sending: {type(exc).__name__}") from exc
        received = b""
        try:
            while END not in received:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise NoAck("the acknowledgement took too long")
                connection.settimeout(left)
                chunk = connection.recv(4096)
                if not chunk:
                    raise NoAck("the receiver closed the connection before acknowledging")
                received += chunk
                if len(received) > MAX_ACK_BYTES:
                    raise NoAck("the acknowledgement is too long")
        except OSError as exc:
            raise NoAck(f"waiting for the acknowledgement: {type(exc).__name__}") from exc
    return parse_ack(received[received.find(START) + 1 : received.find(END)])
