#!/usr/bin/env bash
# Gives Dawn (npm `webgpu`) a real WebGPU adapter on a GPU-less Debian 12 machine, and
# installs Debian's Chromium for headless-browser WebGPU tests. One package covers both:
# Debian's `chromium` ships SwiftShader's Vulkan driver
# (/usr/lib/chromium/libvk_swiftshader.so + vk_swiftshader_icd.json). libvulkan1 is the
# system Vulkan loader (libvulkan.so.1) that dawn.node dlopens; chromium does not depend on it.
#
# This script exports nothing. Node processes that use `webgpu` must run with
#   VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json
# (that json is not in /usr/share/vulkan/icd.d, so the loader does not find it by itself;
# without it requestAdapter() resolves to null). Chromium needs no env var, only
# --enable-unsafe-webgpu (plus --no-sandbox as root).
#
# Idempotent; run as root; works whether or not `apt-get update` has been run.
set -euo pipefail

PKGS=(chromium libvulkan1)
ICD=/usr/lib/chromium/vk_swiftshader_icd.json
export DEBIAN_FRONTEND=noninteractive

if [ "$(id -u)" -ne 0 ]; then
  echo "setup-gpu: must run as root" >&2
  exit 1
fi

is_installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = 'install ok installed' ]
}

retry() {  # retry CMD...: up to 3 tries, for transient mirror errors
  local n
  for n in 1 2 3; do
    if "$@"; then return 0; fi
    echo "setup-gpu: '$*' failed (try $n/3)" >&2
    sleep $((n * 5))
  done
  return 1
}

missing=()
for p in "${PKGS[@]}"; do
  is_installed "$p" || missing+=("$p")
done

start=$SECONDS
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup-gpu: installing ${missing[*]}"
  before=$(dpkg-query -W -f='${Package}\n' | sort)
  # Always refresh: lists may be absent or stale (Chromium updates come via bookworm-security).
  retry apt-get update -qq
  retry apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  after=$(dpkg-query -W -f='${Package}\n' | sort)
  new=$(comm -13 <(echo "$before") <(echo "$after") | tr '\n' ' ')
  echo "setup-gpu: $(echo "$new" | wc -w) new packages in $((SECONDS - start)) s: $new"
else
  echo "setup-gpu: already installed: ${PKGS[*]}"
fi

for f in "$ICD" /usr/lib/chromium/libvk_swiftshader.so /usr/bin/chromium; do
  if [ ! -e "$f" ]; then
    echo "setup-gpu: missing $f after install" >&2
    exit 1
  fi
done
# Not `ldconfig -p | grep -q`: with pipefail, grep -q exits at the first match, ldconfig can die of
# SIGPIPE while still writing, and the pipeline fails although the library is there.
if ! ldconfig -p | grep 'libvulkan\.so\.1 ' >/dev/null; then
  echo "setup-gpu: libvulkan.so.1 not found by the dynamic linker" >&2
  exit 1
fi

for p in "${PKGS[@]}"; do
  echo "setup-gpu: $p $(dpkg-query -W -f='${Version}' "$p")"
done
echo "setup-gpu: $(/usr/bin/chromium --version 2>/dev/null || echo 'chromium --version failed')"
echo "setup-gpu: for Node/Dawn set VK_ICD_FILENAMES=$ICD"
