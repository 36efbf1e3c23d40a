"""The transformers chat backend and the Thinker on the real bundled model: prompt reuse, loading
options, and injection attempts. (The strike rate over ordinary questions is measured by
`bench/thinking.py`, not asserted here.)"""

from __future__ import annotations

import threading
from typing import cast

import pytest
from chat_fakes import RecentWindow
from test_thinking import INJECTIONS

from companion_settings import ConfigError
from machine.app import build_reply_checker
from machine.backends.transformers_chat import TransformersChatModel
from machine.ports import ChatMessage, ReplyEvents
from machine.reply.thinking import Thinker
from machine.settings import MachineSettings

pytestmark = pytest.mark.models


def greedy(chat_model: TransformersChatModel, settings: MachineSettings, messages: list[ChatMessage]) -> str:
    sampling = settings.chat_model.model_copy(update={"temperature": 0.0}).sampling()
    return "".join(chat_model.stream(messages, threading.Event(), sampling))


@pytest.fixture(scope="module")
def float_chat_model(settings: MachineSettings) -> TransformersChatModel:
    """The bundled model in float32: int8 dynamic quantisation scales activations per forward call, so a
    prompt prefilled in two calls can decode differently from one prefilled at once."""
    return TransformersChatModel(settings.chat_model.model_copy(update={"quantize": "none"}))


def test_the_last_prompt_is_reused_without_changing_the_reply(
    float_chat_model: TransformersChatModel, settings: MachineSettings
) -> None:
    chat_model = float_chat_model
    persona = ChatMessage("system", settings.persona())
    first = [persona, ChatMessage("user", "Hi, what's your name?")]
    second = [*first, ChatMessage("assistant", "I'm Celeste."), ChatMessage("user", "Do you like cats?")]
    greedy(chat_model, settings, first)
    reused = greedy(chat_model, settings, second)
    assert chat_model.reused_tokens >= chat_model.count_tokens(first) - 2, "the whole first prompt is shared"
    chat_model._last = None  # forget the kept cache: the same prompt prefilled from scratch
    assert greedy(chat_model, settings, second) == reused
    assert chat_model.reused_tokens == 0


def test_repetition_penalty_and_ngram_ban_spare_the_prompt() -> None:
    """Penalising the prompt's words made replies degrade into gibberish as the history grew."""
    import torch
    from transformers import NoRepeatNGramLogitsProcessor, RepetitionPenaltyLogitsProcessor

    from machine.backends.transformers_chat import _ReplyOnly

    # torch.tensor and clone() are typed Tensor; the processors take transformers' LongTensor/FloatTensor
    ids = cast(torch.LongTensor, torch.tensor([[5, 6, 7, 5, 6, 8, 9, 8]]))  # prompt: 5 6 7 5 6; reply: 8 9 8
    scores = torch.ones(1, 12)
    penalised = _ReplyOnly(RepetitionPenaltyLogitsProcessor(2.0), prompt_length=5)(
        ids, cast(torch.FloatTensor, scores.clone())
    )
    assert penalised[0, 5] == 1 and penalised[0, 7] == 1, "prompt tokens keep their score"
    assert penalised[0, 8] == 0.5 and penalised[0, 9] == 0.5, "reply tokens are penalised"
    banned = _ReplyOnly(NoRepeatNGramLogitsProcessor(2), prompt_length=5)(
        ids, cast(torch.FloatTensor, scores.clone())
    )
    assert banned[0, 7] == 1, "the prompt's bigram 6 7 may be generated"
    assert banned[0, 9] == float("-inf"), "the reply's bigram 8 9 may not be repeated"


def test_each_prompt_draws_its_own_random_numbers(
    chat_model: TransformersChatModel, settings: MachineSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reseeding every reply with the configured seed drew every reply's first token with the same noise,
    and with seed 0 nearly every reply opened with "The" (issue #25 item 8): the seed a reply is sampled
    with differs between prompts and between a first attempt and its retry, and stays the same for the
    same prompt (repeatable runs)."""
    import torch

    seeds: list[int] = []
    manual_seed = torch.manual_seed

    def recorded(seed: int) -> torch.Generator:
        seeds.append(int(seed))
        return manual_seed(seed)

    monkeypatch.setattr(torch, "manual_seed", recorded)
    sampling = settings.chat_model.model_copy(update={"max_new_tokens": 1}).sampling()
    assert sampling.seed is not None and sampling.temperature > 0, "the shipped sampling is seeded"
    persona = ChatMessage("system", settings.persona())
    prompts = [[persona, ChatMessage("user", q)] for q in ("Do you like music?", "Where are you from?")]
    runs = [
        (prompts[0], sampling),
        (prompts[1], sampling),
        (prompts[0], sampling),
        (prompts[0], sampling.retry(1)),
    ]
    for messages, drawn in runs:
        list(chat_model.stream(messages, threading.Event(), drawn))
    assert len(seeds) == 4
    assert seeds[0] != seeds[1], "two prompts are sampled with different random numbers"
    assert seeds[0] == seeds[2], "the same prompt is sampled the same way (repeatable)"
    assert seeds[3] not in (seeds[0], seeds[1]), "a retry samples differently"


def test_a_reply_cut_at_max_new_tokens_says_so(
    chat_model: TransformersChatModel, settings: MachineSettings
) -> None:
    story = [ChatMessage("user", "Tell me a long story about a dragon and a castle.")]
    hi = [ChatMessage("user", "Say hi.")]
    for messages, limit, cut in ((story, 5, True), (hi, 200, False)):
        sampling = settings.chat_model.model_copy(
            update={"temperature": 0.0, "max_new_tokens": limit}
        ).sampling()
        stream = chat_model.stream(messages, threading.Event(), sampling)
        with pytest.raises(StopIteration) as ended:
            while True:
                next(stream)
        assert ended.value.value is cut, (limit, cut)


def test_count_tokens_is_the_prompt_length(chat_model: TransformersChatModel) -> None:
    short = [ChatMessage("user", "Hi.")]
    longer = [ChatMessage("user", "Hi. " * 20)]
    assert 0 < chat_model.count_tokens(short) < chat_model.count_tokens(longer)


def test_a_begun_reply_is_continued_not_answered_anew(chat_model: TransformersChatModel) -> None:
    """A reply begun with the answer from memory: the prompt ends inside the assistant's turn, so the model
    goes on from the begun text instead of starting another reply after it."""
    asked = [ChatMessage("user", "What is my cat called?")]
    begun = [*asked, ChatMessage("assistant", "Your cat is called Pickles.")]
    prompt = chat_model.tokenizer.decode(chat_model.prompt_ids(begun)[0])
    fresh = chat_model.tokenizer.decode(chat_model.prompt_ids(asked)[0])
    assert prompt.endswith("<|im_start|>assistant\nYour cat is called Pickles."), prompt[-80:]
    assert prompt.startswith(fresh), "the begun text follows the assistant's turn marker"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"load_in_4bit": True}, "needs a CUDA device"),
        ({"load_in_4bit": True, "device": "cuda"}, "already quantised"),
        ({"attn_implementation": "flash_attention_2"}, "flash_attention_2 needs a CUDA device"),
    ],
)
def test_options_that_cannot_work_here_are_refused_clearly(
    settings: MachineSettings, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        TransformersChatModel(settings.chat_model.model_copy(update=options))


def test_attention_implementation_is_applied(settings: MachineSettings) -> None:
    model = TransformersChatModel(settings.chat_model.model_copy(update={"attn_implementation": "eager"}))
    assert model.model.config._attn_implementation == "eager"
    assert greedy(model, settings, [ChatMessage("user", "Hello!")]).strip()


@pytest.fixture(scope="module")
def thinker(chat_model: TransformersChatModel, settings: MachineSettings) -> Thinker:
    persona = settings.persona()
    return Thinker(
        chat_model,
        RecentWindow(0),
        persona,
        settings.bot_name,
        settings.chat_model,
        settings.reply_checks,
        build_reply_checker(settings, persona),
    )


def ask(thinker: Thinker, question: str) -> tuple[list[str], list[str], bool]:
    strikes: list[str] = []
    gave_up: list[bool] = []
    events = ReplyEvents(strike=lambda s, _: strikes.append(str(s)), gave_up=lambda: gave_up.append(True))
    return list(thinker.sentences(question, threading.Event(), events)), strikes, bool(gave_up)


@pytest.mark.parametrize("transcript", INJECTIONS)
def test_injections_do_not_reach_the_prompt_as_instructions(
    thinker: Thinker, chat_model: TransformersChatModel, settings: MachineSettings, transcript: str
) -> None:
    messages = thinker.prompt(transcript)
    ids = chat_model.prompt_ids(messages)[0].tolist()
    start = chat_model.tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert ids.count(start) == 3, "system, user, and the assistant's own turn: no turn injected"
    assert messages[0].content == settings.persona()
    sentences, _, _ = ask(thinker, transcript)
    checker = build_reply_checker(settings, settings.persona())
    for said, sentence in enumerate(sentences):
        assert checker.check_piece(sentences[:said], sentence) is None, sentences
