"""Writes demo/sample_chat.jsonl: a small ultrachat-shaped chat dataset, made here, nothing downloaded.

Deterministic (seeded), so the demo's content hash, split and run id are the same on every machine.
Run: python -m demo.make_sample
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

TOPICS = {
    "tea": ("How should I brew green tea?", "Use water around 80 C and steep for two minutes; hotter water "
            "or longer steeping makes it bitter."),
    "backup": ("What is a good backup rule?", "Keep three copies of your data on two kinds of storage, with "
               "one copy off site."),
    "python": ("How do I read a file line by line in Python?",
               "Open it with a with-statement and loop over the file object: for line in f: handle(line)."),
    "sleep": ("Any tips for sleeping better?", "Keep a regular schedule, dim the lights in the evening and "
              "keep screens out of the bedroom."),
    "bread": ("Why did my bread not rise?", "The yeast may have been old or the water too hot; test the "
              "yeast "
              "in warm water with a pinch of sugar first."),
    "git": ("How do I undo my last git commit?", "Run git reset --soft HEAD~1 to undo the commit but keep "
            "your changes staged."),
    "plants": ("How often should I water a cactus?", "Water it thoroughly only when the soil is completely "
               "dry, about every two to three weeks."),
    "run": ("How do I start running?", "Begin with short run-walk intervals three times a week and add a "
            "few minutes each week."),
}
FOLLOW_UPS = [
    ("Thanks! Anything else I should know?", "Start small, note what works for you, and adjust slowly."),
    ("Can you say that more briefly?", "Sure: keep it simple and be consistent."),
    ("Is there a common mistake to avoid?", "Rushing it. Most problems come from doing too much at once."),
]


def conversations(count: int = 48, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    names = sorted(TOPICS)
    rows = []
    for i in range(count):
        question, answer = TOPICS[names[i % len(names)]]
        messages = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        for follow_q, follow_a in rng.sample(FOLLOW_UPS, k=rng.randint(0, 2)):
            messages += [{"role": "user", "content": follow_q}, {"role": "assistant", "content": follow_a}]
        prompt_id = hashlib.sha256(f"{i}:{question}".encode()).hexdigest()
        rows.append({"prompt": question, "prompt_id": prompt_id, "messages": messages})
    return rows


def main() -> None:
    out = Path(__file__).with_name("sample_chat.jsonl")
    out.write_text("".join(json.dumps(r) + "\n" for r in conversations()), encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
