/**
 * @file hypercomp.h
 * @brief The umbrella header: includes every public module of libhypercomp.
 */
#ifndef HYPERCOMP_H
#define HYPERCOMP_H

#include "hypercomp/common.h"
#include "hypercomp/compressor.h"
#include "hypercomp/grokfast.h"
#include "hypercomp/scalar.h"
#include "hypercomp/seedlm.h"
#include "hypercomp/io.h"
#include "hypercomp/archive.h"
#include "hypercomp/trajectory.h"
#include "hypercomp/hyper.h"
#include "hypercomp/pipeline.h"
#include "hypercomp/kmeans.h"
#include "hypercomp/vptq.h"

#endif
