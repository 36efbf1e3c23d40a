"""A minimal OpenAI-compatible chat server for the tests, serving the real bundled model.

It is not llama.cpp's server: llama-cpp-python has no prebuilt wheel here, and building it from source on
a 2-core machine takes far longer than `make test` may. Instead this serves SmolLM2 through our own
:class:`TransformersChatModel`, speaking the wire protocol llama.cpp, vLLM and Ollama speak:
``POST /v1/chat/completions`` with ``"stream": true`` is answered over HTTP/1.1 with chunked
Server-Sent Events, ``data: {chat.completion.chunk}`` lines and a final ``data: [DONE]``. It honours
`max_tokens`, `temperature`, `top_p`, `seed` and `stop`, generates one reply at a time (one slot), and
stops generating as soon as a write finds the client gone.

What it does is observable: one JSON line per event on stdout: ``listening`` (with the port),
``request`` (the body, and whether an Authorization header came), then ``finished`` (finish_reason and
the content pieces sent) or ``disconnected`` (the client went away; printed once generation has stopped).

Run: ``PYTHONPATH=. python tests/openai_server.py [--port N] [--config FILE]``.
"""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from machine.ports import ChatMessage, Sampling
from machine.settings import load_settings

if TYPE_CHECKING:
    from machine.backends.transformers_chat import TransformersChatModel

REPO = Path(__file__).resolve().parents[1]
_print_lock = threading.Lock()


def emit(event: str, **fields: Any) -> None:
    """One event as a JSON line on stdout."""
    with _print_lock:
        print(json.dumps({"event": event, **fields}), flush=True)


def released(pieces: Iterator[str], stops: list[str]) -> Iterator[str]:
    """The text of `pieces` up to the first stop string; text that could be the start of one is held back
    until it cannot."""
    hold = max((len(s) for s in stops), default=1) - 1
    text, sent = "", 0
    for piece in pieces:
        text += piece
        cuts = [i for i in (text.find(s) for s in stops) if i >= 0]
        end = min(cuts) if cuts else len(text) - hold
        if end > sent:
            yield text[sent:end]
            sent = end
        if cuts:
            return
    if len(text) > sent:
        yield text[sent:]


class ChatServer(ThreadingHTTPServer):
    """The HTTP server and the model it serves."""

    def __init__(self, port: int, model: TransformersChatModel, repetition_penalty: float) -> None:
        super().__init__(("127.0.0.1", port), ChatHandler)
        self.model = model
        self.repetition_penalty = repetition_penalty
        self.slot = threading.Lock()


class ChatHandler(BaseHTTPRequestHandler):
    """``POST /v1/chat/completions``, streamed."""

    protocol_version = "HTTP/1.1"
    server: ChatServer

    def do_POST(self) -> None:
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._error(404, f"no route {self.path}")
            return
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            messages = [ChatMessage(m["role"], m["content"]) for m in body["messages"]]
            stops = body.get("stop") or []
            stops = [stops] if isinstance(stops, str) else list(stops)
            sampling = Sampling(
                temperature=float(body.get("temperature", 1.0)),
                top_p=float(body.get("top_p", 1.0)),
                repetition_penalty=self.server.repetition_penalty,
                max_new_tokens=int(body.get("max_tokens", 256)),
                seed=body.get("seed"),
            )
        except (ValueError, KeyError, TypeError) as exc:
            self._error(400, f"bad request: {exc!r}")
            return
        if body.get("stream") is not True:
            self._error(400, "this server only streams: send stream true")
            return
        emit("request", body=body, authorization="Authorization" in self.headers)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        with self.server.slot:
            self._reply(messages, stops, sampling)

    def _reply(self, messages: list[ChatMessage], stops: list[str], sampling: Sampling) -> None:
        cancel = threading.Event()
        pieces = self.server.model.stream(messages, cancel, sampling)
        sent, text, reason = 0, "", ""
        try:
            self._event({"role": "assistant", "content": ""}, None)
            for piece in released(pieces, stops):
                self._event({"content": piece}, None)
                sent, text = sent + 1, text + piece
            # the model generated at most max_tokens; re-encoding its text can merge one or two tokens
            generated = len(self.server.model.tokenizer.encode(text, add_special_tokens=False))
            reason = "length" if generated >= sampling.max_new_tokens - 1 else "stop"
            self._event({}, reason)
            self._chunk(b"data: [DONE]\n\n")
            self._chunk(b"")
        except ConnectionError:
            cancel.set()
        finally:
            pieces.close()  # joins the generation thread: once it returns, generation has stopped
        if reason and not cancel.is_set():
            emit("finished", finish_reason=reason, sent=sent)
        else:
            emit("disconnected", sent=sent)
            self.close_connection = True

    def _event(self, delta: dict[str, str], finish_reason: str | None) -> None:
        chunk = {
            "id": "chatcmpl-test",
            "object": "chat.completion.chunk",
            "model": "bundled",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }
        self._chunk(f"data: {json.dumps(chunk)}\n\n".encode())

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))

    def _error(self, status: int, message: str) -> None:
        payload = json.dumps({"error": {"message": message, "code": status}}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def main() -> None:
    """Load the configured chat model, then serve it until terminated."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 = any free port (printed when ready)")
    parser.add_argument("--config", type=Path, default=REPO / "conf" / "default.yaml")
    args = parser.parse_args()
    settings = load_settings(args.config).chat_model

    from machine.backends.transformers_chat import TransformersChatModel

    server = ChatServer(args.port, TransformersChatModel(settings), settings.repetition_penalty)
    emit("listening", port=server.server_address[1])
    server.serve_forever()


if __name__ == "__main__":
    main()
