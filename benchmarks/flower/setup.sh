#!/usr/bin/env bash
# Create benchmarks/.venv-flower: Flower in its own virtual environment.
#
# Flower is never a dependency of fednet. The harness imports fednet.learning
# (numpy + scikit-learn only) through PYTHONPATH, so fednet itself is not
# installed into this environment.
#
# Usage: benchmarks/flower/setup.sh [PYTHON]   (default: python3)
# Env:   FLWR_VERSION (default 1.42.0), FLOWER_VENV (default benchmarks/.venv-flower)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bench_dir="$(dirname "$here")"
python="${1:-python3}"
venv="${FLOWER_VENV:-$bench_dir/.venv-flower}"
flwr_version="${FLWR_VERSION:-1.42.0}"

if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet \
    "flwr==$flwr_version" "numpy>=1.26" "scikit-learn>=1.4" "psutil>=5.9"
"$venv/bin/python" - <<'PY'
import flwr, numpy, sklearn, psutil
print(f"flwr {flwr.__version__}, numpy {numpy.__version__}, "
      f"scikit-learn {sklearn.__version__}, psutil {psutil.__version__}")
PY
echo "Flower environment ready: $venv"
