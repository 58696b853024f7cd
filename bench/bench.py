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
            while f.read(64 << 20):
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


def main():
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
    report(cases)


def report(cases):
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
    text = "\n".join(lines) + "\n"
    print(text)
    with open(OUT, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
