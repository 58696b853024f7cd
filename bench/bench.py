#!/usr/bin/env python3
"""Benchmark verified loading against plain hashing tools, in one run, on the same warm files.

For each case the commands run interleaved (one of each per round, after one warm-up round)
BENCH_REPEAT times (default 7); the small model's case BENCH_SMALL_REPEAT times (default 40).
The table gives the median wall time, the spread (fastest and slowest run), the median system
time, the ratio of the medians to `openssl dgst -sha256` on the same bytes, and the peak
resident memory of one run (from wait4). BENCH_ONLY=small,four,... runs only those cases.
Results go to stdout and to the output file."""
import json
import os
import platform
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
PY = "/usr/bin/python3"


def run_once(cmd):
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode()
    p.stderr.close()
    if p.returncode != 0:
        raise SystemExit("benchmark command failed (%d): %s\n%s" % (p.returncode, " ".join(cmd), err))
    # ru covers the command and the children it waited for (the confined parser).
    return dt, ru.ru_maxrss * 1024, ru.ru_stime


def measure(cmds, repeat):
    """Run the commands interleaved, `repeat` rounds after one warm-up round (page cache,
    binaries), so that a change in the machine's load hits all of them alike. Returns, per
    command: (median s, fastest s, slowest s, median system s, peak RSS bytes)."""
    for cmd in cmds:
        run_once(cmd)
    runs = [[] for _ in cmds]
    for _ in range(repeat):
        for i, cmd in enumerate(cmds):
            runs[i].append(run_once(cmd))
    out = []
    for r in runs:
        times = [x[0] for x in r]
        out.append((statistics.median(times), min(times), max(times),
                    statistics.median(x[2] for x in r), max(x[1] for x in r)))
    return out


def warm(paths):
    for p in paths:
        with open(p, "rb") as f:
            while f.read(64 << 20):
                pass


def digest(path):
    out = subprocess.run(["openssl", "dgst", "-sha256", "-r", path], capture_output=True, check=True)
    return out.stdout.split()[0].decode()


def oms_model(one):
    """The 1 GiB file (hard-linked) in a folder signed as an OMS bundle with 64 MiB shards."""
    d = os.path.join(WORK, "oms")
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
    subprocess.run([MG, "sign", "--format", "oms", "-k", key + ".key", "--shard-size",
                    str(64 << 20), d], check=True, stdout=subprocess.DEVNULL)
    return d, key + ".pub"


def policy(entries, name="policy.json", keys=None, **top):
    path = os.path.join(WORK, name)
    with open(path, "w") as f:
        json.dump(dict({"modelgate_policy": 1, "models": entries, "keys": keys or {}}, **top), f)
    os.chmod(path, 0o600)
    return path


NOTES = """## How to read these figures

- *Confinement* (issue 15): the small model's rows give the cost of parsing in the confined
  child per load (fork, the child's setup and exit, the table through a pipe), the 1 GiB rows
  the same cost next to the read and hash. The child inherits the verified bytes as read-only
  shared mappings of sealed memfds: fork copies no page table entries for them, so the cost
  does not grow with the model. What remains is the fork of the process itself and the
  copy-on-write faults of the pages the parent and the child write while both live (the
  parent reads the child's output into memory mapped after the fork and reaps the child
  before decoding it). On this virtual machine one fork and exit of even a tiny process takes
  1.5 to 6 ms (each page-table change and TLB shootdown goes through the hypervisor).
- *Fresh memory* (issue 17): a verified load keeps a private copy, and on this virtual machine
  backing fresh memory with pages costs as much as hashing it. Writing the bytes into a memfd
  with pwrite (the kernel allocates 4 KiB shmem pages, no user page table entry is made) was
  the steadiest: 0.6 s per GiB over a plain read. Anonymous memory was 1.2 to 12 s per GiB
  with 4 KiB pages (one hypervisor exit per page) and 0.8 to 5 s with huge pages (fast only
  when the kernel still had recently freed 2 MiB blocks; free blocks of 8 MiB and more are
  handed back to the host, page_reporting_order=11, and must be backed again). openssl reads
  through one small buffer and never pays this. With fewer files than cores a spare core
  allocates the memfd's pages ahead of the reader (fallocate); with 4 files on 2 cores both
  cores hash, and the fill is added to the hashing: the multi-file ratio is bounded by
  (hash + fill) / 2 over openssl's hash, about 0.65-0.75 here.
- *Stored npz* (issue 17): a stored member is used in place and its CRC-32 must be checked;
  zlib's crc32 runs at about 1.9 GB/s here. A helper thread (on the spare core, if any)
  computes the CRC-32 of every 1 MiB block of the verified bytes while the reader hashes; the
  parser combines them into each member's CRC (crc32_combine), exact, with no pass of its own
  (before, the child's pass also had to map every page of the file).
- Timings on a shared virtual machine move from run to run; the spread columns show by how
  much. The system time is the command's and its children's (getrusage via wait4).
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
    if not ONLY or "oms" in ONLY:
        oms_dir, oms_pub = oms_model(one)
        entries.append({"name": "oms", "source": oms_dir + "/", "oms": {"keys": ["bench"]}})
        keys = {"bench": {"public_key": oms_pub}}
    pol = policy(entries, keys=keys)
    # The same models parsed in this process ("sandbox": "off"): the cost of confinement.
    pol_off = policy(entries, "policy-off.json", keys=keys, sandbox="off")
    mg = lambda name: [MG, "inspect", "-q", "-p", pol, name]
    mg_off = lambda name: [MG, "inspect", "-q", "-p", pol_off, name]
    off_label = "modelgate inspect, parsed unconfined (sandbox off)"
    # (key, title, single file or None for `four`, commands, rounds)
    cases = [
        ("small", "Small model (4 MiB safetensors, 64 tensors): the cost of confinement per load",
         small, [
            ("modelgate inspect (verify + load)", mg("small")),
            (off_label, mg_off("small")),
            ("openssl dgst -sha256", ["openssl", "dgst", "-sha256", small]),
        ], SMALL_REPEAT),
        ("one", "1 GiB safetensors", one, [
            ("modelgate inspect (verify + load)", mg("one")),
            (off_label, mg_off("one")),
            ("openssl dgst -sha256", ["openssl", "dgst", "-sha256", one]),
            ("sha256sum", ["sha256sum", one]),
            ("python hashlib.file_digest", [PY, "-c", "import hashlib,sys;hashlib.file_digest(open(sys.argv[1],'rb'),'sha256')", one]),
        ], REPEAT),
        ("oms", "1 GiB safetensors, OMS bundle with 64 MiB shards (hashed on every core)", one, [
            ("modelgate inspect (verify + load)", mg("oms")),
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
                 "ran interleaved, one of each per round, after one warm-up round (%d rounds; the "
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
        if single is None:
            text += "; modelgate is %.2fx faster than openssl in sequence (median)" % (
                base / results[0][1])
        lines.append(text + ".\n")
    lines.append(NOTES)
    text = "\n".join(lines) + "\n"
    print(text)
    with open(OUT, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
