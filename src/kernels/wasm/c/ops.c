// placeholder: ops kernels land here.
#include "sy.h"
