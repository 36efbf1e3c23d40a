"""`python -m machine`: the conversation runtime.

python -m machine --input PATH --output DIR [--fast]   a conversation over recorded WAV files
python -m machine demo [--fast]                        the spoken demo (what `make run` runs)
python -m machine diagram                              print the state diagram page (mermaid)
python -m machine forget                               make the running bot forget the conversation
"""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from companion_settings import ConfigError
from machine.backends.bundled_models import MissingModelPackageError
from machine.ports import AudioInputError, DeviceNotFoundError
from machine.process.malloc_arenas import tune_malloc
from machine.settings import MachineSettings, load_settings
from memory_store import MemoryStoreError
from memory_store import load_settings as load_memory_settings

if TYPE_CHECKING:
    from machine.app import Parts

_COMMANDS = """\
commands:
  run      converse (the default): live on the configured audio devices until
           Ctrl-C, or with --input over recorded WAV files, writing replies and
           turns.jsonl to --output
  devices  list the audio devices (index, channels, rate, name) that
           machine.audio.input_device and output_device can name
  demo     the spoken demo `make run` plays: questions spoken by Piper and
           answered by the bundled models, replies in --output/demo
  diagram  print the conversation state machine's page (a mermaid diagram)
  forget   make the bot running on this machine forget the conversation now
           (an OSC message to machine.control's port; SIGUSR1 does it on Linux)
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m machine",
        description="The VRChat companion's runtime.",
        epilog=_COMMANDS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "command",
        nargs="?",
        choices=("run", "devices", "demo", "diagram", "forget"),
        default="run",
        help="what to do (default: run); see the commands below",
    )
    parser.add_argument("--config", type=Path, help="configuration file (default: conf/default.yaml)")
    parser.add_argument("--input", type=Path, help="a WAV file, or a folder of WAV files, to converse over")
    parser.add_argument("--output", type=Path, default=Path("out"), help="folder for replies and turns.jsonl")
    parser.add_argument("--fast", action="store_true", help="go as fast as possible instead of real time")
    parser.add_argument(
        "--fresh", action="store_true", help="forget the bot's memory block before the conversation starts"
    )
    return parser


def _quiet_libraries(settings: MachineSettings) -> None:
    logging.basicConfig(
        level=settings.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for noisy in (
        "whisperx",
        "faster_whisper",
        "httpx",
        "matplotlib",
        "openai",
        "pytorch_lightning",
        "speechbrain",
        "transitions",
        "TTS",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _output_problem(folder: Path) -> str | None:
    """Why nothing can be written to `folder` (created when missing), or None when it can."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def _forget(settings: MachineSettings) -> int:
    """`python -m machine forget`: ask the running bot to forget, and say whether one answered."""
    from machine.process.osc_control import NoBotAnswerError, ask_to_forget

    if not settings.control.enabled:
        print(
            "error: machine.control.enabled is false, so the bot does not listen for a forget; set it to "
            "true (and restart the bot), or on Linux send SIGUSR1: kill -USR1 <the bot's process id>",
            file=sys.stderr,
        )
        return 2
    try:
        host, port = ask_to_forget(settings.control)
    except NoBotAnswerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{settings.bot_name} (OSC {host}:{port}) is forgetting the conversation")
    return 0


def main(argv: list[str] | None = None, parts: Parts | None = None) -> int:
    """Entry point; returns the exit status. `parts` are given to the run instead of built (tests)."""
    if parts is None:  # before the models load and their threads start: flat memory, no refaults
        tune_malloc()
    args = _parser().parse_args(argv)
    if args.command == "diagram":
        from machine.fsm import state_machine_page

        print(state_machine_page(), end="")
        return 0
    try:
        settings = load_settings(args.config)
        memory_settings = load_memory_settings(args.config)
        _quiet_libraries(settings)
        if args.command == "demo" or args.input is not None:
            problem = _output_problem(args.output)  # before any model loads
            if problem is not None:
                print(f"error: cannot write to --output {args.output}: {problem}", file=sys.stderr)
                return 2
        if args.command == "demo":
            from machine.runs.demo import run_demo

            run_demo(settings, memory_settings, args.output, realtime=not args.fast, parts=parts)
            return 0
        if args.command == "forget":
            return _forget(settings)
        if args.command == "devices":
            from machine.audio.devices import device_table  # not the runtime's modules: no models

            print(device_table())
            return 0
        if args.input is None:
            from machine.runs.live import run_live

            run_live(settings, memory_settings, fresh=args.fresh, parts=parts)
            return 0
        from machine.runs.recorded import run_recorded

        run_recorded(
            settings,
            memory_settings,
            args.input,
            args.output,
            realtime=not args.fast,
            fresh_session=args.fresh,
            parts=parts,
        )
    except (
        ConfigError,
        AudioInputError,
        MissingModelPackageError,
        DeviceNotFoundError,
        MemoryStoreError,
        FileNotFoundError,
        TimeoutError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if args.command == "demo" or args.input is not None:  # no audio device is used: say what failed
            print(f"error: {exc}", file=sys.stderr)
        else:
            print(f"error: audio device failed: {exc} (see `python -m machine devices`)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def exit_now(code: int) -> None:
    """Leave without Python's own teardown of torch, onnxruntime and the like (seconds long).

    By now everything the runtime opened is closed (streams, the memory store); the exit hooks still run
    (logging, Prefect's temporary server), so Ctrl-C or SIGTERM ends the process within a second."""
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
