#!/bin/sh
# Installs the spotkit agent from an unpacked VM application package.
# Used as the Azure VM Application install command (see docs/packaging.md).
#
#   DESTDIR=/tmp/root ./install.sh   # stage into a directory (no systemctl)
#   SPOTKIT_NO_START=1 ./install.sh  # install but do not enable/start the unit
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dest=${DESTDIR:-}
bindir="$dest/usr/local/bin"
unitdir="$dest/etc/systemd/system"
confdir="$dest/etc/spotkit"

install -d "$bindir" "$unitdir" "$confdir"
install -m 0755 "$here/spotkit" "$bindir/spotkit"
install -m 0644 "$here/spotkit-agent.service" "$unitdir/spotkit-agent.service"
# Never overwrite an operator's config on upgrade.
if [ ! -e "$confdir/agent.toml" ]; then
  install -m 0644 "$here/agent.toml" "$confdir/agent.toml"
fi
"$bindir/spotkit" --version

if [ -z "$dest" ] && [ -z "${SPOTKIT_NO_START:-}" ] && command -v systemctl >/dev/null 2>&1; then
  systemctl daemon-reload
  systemctl enable --now spotkit-agent.service
  echo "spotkit-agent.service enabled and started"
else
  echo "installed into ${dest:-/}; unit not started"
fi
