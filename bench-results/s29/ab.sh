#!/bin/bash
# session 29: A/B of the sustained depth raise: alternating fresh mismatch labs, 6 CUBIC uploads then 3 downloads each
for r in 1 2; do
  for t in A B; do
    if [ $t = A ]; then TREE=/work/wt-b; else TREE=/work/main; fi
    echo "== round $r tree $t ($TREE)"
    TREE=$TREE P=s29$(echo $t | tr AB ab)$r U=6 D=3 K=1 /tmp/s29/mmseq.sh
  done
done
