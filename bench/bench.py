#!/usr/bin/env python3
"""Benchmark verified loading against plain hashing tools, in one run, on the same warm files.

For each case the commands run interleaved (one of each per round, after one warm-up round)
BENCH_REPEAT times (default 7); the small model's case BENCH_SMALL_REPEAT times (default 40).
The table gives the median wall time, the spread (fastest and slowest run), the median system
time, the ratio of the medians to `openssl dgst -sha256` on the same bytes, and the peak
resident memory of one run (from wait4).
BENCH_ONLY=small,one,oms,sharded,four,npz,gguf,spill,huge runs only those cases.
BENCH_BASELINE=/path/to/an/older/modelgate adds its `inspect` row to each case (an A/B
comparison of two builds in the same interleaved rounds).
Results go to stdout and to the output file."""
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time

MG = os.path.abspath(sys.argv[1])
WORK = os.path.abspath(sys.argv[2])
OUT = sys.argv[3]
REPEAT = int(os.environ.get("BENCH_REPEAT", "7"))
SMALL_REPEAT = int(os.environ.get("BENCH_SMALL_REPEAT", "40"))
ONLY = [c for c in os.environ.get("BENCH_ONLY", "").split(",") if c]
BASELINE = os.environ.get("BENCH_BASELINE")
PY = "/usr/bin/python3"
INPROC = object()  # marks a command that prints its own time (run_once)
TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build_load_time():
    """bench/load_time.c against the library beside MG: the time of mg_model_load alone."""
    lib_dir = os.path.dirname(MG)
    exe = os.path.join(WORK, "load_time")
    subprocess.run(["cc", "-O2", "-I", os.path.join(TOP, "include"),
                    os.path.join(TOP, "bench", "load_time.c"), "-o", exe, "-L", lib_dir,
                    "-l:libmodelgate.so.0", "-Wl,-rpath," + lib_dir], check=True)
    return exe


def run_once(cmd):
    """`cmd`: an argument list, or (environment additions, argument list), or (INPROC,
    argument list) for a program that prints its own time (bench/load_time.c), which is then
    the figure instead of the process's wall time."""
    env = None
    inproc = False
    if isinstance(cmd, tuple):
        inproc = cmd[0] is INPROC
        env = None if inproc else dict(os.environ, **cmd[0])
        cmd = cmd[1]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE if inproc else subprocess.DEVNULL,
                         stderr=subprocess.PIPE, env=env)
    out = p.stdout.read() if inproc else b""
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t0
    if inproc:
        p.stdout.close()
        dt = float(out.decode().strip() or "nan")
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode()
    p.stderr.close()
    if p.returncode != 0:
        raise SystemExit("benchmark command failed (%d): %s\n%s" % (p.returncode, " ".join(cmd), err))
    # ru covers the command and the children it waited for (the confined parser).
    return dt, ru.ru_maxrss * 1024, ru.ru_stime


def measure(cmds, repeat):
    """Run the commands interleaved, `repeat` rounds after one warm-up round (page cache,
    binaries), so that a change in the machine's load hits all of them alike, in an order
    that changes from round to round. Returns, per
    command: (median s, fastest s, slowest s, median system s, peak RSS bytes)."""
    for cmd in cmds:
        run_once(cmd)
    runs = [[] for _ in cmds]
    # The order is shuffled each round (the same seeds in every run): on this virtual machine
    # how fast a load gets fresh memory can depend on what ran just before it (a load right
    # after another load freed as much memory may get pages the host still backs), so no
    # command may keep its place after another (a rotation would: it keeps the cyclic order).
    for r in range(repeat):
        order = list(range(len(cmds)))
        random.Random(r).shuffle(order)
        for i in order:
            runs[i].append(run_once(cmds[i]))
    out = []
    for r in runs:
        times = [x[0] for x in r]
        out.append((statistics.median(times), min(times), max(times),
                    statistics.median(x[2] for x in r), max(x[1] for x in r)))
    return out


def warm(paths):
    # Small reads: a command's peak RSS (wait4) starts from this process's size when it forks.
    for p in paths:
        with open(p, "rb") as f:
            while f.read(1 << 20):
                pass


def digest(path):
    out = subprocess.run(["openssl", "dgst", "-sha256", "-r", path], capture_output=True, check=True)
    return out.stdout.split()[0].decode()


SHARD_SIZE = 64 << 20


def signed_copy(one, name, *sign_args):
    """The 1 GiB file (hard-linked) in folder `name`, signed with 64 MiB shards by
    `modelgate sign SIGN_ARGS`. Returns the folder and the public key."""
    d = os.path.join(WORK, name)
    os.makedirs(d, mode=0o700, exist_ok=True)
    target = os.path.join(d, os.path.basename(one))
    if os.path.exists(target) and not os.path.samefile(one, target):
        os.remove(target)  # the input was made again
    if not os.path.exists(target):
        os.link(one, target)
    key = os.path.join(WORK, "bench-oms")
    if not os.path.exists(key + ".key"):
        subprocess.run([MG, "keygen", "-t", "ecdsa-p256", "-o", key], check=True,
                       stdout=subprocess.DEVNULL)
    for f in os.listdir(d):
        if f != os.path.basename(one):
            os.remove(os.path.join(d, f))  # an earlier signature
    subprocess.run([MG, "sign", *sign_args, "-k", key + ".key", "--shard-size", str(SHARD_SIZE),
                    d], check=True, stdout=subprocess.DEVNULL)
    return d, key + ".pub"


def sharded_entries(one):
    """Policy entries (and the key) of the two sharded signings of the 1 GiB file: an OMS
    bundle (serialization "shards") and modelgate's own manifest with sha256_shards."""
    oms_dir, pub = signed_copy(one, "oms", "--format", "oms")
    man_dir, _ = signed_copy(one, "sharded")  # the manifest names its folder
    return ([{"name": "oms", "source": oms_dir + "/", "oms": {"keys": ["bench"]}},
             {"name": "sharded", "source": man_dir + "/", "manifest": {"keys": ["bench"]}}],
            {"bench": {"public_key": pub}})


def policy(entries, name="policy.json", keys=None, **top):
    path = os.path.join(WORK, name)
    with open(path, "w") as f:
        json.dump(dict({"modelgate_policy": 1, "models": entries, "keys": keys or {}}, **top), f)
    os.chmod(path, 0o600)
    return path


def run_timed(cmd, preexec=None):
    """One run: wall s, system s, peak RSS bytes (wait4)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=preexec)
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t0
    err = p.stderr.read().decode()
    p.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("benchmark command failed: %s\n%s" % (" ".join(cmd), err))
    return dt, ru.ru_stime, ru.ru_maxrss * 1024


def own_memory_cgroup():
    """This process's memory cgroup folder (v1 or v2), or None."""
    with open("/proc/self/cgroup") as f:
        lines = [l.rstrip("\n").split(":", 2) for l in f]
    for hid, ctrls, path in lines:
        if "memory" in ctrls.split(",") and os.path.exists("/sys/fs/cgroup/memory" + path):
            return "v1", "/sys/fs/cgroup/memory" + path
    for hid, ctrls, path in lines:
        if hid == "0" and os.path.exists("/sys/fs/cgroup" + path + "/cgroup.subtree_control"):
            return "v2", "/sys/fs/cgroup" + path
    return None


def spill_case(one, repeat):
    """Issue 17 point 6: a load of a model larger than the memory limit, from spill files.

    RLIMIT_AS counts file mappings as well, so no load gets past it; the limit a spill file
    beats is a memory cgroup's (or free memory). With BENCH_CGROUP=1 (root, writable cgroups)
    the loads also run in a memory cgroup of 70% of the model's size made below this process's
    own; otherwise the rows compare "memory": "file" with "ram" without a limit."""
    size = os.path.getsize(one)
    spill = os.path.join(WORK, "spill")
    os.makedirs(spill, mode=0o700, exist_ok=True)
    os.chmod(spill, 0o700)
    entry = [{"name": "one", "source": one, "sha256": digest(one), "size": size}]
    pols = {m: policy(entry, "policy-%s.json" % m, spill_dir=spill, memory=m)
            for m in ("file", "ram")}
    cmds = [("modelgate inspect, \"memory\": \"file\" (spill file)",
             [MG, "inspect", "-q", "-p", pols["file"], "one"]),
            ("modelgate inspect, \"memory\": \"ram\"", [MG, "inspect", "-q", "-p", pols["ram"], "one"]),
            ("openssl dgst -sha256", ["openssl", "dgst", "-sha256", one])]
    enter, cg, title = None, None, "no memory limit"
    if os.environ.get("BENCH_CGROUP") == "1" and own_memory_cgroup() is not None:
        kind, parent = own_memory_cgroup()
        cg = os.path.join(parent, "modelgate-bench-%d" % os.getpid())
        os.mkdir(cg)
        limit = size * 7 // 10
        with open(os.path.join(cg, "memory.limit_in_bytes" if kind == "v1" else "memory.max"), "w") as f:
            f.write(str(limit))
        title = "in a memory cgroup limited to %.0f MiB" % (limit / 1048576)
        cmds = [c for c in cmds if "ram" not in c[0]]  # (a memfd cannot be reclaimed: it would fail)

        def enter():
            with open(os.path.join(cg, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
    lines = ["## %.0f MiB safetensors loaded from a spill file, %s\n" % (size / 1048576, title),
             "| command | median s | min-max s | median system s | peak RSS MiB |",
             "|---|---:|---:|---:|---:|"]
    try:
        warm([one])
        for label, cmd in cmds:
            run_timed(cmd, enter)  # warm-up
            runs = [run_timed(cmd, enter) for _ in range(repeat)]
            walls = [r[0] for r in runs]
            lines.append("| %s | %.3f | %.3f-%.3f | %.3f | %.0f |" % (
                label, statistics.median(walls), min(walls), max(walls),
                statistics.median(r[1] for r in runs), max(r[2] for r in runs) / 1048576))
    finally:
        if cg is not None:
            for _ in range(50):
                try:
                    os.rmdir(cg)
                    break
                except OSError:
                    time.sleep(0.1)
    lines.append("\nA spill file's pages are page cache: they count in the peak RSS once touched "
                 "(hashing touches them all) but can be dropped and read again under pressure, "
                 "unlike the memfd of \"ram\". Load average at the end: %s.\n" %
                 " ".join("%.2f" % x for x in os.getloadavg()))
    return lines


# verify and fetch of a model larger than the memory the process may use (issue 17, point 6):
# a sparse file (a header, a few written bytes, holes) of BENCH_HUGE_BYTES, under an address
# space limit of BENCH_HUGE_LIMIT.
HUGE_BYTES = int(os.environ.get("BENCH_HUGE_BYTES", str(6 << 30)))
HUGE_LIMIT = int(os.environ.get("BENCH_HUGE_LIMIT", str(1 << 30)))


def huge_section():
    path = os.path.join(WORK, "huge.bin")
    if not os.path.exists(path) or os.path.getsize(path) != HUGE_BYTES:
        with open(path, "wb") as f:
            f.write(b"modelgate bench: a sparse file larger than the memory limit\n")
            for off in (HUGE_BYTES // 3, HUGE_BYTES // 2, HUGE_BYTES - 1):
                f.seek(off)
                f.write(b"\x5a")
            f.truncate(HUGE_BYTES)
    cache = os.path.join(WORK, "huge-cache")
    pol = policy([{"name": "huge", "source": path, "sha256": digest(path), "size": HUGE_BYTES}],
                 "policy-huge.json", cache_dir=cache)
    limit = ["prlimit", "--as=%d" % HUGE_LIMIT]
    cmds = [
        ("modelgate verify (streamed)", limit + [MG, "verify", "-q", "-p", pol, "huge"]),
        # each run publishes anew: the cache is emptied first (in the same process, by exec)
        ("modelgate fetch (streamed into the cache)",
         limit + ["/bin/sh", "-c", 'rm -rf "$1" && exec "$2" fetch -q -p "$3" huge', "sh", cache,
                  MG, pol]),
        ("openssl dgst -sha256", ["openssl", "dgst", "-sha256", path]),
        ("sha256sum", ["sha256sum", path]),
    ]
    lines = ["## verify and fetch of a model larger than the memory limit\n",
             "A sparse file of %.1f GiB (holes read as zeros: this measures hashing, not the disk), "
             "modelgate run under an address-space limit (`prlimit --as`) of %.0f MiB.\n" % (
                 HUGE_BYTES / (1 << 30), HUGE_LIMIT / (1 << 20)),
             "| command | median s | ratio to openssl | peak RSS MiB |", "|---|---:|---:|---:|"]
    results = [(label, *r) for (label, _), r in zip(cmds, measure([c for _, c in cmds], REPEAT))]
    base = [r for r in results if r[0].startswith("openssl")][0][1]
    for label, t, lo, hi, sys_s, rss in results:
        lines.append("| %s | %.3f | %.2f | %.0f |" % (label, t, t / base, rss / 1048576))
    lines.append("")
    return lines


NOTES = """## How to read these figures

- *Confinement* (issue 15): the small model's rows give the cost of parsing in the confined
  process per load, the 1 GiB rows the same cost next to the read and hash. By default that
  process is the parser helper `modelgate-parse`, started with posix_spawn on a thread of its
  own when the load starts, so that its exec overlaps the policy checks and the reading; it
  is handed the sealed memfds over a socket, maps them read-only and sends the table back. What
  remains is its exec (on this virtual machine about 2.4 ms of wall time, 0.4 ms more than
  `/bin/true`, once it links nothing but libc dynamically; 4.5 ms with jansson, libzip,
  libcrypto and libbz2 linked as usual), the round trip and the parse. The forked child row
  (`MODELGATE_PARSER=none`, the fallback) pays the fork of the whole process and the
  copy-on-write faults of the pages both write while both live; on this virtual machine one
  fork and exit of even a tiny process takes 1.5 to 6 ms (each page-table change and TLB
  shootdown goes through the hypervisor).
- *Fresh memory* (issue 17): a verified load keeps a private copy, and on this virtual machine
  backing fresh memory with pages costs as much as hashing it. Writing the bytes into a memfd
  with pwrite (the kernel allocates 4 KiB shmem pages, no user page table entry is made) was
  the steadiest: 0.6 s per GiB over a plain read. Anonymous memory was 1.2 to 12 s per GiB
  with 4 KiB pages (one hypervisor exit per page) and 0.8 to 5 s with huge pages (fast only
  when the kernel still had recently freed 2 MiB blocks; free blocks of 8 MiB and more are
  handed back to the host, page_reporting_order=11, and must be backed again). openssl reads
  through one small buffer and never pays this. With fewer files than cores (a single file
  on 2 cores) the read is a pipeline (src/region.c): a filler thread reads 256 KiB chunks
  into a ring of 16 (pread), writes each into the memfd (pwrite) and takes its CRC-32 where
  needed, while the calling thread hashes the same chunks in order; whenever the hasher's
  next chunk is not ready it fills one itself, so both cores share the fill, whose cost
  swings from 0.25 to 1.5 s per GiB from run to run here (the host backs new guest pages).
  Still one read of the file and one copy, no other pass. With 4 files on 2 cores both cores
  hash, and the fill is added to the hashing: the multi-file ratio is bounded by
  (hash + fill) / 2 over openssl's hash, about 0.65-0.75 here.
- *Stored npz* (issue 17): a stored member is used in place and its CRC-32 must be checked;
  zlib's crc32 runs at about 5 GB/s here (0.2 s per GiB). The filler takes the CRC-32 of
  each chunk while it is in cache and combines them into one CRC per 1 MiB block; the parser
  combines those into each member's CRC (crc32_combine), exact, with no pass of its own.
  With a spare core the CRC is off the hasher's path, and an npz costs what a safetensors
  file of its size costs.
- *Sharded files* (issue 16): each of the 2 workers reads a 256 KiB chunk, hashes it while it
  is in cache and writes it into the memfd. A shard's digest is sequential, so once no shard
  is left to take, a worker helps with a shard still in progress: it reads and writes that
  shard's chunks from its end, and the owner reads those back from the memfd and only hashes
  them. What is left of the tail is the SHA of the rest of the last shard (10 to 30 ms with
  64 MiB shards). Reading straight into a writable shared mapping of the memfd (one copy
  fewer) lost here before any hashing (user page faults go through the hypervisor: 1.5-2.6 s
  per GiB against 0.26-2.5 s for pwrite); so did a general fill/hash ring per worker
  (bench/NOTES-pipe.md).
- *The library row* ("the mg_model_load call alone", bench/load_time.c) is the time a program
  that links libmodelgate waits for one load: verify, read into verified memory, parse. The
  `modelgate inspect` row adds the process start (about 5 ms), opening the policy (about
  4 ms), printing, and freeing the model at exit: for 1 GiB in one memfd, 40 to 45 ms in
  which the kernel frees 262,144 shmem pages on one core. openssl's row is a whole process,
  as the tool's is.
- *Fresh memory on this machine*: the same command's time swings between about 0.5 and 1.4 s
  for 1 GiB from one run to the next (the spread columns), in the fill: the host backs the
  guest's new pages at a cost that changes over time, and a load that starts right after
  another one freed as much memory sometimes gets pages the host still backs. The order of
  the commands is therefore shuffled in each round (fixed seeds), so that no row keeps the
  place after another; the medians still move by 0.1-0.3 s between runs.
- *Process start*: libcurl is opened only for a remote source (about 9 ms of every process
  start before, with the two dozen libraries it brings).
- Timings on a shared virtual machine move from run to run; the spread columns show by how
  much. The system time is the command's and its children's (getrusage via wait4); for the
  library row it is that program's, freeing included.
"""


def main():
    one = os.path.join(WORK, "one.safetensors")
    small = os.path.join(WORK, "small.safetensors")
    four_dir = os.path.join(WORK, "four")
    four = sorted(os.path.join(four_dir, f) for f in os.listdir(four_dir))
    npz = os.path.join(WORK, "one.npz")
    gguf = os.path.join(WORK, "one.gguf")
    allfiles = [one, npz, gguf, small] + four
    warm(allfiles)
    entries = [{"name": n, "source": p, "sha256": digest(p), "size": os.path.getsize(p)}
               for n, p in (("one", one), ("npz", npz), ("gguf", gguf), ("small", small))]
    entries.append({"name": "four", "source": four_dir + "/",
                    "files": {os.path.basename(p): {"sha256": digest(p), "size": os.path.getsize(p)}
                              for p in four}})
    keys = {}
    if not ONLY or "oms" in ONLY or "sharded" in ONLY:
        shard_entries, keys = sharded_entries(one)
        entries += shard_entries
    pol = policy(entries, keys=keys)
    # The same models parsed in this process ("sandbox": "off"): the cost of confinement.
    pol_off = policy(entries, "policy-off.json", keys=keys, sandbox="off")
    mg = lambda name: [MG, "inspect", "-q", "-p", pol, name]
    load_time = build_load_time()
    lib_label = "library: the mg_model_load call alone (bench/load_time.c)"
    lib = lambda name: (INPROC, [load_time, pol, name])
    mg_off = lambda name: [MG, "inspect", "-q", "-p", pol_off, name]
    off_label = "modelgate inspect, parsed unconfined (sandbox off)"
    fork_label = "modelgate inspect, parsed by a forked child (MODELGATE_PARSER=none)"
    # (key, title, single file or None for `four`, commands, rounds)
    cases = [
        ("small", "Small model (4 MiB safetensors, 64 tensors): the cost of confinement per load",
         small, [
            ("modelgate inspect (verify + load)", mg("small")),
            (off_label, mg_off("small")),
            (fork_label, ({"MODELGATE_PARSER": "none"}, mg("small"))),
            ("openssl dgst -sha256", ["openssl", "dgst", "-sha256", small]),
        ], SMALL_REPEAT),
        ("one", "1 GiB safetensors", one, [
            ("modelgate inspect (verify + load)", mg("one")),
            (off_label, mg_off("one")),
            (lib_label, lib("one")),
            ("openssl dgst -sha256", ["openssl", "dgst", "-sha256", one]),
            ("sha256sum", ["sha256sum", one]),
            ("python hashlib.file_digest", [PY, "-c", "import hashlib,sys;hashlib.file_digest(open(sys.argv[1],'rb'),'sha256')", one]),
        ], REPEAT),
        # Issue 16's target: verified and loaded at least 1.8x faster than openssl (ratio <= 0.56)
        ("oms", "1 GiB safetensors, OMS bundle with 64 MiB shards (hashed on every core)", one, [
            ("modelgate inspect (verify + load)", mg("oms")),
            (lib_label, lib("oms")),
            ("openssl dgst -sha256", ["openssl", "dgst", "-sha256", one]),
        ], REPEAT),
        ("sharded", "1 GiB safetensors, modelgate manifest with 64 MiB shards (sign --shard-size)",
         one, [
            ("modelgate inspect (verify + load)", mg("sharded")),
            (lib_label, lib("sharded")),
            ("openssl dgst -sha256", ["openssl", "dgst", "-sha256", one]),
        ], REPEAT),
        ("four", "4 x 256 MiB safetensors (one model)", None, [
            ("modelgate inspect (verify + load)", mg("four")),
            (off_label, mg_off("four")),
            ("openssl dgst -sha256, 4 files in sequence", ["openssl", "dgst", "-sha256", *four]),
        ], REPEAT),
        ("npz", "1 GiB npz (stored, numpy savez)", npz, [
            ("modelgate inspect (verify + load)", mg("npz")),
            (off_label, mg_off("npz")),
            ("openssl dgst -sha256", ["openssl", "dgst", "-sha256", npz]),
        ], REPEAT),
        ("gguf", "1 GiB GGUF (F32)", gguf, [
            ("modelgate inspect (verify + load)", mg("gguf")),
            (off_label, mg_off("gguf")),
            ("openssl dgst -sha256", ["openssl", "dgst", "-sha256", gguf]),
        ], REPEAT),
    ]
    if ONLY:
        cases = [c for c in cases if c[0] in ONLY]
    if BASELINE:
        base_mg = os.path.abspath(BASELINE)
        cases = [(key, title, single,
                  [cmds[0], ("modelgate inspect, baseline build (%s)" % base_mg,
                             [base_mg] + cmds[0][1][1:])] + cmds[1:], rounds)
                 for key, title, single, cmds, rounds in cases]
    lines = []
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for l in f:
            if l.startswith("model name"):
                cpu = l.split(":", 1)[1].strip()
                break
    sha_ni = "sha_ni" in open("/proc/cpuinfo").read()
    ossl = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()
    lines.append("# Benchmark results\n")
    lines.append("Written by `make bench` (bench/bench.py) on %s." % time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    lines.append("Machine: %s, %d cores, SHA-NI %s, %s, Linux %s, %s.\n" % (
        cpu, os.cpu_count(), "yes" if sha_ni else "no", platform.machine(), platform.release(), ossl))
    lines.append("Files are in the page cache (read once before timing); in each case the commands "
                 "ran interleaved, one of each per round in a shuffled order, after one warm-up round (%d rounds; the "
                 "small model %d); time is the median wall time, spread the fastest and slowest "
                 "run, sys the median system time of the command and its children; ratio is the "
                 "median divided by `openssl dgst -sha256`'s on the same bytes in the same run; "
                 "peak RSS is the largest of the runs. Load average at the start: %s.\n" % (
                     REPEAT, SMALL_REPEAT, " ".join(open("/proc/loadavg").read().split()[:3])))
    for key, title, single, cmds, rounds in cases:
        lines.append("## %s\n" % title)
        lines.append("| command | median s | spread s | sys s | ratio to openssl | peak RSS MiB |")
        lines.append("|---|---:|---:|---:|---:|---:|")
        results = [(label, *r) for (label, _), r in zip(cmds, measure([c for _, c in cmds], rounds))]
        base = [r for r in results if r[0].startswith("openssl")][0][1]
        size = sum(os.path.getsize(p) for p in (four if single is None else [single]))
        for label, t, lo, hi, sys_s, rss in results:
            lines.append("| %s | %.3f | %.3f-%.3f | %.2f | %.2f | %.0f |" % (
                label, t, lo, hi, sys_s, t / base, rss / 1048576))
        # (The verified bytes are memfd pages, which RSS counts only where they are mapped and
        # touched: RSS may stay below the model size.)
        text = "\nModel size %.0f MiB; modelgate's peak RSS: %.1f MiB" % (
            size / 1048576, results[0][5] / 1048576)
        if len(results) > 1 and results[1][0] == off_label:
            text += ("; confined parsing costs %+.1f ms (%+.1f%%) over parsing in the process "
                     "(difference of the medians)" % ((results[0][1] - results[1][1]) * 1000,
                                                     (results[0][1] / results[1][1] - 1) * 100))
            forked = [r for r in results if r[0] == fork_label]
            if forked:
                text += ("; parsing in a forked child (the fallback) instead costs %+.1f ms "
                         "over parsing in the process" % ((forked[0][1] - results[1][1]) * 1000))
        if BASELINE:
            text += "; this build's median over the baseline build's: %.3f" % (
                results[0][1] / results[1][1])
        if single is None:
            text += "; modelgate is %.2fx faster than openssl in sequence (median)" % (
                base / results[0][1])
        lines.append(text + ".\n")
    if not ONLY or "spill" in ONLY:
        lines += spill_case(one, REPEAT)
    if not ONLY or "huge" in ONLY:
        lines += huge_section()
    lines.append(NOTES)
    text = "\n".join(lines) + "\n"
    print(text)
    with open(OUT, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
