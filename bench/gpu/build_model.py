"""Builds a gpt-oss-architecture model with random bf16 weights in a local folder, for the GPU proof (no downloads).

    python bench/gpu/build_model.py --preset tiny  --out /tmp/gpt-oss-tiny     # the pipeline: seconds
    python bench/gpu/build_model.py --preset bench --out /tmp/gpt-oss-bench    # the benchmark: 4.45B parameters

The tokenizer is the embedded default's (trained on the bundled sample chats, Harmony's special tokens and chat
template: gpu-runner/trainer/tiny_model.py). The bench preset keeps gpt-oss-20b's layer shapes (hidden 2880, 64 query
heads and 8 key/value heads of 64, 32 experts with 4 active, intermediate 2880, sliding + full attention, vocab of
201088 rows) and only has fewer layers (4 of 24): every step does the 20B's per-layer work, over fewer layers. The
vocabulary keeps the real model's row count, so the output layer costs what it costs in the real model; the
tokenizer only ever produces the first few hundred ids.

Weights are drawn on the GPU when one is visible (a few seconds for billions of parameters) and saved as bf16
safetensors, with training_defaults.json so that train.py uses a larger learning rate on random weights.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "gpu-runner" / "trainer"))

GPT_OSS_20B = dict(  # the 20B's shapes, from its config.json
    hidden_size=2880, intermediate_size=2880, num_attention_heads=64, num_key_value_heads=8, head_dim=64,
    num_local_experts=32, num_experts_per_tok=4, vocab_size=201088, sliding_window=128,
    max_position_embeddings=131072,
)
PRESETS = {
    # the embedded tiny model's shape (tiny_model.MODEL_SHAPE), built in bf16
    "tiny": dict(hidden_size=64, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, head_dim=16, num_local_experts=4, num_experts_per_tok=2,
                 max_position_embeddings=131072, sliding_window=128, initializer_range=0.1),
    # the 20B's layers, 4 of them (the 20B has 24): 4,451,017,664 parameters, 8.3 GiB in bf16
    "bench": dict(GPT_OSS_20B, num_hidden_layers=4, initializer_range=0.02),
    # a smaller one for smoke tests of the benchmark: 2 layers, 8 experts
    "bench-small": dict(GPT_OSS_20B, num_hidden_layers=2, num_local_experts=8, initializer_range=0.02),
}


def build(preset: str, out: Path, layers: int | None = None, experts: int | None = None) -> Path:
    import torch
    from transformers import GptOssConfig, GptOssForCausalLM
    from tiny_model import TRAINING_DEFAULTS, build_tokenizer

    shape = dict(PRESETS[preset])
    if layers:
        shape["num_hidden_layers"] = layers
    if experts:
        shape["num_local_experts"] = experts
    n = shape["num_hidden_layers"]
    shape["layer_types"] = ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(n)]
    tokenizer = build_tokenizer()
    vocab = max(shape.pop("vocab_size", 0), len(tokenizer))
    config = GptOssConfig(vocab_size=vocab, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                          bos_token_id=tokenizer.bos_token_id, tie_word_embeddings=False, **shape)
    torch.manual_seed(1234)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    t0 = time.time()
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            model = GptOssForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    model.to(torch.bfloat16)
    model.config.dtype = torch.bfloat16
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    params = sum(p.numel() for p in model.parameters())
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "training_defaults.json").write_text(json.dumps(TRAINING_DEFAULTS, indent=2) + "\n")
    facts = {"preset": preset, "parameters": params, "layers": n, "experts": shape["num_local_experts"],
             "hidden_size": shape["hidden_size"], "vocab_size": vocab, "seconds": round(time.time() - t0, 1),
             "built_on": device}
    (out / "build_info.json").write_text(json.dumps(facts, indent=2) + "\n")
    print(json.dumps(facts), flush=True)
    del model
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--layers", type=int, help="override the preset's layer count")
    p.add_argument("--experts", type=int, help="override the preset's expert count")
    a = p.parse_args()
    build(a.preset, a.out, a.layers, a.experts)
