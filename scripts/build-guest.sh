#!/usr/bin/env bash
# Build the QEMU test guest that stands in for the factory's service environment: a Debian kernel and
# an initramfs holding busybox, dropbear, nvme-cli, hdparm and dd, all taken from installed Debian
# packages (nothing is downloaded).
#
# usage: scripts/build-guest.sh OUT_DIR
#
# OUT_DIR receives:
#   vmlinux            the Debian kernel, decompressed: QEMU boots it through its PVH entry, skipping
#                      firmware and in-guest decompression (about 15 s of a ~20 s TCG boot); falls back
#                      to vmlinuz (the bzImage) when the kernel cannot be unpacked
#   initramfs.cpio     the guest root (uncompressed: a TCG guest boots faster without decompressing)
#   host_key.pub       the guest's SSH host key (OpenSSH format) for clients to pin
#   client_key         an OpenSSH private key the guest's root account accepts
#   client_key.pub
#   bzImage            the same kernel as iPXE boots it over the network (network boot)
#   guest.env          KERNEL (file name), KERNEL_VERSION, IP address and markers, for the harness
#
# Network boot: when the kernel command line carries df.enrol=URL (the controller's iPXE script puts
# it there with df.mac= and a one-time df.token=), init takes an address by DHCP on the NIC with that
# MAC, makes a fresh SSH host key for this boot, starts dropbear and runs /usr/sbin/df-enrol, which
# posts identity, disks and the host key to the controller. Without df.enrol= the guest is the
# fixed-address test guest of QEMU's user-mode network (the sanitisation tests).
# A rebuild is skipped when the inputs (this script, package versions, kernel) are unchanged; the keys
# are generated once per OUT_DIR and kept across rebuilds so pinned copies stay valid.
set -euo pipefail

usage() { echo "usage: $0 OUT_DIR" >&2; exit 2; }
die() { echo "build-guest: $*" >&2; exit 1; }
[ $# -eq 1 ] || usage

GUEST_IP=10.0.2.15      # QEMU user-mode networking's guest address (never leaves QEMU)
GUEST_GW=10.0.2.2       # QEMU user-mode networking's host alias
READY_MARKER=DF-GUEST-SSH-READY
FAIL_MARKER=DF-GUEST-BOOT-FAILED
PACKAGES=(busybox-static dropbear-bin nvme-cli hdparm coreutils cpio python3.11-minimal libpython3.11-stdlib openssl)
# openssl makes the keyed random overwrite stream on the guest (hardware_drivers/dd_transfer.py).
# coreutils dd, as on a Debian service environment; callers name it /bin/dd because busybox sh runs
# its own applets for bare names, and busybox dd prints no byte count.
BINARIES=(/usr/sbin/dropbear /usr/bin/dropbearkey /usr/sbin/nvme /usr/sbin/hdparm /bin/dd /usr/bin/openssl)
# Storage and network drivers the guest needs; their dependencies come from modules.dep. The crypto
# providers are listed because crc-t10dif and crc64-rocksoft ask for them through request_module,
# which has no modprobe to answer it inside the guest.
MODULES=(crct10dif_generic crc64_rocksoft_generic nvme ahci sd_mod e1000 crc32c_generic ext4)

for tool in busybox dropbearkey dropbearconvert cpio sha256sum dpkg-query ldd flock; do
  command -v "$tool" >/dev/null || die "missing tool '$tool' (run scripts/setup.sh)"
done

pick_kernel() {
  if [ -n "${GUEST_KERNEL_VERSION:-}" ]; then echo "$GUEST_KERNEL_VERSION"; return; fi
  # The running kernel may be a host kernel with no modules here: take the newest installed Debian one.
  local v best=""
  for v in $(ls /lib/modules 2>/dev/null | sort -V); do
    [ -r "/boot/vmlinuz-$v" ] && [ -r "/lib/modules/$v/modules.dep" ] && best=$v
  done
  [ -n "$best" ] || die "no installed kernel with /boot/vmlinuz-* and modules (install linux-image-amd64)"
  echo "$best"
}

KVER=$(pick_kernel)
MODDIR=/lib/modules/$KVER
KERNEL=/boot/vmlinuz-$KVER
[ -r "$KERNEL" ] || die "kernel $KERNEL not readable"

mkdir -p "$1"
OUT=$(cd "$1" && pwd)
# Test sessions that start together share one cached guest: build it once, one at a time.
exec 9>"$OUT/.lock"
flock 9

inputs_digest() {
  {
    sha256sum "$0" | cut -d' ' -f1
    echo "$KVER"
    sha256sum "$KERNEL" "$MODDIR/modules.dep" | cut -d' ' -f1
    dpkg-query -W -f='${Package} ${Version}\n' "${PACKAGES[@]}"
    sha256sum "$OUT/host_key" "$OUT/client_key.pub" 2>/dev/null | cut -d' ' -f1
  } | sha256sum | cut -d' ' -f1
}

generate_keys() {
  if [ ! -s "$OUT/host_key" ] || [ ! -s "$OUT/host_key.pub" ]; then
    rm -f "$OUT/host_key" "$OUT/host_key.pub"
    dropbearkey -t ed25519 -f "$OUT/host_key" >/dev/null 2>&1
    dropbearkey -y -f "$OUT/host_key" | grep '^ssh-ed25519 ' | cut -d' ' -f1,2 >"$OUT/host_key.pub"
  fi
  if [ ! -s "$OUT/client_key" ] || [ ! -s "$OUT/client_key.pub" ]; then
    rm -f "$OUT/client_key" "$OUT/client_key.pub" "$OUT/client_key.dropbear"
    dropbearkey -t ed25519 -f "$OUT/client_key.dropbear" >/dev/null 2>&1
    dropbearkey -y -f "$OUT/client_key.dropbear" | grep '^ssh-ed25519 ' | cut -d' ' -f1,2 \
      >"$OUT/client_key.pub"
    dropbearconvert dropbear openssh "$OUT/client_key.dropbear" "$OUT/client_key" >/dev/null 2>&1
    rm -f "$OUT/client_key.dropbear"
    chmod 600 "$OUT/client_key"
  fi
}

generate_keys
DIGEST=$(inputs_digest)
if [ -f "$OUT/.inputs" ] && [ "$(cat "$OUT/.inputs")" = "$DIGEST" ] \
  && [ -s "$OUT/initramfs.cpio" ] && [ -s "$OUT/guest.env" ] && [ -s "$OUT/bzImage" ] \
  && [ -s "$OUT/$(sed -n 's/^KERNEL=//p' "$OUT/guest.env")" ]; then
  echo "build-guest: up to date in $OUT"
  exit 0
fi

# The bzImage's payload is the ELF vmlinux, compressed; find the stream by its magic and unpack it.
# Readers stop early (head, --single-stream), so SIGPIPE statuses are expected here: the caller
# checks the result for an ELF header instead.
unpack_kernel() {
  local image=$1 magic offset
  for magic in '\xfd7zXZ\x00:xz -dc --single-stream' '\x28\xb5\x2f\xfd:zstd -qdc' '\x1f\x8b\x08:gzip -dc'; do
    offset=$(LC_ALL=C grep -obUaP "${magic%%:*}" "$image" 2>/dev/null | head -n1 | cut -d: -f1) || true
    if [ -n "$offset" ]; then
      tail -c +$((offset + 1)) "$image" | ${magic#*:} 2>/dev/null || true
      return 0
    fi
  done
  return 1
}

STAGE=$(mktemp -d "$OUT/.stage.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
ROOT=$STAGE/root
mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,etc/dropbear,root/.ssh,proc,sys,dev,tmp,run,var/log,lib/modules}
chmod 700 "$ROOT/root" "$ROOT/root/.ssh"
chmod 1777 "$ROOT/tmp"

# busybox is static; every applet becomes a symlink, except where a real binary is copied below.
cp /bin/busybox "$ROOT/bin/busybox"
for applet in $(busybox --list-full); do
  [ -e "$ROOT/$applet" ] || [ -L "$ROOT/$applet" ] || ln -s /bin/busybox "$ROOT/$applet"
done

copy_with_libs() {
  local bin=$1 lib
  rm -f "$ROOT$bin"
  install -D -m 755 "$bin" "$ROOT$bin"
  # ldd prints "name => /path (addr)" for libraries and "/path (addr)" for the loader.
  for lib in $(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'); do
    [ -e "$ROOT$lib" ] || install -D -m 755 "$(readlink -f "$lib")" "$ROOT$lib"
  done
}
for bin in "${BINARIES[@]}"; do
  copy_with_libs "$bin"
  # busybox has its own dd and hdparm applets: point every such name at the real tool.
  for dir in bin sbin usr/bin usr/sbin; do
    link=$ROOT/$dir/$(basename "$bin")
    if [ -L "$link" ] && [ "$(readlink "$link")" = /bin/busybox ]; then ln -sf "$bin" "$link"; fi
  done
done

# Python for Ansible's modules: network-booted laptops are provisioned against their deployed system
# (mounted in the service environment), and Ansible runs its modules with the target's python3.
# Debian's python3.11 with a standard library trimmed of what modules never import (tests, GUI, docs).
PYVER=3.11
copy_with_libs /usr/bin/python$PYVER
ln -sf python$PYVER "$ROOT/usr/bin/python3"
(cd /usr/lib/python$PYVER && find . -type d \( -name test -o -name tests -o -name idlelib -o -name tkinter \
    -o -name turtledemo -o -name ensurepip -o -name lib2to3 -o -name pydoc_data -o -name distutils \
    -o -name 'config-*' -o -name dist-packages -o -name site-packages -o -name lib-dynload \) -prune \
    -o \( -type f \( -name '*.py' -o -name "*.cpython-${PYVER/./}.pyc" \) -print0 \) |
  cpio --null -pdm --quiet "$ROOT/usr/lib/python$PYVER")
mkdir -p "$ROOT/usr/lib/python$PYVER/lib-dynload"
for so in /usr/lib/python$PYVER/lib-dynload/*.so; do
  case "${so##*/}" in _test*|xx*|_curses*|readline*|_ssl*|_hashlib*|_sqlite3*|_dbm*|nis*|ossaudiodev*|audioop*|_crypt*|_tkinter*|_codecs_*) continue ;; esac
  copy_with_libs "$so"
done

# Module closure in load order: modules.dep lists a module's dependencies so that loading them from
# last to first satisfies each one's own dependencies.
declare -A SEEN=()
LOAD_ORDER=()
add_module() {
  local name=$1 line path deps i
  line=$(grep -E "/${name//[-_]/[-_]}\.ko(\.[a-z]+)?:" "$MODDIR/modules.dep" | head -n1) \
    || die "module $name not found in $MODDIR/modules.dep"
  path=${line%%:*}
  read -r -a deps <<<"${line#*:}"
  for ((i = ${#deps[@]} - 1; i >= 0; i--)); do add_path "${deps[i]}"; done
  add_path "$path"
}
add_path() {
  local path=$1
  [ -n "${SEEN[$path]:-}" ] && return
  SEEN[$path]=1
  case "$path" in
    *.ko) install -D -m 644 "$MODDIR/$path" "$ROOT/lib/modules/$(basename "$path")" ;;
    *.ko.xz) xz -dc "$MODDIR/$path" >"$ROOT/lib/modules/$(basename "$path" .xz)" ;;
    *.ko.zst) zstd -qdc "$MODDIR/$path" >"$ROOT/lib/modules/$(basename "$path" .zst)" ;;
    *) die "unsupported module file $path" ;;
  esac
  local base
  base=$(basename "$path")
  LOAD_ORDER+=("${base%.ko*}.ko")
}
for m in "${MODULES[@]}"; do add_module "$m"; done
printf '%s\n' "${LOAD_ORDER[@]}" >"$ROOT/etc/guest-modules"

cat >"$ROOT/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
EOF
cat >"$ROOT/etc/group" <<'EOF'
root:x:0:
EOF
echo /bin/sh >"$ROOT/etc/shells"
echo df-service-env >"$ROOT/etc/hostname"
cp "$OUT/host_key" "$ROOT/etc/dropbear/dropbear_ed25519_host_key"
chmod 600 "$ROOT/etc/dropbear/dropbear_ed25519_host_key"
cp "$OUT/client_key.pub" "$ROOT/root/.ssh/authorized_keys"
chmod 600 "$ROOT/root/.ssh/authorized_keys"

mkdir -p "$ROOT/usr/share/udhcpc"
cat >"$ROOT/usr/share/udhcpc/default.script" <<'EOF'
#!/bin/sh
# udhcpc's hook: configure the NIC with the lease, and keep it for the enrolment agent.
case "$1" in
  deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    echo "$ip" > /run/df-address ;;
esac
EOF
chmod 755 "$ROOT/usr/share/udhcpc/default.script"

# The enrolment agent: who this laptop is, what disks it holds, and this boot's host key, posted to
# the controller with the one-time token from the kernel command line.
cat >"$ROOT/usr/sbin/df-enrol" <<'EOF'
#!/bin/sh
arg() { tr ' ' '\n' < /proc/cmdline | sed -n "s/^$1=//p" | head -n1; }
esc() { printf '%s' "$1" | tr -d '\000-\037"\\' | sed 's/[[:space:]]*$//'; }
field() { [ -r "$1" ] && esc "$(cat "$1" 2>/dev/null)"; }
ENROL=$(arg df.enrol) TOKEN=$(arg df.token) MAC=$(arg df.mac)
caps_nvme() {
  out=$(nvme id-ctrl "/dev/$1" 2>/dev/null) || return 0
  val() { printf '%s\n' "$out" | sed -n "s/^$1[[:space:]]*: *//p" | head -n1; }
  oacs=$(val oacs); sanicap=$(val sanicap); fna=$(val fna)
  oacs=$((${oacs:-0})); sanicap=$((${sanicap:-0})); fna=$((${fna:-0}))
  c=""
  [ $((oacs & 2)) -ne 0 ] && c="$c\"nvme-format\","
  [ $((fna & 4)) -ne 0 ] && c="$c\"nvme-format-crypto\","
  [ $((sanicap & 1)) -ne 0 ] && c="$c\"nvme-sanitize-crypto\","
  [ $((sanicap & 2)) -ne 0 ] && c="$c\"nvme-sanitize-block\","
  [ $((sanicap & 4)) -ne 0 ] && c="$c\"nvme-sanitize-overwrite\","
  printf '%s' "${c%,}"
}
caps_ata() {
  out=$(hdparm -I "/dev/$1" 2>/dev/null) || return 0
  c=""
  printf '%s\n' "$out" | grep -q 'supported: enhanced erase' && c="$c\"ata-enhanced-erase\","
  printf '%s\n' "$out" | grep -q 'SANITIZE feature set' && c="$c\"ata-sanitize\","
  printf '%s\n' "$out" | grep -q 'CRYPTO_SCRAMBLE_EXT' && c="$c\"ata-sanitize-crypto\","
  printf '%s' "${c%,}"
}
disks=""
for d in /sys/block/*; do
  name=${d##*/}
  case "$name" in loop*|ram*|sr*|dm-*|zram*|md*|nbd*) continue ;; esac
  size=$(( $(cat "$d/size") * 512 )); [ "$size" -gt 0 ] || continue
  rot=false; [ "$(cat "$d/queue/rotational" 2>/dev/null)" = 1 ] && rot=true
  case "$name" in
    nvme*) ctrl=/sys/class/nvme/${name%n*}; t=nvme; serial=$(field "$ctrl/serial"); model=$(field "$ctrl/model")
           fw=$(field "$ctrl/firmware_rev"); caps=$(caps_nvme "${name%n*}") ;;
    mmcblk*) t=mmc; serial=$(field "$d/device/serial"); model=$(field "$d/device/name"); fw=$(field "$d/device/fwrev"); caps="" ;;
    *) t=sata; readlink -f "$d" | grep -q /usb && t=usb
       serial=$(esc "$(hdparm -I "/dev/$name" 2>/dev/null | sed -n 's/.*Serial Number: *//p' | head -n1)")
       model=$(field "$d/device/model"); fw=$(field "$d/device/rev"); caps=$(caps_ata "$name") ;;
  esac
  disks="$disks{\"name\":\"$name\",\"serial\":\"$serial\",\"model\":\"$model\",\"size_bytes\":$size,\"firmware\":\"$fw\",\"transport\":\"$t\",\"rotational\":$rot,\"capabilities\":[$caps]},"
done
macs=""
for n in /sys/class/net/*; do [ "${n##*/}" = lo ] || macs="$macs\"$(cat "$n/address")\","; done
key=$(dropbearkey -y -f /etc/dropbear/boot_host_key | grep '^ssh-ed25519 ' | cut -d' ' -f1,2)
cat > /run/enrol.json <<JSON
{"token":"$TOKEN","boot_mac":"$MAC","serial":"$(field /sys/class/dmi/id/product_serial)","vendor":"$(field /sys/class/dmi/id/sys_vendor)","model":"$(field /sys/class/dmi/id/product_name)","macs":[${macs%,}],"disks":[${disks%,}],"host_key":"$key","ssh_port":22}
JSON
n=0
until wget -q -O /run/enrol.out --header 'Content-Type: application/json' --post-file /run/enrol.json "$ENROL"; do
  n=$((n + 1)); [ $n -lt 3 ] || { echo "DF-ENROL-REFUSED: $(cat /run/enrol.out 2>/dev/null)"; exit 1; }
  sleep 2
done
echo "DF-ENROLLED: $(cat /run/enrol.out)"
# Boot-to-disk: once the controller says the work is done, reboot; iPXE then boots the disk.
BASE=${ENROL%/api/netboot/enrol}
while sleep 3; do
  case "$(wget -q -O - "$BASE/netboot/next/$MAC" 2>/dev/null)" in
    reboot*) echo "DF-BOOT-TO-DISK"; sync; reboot -f ;;
  esac
done
EOF
chmod 755 "$ROOT/usr/sbin/df-enrol"

cat >"$ROOT/init" <<EOF
#!/bin/sh
# Service-environment init: mount, load drivers, configure the network, start dropbear, then idle.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
echo > /proc/sys/kernel/modprobe
hostname -F /etc/hostname
fail() { echo "$FAIL_MARKER: \$*"; sleep 2; poweroff -f; }
while read -r mod; do
  insmod "/lib/modules/\$mod" || fail "insmod \$mod"
done < /etc/guest-modules
ip link set lo up
netboot_nic() {  # the NIC whose MAC the boot token was issued to
  for n in /sys/class/net/*; do [ "\$(cat \$n/address)" = "\$1" ] && { echo "\${n##*/}"; return; }; done
}
if grep -q 'df.enrol=' /proc/cmdline; then
  mac=\$(tr ' ' '\n' < /proc/cmdline | sed -n 's/^df.mac=//p')
  n=0
  while [ -z "\$(netboot_nic "\$mac")" ]; do
    n=\$((n + 1)); [ \$n -le 100 ] || fail "no NIC with MAC \$mac"; sleep 0.1
  done
  nic=\$(netboot_nic "\$mac")
  ip link set "\$nic" up
  udhcpc -i "\$nic" -n -q -t 10 -T 2 -s /usr/share/udhcpc/default.script >/dev/null 2>&1 || fail "no DHCP lease on \$nic"
  # Disks appear asynchronously after the drivers load: wait for one, then let the rest settle.
  n=0
  while ! ls /sys/block | grep -qE '^(nvme|sd|mmcblk)'; do
    n=\$((n + 1)); [ \$n -le 100 ] || fail "no disk appeared"; sleep 0.1
  done
  sleep 1
  dropbearkey -t ed25519 -f /etc/dropbear/boot_host_key >/dev/null 2>&1 || fail "dropbearkey"
  dropbear -r /etc/dropbear/boot_host_key -s -g -j -k -p 22 || fail "dropbear"
  echo "$READY_MARKER"
  df-enrol &
else
  ip link set eth0 up || fail "no eth0"
  ip addr add $GUEST_IP/24 dev eth0
  ip route add default via $GUEST_GW
  # Disks appear asynchronously after the drivers load; SSH is ready only once they are there.
  n=0
  while [ ! -b /dev/nvme0n1 ] || [ ! -b /dev/sda ]; do
    n=\$((n + 1)); [ \$n -le 100 ] || fail "disks did not appear: \$(ls /dev | tr '\n' ' ')"
    sleep 0.1
  done
  dropbear -r /etc/dropbear/dropbear_ed25519_host_key -s -g -j -k -p 22 || fail "dropbear"
  echo "$READY_MARKER"
fi
trap 'poweroff -f' USR2 TERM
while :; do sleep 3600 & wait \$!; done
EOF
chmod 755 "$ROOT/init"

(cd "$ROOT" && find . -mindepth 1 -print0 | LC_ALL=C sort -z \
  | cpio --null --create --format=newc --owner=0:0 --reproducible --quiet) >"$STAGE/initramfs.cpio"
KERNEL_FILE=vmlinuz
if unpack_kernel "$KERNEL" >"$STAGE/vmlinux" && [ "$(head -c4 "$STAGE/vmlinux")" = $'\x7fELF' ]; then
  KERNEL_FILE=vmlinux
else
  echo "build-guest: cannot unpack $KERNEL; the guest boots the bzImage (slower)" >&2
  cp "$KERNEL" "$STAGE/vmlinuz"
fi
cat >"$STAGE/guest.env" <<EOF
KERNEL=$KERNEL_FILE
KERNEL_VERSION=$KVER
GUEST_IP=$GUEST_IP
READY_MARKER=$READY_MARKER
FAIL_MARKER=$FAIL_MARKER
EOF
rm -f "$OUT/vmlinux" "$OUT/vmlinuz"
mv -f "$STAGE/$KERNEL_FILE" "$OUT/$KERNEL_FILE"
cp "$KERNEL" "$OUT/bzImage.new" && mv -f "$OUT/bzImage.new" "$OUT/bzImage"
mv -f "$STAGE/initramfs.cpio" "$OUT/initramfs.cpio"
mv -f "$STAGE/guest.env" "$OUT/guest.env"
echo "$DIGEST" >"$OUT/.inputs"
echo "build-guest: built kernel $KVER and initramfs in $OUT"
