// fftwf_complex must stay a float[2] (imported as a tuple): keep <complex.h> out of this module.
#define FFTW_NO_Complex 1
#include <fftw3.h>
