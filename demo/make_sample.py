"""Writes the demo's data: support conversations for a fictional product, made here, nothing downloaded.

The product (the Orbit 3 robot vacuum by Tidyhome) does not exist, so a pretrained model cannot know its
facts (reset gesture, battery times, error codes, warranty) or its support desk's house style (a greeting,
one or two short sentences, the "— Orbit Support" sign-off). That is what the fine-tune has to teach, and
what the held-out file measures: each of its prompts paraphrases training questions it never saw verbatim.

    sample_chat.jsonl           48 training conversations (ultrachat-shaped: prompt, prompt_id, messages)
    sample_chat.test.jsonl      held-out paraphrases, one per topic
    sample_chat.manifest.json   names both, so the run trains on the first and evaluates on the second

Deterministic (seeded), so the demo's content hash, split and run id are the same on every machine.
Run: python -m demo.make_sample
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TRAIN = HERE / "sample_chat.jsonl"
TEST = HERE / "sample_chat.test.jsonl"
MANIFEST = HERE / "sample_chat.manifest.json"
SIGN_OFF = "— Orbit Support"

# topic: (training questions, held-out paraphrase, the support desk's answer)
TOPICS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "reset": (
        (
            "How do I reset my Orbit 3?",
            "My Orbit 3 is frozen. How can I restart it?",
            "What is the way to factory reset the Orbit 3 vacuum?",
            "The vacuum stopped responding, how do I reboot it?",
            "How do I reset the robot?",
            "Is there a reset button on the Orbit 3?",
        ),
        "My Orbit won't respond to anything. How do I reset it?",
        "Hold the Home button for 10 seconds until the ring blinks blue, then let it restart.",
    ),
    "battery": (
        (
            "How long does the Orbit 3 battery last?",
            "What is the runtime on one charge?",
            "How many minutes can the Orbit 3 clean before it needs charging?",
            "Battery life of the Orbit 3?",
            "How long will it run on a full battery?",
            "Does Turbo mode drain the battery faster?",
        ),
        "How long can my Orbit vacuum clean on a single charge?",
        "About 140 minutes in Eco mode and 90 minutes in Turbo mode on a full charge.",
    ),
    "warranty": (
        (
            "What warranty does the Orbit 3 have?",
            "How long is the Orbit 3 guarantee?",
            "Is my robot vacuum still under warranty after two years?",
            "What does the warranty cover?",
            "How many years of warranty do I get?",
            "Is the battery covered by the warranty?",
        ),
        "How many years is the Orbit 3 covered by the warranty?",
        "The Orbit 3 has a 3-year warranty on the robot and 1 year on the battery.",
    ),
    "filter": (
        (
            "How often should I change the filter?",
            "When do I replace the Orbit 3 filter?",
            "Which filter does the Orbit 3 use?",
            "The filter looks dirty, should I replace it?",
            "How often does the HEPA filter need changing?",
            "What is the part number of the filter?",
        ),
        "How frequently do I need a new filter for my Orbit?",
        "Replace the HEPA filter every 8 weeks; the part number is TH-F12.",
    ),
    "e7": (
        (
            "What does error E7 mean?",
            "My Orbit 3 shows E7, what should I do?",
            "The display says E7 and it stopped.",
            "How do I fix an E7 error?",
            "E7 on my vacuum?",
            "Why does my Orbit 3 beep and show E7?",
        ),
        "The robot halted with code E7. What is wrong?",
        "E7 means the main brush is jammed: remove the brush and clear the hair around it.",
    ),
    "wifi": (
        (
            "Why can't the app find my Orbit 3?",
            "The Orbit 3 will not connect to my Wi-Fi.",
            "Does the Orbit 3 work with 5 GHz Wi-Fi?",
            "Pairing with the app keeps failing.",
            "How do I connect the vacuum to the app?",
            "Which Wi-Fi band does the Orbit 3 need?",
        ),
        "My Orbit fails to join my home Wi-Fi network. Why?",
        "The Orbit 3 only joins 2.4 GHz Wi-Fi networks, so switch your router or phone to 2.4 GHz.",
    ),
    "returns": (
        (
            "Can I return my Orbit 3?",
            "What is your return policy?",
            "How many days do I have to send the vacuum back?",
            "I want a refund for my Orbit 3.",
            "Is it too late to return the robot after a month?",
            "Do I need the receipt to return it?",
        ),
        "How long do I have to return the Orbit if I don't like it?",
        "You can return it within 45 days with the receipt for a full refund.",
    ),
    "dock": (
        (
            "Where should I put the charging dock?",
            "How much space does the dock need?",
            "The Orbit 3 cannot find its dock.",
            "Where is the best place for the base station?",
            "The robot never gets back to the charger.",
            "Can the dock go in a corner?",
        ),
        "What is the right spot for the Orbit docking station?",
        "Place the dock against a wall with 50 cm of clear space on each side.",
    ),
}


def _answer(text: str) -> str:
    return f"Hi! {text} {SIGN_OFF}"


def _row(index: int, question: str, answer: str) -> dict[str, Any]:
    messages = [{"role": "user", "content": question}, {"role": "assistant", "content": _answer(answer)}]
    prompt_id = hashlib.sha256(f"{index}:{question}".encode()).hexdigest()
    return {"prompt": question, "prompt_id": prompt_id, "messages": messages}


def conversations(count: int = 48, seed: int = 7) -> list[dict[str, Any]]:
    """`count` training conversations: every question of every topic (repeated past 48), shuffled."""
    questions = [(q, answer) for asked, _, answer in TOPICS.values() for q in asked]
    rng = random.Random(seed)
    rows = [_row(i, *questions[i % len(questions)]) for i in range(count)]
    rng.shuffle(rows)
    return rows


def held_out() -> list[dict[str, Any]]:
    """One paraphrased question per topic, none of them in the training file."""
    return [_row(1000 + i, question, answer) for i, (_, question, answer) in enumerate(TOPICS.values())]


def main() -> None:
    TRAIN.write_text("".join(json.dumps(r) + "\n" for r in conversations()), encoding="utf-8")
    TEST.write_text("".join(json.dumps(r) + "\n" for r in held_out()), encoding="utf-8")
    MANIFEST.write_text(json.dumps({"data": TRAIN.name, "test": TEST.name}, indent=2) + "\n",
                        encoding="utf-8")
    print(f"wrote {TRAIN.name}, {TEST.name} and {MANIFEST.name} in {HERE}")


if __name__ == "__main__":
    main()
