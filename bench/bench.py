#!/usr/bin/env python3
"""Benchmark verified loading against plain hashing tools, in one run, on the same warm files.

For each case every command runs REPEAT times (after one warm-up); the table gives the median
wall time, the ratio to `openssl dgst -sha256` on the same bytes, and the peak resident memory
of one run (from wait4). Results go to stdout and bench/RESULTS.md."""
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
REPEAT = int(os.environ.get("BENCH_REPEAT", "5"))
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
    return dt, ru.ru_maxrss * 1024


def measure(cmd):
    run_once(cmd)  # warm-up (page cache, binaries)
    times, peak = [], 0
    for _ in range(REPEAT):
        dt, rss = run_once(cmd)
        times.append(dt)
        peak = max(peak, rss)
    return statistics.median(times), peak


def warm(paths):
    for p in paths:
        with open(p, "rb") as f:
            # Small reads: the peak RSS of this process is inherited by the commands it runs.
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


def sharded_cases(one, mg):
    """Issue 16's target: verified and loaded at least 1.8x faster than openssl (ratio <= 0.56)
    on 2 cores."""
    return [
        ("1 GiB safetensors, OMS bundle with 64 MiB shards (hashed on every core)", one, [
            ("modelgate inspect (verify + load)", mg("oms")),
            ("openssl dgst -sha256", ["openssl", "dgst", "-sha256", one]),
        ]),
        ("1 GiB safetensors, modelgate manifest with 64 MiB shards (sign --shard-size)", one, [
            ("modelgate inspect (verify + load)", mg("sharded")),
            ("openssl dgst -sha256", ["openssl", "dgst", "-sha256", one]),
        ]),
    ]


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
    results = [(label, *measure(cmd)) for label, cmd in cmds]
    base = [r for r in results if r[0].startswith("openssl")][0][1]
    for label, t, rss in results:
        lines.append("| %s | %.3f | %.2f | %.0f |" % (label, t, t / base, rss / 1048576))
    lines.append("")
    return lines


def main():
    if os.environ.get("BENCH_ONLY") == "huge":  # just this section, e.g. on a small size
        print("\n".join(huge_section()))
        return
    one = os.path.join(WORK, "one.safetensors")
    if os.environ.get("BENCH_ONLY") == "shards":  # bench/shards.sh: the sharded rows only
        warm([one])
        entries, keys = sharded_entries(one)
        pol = policy(entries, keys=keys)
        return report(sharded_cases(one, lambda name: [MG, "inspect", "-q", "-p", pol, name]))
    four_dir = os.path.join(WORK, "four")
    four = sorted(os.path.join(four_dir, f) for f in os.listdir(four_dir))
    npz = os.path.join(WORK, "one.npz")
    gguf = os.path.join(WORK, "one.gguf")
    allfiles = [one, npz, gguf] + four
    warm(allfiles)
    entries = [{"name": n, "source": p, "sha256": digest(p), "size": os.path.getsize(p)}
               for n, p in (("one", one), ("npz", npz), ("gguf", gguf))]
    entries.append({"name": "four", "source": four_dir + "/",
                    "files": {os.path.basename(p): {"sha256": digest(p), "size": os.path.getsize(p)}
                              for p in four}})
    shard_entries, keys = sharded_entries(one)
    entries += shard_entries
    pol = policy(entries, keys=keys)
    # The same models parsed in this process ("sandbox": "off"): the cost of confinement.
    pol_off = policy(entries, "policy-off.json", keys=keys, sandbox="off")
    mg = lambda name: [MG, "inspect", "-q", "-p", pol, name]
    mg_off = lambda name: [MG, "inspect", "-q", "-p", pol_off, name]
    off_label = "modelgate inspect, parsed unconfined (sandbox off)"
    cases = [
        ("1 GiB safetensors", one, [
            ("modelgate inspect (verify + load)", mg("one")),
            (off_label, mg_off("one")),
            ("openssl dgst -sha256", ["openssl", "dgst", "-sha256", one]),
            ("sha256sum", ["sha256sum", one]),
            ("python hashlib.file_digest", [PY, "-c", "import hashlib,sys;hashlib.file_digest(open(sys.argv[1],'rb'),'sha256')", one]),
        ]),
    ] + sharded_cases(one, mg) + [
        ("4 x 256 MiB safetensors (one model)", four, [
            ("modelgate inspect (verify + load)", mg("four")),
            (off_label, mg_off("four")),
            ("openssl dgst -sha256, 4 files in sequence", ["openssl", "dgst", "-sha256", *four]),
        ]),
        ("1 GiB npz (stored, numpy savez)", npz, [
            ("modelgate inspect (verify + load)", mg("npz")),
            (off_label, mg_off("npz")),
            ("openssl dgst -sha256", ["openssl", "dgst", "-sha256", npz]),
        ]),
        ("1 GiB GGUF (F32)", gguf, [
            ("modelgate inspect (verify + load)", mg("gguf")),
            (off_label, mg_off("gguf")),
            ("openssl dgst -sha256", ["openssl", "dgst", "-sha256", gguf]),
        ]),
    ]
    report(cases, extra=[lambda: spill_case(one, REPEAT), huge_section])


def report(cases, extra=()):
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
    lines.append("Written by `%s` (bench/bench.py) on %s." % (
        "bench/shards.sh" if os.environ.get("BENCH_ONLY") else "make bench",
        time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())))
    lines.append("Machine: %s, %d cores, SHA-NI %s, %s, Linux %s, %s.\n" % (
        cpu, os.cpu_count(), "yes" if sha_ni else "no", platform.machine(), platform.release(), ossl))
    lines.append("Files are in the page cache (read once before timing); each command ran %d times "
                 "after one warm-up; time is the median wall time; ratio is that time divided by "
                 "`openssl dgst -sha256` on the same bytes in the same run; peak RSS is the largest "
                 "of the runs. Load average before the timed runs: %.2f %.2f %.2f.\n"
                 % ((REPEAT,) + os.getloadavg()))
    for title, single, cmds in cases:
        lines.append("## %s\n" % title)
        lines.append("| command | median s | ratio to openssl | peak RSS MiB |")
        lines.append("|---|---:|---:|---:|")
        results = [(label, *measure(cmd)) for label, cmd in cmds]
        base = [r for r in results if r[0].startswith("openssl")][0][1]
        size = sum(os.path.getsize(p) for p in (single if isinstance(single, list) else [single]))
        for label, t, rss in results:
            lines.append("| %s | %.3f | %.2f | %.0f |" % (label, t, t / base, rss / 1048576))
        over = results[0][2] - size
        text = "\nModel size %.0f MiB; " % (size / 1048576) + (
            "modelgate's peak RSS over the model size: %.1f MiB" % (over / 1048576) if over >= 0
            else "modelgate's verified memory is a memfd written with pwrite, outside its RSS")
        if "unconfined" in results[1][0]:
            text += "; confined parsing costs %+.1f ms (%+.1f%%) over parsing in the process" % (
                (results[0][1] - results[1][1]) * 1000, (results[0][1] / results[1][1] - 1) * 100)
        else:
            text += "; openssl / modelgate: %.2fx" % (base / results[0][1])
        lines.append(text + ".\n")
    for more in extra:
        lines += more()
    text = "\n".join(lines) + "\n"
    print(text)
    with open(OUT, "w") as f:
        f.write(text)


if __name__ == "__main__":
    if os.environ.get("BENCH_ONLY") == "spill":
        # Only the spill rows, on a model of BENCH_SPILL_MIB (default 1024) made here.
        mib = int(os.environ.get("BENCH_SPILL_MIB", "1024"))
        path = os.path.join(WORK, "spill-%d.safetensors" % mib)
        if not os.path.exists(path):
            n = mib << 20
            hdr = json.dumps({"t": {"dtype": "U8", "shape": [n], "data_offsets": [0, n]}}).encode()
            hdr += b" " * (-len(hdr) % 8)
            with open(path, "wb") as f:
                f.write(len(hdr).to_bytes(8, "little") + hdr)
                for _ in range(mib):
                    f.write(os.urandom(1 << 20))
        print("\n".join(spill_case(path, REPEAT)))
    else:
        main()
