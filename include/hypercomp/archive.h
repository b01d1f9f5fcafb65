/**
 * @file archive.h
 * @brief The .hcz container: a streaming writer and a memory-mapped reader.
 *
 * A container holds many compressed tensors, string metadata and a directory; the byte layout
 * is in doc/format.md. The writer streams each tensor to disk as it is added (memory stays
 * bounded by the largest tensor the caller holds, plus a directory entry per tensor) into a
 * temporary file beside the target, renamed into place by hc_archive_writer_finish(): a failure
 * never leaves a partial file under the target name, and a previous file there stays intact.
 * The reader maps the file, validates the header and directory, and opens any one tensor without
 * reading the others.
 *
 * Thread safety: a writer may be used by one thread at a time. An open archive may be used by
 * many threads at once (every reader function is read-only); hc_archive_close() needs exclusive
 * access and must come after every tensor obtained from the archive has been freed.
 */
#ifndef HYPERCOMP_ARCHIVE_H
#define HYPERCOMP_ARCHIVE_H

#include "hypercomp/compressor.h"

HC_BEGIN_DECLS

/** @brief Container format major version this library writes and reads. */
#define HC_ARCHIVE_VERSION_MAJOR 1
/** @brief Container format minor version this library writes. Any minor version is read. */
#define HC_ARCHIVE_VERSION_MINOR 0

/**
 * @brief The container format version this library writes.
 * @return #HC_ARCHIVE_VERSION_MAJOR * 256 + #HC_ARCHIVE_VERSION_MINOR.
 */
HC_API uint32_t hc_archive_format_version(void);

/** @brief A container being written. */
typedef struct hc_archive_writer hc_archive_writer;

/** @brief An open container (read-only, memory-mapped). */
typedef struct hc_archive hc_archive;

/**
 * @brief Starts writing a container.
 *
 * Creates a temporary file in the directory of path; nothing appears under path until
 * hc_archive_writer_finish() succeeds.
 * @param out Receives the writer; free it with hc_archive_writer_free().
 * @param path The target file.
 * @return #HC_OK; #HC_EINVAL for NULL; #HC_EIO naming the directory and the system error;
 *         #HC_ENOMEM.
 */
HC_API int hc_archive_writer_new(hc_archive_writer **out, const char *path);

/**
 * @brief Adds a metadata entry (a UTF-8 key/value pair); may be called at any time before finish.
 * @param w The writer.
 * @param key 1 to 65535 bytes, unique within the file.
 * @param value At most 16 MiB.
 * @return #HC_OK; #HC_EINVAL for NULL, an empty, too long or duplicate key, or a too long value;
 *         #HC_ENOMEM.
 */
HC_API int hc_archive_writer_set_metadata(hc_archive_writer *w, const char *key, const char *value);

/**
 * @brief Appends a compressed tensor; its bytes are written to the file before this returns.
 *
 * The tensor's quality statistics (when known) are stored with it. The tensor is not kept: the
 * caller may free it at once. A failure after writing began (I/O, memory) discards the file and
 * fails the writer; a rejected argument (a duplicate name, say) leaves it usable.
 * @param w The writer.
 * @param name 1 to 4096 bytes, unique within the file.
 * @param ct The compressed tensor.
 * @return #HC_OK; #HC_EINVAL for NULL, a bad or duplicate name, or a writer that already failed;
 *         #HC_EIO naming the file; #HC_ENOMEM.
 */
HC_API int hc_archive_writer_add(hc_archive_writer *w, const char *name, const hc_ctensor *ct);

/**
 * @brief hc_archive_writer_add() in the shape of a sink callback: `int (*)(const char *name, const
 *        hc_ctensor *ct, void *user_data)` with the writer as user_data, so a model-compression
 *        loop (such as the pipeline's) streams its results straight into a container.
 * @param name The tensor's name.
 * @param ct The compressed tensor.
 * @param writer The #hc_archive_writer.
 * @return As hc_archive_writer_add().
 */
HC_API int hc_archive_writer_sink(const char *name, const hc_ctensor *ct, void *writer);

/**
 * @brief Appends a tensor stored exactly as it is (a "kept" tensor).
 *
 * The values are written with the f32, fp16 or bf16 codec matching the view's dtype, so reading
 * them back gives the same bits. Data is streamed through a small buffer; nothing is copied whole.
 * @param w The writer.
 * @param t The tensor; t->name is used as its name and must be set.
 * @return #HC_OK; #HC_EINVAL for a bad view, name or duplicate; #HC_EIO; #HC_ENOMEM.
 */
HC_API int hc_archive_writer_add_uncompressed(hc_archive_writer *w, const hc_tensor_view *t);

/**
 * @brief Writes the directory and header, flushes and renames the file into place.
 *
 * After a failure the temporary file is removed and the target is untouched. Either way the
 * writer accepts nothing more; free it with hc_archive_writer_free().
 * @param w The writer.
 * @return #HC_OK; #HC_EIO naming the file and the system error; #HC_EINVAL if the writer
 *         already failed or finished.
 */
HC_API int hc_archive_writer_finish(hc_archive_writer *w);

/**
 * @brief Frees a writer; an unfinished file is discarded (the target is untouched).
 * @param w The writer, or NULL.
 */
HC_API void hc_archive_writer_free(hc_archive_writer *w);

/** @brief Flag for hc_archive_open(): do not check tensor checksums (only for trusted files). */
#define HC_ARCHIVE_NO_VERIFY 1u

/**
 * @brief Opens a container: maps it and validates its header and directory.
 *
 * Every count, length, offset and string of the header and directory, and their checksums, are
 * checked here; the tensor data is not read.
 * @param out Receives the archive; close it with hc_archive_close().
 * @param path The file.
 * @param flags 0 or #HC_ARCHIVE_NO_VERIFY.
 * @return #HC_OK; #HC_EIO when it cannot be read; #HC_EFORMAT naming the malformed part;
 *         #HC_EVERSION for a newer incompatible format; #HC_ENOMEM.
 */
HC_API int hc_archive_open(hc_archive **out, const char *path, uint32_t flags);

/**
 * @brief Opens a container held in memory (the caller keeps the bytes alive and unchanged until
 *        hc_archive_close()).
 * @param out Receives the archive.
 * @param data The container's bytes.
 * @param size Their number.
 * @param flags 0 or #HC_ARCHIVE_NO_VERIFY.
 * @return As hc_archive_open(), without #HC_EIO.
 */
HC_API int hc_archive_open_memory(hc_archive **out, const void *data, size_t size, uint32_t flags);

/**
 * @brief Closes an archive and unmaps it. Free the tensors obtained from it first.
 * @param a The archive, or NULL.
 */
HC_API void hc_archive_close(hc_archive *a);

/**
 * @brief Number of tensors.
 * @param a The archive.
 * @return The count; 0 for NULL.
 */
HC_API size_t hc_archive_count(const hc_archive *a);

/**
 * @brief The file's format version.
 * @param a The archive.
 * @return major * 256 + minor; 0 for NULL.
 */
HC_API uint32_t hc_archive_version(const hc_archive *a);

/**
 * @brief Size of the container.
 * @param a The archive.
 * @return Its size in bytes; 0 for NULL.
 */
HC_API uint64_t hc_archive_file_size(const hc_archive *a);

/**
 * @brief Name of tensor number index (the order in which they were written).
 * @param a The archive.
 * @param index 0 to count - 1.
 * @return A string that lives as long as the archive, or NULL for a bad index.
 */
HC_API const char *hc_archive_name(const hc_archive *a, size_t index);

/**
 * @brief Looks a tensor up by name.
 * @param out Receives its index.
 * @param a The archive.
 * @param name The name.
 * @return #HC_OK, #HC_EINVAL for NULL, or #HC_ENOTFOUND naming it.
 */
HC_API int hc_archive_find(size_t *out, const hc_archive *a, const char *name);

/**
 * @brief What the directory says about one tensor. Initialise struct_size before passing it.
 */
typedef struct hc_archive_entry {
    uint32_t struct_size;      /**< sizeof(hc_archive_entry) as the caller was compiled. */
    const char *name;          /**< The name; lives as long as the archive. */
    uint32_t codec_id;         /**< The #hc_codec_id (possibly one this library does not know). */
    const char *codec_name;    /**< The codec's short name, or "unknown" (static storage). */
    hc_dtype orig_dtype;       /**< The dtype of the tensor that was compressed. */
    uint32_t ndim;             /**< Number of dimensions. */
    int64_t shape[HC_MAX_DIMS];/**< Extents; entries past ndim are 0. */
    int64_t numel;             /**< Number of values. */
    uint64_t params_offset;    /**< File offset of the codec parameters. */
    uint64_t params_len;       /**< Their length in bytes. */
    uint64_t payload_offset;   /**< File offset of the payload (a multiple of 64). */
    uint64_t payload_len;      /**< Its length in bytes. */
    uint64_t serialized_bytes; /**< Size of the tensor's serialised (HCT1) form, what hc_stats.bits counts. */
    int has_quality;           /**< Nonzero when the quality fields below were recorded. */
    double rel_rmse;           /**< ||W - W'|| / ||W|| at compression time, NaN when unknown. */
    double snr_db;             /**< Signal-to-noise ratio in dB, NaN when unknown. */
    double max_abs_err;        /**< Largest absolute error, NaN when unknown. */
    double cosine;             /**< Cosine similarity with the original, NaN when unknown. */
    double sparsity;           /**< Fraction of exact zeros in the reconstruction, NaN when unknown. */
    double seconds;            /**< Compression time, 0 when unknown. */
} hc_archive_entry;

/** @brief Static initialiser for #hc_archive_entry. */
#define HC_ARCHIVE_ENTRY_INIT { sizeof(hc_archive_entry), NULL, 0, NULL, HC_DTYPE_F32, 0, { 0, 0, 0, 0 }, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }

/**
 * @brief Describes tensor number index from the directory (reads no tensor data).
 * @param out The entry to fill; out->struct_size must be set.
 * @param a The archive.
 * @param index 0 to count - 1.
 * @return #HC_OK; #HC_EINVAL for NULL, a bad index or a too small struct_size; #HC_EVERSION for a
 *         struct_size larger than this library's.
 */
HC_API int hc_archive_entry_get(hc_archive_entry *out, const hc_archive *a, size_t index);

/**
 * @brief Opens one tensor for decoding and matvec, straight from the mapping.
 *
 * Checks the tensor's checksum (unless the archive was opened with #HC_ARCHIVE_NO_VERIFY) and
 * lets its codec validate the parameters and payload. The tensor borrows the archive's mapping:
 * free it with hc_ctensor_free() before hc_archive_close(); using it afterwards is undefined.
 * Only this tensor's bytes are read.
 * @param out Receives the tensor.
 * @param a The archive.
 * @param index 0 to count - 1.
 * @return #HC_OK; #HC_EINVAL for a bad index; #HC_EFORMAT for a checksum mismatch or a payload
 *         its codec rejects; #HC_EUNSUPPORTED for a codec this library does not know; #HC_ENOMEM.
 */
HC_API int hc_archive_tensor(hc_ctensor **out, const hc_archive *a, size_t index);

/**
 * @brief Number of metadata entries.
 * @param a The archive.
 * @return The count; 0 for NULL.
 */
HC_API size_t hc_archive_metadata_count(const hc_archive *a);

/**
 * @brief The key of metadata entry number index.
 * @param a The archive.
 * @param index 0 to hc_archive_metadata_count() - 1.
 * @return A string that lives as long as the archive, or NULL for a bad index.
 */
HC_API const char *hc_archive_metadata_key(const hc_archive *a, size_t index);

/**
 * @brief The value of a metadata key.
 * @param a The archive.
 * @param key The key.
 * @return A string that lives as long as the archive, or NULL when the key is absent.
 */
HC_API const char *hc_archive_metadata(const hc_archive *a, const char *key);

HC_END_DECLS

#endif
