#!/usr/bin/env bash
# Installs prometheus, promtool, alertmanager and amtool from Debian's packages when any is
# missing, without starting the packages' system services, then prints their versions.
# The tests use the binaries directly (promtool check rules, a throwaway prometheus), never
# the daemons the packages ship. Debian names the alertmanager binary prometheus-alertmanager;
# either name counts.
set -euo pipefail

BINARIES=(prometheus promtool alertmanager amtool)
POLICY=/usr/sbin/policy-rc.d

# Prints the path of BINARY, or of Debian's prometheus-BINARY.
locate() {
  command -v "$1" || command -v "prometheus-$1"
}

missing() {
  local binary
  for binary in "${BINARIES[@]}"; do
    locate "$binary" >/dev/null || return 0
  done
  return 1
}

as_root() {
  if ((EUID == 0)); then "$@"; else sudo "$@"; fi
}

restore_policy() {
  if as_root test -e "$POLICY.slamon-saved"; then
    as_root mv -f "$POLICY.slamon-saved" "$POLICY"
  else
    as_root rm -f "$POLICY"
  fi
}

install_packages() {
  command -v apt-get >/dev/null \
    || { echo "install.sh: no apt-get here; install ${BINARIES[*]} by hand" >&2; exit 1; }
  # policy-rc.d answering 101 ("action forbidden") is Debian's switch that keeps postinst
  # from starting services; containers have no init to manage them anyway. An existing
  # policy is set aside and put back afterwards.
  if as_root test -e "$POLICY"; then
    as_root mv "$POLICY" "$POLICY.slamon-saved"
  fi
  trap restore_policy EXIT
  printf '#!/bin/sh\nexit 101\n' | as_root tee "$POLICY" >/dev/null
  as_root chmod 755 "$POLICY"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    prometheus prometheus-alertmanager
  # Hosts booted with systemd ignore policy-rc.d: stop and disable what postinst started.
  if [[ -d /run/systemd/system ]]; then
    as_root systemctl disable --now prometheus.service prometheus-alertmanager.service \
      >/dev/null 2>&1 || true
  fi
}

missing && install_packages

for binary in "${BINARIES[@]}"; do
  path=$(locate "$binary") || { echo "install.sh: $binary is still missing" >&2; exit 1; }
  printf '%-13s %s  (%s)\n' "$binary" "$("$path" --version 2>&1 | head -n 1)" "$path"
done
