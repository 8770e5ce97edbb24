#!/bin/sh
# Removes the spotkit agent (the Azure VM Application remove command). Keeps /etc/spotkit.
set -eu
dest=${DESTDIR:-}
if [ -z "$dest" ] && command -v systemctl >/dev/null 2>&1; then
  systemctl disable --now spotkit-agent.service || true
fi
rm -f "$dest/etc/systemd/system/spotkit-agent.service" "$dest/usr/local/bin/spotkit"
if [ -z "$dest" ] && command -v systemctl >/dev/null 2>&1; then
  systemctl daemon-reload
fi
echo "spotkit removed (config kept in $dest/etc/spotkit)"
