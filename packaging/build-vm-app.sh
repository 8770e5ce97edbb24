#!/usr/bin/env bash
# Builds the VM application package dist/spotkit-<version>-linux-x86_64.tar.gz:
# the spotkit binary, install.sh, uninstall.sh, the systemd unit and an example config.
#
#   packaging/build-vm-app.sh                     # release build (static musl if that target is installed)
#   packaging/build-vm-app.sh --binary PATH       # package an existing binary (tests use the debug one)
#   packaging/build-vm-app.sh --out DIR           # where the tarball goes (default: dist/)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
binary=""
out="$root/dist"
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "build-vm-app.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)
if [ -z "$binary" ]; then
  if rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
    target=x86_64-unknown-linux-musl
    echo "building a static binary for $target"
  else
    target=x86_64-unknown-linux-gnu
    echo "musl target not installed; building for $target (glibc)"
  fi
  (cd "$root" && cargo build --release --locked --bin spotkit --target "$target")
  binary="$root/target/$target/release/spotkit"
fi
[ -x "$binary" ] || { echo "build-vm-app.sh: $binary is not an executable" >&2; exit 1; }

name="spotkit-$version-linux-x86_64"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
install -m 0755 "$binary" "$stage/spotkit"
install -m 0755 "$root/packaging/install.sh" "$root/packaging/uninstall.sh" "$stage/"
install -m 0644 "$root/packaging/spotkit-agent.service" "$root/packaging/agent.toml" "$stage/"
mkdir -p "$out"
tar -C "$stage" -czf "$out/$name.tar.gz" spotkit install.sh uninstall.sh spotkit-agent.service agent.toml
echo "$out/$name.tar.gz"
