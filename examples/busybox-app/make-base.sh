#!/bin/sh
# Makes the base image this example builds FROM, with no registry: Debian's busybox-static as a
# root filesystem tarball, imported into the store as busybox:local (the way the official busybox
# image is FROM scratch + ADD rootfs.tar /).   apt-get install busybox-static   if it is missing.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tsbuild="node $here/../../bin/tsbuild.js"
bb=$(command -v busybox || true)
[ -n "$bb" ] && "$bb" --list >/dev/null 2>&1 || { echo "make-base: busybox not found (apt-get install busybox-static)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/tmp" "$work/rootfs/root"
cp "$bb" "$work/rootfs/bin/busybox"
for app in $("$bb" --list); do [ "$app" = busybox ] || ln -sf busybox "$work/rootfs/bin/$app"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$work/rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$work/rootfs/etc/group"
chmod 1777 "$work/rootfs/tmp"
tar -C "$work/rootfs" --numeric-owner --owner=0 --group=0 -cf "$work/rootfs.tar" .
$tsbuild import "$work/rootfs.tar" busybox:local --change 'CMD ["sh"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' "$@"
