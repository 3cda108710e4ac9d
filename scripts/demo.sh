#!/usr/bin/env bash
# The main job on its embedded default: the lab with three emulated links (dsl 20 Mbit/10 ms,
# 4g 10 Mbit/25 ms, sat 30 Mbit/40 ms) bonded by both portals, each link measured and then one
# TCP flow through the bond. On a terminal it then runs one long TCP flow client → server and
# shows the Local Portal's live console (`mpctl attach`): d or Ctrl-C leaves it, the lab stays up
# to play with; without a terminal it prints what to try.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
LAB=${MPCTL_LAB:-demo}
bin/mpctl lab down --name "$LAB" >/dev/null
bin/mpctl lab up --name "$LAB"
echo
bin/mpctl lab check --name "$LAB"
if [[ -t 0 && -t 1 && -z ${MPCTL_DEMO_NO_CONSOLE:-} ]]; then
  # a flow to watch: iperf3 server and client inside the lab, stopped when the console closes
  bin/mpctl lab exec --name "$LAB" server -- iperf3 -s -1 -p 5299 >/dev/null 2>&1 &
  SRV=$!
  sleep 0.5
  bin/mpctl lab exec --name "$LAB" client -- iperf3 -c server -p 5299 -t 86400 >/dev/null 2>&1 &
  CLI=$!
  trap 'kill $CLI $SRV 2>/dev/null || true; wait 2>/dev/null || true' EXIT
  echo
  echo "Live console of the Local Portal, one TCP flow client → server running."
  echo "d detaches (the lab stays up), ? shows the keys."
  sleep 2
  bin/mpctl attach -i "$LAB-lp" || true
fi
cat <<EOT

The lab "$LAB" is up. Try:
  bin/mpctl lab exec --name $LAB client -- ping -c 3 server
  bin/mpctl attach -i $LAB-lp          (the Local Portal's live console)
  bin/mpctl status -i $LAB-lp --watch
  bin/mpctl lab set  --name $LAB isp2 --delay 80ms --loss 1%
  bin/mpctl lab status --name $LAB [--json]
  bin/mpctl lab down --name $LAB
EOT
