"""The C library, through ctypes: the public ABI of include/modelgate.h (version node
MODELGATE_0), nothing else. Struct layouts mirror the header exactly; they are frozen within
soname 0."""
import ctypes
import os

SONAME = "libmodelgate.so.0"


def _open():
    path = os.environ.get("MODELGATE_LIBRARY")
    try:
        return ctypes.CDLL(path if path else SONAME)
    except OSError as e:
        raise ImportError("pymodelgate: cannot load %s (%s); install libmodelgate or set "
                          "MODELGATE_LIBRARY to its path" % (path or SONAME, e)) from None


lib = _open()

MESSAGE_MAX = 512
FILE_MAX = 512

# mg_dtype values
DT_INVALID, DT_BOOL, DT_U8, DT_I8, DT_U16, DT_I16, DT_U32, DT_I32, DT_U64, DT_I64, DT_F16, \
    DT_BF16, DT_F32, DT_F64, DT_C64, DT_F8_E4M3, DT_F8_E5M2, DT_GGML_BLOCK = range(18)

TENSOR_BIG_ENDIAN = 0x1
TENSOR_FORTRAN = 0x2


class MgError(ctypes.Structure):
    _fields_ = [
        ("status", ctypes.c_int),
        ("message", ctypes.c_char * MESSAGE_MAX),
        ("model", ctypes.c_char * 129),
        ("file", ctypes.c_char * FILE_MAX),
        ("algorithm", ctypes.c_char * 8),
        ("expected", ctypes.c_char * 129),
        ("actual", ctypes.c_char * 129),
    ]


class MgTensor(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("dtype", ctypes.c_int),
        ("dtype_name", ctypes.c_char_p),
        ("ndim", ctypes.c_uint32),
        ("shape", ctypes.POINTER(ctypes.c_uint64)),
        ("nbytes", ctypes.c_uint64),
        ("data", ctypes.c_void_p),
        ("file", ctypes.c_char_p),
        ("offset", ctypes.c_uint64),
        ("flags", ctypes.c_uint32),
        ("ggml_type", ctypes.c_uint32),
    ]


class MgFileInfo(ctypes.Structure):
    _fields_ = [
        ("path", ctypes.c_char_p),
        ("format", ctypes.c_char_p),
        ("size", ctypes.c_uint64),
        ("algorithm", ctypes.c_char_p),
        ("digest", ctypes.c_char_p),
        ("data", ctypes.c_void_p),
        ("metadata_json", ctypes.c_char_p),
    ]


PROGRESS = ctypes.CFUNCTYPE(None, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_void_p)
REPORT = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_void_p)


class MgLoadOptions(ctypes.Structure):
    _fields_ = [
        ("size", ctypes.c_size_t),
        ("threads", ctypes.c_uint),
        ("progress", PROGRESS),
        ("progress_ctx", ctypes.c_void_p),
    ]


def _fn(name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


P = ctypes.c_void_p
ERR = ctypes.POINTER(MgError)
OUT = ctypes.POINTER(ctypes.c_void_p)
c_str = ctypes.c_char_p
c_int = ctypes.c_int
c_size = ctypes.c_size_t

mg_status_kind = _fn("mg_status_kind", c_str, c_int)
mg_dtype_size = _fn("mg_dtype_size", c_size, c_int)
mg_dtype_name = _fn("mg_dtype_name", c_str, c_int)
mg_tensor_copy = _fn("mg_tensor_copy", c_int, ctypes.POINTER(MgTensor), P, c_size, ERR)
mg_policy_open = _fn("mg_policy_open", c_int, c_str, c_str, OUT, ERR)
mg_policy_check = _fn("mg_policy_check", c_int, c_str, c_str, REPORT, P, ERR)
mg_policy_path = _fn("mg_policy_path", c_str, P)
mg_policy_close = _fn("mg_policy_close", None, P)
_LOAD_ARGS = (P, c_str, ctypes.POINTER(MgLoadOptions), OUT, ERR)
mg_model_load = _fn("mg_model_load", c_int, *_LOAD_ARGS)
mg_model_verify = _fn("mg_model_verify", c_int, *_LOAD_ARGS)
mg_model_fetch = _fn("mg_model_fetch", c_int, *_LOAD_ARGS)
mg_model_cache_path = _fn("mg_model_cache_path", c_str, P, c_size)
mg_model_name = _fn("mg_model_name", c_str, P)
mg_model_source = _fn("mg_model_source", c_str, P)
mg_model_file_count = _fn("mg_model_file_count", c_size, P)
mg_model_file = _fn("mg_model_file", c_int, P, c_size, ctypes.POINTER(MgFileInfo))
mg_model_tensor_count = _fn("mg_model_tensor_count", c_size, P)
mg_model_tensor = _fn("mg_model_tensor", ctypes.POINTER(MgTensor), P, c_size)
mg_model_find_tensor = _fn("mg_model_find_tensor", ctypes.POINTER(MgTensor), P, c_str)
mg_model_asset = _fn("mg_model_asset", c_int, P, c_str, ctypes.POINTER(P),
                     ctypes.POINTER(c_size), ERR)
mg_model_close = _fn("mg_model_close", None, P)
mg_hash_file = _fn("mg_hash_file", c_int, c_str, c_int, ctypes.c_char * 129, ERR)
mg_version = _fn("mg_version", c_str)
