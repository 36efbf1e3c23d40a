"""Soak benchmark: the whole deployment for an evening, run as a player runs it.

    .venv/bin/python bench/soak.py [--hours 1] [--no-social] [--memory-report] [--config FILE] [--output PATH]

Each part is its own process, as on a player's machine: `python -m machine` live on PulseAudio null sinks
(it hears the monitor of a "user" sink and speaks on a "bot" sink), and unless --no-social, `prefect server
start` and `python -m flows serve` (prefect.yaml as shipped: friend requests on the pipeline and on their
schedule, group invites, session expiry) against the fake VRChat (tests/flows/fake_vrchat), with friend
requests arriving one by one and, twice, in a burst of 16 (14 to accept, 2 to reject). Both processes use
one memory store folder, as they would on one machine.

Every 20-30 s (seeded) an utterance is played into the user's sink, all of them different (Piper's
voice): facts about the speaker and, a few turns later, questions about them (bench/data/recall_set.json),
small talk and ordinary questions between; silence or a few seconds of noise fill the gaps. From outside
the processes: resident memory and CPU seconds of the runtime, of `serve` (with its flow-run children)
and of the Prefect server every 10 s (CPU also of this benchmark itself: what could slow a reply); the
reply start (the last loud 20 ms of the utterance to the first loud 20 ms on the bot's sink); the
runtime's turn records (its stdout); the fake's accept arrival times; the memory store's size on disk.
At the end the bot is asked to forget (SIGUSR1) and the store measured again.
--memory-report has the runtime log where its memory is every minute (machine.memory_report_s: resident
size and glibc malloc's figures; with PYTHONTRACEMALLOC=1 in the environment also Python's allocations,
which slows every turn and costs hundreds of MB), kept in the JSON as `memory_reports`.

Prints a table over time and the verdicts (issue #26's goals), writes bench/results/soak.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import from_tests
import numpy as np
import psutil
from live_latency import latency
from soak_measures import (
    busiest_window,
    growth_mb_per_min,
    growth_mb_per_turn,
    range_mb,
    sustained_growth_mb_per_turn,
    thirds_medians,
    thirds_rates,
)
from turn_latency import machine_description, write_result

from machine.audio.files import to_mono_16k, write_wav
from machine.backends.piper_synthesizer import PiperSynthesizer
from machine.ports import SAMPLE_RATE
from machine.settings import MachineSettings, load_settings

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "flows"))  # the fake VRChat and the Prefect server helper
from fake_vrchat import FakeUser, FakeVRChat  # noqa: E402
from flow_harness import GROUP_ID, FakeSecrets, abusive_users, good_user  # noqa: E402
from prefect_server import prefect_server, stop_process_group  # noqa: E402

pulse = from_tests.load("pulse")
ORDINARY_QUESTIONS = from_tests.load("ordinary_questions").ORDINARY_QUESTIONS
RECALL_SET = REPO / "bench" / "data" / "recall_set.json"

WARM_UP_S = 120.0
GAP_S = (20.0, 30.0)
"""Seconds from the start of one utterance to the next."""
SAMPLE_EVERY_S = 10.0


@dataclass
class Utterance:
    """One thing the user says, as a WAV file, and what it is."""

    kind: str  # fact, question (about an earlier fact), small_talk, ordinary
    text: str
    wav: Path


@dataclass
class Soak:
    """Everything measured, on the run's clock (seconds since the bot said it was listening)."""

    rss_mb: dict[str, list[tuple[float, float]]] = field(
        default_factory=lambda: {"runtime": [], "serve": [], "flow_runs": [], "prefect_server": []}
    )
    cpu_s: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    """CPU seconds used so far by each process (`serve` with its flow runs), by this benchmark itself
    (`soak`: its own threads and the players it has waited for) and by the whole machine (`machine`)."""
    idle_rss_mb: list[tuple[float, float]] = field(default_factory=list)
    """The runtime's, sampled right before each utterance: the bot idle, its last turn over."""
    store_mb: list[tuple[float, float]] = field(default_factory=list)
    prefect_home_mb: list[tuple[float, float]] = field(default_factory=list)
    spoken: list[dict[str, Any]] = field(default_factory=list)
    turns: list[dict[str, Any]] = field(default_factory=list)
    requests_sent: list[tuple[float, str]] = field(default_factory=list)
    to_accept: set[str] = field(default_factory=set)


def script(count: int, seed: int) -> list[tuple[str, str]]:
    """`count` different utterances: a fact, small talk, an ordinary question, then a question about the
    fact, over and over with new ones (the recall set has 71 questions with their facts)."""
    data = json.loads(RECALL_SET.read_text(encoding="utf-8"))
    facts = {memory["id"]: memory["question"] for memory in data["memories"]}
    rng = random.Random(seed)
    asked = list(data["questions"])
    rng.shuffle(asked)
    talk, ordinary = list(data["small_talk"]), list(ORDINARY_QUESTIONS)
    lines: list[tuple[str, str]] = []
    for index, question in enumerate(asked):
        lines += [
            ("fact", facts[question["target"]]),
            ("small_talk", talk[index % len(talk)]),
            ("ordinary", ordinary[index % len(ordinary)]),
            ("question", question["text"]),
        ]
    return lines[:count]


def synthesise(settings: MachineSettings, lines: list[tuple[str, str]], folder: Path) -> list[Utterance]:
    """Each line spoken by the bundled Piper voice, as 16 kHz WAV files in `folder`."""
    voice = PiperSynthesizer(settings.synthesizer)
    spoken = []
    for index, (kind, text) in enumerate(lines):
        audio = np.concatenate([chunk.samples for chunk in voice.synthesize(text)])
        path = folder / f"u{index:03d}.wav"
        write_wav(path, to_mono_16k(audio, voice.sample_rate), SAMPLE_RATE)
        spoken.append(Utterance(kind, text, path))
    return spoken


def noise(folder: Path, seconds: float, seed: int) -> Path:
    """`seconds` of brown noise around -35 dBFS (a fan, a room), as a WAV file."""
    rng = np.random.default_rng(seed)
    brown = np.cumsum(rng.standard_normal(int(seconds * SAMPLE_RATE)))
    brown -= np.convolve(brown, np.ones(1600) / 1600, mode="same")  # no drift
    brown *= 0.018 / (np.sqrt(np.mean(brown**2)) + 1e-9)
    path = folder / f"noise{seed}.wav"
    write_wav(path, brown.astype(np.float32), SAMPLE_RATE)
    return path


def folder_mb(folder: Path) -> float:
    """Size of the files under `folder`, MB."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20 if folder.exists() else 0.0


def process_cpu_s(pid: int, live_children: bool = True) -> float:
    """CPU seconds (user and system) a process has used, with the children it has waited for (a flow run
    that ended) and, unless told not to, its live ones; 0 for one that is gone."""
    try:
        root = psutil.Process(pid)
        times = root.cpu_times()
        children = root.children(recursive=True) if live_children else []
    except psutil.NoSuchProcess:
        return 0.0
    total = times.user + times.system + times.children_user + times.children_system
    for process in children:
        with suppress(psutil.NoSuchProcess):
            child = process.cpu_times()
            total += child.user + child.system
    return round(total, 2)


def machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy (all cores: neither idle nor waiting for disk)."""
    times = psutil.cpu_times()
    interrupts = getattr(times, "irq", 0.0) + getattr(times, "softirq", 0.0)  # Linux's fields
    return times.user + times.nice + times.system + interrupts


def process_rss_mb(pid: int) -> tuple[float, float]:
    """Resident memory of a process and of its children together, MB (0 for one that is gone)."""
    try:
        root = psutil.Process(pid)
        own = root.memory_info().rss
        children = root.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0.0, 0.0
    total = 0
    for process in children:
        with suppress(psutil.NoSuchProcess):
            total += process.memory_info().rss
    return round(own / 2**20, 1), round(total / 2**20, 1)


class Runtime:
    """`python -m machine` as its own process, its turn records read from its stdout."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.listening = threading.Event()
        self.turns: list[dict[str, Any]] = []
        self._log = log.open("w", encoding="utf-8")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "machine"],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("{"):
                self.turns.append(json.loads(line))
            elif "is listening" in line:
                self.listening.set()

    def stop(self) -> float:
        """SIGTERM; seconds until it exited."""
        asked = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()
        return round(time.monotonic() - asked, 2)


@contextmanager
def social(
    scratch: Path, memory_path: Path
) -> Iterator[tuple[FakeVRChat, subprocess.Popen[bytes], int | None]]:
    """The fake VRChat, a Prefect server and `python -m flows serve` with prefect.yaml as shipped; yields
    the fake, the served process and the server's process id."""
    secrets_ = FakeSecrets.generate()
    fake = FakeVRChat(
        username=secrets_.username,
        password=secrets_.password,
        totp_secret=secrets_.totp_secret,
        two_factor="totp",
        group_id=GROUP_ID,
    )
    home = scratch / "prefect-home"
    home.mkdir()
    with fake, prefect_server(home) as env:
        log = (scratch / "serve.log").open("w", encoding="utf-8")
        served = subprocess.Popen(
            [sys.executable, "-m", "flows", "serve"],
            env={
                **env,
                "FLOWS_DATA_DIR": str(scratch / "flows-data"),
                "FLOWS_VRCHAT__BASE_URL": fake.url,
                "FLOWS_VRCHAT__PIPELINE_URL": fake.pipeline_url,
                "FLOWS_GROUP__GROUP_ID": GROUP_ID,
                "MEMORY_STORE_PATH": str(memory_path),
                "VRCHAT_USERNAME": secrets_.username,
                "VRCHAT_PASSWORD": secrets_.password,
                "VRCHAT_TOTP_SECRET": secrets_.totp_secret,
            },
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield fake, served, _server_pid(env["PREFECT_API_URL"])
        finally:
            stop_process_group(served)
            log.close()


class Sampler:
    """Resident memory of the processes and the store's size, every SAMPLE_EVERY_S on the run's clock."""

    def __init__(
        self, soak: Soak, pids: dict[str, int | None], store: Path, prefect_home: Path | None
    ) -> None:
        self.soak, self.pids, self.store, self.prefect_home = soak, pids, store, prefect_home
        self.start = time.monotonic()
        self._stop = threading.Event()
        threading.Thread(target=self._loop, daemon=True).start()

    def clock(self) -> float:
        """Seconds since the run started."""
        return time.monotonic() - self.start

    def sample(self) -> None:
        """One sample of every process and of the store."""
        at = round(self.clock(), 1)
        for name, pid in self.pids.items():
            if pid is None:
                continue
            own, children = process_rss_mb(pid)
            if own:
                self.soak.rss_mb[name].append((at, own))
            if name == "serve" and own:  # the flow runs it started: processes that come and go
                self.soak.rss_mb["flow_runs"].append((at, children))
            if own:
                self.soak.cpu_s.setdefault(name, []).append((at, process_cpu_s(pid)))
        # this benchmark: its threads and the players it waited for (its live children are the others)
        self.soak.cpu_s.setdefault("soak", []).append((at, process_cpu_s(os.getpid(), live_children=False)))
        self.soak.cpu_s.setdefault("machine", []).append((at, round(machine_busy_s(), 2)))
        self.soak.store_mb.append((at, round(folder_mb(self.store), 2)))
        if self.prefect_home is not None:  # the server's database and logs
            self.soak.prefect_home_mb.append((at, round(folder_mb(self.prefect_home), 2)))

    def _loop(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY_S if self.soak.store_mb else 0):
            self.sample()  # a sample taken as a process ends is dropped (see process_rss_mb)

    def stop(self) -> None:
        """No more samples."""
        self._stop.set()


class FriendRequests:
    """Friend requests sent to the fake as the evening goes: one every 2.5 minutes from the first minute
    on, and at a third and two thirds of the run a crowd of 16 at once (14 to accept, 2 to reject)."""

    def __init__(self, fake: FakeVRChat, soak: Soak, duration: float) -> None:
        self.fake, self.soak = fake, soak
        self.next_at, self.sent, self.bursts = 60.0, 0, [duration / 3, 2 * duration / 3]

    def send_due(self, now: float) -> None:
        """Send whatever is due by `now` (seconds since the start)."""
        while now >= self.next_at:
            self.sent += 1
            self._send([good_user(self.sent)], [], now)
            self.next_at += 150
        if self.bursts and now >= self.bursts[0]:
            self.bursts.pop(0)
            crowd = [good_user(1000 + self.sent + i) for i in range(14)]
            # a probable troll and an account without trust: what the default rules reject (the other
            # two of the harness's kinds need its screening settings and its injected date)
            self._send(crowd, abusive_users(2000 + self.sent)[:2], now)
            self.sent += 16

    def _send(self, good: list[FakeUser], abusive: list[FakeUser], now: float) -> None:
        self.soak.to_accept |= {sender.id for sender in good}
        for sender in good + abusive:
            self.fake.add_notification(sender)
            self.soak.requests_sent.append((round(now, 1), sender.id))


def run_soak(
    settings: MachineSettings,
    hours: float,
    with_social: bool,
    scratch: Path,
    seed: int = 0,
    memory_report: bool = False,
    warm_up_s: float = WARM_UP_S,
    gap_s: tuple[float, float] = GAP_S,
    after_reply_s: float | None = None,
) -> dict[str, Any]:
    """The soak itself; returns what it measured and its verdicts. An utterance starts every `gap_s`
    (drawn between the two) seconds, or `after_reply_s` after the reply to the one before (see `Talk`)."""
    duration = hours * 3600
    shortest = gap_s[0] if after_reply_s is None else 5.0 + after_reply_s  # an utterance and its reply
    utterances = synthesise(settings, script(int(duration / shortest) + 2, seed), scratch)
    memory_path = scratch / "memory"
    soak = Soak()
    pulse.ensure_server()
    with ExitStack() as stack:
        sinks = stack.enter_context(pulse.null_sinks("user", "bot"))
        fake, served, server_pid = (
            stack.enter_context(social(scratch, memory_path)) if with_social else (None, None, None)
        )
        runtime = Runtime(
            {
                **os.environ,
                "MACHINE_AUDIO__INPUT_DEVICE": f"pulse:{sinks['user']}.monitor",
                "MACHINE_AUDIO__OUTPUT_DEVICE": f"pulse:{sinks['bot']}",
                "MEMORY_STORE_PATH": str(memory_path),
                **({"MACHINE_MEMORY_REPORT_S": "60"} if memory_report else {}),
            },
            scratch / "runtime.log",
        )
        stack.callback(runtime.stop)
        if not runtime.listening.wait(timeout=300):
            raise RuntimeError(f"the runtime never listened:\n{(scratch / 'runtime.log').read_text()}")
        user = pulse.LevelMeter(f"{sinks['user']}.monitor")
        bot = pulse.LevelMeter(f"{sinks['bot']}.monitor")
        stack.callback(user.close)
        stack.callback(bot.close)
        pids = {
            "runtime": runtime.process.pid,
            "serve": served.pid if served else None,
            "prefect_server": server_pid,
        }
        sampler = Sampler(soak, pids, memory_path, scratch / "prefect-home" if with_social else None)
        stack.callback(sampler.stop)
        requests = FriendRequests(fake, soak, duration) if fake is not None else None
        noises = [noise(scratch, 2.0 + i, seed=i) for i in range(3)]
        talk = Talk(sinks["user"], user, bot, noises, seed, gap_s, after_reply_s)
        for utterance in utterances:
            if sampler.clock() >= duration:
                break
            if requests is not None:
                requests.send_due(sampler.clock())
            soak.spoken.append(talk.say(utterance, sampler))
        sampler.sample()
        store_before_forget = folder_mb(memory_path)
        runtime.process.send_signal(signal.SIGUSR1)  # forget the session: the store keeps nothing of it
        time.sleep(5.0)
        store_after_forget = folder_mb(memory_path)
        soak.turns = list(runtime.turns)
        sampler.stop()
        stopped_in = runtime.stop()
        social_result = (
            _social_result(fake, soak, served) if fake is not None and served is not None else None
        )
    result = verdicts(
        soak, duration, store_before_forget, store_after_forget, stopped_in, social_result, warm_up_s
    )
    log_text = (scratch / "runtime.log").read_text(encoding="utf-8")
    # the reason an utterance may have no turn: the runtime logs each burst too short to be one
    result["heard_too_short_for_a_turn"] = log_text.count("shorter than min_utterance_ms")
    return result


class Talk:
    """The user's side: an utterance into the user's sink, then silence until the next one is due
    (`gap_s`), in three of ten gaps with a burst of noise in the middle; the reply start read from the two
    sinks' levels. With `after_reply_s`, the next utterance comes that long after the reply ends instead
    (no noise; `gap_s` is then the longest wait), as quickly as a user who answers back."""

    def __init__(
        self,
        sink: str,
        user: Any,
        bot: Any,
        noises: list[Path],
        seed: int,
        gap_s: tuple[float, float],
        after_reply_s: float | None = None,
    ) -> None:
        self.sink, self.user, self.bot, self.noises = sink, user, bot, noises
        self.rng = random.Random(seed)
        self.gap_s = gap_s
        self.after_reply_s = after_reply_s

    def say(self, utterance: Utterance, sampler: Sampler) -> dict[str, Any]:
        """Say `utterance` and wait out the gap after it; what came of it."""
        runtime = sampler.pids["runtime"]
        if runtime is not None:
            sampler.soak.idle_rss_mb.append((round(sampler.clock(), 1), process_rss_mb(runtime)[0]))
        since = time.monotonic()
        pulse.play(self.sink, utterance.wav)
        gap = self.rng.uniform(*self.gap_s)
        next_due = until = since + gap
        if self.after_reply_s is not None:
            next_due = until = self._reply_over(since, next_due, self.after_reply_s)
        elif self.rng.random() < 0.3:
            time.sleep(max(0.0, since + gap / 2 - time.monotonic()))
            until = time.monotonic()  # the reply is read before the noise
            pulse.play(self.sink, self.rng.choice(self.noises))
        time.sleep(max(0.0, next_due - time.monotonic()))  # after noise too, the gap is waited out
        heard = latency(self.user.levels, self.bot.levels, since, until)
        rss = sampler.soak.rss_mb["runtime"]
        print(
            f"{sampler.clock() / 60:6.1f} min  runtime {rss[-1][1] if rss else 0:7.1f} MB  "
            f"{'no reply' if heard is None else f'{heard * 1000:5.0f} ms'}  {utterance.text[:60]}",
            flush=True,
        )
        return {
            "at": round(since - sampler.start, 1),
            "kind": utterance.kind,
            "text": utterance.text,
            "reply_start_s": heard,
        }

    def _reply_over(self, since: float, deadline: float, quiet_s: float) -> float:
        """When the bot had replied to what was said at `since` and then been quiet for `quiet_s` (or
        `deadline`, whichever comes first)."""
        while (now := time.monotonic()) < deadline:
            replied = latency(self.user.levels, self.bot.levels, since) is not None
            if replied and self.bot.quiet_for(quiet_s):
                return now
            time.sleep(0.1)
        return deadline


def _server_pid(url: str) -> int | None:
    """The `prefect server start` process serving `url` (found by its --port)."""
    port = url.rsplit(":", 1)[1].split("/", 1)[0]
    for process in psutil.process_iter(["cmdline"]):
        line = process.info["cmdline"] or []
        if "server" in line and "--port" in line and line[line.index("--port") + 1 :][:1] == [port]:
            return int(process.pid)
    return None


def _social_result(fake: FakeVRChat, soak: Soak, served: subprocess.Popen[bytes]) -> dict[str, Any]:
    """What VRChat saw of the flows: accepts, doubles, invites, the busiest minute at arrival."""
    deadline = time.monotonic() + 180  # a burst late in the run takes minutes at 10 a minute
    while time.monotonic() < deadline and not soak.to_accept <= fake.friends:
        time.sleep(1)
    with fake.lock:
        accepts = list(fake.accept_times)
        invites = dict(fake.invite_posts)
        friends = set(fake.friends)
    return {
        "requests_sent": len(soak.requests_sent),
        "to_accept": len(soak.to_accept),
        "accepted": len(friends & soak.to_accept),
        "abusive_accepted": len(friends - soak.to_accept),
        "accept_calls": len(accepts),
        "busiest_minute_at_arrival": busiest_window(accepts),
        "invited_twice": sum(1 for count in invites.values() if count > 1),
        "serve_alive": served.poll() is None,
    }


def verdicts(
    soak: Soak,
    duration: float,
    store_before_forget: float,
    store_after_forget: float,
    stopped_in: float,
    social_result: dict[str, Any] | None,
    warm_up_s: float = WARM_UP_S,
) -> dict[str, Any]:
    """The issue's goals, each with the figure behind it."""
    starts = [(s["at"], s["reply_start_s"]) for s in soak.spoken if s["reply_start_s"] is not None]
    first, middle, last = thirds_medians(starts, duration)
    drift = None if not first or last is None else round(100 * (last - first) / first, 1)
    outcomes = Counter(turn["outcome"] for turn in soak.turns)
    underruns = sum(turn["playback"]["underruns"] for turn in soak.turns)

    def by_third(field: str, stage: bool = True) -> list[float | None]:
        """The median of a turn record's stage (or field) in each third of the run."""
        values = [
            (turn["endpoint"] - soak.turns[0]["endpoint"], turn["stages"][field] if stage else turn[field])
            for turn in soak.turns
            if (field in turn["stages"] if stage else turn.get(field))
        ]
        return [_round(v, 3) for v in thirds_medians(values, duration)]

    memory = {
        name: {
            "start_mb": samples[0][1] if samples else None,
            "end_mb": samples[-1][1] if samples else None,
            "growth_mb_per_min_after_warm_up": _round(growth_mb_per_min(samples, warm_up_s)),
            "range_mb_last_half": _round(range_mb(samples, duration / 2)),
        }
        for name, samples in soak.rss_mb.items()
        if samples
    }
    if soak.idle_rss_mb:  # between turns: the figures the goals are read from
        memory["runtime_idle"] = {
            "start_mb": soak.idle_rss_mb[0][1],
            "end_mb": soak.idle_rss_mb[-1][1],
            "growth_mb_per_min_after_warm_up": _round(growth_mb_per_min(soak.idle_rss_mb, warm_up_s)),
            "growth_mb_per_turn_after_warm_up": _round(growth_mb_per_turn(soak.idle_rss_mb, warm_up_s)),
            "sustained_growth_mb_per_turn": _round(sustained_growth_mb_per_turn(soak.idle_rss_mb, warm_up_s)),
            "range_mb_last_half": _round(range_mb(soak.idle_rss_mb, duration / 2)),
        }
    return {
        "hours": duration / 3600,
        "utterances": len(soak.spoken),
        "replied_within_gap": sum(1 for s in soak.spoken if s["reply_start_s"] is not None),
        "turns": len(soak.turns),
        "outcomes": dict(outcomes),
        "underruns": underruns,
        "reply_start_median_s_by_third": [_round(v, 3) for v in (first, middle, last)],
        "reply_start_drift_pct": drift,
        "first_token_median_s_by_third": by_third("first_token"),
        # what the reply start is made of, by third: what grows shows which stage drifts
        "transcribe_median_s_by_third": by_third("transcribe"),
        "prompt_tokens_median_by_third": by_third("prompt_tokens", stage=False),
        "recall_ms_median_by_third": by_third("recall_ms", stage=False),
        # what else kept the two cores busy, in cores: a reply slows when its neighbours take more
        "cpu_cores_by_third": {
            name: [_round(rate) for rate in thirds_rates(samples, duration)]
            for name, samples in soak.cpu_s.items()
        },
        "memory": memory,
        "store_mb_start": soak.store_mb[0][1] if soak.store_mb else None,
        "store_mb_end": soak.store_mb[-1][1] if soak.store_mb else None,
        "prefect_home_mb": [soak.prefect_home_mb[0][1], soak.prefect_home_mb[-1][1]]
        if soak.prefect_home_mb
        else None,
        "store_mb_before_forget": round(store_before_forget, 2),
        "store_mb_after_forget": round(store_after_forget, 2),
        "runtime_stopped_in_s": stopped_in,
        "social": social_result,
        "samples": {
            "runtime_idle_rss_mb": soak.idle_rss_mb,
            "rss_mb": soak.rss_mb,
            "cpu_s": soak.cpu_s,
            "store_mb": soak.store_mb,
            "prefect_home_mb": soak.prefect_home_mb,
        },
        "spoken": soak.spoken,
        "turn_records": soak.turns,
    }


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def table(result: dict[str, Any], rows: int = 12) -> str:
    """Resident memory and reply start over time, one row per slice of the run."""
    duration = result["hours"] * 3600
    step = duration / rows
    lines = [
        f"{'minutes':>9}{'runtime MB':>12}{'idle MB':>9}{'serve MB':>10}{'runs MB':>9}{'server MB':>11}"
        f"{'replies':>9}{'reply start':>13}"
    ]
    samples = {**result["samples"]["rss_mb"], "runtime_idle": result["samples"]["runtime_idle_rss_mb"]}

    def last_in(name: str, low: float, high: float) -> str:
        inside = [mb for t, mb in samples.get(name, []) if low <= t < high]
        return f"{inside[-1]:.0f}" if inside else "-"

    for row in range(rows):
        low, high = row * step, (row + 1) * step
        starts = [
            s["reply_start_s"] for s in result["spoken"] if low <= s["at"] < high and s["reply_start_s"]
        ]
        median = f"{statistics.median(starts) * 1000:.0f} ms" if starts else "-"
        lines.append(
            f"{high / 60:9.1f}{last_in('runtime', low, high):>12}{last_in('runtime_idle', low, high):>9}"
            f"{last_in('serve', low, high):>10}{last_in('flow_runs', low, high):>9}"
            f"{last_in('prefect_server', low, high):>11}"
            f"{len(starts):>9}{median:>13}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hours", type=float, default=1.0, help="how long (fractions too: 0.05 = 3 minutes)")
    parser.add_argument(
        "--no-social", action="store_true", help="the runtime alone, without Prefect and flows"
    )
    parser.add_argument(
        "--memory-report", action="store_true", help="the runtime logs its memory every minute"
    )
    parser.add_argument("--config", type=Path)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "soak.json")
    args = parser.parse_args()
    if args.config is not None:
        os.environ["COMPANION_CONFIG"] = str(args.config.resolve())
    settings = load_settings(args.config)
    scratch = args.output.parent / "scratch-soak"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        result = run_soak(settings, args.hours, not args.no_social, scratch, memory_report=args.memory_report)
    finally:
        logs = {name: (scratch / name) for name in ("runtime.log", "serve.log")}
        texts = {name: path.read_text(encoding="utf-8") for name, path in logs.items() if path.exists()}
        kept = {name: text[-4000:] for name, text in texts.items()}
        reports = [line for line in texts.get("runtime.log", "").splitlines() if "memory: rss" in line]
        shutil.rmtree(scratch, ignore_errors=True)
    result["log_tails"] = kept
    result["memory_reports"] = reports
    print(table(result))
    brief = {
        key: value
        for key, value in result.items()
        if key not in ("samples", "spoken", "turn_records", "log_tails", "memory_reports")
    }
    print(json.dumps(brief, indent=2))
    write_result(
        args.output,
        {"benchmark": "soak", "date": time.strftime("%Y-%m-%d"), "machine": machine_description(), **result},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
