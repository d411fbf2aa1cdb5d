#!/usr/bin/env bash
# Debian's Cyrus and Courier IMAP servers for the server-compatibility tests
# (tests/servers/), beside the Dovecot the other tests use.
#
# cyrus-imapd, courier-imap and dovecot-imapd conflict as packages, so Cyrus and Courier
# are not installed: their packages are downloaded (apt-get download) and unpacked
# (dpkg-deb -x) under $BUZON_TEST_SERVERS (default /opt/buzon-test-servers), one tree per
# server; nothing of them runs at install time. Their shared libraries, which conflict
# with nothing, are installed with apt-get, and so is sasl2-bin (saslpasswd2, to make the
# Cyrus users' SASL database). daemon/mail/sandbox_servers.py starts them from there.
#
# Idempotent: a second run with everything in place only checks and exits.
set -euo pipefail
root=${BUZON_TEST_SERVERS:-/opt/buzon-test-servers}
cyrus_packages=(cyrus-common cyrus-imapd)
courier_packages=(courier-base courier-imap courier-authlib courier-authlib-userdb
                  courier-authdaemon)
libraries=(libpcre3 libxapian30 libical3 libidn12 libcourier-unicode4 libgamin0 libltdl7
           sasl2-bin)
stamp="$root/.extracted"
want="${cyrus_packages[*]} ${courier_packages[*]}"

missing=()
for package in "${libraries[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ] && [ -f "$stamp" ] && [ "$(head -n1 "$stamp")" = "$want" ] \
   && [ -x "$root/cyrus/usr/lib/cyrus/bin/imapd" ] && [ -x "$root/courier/usr/bin/imapd" ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "extract-imap-servers: run as root (apt-get install ${missing[*]}; apt-get download)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
updated=no
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  updated=yes
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

downloads=$(mktemp -d)
trap 'rm -rf "$downloads"' EXIT
chmod 755 "$downloads"
if id _apt >/dev/null 2>&1; then chown _apt "$downloads"; fi  # apt downloads as _apt
download() {
  (cd "$downloads" && apt-get download -qq "$@")
}
if ! download "${cyrus_packages[@]}" "${courier_packages[@]}"; then
  if [ "$updated" = no ]; then
    apt-get update -qq
    download "${cyrus_packages[@]}" "${courier_packages[@]}"
  else
    exit 1
  fi
fi

rm -rf "$root.new"
mkdir -p "$root.new/cyrus" "$root.new/courier"
for package in "${cyrus_packages[@]}"; do
  dpkg-deb -x "$downloads/${package}"_*.deb "$root.new/cyrus"
done
for package in "${courier_packages[@]}"; do
  dpkg-deb -x "$downloads/${package}"_*.deb "$root.new/courier"
done
{
  echo "$want"
  for deb in "$downloads"/*.deb; do dpkg-deb -W --showformat='${Package} ${Version}\n' "$deb"; done
} >"$root.new/.extracted"
rm -rf "$root"
mv "$root.new" "$root"
chmod 755 "$root"
for binary in "$root/cyrus/usr/lib/cyrus/bin/master" "$root/cyrus/usr/lib/cyrus/bin/imapd" \
              "$root/courier/usr/bin/imapd" "$root/courier/usr/sbin/couriertcpd"; do
  if LD_LIBRARY_PATH="$root/cyrus/usr/lib/x86_64-linux-gnu:$root/courier/usr/lib" \
       ldd "$binary" | grep -q "not found"; then
    echo "extract-imap-servers: $binary lacks a library:" >&2
    LD_LIBRARY_PATH="$root/cyrus/usr/lib/x86_64-linux-gnu:$root/courier/usr/lib" \
      ldd "$binary" | grep "not found" >&2
    exit 1
  fi
done
echo "extract-imap-servers: $(tail -n +2 "$root/.extracted" | paste -sd,) in $root"
