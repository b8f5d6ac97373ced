#!/bin/sh
# Runs on the host or inside one gVisor sandbox (all steps must share the FUSE mount).
# usage: fuse-runc.sh SHIM RULES FIXTURE MNT BUNDLE RUNC_ROOT THREADS64 PLAIN_RUNC(0|1)
SHIM=$1 RULES=$2 FIXTURE=$3 MNT=$4 BUNDLE=$5 RROOT=$6 T64=$7 PLAIN=$8
S="$SHIM --rules $RULES --"
node "$FIXTURE" "$MNT" > "$MNT.log" 2>&1 & fx=$!
i=0; while [ $i -lt 100 ] && ! grep -q ready "$MNT.log"; do sleep 0.1; i=$((i+1)); done
echo "fixture=$(cat "$MNT.log" | tr '\n' ' ')"
echo "plain-type=$(stat -f -c %t "$MNT")"
echo "shim-type=$($S stat -f -c %t /sys/fs/cgroup)"
echo "shim-threads-redirected=$($S "$T64" /sys/fs/cgroup/cgroup.procs 63677270 20 4)"
echo "shim-threads-mount=$($S "$T64" "$MNT/cgroup.controllers" 63677270 20 4)"
echo "shim-mountinfo-cgroup2=$($S grep -c ' /sys/fs/cgroup .* - cgroup2 ' /proc/self/mountinfo)"
echo "shim-controllers=$($S cat /sys/fs/cgroup/cgroup.controllers)"
cd "$BUNDLE"
if [ "$PLAIN" = 1 ]; then
  echo "plain-runc=$(runc --root "$RROOT" run shimtest-plain 2>&1 </dev/null | tr '\n' ' ')"
  runc --root "$RROOT" delete -f shimtest-plain >/dev/null 2>&1
fi
echo "shim-runc=$($S runc --root "$RROOT" run shimtest 2>&1 </dev/null | tr '\n' ' ') rc=$?"
$S runc --root "$RROOT" delete -f shimtest >/dev/null 2>&1
kill $fx; wait $fx
i=0; while [ $i -lt 30 ] && grep -q " $MNT " /proc/mounts; do sleep 0.1; i=$((i+1)); done
if grep -q " $MNT " /proc/mounts; then echo "mounted-after=yes"; else echo "mounted-after=no"; fi
