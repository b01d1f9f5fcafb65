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

/** @brief The most dimensions a tensor of a safetensors file may have to be listed (#HC_MAX_DIMS to view). */
#define HC_SAFETENSORS_MAX_DIMS 8

/** @brief The most bytes a safetensors header may have; longer headers are rejected unread. */
#define HC_SAFETENSORS_MAX_HEADER 100000000

/** @brief An open safetensors file (read-only, memory-mapped). */
typedef struct hc_safetensors hc_safetensors;

/** @brief A safetensors file being written. */
typedef struct hc_safetensors_writer hc_safetensors_writer;

/**
 * @brief Opens and validates a safetensors file.
 *
 * The header is parsed and every entry checked before this returns: the header length (at most
 * #HC_SAFETENSORS_MAX_HEADER bytes and inside the file), a JSON object whose `__metadata__` (if
 * any) holds only strings, and for every tensor a known dtype string, a shape of at most
 * #HC_SAFETENSORS_MAX_DIMS non-negative integers, and data_offsets [begin, end] inside the data
 * section whose length is the element count times the element size. Unknown fields are refused,
 * and the tensors must tile the data section without overlaps or holes, as the format requires.
 * Tensors of every dtype of the format are listed; only F32, F16 and BF16 can be viewed.
 * The file is mapped, not read: it must not be truncated by another process while open.
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
 * @brief Name of tensor number index; tensors are numbered in the order of their data offsets.
 * @param st The reader.
 * @param index 0 to the count - 1.
 * @return A string that lives as long as the reader, or NULL for a bad index.
 */
HC_API const char *hc_safetensors_name(const hc_safetensors *st, size_t index);

/**
 * @brief A view of tensor number index, borrowing the mapped file.
 *
 * The data is aligned to its element size (a file whose offsets would leave it misaligned is
 * read into aligned memory when opened). A tensor with a zero extent gives a view with no
 * elements, which hc_compress() then rejects.
 * @param out The view to fill; out->struct_size must be set.
 * @param st The reader.
 * @param index 0 to count - 1.
 * @return #HC_OK; #HC_EINVAL for a bad index; #HC_EUNSUPPORTED for a dtype other than F32,
 *         F16 and BF16 (the message names it) or more than #HC_MAX_DIMS dimensions.
 */
HC_API int hc_safetensors_tensor(hc_tensor_view *out, const hc_safetensors *st, size_t index);

/**
 * @brief The dtype of tensor number index as the file spells it ("F32", "I64", "BOOL", ...).
 * @param st The reader.
 * @param index 0 to count - 1.
 * @return A static string, or NULL for a bad index.
 */
HC_API const char *hc_safetensors_dtype(const hc_safetensors *st, size_t index);

/**
 * @brief Number of dimensions of tensor number index (up to #HC_SAFETENSORS_MAX_DIMS).
 * @param st The reader.
 * @param index 0 to count - 1.
 * @return The number of dimensions; 0 for a scalar or a bad index.
 */
HC_API uint32_t hc_safetensors_ndim(const hc_safetensors *st, size_t index);

/**
 * @brief Shape of tensor number index, whatever its dtype.
 * @param out Receives #HC_SAFETENSORS_MAX_DIMS extents; entries past ndim are 0.
 * @param st The reader.
 * @param index 0 to count - 1.
 * @return #HC_OK or #HC_EINVAL for a bad index.
 */
HC_API int hc_safetensors_shape(int64_t out[HC_SAFETENSORS_MAX_DIMS], const hc_safetensors *st, size_t index);

/**
 * @brief Number of elements of tensor number index (1 for a scalar, 0 with a zero extent).
 * @param st The reader.
 * @param index 0 to count - 1.
 * @return The element count, or -1 for a bad index.
 */
HC_API int64_t hc_safetensors_numel(const hc_safetensors *st, size_t index);

/**
 * @brief Looks a tensor up by name (a binary search).
 * @param out Receives its index.
 * @param st The reader.
 * @param name The tensor name.
 * @return #HC_OK, #HC_ENOTFOUND, or #HC_EINVAL for a NULL argument.
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
 * @brief The key of metadata entry number index (in file order).
 * @param st The reader.
 * @param index 0 to the count - 1.
 * @return A string that lives as long as the reader, or NULL for a bad index.
 */
HC_API const char *hc_safetensors_metadata_key(const hc_safetensors *st, size_t index);

/**
 * @brief Starts writing a safetensors file.
 *
 * Tensor data is streamed to a hidden, already unlinked temporary file in the target's
 * directory, so the writer holds no tensor in memory and a crash leaves nothing behind.
 * hc_safetensors_writer_finish() writes the header (padded with spaces so the data section is
 * 8-byte aligned) and the data into a second temporary file there and renames it over path, so
 * no partial file ever appears under path and an existing file is replaced only on success.
 * (A crash during finish itself can leave that second file, named `path.<16 hex digits>.tmp`.)
 * @param out Receives the writer.
 * @param path The target file.
 * @return #HC_OK, #HC_EIO naming the file and the system error (e.g. a missing or read-only
 *         directory), #HC_EINVAL for a NULL or empty path, #HC_ENOMEM.
 */
HC_API int hc_safetensors_writer_new(hc_safetensors_writer **out, const char *path);

/**
 * @brief Adds a `__metadata__` entry.
 * @param w The writer.
 * @param key The key (valid UTF-8).
 * @param value The value (valid UTF-8).
 * @return #HC_OK, #HC_EINVAL for NULL or a duplicate key, #HC_ENOMEM.
 */
HC_API int hc_safetensors_writer_set_metadata(hc_safetensors_writer *w, const char *key, const char *value);

/**
 * @brief Appends a tensor (its name must be set and unique); the data is copied out at once.
 *
 * The view may be F32, F16 or BF16 with up to #HC_MAX_DIMS dimensions; zero extents are allowed
 * (the tensor then has no data). The values are stored as they are, NaN included.
 * @param w The writer.
 * @param t The tensor; its name becomes the key in the file (valid UTF-8, not `__metadata__`).
 * @return #HC_OK, #HC_EINVAL for a bad view or duplicate name, #HC_EIO, #HC_ENOMEM.
 */
HC_API int hc_safetensors_writer_add(hc_safetensors_writer *w, const hc_tensor_view *t);

/**
 * @brief Writes the header and data and renames the file into place.
 * @param w The writer; it can only be freed afterwards, whatever the result.
 * @return #HC_OK, #HC_EIO naming the file and the system error, #HC_ENOMEM, or #HC_EINVAL when
 *         called twice; on failure nothing is left under the target name (an existing file
 *         there is untouched) and no temporary file remains.
 */
HC_API int hc_safetensors_writer_finish(hc_safetensors_writer *w);

/**
 * @brief Frees a writer; an unfinished file is discarded. NULL is accepted.
 * @param w The writer, or NULL.
 */
HC_API void hc_safetensors_writer_free(hc_safetensors_writer *w);

HC_END_DECLS

#endif
