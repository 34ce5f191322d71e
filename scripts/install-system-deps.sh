#!/usr/bin/env bash
# Debian packages the project needs: espeak-ng (the offline spoken-digit dataset), cmake and g++ (the tests build
# the generated folder with CMake and include its headers from C++), the Cortex-M cross
# toolchain with newlib (firmware builds) and QEMU (runs the firmware on emulated Cortex-M boards).
# Idempotent: installs only what is missing. Needs root (or sudo).
set -euo pipefail
pkgs=()
command -v espeak-ng >/dev/null 2>&1 || pkgs+=(espeak-ng)
command -v arm-none-eabi-gcc >/dev/null 2>&1 || pkgs+=(gcc-arm-none-eabi)
[ -f /usr/lib/arm-none-eabi/newlib/libc.a ] || pkgs+=(libnewlib-arm-none-eabi)
command -v qemu-system-arm >/dev/null 2>&1 || pkgs+=(qemu-system-arm)
command -v cmake >/dev/null 2>&1 || pkgs+=(cmake)
command -v g++ >/dev/null 2>&1 || pkgs+=(g++)
[ ${#pkgs[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then sudo=""; elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
  echo "missing Debian packages: ${pkgs[*]} (run: apt-get install -y ${pkgs[*]})" >&2; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
