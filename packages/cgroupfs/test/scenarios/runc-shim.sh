#!/bin/sh
# Real runc creating, updating and deleting a container's cgroup through @hybrid/ptrace-shim with
# this cgroupfs standing in for /sys/fs/cgroup. Runs on the host or inside ONE gVisor sandbox (every
# step must share the FUSE mount). Prints KEY=VALUE lines; the test asserts on them.
# usage: runc-shim.sh SHIM RULES DAEMON_JS MNT STATE PROCS BUNDLE RUNC_ROOT CGPATH ID [CREATE_FLAGS]
SHIM=$1 RULES=$2 DAEMON=$3 MNT=$4 STATE=$5 PROCS=$6 BUNDLE=$7 RROOT=$8 CG=$9 ID=${10} CREATE_FLAGS=${11}
S="$SHIM --rules $RULES ${TRACE_LOG:+--trace-log $TRACE_LOG} --"
R="runc --root $RROOT"
G="$MNT$CG"
one() { tr '\n' ' ' | sed 's/ *$//'; }

node --max-semi-space-size=1 "$DAEMON" --mountpoint "$MNT" --state-file "$STATE" --procs-dir "$PROCS" > "$MNT.log" 2>&1 & dpid=$!
i=0; while [ $i -lt 150 ] && ! cat "$MNT/cgroup.controllers" >/dev/null 2>&1; do sleep 0.1; i=$((i+1)); done
echo "controllers=$(cat "$MNT/cgroup.controllers" 2>&1 | one)"

cd "$BUNDLE"
# The tracer waits for every traced process (README of ptrace-shim), so `runc create` under the shim
# returns only when the container's init ends: run it in the background and wait for "created".
$S $R create $CREATE_FLAGS --bundle "$BUNDLE" "$ID" > "$MNT.create" 2>&1 </dev/null & cpid=$!
rc=
i=0; while [ $i -lt 300 ]; do
  if $S $R state "$ID" 2>/dev/null | grep -q '"created"'; then rc=0; break; fi
  if ! kill -0 $cpid 2>/dev/null; then wait $cpid; rc=$?; [ $rc = 0 ] && rc=exited; break; fi
  sleep 0.1; i=$((i+1))
done
echo "create-rc=${rc:-timeout}"
echo "create-out=$(one < "$MNT.create")"
pid=$($S $R state "$ID" 2>/dev/null | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' | head -1)
echo "init-pid=$pid"
echo "group-exists=$(test -d "$G" && echo yes || echo no)"
for f in memory.max pids.max cpu.max cgroup.procs; do echo "created-$f=$(cat "$G/$f" 2>&1 | one)"; done
echo "procsdir-file=$( [ -n "$pid" ] && cat "$PROCS/$pid" 2>&1 | one)"
echo "shim-proc-cgroup=$( [ -n "$pid" ] && $S cat /proc/$pid/cgroup 2>&1 | one)"

if [ "$rc" = 0 ]; then
  out=$($S $R start "$ID" 2>&1 </dev/null); echo "start-rc=$?"; echo "start-out=$(echo "$out" | one)"
  echo "status-started=$($S $R state "$ID" 2>&1 | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p' | head -1)"
  echo "started-procs=$(cat "$G/cgroup.procs" 2>&1 | one)"
  out=$($S $R update --memory 209715200 "$ID" 2>&1 </dev/null); echo "update-rc=$?"; echo "update-out=$(echo "$out" | one)"
  echo "updated-memory.max=$(cat "$G/memory.max" 2>&1 | one)"
  out=$($S $R kill "$ID" KILL 2>&1 </dev/null); echo "kill-rc=$?"; echo "kill-out=$(echo "$out" | one)"
  i=0; while [ $i -lt 100 ] && ! $S $R state "$ID" 2>/dev/null | grep -q '"stopped"'; do sleep 0.1; i=$((i+1)); done
  out=$($S $R delete "$ID" 2>&1 </dev/null); echo "delete-rc=$?"; echo "delete-out=$(echo "$out" | one)"
  echo "group-after-delete=$(test -e "$G" && echo yes || echo no)"
  i=0; while [ $i -lt 100 ] && kill -0 $cpid 2>/dev/null; do sleep 0.1; i=$((i+1)); done
  echo "create-tracer-exited=$(kill -0 $cpid 2>/dev/null && echo no || echo yes)"
fi

# cleanup: whatever state runc reached
$S $R delete --force "$ID" >/dev/null 2>&1
[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
kill -9 $cpid 2>/dev/null; wait $cpid 2>/dev/null
if [ -n "$TRACE_LOG" ]; then
  for k in "openat2 redirect: /sys/fs/cgroup ->" "mkdirat redirect: /sys/fs/cgroup$CG ->" "fstatfs: $MNT.* f_type 0x65735546 -> 0x63677270" \
           "fork cgroup: child [0-9]* -> $CG" "bpf emulate: PROG_LOAD" "bpf emulate: PROG_ATTACH" "bpf emulate: PROG_QUERY" "mount: propagation change 0x84000 refused with EINVAL -> 0"; do
    echo "trace:$k=$(grep -c -- "$k" "$TRACE_LOG")"
  done
fi
kill "$dpid"; wait "$dpid"
i=0; while [ $i -lt 50 ] && grep -q " $MNT " /proc/mounts; do sleep 0.1; i=$((i+1)); done
echo "mounted-after=$(grep -q " $MNT " /proc/mounts && echo yes || echo no)"
echo "end=1"
