"""Writes data/sample_conversations.jsonl: the bundled chat data for the embedded default and the tests.

    python gpu-runner/trainer/data/make_sample.py

Short, regular conversations that a tiny model can learn in a few dozen steps, so the loss visibly falls during
a quick_test on a laptop. One JSON object per line: {"messages": [{"role": ..., "content": ...}, ...]}.
The output is deterministic (fixed seed); re-running it rewrites the same file.
"""
import json
import random
from pathlib import Path

CAPITALS = {
    "France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid", "Portugal": "Lisbon",
    "Japan": "Tokyo", "Canada": "Ottawa", "Egypt": "Cairo", "Kenya": "Nairobi", "Peru": "Lima",
    "Chile": "Santiago", "Norway": "Oslo", "Sweden": "Stockholm", "Finland": "Helsinki", "Greece": "Athens",
    "Austria": "Vienna", "Poland": "Warsaw", "Ireland": "Dublin", "Cuba": "Havana", "India": "New Delhi",
}
OPPOSITES = {
    "hot": "cold", "up": "down", "fast": "slow", "light": "dark", "open": "closed", "early": "late",
    "big": "small", "happy": "sad", "full": "empty", "wet": "dry", "hard": "soft", "loud": "quiet",
}
NAMES = ["Ada", "Linus", "Grace", "Alan", "Maya", "Ravi", "Yuki", "Omar", "Lena", "Tariq"]
SYSTEM = "You are Otto, the team's concise helper."


def conversations(rng: random.Random):
    for country, city in CAPITALS.items():
        yield [("user", f"What is the capital of {country}?"), ("assistant", f"The capital of {country} is {city}.")]
    for word, other in OPPOSITES.items():
        yield [("user", f"What is the opposite of {word}?"), ("assistant", f"The opposite of {word} is {other}.")]
        yield [("user", f"What is the opposite of {other}?"), ("assistant", f"The opposite of {other} is {word}.")]
    for name in NAMES:
        yield [("system", SYSTEM), ("user", f"Say hello to {name}."), ("assistant", f"Hello, {name}! Welcome to the team.")]
        yield [("user", f"Who are you, {name} asks."), ("assistant", f"Hi {name}, I am Otto, the team's helper.")]
    for _ in range(60):
        start = rng.randint(1, 20)
        length = rng.randint(3, 6)
        numbers = ", ".join(str(n) for n in range(start, start + length))
        yield [("user", f"Count from {start} to {start + length - 1}."), ("assistant", f"{numbers}.")]
    for _ in range(40):
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        yield [("user", f"What is {a} plus {b}?"), ("assistant", f"{a} plus {b} is {a + b}.")]


def main() -> None:
    rng = random.Random(7)
    rows = [{"messages": [{"role": r, "content": c} for r, c in conv]} for conv in conversations(rng)]
    rng.shuffle(rows)
    out = Path(__file__).with_name("sample_conversations.jsonl")
    out.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    print(f"wrote {len(rows)} conversations to {out}")


if __name__ == "__main__":
    main()
