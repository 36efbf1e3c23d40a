#!/usr/bin/env bash
# Installs the Debian packages the project needs (when run as root), or prints the exact command.
set -euo pipefail
packages=(portaudio19-dev pulseaudio pulseaudio-utils libsndfile1 espeak-ng xvfb x11-utils)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
command="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
    echo "missing Debian packages: ${missing[*]}" >&2
    echo "run as root:  sudo sh -c '$command'" >&2
    exit 1
fi
