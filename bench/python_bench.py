#!/usr/bin/env python3
"""Benchmark pymodelgate against the Python recipe it replaces, on generated 1 GiB files.

    MODELGATE_LIBRARY=build/libmodelgate.so.0 python3 bench/python_bench.py [--out FILE]

For each format (npy, stored npz, safetensors; 1 GiB each, in bench/work/python/):
  pymodelgate  pymodelgate.load(name) under a policy pinning the file's SHA-256, then touch
               every tensor (read its first and last element);
  recipe       hashlib.file_digest(f, "sha256") compared with the pin, then numpy.load (npy,
               npz: every member) or a pure-Python safetensors reader (header JSON, then one
               read + numpy.frombuffer per tensor), touching every tensor the same way.
Every run is a fresh interpreter (after one warm-up, with the files in the page cache); the
table gives the median time of the load+touch part, the ratio recipe/pymodelgate, and the
peak RSS of the run over a baseline run that only imports numpy, hashlib and pymodelgate.
Targets (issue 12): pymodelgate at least 1.5x faster; its peak RSS at most model size + 64 MiB
over the baseline.
"""
import argparse
import hashlib
import json
import os
import platform
import statistics
import struct
import subprocess
import sys
import zipfile

import numpy as np

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = "/usr/bin/python3"
GIB = 1 << 30
MIB = 1 << 20

CHILD = r'''
import hashlib, json, os, struct, sys, time
import numpy as np
import pymodelgate
mode, fmt, path, name, policy, pin = sys.argv[1:7]

def touch(a):
    if a.size:
        f = a.reshape(-1) if a.flags.c_contiguous else a.ravel(order="K")
        return float(f[0]) + float(f[-1])
    return 0.0

def safetensors_arrays(f):
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
    start = 8 + n
    types = {"F32": "<f4", "F16": "<f2", "I64": "<i8", "U8": "u1"}
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        f.seek(start + b)
        out[k] = np.frombuffer(f.read(e - b), dtype=types[v["dtype"]]).reshape(v["shape"])
    return out

t0 = time.perf_counter()
s = 0.0
if mode == "baseline":
    pass
elif mode == "pymodelgate":
    with pymodelgate.load(name, policy=policy) as m:
        for k in m:
            s += touch(m[k])
else:
    with open(path, "rb") as f:
        if hashlib.file_digest(f, "sha256").hexdigest() != pin:
            sys.exit("digest mismatch")
        if fmt == "safetensors":
            f.seek(0)
            for a in safetensors_arrays(f).values():
                s += touch(a)
    if fmt == "npy":
        s += touch(np.load(path))
    elif fmt == "npz":
        with np.load(path) as z:
            for k in z.files:
                s += touch(z[k])
dt = time.perf_counter() - t0
# Peak RSS of this interpreter (VmHWM: unlike ru_maxrss it does not carry the forking
# parent's size across exec).
with open("/proc/self/status") as st:
    hwm = [int(l.split()[1]) * 1024 for l in st if l.startswith("VmHWM:")][0]
print(dt, hwm, s)
'''


def make_inputs(work, size):
    """1 GiB files of random F32 data: one npy array, a stored npz of 16 members, and a
    safetensors file of 64 tensors (16 MiB each for 1 GiB)."""
    os.makedirs(work, mode=0o700, exist_ok=True)
    os.chmod(work, 0o700)
    rng = np.random.default_rng(12)
    paths = {"npy": os.path.join(work, "model.npy"), "npz": os.path.join(work, "model.npz"),
             "safetensors": os.path.join(work, "model.safetensors")}
    stamp = os.path.join(work, "inputs-%d.done" % size)
    if os.path.exists(stamp):
        return paths
    n = size // 4
    data = rng.standard_normal(n, dtype=np.float32)
    np.save(paths["npy"], data.reshape(-1, 1024))
    with zipfile.ZipFile(paths["npz"], "w", zipfile.ZIP_STORED, allowZip64=True) as z:
        for i, part in enumerate(np.split(data, 16)):
            with z.open("w%02d.npy" % i, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, part.reshape(-1, 1024))
    parts = np.split(data, 64)
    header, off = {}, 0
    for i, p in enumerate(parts):
        header["layers.%d.weight" % i] = {"dtype": "F32", "shape": [p.size // 1024, 1024],
                                          "data_offsets": [off, off + p.nbytes]}
        off += p.nbytes
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(paths["safetensors"], "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for p in parts:
            f.write(p.tobytes())
    open(stamp, "w").close()
    return paths


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def run(args, env):
    p = subprocess.Popen([PY, "-c", CHILD, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out, err = p.stdout.read().decode(), p.stderr.read().decode()
    _, status, ru = os.wait4(p.pid, 0)
    p.stdout.close()
    p.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("benchmark child failed: %r\n%s" % (args, err))
    words = out.split()
    return float(words[0]), int(words[1]), ru.ru_utime + ru.ru_stime


def measure(args, env, repeat):
    """Median wall time of the measured part, peak RSS, median CPU time of the whole child."""
    run(args, env)  # warm-up
    times, cpu, peak = [], [], 0
    for _ in range(repeat):
        t, rss, c = run(args, env)
        times.append(t)
        cpu.append(c)
        peak = max(peak, rss)
    return statistics.median(times), peak, statistics.median(cpu)


def warm(path):
    with open(path, "rb") as f:
        while f.read(64 * MIB):
            pass


def main():
    ap = argparse.ArgumentParser(description="pymodelgate vs hashlib + numpy.load")
    ap.add_argument("--work", default=os.path.join(TOP, "bench", "work", "python"))
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=int(os.environ.get("BENCH_REPEAT", "3")))
    ap.add_argument("--out", help="also write the table (markdown) to this file")
    args = ap.parse_args()
    lib = os.environ.get("MODELGATE_LIBRARY") or os.path.join(TOP, "build", "libmodelgate.so.0")
    if not os.path.isfile(lib):
        raise SystemExit("python_bench: no library at %s (build first or set MODELGATE_LIBRARY)" % lib)
    env = dict(os.environ, MODELGATE_LIBRARY=lib,
               PYTHONPATH=os.path.join(TOP, "python") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    size = args.size_mib * MIB
    paths = make_inputs(args.work, size)
    pins = {fmt: sha256(p) for fmt, p in paths.items()}
    policy = os.path.join(args.work, "policy.json")
    with open(policy, "w") as f:
        json.dump({"modelgate_policy": 1, "models": [
            {"name": fmt, "source": p, "sha256": pins[fmt]} for fmt, p in paths.items()]}, f)
    os.chmod(policy, 0o600)

    _, base_rss, base_cpu = measure(["baseline", "-", "-", "-", policy, "-"], env, args.repeat)
    rows = []
    for fmt, path in paths.items():
        warm(path)
        common = [fmt, path, fmt, policy, pins[fmt]]
        t_mg, rss_mg, c_mg = measure(["pymodelgate", *common], env, args.repeat)
        t_re, rss_re, c_re = measure(["recipe", *common], env, args.repeat)
        rows.append((fmt, os.path.getsize(path), t_mg, t_re, rss_mg - base_rss, rss_re - base_rss,
                     c_mg - base_cpu, c_re - base_cpu))

    lines = ["# pymodelgate vs the Python recipe", "",
             "%s, %d cores, Python %s, numpy %s; files %d MiB each, median of %d runs after a "
             "warm-up (page cache warm); baseline interpreter RSS %.0f MiB." % (
                 platform.platform(), os.cpu_count(), platform.python_version(), np.__version__,
                 args.size_mib, args.repeat, base_rss / MIB), "",
             "| format | file MiB | pymodelgate s | recipe s | speed-up (wall) | CPU s pymodelgate / recipe "
             "| pymodelgate peak RSS over baseline MiB (limit size+64) | recipe peak RSS over baseline MiB |",
             "|---|---|---|---|---|---|---|---|"]
    for fmt, fsize, t_mg, t_re, r_mg, r_re, c_mg, c_re in rows:
        lines.append("| %s | %.0f | %.3f | %.3f | %.2fx | %.2f / %.2f | %.0f (%s) | %.0f |" % (
            fmt, fsize / MIB, t_mg, t_re, t_re / t_mg, c_mg, c_re, r_mg / MIB,
            "ok" if r_mg <= fsize + 64 * MIB else "OVER", r_re / MIB))
    lines += ["", "recipe: hashlib.file_digest(sha256) + numpy.load (npy, npz) or a pure-Python "
              "safetensors reader; pymodelgate: pymodelgate.load under a pinned policy. Both touch "
              "the first and last element of every tensor. CPU: user+system time of the whole child "
              "minus the baseline child's (hashing workers included)."]
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
