"""The stdout protocol against the fixture files that the TypeScript side checks too."""
import json

import pytest

import protocol
from conftest import TRAINER

FIXTURES = TRAINER / "protocol"


def lines(name):
    return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("message", lines("valid.jsonl"), ids=lambda m: m["type"])
def test_every_valid_fixture_line_is_accepted(message):
    assert protocol.problems(message) == []


@pytest.mark.parametrize("message", lines("invalid.jsonl"), ids=str)
def test_every_invalid_fixture_line_is_refused(message):
    assert protocol.problems(message) != []


def test_the_valid_fixture_covers_every_message_type_and_error_kind():
    valid = lines("valid.jsonl")
    assert {m["type"] for m in valid} == set(protocol.MESSAGES)
    assert {m["kind"] for m in valid if m["type"] == "error"} == set(protocol.ERROR_KINDS)


def test_the_trainer_cannot_emit_a_message_that_breaks_the_protocol():
    with pytest.raises(ValueError, match="loss"):
        protocol.emit("step", step=1, max_steps=3, loss="low", learning_rate=0.1, epoch=0.1, elapsed_s=1)
    with pytest.raises(ValueError, match="not finite"):
        protocol.emit("step", step=1, max_steps=3, loss=float("nan"), learning_rate=0.1, epoch=0.1, elapsed_s=1)
