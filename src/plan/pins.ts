// Where a portal's BPF objects live in bpffs (mounted there by mpctl if it is not one):
//
//   /run/mpctl/bpf/<instance>/prog_encap    the encap program (tc ingress of lan / wan, forward)
//   /run/mpctl/bpf/<instance>/prog_decap    the decap program (tc ingress of each link / wan)
//   /run/mpctl/bpf/<instance>/mp_*          the maps, pinned by name (bpf/mp.h), shared by both
//
// Not /sys/fs/bpf: `ip netns exec` (how a portal runs inside a namespace, as in the lab)
// remounts /sys, so pins there would be invisible to every other shell. MPCTL_BPF_ROOT overrides.
//
// Programs are `prog_<attach point>` and maps keep their C names (all `mp_…`), so the two never
// collide. One directory per instance: several portals coexist, and `down` removes exactly one.

export const BPFFS_ROOT = process.env.MPCTL_BPF_ROOT ?? '/run/mpctl/bpf';

export type ProgName = 'encap' | 'decap';

export const pinDir = (instance: string): string => `${BPFFS_ROOT}/${instance}`;

export const progPin = (instance: string, prog: ProgName): string => `${pinDir(instance)}/prog_${prog}`;
