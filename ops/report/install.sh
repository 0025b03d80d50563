#!/usr/bin/env bash
# Installs what the monthly service review reports need from Debian's packages when it is
# missing: chromium (renders the HTML pack to PDF, and the tests render and screenshot it)
# and poppler-utils (pdftotext, with which the tests read the PDF back). Prints the versions.
set -euo pipefail

# The command that proves each package is there, and the package providing it.
declare -A PACKAGE_OF=([chromium]=chromium [pdftotext]=poppler-utils)

as_root() {
  if ((EUID == 0)); then "$@"; else sudo "$@"; fi
}

missing=()
for binary in "${!PACKAGE_OF[@]}"; do
  command -v "$binary" >/dev/null || missing+=("${PACKAGE_OF[$binary]}")
done

if ((${#missing[@]})); then
  command -v apt-get >/dev/null \
    || { echo "install.sh: no apt-get here; install ${missing[*]} by hand" >&2; exit 1; }
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}"
fi

# Debian's chromium launcher prints a shell warning on some hosts before the version.
version_of() {
  case "$1" in
    pdftotext) "$2" -v 2>&1 | head -n 1 ;;
    *) "$2" --version 2>/dev/null | head -n 1 ;;
  esac
}

for binary in chromium pdftotext; do
  path=$(command -v "$binary") || { echo "install.sh: $binary is still missing" >&2; exit 1; }
  printf '%-10s %s  (%s)\n' "$binary" "$(version_of "$binary" "$path")" "$path"
done
