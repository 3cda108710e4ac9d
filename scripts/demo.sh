#!/usr/bin/env bash
# The main job on its embedded default: the lab with three emulated links (dsl 20 Mbit/10 ms,
# 4g 10 Mbit/25 ms, sat 30 Mbit/40 ms) bonded by both portals, each link measured and then one
# TCP flow through the bond. Leaves the lab up to play with.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
LAB=${MPCTL_LAB:-demo}
bin/mpctl lab down --name "$LAB" >/dev/null
bin/mpctl lab up --name "$LAB"
echo
bin/mpctl lab check --name "$LAB"
cat <<EOT

The lab "$LAB" is up. Try:
  bin/mpctl lab exec --name $LAB client -- ping -c 3 server
  bin/mpctl lab exec --name $LAB lp -- bin/mpctl status --instance $LAB-lp
  bin/mpctl lab set  --name $LAB isp2 --delay 80ms --loss 1%
  bin/mpctl lab status --name $LAB [--json]
  bin/mpctl lab down --name $LAB
EOT
