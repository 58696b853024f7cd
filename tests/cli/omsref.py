"""An independent OpenSSF model-signing (OMS v1.0) writer and reader for the tests.

Written from the format description (in-toto statement in a DSSE envelope in a Sigstore
bundle), with Python's stdlib and `cryptography` only; it shares no code with modelgate. The
tests use it to make re-signed variants of bundles (`sign_statement`, `make_bundle`) and to
check bundles that modelgate writes (`read_bundle` + `check_model`).
"""
import base64
import hashlib
import json
import os

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
GIT_IGNORES = [".git", ".gitattributes", ".github", ".gitignore"]


def pae(payload, length=None):
    """DSSE v1 pre-authentication encoding; `length` lets a test lie about the length."""
    n = len(payload) if length is None else length
    return b"DSSEv1 %d %s %d " % (len(PAYLOAD_TYPE), PAYLOAD_TYPE.encode(), n) + payload


def curve_hash(key):
    return {256: hashes.SHA256(), 384: hashes.SHA384(), 521: hashes.SHA512()}[key.curve.key_size]


def hint(public_key):
    pem = public_key.public_bytes(serialization.Encoding.PEM,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(pem).hexdigest()


def root_digest(resources):
    return hashlib.sha256(b"".join(bytes.fromhex(r["digest"]) for r in resources)).hexdigest()


def _sort_key(name):
    return name.split("/")


def walk(model, ignore=()):
    """Regular files of `model` as sorted relative POSIX paths, skipping ignored prefixes."""
    out = []
    for root, dirs, files in os.walk(model):
        for n in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            rel = os.path.relpath(os.path.join(root, n), model).replace(os.sep, "/")
            if any(rel == p or rel.startswith(p + "/") for p in ignore):
                continue
            if os.path.isfile(os.path.join(model, rel)):
                out.append(rel)
    return sorted(set(out), key=_sort_key)


def file_resources(model, ignore=(), hash_name="sha256"):
    if os.path.isfile(model):
        return [{"name": ".", "algorithm": hash_name, "digest": _hash(model, hash_name)}]
    return [{"name": rel, "algorithm": hash_name,
             "digest": _hash(os.path.join(model, rel), hash_name)}
            for rel in walk(model, ignore)]


def shard_resources(model, shard_size, ignore=(), hash_name="sha256"):
    rels = ["."] if os.path.isfile(model) else walk(model, ignore)
    out = []
    for rel in rels:
        path = model if rel == "." else os.path.join(model, rel)
        with open(path, "rb") as f:
            data = f.read()
        for start in range(0, len(data), shard_size):
            end = min(start + shard_size, len(data))
            out.append({"name": "%s:%d:%d" % (rel, start, end),
                        "algorithm": "%s-sharded-%d" % (hash_name, shard_size),
                        "digest": hashlib.new(hash_name, data[start:end]).hexdigest()})
    return out


def _hash(path, hash_name="sha256"):
    """sha256, or blake2b with its default 64-byte digest (the reference's "blake2b")."""
    with open(path, "rb") as f:
        return hashlib.new(hash_name, f.read()).hexdigest()


def statement(resources, method="files", shard_size=None, allow_symlinks=False,
              ignore_paths=None, name="model", root=None, hash_type="sha256"):
    ser = {"method": method, "hash_type": hash_type, "allow_symlinks": allow_symlinks}
    if shard_size is not None:
        ser["shard_size"] = shard_size
    if ignore_paths:
        ser["ignore_paths"] = list(ignore_paths)
    return {"_type": STATEMENT_TYPE,
            "subject": [{"name": name, "digest": {"sha256": root or root_digest(resources)}}],
            "predicateType": PREDICATE_TYPE,
            "predicate": {"resources": resources, "serialization": ser}}


def payload_bytes(stmt, indent=2):
    return json.dumps(stmt, indent=indent).encode()


def sign(key, message, hash_alg=None):
    return key.sign(message, ec.ECDSA(hash_alg or curve_hash(key)))


def make_bundle(payload, sigs, material=None, media_type=MEDIA_TYPE, payload_type=PAYLOAD_TYPE):
    """A bundle around `payload` (bytes) with the DER signatures `sigs`."""
    return json.dumps({
        "mediaType": media_type,
        "verificationMaterial": material if material is not None else {"tlogEntries": []},
        "dsseEnvelope": {"payload": base64.b64encode(payload).decode(),
                         "payloadType": payload_type,
                         "signatures": [{"sig": base64.b64encode(s).decode(), "keyid": ""}
                                        for s in sigs]},
    }, indent=2).encode()


def sign_statement(key, stmt, with_hint=True, indent=2):
    payload = payload_bytes(stmt, indent)
    material = {"publicKey": {"hint": hint(key.public_key())}, "tlogEntries": []} \
        if with_hint else {"tlogEntries": []}
    return make_bundle(payload, [sign(key, pae(payload))], material)


class BundleError(Exception):
    pass


def read_bundle(data, public_key):
    """Verify a key-mode bundle as the reference verifier does; returns the statement."""
    b = json.loads(data)
    if b.get("mediaType") != MEDIA_TYPE:
        raise BundleError("media type")
    env = b["dsseEnvelope"]
    if env.get("payloadType") != PAYLOAD_TYPE:
        raise BundleError("payload type")
    payload = base64.b64decode(env["payload"], validate=True)
    sig = base64.b64decode(env["signatures"][0]["sig"], validate=True)
    h = b.get("verificationMaterial", {}).get("publicKey", {}).get("hint")
    if h is not None and h != hint(public_key):
        raise BundleError("hint")
    try:
        public_key.verify(sig, pae(payload), ec.ECDSA(curve_hash(public_key)))
    except InvalidSignature:
        raise BundleError("signature")
    st = json.loads(payload)
    if st.get("_type") != STATEMENT_TYPE or st.get("predicateType") != PREDICATE_TYPE:
        raise BundleError("statement type")
    if len(st["subject"]) != 1:
        raise BundleError("subject count")
    res = st["predicate"]["resources"]
    if root_digest(res) != st["subject"][0]["digest"]["sha256"]:
        raise BundleError("root digest")
    return st


def check_model(st, model, extra_ignore=()):
    """Hash `model` with the statement's serialization and compare the resource sets."""
    ser = st["predicate"]["serialization"]
    ignore = list(ser.get("ignore_paths", [])) + list(extra_ignore) + GIT_IGNORES
    if ser["method"] == "shards":
        have = shard_resources(model, int(ser["shard_size"]), ignore, ser["hash_type"])
    else:
        have = file_resources(model, ignore, ser["hash_type"])
    want = {r["name"]: r["digest"] for r in st["predicate"]["resources"]}
    got = {r["name"]: r["digest"] for r in have}
    if want != got:
        raise BundleError("manifest mismatch: missing %s extra %s differ %s" % (
            sorted(set(want) - set(got)), sorted(set(got) - set(want)),
            sorted(k for k in want if k in got and want[k] != got[k])))
