// placeholder: attention kernels land here.
#include "sy.h"
