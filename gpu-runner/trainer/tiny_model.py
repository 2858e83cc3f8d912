"""Builds the tiny base model of the embedded default: the gpt-oss architecture with random weights and a tokenizer
trained on the bundled sample data. Nothing is downloaded.

    python gpu-runner/trainer/tiny_model.py --out .cache/tiny-gpt-oss

train.py calls ensure_tiny_model() when --base-model is "tiny", so the first run builds it (a few seconds).
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SAMPLE_DATA = HERE / "data" / "sample_conversations.jsonl"
BASE_NAME = "tiny-gpt-oss"
SEED = 1234
VOCAB_SIZE = 600
# Harmony's special tokens (gpt-oss's chat format), so the tiny model speaks the same protocol as the real one.
SPECIAL_TOKENS = ["<|endoftext|>", "<|start|>", "<|message|>", "<|end|>", "<|channel|>", "<|return|>"]
# Harmony with only the final channel: <|start|>{role}<|message|>{text}<|end|>, the assistant's as
# <|start|>assistant<|channel|>final<|message|>{text}<|end|>.
CHAT_TEMPLATE = (
    "{%- for m in messages -%}"
    "{%- if m['role'] == 'assistant' -%}"
    "<|start|>assistant<|channel|>final<|message|>{{ m['content'] }}<|end|>"
    "{%- else -%}"
    "<|start|>{{ m['role'] }}<|message|>{{ m['content'] }}<|end|>"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|start|>assistant{%- endif -%}"
)
# Small enough to train in seconds on two CPU cores; the real layer types (sliding + full attention, sinks, MoE).
MODEL_SHAPE = dict(
    hidden_size=64, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
    head_dim=16, num_local_experts=4, num_experts_per_tok=2, max_position_embeddings=131072, sliding_window=128,
    layer_types=["sliding_attention", "full_attention"], initializer_range=0.1,
)
# A LoRA on random weights needs a larger step than the real model to move in a quick_test; train.py reads this
TRAINING_DEFAULTS = {"learning_rate": 0.02}


def build_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    texts = []
    for line in SAMPLE_DATA.read_text(encoding="utf-8").splitlines():
        texts.extend(m["content"] for m in json.loads(line)["messages"])
    texts += ["user", "assistant", "system", "final", "analysis"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|start|>", eos_token="<|end|>",
                                   pad_token="<|endoftext|>", additional_special_tokens=SPECIAL_TOKENS[1:])
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build(out: Path) -> Path:
    import torch
    from transformers import GptOssConfig, GptOssForCausalLM

    tokenizer = build_tokenizer()
    torch.manual_seed(SEED)
    config = GptOssConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                          eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id,
                          tie_word_embeddings=False, **MODEL_SHAPE)
    model = GptOssForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    # Build in a temporary folder beside the target, then rename: a crash never leaves half a model behind, and two
    # runners building at once both end with a whole one.
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "training_defaults.json").write_text(json.dumps(TRAINING_DEFAULTS, indent=2) + "\n")
    from models_dir import give_ordinary_modes
    give_ordinary_modes(tmp)  # mkdtemp's 0700 and safetensors' 0600: readable by the inference worker's user too
    try:
        os.rename(tmp, out)
    except OSError:  # another process finished first
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def ensure_tiny_model(out: Path) -> Path:
    return out if (out / "config.json").exists() else build(out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(".cache") / BASE_NAME)
    print(ensure_tiny_model(parser.parse_args().out))
