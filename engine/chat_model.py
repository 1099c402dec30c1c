"""A causal LM and its tokenizer answering conversations with the chat template saved beside them.

One generation path for everything that asks a model for an answer: the endpoint's routes (whole, batched or
streamed) and the training job's evaluation report. The template is always the tokenizer's own — the one the
model was fine-tuned with and saved with — so training and serving format conversations the same way.
Generation keeps the KV cache on, and runs on a GPU in bf16 when there is one.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.chat_format import check_faithful, render

Messages = Sequence[dict[str, Any]]
Tools = Sequence[dict[str, Any]] | None


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" (end-of-turn token) or "length" (ran out of new tokens)


class PromptTooLong(ValueError):
    """The conversation plus the tokens asked for do not fit the model's context."""


def placement() -> tuple[str, Any]:
    """(device, dtype) for serving here: a CUDA GPU in bf16 (fp16 if bf16 is unsupported), else CPU fp32."""
    import torch

    if torch.cuda.is_available():
        return "cuda", torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return "cpu", torch.float32


class ChatModel:
    """Answers one conversation at a time (or one batch): the CPU or GPU is the bottleneck, and a lock bounds
    memory under concurrent calls."""

    def __init__(self, model: Any, tokenizer: Any, model_uri: str, *, adapter: str | None = None,
                 lock: threading.Lock | None = None) -> None:
        """`adapter`: the LoRA adapter of a multi-adapter PeftModel this chat answers with, activated under
        `lock` (shared by every ChatModel over that model) for each generation."""
        self.model_uri = model_uri
        self._adapter = adapter
        self._model = model.eval()
        self._tokenizer = tokenizer
        if tokenizer.pad_token is None:  # batches need one; padding is masked out anyway
            tokenizer.pad_token = tokenizer.eos_token
        self._context = getattr(model.config, "max_position_embeddings", None)
        eos = model.generation_config.eos_token_id
        self._eos = {*(eos if isinstance(eos, list) else [eos]), tokenizer.eos_token_id} - {None}
        # Role markers, padding and BOS never belong inside a reply; decoded they would vanish into "".
        self._suppress = sorted(set(tokenizer.all_special_ids) - self._eos)
        self._lock = lock or threading.Lock()

    @property
    def model(self) -> Any:
        return self._model

    @property
    def tokenizer(self) -> Any:
        return self._tokenizer

    @classmethod
    def load(cls, model_dir: Path, model_uri: str) -> ChatModel:
        """Load an `mlflow.transformers` model from its artifact directory, on the GPU when there is one.

        A model saved with its weights (what the local trainer logs: LoRA merged) loads straight through
        `from_pretrained`, which skips importing MLflow and starts a deployment seconds sooner; anything
        else (a PEFT adapter, weights referenced from a hub) goes through `mlflow.transformers`.
        """
        import yaml

        flavor = yaml.safe_load((model_dir / "MLmodel").read_text())["flavors"]["transformers"]
        if flavor.get("model_binary") and "tokenizer" in flavor.get("components", []) \
                and not flavor.get("peft_adaptor"):
            from transformers import AutoModelForCausalLM, AutoTokenizer

            device, dtype = placement()
            model: Any = AutoModelForCausalLM.from_pretrained(model_dir / flavor["model_binary"], dtype=dtype)
            tokenizer = AutoTokenizer.from_pretrained(model_dir / "components" / "tokenizer")
            return cls(model.to(device), tokenizer, model_uri)
        return cls.load_with_mlflow(model_dir, model_uri)

    @classmethod
    def load_with_mlflow(cls, model_dir: Path, model_uri: str) -> ChatModel:
        """Load through `mlflow.transformers` (slower to import, but reads every form it saves)."""
        import mlflow

        parts = mlflow.transformers.load_model(str(model_dir), return_type="components")
        return cls(parts["model"].to(placement()[0]), parts["tokenizer"], model_uri)

    def render(self, messages: Messages, tools: Tools = None) -> str:
        """The prompt text for `messages` (and `tools`): the saved chat template with the assistant's turn
        opened, through chat_format.render, the function training renders its rows with.

        Raises ChatFormatError when the template drops the tools or tool calls (never answered without them).
        """
        text = render(self._tokenizer, messages, tools, add_generation_prompt=True)
        if tools or any(m.get("tool_calls") for m in messages):
            check_faithful(text, messages, tools, self.model_uri)
        return text

    def complete(self, messages: Messages, *, max_new_tokens: int, temperature: float = 0.0,
                 top_p: float = 1.0, do_sample: bool = False, tools: Tools = None) -> Completion:
        """The assistant's next turn (at least one new token), decoded without special tokens."""
        return self.complete_many([messages], max_new_tokens=max_new_tokens, temperature=temperature,
                                  top_p=top_p, do_sample=do_sample, tools=tools)[0]

    def complete_many(self, conversations: Sequence[Messages], *, max_new_tokens: int,
                      temperature: float = 0.0, top_p: float = 1.0,
                      do_sample: bool = False, tools: Tools = None) -> list[Completion]:
        """Answer several conversations in one batch (left-padded): one pass per token for all of them."""
        import torch

        batch = self.encode(conversations, max_new_tokens, tools)
        with self._lock, torch.inference_mode():
            self._activate()
            output = self._model.generate(**batch, **self._options(max_new_tokens, temperature, top_p,
                                                                   do_sample))
        width = int(batch["input_ids"].shape[1])
        lengths = batch["attention_mask"].sum(dim=1).tolist()
        return [self._completion(output[i, width:].tolist(), int(lengths[i])) for i in range(len(lengths))]

    def stream(self, messages: Messages, *, max_new_tokens: int, temperature: float = 0.0,
               top_p: float = 1.0, do_sample: bool = False,
               tools: Tools = None) -> Generator[str | Completion, None, None]:
        """Yield the answer's text as it is generated, then its Completion. Closing the iterator early
        stops the generation at the next token."""
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        batch = self.encode([messages], max_new_tokens, tools)
        streamer = TextIteratorStreamer(self._tokenizer, skip_prompt=True, skip_special_tokens=True)
        cancelled = threading.Event()

        class Cancelled(StoppingCriteria):  # type: ignore[misc]
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
                return cancelled.is_set()

        result: dict[str, Any] = {}
        options = {**self._options(max_new_tokens, temperature, top_p, do_sample), "streamer": streamer,
                   "stopping_criteria": StoppingCriteriaList([Cancelled()])}

        def generate() -> None:
            try:
                with self._lock, torch.inference_mode():
                    self._activate()
                    result["output"] = self._model.generate(**batch, **options)
            except BaseException as exc:  # handed to the reader, which raises it
                result["error"] = exc
                streamer.end()  # type: ignore[no-untyped-call]

        worker = threading.Thread(target=generate, name="generate", daemon=True)
        worker.start()
        try:
            yield from (piece for piece in streamer if piece)
        finally:
            cancelled.set()
            worker.join()
        if "error" in result:
            raise result["error"]
        width = int(batch["input_ids"].shape[1])
        yield self._completion(result["output"][0, width:].tolist(), width)

    def _activate(self) -> None:
        """Switch the shared model to this chat's adapter (the caller holds the lock)."""
        if self._adapter is not None and self._model.active_adapter != self._adapter:
            self._model.set_adapter(self._adapter)

    def encode(self, conversations: Sequence[Messages], max_new_tokens: int, tools: Tools = None) -> Any:
        """The conversations (each offered `tools`) as one left-padded batch on the model's device;
        PromptTooLong if too long."""
        texts = [self.render(messages, tools) for messages in conversations]
        # The template already wrote any BOS it wants; the tokenizer must not add another.
        batch = self._tokenizer(texts, padding=True, padding_side="left", add_special_tokens=False,
                                return_tensors="pt")
        longest = int(batch["attention_mask"].sum(dim=1).max())
        if self._context and longest + max_new_tokens > self._context:
            raise PromptTooLong(f"the conversation is {longest} tokens; with max_new_tokens={max_new_tokens} "
                                f"it exceeds the model's context of {self._context} tokens")
        return batch.to(self._model.device)

    def _options(self, max_new_tokens: int, temperature: float, top_p: float,
                 do_sample: bool) -> dict[str, Any]:
        options: dict[str, Any] = {"max_new_tokens": max_new_tokens, "min_new_tokens": 1, "use_cache": True,
                                   "pad_token_id": self._tokenizer.pad_token_id}
        if self._suppress:
            options["suppress_tokens"] = self._suppress
        # Temperature 0 means greedy, as in OpenAI's API; transformers rejects it for sampling.
        if do_sample and temperature > 0:
            options.update(do_sample=True, temperature=temperature, top_p=top_p)
        else:
            options.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        return options

    def _completion(self, new: list[int], prompt_tokens: int) -> Completion:
        """The answer in `new` (generated ids, padded after it ends), up to and including its end token."""
        end = next((i for i, token in enumerate(new) if token in self._eos), None)
        kept = new if end is None else new[:end + 1]
        return Completion(text=self._tokenizer.decode(kept, skip_special_tokens=True),
                          prompt_tokens=prompt_tokens, completion_tokens=len(kept),
                          finish_reason="length" if end is None else "stop")
