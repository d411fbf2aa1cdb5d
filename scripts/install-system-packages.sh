#!/usr/bin/env bash
# Debian packages buzon's demo and tests need, and nothing else:
#   dovecot-imapd, dovecot-lmtpd  the IMAP server the tests and the demo start privately
#                                 (their own configuration, on free loopback ports)
#   python3-venv                  the .venv
#   libreoffice-calc-nogui        renders workbooks to PDF to count their printed pages
#   poppler-utils                 pdfinfo, to read those page counts
#   systemd                       systemd-analyze, to rate and verify the units in systemd/
#                                 (a container may lack it; nothing of it is started)
# A Dovecot the machine already runs is left alone: the tests never use the system
# service, nor its ports. Idempotent: with everything present it only checks (dpkg) and
# exits, without touching apt.
set -euo pipefail
packages=(dovecot-imapd dovecot-lmtpd python3-venv libreoffice-calc-nogui poppler-utils systemd)
need=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || need+=("$package")
done
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "install as root: apt-get install --no-install-recommends ${need[*]}" >&2
  exit 1
fi
had_dovecot=$(command -v dovecot || true)
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
if [ -z "$had_dovecot" ] && command -v systemctl >/dev/null 2>&1 \
   && systemctl is-active --quiet dovecot 2>/dev/null; then
  # Debian starts a freshly installed Dovecot. The tests do not need it; whether this
  # machine should serve mail is the operator's call, so it is only said, not done.
  echo "note: the Dovecot package just installed is running as a system service" \
       "(ports 143/993); buzon's tests do not use it. If this machine serves no mail:" \
       "systemctl disable --now dovecot" >&2
fi
