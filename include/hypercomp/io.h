/**
 * @file io.h
 * @brief safetensors files: a memory-mapped reader and a streaming writer.
 *
 * Thread safety: a reader may be used by many threads at once once opened; a writer by one
 * thread at a time.
 */
#ifndef HYPERCOMP_IO_H
#define HYPERCOMP_IO_H

#include "hypercomp/common.h"

HC_BEGIN_DECLS

/** @brief An open safetensors file (read-only, memory-mapped). */
typedef struct hc_safetensors hc_safetensors;

/** @brief A safetensors file being written. */
typedef struct hc_safetensors_writer hc_safetensors_writer;

/**
 * @brief Opens and validates a safetensors file.
 *
 * The header is parsed and every entry checked (dtype, shape, offsets inside the file, sizes
 * matching shape times element size, no overlaps) before this returns.
 * @param out Receives the reader; close it with hc_safetensors_close().
 * @param path The file.
 * @return #HC_OK; #HC_EIO when it cannot be read; #HC_EFORMAT naming the malformed part.
 */
HC_API int hc_safetensors_open(hc_safetensors **out, const char *path);

/**
 * @brief Closes a reader; NULL is accepted. Views obtained from it become invalid.
 * @param st The reader, or NULL.
 */
HC_API void hc_safetensors_close(hc_safetensors *st);

/**
 * @brief Number of tensors in the file (every dtype).
 * @param st The reader.
 * @return The tensor count.
 */
HC_API size_t hc_safetensors_count(const hc_safetensors *st);

/**
 * @brief Name of tensor number index, in file order of data offsets.
 * @param st The reader.
 * @param index 0 to the count - 1.
 * @return A string that lives as long as the reader, or NULL for a bad index.
 */
HC_API const char *hc_safetensors_name(const hc_safetensors *st, size_t index);

/**
 * @brief A view of tensor number index, borrowing the mapped file.
 * @param out The view to fill; out->struct_size must be set.
 * @param st The reader.
 * @param index 0 to count - 1.
 * @return #HC_OK; #HC_EINVAL for a bad index; #HC_EUNSUPPORTED for a dtype other than F32,
 *         F16 and BF16 (the message names it) or more than #HC_MAX_DIMS dimensions.
 */
HC_API int hc_safetensors_tensor(hc_tensor_view *out, const hc_safetensors *st, size_t index);

/**
 * @brief Looks a tensor up by name.
 * @param out Receives its index.
 * @param st The reader.
 * @param name The tensor name.
 * @return #HC_OK or #HC_ENOTFOUND.
 */
HC_API int hc_safetensors_find(size_t *out, const hc_safetensors *st, const char *name);

/**
 * @brief The value of a `__metadata__` key.
 * @param st The reader.
 * @param key The metadata key.
 * @return A string that lives as long as the reader, or NULL when the key is absent.
 */
HC_API const char *hc_safetensors_metadata(const hc_safetensors *st, const char *key);

/**
 * @brief Number of `__metadata__` entries.
 * @param st The reader.
 * @return The entry count.
 */
HC_API size_t hc_safetensors_metadata_count(const hc_safetensors *st);

/**
 * @brief The key of metadata entry number index.
 * @param st The reader.
 * @param index 0 to the count - 1.
 * @return A string that lives as long as the reader, or NULL for a bad index.
 */
HC_API const char *hc_safetensors_metadata_key(const hc_safetensors *st, size_t index);

/**
 * @brief Starts writing a safetensors file.
 *
 * Data goes to a temporary file beside path; hc_safetensors_writer_finish() renames it into
 * place, so no partial file ever appears under path.
 * @param out Receives the writer.
 * @param path The target file.
 * @return #HC_OK, #HC_EIO naming the file, #HC_ENOMEM.
 */
HC_API int hc_safetensors_writer_new(hc_safetensors_writer **out, const char *path);

/**
 * @brief Adds a `__metadata__` entry.
 * @param w The writer.
 * @param key The key.
 * @param value Its value.
 * @return #HC_OK, #HC_EINVAL for NULL or a duplicate key, #HC_ENOMEM.
 */
HC_API int hc_safetensors_writer_set_metadata(hc_safetensors_writer *w, const char *key, const char *value);

/**
 * @brief Appends a tensor (its name must be set and unique); the data is copied out at once.
 * @param w The writer.
 * @param t The tensor; its name must be set.
 * @return #HC_OK, #HC_EINVAL for a bad view or duplicate name, #HC_EIO, #HC_ENOMEM.
 */
HC_API int hc_safetensors_writer_add(hc_safetensors_writer *w, const hc_tensor_view *t);

/**
 * @brief Writes the header and data and renames the file into place.
 * @param w The writer.
 * @return #HC_OK or #HC_EIO; on failure nothing is left under the target name.
 */
HC_API int hc_safetensors_writer_finish(hc_safetensors_writer *w);

/**
 * @brief Frees a writer; an unfinished file is discarded. NULL is accepted.
 * @param w The writer, or NULL.
 */
HC_API void hc_safetensors_writer_free(hc_safetensors_writer *w);

HC_END_DECLS

#endif
