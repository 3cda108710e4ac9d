#!/bin/bash
# session 30: A/B of two trees in alternating fresh mismatch labs (mmdown.sh: U CUBIC uploads,
# then D CUBIC downloads per lab), N rounds; each lab holds the shared lock for itself
A=${A:-/work/wt-b}; B=${B:-/work/wt-x}; N=${N:-3}
for r in $(seq 1 $N); do
  for t in A B; do
    tree=${!t}
    echo "== round $r tree $t ($tree)"
    TREE=$tree P=s30${t,,}$r K=1 flock -o /tmp/mpctl-heavy.lock /work/main/bench-results/s30/mmdown.sh 2>/dev/null | grep -v "before:\|after:"
  done
done
