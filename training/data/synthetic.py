"""Small MCQ tasks generated on the spot for `baas demo` and tests: no files, no network.

Each generator returns rows in the baas jsonl format, identical for the same split on every run;
`SyntheticAdapter` reads them as a dataset. The word lists are written for this project.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Callable, Iterator

from baas.training.data.jsonl import JsonlAdapter
from baas.training.data.schema import SPLITS

CATEGORIES = {
    "fruit": ["apple", "banana", "cherry", "mango", "pear", "plum", "grape", "peach", "lemon", "melon"],
    "animal": ["horse", "tiger", "rabbit", "eagle", "salmon", "wolf", "camel", "otter", "goat", "snake"],
    "tool": ["hammer", "wrench", "saw", "chisel", "drill", "shovel", "pliers", "rake", "axe", "screwdriver"],
    "vehicle": ["car", "truck", "bicycle", "train", "boat", "bus", "tractor", "scooter", "van", "airplane"],
    "colour": ["red", "blue", "green", "yellow", "purple", "orange", "brown", "pink", "grey", "black"],
    "instrument": ["piano", "violin", "guitar", "drum", "flute", "trumpet", "cello", "harp", "banjo", "oboe"],
}

ANIMAL_SOUNDS = {
    "cow": "moo", "dog": "woof", "cat": "meow", "duck": "quack", "sheep": "baa", "pig": "oink",
    "lion": "roar", "snake": "hiss", "owl": "hoot", "horse": "neigh", "bee": "buzz", "frog": "croak",
    "mouse": "squeak", "rooster": "cock-a-doodle-doo", "wolf": "howl", "donkey": "hee-haw",
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


def animal_sounds(split: str) -> list[dict]:
    rng = random.Random(SPLIT_SEEDS[split])
    sounds = sorted(set(ANIMAL_SOUNDS.values()))
    templates = ["What sound does a {} make?", "Which noise would you hear from a {}?", "A {} usually goes:"]
    rows = []
    for i in range(SPLIT_SIZES[split]):
        animal = rng.choice(sorted(ANIMAL_SOUNDS))
        answer = ANIMAL_SOUNDS[animal]
        distractors = rng.sample([s for s in sounds if s != answer], 3)
        rows.append(_row(rng, f"{split}-{i}", rng.choice(templates).format(animal), answer, distractors, "animals"))
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
        rows.append(_row(rng, f"{split}-{i}", f"Which of these is {'an' if target[0] in 'aeiou' else 'a'} {target}?", answer, distractors, target))
    return rows


def opposites(split: str) -> list[dict]:
    rng = random.Random(SPLIT_SEEDS[split])
    rows = []
    for i in range(SPLIT_SIZES[split]):
        word, answer = rng.choice(OPPOSITES)
        if rng.random() < 0.5:
            word, answer = answer, word
        # "light" pairs with both "dark" and "heavy": keep every partner of the word out of the distractors.
        partners = {w for pair in OPPOSITES if word in pair for w in pair}
        pool = sorted({w for pair in OPPOSITES for w in pair} - partners)
        rows.append(_row(rng, f"{split}-{i}", f"What is the opposite of '{word}'?", answer, rng.sample(pool, 3), "antonyms"))
    return rows


GENERATORS: dict[str, Callable[[str], list[dict]]] = {
    "demo_animal_sounds": animal_sounds,
    "demo_categories": categories,
    "demo_opposites": opposites,
}


class SyntheticAdapter(JsonlAdapter):
    """A built-in generated task (see the generators above): rows in the baas jsonl format, made on the spot."""

    def __init__(self, name: str, generate: Callable[[str], list[dict]]):
        super().__init__(name)
        self.generate = generate

    def describe_source(self, data_dir: Path | None) -> str:
        return "generated (built-in demo task)"

    def available_splits(self, data_dir: Path | None) -> list[str]:
        return list(SPLITS)

    def rows(self, split: str, data_dir: Path | None) -> tuple[str, Iterator[tuple[str, Any]]]:
        source = f"{self.name} generator"
        return source, ((f"{source}[{split}] row {i}", row) for i, row in enumerate(self.generate(split)))
