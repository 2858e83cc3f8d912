"""Reads gpt-oss's answers in the Harmony format: the reasoning (`analysis` channel) apart from the answer (`final`).

A completion after the prompt `<|start|>assistant` looks like

    <|channel|>analysis<|message|>User asks ... <|end|><|start|>assistant<|channel|>final<|message|>Paris.<|return|>

Chat replies show the final channel; the reasoning is kept apart (shown collapsed, or on request), never mixed in.
`HarmonyStream` does the same incrementally, for answers that stream token by token.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

START, CHANNEL, MESSAGE, END, RETURN, CALL = "<|start|>", "<|channel|>", "<|message|>", "<|end|>", "<|return|>", "<|call|>"
STOPS = (END, RETURN, CALL)
_TOKEN = re.compile(r"<\|(start|channel|message|end|return|call|constrain)\|>")


@dataclass
class Parsed:
    final: str = ""
    analysis: str = ""
    commentary: str = ""
    #: True when a final message was closed (<|return|> or <|end|>); False for an answer cut off before or inside it.
    complete: bool = False
    #: True when the final channel was reached at all.
    has_final: bool = False


@dataclass
class HarmonyStream:
    """Feed decoded text as it arrives; `feed` returns the new text of the final channel (to show), and `parsed`
    holds everything so far. Special tokens may arrive split across pieces: text that could be the start of one is
    held back until the next piece says."""
    parsed: Parsed = field(default_factory=Parsed)
    _buffer: str = ""
    _channel: str | None = None
    #: Text before any header is answer text (a model that answers without Harmony headers).
    _in_message: bool = True
    _header: str = ""

    def feed(self, text: str) -> str:
        self._buffer += text
        shown = []
        while self._buffer:
            m = _TOKEN.search(self._buffer)
            if m is None:
                keep = _partial_token_tail(self._buffer)
                chunk, self._buffer = self._buffer[: len(self._buffer) - keep], self._buffer[len(self._buffer) - keep:]
                shown.append(self._text(chunk))
                break
            shown.append(self._text(self._buffer[: m.start()]))
            self._token(m.group(0))
            self._buffer = self._buffer[m.end():]
        return "".join(shown)

    def close(self) -> Parsed:
        """The end of the completion (EOS or max tokens): whatever is held back is text."""
        self._text(self._buffer)
        self._buffer = ""
        return self.parsed

    def _text(self, chunk: str) -> str:
        if not chunk:
            return ""
        if not self._in_message:  # a header: "analysis", "assistant", " to=functions.x" ...
            self._header += chunk
            return ""
        channel = self._channel or "final"
        if channel == "final":
            self.parsed.final += chunk
            self.parsed.has_final = True
            return chunk
        if channel == "analysis":
            self.parsed.analysis += chunk
        else:
            self.parsed.commentary += chunk
        return ""

    def _token(self, token: str) -> None:
        if token == CHANNEL:
            self._header = ""
            self._in_message = False
            self._channel = ""
        elif token == MESSAGE:
            if self._channel == "":
                self._channel = self._header.strip().split()[0] if self._header.strip() else "final"
            self._in_message = True
            if self._channel == "final":
                self.parsed.has_final = True
        elif token in STOPS:
            if self._in_message and (self._channel or "final") == "final":
                self.parsed.complete = True
            self._in_message = False
            self._channel = None
        elif token == START:
            self._in_message = False
            self._channel = None
            self._header = ""


def _partial_token_tail(text: str) -> int:
    """How many characters at the end of `text` could be the beginning of a special token."""
    at = text.rfind("<")
    if at == -1 or "|>" in text[at:]:
        return 0
    tail = text[at:]
    return len(tail) if any(t.startswith(tail) for t in ("<|start|>", "<|channel|>", "<|message|>", "<|end|>",
                                                          "<|return|>", "<|call|>", "<|constrain|>")) else 0


def parse(completion: str) -> Parsed:
    stream = HarmonyStream()
    stream.feed(completion)
    return stream.close()
