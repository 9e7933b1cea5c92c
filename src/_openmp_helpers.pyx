"""OpenMP facts compiled into the build (one module, no hot loop)."""

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define FL_OPENMP_ENABLED 1
    #else
    #define FL_OPENMP_ENABLED 0
    static int omp_get_max_threads(void) { return 1; }
    #endif
    """
    int FL_OPENMP_ENABLED
    int omp_get_max_threads() noexcept nogil


def openmp_enabled():
    """True when the extensions were compiled with OpenMP."""
    return bool(FL_OPENMP_ENABLED)


def omp_max_threads():
    """``omp_get_max_threads()``: honours OMP_NUM_THREADS and threadpoolctl."""
    return omp_get_max_threads()
