"""The evaluation report: figures from answers and losses, JSON round trip, HTML and text renderings."""

from __future__ import annotations

import json
import math
from pathlib import Path

from shared.evaluation import build_report, held_out, rouge_l
from shared.evaluation.artifacts import read, write
from shared.evaluation.render import fragment, page, text_table

REFERENCES = ["Hold the Home button for 10 seconds.", "About 140 minutes in Eco mode."]
PROMPTS = ["How do I reset it?", "Battery life?"]


def report():
    answers = {"base": ["I am not sure, try the manual.", "It depends on your <model>."],
               "candidate": ["Hold the Home button for 10 seconds.", "About 140 minutes."]}
    return build_report(PROMPTS, REFERENCES, answers, {"base": 4.5, "candidate": 0.4},
                        {"base": "SmolLM2-135M-Instruct", "candidate": "ft-demo"}, test_rows=8,
                        max_new_tokens=64)


def test_figures_per_model_and_flat_metrics_as_a_job_records_them():
    made = report()
    base, tuned = made.score("base"), made.score("candidate")
    assert base is not None and tuned is not None and made.score("live") is None
    answered = ["Hold the Home button for 10 seconds.", "About 140 minutes."]
    assert tuned.rouge_l == rouge_l(answered, REFERENCES)
    assert tuned.rouge_l > base.rouge_l and tuned.perplexity == math.exp(0.4)
    metrics = made.metrics()
    assert metrics["base_eval_loss"] == 4.5 and metrics["eval_loss"] == 0.4
    assert set(metrics) == {"base_eval_loss", "base_perplexity", "base_rouge_l", "eval_loss", "perplexity",
                            "rouge_l"}
    assert made.answered == 2 and made.test_rows == 8 and len(made.samples) == 2
    assert made.samples[0].answers == {"base": "I am not sure, try the manual.",
                                       "candidate": "Hold the Home button for 10 seconds."}


def test_json_round_trip_and_artifacts_on_disk(tmp_path: Path):
    made = report()
    paths = write(made, tmp_path / "evaluation", "Evaluation of ft-demo")
    assert [p.name for p in paths] == ["eval_report.json", "eval_report.html"]
    assert json.loads(paths[0].read_text())["scores"][1]["perplexity"] == math.exp(0.4)
    assert read(tmp_path / "evaluation") == made
    assert read(tmp_path / "nowhere") is None


def test_html_escapes_model_output_and_marks_the_better_figures():
    html = fragment(report())
    assert "&lt;model&gt;" in html and "<model>" not in html
    assert '<td class="num best">0.400</td>' in html  # the lower loss
    assert "fine-tuned (this run)" in html and "reference" in html
    assert page(report(), "Evaluation").startswith("<!DOCTYPE html>")


def test_text_table_lists_each_model_and_the_samples():
    text = text_table(report())
    assert "base model" in text and "fine-tuned (this run)" in text and "4.500" in text
    assert "Q: How do I reset it?" in text and "reference:" in text


def test_held_out_cuts_each_conversation_before_its_last_answer():
    rows = [{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                          {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]},
            {"messages": [{"role": "user", "content": "no answer"}]}]
    prompts, references = held_out(rows)
    assert references == ["d"] and [m["content"] for m in prompts[0]] == ["a", "b", "c"]
