"""`BASE_MODEL=tiny-random`: a tiny chat LM built offline, deterministically, in about a second.

It checks the plumbing and learns nothing: a BPE tokenizer trained on the small English corpus below and a
2-layer Llama initialised from a fixed seed, so every machine (and every concurrent builder) produces the same
files. Plumbing tests use it for speed; it loads through the same `from_pretrained` path as any other model.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from shared.platforms.local.base_model_names import DEFAULTS_FILE

TINY_MODEL_NAME = "tiny-chat-v2"  # v2: the template renders tools
# A randomly initialised 2-layer model needs a far larger step, and more epochs, than a pretrained one to
# learn anything in seconds. Measured on the demo data: 20 epochs (~7 s) turn noise into recognisable text.
TINY_FINETUNE_DEFAULTS = {"learning_rate": "1e-2", "num_train_epochs": "20",
                          "per_device_train_batch_size": "4", "lora_r": "16", "lora_alpha": "16"}
SEED = 1234

BOS, EOS, PAD = "<s>", "<|end|>", "<pad>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")

# The assistant turn, including its end-of-turn token, sits inside {% generation %} (answers and stopping are
# learned, prompts are not). Tools are offered in a block before the conversation (one JSON schema a line),
# an assistant's tool calls follow its text as <tool_call>{"name", "arguments"}</tool_call>, and a tool's
# reply is a `tool` turn: the usual shape of tool-aware templates, so tool-calling data trains here too.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% if tools %}{{ '<|system|>\nTools:\n' }}"
    "{% for tool in tools %}"
    "{{ (tool['function'] if tool['function'] is defined else tool) | tojson }}{{ '\n' }}"
    "{% endfor %}{{ '<|end|>\n' }}{% endif %}"
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|assistant|>\n' }}{% generation %}{{ message['content'] or '' }}"
    "{% for call in message['tool_calls'] or [] %}"
    "{{ '<tool_call>' + {'name': call['function']['name'],"
    " 'arguments': call['function']['arguments']} | tojson + '</tool_call>' }}{% endfor %}"
    "{{ '<|end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% else %}"
    "{{ '<|' + message['role'] + '|>\n' + (message['content'] or '') + '<|end|>\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)

# A small, varied English corpus: enough merges for everyday words so sequences stay short.
CORPUS = """\
The quick brown fox jumps over the lazy dog near the quiet river bank.
Hello! How are you today? I am fine, thank you for asking.
Can you help me write a short email to my manager about the project deadline?
Sure. Here is a short email you can send to your manager about the new deadline.
What is the capital of France? The capital of France is Paris.
Explain how photosynthesis works in simple terms for a child.
Plants use sunlight, water and air to make their own food and release oxygen.
Please summarize the main points of the article in three sentences.
The article describes how cities can reduce traffic by improving public transport.
Write a poem about the ocean at night, with stars reflected on the water.
Give me a recipe for a simple tomato soup with garlic and fresh basil.
First, chop the onions and garlic. Then cook them slowly in olive oil.
How do I sort a list of numbers in Python? Use the sorted function or the sort method.
Translate this sentence into Spanish: where is the train station?
The weather today is sunny with a light breeze and a high of twenty degrees.
Tell me a story about a brave little robot who wanted to learn to paint.
Once upon a time there was a small robot who lived in a busy workshop.
What are the benefits of regular exercise for health and mood?
Exercise improves sleep, strengthens the heart and helps people feel happier.
Describe the difference between weather and climate in one paragraph.
Weather changes from day to day, while climate is the average over many years.
I would like to plan a weekend trip to the mountains with my family.
The meeting has been moved to Thursday afternoon at three o'clock.
Thank you for your patience; we will answer your question as soon as possible.
Students should read the chapter carefully and answer the questions at the end.
The company reported strong growth in sales during the second quarter of the year.
Could you recommend a good book about history, science or travel?
Music, art and literature help people share ideas and feelings across cultures.
Remember to drink water, take short breaks and stretch when you work at a desk.
The assistant answered the user's question clearly, politely and with useful detail.
Numbers: one, two, three, four, five, six, seven, eight, nine, ten, 1, 2, 3, 10, 100, 2024.
"""

MODEL_CONFIG: dict[str, Any] = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "max_position_embeddings": 512,
    "tie_word_embeddings": True,
}
VOCAB_SIZE = 512
# Builders in one process take turns: transformers resolves its lazy names unsafely from two threads at once
# (the second may get "cannot import name 'PreTrainedTokenizerFast'"). Processes still race, by rename.
_BUILDING = threading.Lock()


def ensure_tiny_base_model(cache_dir: Path) -> Path:
    """The tiny chat model's directory under `cache_dir`, building it first if it is not there yet.

    Built in a private temporary directory and renamed into place, so concurrent builders never see a half
    written model: the first rename wins and the others discard their copy.
    """
    target = Path(cache_dir) / TINY_MODEL_NAME
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{TINY_MODEL_NAME}-", dir=target.parent))
    try:
        with _BUILDING:
            _build(staging)
        try:
            os.rename(staging, target)
        except OSError:
            if not target.is_dir():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _build(directory: Path) -> None:
    tokenizer = _train_tokenizer()
    model = _init_model(tokenizer)
    tokenizer.save_pretrained(directory)
    model.save_pretrained(directory)
    (directory / DEFAULTS_FILE).write_text(json.dumps(TINY_FINETUNE_DEFAULTS, indent=2) + "\n")


def _train_tokenizer() -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    # Byte-level: every input string is encodable, so user data never hits an unknown token.
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=[PAD, BOS, EOS, *ROLE_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(CORPUS.splitlines(), trainer=trainer)
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=bpe,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=list(ROLE_TOKENS),
        chat_template=CHAT_TEMPLATE,
        model_max_length=MODEL_CONFIG["max_position_embeddings"],
        # Clean-up is meant for WordPiece; on byte-level BPE it would strip spaces before punctuation.
        clean_up_tokenization_spaces=False,
    )


def _init_model(tokenizer: Any) -> Any:
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **MODEL_CONFIG,
    )
    torch.manual_seed(SEED)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(  # type: ignore[no-untyped-call]
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return model
