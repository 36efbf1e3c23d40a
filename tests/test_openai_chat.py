"""The OpenAI-compatible chat backend against real HTTP servers.

The model tests talk to `transformers serve`, transformers' own OpenAI-compatible server, run as a
separate process serving the bundled SmolLM2 (its dequantised folder, offline). The request format,
cancel, faults and secrets are tested on tiny stdlib servers in this process that answer scripted bytes
over real sockets and keep what they received. Either way the requests are sent by the real `openai`
client, through our backend.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import traceback
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from speech import words

from companion_settings import ConfigError
from machine.backends.dequantised_cache import dequantised_folder
from machine.backends.openai_chat import ChatServerError, OpenAIChatModel
from machine.ports import ChatMessage, MemoryContext, Sampling, reply_seed
from machine.settings import ChatModelSettings, ChatServerSettings, MachineSettings, load_settings

if TYPE_CHECKING:
    from machine.backends.transformers_chat import TransformersChatModel

REPO = Path(__file__).resolve().parents[1]
KEY_ENV = "COMPANION_TEST_CHAT_API_KEY"
STORY = [ChatMessage("user", "Tell me a long story about a dragon and a castle.")]


def chat_settings(base_url: str, **server: Any) -> ChatModelSettings:
    """The openai backend pointed at `base_url` (serving "smollm2" unless `model` says otherwise), with
    its key read from KEY_ENV."""
    server.setdefault("model", "smollm2")
    return ChatModelSettings(
        backend="openai", server=ChatServerSettings(base_url=base_url, api_key_env=KEY_ENV, **server)
    )


def sampling(max_new_tokens: int = 24, temperature: float = 0.7) -> Sampling:
    return Sampling(
        temperature=temperature, top_p=0.9, repetition_penalty=1.3, max_new_tokens=max_new_tokens, seed=0
    )


@pytest.fixture(autouse=True)
def no_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)


# --- the model server process --------------------------------------------------------------------------


class TransformersServe:
    """`transformers serve --force_model FOLDER` in a child process: the model it serves is named by its
    folder, its log goes to `log_path`."""

    def __init__(self, folder: Path, log_path: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self._log_path = log_path
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "transformers.commands.transformers_cli", "serve"),
                *("--force_model", str(folder), "--device", "cpu", "--dtype", "float32"),
                *("--host", "127.0.0.1", "--port", str(port), "--model_timeout", "3600"),
            ],
            env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.base_url = f"http://127.0.0.1:{port}/v1"
        self.model = str(folder)
        self._wait_until_listening(timeout=300)

    def _wait_until_listening(self, timeout: float) -> None:
        """An anti-hang bound, not a timing assert: on a 2-core machine it listens after about 7 s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"transformers serve exited ({self.process.returncode}); its log:\n{self.tail()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        pytest.fail(f"transformers serve did not listen within {timeout} s; its log:\n{self.tail()}")

    def settings(self) -> ChatModelSettings:
        return chat_settings(self.base_url, model=self.model)

    def tail(self) -> str:
        self._log.flush()
        return "\n".join(self._log_path.read_text(errors="replace").splitlines()[-30:])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


@pytest.fixture(scope="module")
def model_server(
    tmp_path_factory: pytest.TempPathFactory, settings: MachineSettings, chat_model: TransformersChatModel
) -> Iterator[TransformersServe]:
    """The bundled chat model served by `transformers serve` (loading `chat_model` first makes sure its
    dequantised folder exists)."""
    from machine.backends import bundled_models

    folder, gguf = bundled_models.smollm2_gguf()
    served = dequantised_folder(folder / gguf, settings.chat_model.cache_dir)
    assert served is not None and served.is_dir(), "the chat model saves its dequantised folder when loaded"
    server = TransformersServe(served, tmp_path_factory.mktemp("transformers-serve") / "serve.log")
    yield server
    server.stop()


# --- scripted servers in this process -------------------------------------------------------------------


@dataclass
class Scripted:
    """What a scripted server answers, and what it saw."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "text/event-stream"})
    hang_after_headers: bool = False
    """Send the headers and the body as one chunk, then wait for the client to leave."""
    silent: bool = False
    """Read the request and answer nothing, until the client leaves."""
    authorization: list[str | None] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    disconnected: threading.Event = field(default_factory=threading.Event)
    url: str = ""


def _scripted_handler(script: Scripted) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            script.requests.append(json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0")))))
            script.authorization.append(self.headers.get("Authorization"))
            if script.silent:
                self._wait_for_the_client()
                return
            self.send_response(script.status)
            for name, value in script.headers.items():
                self.send_header(name, value)
            if script.hang_after_headers:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self.wfile.write(b"%X\r\n%s\r\n" % (len(script.body), script.body))
                self._wait_for_the_client()
                return
            self.send_header("Content-Length", str(len(script.body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(script.body)

        def _wait_for_the_client(self) -> None:
            self.connection.settimeout(60)
            try:
                while self.connection.recv(1024):
                    pass
            except OSError:
                return
            script.disconnected.set()
            self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@pytest.fixture
def scripted() -> Iterator[Callable[..., Scripted]]:
    """Start a scripted server: ``scripted(status=..., body=..., ...)``; its `url` is the API root."""
    servers: list[ThreadingHTTPServer] = []

    def start(**script: Any) -> Scripted:
        answer = Scripted(**script)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _scripted_handler(answer))
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        answer.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        return answer

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def sse(*chunks: object) -> bytes:
    """Server-sent events: each dict as a data line of JSON, each str as a raw line."""
    lines = [f"data: {json.dumps(c)}" if isinstance(c, dict) else str(c) for c in chunks]
    return "".join(f"{line}\n\n" for line in lines).encode()


def delta(content: str | None = None, finish_reason: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish_reason}]}


# --- replies from the real model ------------------------------------------------------------------------


@pytest.mark.models
def test_served_model_streams_a_reply_in_pieces(model_server: TransformersServe) -> None:
    model = OpenAIChatModel(model_server.settings())
    messages = [ChatMessage("system", "You are Celeste, a friendly companion."), ChatMessage("user", "Hi!")]
    stream = model.stream(messages, threading.Event(), sampling(max_new_tokens=24))
    pieces = []
    with pytest.raises(StopIteration) as ended:
        while True:
            pieces.append(next(stream))

    assert len(pieces) >= 2 and all(isinstance(p, str) and p for p in pieces), pieces
    assert len(words("".join(pieces))) >= 2, pieces
    assert ended.value.value is False, "transformers serve ends every reply with finish_reason stop"


@pytest.mark.models
def test_max_tokens_cuts_the_served_reply(model_server: TransformersServe) -> None:
    reply = "".join(
        OpenAIChatModel(model_server.settings()).stream(STORY, threading.Event(), sampling(max_new_tokens=6))
    )
    assert 1 <= len(reply.split()) <= 6, reply  # every word is at least one token


@pytest.mark.models
@pytest.mark.parametrize("how", ["close", "cancel"])
def test_a_stopped_reply_leaves_the_server_ready_for_the_next(
    model_server: TransformersServe, how: str
) -> None:
    cancel = threading.Event()
    model = OpenAIChatModel(model_server.settings())
    stream = model.stream(STORY, cancel, sampling(max_new_tokens=200))
    assert next(stream) and next(stream)
    if how == "close":
        stream.close()
    else:
        cancel.set()
        assert list(stream) == [], "nothing more is yielded once cancel is set"

    hello = [ChatMessage("user", "Say hello.")]
    assert words("".join(model.stream(hello, threading.Event(), sampling(max_new_tokens=8))))


@pytest.mark.models
def test_thinker_speaks_sentences_from_the_served_model(
    model_server: TransformersServe, settings: MachineSettings
) -> None:
    from machine.app import build_reply_checker
    from machine.reply.thinking import Thinker

    class NoMemory:
        def context(self, user_input: str, speaker: str | None = None) -> MemoryContext:
            return MemoryContext()

        def remember(self, question: str, answer: str, speaker: str | None = None) -> None:
            return

        def touch(self) -> None:
            return

    chat = settings.chat_model.model_copy(
        update={"backend": "openai", "server": model_server.settings().server}
    )
    persona = settings.persona()
    checker = build_reply_checker(settings, persona)
    thinker = Thinker(
        OpenAIChatModel(chat), NoMemory(), persona, settings.bot_name, chat, settings.reply_checks, checker
    )
    sentences = list(thinker.sentences("Hi Celeste, how are you today?", threading.Event()))

    assert 1 <= len(sentences) <= chat.max_sentences + 1, sentences  # + the early first clause
    assert all(words(s) for s in sentences), sentences


# --- cancel, faults and secrets, on scripted servers ----------------------------------------------------


def test_the_request_is_built_from_the_settings(scripted: Callable[..., Scripted]) -> None:
    server = scripted(body=sse(delta("Hello"), delta(finish_reason="stop"), "data: [DONE]"))
    model = OpenAIChatModel(chat_settings(server.url))
    messages = [ChatMessage("system", "You are Celeste, a friendly companion."), ChatMessage("user", "Hi!")]
    assert list(model.stream(messages, threading.Event(), sampling(max_new_tokens=24))) == ["Hello"]

    body = server.requests[0]
    assert server.authorization == [None], "no key in the environment: no Authorization header"
    assert body["messages"] == [{"role": m.role, "content": m.content} for m in messages]
    assert (body["model"], body["stream"], body["max_tokens"]) == ("smollm2", True, 24)
    assert (body["temperature"], body["top_p"]) == (0.7, 0.9)
    assert body["seed"] == reply_seed(0, [f"{m.role}:{m.content}" for m in messages]), (
        "seed 0 with the prompt"
    )
    assert not {"stop", "frequency_penalty", "presence_penalty"} & body.keys()

    penalised = chat_settings(
        server.url, stop=(" end", "\nUser:"), frequency_penalty=0.5, presence_penalty=0.25
    )
    list(OpenAIChatModel(penalised).stream(messages, threading.Event(), sampling()))
    body = server.requests[1]
    assert (body["stop"], body["frequency_penalty"], body["presence_penalty"]) == (
        [" end", "\nUser:"],
        0.5,
        0.25,
    )


def test_closing_the_stream_closes_the_connection(scripted: Callable[..., Scripted]) -> None:
    server = scripted(body=sse(delta("Hello"), delta(" there")), hang_after_headers=True)
    stream = OpenAIChatModel(chat_settings(server.url, read_timeout_s=300)).stream(
        STORY, threading.Event(), sampling()
    )
    assert next(stream) == "Hello"
    stream.close()
    assert server.disconnected.wait(30), "the server did not see the connection close"


def test_each_prompt_sends_its_own_seed(scripted: Callable[..., Scripted]) -> None:
    """The configured seed is mixed with the prompt (issue #25 item 8): the same seed for every request
    makes a server that honours it draw every reply's first token with the same noise."""
    server = scripted(body=sse(delta("Hello"), delta(finish_reason="stop"), "data: [DONE]"))
    model = OpenAIChatModel(chat_settings(server.url))
    other = [*STORY[:-1], ChatMessage("user", "And what about dogs?")]
    for messages in (STORY, other, STORY):
        list(model.stream(messages, threading.Event(), sampling()))
    first, second, again = (request["seed"] for request in server.requests)
    assert first != second and first == again


def test_cancel_releases_a_read_that_is_waiting_for_the_server(scripted: Callable[..., Scripted]) -> None:
    server = scripted(body=sse(delta("Hello")), hang_after_headers=True)
    model = OpenAIChatModel(chat_settings(server.url, read_timeout_s=300))
    cancel, first = threading.Event(), threading.Event()
    pieces: list[str] = []

    def consume() -> None:
        for piece in model.stream(STORY, cancel, sampling()):
            pieces.append(piece)
            first.set()

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    assert first.wait(30)
    cancel.set()  # the consumer is now blocked reading a server that sends nothing more
    consumer.join(timeout=30)
    assert not consumer.is_alive(), "cancel did not release the blocked read"
    assert pieces == ["Hello"]
    assert server.disconnected.wait(30), "the server did not see the connection close"


def test_unreachable_server_is_reported() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free once closed: nothing listens there
    model = OpenAIChatModel(chat_settings(f"http://127.0.0.1:{port}/v1"))
    with pytest.raises(ChatServerError) as error:
        list(model.stream(STORY, threading.Event(), sampling()))
    assert str(error.value).startswith(
        f"machine.chat_model.server.base_url: cannot reach http://127.0.0.1:{port}/v1/chat/completions"
        " — is the server running?"
    )


def test_silent_server_hits_the_read_timeout(scripted: Callable[..., Scripted]) -> None:
    server = scripted(silent=True)
    model = OpenAIChatModel(chat_settings(server.url, read_timeout_s=0.5))
    with pytest.raises(
        ChatServerError, match=r"server\.read_timeout_s: the server at .* sent nothing for 0\.5 s"
    ):
        list(model.stream(STORY, threading.Event(), sampling()))


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"<html><body>Welcome to nginx!</body></html>", "a line that is not a server-sent event"),
        (sse("data: {not json"), "an event that is not JSON: '{not json'"),
        (sse({"choices": [{"delta": {"content": 5}}]}), r"\(choices\.0\.delta\.content:"),
        (sse({"object": "chat.completion.chunk"}), r"\(choices: Field required\)"),
        (sse(delta("Hi")), "ended its answer before the reply was finished"),
        (sse({"error": {"message": "CUDA out of memory"}}), "error mid-reply: .*CUDA out of memory"),
        (sse({"object": "error", "message": "prompt too long"}), "error mid-reply: prompt too long"),
        (sse('error: {"code": 500, "message": "context full"}'), "error mid-reply: .*context full"),
    ],
    ids=["html", "not-json", "wrong-type", "no-choices", "cut-off", "error", "vllm-error", "llama-error"],
)
def test_malformed_answer_is_reported(scripted: Callable[..., Scripted], body: bytes, problem: str) -> None:
    model = OpenAIChatModel(chat_settings(scripted(body=body).url))
    with pytest.raises(ChatServerError, match=rf"^machine\.chat_model\.server: .*{problem}"):
        list(model.stream(STORY, threading.Event(), sampling()))


def test_a_reply_cut_at_max_tokens_says_so(scripted: Callable[..., Scripted]) -> None:
    """The finish reason comes back as the stream's value: "length" is a reply cut mid-sentence."""
    for finish, cut in (("length", True), ("stop", False)):
        model = OpenAIChatModel(
            chat_settings(scripted(body=sse(delta("It was a long"), delta(None, finish))).url)
        )
        stream = model.stream(STORY, threading.Event(), sampling())
        assert next(stream) == "It was a long"
        with pytest.raises(StopIteration) as ended:
            next(stream)
        assert ended.value.value is cut, finish


def test_finished_reply_without_done_and_usage_chunks_are_accepted(scripted: Callable[..., Scripted]) -> None:
    body = sse(delta("Hello"), {"choices": [], "usage": {"completion_tokens": 2}}, delta(" there.", "stop"))
    model = OpenAIChatModel(chat_settings(scripted(body=body).url))
    assert list(model.stream(STORY, threading.Event(), sampling())) == ["Hello", " there."]


def test_a_begun_reply_is_asked_to_go_on_as_an_instruction(scripted: Callable[..., Scripted]) -> None:
    """OpenAI's API cannot continue a message: the answer from memory the reply began with goes to the
    system message as something already said, and the server is asked for what comes next."""
    server = scripted(body=sse(delta(" She sounds lovely.", "stop")))
    model = OpenAIChatModel(chat_settings(server.url))
    begun = [
        ChatMessage("system", "You are Celeste."),
        ChatMessage("user", "What is my cat called?"),
        ChatMessage("assistant", "Your cat is called Pickles."),
    ]
    assert list(model.stream(begun, threading.Event(), sampling())) == [" She sounds lovely."]

    sent = server.requests[0]["messages"]
    assert [m["role"] for m in sent] == ["system", "user"], "the last message is the user's again"
    assert sent[0]["content"].startswith("You are Celeste.\n\n")
    assert (
        '"Your cat is called Pickles."' in sent[0]["content"] and "without repeating it" in sent[0]["content"]
    )
    assert sent[1] == {"role": "user", "content": "What is my cat called?"}


def test_error_status_shows_the_body_and_never_the_headers(scripted: Callable[..., Scripted]) -> None:
    server = scripted(
        status=500,
        body=b'{"error": {"message": "model crashed:\\n out of memory"}}',
        headers={"Content-Type": "application/json", "X-Internal-Token": "header-secret-123"},
    )
    with pytest.raises(ChatServerError) as error:
        list(OpenAIChatModel(chat_settings(server.url)).stream(STORY, threading.Event(), sampling()))
    message = str(error.value)
    assert "answered 500 Internal Server Error: " in message
    assert "model crashed:\\n out of memory" in message
    assert "header-secret-123" not in message


def test_wrong_path_hints_at_the_base_url(scripted: Callable[..., Scripted]) -> None:
    server = scripted(status=404, body=b"404 page not found", headers={"Content-Type": "text/plain"})
    with pytest.raises(
        ChatServerError, match=r"answered 404 Not Found: 404 page not found; check .*base_url"
    ):
        list(OpenAIChatModel(chat_settings(server.url)).stream(STORY, threading.Event(), sampling()))


def test_api_key_is_sent_as_bearer_and_never_shown(
    scripted: Callable[..., Scripted], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    key = f"sk-test-{secrets.token_hex(12)}"
    monkeypatch.setenv(KEY_ENV, key)
    caplog.set_level(logging.DEBUG)
    echo = json.dumps(
        {"error": {"message": f"Incorrect API key provided: {key}.", "code": "invalid_api_key"}}
    )
    server = scripted(status=401, body=echo.encode(), headers={"Content-Type": "application/json"})
    model = OpenAIChatModel(chat_settings(server.url))
    with pytest.raises(ChatServerError) as error:
        list(model.stream(STORY, threading.Event(), sampling()))

    assert server.authorization == [f"Bearer {key}"]
    message = str(error.value)
    assert "answered 401 Unauthorized" in message and f"the key in ${KEY_ENV} was refused" in message
    assert "Incorrect API key provided: [API key]." in message
    shown = [message, "".join(traceback.format_exception(error.value)), caplog.text, repr(model)]
    assert not [text for text in shown if key in text]


def test_missing_api_key_is_named_when_the_server_wants_one(scripted: Callable[..., Scripted]) -> None:
    server = scripted(status=401, body=b"unauthorized", headers={"Content-Type": "text/plain"})
    with pytest.raises(ChatServerError, match=rf"; put the server's API key in \${KEY_ENV}$"):
        list(OpenAIChatModel(chat_settings(server.url)).stream(STORY, threading.Event(), sampling()))
    assert server.authorization == [None]


@pytest.mark.models
def test_prompt_tokens_are_over_estimated(
    chat_model: TransformersChatModel, settings: MachineSettings
) -> None:
    model = OpenAIChatModel(chat_settings("http://127.0.0.1:9/v1"))
    for messages in (
        [ChatMessage("system", settings.persona()), ChatMessage("user", "Hi!")],
        [ChatMessage("system", "Be brief."), ChatMessage("user", "The quick brown fox jumps. " * 40)],
    ):
        assert (
            chat_model.count_tokens(messages)
            <= model.count_tokens(messages)
            <= 2 * chat_model.count_tokens(messages)
        )


# --- settings and wiring --------------------------------------------------------------------------------


def load(tmp_path: Path, chat_model: dict[str, object]) -> MachineSettings:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"machine": {"chat_model": chat_model}}), encoding="utf-8")
    return load_settings(path)


def test_openai_backend_needs_the_served_model_name(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"machine\.chat_model: .*server\.model is required with backend openai"
    ):
        load(tmp_path, {"backend": "openai"})
    assert load(tmp_path, {"backend": "openai", "server": {"model": "llama3.2:3b"}}).chat_model.server.model


def test_server_url_must_be_http(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"machine\.chat_model\.server\.base_url: .*must be an http:// or https"
    ):
        load(tmp_path, {"server": {"base_url": "localhost:8080/v1"}})


def test_backend_is_chosen_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from machine.app import build_chat_model

    monkeypatch.setenv("MACHINE_CHAT_MODEL__BACKEND", "openai")
    monkeypatch.setenv("MACHINE_CHAT_MODEL__SERVER__MODEL", "qwen2.5:0.5b")
    monkeypatch.setenv("MACHINE_CHAT_MODEL__SERVER__BASE_URL", "http://127.0.0.1:11434/v1")
    settings = load(tmp_path, {})
    assert isinstance(build_chat_model(settings.chat_model), OpenAIChatModel)
    assert settings.chat_model.server.base_url == "http://127.0.0.1:11434/v1"
