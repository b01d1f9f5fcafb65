/**
 * @file export.h
 * @brief Symbol export and calling-convention macros shared by every public header.
 */
#ifndef HYPERCOMP_EXPORT_H
#define HYPERCOMP_EXPORT_H

/** @brief Marks a function as part of the public, exported interface. */
#if defined(_WIN32) && defined(HC_BUILDING_LIBRARY)
#define HC_API __declspec(dllexport)
#elif defined(__GNUC__) && defined(HC_BUILDING_LIBRARY)
#define HC_API __attribute__((visibility("default")))
#else
#define HC_API
#endif

#ifdef __cplusplus
/** @brief Opens a C linkage block when compiled as C++. */
#define HC_BEGIN_DECLS extern "C" {
/** @brief Closes a C linkage block when compiled as C++. */
#define HC_END_DECLS }
#else
/** @brief Opens a C linkage block when compiled as C++; empty in C. */
#define HC_BEGIN_DECLS
/** @brief Closes a C linkage block when compiled as C++; empty in C. */
#define HC_END_DECLS
#endif

#endif
