#!/usr/bin/env bash
# Debian packages the project needs: espeak-ng (the offline spoken-digit dataset).
# Idempotent: installs only what is missing. Needs root (or sudo).
set -euo pipefail
pkgs=()
command -v espeak-ng >/dev/null 2>&1 || pkgs+=(espeak-ng)
[ ${#pkgs[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then sudo=""; elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
  echo "missing Debian packages: ${pkgs[*]} (run: apt-get install -y ${pkgs[*]})" >&2; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
