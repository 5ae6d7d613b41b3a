#!/usr/bin/env bash
# The command the last device call runs: `bash scripts/device_gpu_profile.sh` (timeout_s 600), on a
# lent GPU machine that already holds the parts `python3 tools/device_gpu.py pack` wrote (its
# docstring gives the whole procedure). It installs the carried wheels into .venv beside the
# machine's own torch, runs `make test-gpu` with pytest stopped (SIGINT) after at most LIMIT_S
# seconds, and always leaves $OUT/gpu_profile.md (notebook times, checkpoint values) and
# $OUT/log_tail.txt, also when a step fails or time runs out.
set -uo pipefail
cd "$(dirname "$0")/.."
# It turns .venv into a venv on the machine's python3: never run it in a checkout you work in.
[ -n "${OUT:-}" ] || { echo "OUT is unset: this runs on the lent GPU machine only"; exit 2; }
LIMIT_S=${LIMIT_S:-540}     # nbval's share: 9 minutes
DEADLINE_S=${DEADLINE_S:-590}  # the whole script, inside the call's 600 s
LOG=_build/device_gpu.log
mkdir -p "$OUT" _build && : >"$LOG"

report() {
  python3 tools/device_gpu.py table --out "$OUT/gpu_profile.md" >>"$LOG" 2>&1 \
    || echo "device_gpu.py table failed" >>"$LOG"
  tail -c 4000000 "$LOG" >"$OUT/log_tail.txt"
}
trap report EXIT

profile() {
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  python3 -VV
  python3 tools/device_gpu.py install --from .device/wheels --target .venv || return 3
  touch .venv/.installed  # make's venv target is then up to date: nothing to fetch here
  python3 tools/timings.py begin
  rm -rf _build/checkpoints
  local limit=$((DEADLINE_S - SECONDS - 30))
  ((limit > LIMIT_S)) && limit=$LIMIT_S
  echo "== make test-gpu, pytest stopped after ${limit} s"
  if ! command -v make >/dev/null; then  # the Makefile's test-gpu, as it runs nbval (WORKERS=1)
    echo "no make here: running the nbval stage directly"
    python3 tools/timings.py run nbval -- env CMLIB_CHECKS_RAISE=1 HF_HUB_OFFLINE=1 \
      TRANSFORMERS_OFFLINE=1 CMLIB_PROFILE=gpu PYTHONPATH=tools timeout -s INT -k 20 "$limit" \
      .venv/bin/python -m pytest -q -p no:cacheprovider -p nbval_lanes --nbval-lax \
      --nbval-current-env --nbval-cell-timeout=600 -p no:xdist chapters/*.ipynb
    return
  fi
  # The nbval recipe runs `env $(NBVAL_ENV) ... pytest`: with `timeout ... env` appended to
  # NBVAL_ENV the timeout wraps pytest alone, so at the limit pytest gets SIGINT, still writes
  # the notebook times (_build/timings/notebooks.json), and make and tools/timings.py go on.
  local nbval_env
  nbval_env=$(make -s --no-print-directory --eval='device-env: ; @echo $(NBVAL_ENV)' device-env)
  timeout -k 10 $((limit + 25)) make test-gpu \
    NBVAL_ENV="$nbval_env timeout -s INT -k 20 $limit env"
}

profile 2>&1 | tee -a "$LOG"
exit "${PIPESTATUS[0]}"
