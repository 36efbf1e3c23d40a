"""The command-line options that pick the chat model a benchmark runs on (the configured one by default)."""

from __future__ import annotations

import argparse

from machine.settings import MachineSettings


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """--model, --gguf-file, --device, --backend, --base-url, --server-model."""
    parser.add_argument("--model", help="hub id or local folder (default: the configured model)")
    parser.add_argument("--gguf-file", help="GGUF file name inside --model")
    parser.add_argument("--device", help="cpu | cuda | cuda:0 | mps")
    parser.add_argument("--backend", choices=("transformers", "openai"))
    parser.add_argument("--base-url", help="OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1")
    parser.add_argument("--server-model", help="the model name the server knows")


def with_model(settings: MachineSettings, args: argparse.Namespace, **chat: object) -> MachineSettings:
    """The settings with the chat model the options name (and any other chat-model `chat` settings)."""
    current = settings.chat_model
    update: dict[str, object] = dict(chat)
    for key, value in (("model", args.model), ("gguf_file", args.gguf_file), ("device", args.device)):
        if value is not None:
            update[key] = value
    if args.backend:
        update["backend"] = args.backend
    if args.base_url or args.server_model:
        server: dict[str, object] = {}
        if args.base_url:
            server["base_url"] = args.base_url
        if args.server_model:
            server["model"] = args.server_model
        update["server"] = current.server.model_copy(update=server)
    return settings.model_copy(update={"chat_model": current.model_copy(update=update)})


def model_name(settings: MachineSettings) -> str:
    """The chat model's name as the results name it."""
    chat = settings.chat_model
    if chat.backend == "transformers":
        return chat.model
    assert chat.server.model is not None  # the settings require it with backend openai
    return chat.server.model
