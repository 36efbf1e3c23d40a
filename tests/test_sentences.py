"""Cutting generated text into speakable pieces: sentences, the early first clause, stop strings, limits."""

from __future__ import annotations

from machine.reply.sentences import SentenceSplitter, SpeechPace, default_stop_strings, speakable


def feed_all(splitter: SentenceSplitter, pieces: list[str]) -> tuple[list[str], int]:
    """Feed until the splitter is done; returns the released pieces and how many input pieces were used."""
    out: list[str] = []
    used = 0
    for piece in pieces:
        used += 1
        out += splitter.feed(piece)
        if splitter.done:
            return out, used
    return out + splitter.finish(), used


def tokens(text: str) -> list[str]:
    return [word + " " for word in text.split(" ")]


def test_sentences_are_released_as_soon_as_they_are_complete() -> None:
    splitter = SentenceSplitter(max_sentences=5)
    assert splitter.feed("Hello there") == []
    assert splitter.feed(".") == []  # the end is confirmed by the space that follows it
    assert splitter.feed(" How are") == ["Hello there."]
    assert splitter.feed(" you? I am") == ["How are you?"]
    assert splitter.finish() == ["I am"]


def test_a_reply_cut_at_the_token_limit_drops_its_unfinished_tail() -> None:
    splitter = SentenceSplitter(max_sentences=3)
    assert splitter.feed("I liked that book a lot. It is also recommended on her social media: she has") == [
        "I liked that book a lot."
    ]
    assert splitter.finish(cut=True) == [], "the half sentence is not said"

    alone = SentenceSplitter(max_sentences=3)
    assert alone.feed("The book I would recommend is by Jessica") == []
    assert alone.finish(cut=True) == ["The book I would recommend is by Jessica"], "better than silence"

    ended = SentenceSplitter(max_sentences=3)
    ended.feed("Sure. Sounds good to me")
    assert ended.finish() == ["Sounds good to me"], "the model ended its turn there: a whole last piece"


def test_sentence_limit_stops_generation() -> None:
    splitter = SentenceSplitter(max_sentences=2)
    out, used = feed_all(splitter, tokens("One thing. Two things! Three things. Four things."))
    assert out == ["One thing.", "Two things!"]
    assert splitter.done
    assert used == 4, "no piece is asked for past the last sentence that will be spoken"


def test_invented_user_turn_is_cut_there() -> None:
    splitter = SentenceSplitter(max_sentences=5, stop_strings=default_stop_strings("Celeste"))
    pieces = ["Sure, ", "I love ", "music", ".\n", "User", ": what about ", "you?"]
    out, used = feed_all(splitter, pieces)
    assert out == ["Sure, I love music."]
    assert splitter.stopped_at == "\nUser"
    assert used == 5


def test_role_tag_mid_sentence_is_cut() -> None:
    splitter = SentenceSplitter(max_sentences=5, stop_strings=default_stop_strings("Celeste"))
    out, _ = feed_all(splitter, ["I think so", " Assistant: yes"])
    assert out == ["I think so"]
    assert splitter.stopped_at == "Assistant:"


def test_first_clause_is_released_before_the_sentence_ends() -> None:
    splitter = SentenceSplitter(max_sentences=2, first_clause_words=4)
    assert splitter.feed("Well, ") == []  # too short a clause
    assert splitter.feed("that is a lovely question, ") == ["Well, that is a lovely question,"]
    assert splitter.feed("and I like it. Also, ") == ["and I like it."]
    assert splitter.feed("this, ") == [], "only the first piece may be a clause"
    out = splitter.feed("that. Done.")
    assert out == ["Also, this, that."]
    assert splitter.done, "a clause does not count as a sentence; two sentences do"


def test_a_long_first_sentence_without_a_clause_break_is_cut_at_a_word_boundary() -> None:
    splitter = SentenceSplitter(max_sentences=2, first_clause_words=3, first_piece_max_words=5)
    assert splitter.feed("The one I like best") == [], "five words, but the fifth may go on"
    assert splitter.feed(" is the") == ["The one I like best"]
    assert splitter.feed(" one with the stars. It glows. ") == ["is the one with the stars.", "It glows."]
    short = SentenceSplitter(max_sentences=2, first_clause_words=3, first_piece_max_words=5)
    assert short.feed("I love it. ") == ["I love it."], "a sentence that ends first is spoken whole"


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def paced(clock: Clock) -> SentenceSplitter:
    """The default first piece, and a voice saying 0.3 s a word, released 0.5 s before it runs dry."""
    pace = SpeechPace(seconds_per_word=0.3, lead_s=0.5, clock=clock)
    return SentenceSplitter(max_sentences=2, first_clause_words=3, first_piece_max_words=5, pace=pace)


def test_a_sentence_written_slower_than_it_is_spoken_goes_in_pieces_before_the_voice_runs_dry() -> None:
    clock = Clock()
    splitter = paced(clock)
    first = splitter.feed("I'm a pretty solid twenty minute")
    assert first == ["I'm a pretty solid twenty"]  # 1.5 s of voice
    clock.now += 0.9  # 0.6 s left: the model is slow, but the voice is not yet about to run dry
    assert splitter.feed(" game of poker, but I have") == []
    clock.now += 0.2  # 0.4 s left: the text so far goes at its last clause
    assert splitter.feed(" to") == ["minute game of poker,"]  # 1.2 s more
    clock.now += 0.8
    assert splitter.feed(" admit that there is") == [], "0.9 s still to say"
    clock.now += 0.5  # 0.4 s left, no clause: mid-sentence, the words so far go, all but the last
    assert splitter.feed(" one") == ["but I have to admit that there is"]
    assert splitter.feed(" specific reversal. Then") == ["one specific reversal."]
    assert splitter.finish() == ["Then"]


def test_between_sentences_and_with_time_to_spare_only_whole_sentences_are_released() -> None:
    clock = Clock()
    splitter = paced(clock)
    assert splitter.feed("I love it. ") == ["I love it."]
    clock.now += 5.0  # the voice has long run dry, but no sentence was begun: nothing is cut at a word
    assert splitter.feed("When the stars come out over the") == []
    assert splitter.feed(" lake, and") == ["When the stars come out over the lake,"], "a clause is worth it"
    fast = paced(Clock())
    assert fast.feed("I'm a pretty solid twenty minute") == ["I'm a pretty solid twenty"]
    assert fast.feed(" game of poker, but I have to admit that there is one") == [], "1.5 s of voice left"
    whole = "minute game of poker, but I have to admit that there is one reversal."
    assert fast.feed(" reversal. ") == [whole]


def test_a_piece_released_for_the_pace_has_at_least_three_words() -> None:
    clock = Clock()
    splitter = paced(clock)
    assert splitter.feed("I am quite sure that") == []
    assert splitter.feed(" this") == ["I am quite sure that"]
    clock.now += 10.0
    assert splitter.feed(" is,") == [], "'this is,' is two words: too short a piece"
    assert splitter.feed(" I") == []
    assert splitter.feed(" think") == ["this is, I"]


def test_abbreviations_and_decimals_do_not_end_sentences() -> None:
    splitter = SentenceSplitter(max_sentences=5)
    out, _ = feed_all(splitter, tokens("Dr. Smith paid 3.50 dollars. Then e.g. tea. Bye"))
    assert out == ["Dr. Smith paid 3.50 dollars.", "Then e.g. tea.", "Bye"]


def test_closing_quotes_stay_with_their_sentence() -> None:
    splitter = SentenceSplitter(max_sentences=5)
    out, _ = feed_all(splitter, tokens("She said “hi.” Then left."))
    assert out == ["She said “hi.”", "Then left."]


def test_nothing_after_done_and_blank_text_is_not_a_sentence() -> None:
    splitter = SentenceSplitter(max_sentences=1)
    assert splitter.feed("Yes. ") == ["Yes."]
    assert splitter.feed("More. ") == [] and splitter.finish() == []
    assert SentenceSplitter(max_sentences=1).finish() == []


def test_speakable_drops_stage_directions_emoji_and_emoticons() -> None:
    assert speakable("Sure (laughs) I can *waves* help 😊 :) ok!") == "Sure I can help ok!"
    assert speakable("Nice [smiles], right?") == "Nice, right?"
    assert speakable("It costs $5, 50% off & more.") == "It costs $5, 50% off & more."
    assert speakable("Broken tail \ufffd") == "Broken tail"


def test_blank_line_and_trailing_symbols_end_a_sentence() -> None:
    splitter = SentenceSplitter(max_sentences=5)
    out, _ = feed_all(splitter, ["Great fun!!🎃 ", "Next one\n\n", "Last"])
    assert out == ["Great fun!!🎃", "Next one", "Last"]
