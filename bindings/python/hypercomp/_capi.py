"""The C interface of libhypercomp as ctypes declarations: loading, structs, prototypes.

Every struct mirrors its header in include/hypercomp/ field for field (struct_size first);
tests/test_layout.py compares sizes and offsets with a C program compiled against the headers.
"""
import ctypes
import ctypes.util
import os

HC_MAX_DIMS = 4
HC_SAFETENSORS_MAX_DIMS = 8

# hc_dtype
DTYPE_F32, DTYPE_F16, DTYPE_BF16 = 0, 1, 2

c_int64_p = ctypes.POINTER(ctypes.c_int64)
c_float_p = ctypes.POINTER(ctypes.c_float)


class TensorView(ctypes.Structure):
    """hc_tensor_view (common.h)."""
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("name", ctypes.c_char_p),
        ("dtype", ctypes.c_int),
        ("ndim", ctypes.c_uint32),
        ("shape", ctypes.c_int64 * HC_MAX_DIMS),
        ("data", ctypes.c_void_p),
        ("importance", c_float_p),
        ("hessian", c_float_p),
    ]


class Stats(ctypes.Structure):
    """hc_stats (compressor.h)."""
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("codec_id", ctypes.c_uint32),
        ("n_values", ctypes.c_uint64),
        ("bits", ctypes.c_uint64),
        ("bpw", ctypes.c_double),
        ("ratio", ctypes.c_double),
        ("rel_rmse", ctypes.c_double),
        ("snr_db", ctypes.c_double),
        ("max_abs_err", ctypes.c_double),
        ("cosine", ctypes.c_double),
        ("sparsity", ctypes.c_double),
        ("seconds", ctypes.c_double),
    ]


class ArchiveEntry(ctypes.Structure):
    """hc_archive_entry (archive.h)."""
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("name", ctypes.c_char_p),
        ("codec_id", ctypes.c_uint32),
        ("codec_name", ctypes.c_char_p),
        ("orig_dtype", ctypes.c_int),
        ("ndim", ctypes.c_uint32),
        ("shape", ctypes.c_int64 * HC_MAX_DIMS),
        ("numel", ctypes.c_int64),
        ("params_offset", ctypes.c_uint64),
        ("params_len", ctypes.c_uint64),
        ("payload_offset", ctypes.c_uint64),
        ("payload_len", ctypes.c_uint64),
        ("serialized_bytes", ctypes.c_uint64),
        ("has_quality", ctypes.c_int),
        ("rel_rmse", ctypes.c_double),
        ("snr_db", ctypes.c_double),
        ("max_abs_err", ctypes.c_double),
        ("cosine", ctypes.c_double),
        ("sparsity", ctypes.c_double),
        ("seconds", ctypes.c_double),
    ]


class Gate(ctypes.Structure):
    """hc_gate (pipeline.h)."""
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("checks", ctypes.c_uint32),
        ("max_rel_rmse", ctypes.c_double),
        ("min_snr_db", ctypes.c_double),
        ("min_cosine", ctypes.c_double),
    ]


class StageMetrics(ctypes.Structure):
    """hc_stage_metrics (pipeline.h)."""
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("stage_index", ctypes.c_uint32),
        ("stage", ctypes.c_char_p),
        ("tensor", ctypes.c_char_p),
        ("spec", ctypes.c_char_p),
        ("mode", ctypes.c_uint32),
        ("attempt", ctypes.c_uint32),
        ("action", ctypes.c_uint32),
        ("gate_passed", ctypes.c_int32),
        ("n_values", ctypes.c_uint64),
        ("stage_bits", ctypes.c_uint64),
        ("bits", ctypes.c_uint64),
        ("bpw", ctypes.c_double),
        ("ratio", ctypes.c_double),
        ("rel_rmse", ctypes.c_double),
        ("snr_db", ctypes.c_double),
        ("cosine", ctypes.c_double),
        ("max_abs_err", ctypes.c_double),
        ("seconds", ctypes.c_double),
        ("model_score", ctypes.c_double),
        ("baseline_score", ctypes.c_double),
    ]


class PipelineOptions(ctypes.Structure):
    """hc_pipeline_options (pipeline.h)."""
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("mode", ctypes.c_uint32),
        ("min_db_per_bit", ctypes.c_double),
        ("fallback_spec", ctypes.c_char_p),
        ("threads", ctypes.c_uint32),
        ("gain_iters", ctypes.c_uint32),
        ("gain_lr", ctypes.c_float),
        ("gain_filter", ctypes.c_uint32),
        ("model_retain", ctypes.c_double),
        ("higher_is_better", ctypes.c_uint32),
        ("keep_spec", ctypes.c_char_p),
        ("keep_below", ctypes.c_uint64),
        ("keep_1d", ctypes.c_uint32),
        ("gain_solver", ctypes.c_uint32),
    ]


STRUCTS = {
    "hc_tensor_view": TensorView,
    "hc_stats": Stats,
    "hc_archive_entry": ArchiveEntry,
    "hc_gate": Gate,
    "hc_stage_metrics": StageMetrics,
    "hc_pipeline_options": PipelineOptions,
}

# Callback types. They return int; ctypes takes the GIL around the Python body, so they may be
# called from the library's worker threads.
STAGE_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(StageMetrics), ctypes.c_void_p)
EVAL_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_double), ctypes.c_void_p, ctypes.c_void_p)
SINK_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p)


def _find_library():
    """HYPERCOMP_LIBRARY first, then the installed soname, then the linker's search."""
    tried = []
    env = os.environ.get("HYPERCOMP_LIBRARY")
    if env:
        return ctypes.CDLL(env)
    for name in ("libhypercomp.so.1", ctypes.util.find_library("hypercomp")):
        if not name:
            continue
        try:
            return ctypes.CDLL(name)
        except OSError as e:
            tried.append(str(e))
    raise OSError("libhypercomp not found: set HYPERCOMP_LIBRARY to the path of libhypercomp.so "
                  "or install it (" + "; ".join(tried) + ")")


lib = _find_library()

_P = ctypes.c_void_p
_PP = ctypes.POINTER(ctypes.c_void_p)
_I = ctypes.c_int
_S = ctypes.c_char_p
_Z = ctypes.c_size_t
_U32 = ctypes.c_uint32
_I64 = ctypes.c_int64

_PROTOTYPES = {
    "hc_status_name": (_S, [_I]),
    "hc_last_error": (_S, []),
    "hc_version": (_U32, []),
    "hc_version_string": (_S, []),
    "hc_dtype_size": (_Z, [_I]),
    "hc_dtype_name": (_S, [_I]),
    "hc_tensor_view_init": (_I, [ctypes.POINTER(TensorView), _U32]),
    "hc_compressor_from_spec": (_I, [_PP, _S]),
    "hc_compressor_free": (None, [_P]),
    "hc_compressor_spec": (_S, [_P]),
    "hc_compressor_set_threads": (_I, [_P, _U32]),
    "hc_compress": (_I, [_PP, _P, ctypes.POINTER(TensorView)]),
    "hc_ctensor_free": (None, [_P]),
    "hc_ctensor_decode": (_I, [_P, _I, _P, _Z]),
    "hc_ctensor_matvec": (_I, [_P, _P, _P]),
    "hc_ctensor_stats": (_I, [ctypes.POINTER(Stats), _P]),
    "hc_ctensor_measure": (_I, [ctypes.POINTER(Stats), _P, ctypes.POINTER(TensorView)]),
    "hc_ctensor_ndim": (_U32, [_P]),
    "hc_ctensor_shape": (None, [_P, c_int64_p]),
    "hc_ctensor_numel": (_I64, [_P]),
    "hc_ctensor_rows": (_I64, [_P]),
    "hc_ctensor_cols": (_I64, [_P]),
    "hc_ctensor_orig_dtype": (_I, [_P]),
    "hc_ctensor_codec_id": (_U32, [_P]),
    "hc_ctensor_codec_name": (_S, [_P]),
    "hc_ctensor_set_threads": (_I, [_P, _U32]),
    "hc_ctensor_serialized_size": (_Z, [_P]),
    "hc_ctensor_serialize": (_I, [_P, _P, _Z]),
    "hc_ctensor_deserialize": (_I, [_PP, _P, _Z]),
    "hc_safetensors_open": (_I, [_PP, _S]),
    "hc_safetensors_close": (None, [_P]),
    "hc_safetensors_count": (_Z, [_P]),
    "hc_safetensors_name": (_S, [_P, _Z]),
    "hc_safetensors_tensor": (_I, [ctypes.POINTER(TensorView), _P, _Z]),
    "hc_safetensors_dtype": (_S, [_P, _Z]),
    "hc_safetensors_find": (_I, [ctypes.POINTER(ctypes.c_size_t), _P, _S]),
    "hc_safetensors_metadata": (_S, [_P, _S]),
    "hc_safetensors_writer_new": (_I, [_PP, _S]),
    "hc_safetensors_writer_set_metadata": (_I, [_P, _S, _S]),
    "hc_safetensors_writer_add": (_I, [_P, ctypes.POINTER(TensorView)]),
    "hc_safetensors_writer_finish": (_I, [_P]),
    "hc_safetensors_writer_free": (None, [_P]),
    "hc_archive_format_version": (_U32, []),
    "hc_archive_writer_new": (_I, [_PP, _S]),
    "hc_archive_writer_set_metadata": (_I, [_P, _S, _S]),
    "hc_archive_writer_add": (_I, [_P, _S, _P]),
    "hc_archive_writer_add_uncompressed": (_I, [_P, ctypes.POINTER(TensorView)]),
    "hc_archive_writer_finish": (_I, [_P]),
    "hc_archive_writer_free": (None, [_P]),
    "hc_archive_open": (_I, [_PP, _S, _U32]),
    "hc_archive_open_memory": (_I, [_PP, _P, _Z, _U32]),
    "hc_archive_close": (None, [_P]),
    "hc_archive_count": (_Z, [_P]),
    "hc_archive_name": (_S, [_P, _Z]),
    "hc_archive_find": (_I, [ctypes.POINTER(ctypes.c_size_t), _P, _S]),
    "hc_archive_entry_get": (_I, [ctypes.POINTER(ArchiveEntry), _P, _Z]),
    "hc_archive_tensor": (_I, [_PP, _P, _Z]),
    "hc_archive_metadata_count": (_Z, [_P]),
    "hc_archive_metadata_key": (_S, [_P, _Z]),
    "hc_archive_metadata": (_S, [_P, _S]),
    "hc_gate_init": (_I, [ctypes.POINTER(Gate), _U32]),
    "hc_gate_parse": (_I, [ctypes.POINTER(Gate), _S]),
    "hc_pipeline_options_init": (_I, [ctypes.POINTER(PipelineOptions), _U32]),
    "hc_pipeline_new": (_I, [_PP, ctypes.POINTER(PipelineOptions)]),
    "hc_pipeline_free": (None, [_P]),
    "hc_pipeline_add_stage_spec": (_I, [_P, _S, _S, ctypes.POINTER(Gate)]),
    "hc_pipeline_stage_count": (_U32, [_P]),
    "hc_pipeline_add_rule": (_I, [_P, _S, _S, _P]),
    "hc_pipeline_set_stage_callback": (_I, [_P, STAGE_CB, _P]),
    "hc_pipeline_set_evaluator": (_I, [_P, EVAL_FN, _P]),
    "hc_pipeline_compress_tensor": (_I, [_PP, _P, ctypes.POINTER(TensorView)]),
    "hc_pipeline_compress_model": (_I, [_P, _P, SINK_FN, _P]),
    "hc_model_new": (_I, [_PP]),
    "hc_model_free": (None, [_P]),
    "hc_model_add": (_I, [_P, ctypes.POINTER(TensorView)]),
    "hc_model_count": (_Z, [_P]),
    "hc_model_tensor": (_I, [ctypes.POINTER(TensorView), _P, _Z]),
}

for _name, (_res, _args) in _PROTOTYPES.items():
    _fn = getattr(lib, _name)
    _fn.restype = _res
    _fn.argtypes = _args

# The archive writer's own sink, passed straight to hc_pipeline_compress_model() so results go
# from the pipeline into the file without a round trip through Python.
archive_writer_sink = ctypes.cast(lib.hc_archive_writer_sink, SINK_FN)
