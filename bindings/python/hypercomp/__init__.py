"""Python bindings of libhypercomp over ctypes.

    import hypercomp, numpy as np
    w = np.random.default_rng(0).standard_normal((64, 256), dtype=np.float32)
    ct = hypercomp.Compressor("nf4").compress(w)
    print(ct.stats().bpw, ct.decode().shape)

Arrays: numpy float32/float16 arrays are passed to the library without a copy when they are
C-contiguous; without numpy, any buffer (array.array('f'), memoryview, bytes) works too, with
its shape given or taken from the buffer. Every failure raises a subclass of Error carrying the
library's status name and message.
"""
import ctypes
import dataclasses
import math
import weakref

from . import _capi
from ._capi import lib, DTYPE_F32, DTYPE_F16, DTYPE_BF16

try:
    import numpy as _np
except ImportError:  # the buffer paths work without it
    _np = None

__all__ = [
    "Error", "InvalidArgument", "OutOfMemory", "IOFailure", "FormatError", "VersionError",
    "Cancelled", "Unsupported", "QualityError", "NotFound",
    "version", "version_string", "Compressor", "CTensor", "Stats", "SafeTensors",
    "SafeTensorsWriter", "ArchiveWriter", "Archive", "ArchiveEntry", "Pipeline", "StageMetrics",
    "ModelView",
    "DTYPE_F32", "DTYPE_F16", "DTYPE_BF16",
]

# ---------------------------------------------------------------------------------- errors


class Error(Exception):
    """A libhypercomp failure: status (negative hc_status), status_name and message."""

    def __init__(self, status, message):
        self.status = status
        self.status_name = _decode(lib.hc_status_name(status))
        self.message = message
        super().__init__(f"{self.status_name}: {message}")


class InvalidArgument(Error, ValueError):
    """HC_EINVAL."""


class OutOfMemory(Error, MemoryError):
    """HC_ENOMEM."""


class IOFailure(Error, OSError):
    """HC_EIO."""

    def __str__(self):
        return f"{self.status_name}: {self.message}"


class FormatError(Error):
    """HC_EFORMAT: malformed, truncated or corrupt data."""


class VersionError(Error):
    """HC_EVERSION."""


class Cancelled(Error):
    """HC_ECANCELLED: a callback stopped the work."""


class Unsupported(Error):
    """HC_EUNSUPPORTED."""


class QualityError(Error):
    """HC_EQUALITY: a quality gate was not met."""


class NotFound(Error, KeyError):
    """HC_ENOTFOUND."""

    def __str__(self):
        return f"{self.status_name}: {self.message}"


_ERRORS = {-1: InvalidArgument, -2: OutOfMemory, -3: IOFailure, -4: FormatError, -5: VersionError,
           -6: Cancelled, -7: Unsupported, -8: QualityError, -9: NotFound}


def _decode(s):
    return s.decode("utf-8", "replace") if s is not None else None


def _check(rc):
    """Raises the Error subclass of a negative status with the thread's last message."""
    if rc < 0:
        raise _ERRORS.get(rc, Error)(rc, _decode(lib.hc_last_error()) or "")
    return rc


def _enc(s):
    return s.encode("utf-8") if isinstance(s, str) else s


def version():
    """The library's version as (major, minor, patch)."""
    v = lib.hc_version()  # HC_VERSION_NUMBER: major * 10000 + minor * 100 + patch
    return v // 10000, v // 100 % 100, v % 100


def version_string():
    """The library's version as text, such as "0.1.0"."""
    return _decode(lib.hc_version_string())


# ---------------------------------------------------------------------------------- tensors

_DTYPES = {"f32": DTYPE_F32, "float32": DTYPE_F32, "f16": DTYPE_F16, "float16": DTYPE_F16,
           "bf16": DTYPE_BF16, "bfloat16": DTYPE_BF16}
_FORMAT_DTYPE = {"f": DTYPE_F32, "e": DTYPE_F16}


def _dtype_code(d):
    if isinstance(d, int):
        return d
    try:
        return _DTYPES[str(d).lower()]
    except KeyError:
        raise InvalidArgument(-1, f"dtype {d!r} is not one of f32, f16, bf16") from None


class _Input:
    """A tensor_view over the caller's memory; holds what keeps that memory alive."""

    def __init__(self, data, shape=None, dtype=None, name=None):
        self.view = _capi.TensorView()
        _check(lib.hc_tensor_view_init(ctypes.byref(self.view), ctypes.sizeof(_capi.TensorView)))
        self._name = _enc(name) if name is not None else None
        self.view.name = self._name
        if _np is not None and isinstance(data, _np.ndarray):
            if dtype is None:
                if data.dtype == _np.float32:
                    dtype = DTYPE_F32
                elif data.dtype == _np.float16:
                    dtype = DTYPE_F16
                else:
                    raise InvalidArgument(-1, f"array dtype {data.dtype} is not float32 or float16 "
                                              "(give dtype='bf16' for uint16 bfloat16 bits)")
            arr = _np.ascontiguousarray(data)  # a no-op for C-contiguous arrays
            self._keep = arr
            self.view.data = arr.ctypes.data if arr.size else None
            shape = arr.shape if shape is None else shape
            nbytes = arr.nbytes
        else:
            mv = memoryview(data)
            if dtype is None:
                dtype = _FORMAT_DTYPE.get(mv.format)
                if dtype is None:
                    raise InvalidArgument(-1, f"buffer format {mv.format!r} is not 'f' (float32) or "
                                              "'e' (float16); give dtype=")
            if not mv.c_contiguous:
                raise InvalidArgument(-1, "buffer is not C-contiguous")
            if shape is None:
                shape = mv.shape if mv.itemsize == lib.hc_dtype_size(_dtype_code(dtype)) else None
                if shape is None:
                    raise InvalidArgument(-1, "give shape= for a buffer of raw bytes")
            nbytes = mv.nbytes
            mvb = mv.cast("B") if mv.format != "B" or mv.ndim != 1 else mv
            if mv.readonly:
                # bytes and other read-only buffers: ctypes cannot take their address without a
                # copy, except bytes themselves, whose storage c_char_p points at.
                if isinstance(data, bytes):
                    self._keep = data
                    self.view.data = ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p)
                else:
                    self._keep = (ctypes.c_char * nbytes).from_buffer_copy(mvb)
                    self.view.data = ctypes.addressof(self._keep)
            else:
                self._keep = (ctypes.c_char * nbytes).from_buffer(mvb) if nbytes else None
                self._mv = mvb
                self.view.data = ctypes.addressof(self._keep) if nbytes else None
        self.view.dtype = _dtype_code(dtype)
        shape = tuple(int(s) for s in shape)
        if len(shape) > _capi.HC_MAX_DIMS:
            raise InvalidArgument(-1, f"{len(shape)} dimensions; at most {_capi.HC_MAX_DIMS}")
        want = math.prod(shape) * lib.hc_dtype_size(self.view.dtype)
        if want != nbytes:
            raise InvalidArgument(-1, f"shape {shape} needs {want} bytes; the buffer has {nbytes}")
        self.view.ndim = len(shape)
        for i, s in enumerate(shape):
            self.view.shape[i] = s
        self.shape = shape

    def release(self):
        """Drops the exported buffer so the caller may resize it again."""
        self._keep = None
        mv = getattr(self, "_mv", None)
        if mv is not None:
            mv.release()


@dataclasses.dataclass(frozen=True)
class Stats:
    """hc_stats: size and quality of a compressed tensor."""
    codec_id: int
    n_values: int
    bits: int
    bpw: float
    ratio: float
    rel_rmse: float
    snr_db: float
    max_abs_err: float
    cosine: float
    sparsity: float
    seconds: float

    @classmethod
    def _from_c(cls, s):
        return cls(**{f.name: getattr(s, f.name) for f in dataclasses.fields(cls)})


def _new_stats():
    s = _capi.Stats()
    s.struct_size = ctypes.sizeof(_capi.Stats)
    return s


class _Handle:
    """Owns one library handle: freed by close(), at the end of a with-block, or when collected."""

    _h = None     # so that close() works after a failed __init__
    _free = None  # the library function that frees the handle

    @property
    def h(self):
        """The handle; using a closed object raises ValueError instead of passing NULL to C."""
        if not self._h:
            raise ValueError(f"{type(self).__name__} is closed")
        return self._h

    def close(self):
        if self._h:
            getattr(lib, self._free)(self._h)
            self._h = None

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _NamedReader(_Handle):
    """A reader of named tensors; _api names the hc_<api>_count / _name / _find functions."""

    _api = None

    def __len__(self):
        return getattr(lib, f"hc_{self._api}_count")(self.h)

    def names(self):
        name = getattr(lib, f"hc_{self._api}_name")
        return [_decode(name(self.h, i)) for i in range(len(self))]

    def _index(self, name):
        idx = ctypes.c_size_t()
        _check(getattr(lib, f"hc_{self._api}_find")(ctypes.byref(idx), self.h, _enc(name)))
        return idx.value


class Compressor(_Handle):
    """A codec with its options, from a spec string such as "nf4" or "int8:clip=99.9"."""

    _free = "hc_compressor_free"

    def __init__(self, spec):
        h = ctypes.c_void_p()
        _check(lib.hc_compressor_from_spec(ctypes.byref(h), _enc(spec)))
        self._h = h

    @property
    def spec(self):
        """The canonical spec: every option spelt out."""
        return _decode(lib.hc_compressor_spec(self.h))

    def set_threads(self, threads):
        _check(lib.hc_compressor_set_threads(self.h, threads))

    def compress(self, data, shape=None, dtype=None, name=None):
        """Compresses an array or buffer; returns a CTensor."""
        inp = _Input(data, shape, dtype, name)
        try:
            out = ctypes.c_void_p()
            _check(lib.hc_compress(ctypes.byref(out), self.h, ctypes.byref(inp.view)))
            return CTensor(out)
        finally:
            inp.release()


class CTensor(_Handle):
    """A compressed tensor (hc_ctensor), freed with the object."""

    _free = "hc_ctensor_free"

    def __init__(self, handle, owner=None):
        self._h = handle
        self._owner = owner  # a tensor that borrows an archive's bytes keeps the archive alive

    @classmethod
    def deserialize(cls, data):
        """Parses a serialised tensor (bytes or any buffer); raises FormatError when malformed."""
        mv = memoryview(data).cast("B")
        buf = bytes(mv) if mv.readonly and not isinstance(data, bytes) else data
        if isinstance(buf, bytes):
            ptr = ctypes.cast(ctypes.c_char_p(buf), ctypes.c_void_p)
        else:
            arr = (ctypes.c_char * mv.nbytes).from_buffer(mv) if mv.nbytes else None
            ptr = ctypes.addressof(arr) if arr is not None else None
        out = ctypes.c_void_p()
        try:
            _check(lib.hc_ctensor_deserialize(ctypes.byref(out), ptr, mv.nbytes))
        finally:
            arr = None
            if not isinstance(buf, bytes):
                mv.release()
        return cls(out)

    @property
    def shape(self):
        s = (ctypes.c_int64 * _capi.HC_MAX_DIMS)()
        lib.hc_ctensor_shape(self.h, s)
        return tuple(s[i] for i in range(lib.hc_ctensor_ndim(self.h)))

    @property
    def numel(self):
        return lib.hc_ctensor_numel(self.h)

    @property
    def rows(self):
        return lib.hc_ctensor_rows(self.h)

    @property
    def cols(self):
        return lib.hc_ctensor_cols(self.h)

    @property
    def codec_id(self):
        return lib.hc_ctensor_codec_id(self.h)

    @property
    def codec_name(self):
        return _decode(lib.hc_ctensor_codec_name(self.h))

    @property
    def orig_dtype(self):
        return lib.hc_ctensor_orig_dtype(self.h)

    def set_threads(self, threads):
        _check(lib.hc_ctensor_set_threads(self.h, threads))

    def stats(self):
        """Size (every serialised bit) and quality recorded at compression."""
        s = _new_stats()
        _check(lib.hc_ctensor_stats(ctypes.byref(s), self.h))
        return Stats._from_c(s)

    def measure(self, original, dtype=None):
        """Stats against an original (array or buffer of the same shape)."""
        inp = _Input(original, self.shape if not hasattr(original, "shape") else None, dtype)
        try:
            s = _new_stats()
            _check(lib.hc_ctensor_measure(ctypes.byref(s), self.h, ctypes.byref(inp.view)))
            return Stats._from_c(s)
        finally:
            inp.release()

    def decode_into(self, buf, dtype="f32"):
        """Decodes into a writable buffer (numpy array, bytearray, array.array) of the right size."""
        mv = memoryview(buf)
        if mv.readonly:
            raise InvalidArgument(-1, "decode_into needs a writable buffer")
        mvb = mv.cast("B") if mv.format != "B" or mv.ndim != 1 else mv
        try:
            arr = (ctypes.c_char * mvb.nbytes).from_buffer(mvb) if mvb.nbytes else None
            _check(lib.hc_ctensor_decode(self.h, _dtype_code(dtype),
                                         ctypes.addressof(arr) if arr is not None else None, mvb.nbytes))
        finally:
            arr = None
            mvb.release()
        return buf

    def decode_bytes(self, dtype="f32"):
        """The decoded values as bytes (native byte order)."""
        code = _dtype_code(dtype)
        n = self.numel * lib.hc_dtype_size(code)
        out = ctypes.create_string_buffer(n)
        _check(lib.hc_ctensor_decode(self.h, code, out, n))
        return out.raw

    def decode(self, dtype="f32"):
        """The decoded values as a numpy array of the tensor's shape (float32, float16, or
        uint16 bfloat16 bits); as an array.array('f') without numpy (f32 only)."""
        code = _dtype_code(dtype)
        if _np is None:
            import array
            if code != DTYPE_F32:
                raise Unsupported(-7, "decode() without numpy gives f32 only; use decode_bytes()")
            out = array.array("f", bytes(4 * self.numel))
            return self.decode_into(out, code)
        npd = {DTYPE_F32: _np.float32, DTYPE_F16: _np.float16, DTYPE_BF16: _np.uint16}[code]
        return self.decode_into(_np.empty(self.shape, dtype=npd), code)

    def matvec(self, x):
        """y = W' x straight from the packed form; x has cols float32 values."""
        cols, rows = self.cols, self.rows
        if _np is not None and not isinstance(x, (bytes, bytearray, memoryview)) and \
                (isinstance(x, _np.ndarray) or not hasattr(x, "typecode")):
            xa = _np.ascontiguousarray(x, dtype=_np.float32)
            if xa.size != cols:
                raise InvalidArgument(-1, f"x has {xa.size} values; the tensor has {cols} columns")
            y = _np.empty(rows, dtype=_np.float32)
            _check(lib.hc_ctensor_matvec(self.h, xa.ctypes.data, y.ctypes.data))
            return y
        import array
        xa = array.array("f", x) if not (isinstance(x, array.array) and x.typecode == "f") else x
        if len(xa) != cols:
            raise InvalidArgument(-1, f"x has {len(xa)} values; the tensor has {cols} columns")
        y = array.array("f", bytes(4 * rows))
        xp, _ = xa.buffer_info()
        yp, _ = y.buffer_info()
        _check(lib.hc_ctensor_matvec(self.h, xp, yp))
        return y

    def serialize(self):
        """The serialised form (header, params, payload, CRC) as bytes."""
        n = lib.hc_ctensor_serialized_size(self.h)
        out = ctypes.create_string_buffer(n)
        _check(lib.hc_ctensor_serialize(self.h, out, n))
        return out.raw


# ---------------------------------------------------------------------------------- files


def _view_to_array(view, copy=True):
    """A numpy array (or bytes without numpy) of a library-owned view."""
    shape = tuple(view.shape[i] for i in range(view.ndim))
    size = lib.hc_dtype_size(view.dtype)
    n = math.prod(shape) * size
    raw = ctypes.string_at(view.data, n) if n else b""
    if _np is None:
        return raw
    npd = {DTYPE_F32: _np.float32, DTYPE_F16: _np.float16, DTYPE_BF16: _np.uint16}[view.dtype]
    return _np.frombuffer(raw, dtype=npd).reshape(shape)


class SafeTensors(_NamedReader):
    """A safetensors file opened by the library (F32, F16 and BF16 tensors)."""

    _free = "hc_safetensors_close"
    _api = "safetensors"

    def __init__(self, path):
        h = ctypes.c_void_p()
        _check(lib.hc_safetensors_open(ctypes.byref(h), _enc(str(path))))
        self._h = h

    def dtype(self, name):
        return _decode(lib.hc_safetensors_dtype(self.h, self._index(name)))

    def metadata(self, key):
        return _decode(lib.hc_safetensors_metadata(self.h, _enc(key)))

    def tensor(self, name):
        """A copy of the tensor as a numpy array (bytes without numpy)."""
        v = _capi.TensorView()
        v.struct_size = ctypes.sizeof(v)
        _check(lib.hc_safetensors_tensor(ctypes.byref(v), self.h, self._index(name)))
        return _view_to_array(v)

    def compress(self, name, compressor):
        """Compresses a tensor straight from the file's memory (no copy through Python)."""
        v = _capi.TensorView()
        v.struct_size = ctypes.sizeof(v)
        _check(lib.hc_safetensors_tensor(ctypes.byref(v), self.h, self._index(name)))
        out = ctypes.c_void_p()
        _check(lib.hc_compress(ctypes.byref(out), compressor.h, ctypes.byref(v)))
        return CTensor(out)


class _Writer(_Handle):
    """A file written beside its path and renamed when finish() succeeds: call finish() (or leave
    the with-block without an exception); a writer closed unfinished leaves no file. _api names
    the hc_<api>_new / _set_metadata / _finish / _free functions."""

    _api = None

    def __init__(self, path):
        h = ctypes.c_void_p()
        _check(getattr(lib, f"hc_{self._api}_new")(ctypes.byref(h), _enc(str(path))))
        self._h = h

    @property
    def _free(self):
        return f"hc_{self._api}_free"

    def __exit__(self, exc_type, *exc):
        try:
            if exc_type is None:
                self.finish()
        finally:
            self.close()

    def set_metadata(self, key, value):
        _check(getattr(lib, f"hc_{self._api}_set_metadata")(self.h, _enc(key), _enc(value)))

    def _add_view(self, fn, name, data, shape, dtype):
        inp = _Input(data, shape, dtype, name)
        try:
            _check(fn(self.h, ctypes.byref(inp.view)))
        finally:
            inp.release()

    def finish(self):
        _check(getattr(lib, f"hc_{self._api}_finish")(self.h))


class SafeTensorsWriter(_Writer):
    """Writes a safetensors file (F32, F16, BF16 tensors)."""

    _api = "safetensors_writer"

    def add(self, name, data, shape=None, dtype=None):
        """Adds a tensor (numpy array, or a buffer with shape and dtype) under name."""
        self._add_view(lib.hc_safetensors_writer_add, name, data, shape, dtype)


class ArchiveWriter(_Writer):
    """Writes a .hcz container."""

    _api = "archive_writer"

    def add(self, name, ct):
        _check(lib.hc_archive_writer_add(self.h, _enc(name), ct.h))

    def add_uncompressed(self, name, data, shape=None, dtype=None):
        """Adds a tensor stored exactly as it is (a "kept" tensor)."""
        self._add_view(lib.hc_archive_writer_add_uncompressed, name, data, shape, dtype)


@dataclasses.dataclass(frozen=True)
class ArchiveEntry:
    """hc_archive_entry: what the container's index says about one tensor."""
    name: str
    codec_id: int
    codec_name: str
    orig_dtype: int
    shape: tuple
    numel: int
    serialized_bytes: int
    has_quality: bool
    rel_rmse: float
    snr_db: float
    cosine: float


class Archive(_NamedReader):
    """A .hcz container opened for reading (verified unless verify=False).

    Its tensors borrow its bytes: each keeps the archive alive, and close() closes them first,
    so a tensor used after its archive was closed raises ValueError rather than reading freed
    memory."""

    _free = "hc_archive_close"
    _api = "archive"

    def __init__(self, path, verify=True):
        self._tensors = weakref.WeakSet()
        self._bytes = None
        h = ctypes.c_void_p()
        _check(lib.hc_archive_open(ctypes.byref(h), _enc(str(path)), 0 if verify else 1))
        self._h = h

    @classmethod
    def from_bytes(cls, data, verify=True):
        """Opens a container held in memory (bytes or any buffer). The bytes are copied once and
        kept for the archive's life, so the caller's buffer may change afterwards."""
        raw = bytes(memoryview(data).cast("B"))
        a = cls.__new__(cls)
        a._tensors = weakref.WeakSet()
        a._bytes = ctypes.create_string_buffer(raw, len(raw) or 1)
        h = ctypes.c_void_p()
        _check(lib.hc_archive_open_memory(ctypes.byref(h), a._bytes, len(raw), 0 if verify else 1))
        a._h = h
        return a

    def close(self):
        for t in list(getattr(self, "_tensors", ())):
            t.close()
        super().close()

    def entry(self, name):
        e = _capi.ArchiveEntry()
        e.struct_size = ctypes.sizeof(e)
        _check(lib.hc_archive_entry_get(ctypes.byref(e), self.h, self._index(name)))
        return ArchiveEntry(_decode(e.name), e.codec_id, _decode(e.codec_name), e.orig_dtype,
                            tuple(e.shape[i] for i in range(e.ndim)), e.numel, e.serialized_bytes,
                            bool(e.has_quality), e.rel_rmse, e.snr_db, e.cosine)

    def tensor(self, name):
        out = ctypes.c_void_p()
        _check(lib.hc_archive_tensor(ctypes.byref(out), self.h, self._index(name)))
        t = CTensor(out, owner=self)
        self._tensors.add(t)
        return t

    def metadata(self):
        return {_decode(k): _decode(lib.hc_archive_metadata(self.h, k))
                for k in (lib.hc_archive_metadata_key(self.h, i)
                          for i in range(lib.hc_archive_metadata_count(self.h)))}


# ---------------------------------------------------------------------------------- pipeline


@dataclasses.dataclass(frozen=True)
class StageMetrics:
    """hc_stage_metrics: one stage's result, as given to a stage callback."""
    stage_index: int
    stage: str
    tensor: str
    spec: str
    mode: int
    attempt: int
    action: int
    gate_passed: bool
    n_values: int
    stage_bits: int
    bits: int
    bpw: float
    ratio: float
    rel_rmse: float
    snr_db: float
    cosine: float
    max_abs_err: float
    seconds: float
    model_score: float
    baseline_score: float

    ACTIONS = ("kept", "dropped", "failed", "rolled_back", "fallback", "rule_keep", "refined", "chosen")

    @property
    def action_name(self):
        return self.ACTIONS[self.action] if self.action < len(self.ACTIONS) else str(self.action)

    @classmethod
    def _from_c(cls, m):
        vals = {}
        for f in dataclasses.fields(cls):
            v = getattr(m, f.name)
            vals[f.name] = _decode(v) if isinstance(v, bytes) else v
        vals["gate_passed"] = bool(vals["gate_passed"])
        return cls(**vals)


class ModelView:
    """The model an evaluator scores: read-only, valid only during the evaluator call."""

    def __init__(self, handle):
        self._h = handle

    @property
    def h(self):
        if not self._h:
            raise ValueError("ModelView used after its evaluator call returned")
        return self._h

    def __len__(self):
        return lib.hc_model_count(self.h)

    def _view(self, i):
        v = _capi.TensorView()
        v.struct_size = ctypes.sizeof(v)
        _check(lib.hc_model_tensor(ctypes.byref(v), self.h, i))
        return v

    def names(self):
        return [_decode(self._view(i).name) for i in range(len(self))]

    def __getitem__(self, name):
        """A copy of the named tensor's current values."""
        for i in range(len(self)):
            v = self._view(i)
            if _decode(v.name) == name:
                return _view_to_array(v)
        raise KeyError(name)


_MODES = {"refine": 0, "escalate": 1}


class Pipeline(_Handle):
    """Stages of codecs under quality gates (hc_pipeline).

    callback(metrics: StageMetrics) runs after every stage; returning a true value cancels
    the work (Cancelled). evaluator(model: ModelView) -> float scores a model for the model gate.
    An exception raised in either cancels the work and is re-raised by the compress call.
    """

    _free = "hc_pipeline_free"

    def __init__(self, mode="refine", fallback=None, threads=1, min_db_per_bit=None,
                 model_retain=None, higher_is_better=None, keep_spec=None, keep_below=None,
                 keep_1d=None, gain_iters=None, gain_solver=None):
        o = _capi.PipelineOptions()
        _check(lib.hc_pipeline_options_init(ctypes.byref(o), ctypes.sizeof(o)))
        if mode not in _MODES:
            raise InvalidArgument(-1, f"pipeline mode {mode!r} is not refine or escalate")
        o.mode = _MODES[mode]
        o.threads = threads
        o.fallback_spec = _enc(fallback)
        for k, v in (("min_db_per_bit", min_db_per_bit), ("model_retain", model_retain),
                     ("higher_is_better", higher_is_better), ("keep_below", keep_below),
                     ("keep_1d", keep_1d), ("gain_iters", gain_iters), ("gain_solver", gain_solver)):
            if v is not None:
                setattr(o, k, int(v) if isinstance(v, bool) else v)
        if keep_spec is not None:
            o.keep_spec = _enc(keep_spec)
        h = ctypes.c_void_p()
        _check(lib.hc_pipeline_new(ctypes.byref(h), ctypes.byref(o)))
        self._h = h
        self._cb = None          # the CFUNCTYPE objects must outlive every call into C
        self._eval = None
        self._pending = None     # an exception raised inside a callback, re-raised after the call
        self._rules = []         # pipelines the rules borrow

    def add_stage(self, name, spec, gate=None):
        """Adds a stage coding with spec; gate is text such as "rel_rmse<=0.05,snr>=20"."""
        g = None
        if gate is not None:
            g = _capi.Gate()
            _check(lib.hc_gate_init(ctypes.byref(g), ctypes.sizeof(g)))
            _check(lib.hc_gate_parse(ctypes.byref(g), _enc(gate)))
        _check(lib.hc_pipeline_add_stage_spec(self.h, _enc(name), _enc(spec),
                                              ctypes.byref(g) if g is not None else None))

    def add_rule(self, pattern, keep_spec=None, use=None):
        """For compress_model(): tensors whose name matches the glob pattern are coded with
        keep_spec directly (e.g. "f32"), or through the pipeline use; exactly one of the two."""
        if use is not None and not isinstance(use, Pipeline):
            raise InvalidArgument(-1, f"add_rule: use must be a Pipeline, not {type(use).__name__}")
        _check(lib.hc_pipeline_add_rule(self.h, _enc(pattern), _enc(keep_spec),
                                        use.h if use is not None else None))
        if use is not None:
            self._rules.append(use)  # borrowed by the library: it must outlive this pipeline

    @property
    def stage_count(self):
        return lib.hc_pipeline_stage_count(self.h)

    def _guard(self, fn):
        """Runs fn; on an exception remembers it and returns 1, which the library takes as cancel."""
        if self._pending is not None:
            return 1
        try:
            return fn()
        except BaseException as e:  # noqa: B902 - even KeyboardInterrupt must not cross into C
            self._pending = e
            return 1

    def set_callback(self, fn):
        """Sets (or with None clears) the stage callback."""
        if fn is None:
            self._cb = _capi.STAGE_CB()
        else:
            def tramp(m, _user):
                return self._guard(lambda: 1 if fn(StageMetrics._from_c(m.contents)) else 0)
            self._cb = _capi.STAGE_CB(tramp)
        _check(lib.hc_pipeline_set_stage_callback(self.h, self._cb, None))

    def set_evaluator(self, fn):
        """Sets (or with None clears) the model evaluator: fn(ModelView) -> float."""
        if fn is None:
            self._eval = _capi.EVAL_FN()
        else:
            def tramp(out, model, _user):
                def run():
                    view = ModelView(model)
                    try:
                        out[0] = float(fn(view))
                    finally:
                        view._h = None   # the model is the library's only during this call
                    return 0
                return self._guard(run)
            self._eval = _capi.EVAL_FN(tramp)
        _check(lib.hc_pipeline_set_evaluator(self.h, self._eval, None))

    def _finish(self, rc):
        pending, self._pending = self._pending, None
        if pending is not None:
            raise pending
        _check(rc)

    def compress(self, data, shape=None, dtype=None, name=None):
        """Runs the stages on one tensor; returns the chosen CTensor."""
        inp = _Input(data, shape, dtype, name)
        self._pending = None
        out = ctypes.c_void_p()
        try:
            rc = lib.hc_pipeline_compress_tensor(ctypes.byref(out), self.h, ctypes.byref(inp.view))
        finally:
            inp.release()
        self._finish(rc)
        return CTensor(out)

    def compress_model(self, tensors, sink=None):
        """Compresses a model given as {name: array}. With sink=None returns {name: CTensor};
        with an ArchiveWriter streams every result into it (the caller finishes it); with a
        callable calls sink(name, CTensor) where the CTensor is valid only during the call."""
        model = ctypes.c_void_p()
        _check(lib.hc_model_new(ctypes.byref(model)))
        inputs = []
        results = {}
        try:
            for name, data in tensors.items():
                inp = _Input(data, name=name)
                inputs.append(inp)
                _check(lib.hc_model_add(model, ctypes.byref(inp.view)))
            self._pending = None
            if isinstance(sink, ArchiveWriter):
                rc = lib.hc_pipeline_compress_model(self.h, model, _capi.archive_writer_sink, sink.h)
            else:
                def deliver(cname, ct):
                    borrowed = CTensor(ctypes.c_void_p(ct))
                    try:
                        if sink is None:
                            results[_decode(cname)] = CTensor.deserialize(borrowed.serialize())
                        elif sink(_decode(cname), borrowed):
                            return 1
                        return 0
                    finally:
                        borrowed._h = None  # borrowed: never freed here
                sink_cb = _capi.SINK_FN(lambda n, ct, _u: self._guard(lambda: deliver(n, ct)))
                rc = lib.hc_pipeline_compress_model(self.h, model, sink_cb, None)
            self._finish(rc)
        finally:
            lib.hc_model_free(model)
            for inp in inputs:
                inp.release()
        return results if sink is None else None
