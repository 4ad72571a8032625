#!/bin/sh
# Builds pickleguard_VERSION_amd64.deb from the glibc-2.17 binaries `make wheel` builds:
#   /usr/lib/pickleguard/libpickleguard.so, libpickleguard_core.so and /usr/bin/pickleguard,
# the paths `make install PREFIX=/usr` uses. Debug information is stripped from the copies.
#   packaging/build_deb.sh BIN_DIR OUT_DIR
set -eu
bin_dir=$1
out_dir=$2
root=$(cd "$(dirname "$0")/.." && pwd)
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$root/Cargo.toml")
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
chmod 0755 "$stage"
install -d "$stage/DEBIAN" "$stage/usr/lib/pickleguard" "$stage/usr/bin" "$stage/usr/share/doc/pickleguard"
for lib in libpickleguard.so libpickleguard_core.so; do
    objcopy --strip-debug "$bin_dir/$lib" "$stage/usr/lib/pickleguard/$lib"
    chmod 0644 "$stage/usr/lib/pickleguard/$lib"
done
objcopy --strip-debug "$bin_dir/pickleguard" "$stage/usr/bin/pickleguard"
chmod 0755 "$stage/usr/bin/pickleguard"
cp "$root/LICENSE" "$stage/usr/share/doc/pickleguard/copyright"
size=$(du -sk "$stage/usr" | cut -f1)
cat > "$stage/DEBIAN/control" <<CONTROL
Package: pickleguard
Version: $version
Architecture: amd64
Maintainer: the pickleguard maintainers (see SECURITY.md)
Depends: libc6 (>= 2.17)
Installed-Size: $size
Section: utils
Priority: optional
Description: safe unpickling for ML models, without changing the programs
 An LD_PRELOAD guard that makes every unpickling in a CPython >= 3.8 process
 check each global against an allowlist of ML data types, plus the
 pickleguard command: run, doctor, scan, learn, allowlist, check-config.
 Enable it with LD_PRELOAD=/usr/lib/pickleguard/libpickleguard.so or a line
 in /etc/ld.so.preload.
CONTROL
mkdir -p "$out_dir"
deb="$out_dir/pickleguard_${version}_amd64.deb"
dpkg-deb --root-owner-group --build "$stage" "$deb" >/dev/null
echo "$deb"
