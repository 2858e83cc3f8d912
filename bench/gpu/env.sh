# Sourced by the bench/gpu scripts: nothing is downloaded (the models are built here), Python's output is not held
# back, and `gpu_environment` prints the GPU and the versions that ran, for the results file.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 UNSLOTH_OFFLINE=1 UNSLOTH_DISABLE_STATISTICS=1
export PYTHONUNBUFFERED=1

gpu_environment() {  # $1: the Python to ask
  echo "== environment $(date -u +%FT%TZ)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  "$1" - <<'PYEOF'
import importlib.metadata as m, sys, torch
print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda,
      "gpu", torch.cuda.get_device_name(0))
for n in ["unsloth", "unsloth_zoo", "trl", "peft", "bitsandbytes", "transformers", "accelerate", "datasets",
          "tokenizers", "safetensors", "triton", "xformers", "torchao"]:
    try:
        print(f"  {n} {m.version(n)}")
    except m.PackageNotFoundError:
        print(f"  {n} (not installed)")
PYEOF
}
