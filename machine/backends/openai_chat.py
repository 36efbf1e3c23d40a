"""Replies from a chat model that an OpenAI-compatible server serves (vLLM, llama.cpp server, Ollama,
``transformers serve``, ...).

The request is built and sent by the official `openai` client: `POST {base_url}/chat/completions` with
``"stream": true``. The server answers with Server-Sent Events, ``data: {json}`` lines whose
``choices[0].delta.content`` are the pieces of the reply, ending with ``data: [DONE]``. Those lines are
read here rather than by the client's own stream, which passes over llama.cpp's ``error:`` events and
the pages of servers that are not an OpenAI API, so that each gets an error that says what went wrong.
Closing the stream, or setting `cancel` even while a read is waiting, closes the connection at once:
that is how these servers learn to stop generating.

The API key, if the server wants one, is read from the environment variable named by
`machine.chat_model.server.api_key_env` and sent as ``Authorization: Bearer``; it is never logged and is
blanked out of any server text that an error message quotes.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import threading
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any, cast

import httpx
import openai
from openai.types.chat import ChatCompletionMessageParam
from pydantic import BaseModel, ValidationError

from machine.ports import ChatMessage, ReplyStream, Sampling, reply_seed
from machine.settings import ChatModelSettings

log = logging.getLogger(__name__)

_SETTING = "machine.chat_model.server"
_EXCERPT_CHARS = 200
_ERROR_BODY_BYTES = 4096
_CANCEL_POLL_S = 0.02
_CHARS_PER_TOKEN = 3
"""English text averages about 4 characters a token; counting 3 over-estimates, so a trimmed prompt fits."""
_TOKENS_PER_MESSAGE = 4
"""Chat-template markup around each message (role and turn markers)."""
_SSE_FIELDS = {"", "event", "id", "retry"}
"""Server-sent event fields that carry no reply text ("" is a comment line, such as a keep-alive)."""


class ChatServerError(RuntimeError):
    """The chat server could not be reached, refused the request, or answered something unreadable."""


class _Delta(BaseModel):
    content: str | None = None


class _Choice(BaseModel):
    delta: _Delta = _Delta()
    finish_reason: str | None = None


class _Chunk(BaseModel):
    """One ``chat.completion.chunk``; fields this client does not use are ignored."""

    choices: list[_Choice]


class OpenAIChatModel:
    """A chat model behind an OpenAI-compatible ``/chat/completions`` endpoint; `stream` yields the text
    pieces as the server sends them."""

    def __init__(self, settings: ChatModelSettings) -> None:
        server = settings.server
        if server.model is None:
            raise ChatServerError(f"{_SETTING}.model: name the model the server serves")
        self._server = server
        self._model_name = server.model
        self._url = f"{server.base_url.rstrip('/')}/chat/completions"
        self._key = os.environ.get(server.api_key_env, "").strip()
        self._client = openai.OpenAI(
            api_key=self._key,  # "" sends no Authorization header
            base_url=server.base_url,
            organization="",  # not from $OPENAI_ORG_ID: this is not necessarily OpenAI's service
            project="",
            timeout=httpx.Timeout(server.read_timeout_s, connect=server.connect_timeout_s),
            max_retries=0,  # a reply that comes late is no use; the turn's strikes decide what next
        )
        log.info(
            "chat model %s served at %s (%s)",
            server.model,
            server.base_url,
            f"API key from ${server.api_key_env}"
            if self._key
            else f"no API key: ${server.api_key_env} unset",
        )

    def count_tokens(self, messages: list[ChatMessage]) -> int:
        """An estimate, since the tokenizer is on the server; it counts high, so a prompt trimmed to a
        token budget with it fits."""
        return sum(_TOKENS_PER_MESSAGE + -(-len(m.content) // _CHARS_PER_TOKEN) for m in messages)

    def stream(self, messages: list[ChatMessage], cancel: threading.Event, sampling: Sampling) -> ReplyStream:
        """Yield text pieces as the server streams them. The connection is closed, and so generation
        stopped, when the reply is finished, when the consumer closes this generator, or as soon as
        `cancel` is set (also while waiting for the server). Returns True when the server cut the reply at
        `max_new_tokens` (finish_reason "length")."""
        if cancel.is_set():
            return False
        server = self._server
        try:
            with (
                self._client.chat.completions.with_streaming_response.create(
                    **self._body(messages, sampling)
                ) as answer,
                _CancelWatch(answer.http_response, cancel),
            ):
                return (yield from self._pieces(answer.iter_lines(), cancel, sampling))
        except openai.APIStatusError as refused:
            raise self._refused(refused.response) from None
        except openai.APITimeoutError as exc:
            if isinstance(exc.__cause__, httpx.ConnectTimeout):
                raise ChatServerError(
                    f"{_SETTING}.connect_timeout_s: no connection to {self._url} within "
                    f"{server.connect_timeout_s:g} s — is the server running?"
                ) from None
            raise self._silent() from None
        except openai.APIConnectionError as exc:
            if cancel.is_set():
                return False
            raise ChatServerError(
                f"{_SETTING}.base_url: cannot reach {self._url} — is the server running? "
                f"({self._excerpt(exc.__cause__ or exc)})"
            ) from None
        except httpx.TimeoutException:
            if cancel.is_set():
                return False
            raise self._silent() from None
        except httpx.TransportError as exc:
            if cancel.is_set():
                return False  # the cancel watch shut the connection down
            raise ChatServerError(
                f"{_SETTING}.base_url: the connection to {self._url} broke off mid-reply "
                f"({type(exc).__name__}: {self._excerpt(exc)})"
            ) from None

    def _silent(self) -> ChatServerError:
        return ChatServerError(
            f"{_SETTING}.read_timeout_s: the server at {self._url} sent nothing for "
            f"{self._server.read_timeout_s:g} s; raise it for a slow server"
        )

    def _body(self, messages: list[ChatMessage], sampling: Sampling) -> dict[str, Any]:
        server = self._server
        messages = _begun_as_instruction(messages)
        body: dict[str, Any] = {
            "model": self._model_name,
            "messages": [_message(m) for m in messages],
            "stream": True,
            "max_tokens": sampling.max_new_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
        }
        if sampling.seed is not None:
            body["seed"] = reply_seed(sampling.seed, [f"{m.role}:{m.content}" for m in messages])
        if server.stop:
            body["stop"] = list(server.stop)
        if server.frequency_penalty:
            body["frequency_penalty"] = server.frequency_penalty
        if server.presence_penalty:
            body["presence_penalty"] = server.presence_penalty
        return body

    def _pieces(self, lines: Iterable[str], cancel: threading.Event, sampling: Sampling) -> ReplyStream:
        finish: str | None = None
        for field, data in self._events(lines):
            if cancel.is_set():
                return False
            if field == "error":
                raise ChatServerError(
                    f"{_SETTING}: the server reported an error mid-reply: {self._excerpt(data)}"
                )
            if data == "[DONE]":
                break
            chunk = self._chunk(data)
            if not chunk.choices:
                continue  # e.g. a usage report
            choice = chunk.choices[0]
            finish = choice.finish_reason or finish
            if choice.delta.content:
                yield choice.delta.content
        else:
            if finish is None and not cancel.is_set():
                raise ChatServerError(
                    f"{_SETTING}: the server at {self._url} ended its answer before the reply was finished "
                    "(no finish_reason, no data: [DONE])"
                )
        if finish == "length":
            log.info("the server cut the reply at max_tokens=%d", sampling.max_new_tokens)
        elif finish not in (None, "stop"):
            log.warning("the server ended the reply early: finish_reason=%s", finish)
        return finish == "length"

    def _events(self, lines: Iterable[str]) -> Iterator[tuple[str, str]]:
        """(field, data) of each server-sent event: "data", or "error" (llama.cpp's mid-stream error)."""
        field = "data"
        data: list[str] = []
        for line in lines:
            if not line:
                if data:
                    yield field, "\n".join(data)
                field, data = "data", []
                continue
            name, _, value = line.partition(":")
            if name in ("data", "error"):
                field = name
                data.append(value.removeprefix(" "))
            elif name not in _SSE_FIELDS:
                raise ChatServerError(
                    f"{_SETTING}: the server at {self._url} sent a line that is not a server-sent event: "
                    f"{self._excerpt(line)!r}; is base_url an OpenAI-compatible API that streams?"
                )
        if data:
            yield field, "\n".join(data)

    def _chunk(self, data: str) -> _Chunk:
        try:
            decoded = json.loads(data)
        except json.JSONDecodeError:
            raise ChatServerError(
                f"{_SETTING}: the server sent an event that is not JSON: {self._excerpt(data)!r}"
            ) from None
        if isinstance(decoded, dict) and ("error" in decoded or decoded.get("object") == "error"):
            report = decoded.get("error") or decoded.get("message")  # the latter: older vLLM
            raise ChatServerError(
                f"{_SETTING}: the server reported an error mid-reply: {self._excerpt(report)}"
            )
        try:
            return _Chunk.model_validate(decoded)
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(part) for part in problem["loc"])
            raise ChatServerError(
                f"{_SETTING}: the server sent a chunk that is not a chat.completion.chunk "
                f"({where}: {problem['msg']}): {self._excerpt(data)!r}"
            ) from None

    def _refused(self, answer: httpx.Response) -> ChatServerError:
        """The error for a non-200 answer: its status and the start of its body (never its headers)."""
        body = answer.content[:_ERROR_BODY_BYTES]  # the client has read the refusal
        env = self._server.api_key_env
        hints = {
            401: f"; the key in ${env} was refused" if self._key else f"; put the server's API key in ${env}",
            403: f"; the key in ${env} may not use this model"
            if self._key
            else f"; put the API key in ${env}",
            404: f"; check {_SETTING}.base_url (it usually ends in /v1) and {_SETTING}.model",
        }
        return ChatServerError(
            f"{_SETTING}: POST {self._url} answered {answer.status_code} {answer.reason_phrase}: "
            f"{self._excerpt(body.decode('utf-8', 'replace'))}{hints.get(answer.status_code, '')}"
        )

    def _excerpt(self, text: object) -> str:
        """A short one-line excerpt of server text, with the API key blanked out."""
        line = " ".join(str(text).split())
        if self._key:
            line = line.replace(self._key, "[API key]")
        return line if len(line) <= _EXCERPT_CHARS else line[: _EXCERPT_CHARS - 1] + "…"


class _CancelWatch:
    """While open, shuts the answer's socket down as soon as `cancel` is set: a read blocked on it returns
    at once, and the server sees the connection close."""

    def __init__(self, answer: httpx.Response, cancel: threading.Event) -> None:
        stream = answer.extensions.get("network_stream")
        self._socket: socket.socket | None = stream.get_extra_info("socket") if stream is not None else None
        self._cancel = cancel
        self._open = True
        self._lock = threading.Lock()

    def __enter__(self) -> _CancelWatch:
        if self._socket is not None:
            threading.Thread(target=self._watch, name="chat-server-cancel", daemon=True).start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        with self._lock:
            self._open = False

    def _watch(self) -> None:
        while not self._cancel.wait(_CANCEL_POLL_S):
            with self._lock:
                if not self._open:
                    return
        with self._lock:
            if self._open and self._socket is not None:
                try:
                    self._socket.shutdown(socket.SHUT_RDWR)
                except OSError:
                    log.debug("the chat server connection was already closed")


def _message(message: ChatMessage) -> ChatCompletionMessageParam:
    """One message of the request; one with an image is sent as a text part and a JPEG data-URL part (the
    OpenAI chat API's image input, as vLLM, llama.cpp server and Ollama take it)."""
    if message.image is None:  # the role is ours ("system", "user" or "assistant"): the types agree
        return cast(ChatCompletionMessageParam, {"role": message.role, "content": message.content})
    url = "data:image/jpeg;base64," + base64.b64encode(message.image).decode("ascii")
    parts = [
        {"type": "text", "text": message.content},
        {"type": "image_url", "image_url": {"url": url}},
    ]
    return cast(ChatCompletionMessageParam, {"role": message.role, "content": parts})


def _begun_as_instruction(messages: list[ChatMessage]) -> list[ChatMessage]:
    """`messages` for a server that answers with a new message: a reply begun (the last message is the
    assistant's) becomes an instruction in the system message to go on from it. OpenAI's API has no
    portable way to continue a message."""
    if not messages or messages[-1].role != "assistant":
        return messages
    *asked, begun = messages
    instruction = (
        f'You have begun your reply with: "{begun.content}" Say only what comes next, in one short '
        "sentence, without repeating it."
    )
    if asked and asked[0].role == "system":
        return [ChatMessage("system", f"{asked[0].content}\n\n{instruction}"), *asked[1:]]
    return [ChatMessage("system", instruction), *asked]
