#include <cblas.h>

/* LAPACK's divide-and-conquer SVD, exported by the same OpenBLAS library (Debian builds it with LAPACK); declared
   here because the openblas-pthread headers ship no lapack.h. Column-major, Fortran calling convention. */
void dgesdd_(const char *jobz, const int *m, const int *n, double *a, const int *lda, double *s, double *u,
             const int *ldu, double *vt, const int *ldvt, double *work, const int *lwork, int *iwork, int *info);
