#!/bin/bash
# usage: measure.sh SECONDS lab1 lab2 ...   -> per-portal utime/stime % and per-thread split
S=$1; shift
snap() { # lab role -> lines "tid comm utime stime"
  local pid=$(pgrep -f "/run/mpctl/lab/$1/$2.toml" | head -1)
  for t in /proc/$pid/task/*; do
    s=$(cat $t/stat 2>/dev/null) || continue
    comm=$(cat $t/comm); rest=${s##*) }; set -- $rest
    echo "$(basename $t) ${comm// /_} ${12} ${13}"
  done | sort
}
for lab in "$@"; do for r in lp rp; do snap $lab $r > /tmp/cpu4/a.$lab.$r; done; done
t0=$(date +%s.%N); sleep $S; t1=$(date +%s.%N)
for lab in "$@"; do for r in lp rp; do snap $lab $r > /tmp/cpu4/b.$lab.$r; done; done
W=$(echo "$t1 - $t0" | bc)
for lab in "$@"; do for r in lp rp; do
  join /tmp/cpu4/a.$lab.$r /tmp/cpu4/b.$lab.$r | awk -v W=$W -v L=$lab -v R=$r '
    { du=$6-$3; ds=$7-$4; U+=du; Sy+=ds; key=$2; tu[key]+=du; ts[key]+=ds }
    END { printf "%s %s total %.2f%% (user %.2f sys %.2f) |", L, R, (U+Sy)/W, U/W, Sy/W;
          for (k in tu) if (tu[k]+ts[k]>0) printf " %s u%.2f s%.2f", k, tu[k]/W, ts[k]/W; printf "\n" }'
done; done
