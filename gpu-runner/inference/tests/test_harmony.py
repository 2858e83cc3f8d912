"""Harmony parsing on gpt-oss outputs written the way the model emits them (the format of OpenAI's harmony guide),
whole and in pieces, including answers cut off before and inside the final channel."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harmony import HarmonyStream, parse  # noqa: E402

WHOLE = ("<|channel|>analysis<|message|>User asks for the capital of France. Simple: Paris.<|end|>"
         "<|start|>assistant<|channel|>final<|message|>The capital of France is Paris.<|return|>")
WITH_PREAMBLE = ("<|channel|>analysis<|message|>Need to check the queue first.<|end|>"
                 "<|start|>assistant<|channel|>commentary<|message|>Checking the queue…<|end|>"
                 "<|start|>assistant<|channel|>final<|message|>Two jobs are waiting.<|return|>")
CUT_BEFORE_FINAL = "<|channel|>analysis<|message|>The user wants a long essay. Let me plan the sections: first"
CUT_IN_FINAL = ("<|channel|>analysis<|message|>Easy.<|end|><|start|>assistant<|channel|>final<|message|>"
                "The three steps are: one, two")


def test_the_answer_is_the_final_channel_and_the_reasoning_stays_apart():
    p = parse(WHOLE)
    assert p.final == "The capital of France is Paris."
    assert p.analysis == "User asks for the capital of France. Simple: Paris."
    assert p.complete and p.has_final


def test_commentary_preambles_are_kept_out_of_the_answer():
    p = parse(WITH_PREAMBLE)
    assert p.final == "Two jobs are waiting."
    assert p.commentary == "Checking the queue…" and "queue first" in p.analysis


def test_an_answer_cut_off_before_the_final_channel_has_no_answer_and_says_so():
    p = parse(CUT_BEFORE_FINAL)
    assert p.final == "" and not p.has_final and not p.complete
    assert p.analysis.startswith("The user wants a long essay")


def test_an_answer_cut_off_inside_the_final_channel_keeps_what_came():
    p = parse(CUT_IN_FINAL)
    assert p.final == "The three steps are: one, two" and p.has_final and not p.complete


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 13])
def test_streaming_in_pieces_shows_exactly_the_final_text(size):
    stream = HarmonyStream()
    shown = "".join(stream.feed(WHOLE[i:i + size]) for i in range(0, len(WHOLE), size))
    p = stream.close()
    assert shown == "The capital of France is Paris." == p.final
    assert "<|" not in shown and "analysis" not in shown


def test_a_completion_without_any_channel_is_all_answer():
    # a small model (or a fine-tune) may answer without headers: show it rather than nothing
    p = parse("Hello, Ada! Welcome to the team.<|end|>")
    assert p.final == "Hello, Ada! Welcome to the team." and p.complete


def test_text_that_only_looks_like_a_token_start_is_shown():
    stream = HarmonyStream()
    out = stream.feed("<|channel|>final<|message|>a <b> and <|")
    out += stream.feed("x")
    stream.close()
    assert stream.parsed.final == "a <b> and <|x"
