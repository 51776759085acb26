#!/usr/bin/env bash
# The whole GPU table in one short lease: 7B QLoRA training (bench/gpu_qlora.py, checkpointing on first:
# the configuration the targets name) and 7B evaluation throughput (bench/eval_throughput.py).
#
#   bash bench/gpu_session.sh OUT_DIR        # on the GPU machine, from the repository root (~7 min on an H100)
#
# The machine needs what pyproject.toml pins that its image lacks, as wheels in .whl/ (installed into
# /tmp/site, nothing else touched): bitsandbytes, trl (+ datasets, dill, multiprocess), peft,
# transformers, omegaconf (+ antlr4-python3-runtime), and a tokenizer directory in .gpu/tokenizer for the
# evaluation model's vocabulary (SmolLM2's, copied from .cache/hakim/models/smollm2_135m). Each step has
# its own time limit, so one that hangs still leaves the others' results in OUT_DIR. RUN_EVAL=0 skips the
# evaluation step; OFF_BATCH_SIZES=1 measures only micro-batch 1 without checkpointing (4 and 8 do not fit in 80 GB).
set -uo pipefail
out=${1:?usage: bash bench/gpu_session.sh OUT_DIR}
mkdir -p "$out"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD/src:$PWD/bench
else
  export PYTHONPATH=$PWD/src:$PWD/bench
fi
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/device.txt"
python3 -c "import torch, transformers, peft, bitsandbytes, trl; print('torch', torch.__version__, '| transformers', transformers.__version__, '| peft', peft.__version__, '| bitsandbytes', bitsandbytes.__version__, '| trl', trl.__version__)" 2>&1 | tee -a "$out/device.txt"

timeout "${TRAIN_ON_S:-240}" python3 bench/gpu_qlora.py --checkpointing on --json "$out/gpu_qlora_ckpt_on.json" 2>&1 | tee "$out/gpu_qlora_ckpt_on.log"
[ "${RUN_EVAL:-1}" = 1 ] && timeout "${EVAL_S:-150}" python3 bench/eval_throughput.py --model mistral_7b_random --tokenizer .gpu/tokenizer \
  --examples 64 --batch-size 16 --max-new-tokens 8 --json "$out/eval_7b.json" 2>&1 | tee "$out/eval_7b.log"
timeout "${TRAIN_OFF_S:-150}" python3 bench/gpu_qlora.py --checkpointing off --batch-sizes "${OFF_BATCH_SIZES:-1,4,8}" --json "$out/gpu_qlora_ckpt_off.json" 2>&1 | tee "$out/gpu_qlora_ckpt_off.log"
