/* layout.c: prints the size and every field offset of the public structs as the C compiler lays
 * them out, so the Python test can compare them with its ctypes mirrors (tests/test_layout.py). */
#include <stddef.h>
#include <stdio.h>

#include <hypercomp/hypercomp.h>

#define SIZE(T) printf(#T " sizeof %zu\n", sizeof(T))
#define OFF(T, F) printf(#T " %s %zu\n", #F, offsetof(T, F))

int main(void)
{
    SIZE(hc_tensor_view);
    OFF(hc_tensor_view, struct_size); OFF(hc_tensor_view, name); OFF(hc_tensor_view, dtype);
    OFF(hc_tensor_view, ndim); OFF(hc_tensor_view, shape); OFF(hc_tensor_view, data);
    OFF(hc_tensor_view, importance); OFF(hc_tensor_view, hessian);
    SIZE(hc_stats);
    OFF(hc_stats, struct_size); OFF(hc_stats, codec_id); OFF(hc_stats, n_values); OFF(hc_stats, bits);
    OFF(hc_stats, bpw); OFF(hc_stats, ratio); OFF(hc_stats, rel_rmse); OFF(hc_stats, snr_db);
    OFF(hc_stats, max_abs_err); OFF(hc_stats, cosine); OFF(hc_stats, sparsity); OFF(hc_stats, seconds);
    SIZE(hc_archive_entry);
    OFF(hc_archive_entry, struct_size); OFF(hc_archive_entry, name); OFF(hc_archive_entry, codec_id);
    OFF(hc_archive_entry, codec_name); OFF(hc_archive_entry, orig_dtype); OFF(hc_archive_entry, ndim);
    OFF(hc_archive_entry, shape); OFF(hc_archive_entry, numel); OFF(hc_archive_entry, params_offset);
    OFF(hc_archive_entry, params_len); OFF(hc_archive_entry, payload_offset);
    OFF(hc_archive_entry, payload_len); OFF(hc_archive_entry, serialized_bytes);
    OFF(hc_archive_entry, has_quality); OFF(hc_archive_entry, rel_rmse); OFF(hc_archive_entry, snr_db);
    OFF(hc_archive_entry, max_abs_err); OFF(hc_archive_entry, cosine); OFF(hc_archive_entry, sparsity);
    OFF(hc_archive_entry, seconds);
    SIZE(hc_gate);
    OFF(hc_gate, struct_size); OFF(hc_gate, checks); OFF(hc_gate, max_rel_rmse); OFF(hc_gate, min_snr_db);
    OFF(hc_gate, min_cosine);
    SIZE(hc_stage_metrics);
    OFF(hc_stage_metrics, struct_size); OFF(hc_stage_metrics, stage_index); OFF(hc_stage_metrics, stage);
    OFF(hc_stage_metrics, tensor); OFF(hc_stage_metrics, spec); OFF(hc_stage_metrics, mode);
    OFF(hc_stage_metrics, attempt); OFF(hc_stage_metrics, action); OFF(hc_stage_metrics, gate_passed);
    OFF(hc_stage_metrics, n_values); OFF(hc_stage_metrics, stage_bits); OFF(hc_stage_metrics, bits);
    OFF(hc_stage_metrics, bpw); OFF(hc_stage_metrics, ratio); OFF(hc_stage_metrics, rel_rmse);
    OFF(hc_stage_metrics, snr_db); OFF(hc_stage_metrics, cosine); OFF(hc_stage_metrics, max_abs_err);
    OFF(hc_stage_metrics, seconds); OFF(hc_stage_metrics, model_score); OFF(hc_stage_metrics, baseline_score);
    SIZE(hc_pipeline_options);
    OFF(hc_pipeline_options, struct_size); OFF(hc_pipeline_options, mode);
    OFF(hc_pipeline_options, min_db_per_bit); OFF(hc_pipeline_options, fallback_spec);
    OFF(hc_pipeline_options, threads); OFF(hc_pipeline_options, gain_iters); OFF(hc_pipeline_options, gain_lr);
    OFF(hc_pipeline_options, gain_filter); OFF(hc_pipeline_options, model_retain);
    OFF(hc_pipeline_options, higher_is_better); OFF(hc_pipeline_options, keep_spec);
    OFF(hc_pipeline_options, keep_below); OFF(hc_pipeline_options, keep_1d); OFF(hc_pipeline_options, gain_solver);
    return 0;
}
