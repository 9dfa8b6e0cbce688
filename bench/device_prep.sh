#!/usr/bin/env bash
# Run HERE (with network), before a GPU machine that has none runs bench/device_check.sh.
#
#   bash bench/device_prep.sh            # wheels + the embedded GGUF in two parts + the data
#
# It writes only git-ignored folders:
#   .whl/           wheels the GPU image lacks (Python 3.12, manylinux x86_64, one version each),
#                   the versions installed here, fetched with `pip download --no-deps`
#   .device/part1/  the first 50 MiB of SmolLM2-135M-Instruct.Q4_1.gguf, and the LLaRA splits, the Steam
#                   metadata and raw MovieLens-100K (5 MB)                                             (call 1 carries it)
#   .device/part2/  the rest of the GGUF (44 MiB)                               (call 2, with .whl: 14 MB)
# and prints the two calls to make (see docs/guide.md, "Running on a GPU").
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/device_lib.sh
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}

# What the notebooks / papermill / the GGUF loader need beyond the GPU image's own packages
# (/work/.library/device/KINDS.md lists the image; GPU.md: gguf, papermill, jupyter are missing).
TOP="gguf papermill nbclient nbformat jupyter_client jupyter_core ipykernel"
DEVICE_HAS="accelerate aiohttp attrs certifi charset-normalizer click filelock fsspec huggingface-hub idna jinja2
markupsafe matplotlib numpy packaging pandas pillow pip psutil pygments python-dateutil pyyaml regex requests
safetensors seaborn setuptools six tokenizers torch tqdm transformers typing-extensions urllib3 wheel"

wheels() {
    mkdir -p .whl
    # the closure of TOP's requirements for Linux / Python 3.12, minus what the image has, pinned to the versions here
    pins=$("$PY" - "$TOP" "$DEVICE_HAS" <<'PYEOF'
import importlib.metadata as md, re, sys
from packaging.requirements import Requirement
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
top, has = sys.argv[1].split(), {norm(n) for n in sys.argv[2].split()}
env = {"python_version": "3.12", "python_full_version": "3.12.0", "sys_platform": "linux",
       "platform_system": "Linux", "os_name": "posix", "platform_machine": "x86_64", "implementation_name": "cpython",
       "platform_python_implementation": "CPython", "extra": ""}
seen, todo = {}, list(top)
while todo:
    name = norm(todo.pop())
    if name in seen or name in has:
        continue
    seen[name] = md.version(name)
    for r in md.requires(name) or []:
        req = Requirement(r)
        if req.marker is None or req.marker.evaluate(env):
            todo.append(req.name)
print(" ".join(f"{n}=={v}" for n, v in sorted(seen.items())))
PYEOF
)
    echo "wheels: $pins"
    for pin in $pins; do
        name=${pin%%==*}
        if ls .whl/ 2>/dev/null | grep -qi "^$(echo "$name" | tr - _)-${pin##*==}-"; then continue; fi
        "$PY" -m pip download -q --no-deps --no-cache-dir --only-binary=:all: --python-version 3.12 --implementation cp \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
            --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform manylinux_2_24_x86_64 \
            --platform manylinux_2_31_x86_64 --platform manylinux_2_34_x86_64 -d .whl "$pin"
    done
    du -sh .whl
}

gguf_parts() {
    local src
    src=$("$PY" -c "from recinterp.llm import embedded_gguf; f, n = embedded_gguf(); print(f / n)")
    [ "$(stat -c %s "$src")" = "$GGUF_BYTES" ] || { echo "unexpected size of $src" >&2; exit 1; }
    [ "$(sha256sum "$src" | cut -d' ' -f1)" = "$GGUF_SHA256" ] || { echo "checksum mismatch: $src" >&2; exit 1; }
    rm -rf ".device/part1/$GGUF_NAME.part-aa" .device/part2
    split_in_two "$src" .device/part1 .device/part2 50M
    ls -l .device/part1 .device/part2
}

sizes() {  # what each call carries beside the working tree (limit: 64 MiB per call, tree included)
    local tree
    tree=$(git ls-files -co --exclude-standard -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
    echo "working tree: $((tree / 1024)) KiB; call 1: $(du -sb .device/part1 | cut -f1) bytes; call 2:" \
        "$(( $(du -sb .device/part2 | cut -f1) + $(du -sb .whl | cut -f1) )) bytes (limit 67108864 each, tree included)"
}

data() {
    local llara=${RECINTERP_LLARA_DIR:-../shared/data/llara} meta=${RECINTERP_STEAM_META:-../shared/data/steam_meta/steam_games.json.gz}
    [ -d "$llara" ] || { echo "no LLaRA splits at $llara (set RECINTERP_LLARA_DIR)" >&2; exit 1; }
    mkdir -p .device/part1/data
    rm -rf .device/part1/data/llara
    cp -r "$llara" .device/part1/data/llara
    if [ -f "$meta" ]; then mkdir -p .device/part1/data/steam_meta && cp "$meta" .device/part1/data/steam_meta/; fi
    # raw MovieLens-100K (item titles; 2 MB): fetched here if missing (GroupLens or the PyPI recbole wheel, both
    # SHA-checked), carried, and checked again on read there (a machine without network cannot fetch it)
    "$PY" -c "from recinterp.data.fetch import fetch_ml100k; fetch_ml100k('data/raw')" >/dev/null
    rm -rf .device/part1/data/raw && mkdir -p .device/part1/data/raw && cp -r data/raw/ml-100k .device/part1/data/raw/
    du -sh .device/part1/data
}

case "${1:-all}" in
    wheels) wheels ;;
    gguf) gguf_parts ;;
    data) data ;;
    sizes) sizes ;;
    all) wheels; gguf_parts; data; sizes ;;
    *) echo "usage: $0 [all|wheels|gguf|data|sizes]" >&2; exit 2 ;;
esac
cat <<'MSG'

Now, on a lent GPU machine (two calls, the second at once: a machine stays warm ~30 s):
  call 1  carry [".device/part1"]           command: mkdir -p /tmp/recinterp_gguf && cp -r .device/part1/. /tmp/recinterp_gguf/
  call 2  carry [".device/part2", ".whl"]   command: bash bench/device_check.sh
On any other GPU machine (network, `make setup` done): bash bench/device_check.sh
MSG
