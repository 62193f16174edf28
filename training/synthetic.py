"""Small MCQ tasks generated on the spot for `baas demo` and tests: no files, no network.

Each generator returns rows in the baas jsonl format, identical for the same split on every run.
The word lists are written for this project.
"""

from __future__ import annotations

import random
from typing import Callable

CATEGORIES = {
    "fruit": ["apple", "banana", "cherry", "mango", "pear", "plum", "grape", "peach", "lemon", "melon"],
    "animal": ["horse", "tiger", "rabbit", "eagle", "salmon", "wolf", "camel", "otter", "goat", "snake"],
    "tool": ["hammer", "wrench", "saw", "chisel", "drill", "shovel", "pliers", "rake", "axe", "screwdriver"],
    "vehicle": ["car", "truck", "bicycle", "train", "boat", "bus", "tractor", "scooter", "van", "airplane"],
    "colour": ["red", "blue", "green", "yellow", "purple", "orange", "brown", "pink", "grey", "black"],
    "instrument": ["piano", "violin", "guitar", "drum", "flute", "trumpet", "cello", "harp", "banjo", "oboe"],
}

OPPOSITES = [
    ("hot", "cold"), ("big", "small"), ("fast", "slow"), ("happy", "sad"), ("early", "late"),
    ("light", "dark"), ("open", "closed"), ("full", "empty"), ("strong", "weak"), ("rich", "poor"),
    ("young", "old"), ("wet", "dry"), ("loud", "quiet"), ("hard", "soft"), ("high", "low"),
    ("thick", "thin"), ("clean", "dirty"), ("easy", "difficult"), ("near", "far"), ("long", "short"),
    ("heavy", "light"), ("true", "false"), ("win", "lose"), ("buy", "sell"), ("push", "pull"),
]

SPLIT_SIZES = {"train": 300, "validation": 100, "test": 100}
SPLIT_SEEDS = {"train": 1, "validation": 2, "test": 3}


def _row(rng: random.Random, uid: str, question: str, answer: str, distractors: list[str], topic: str) -> dict:
    options = [answer] + distractors
    rng.shuffle(options)
    return {"id": uid, "question": question, "options": options, "label": options.index(answer), "topic": topic}


def arithmetic(split: str) -> list[dict]:
    rng = random.Random(SPLIT_SEEDS[split])
    rows = []
    for i in range(SPLIT_SIZES[split]):
        a, b = rng.randint(2, 60), rng.randint(2, 40)
        op = rng.choice(["plus", "minus"])
        answer = a + b if op == "plus" else a - b
        wrong = set()
        while len(wrong) < 3:
            candidate = answer + rng.choice([-10, -2, -1, 1, 2, 10, 20])
            if candidate != answer:
                wrong.add(candidate)
        rows.append(_row(rng, f"{split}-{i}", f"What is {a} {op} {b}?", str(answer), [str(w) for w in wrong], "arithmetic"))
    return rows


def categories(split: str) -> list[dict]:
    rng = random.Random(SPLIT_SEEDS[split])
    names = sorted(CATEGORIES)
    rows = []
    for i in range(SPLIT_SIZES[split]):
        target = rng.choice(names)
        others = rng.sample([n for n in names if n != target], 3)
        answer = rng.choice(CATEGORIES[target])
        distractors = [rng.choice(CATEGORIES[o]) for o in others]
        rows.append(_row(rng, f"{split}-{i}", f"Which of these is a {target}?", answer, distractors, target))
    return rows


def opposites(split: str) -> list[dict]:
    rng = random.Random(SPLIT_SEEDS[split])
    rows = []
    for i in range(SPLIT_SIZES[split]):
        word, answer = rng.choice(OPPOSITES)
        if rng.random() < 0.5:
            word, answer = answer, word
        pool = sorted({w for pair in OPPOSITES for w in pair} - {word, answer})
        rows.append(_row(rng, f"{split}-{i}", f"What is the opposite of '{word}'?", answer, rng.sample(pool, 3), "antonyms"))
    return rows


GENERATORS: dict[str, Callable[[str], list[dict]]] = {
    "demo_arithmetic": arithmetic,
    "demo_categories": categories,
    "demo_opposites": opposites,
}
