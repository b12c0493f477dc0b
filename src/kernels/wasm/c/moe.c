// placeholder: moe kernels land here.
#include "sy.h"
