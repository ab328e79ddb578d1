#include "ckernels.h"
// Work in progress: the kernels land in the per-ISA files.
