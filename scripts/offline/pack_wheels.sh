#!/usr/bin/env bash
# Packs what a GPU machine without network lacks for the CUDA backend into one archive, .whl/pack/site.tgz (11 MB),
# from wheels downloaded here (Python 3.12, x86-64 Linux). The machine it was made for already had torch
# 2.11.0+cu130, transformers 5.17.0, accelerate, tokenizers, safetensors, huggingface_hub, pandas, pyarrow and the
# rest of unsloth's plainer needs (docs/gpu.md). There, before anything else:
#
#   mkdir -p /tmp/site && tar xzf .whl/pack/site.tgz -C /tmp/site && export PYTHONPATH=/tmp/site
#
# Trimmed to fit a 64 MiB transfer: unsloth's `studio/` web app (82 MB, not imported by the trainer) and
# bitsandbytes' libraries for other CUDA versions and ROCm (only libbitsandbytes_cuda130.so is kept: torch's CUDA is
# 13.0). Run from the repository root; `/.whl/` is git-ignored.
set -euo pipefail
PKGS=(unsloth==2026.10.9 unsloth_zoo==2026.10.9 trl==1.15.0 peft==0.21.2 bitsandbytes==0.50.2 datasets==4.8.5
      tyro==1.0.17 cut_cross_entropy==25.1.1 dill==0.4.1 multiprocess==0.70.19 docstring_parser==0.18.0
      typeguard==4.6.1 shtab==1.13.0 fsspec==2026.2.0)
PLAT=(--python-version 3.12 --implementation cp --only-binary=:all:
      --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
mkdir -p .whl/pack
python3 -m pip download -q --no-deps "${PLAT[@]}" -d .whl "${PKGS[@]}"
stage=$(mktemp -d)
files=()
for p in "${PKGS[@]}"; do
  name=${p%%==*}; version=${p#*==}
  files+=("$(ls .whl/${name}-${version}-*.whl 2>/dev/null || ls .whl/${name//_/-}-${version}-*.whl)")
done
python3 -m pip install -q --no-deps --no-compile "${PLAT[@]}" --target "$stage" "${files[@]}"
rm -rf "$stage/studio" "$stage/bin"
find "$stage/bitsandbytes" -name 'libbitsandbytes_*.so' ! -name 'libbitsandbytes_cuda130.so' -delete
tar czf .whl/pack/site.tgz -C "$stage" .
rm -rf "$stage"
ls -la .whl/pack/site.tgz
