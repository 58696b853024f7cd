"""pymodelgate: verified, zero-copy loading of model weights from Python.

A thin ctypes layer over libmodelgate (the C library): a model is loaded only from a source
the policy trusts and only after every file matched its pinned digest or signed manifest;
then the library's hardened parsers turn the verified bytes into tensors, and this package
hands them out as read-only numpy arrays that point into that verified memory.

    import pymodelgate
    with pymodelgate.load("tiny-mlp") as model:        # $MODELGATE_POLICY, else the default
        w = model["layers.0.weight"]                    # numpy.ndarray, read-only, zero-copy
        cfg = json.loads(bytes(model.asset("config.json")))

Arrays
    Every array is a view of the model's verified memory: no copy, and read-only (writing
    raises ValueError, and the WRITEABLE flag cannot be set). An array keeps that memory
    alive: closing or dropping the model while arrays (or views of them, or asset views)
    exist only releases the memory when the last of them is gone.
    Types numpy lacks come as raw integers of the same width: BF16 as uint16, F8_E4M3 and
    F8_E5M2 as uint8, quantized GGUF tensors as a 1-D uint8 array of their blocks; the real
    type is in tensor_info(name).dtype. Big-endian npy data comes with a big-endian dtype
    ('>f4'), Fortran-order npy with Fortran strides; both still zero-copy. A tensor of a
    DEFLATE-compressed npz member is a view of the library's inflated copy.

Errors
    Every refusal of the library raises a subclass of Error, one per status (IntegrityError,
    UsageError, PolicyError, UntrustedSourceError, SignatureError, FormatError, ModelIOError,
    LimitError), carrying status, kind, message, model, file, algorithm, expected, actual.
    A missing tensor name is a KeyError (the Model is a mapping); using a closed Model or
    Policy is a ValueError; wrong argument types are TypeError.

Threads
    A loaded model is immutable and may be read from any thread. Calls through one Policy are
    serialised (the C library does not promise concurrent use of one policy object).
"""
import collections.abc
import ctypes
import json
import os
import threading
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as _np

from . import _lib

__version__ = "0.1.0"

__all__ = [
    "Error", "IntegrityError", "UsageError", "PolicyError", "UntrustedSourceError",
    "SignatureError", "FormatError", "ModelIOError", "LimitError",
    "Policy", "Model", "TensorInfo", "FileInfo",
    "load", "verify", "fetch", "check_policy", "hash_file", "library_version",
]


# ---- errors ------------------------------------------------------------------------------

class Error(Exception):
    """A refusal of libmodelgate. `status` is the mg_status (the CLI's exit code), `kind` its
    name ("integrity", "format", ...); `model` and `file` (path inside the model) say where;
    on a digest mismatch `algorithm`, `expected` and `actual` hold the lower-case hex."""
    status = 0

    def __init__(self, message, *, model="", file="", algorithm="", expected="", actual=""):
        super().__init__(message)
        self.message = message
        self.model = model
        self.file = file
        self.algorithm = algorithm
        self.expected = expected
        self.actual = actual

    @property
    def kind(self):
        return _lib.mg_status_kind(self.status).decode()

    def __str__(self):
        return "%s: %s" % (self.kind, self.message)


class IntegrityError(Error):
    """A digest or size mismatch, a missing or unlisted file (status 1)."""
    status = 1


class UsageError(Error):
    """The caller's arguments are wrong (status 2)."""
    status = 2


class PolicyError(Error):
    """The policy is unreadable, invalid, insecure or badly signed (status 3)."""
    status = 3


class UntrustedSourceError(Error):
    """The source is not in the policy (status 4)."""
    status = 4


class SignatureError(Error):
    """Signature or manifest failure: bad or missing signature, rollback, expiry (status 5)."""
    status = 5


class FormatError(Error):
    """An unsafe or malformed model file (status 6)."""
    status = 6


class ModelIOError(Error):
    """An I/O or network failure (status 7)."""
    status = 7


class LimitError(Error):
    """A resource cap was hit, or an internal error (status 8)."""
    status = 8


_ERRORS = {c.status: c for c in (IntegrityError, UsageError, PolicyError, UntrustedSourceError,
                                  SignatureError, FormatError, ModelIOError, LimitError)}


def _text(raw):
    return raw.decode("utf-8", "replace")


def _error(err):
    cls = _ERRORS.get(err.status)
    if cls is None:  # a status this package does not know: keep it, never hide it
        cls = type("Error%d" % err.status, (Error,), {"status": err.status})
    return cls(_text(err.message), model=_text(err.model), file=_text(err.file),
               algorithm=_text(err.algorithm), expected=_text(err.expected),
               actual=_text(err.actual))


def _path_arg(value, what):
    """A str/bytes/PathLike as the C string the library gets (no embedded NUL)."""
    if not isinstance(value, (str, bytes, os.PathLike)):
        raise TypeError("%s must be a str or path, not %s" % (what, type(value).__name__))
    raw = os.fsencode(value)
    if b"\0" in raw:
        raise ValueError("%s contains a NUL byte" % what)
    return raw


# ---- owned C objects -------------------------------------------------------------------------

class _Handle:
    """Owns one C object and frees it when the last Python reference is gone. Models, arrays
    and views hold the handle, never the raw pointer, so no memory is released while anything
    can still reach it. `keep` is another handle this one needs alive (a model's policy)."""
    __slots__ = ("ptr", "_free", "keep", "lock", "__weakref__")

    def __init__(self, ptr, free, keep=None):
        self.ptr = ptr
        self._free = free
        self.keep = keep
        self.lock = threading.RLock()

    def __del__(self):
        ptr, self.ptr = self.ptr, None
        if ptr:
            self._free(ptr)


class _View:
    """The base object of every array: numpy reads the address, shape and type from
    __array_interface__ (marked read-only, so the array can never be made writable), and the
    array keeps this object, and so the model's handle, alive."""
    __slots__ = ("__array_interface__", "_owner")

    def __init__(self, owner, address, shape, typestr, strides=None):
        self._owner = owner
        self.__array_interface__ = {"version": 3, "data": (address, True), "shape": shape,
                                    "typestr": typestr, "strides": strides}


# numpy's address must not be NULL even for an empty array; nothing is ever read from here.
_EMPTY = ctypes.create_string_buffer(8)
_EMPTY_ADDRESS = ctypes.addressof(_EMPTY)


def _view(owner, address, shape, typestr, strides=None):
    return _np.asarray(_View(owner, address or _EMPTY_ADDRESS, shape, typestr, strides))


# numpy type code and item size per mg_dtype; types numpy lacks are raw unsigned integers.
_NUMPY_TYPES = {
    _lib.DT_BOOL: ("b", 1), _lib.DT_U8: ("u", 1), _lib.DT_I8: ("i", 1),
    _lib.DT_U16: ("u", 2), _lib.DT_I16: ("i", 2), _lib.DT_U32: ("u", 4), _lib.DT_I32: ("i", 4),
    _lib.DT_U64: ("u", 8), _lib.DT_I64: ("i", 8), _lib.DT_F16: ("f", 2), _lib.DT_BF16: ("u", 2),
    _lib.DT_F32: ("f", 4), _lib.DT_F64: ("f", 8), _lib.DT_C64: ("c", 8),
    _lib.DT_F8_E4M3: ("u", 1), _lib.DT_F8_E5M2: ("u", 1), _lib.DT_GGML_BLOCK: ("u", 1),
}


def _tensor_array(handle, t):
    """A read-only numpy view of tensor `t` (an MgTensor of the model `handle` owns)."""
    if t.dtype not in _NUMPY_TYPES:
        raise LimitError("tensor has an unknown element type %d" % t.dtype)
    kind, size = _NUMPY_TYPES[t.dtype]
    nbytes = t.nbytes
    if (nbytes and not t.data) or (t.ndim and not t.shape) or t.ndim > 32:
        raise LimitError("tensor '%s' is not a valid view" % _str(t.name))
    if t.dtype == _lib.DT_GGML_BLOCK:
        shape = (nbytes,)
    else:
        shape = tuple(t.shape[i] for i in range(t.ndim))
    count = 1
    for d in shape:
        count *= d
    if count * size != nbytes:  # never map more than the library vouches for
        raise LimitError("tensor shape %r does not match its %d bytes" % (shape, nbytes))
    order = "|" if size == 1 else (">" if t.flags & _lib.TENSOR_BIG_ENDIAN else "<")
    strides = None
    if t.flags & _lib.TENSOR_FORTRAN and len(shape) > 1:
        strides, step = [], size
        for d in shape:
            strides.append(step)
            step *= d
        strides = tuple(strides)
    return _view(handle, t.data, shape, "%s%s%d" % (order, kind, size), strides)


# ---- descriptions ----------------------------------------------------------------------------

@dataclass(frozen=True)
class TensorInfo:
    """A tensor as modelgate reports it. `dtype` is its name ("F32", "BF16", "Q4_K"); `shape`
    outermost first (numpy order); `offset` the byte offset of its data in `file` (inside the
    inflated member for a deflated npz member); `flags` MG_TENSOR_* (1 big-endian, 2 Fortran)."""
    name: str
    dtype: str
    shape: Tuple[int, ...]
    nbytes: int
    file: str
    offset: int
    flags: int
    ggml_type: int

    BIG_ENDIAN = _lib.TENSOR_BIG_ENDIAN
    FORTRAN = _lib.TENSOR_FORTRAN


@dataclass(frozen=True)
class FileInfo:
    """A verified file of a model: its path inside the model, detected format ("safetensors",
    "npy", "npz", "gguf", "mxnet-params", "mxnet-symbol", "safetensors-index" or "asset"),
    size, the digest that was verified (algorithm and lower-case hex), the format metadata
    (GGUF key/values, MXNet summary) as a dict or None, and after fetch() its cache path."""
    path: str
    format: str
    size: int
    algorithm: str
    digest: str
    metadata: Optional[dict]
    cache_path: Optional[str]


def _str(raw):
    return None if raw is None else raw.decode("utf-8", "surrogateescape")


# ---- models ------------------------------------------------------------------------------------

class Model(collections.abc.Mapping):
    """A verified model: a read-only mapping from tensor name to numpy array.

    `keys()` are the tensor names in file order; where names repeat across the files of a
    directory model (MXNet epochs), the mapping gives the first, like the C library, and
    file_tensors(path) gives one file's. Models come from load(), verify() or fetch() (the
    last two have files and no tensors)."""

    # Identity, not Mapping's element-wise comparison (arrays do not compare to a bool).
    __eq__ = object.__eq__
    __hash__ = object.__hash__

    def __init__(self, handle):
        self._h = handle
        ptr = handle.ptr
        self._name = _str(_lib.mg_model_name(ptr))
        self._source = _str(_lib.mg_model_source(ptr))
        self._index = {}   # name -> index of its first tensor
        self._tensor_files = []  # (name, file) per tensor index
        for i in range(_lib.mg_model_tensor_count(ptr)):
            t = _lib.mg_model_tensor(ptr, i).contents
            name, file = _str(t.name), _str(t.file)
            self._tensor_files.append((name, file))
            self._index.setdefault(name, i)
        self._files = None

    def _handle(self):
        h = self._h
        if h is None:
            raise ValueError("the model is closed")
        return h

    def _array(self, h, index):
        t = _lib.mg_model_tensor(h.ptr, index)
        if not t:
            raise LimitError("tensor %d is missing from the model" % index)
        return _tensor_array(h, t.contents)

    # Mapping
    def __getitem__(self, name):
        h = self._handle()
        return self._array(h, self._index[name])

    def __iter__(self):
        self._handle()
        return iter(list(self._index))

    def __len__(self):
        self._handle()
        return len(self._index)

    def __contains__(self, name):
        self._handle()
        return name in self._index

    @property
    def name(self):
        """The model's name in the policy."""
        return self._name

    @property
    def source(self):
        """The source it was loaded from (local path or URL)."""
        return self._source

    @property
    def closed(self):
        return self._h is None

    def tensor_info(self, name):
        """The TensorInfo of tensor `name` (KeyError if there is none)."""
        h = self._handle()
        t = _lib.mg_model_tensor(h.ptr, self._index[name]).contents
        return TensorInfo(name=_str(t.name), dtype=_str(t.dtype_name),
                          shape=tuple(t.shape[i] for i in range(t.ndim)), nbytes=t.nbytes,
                          file=_str(t.file), offset=t.offset, flags=t.flags,
                          ggml_type=t.ggml_type)

    def file_tensors(self, path):
        """The tensors of one file of the model, by its path inside the model, as a dict
        (names are unique within a file) in file order."""
        h = self._handle()
        out = {}
        for i, (name, file) in enumerate(self._tensor_files):
            if file == path:
                out[name] = self._array(h, i)
        if not out and path not in (f.path for f in self.files):
            raise KeyError(path)
        return out

    @property
    def files(self):
        """The model's verified files, a list of FileInfo."""
        h = self._handle()
        if self._files is None:
            files = []
            info = _lib.MgFileInfo()
            for i in range(_lib.mg_model_file_count(h.ptr)):
                if _lib.mg_model_file(h.ptr, i, ctypes.byref(info)) != 0:
                    raise LimitError("file %d is missing from the model" % i)
                meta = info.metadata_json
                files.append(FileInfo(path=_str(info.path), format=_str(info.format),
                                      size=info.size, algorithm=_str(info.algorithm),
                                      digest=_str(info.digest),
                                      metadata=json.loads(meta) if meta else None,
                                      cache_path=_str(_lib.mg_model_cache_path(h.ptr, i))))
            self._files = files
        return list(self._files)

    def asset(self, path):
        """The verified bytes of a file of the model (config.json, tokenizer.json, an MXNet
        -symbol.json) as a read-only memoryview: the bytes that were hashed, never the file
        on disk. It keeps the model's memory alive like an array does. UsageError if the model
        has no such file, or comes from verify() or fetch() (they keep no bytes)."""
        h = self._handle()
        raw = _path_arg(path, "path")
        data, length, err = ctypes.c_void_p(), ctypes.c_size_t(), _lib.MgError()
        if _lib.mg_model_asset(h.ptr, raw, ctypes.byref(data), ctypes.byref(length),
                               ctypes.byref(err)) != 0:
            raise _error(err)
        if length.value and not data.value:
            raise LimitError("asset '%s' has no data" % path)
        return memoryview(_view(h, data.value, (length.value,), "|u1"))

    def close(self):
        """Let go of the model. Its memory is released now, or when the last array or view
        of it is gone."""
        self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        if self._h is None:
            return "<pymodelgate.Model %r (closed)>" % self._name
        return "<pymodelgate.Model %r: %d tensors>" % (self._name, len(self._index))


# ---- policy ------------------------------------------------------------------------------------

def check_policy(path=None, key=None):
    """Check a policy file and return every problem found (one line each, starting with its
    JSON path), or [] when there is none. `path` and `key` as in Policy()."""
    problems = []

    def report(msg, _ctx):
        problems.append(_text(msg))

    cb = _lib.REPORT(report)
    err = _lib.MgError()
    status = _lib.mg_policy_check(_opt_path(path, "path"), _opt_path(key, "key"), cb, None,
                                  ctypes.byref(err))
    if status not in (0, PolicyError.status):
        raise _error(err)
    if status != 0 and not problems:
        problems.append(_text(err.message))
    return problems


def _opt_path(value, what):
    return None if value is None else _path_arg(value, what)


def _options(progress, threads):
    """mg_load_options for a call, the C callback (kept alive by the caller) and the box that
    receives an exception the progress callable raised."""
    if not isinstance(threads, int) or not 0 <= threads < 2 ** 32:
        raise TypeError("threads must be an int in [0, 2**32)")
    if progress is not None and not callable(progress):
        raise TypeError("progress must be callable")
    raised = []
    opts = _lib.MgLoadOptions()
    opts.size = ctypes.sizeof(_lib.MgLoadOptions)
    opts.threads = threads
    cb = None
    if progress is not None:
        def call(done, total, _ctx):
            if raised:
                return
            try:
                progress(done, total)
            except BaseException as e:  # re-raised once the library call returns
                raised.append(e)
        cb = _lib.PROGRESS(call)
        opts.progress = cb
    return opts, cb, raised


class Policy:
    """A checked policy (docs/policy.md). `path` None means $MODELGATE_POLICY, else
    /etc/modelgate/policy.json; `key` is a PEM public key whose signature `<path>.sig` must
    verify (None: $MODELGATE_POLICY_KEY, and if that is unset no signature is required).
    Raises PolicyError for any problem. A context manager."""

    def __init__(self, path=None, key=None):
        self._key = key
        out, err = ctypes.c_void_p(), _lib.MgError()
        status = _lib.mg_policy_open(_opt_path(path, "path"), _opt_path(key, "key"),
                                     ctypes.byref(out), ctypes.byref(err))
        if status != 0:
            raise _error(err)
        self._h = _Handle(out.value, _lib.mg_policy_close)
        self._path = _str(_lib.mg_policy_path(self._h.ptr))

    @property
    def path(self):
        """The absolute path the policy was read from."""
        return self._path

    def check(self):
        """Check the policy file again and return the list of problems ([] when none)."""
        return check_policy(self._path, self._key)

    def _run(self, fn, source, progress, threads):
        h = self._h
        if h is None:
            raise ValueError("the policy is closed")
        raw = _path_arg(source, "source")
        opts, cb, raised = _options(progress, threads)
        out, err = ctypes.c_void_p(), _lib.MgError()
        with h.lock:
            status = fn(h.ptr, raw, ctypes.byref(opts), ctypes.byref(out), ctypes.byref(err))
        del cb
        model = _Handle(out.value, _lib.mg_model_close, keep=h) if out.value else None
        if status != 0:
            raise _error(err)
        if model is None:
            raise LimitError("the library returned no model")
        if raised:
            raise raised[0]
        return Model(model)

    def load(self, source, progress=None, threads=0):
        """Verify and load a model: `source` is a model name from the policy or its exact
        source (local path or https URL). `progress(done_bytes, total_bytes)` is called about
        every 200 ms while files are hashed or fetched (an exception it raises is raised
        after the load); `threads` hashing workers (0: one per core). Returns a Model."""
        return self._run(_lib.mg_model_load, source, progress, threads)

    def verify(self, source, progress=None, threads=0):
        """Verify a model's files without parsing them: a Model with files and no tensors."""
        return self._run(_lib.mg_model_verify, source, progress, threads)

    def fetch(self, source, progress=None, threads=0):
        """Verify a model and publish its files to the policy's cache_dir (FileInfo.cache_path)."""
        return self._run(_lib.mg_model_fetch, source, progress, threads)

    def close(self):
        """Let go of the policy (released once no model loaded through it needs it)."""
        self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _policy(policy):
    if isinstance(policy, Policy):
        return policy
    if policy is None or isinstance(policy, (str, bytes, os.PathLike)):
        return Policy(policy)
    raise TypeError("policy must be a Policy, a path or None")


def load(source, policy=None, progress=None, threads=0):
    """Verify and load `source` (model name or exact source) under `policy` (a Policy, a
    policy path, or None for $MODELGATE_POLICY / the default). See Policy.load."""
    return _policy(policy).load(source, progress=progress, threads=threads)


def verify(source, policy=None, progress=None, threads=0):
    """Verify without parsing. See Policy.verify."""
    return _policy(policy).verify(source, progress=progress, threads=threads)


def fetch(source, policy=None, progress=None, threads=0):
    """Verify and publish to the cache. See Policy.fetch."""
    return _policy(policy).fetch(source, progress=progress, threads=threads)


def hash_file(path, algorithm="sha256"):
    """Lower-case hex digest of a file (opened without following symlinks)."""
    algs = {"sha256": 0, "sha512": 1}
    if algorithm not in algs:
        raise ValueError("algorithm must be 'sha256' or 'sha512'")
    hexbuf, err = (ctypes.c_char * 129)(), _lib.MgError()
    if _lib.mg_hash_file(_path_arg(path, "path"), algs[algorithm], hexbuf,
                         ctypes.byref(err)) != 0:
        raise _error(err)
    return hexbuf.value.decode()


def library_version():
    """The version of the loaded libmodelgate."""
    return _lib.mg_version().decode()
