#!/usr/bin/env bash
# sampler <out> : every 0.5 s, for every instance dir under /run/mpctl/bpf whose name starts with $PREFIX
# dumps mp_links (flags, rate, hold), mp_fec_stats, mp_link_stats, mp_drops (formatted) as one JSON line each
out=$1; prefix=$2; lab=$3
while :; do
  t=$(date +%s.%N)
  for d in /run/mpctl/bpf/${prefix}*; do
    [ -d "$d" ] || continue
    i=$(basename $d)
    for m in mp_links mp_fec_stats mp_link_stats mp_drops; do
      v=$(bpftool -j map dump pinned $d/$m 2>/dev/null | tr -d '\n')
      echo "{\"t\":$t,\"i\":\"$i\",\"m\":\"$m\",\"v\":${v:-null}}"
    done
  done >> $out
  [ -n "$lab" ] && { echo "T $t"; ip netns exec mp-$lab-server ss -tinH state established 2>/dev/null | tr -s " " | tr "\n" " "; echo; } >> ${out%.jsonl}.ss
  sleep 0.5
done
