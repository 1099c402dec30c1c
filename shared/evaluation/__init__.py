"""Evaluation of a fine-tune on its test split: base model vs candidate vs live deployment.

`report` computes (adapter-neutral: answers, references and losses in, figures out), `render` shows it as
HTML or text, `artifacts` saves it as MLflow artifacts. The deploy gate reads the figures it records.
"""

from shared.evaluation.report import (
    BASE,
    CANDIDATE,
    LIVE,
    EvalReport,
    ModelScore,
    Sample,
    build_report,
    held_out,
    perplexity,
    rouge_l,
)

__all__ = ["BASE", "CANDIDATE", "LIVE", "EvalReport", "ModelScore", "Sample", "build_report", "held_out",
           "perplexity", "rouge_l"]
