/**
 * The sandbox's seccomp filter: a classic-BPF program that makes the syscalls Docker's default
 * profile refuses fail with EPERM, and lets everything else through.
 *
 * Docker's profile is an allow-list; this is the equivalent deny-list of what it leaves out (or
 * only allows with capabilities we do not grant): kernel modules, kexec, bpf, perf, mount and the
 * new mount API, pivot_root, unshare/setns and clone with namespace flags, keyrings, reboot, swap,
 * clock setting, quotas, handle-based opens, cross-process memory access, io_uring, NUMA policy,
 * sethostname. ptrace is allowed (Docker allows it on kernels >= 4.8). clone3 gets ENOSYS so libc
 * falls back to clone, whose flags we can inspect (Docker does the same).
 *
 * Arches: x86_64 (and its i386 compat ABI, with i386 numbers; the x32 ABI is refused). On other
 * host arches `seccompProgram()` returns an empty buffer and no filter is installed (known gap).
 * Numbers checked against linux/asm/unistd_64.h and unistd_32.h.
 */

const AUDIT_ARCH_X86_64 = 0xc000003e;
const AUDIT_ARCH_I386 = 0x40000003;
const RET_ALLOW = 0x7fff0000;
const RET_ERRNO = 0x00050000;
const EPERM = 1;
const ENOSYS = 38;

/** CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET (and NEWTIME): refused like Docker. */
const CLONE_NS_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x00000080;

/** name → [x86_64, i386]; -1 = does not exist on that ABI. */
export const DENIED_SYSCALLS: Readonly<Record<string, readonly [number, number]>> = {
  acct: [163, 51], add_key: [248, 286], bpf: [321, 357], clock_adjtime: [305, 343], clock_settime: [227, 264],
  clock_settime64: [-1, 404], clock_adjtime64: [-1, 405], create_module: [174, 127], delete_module: [176, 129],
  finit_module: [313, 350], get_kernel_syms: [177, 130], get_mempolicy: [239, 275], init_module: [175, 128],
  ioperm: [173, 101], iopl: [172, 110], kcmp: [312, 349], kexec_file_load: [320, -1], kexec_load: [246, 283],
  keyctl: [250, 288], lookup_dcookie: [212, 253], mbind: [237, 274], mount: [165, 21], move_pages: [279, 317],
  name_to_handle_at: [303, 341], nfsservctl: [180, 169], open_by_handle_at: [304, 342], perf_event_open: [298, 336],
  pivot_root: [155, 217], process_vm_readv: [310, 347], process_vm_writev: [311, 348], query_module: [178, 167],
  quotactl: [179, 131], quotactl_fd: [443, 443], reboot: [169, 88], request_key: [249, 287], set_mempolicy: [238, 276],
  set_mempolicy_home_node: [450, 450], setns: [308, 346], settimeofday: [164, 79], stime: [-1, 25], swapon: [167, 87],
  swapoff: [168, 115], sysfs: [139, 135], _sysctl: [156, 149], umount: [-1, 22], umount2: [166, 52], unshare: [272, 310],
  uselib: [134, 86], userfaultfd: [323, 374], ustat: [136, 62], vhangup: [153, 111], vm86: [-1, 166], vm86old: [-1, 113],
  syslog: [103, 103], sethostname: [170, 74], setdomainname: [171, 121], fanotify_init: [300, 338],
  open_tree: [428, 428], move_mount: [429, 429], fsopen: [430, 430], fsconfig: [431, 431], fsmount: [432, 432],
  fspick: [433, 433], mount_setattr: [442, 442], io_uring_setup: [425, 425], io_uring_enter: [426, 426],
  io_uring_register: [427, 427], pidfd_getfd: [438, 438], process_madvise: [440, 440],
};
const CLONE = [56, 120] as const;
const CLONE3 = 435;

// Classic BPF opcodes.
const LD_W_ABS = 0x20, JEQ_K = 0x15, JSET_K = 0x45, RET_K = 0x06;

type Insn = { code: number; k: number; jt?: string; jf?: string; label?: string };

function assemble(prog: Insn[]): Buffer {
  const at = new Map<string, number>();
  prog.forEach((ins, i) => { if (ins.label) at.set(ins.label, i); });
  const out = Buffer.alloc(prog.length * 8);
  prog.forEach((ins, i) => {
    const rel = (l: string | undefined): number => {
      if (l === undefined) return 0;
      const to = at.get(l);
      if (to === undefined || to <= i || to - i - 1 > 255) throw new Error(`bpf: bad jump to ${l} from ${i}`);
      return to - i - 1;
    };
    out.writeUInt16LE(ins.code, i * 8);
    out.writeUInt8(rel(ins.jt), i * 8 + 2);
    out.writeUInt8(rel(ins.jf), i * 8 + 3);
    out.writeUInt32LE(ins.k >>> 0, i * 8 + 4);
  });
  return out;
}

/** The filter as an array of struct sock_filter (8 bytes each), or empty on unsupported arches. */
export function seccompProgram(arch: string = process.arch): Buffer {
  if (arch !== 'x64') return Buffer.alloc(0);
  const p: Insn[] = [];
  const denyChain = (abi: 0 | 1, prefix: string) => {
    p.push({ code: JEQ_K, k: CLONE[abi], jt: `${prefix}clone` });
    p.push({ code: JEQ_K, k: CLONE3, jt: 'enosys' });
    for (const nums of Object.values(DENIED_SYSCALLS)) {
      const nr = nums[abi];
      if (nr >= 0) p.push({ code: JEQ_K, k: nr, jt: 'deny' });
    }
    p.push({ code: RET_K, k: RET_ALLOW });
    // clone(flags, …): flags is the first argument on both ABIs (args[0] low word at offset 16).
    p.push({ code: LD_W_ABS, k: 16, label: `${prefix}clone` });
    p.push({ code: JSET_K, k: CLONE_NS_FLAGS, jt: 'deny' });
    p.push({ code: RET_K, k: RET_ALLOW });
  };
  p.push({ code: LD_W_ABS, k: 4 }); // seccomp_data.arch
  p.push({ code: JEQ_K, k: AUDIT_ARCH_X86_64, jf: 'not64' });
  p.push({ code: LD_W_ABS, k: 0 }); // seccomp_data.nr
  p.push({ code: JSET_K, k: 0x40000000, jt: 'deny' }); // x32 ABI
  denyChain(0, 'x64');
  p.push({ code: JEQ_K, k: AUDIT_ARCH_I386, jf: 'deny', label: 'not64' });
  p.push({ code: LD_W_ABS, k: 0 });
  denyChain(1, 'i386');
  p.push({ code: RET_K, k: RET_ERRNO | EPERM, label: 'deny' });
  p.push({ code: RET_K, k: RET_ERRNO | ENOSYS, label: 'enosys' });
  return assemble(p);
}
