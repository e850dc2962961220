#!/usr/bin/env bash
# Installs a Vulkan CPU driver so that Dawn (npm `webgpu`) gets a real adapter on a
# GPU-less Debian 12 machine, plus Debian's Chromium for headless-browser WebGPU tests.
#
# One package covers both: Debian's `chromium` ships SwiftShader's Vulkan ICD
# (/usr/lib/chromium/libvk_swiftshader.so + vk_swiftshader_icd.json) and pulls in the
# Vulkan loader libvulkan1 (libvulkan.so.1, which dawn.node dlopens).
#
# This script exports nothing. Node processes that use `webgpu` must run with
#   VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json
# (the ICD json is not in /usr/share/vulkan/icd.d, so the loader won't find it alone).
# Chromium itself needs no env var: launch it with
#   --headless --no-sandbox --enable-unsafe-webgpu --use-angle=swiftshader ...
#
# Idempotent; runs as root; works whether or not `apt-get update` has been run.
set -euo pipefail

PKGS=(chromium libvulkan1)
ICD=/usr/lib/chromium/vk_swiftshader_icd.json
export DEBIAN_FRONTEND=noninteractive

if [ "$(id -u)" -ne 0 ]; then
  echo "setup-gpu: must run as root" >&2
  exit 1
fi

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

start=$SECONDS
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup-gpu: installing: ${missing[*]}"
  # Always refresh: lists may be absent or stale (Chromium updates come via bookworm-security).
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "setup-gpu: installed in $((SECONDS - start)) s"
else
  echo "setup-gpu: already installed: ${PKGS[*]}"
fi

for f in "$ICD" /usr/lib/chromium/libvk_swiftshader.so /usr/bin/chromium; do
  if [ ! -e "$f" ]; then
    echo "setup-gpu: missing $f after install" >&2
    exit 1
  fi
done

for p in "${PKGS[@]}"; do
  echo "setup-gpu: $p $(dpkg-query -W -f='${Version}' "$p")"
done
echo "setup-gpu: $(/usr/bin/chromium --version 2>/dev/null || echo 'chromium --version failed')"
echo "setup-gpu: Vulkan ICD for Node/Dawn: VK_ICD_FILENAMES=$ICD"
