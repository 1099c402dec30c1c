"""Loading the base model a job fine-tunes (BASE_MODEL), preparing a built-in one first.

Which names exist, and why one is refused, is the adapter's to say without loading anything
(shared/platforms/local/base_model_names.py); this module turns a name into a loaded model. Every model
loads through AutoModelForCausalLM/AutoTokenizer.from_pretrained, so the default and the tiny model exercise
the path any other model takes. A directory may carry its own fine-tune defaults (DEFAULTS_FILE).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.models import smollm2, tiny
from shared.platforms.local.base_model_names import (
    DEFAULT,
    DEFAULTS_FILE,
    TINY_RANDOM,
    WheelMissing,
    label,
)


class BaseModelUnavailable(RuntimeError):
    """The base model named is not a loadable directory or cached model id."""


def source(name: str, cache_dir: Path) -> str:
    """The directory (or cached model id) `name` loads from, preparing a built-in model first if needed."""
    given = label(name)
    try:
        if given == DEFAULT:
            return str(smollm2.ensure_prepared(cache_dir))
    except WheelMissing as exc:
        raise BaseModelUnavailable(str(exc)) from None
    if given == TINY_RANDOM:
        return str(tiny.ensure_tiny_base_model(cache_dir))
    # A model id looks like "org/name"; anything written as a path must be an existing directory.
    if given.startswith(("/", ".", "~")) and not Path(given).expanduser().is_dir():
        raise BaseModelUnavailable(
            f"base model directory {given} does not exist; set BASE_MODEL to a model directory, a cached "
            f"model id, {DEFAULT} (the default) or {TINY_RANDOM}")
    return str(Path(given).expanduser()) if given.startswith("~") else given


def prepare_default(data_dir: Path) -> tuple[str, str]:
    """The default base model, made ready under `data_dir` once (its name and directory).

    Set-up, like installing packages: `make demo` calls it before its clock starts; a job would otherwise do
    it on first use.
    """
    return DEFAULT, source(DEFAULT, data_dir / "models")


def load_base_model(name: str, cache_dir: Path) -> tuple[Any, Any]:
    """(model, tokenizer) of the base model `name`, in full precision, on the GPU when there is one: training
    keeps fp32 master weights and runs in bf16 autocast there (sft_config).

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
