#!/usr/bin/env bash
# The WebGPU device benchmark (bench/gpu.mjs, issue 15) on a lent GPU machine that has no Node and no
# package registry (the NVIDIA H200 machine of the `device` tool). Two steps:
#
#   1. Here, in the repository root:   bash scripts/device-run.sh prepare
#      Builds dist/, and packs what the machine lacks into ignored folders: .devrun/node.xz (this
#      Node binary, ~24 MB), .devrun/webgpu.tar.xz (the `webgpu` package's JS and its linux-x64
#      dawn.node only, ~5 MB) and .gl/*.deb (the Vulkan loader, libvulkan1, for Dawn). Checks that
#      dist + .devrun + .gl stay inside the 64 MiB that travels.
#   2. With the device tool:            run(command: "bash scripts/device-run.sh run --quick",
#                                            carry: ["dist", ".devrun", ".gl"], timeout_s: 300)
#      Unpacks them, points Vulkan at the NVIDIA driver when no ICD is installed, prints the GPU
#      (nvidia-smi) and the adapter WebGPU found (bench/gpu.mjs prints it first and says loudly when
#      it is a software adapter), and runs the bench: the table goes to $OUT/gpu-bench.md, the
#      figures to $OUT/gpu-bench.json. Without --quick the full table (10^6 points) runs: plan a
#      second call for it once the quick one has shown the adapter is the GPU.
#      `suite` instead of `run` runs, each under a time limit, the full table, bench/gpu-sweep.mjs
#      (workgroup size, staging and tiling tuned) and bench/geomloss-gpu.mjs at 10^5 points in one
#      call of about six minutes: $OUT/gpu-bench.md, gpu-sweep.md, geomloss-gpu.md and the json.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-}"
shift || true

case "$mode" in
  prepare)
    npm run build
    mkdir -p .devrun
    exclude="$(git rev-parse --git-path info/exclude)"
    mkdir -p "$(dirname "$exclude")"
    for p in /.devrun/ /.gl/; do grep -qxF "$p" "$exclude" 2>/dev/null || echo "$p" >> "$exclude"; done
    xz -T0 -6 -c "$(command -v node)" > .devrun/node.xz
    tar -C node_modules -cJf .devrun/webgpu.tar.xz webgpu/package.json webgpu/index.js webgpu/dist/linux-x64/dawn.node
    # The Vulkan loader as amd64 packages (the device README's recipe), unpacked there into /.
    mkdir -p .gl /tmp/amd64/partial
    o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
    apt-get "${o[@]}" update >/dev/null
    (cd .gl && apt-get "${o[@]}" download libvulkan1)
    total=$(du -scm dist .devrun .gl | tail -1 | cut -f1)
    echo "dist + .devrun + .gl: ${total} MiB (64 MiB travel)"
    if [ "$total" -ge 64 ]; then echo "too large to carry" >&2; exit 1; fi
    ;;
  run | suite)
    : "${OUT:=/tmp/out}"
    mkdir -p "$OUT"
    for p in dist/index.js .devrun/node.xz .devrun/webgpu.tar.xz; do
      [ -f "$p" ] || { echo "missing $p: run 'bash scripts/device-run.sh prepare' here and carry dist, .devrun, .gl" >&2; exit 1; }
    done
    # The Vulkan loader: unpacked into / only where the machine lacks it (the device README's recipe).
    if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1'; then
      for f in .gl/*.deb; do dpkg -x "$f" /; done
      ldconfig
    fi
    # xz, or Python's lzma where the machine has no xz.
    unxz_to() {
      if command -v xz >/dev/null; then xz -dc "$1" > "$2"
      else python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"; fi
    }
    tmp="$(mktemp -d)"
    unxz_to .devrun/node.xz "$tmp/node"
    chmod +x "$tmp/node"
    mkdir -p node_modules
    unxz_to .devrun/webgpu.tar.xz "$tmp/webgpu.tar"
    tar -C node_modules -xf "$tmp/webgpu.tar"
    # Dawn finds the NVIDIA Vulkan driver through its ICD file; the machine ships it outside the
    # loader's default search path.
    nvidia_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ] && [ -f "$nvidia_icd" ]; then export VK_DRIVER_FILES="$nvidia_icd"; fi
    echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-} VK_ICD_FILENAMES=${VK_ICD_FILENAMES:-}"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || echo "nvidia-smi: not available"
    "$tmp/node" --version
    if [ "$mode" = run ]; then
      "$tmp/node" bench/gpu.mjs "$@" --json="$OUT/gpu-bench.json" 2>&1 | tee "$OUT/gpu-bench.md"
    else
      # suite: the target table, the tuning sweep and GeomLoss, each under its own time limit so
      # that one slow part cannot eat the lease; each writes its output under $OUT as it goes.
      set +e
      timeout 170 "$tmp/node" bench/gpu.mjs --row-budget-s=12 --json="$OUT/gpu-bench.json" 2>&1 | tee "$OUT/gpu-bench.md"
      timeout 100 "$tmp/node" bench/gpu-sweep.mjs --deadline-s=85 --json="$OUT/gpu-sweep.json" 2>&1 | tee "$OUT/gpu-sweep.md"
      timeout 80 "$tmp/node" bench/geomloss-gpu.mjs 100000 2>&1 | tee "$OUT/geomloss-gpu.md"
      set -e
    fi
    ;;
  *)
    echo "usage: bash scripts/device-run.sh prepare | run [--quick] [bench/gpu.mjs options] | suite" >&2
    exit 2
    ;;
esac
