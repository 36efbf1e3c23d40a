"""Who said a turn, and whether the bot answers it: speaker identification and the reply policy together.

The runtime hands each transcribed utterance here, and each chatbox message read on screen (`typed`: its
player is the name on their nameplate). With `machine.speakers.enabled` the utterance's voice
is embedded (:mod:`machine.backends.voice_encoder`) and matched to the session's speakers
(:mod:`machine.crowd.speakers`); the reply policy (:mod:`machine.crowd.policy`) then decides. The voice
embedding is dropped as soon as it has been matched; the speakers' mean voices live in memory until the
session is forgotten (`forget`).

With eyes (:mod:`machine.vision`), a voice nobody has named yet takes the name on the one nameplate in
view, when exactly one player is in view: the one the bot is looking at is most likely the one talking.
"""

from __future__ import annotations

import logging

import numpy as np

from machine.crowd.policy import ReplyPolicy
from machine.crowd.speakers import SpeakerTracker
from machine.ports import SAMPLE_RATE, Attribution, FloatAudio, Sight, VoiceEmbedder

__all__ = ["Crowd"]

log = logging.getLogger(__name__)

_ONE_VOICE = "speaker 1"
TYPIST = "someone typing in the chatbox"
"""Who a chatbox message is from when no nameplate under it could be read."""


class Crowd:
    """Speaker identification (optional) and the reply policy. Called from one turn job at a time."""

    def __init__(
        self,
        encoder: VoiceEmbedder | None,
        tracker: SpeakerTracker,
        policy: ReplyPolicy,
        forget_after_idle_s: float = 900.0,
        sight: Sight | None = None,
    ) -> None:
        self._sight = sight
        self._encoder = encoder
        self._tracker = tracker
        self._policy = policy
        self._forget_after_idle_s = forget_after_idle_s
        self._last_heard: float | None = None

    def voice(self, speech: FloatAudio) -> np.ndarray | None:
        """The utterance's voice embedding (the slow part: run it beside the transcription), or None when
        speakers are not told apart or the audio cannot be embedded."""
        if self._encoder is None or not speech.size:
            return None
        try:
            return self._encoder.embed(speech)
        except ValueError as exc:  # not finite: the audio was checked upstream, so this is rare
            log.warning("speaker not identified: %s", exc)
            return None

    def attribute(
        self, voice: np.ndarray | None, transcript: str, now: float, learn: bool = True
    ) -> Attribution:
        """Who said `transcript` in this `voice` and whether the bot answers them (the voice is dropped).
        After `forget_after_idle_s` with nobody heard, the session's voices are dropped first.

        With `learn` off (a turn started early, at a pause, that may still be dropped when the speaker
        goes on) the answer is what it would be, and the session is left as it was: no voice is added or
        moved, no name taken, nobody given the floor. Attribute it again with `learn` once it stands."""
        self._idle_check(now)
        speaker, crowd = _ONE_VOICE, False
        if voice is not None:
            who = self._tracker.identify(voice, transcript, learn, self._one_in_view())
            unlearned_newcomer = not learn and who.utterances == 0  # not among the tracker's speakers
            voices = len(self._tracker.speakers) + int(unlearned_newcomer)
            speaker, crowd = who.label, who.name is not None or voices > 1
        return Attribution(speaker, self._policy.addressed(transcript, speaker, now, learn), crowd=crowd)

    def typed(self, name: str | None, text: str, now: float) -> Attribution:
        """Who typed a chatbox message: the name on their nameplate (or "someone typing in the chatbox"),
        always named in the prompt; whether it is answered is the reply policy's, as for speech."""
        self._idle_check(now)
        speaker = name or TYPIST
        return Attribution(speaker, self._policy.addressed(text, speaker, now), crowd=True)

    def _idle_check(self, now: float) -> None:
        """After `forget_after_idle_s` with nobody heard, the session's voices are dropped."""
        if self._last_heard is not None and now - self._last_heard > self._forget_after_idle_s:
            self.forget()
        self._last_heard = now

    def _one_in_view(self) -> str | None:
        """The name on the nameplate in view, when there is exactly one."""
        present = self._sight.present() if self._sight is not None else []
        return present[0] if len(present) == 1 else None

    def hear(self, speech: FloatAudio, transcript: str, now: float) -> Attribution:
        """`voice` then `attribute`, one after the other."""
        return self.attribute(self.voice(speech), transcript, now)

    def answered(self, speaker: str, now: float) -> None:
        """The bot finished a reply to `speaker`."""
        self._policy.answered(speaker, now)

    def warm_up(self) -> None:
        """Embed a second of quiet noise once (and drop it): the encoder's first call (mel filters, the
        LSTM's first kernels) took 23-73 ms more in a run's first turn and slowed the transcription beside
        it by 200 ms."""
        noise = np.random.default_rng(0).normal(0.0, 0.01, SAMPLE_RATE).astype(np.float32)
        self.voice(noise)

    def forget(self) -> None:
        """The session ended: every speaker and voice is dropped."""
        self._tracker.forget()
        self._policy.forget()
