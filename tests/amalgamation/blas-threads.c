/* Built without meson's probe for openblas_set_num_threads (as the
 * amalgamation is), the library finds it through a weak reference and still
 * keeps OpenBLAS to one thread inside its own. Run with
 * OPENBLAS_NUM_THREADS=2; exit 0: OpenBLAS went from 2 threads to 1, 77:
 * OpenBLAS did not start with 2 (nothing to check), 1: it kept them. */
#include <stdio.h>

void dcrw_blas_single_thread(void); /* internal: the object exports it */
int openblas_get_num_threads(void);

int main(void) {
    int before = openblas_get_num_threads(), after;
    if (before < 2) {
        printf("OpenBLAS runs %d thread: not checked\n", before);
        return 77;
    }
    dcrw_blas_single_thread();
    after = openblas_get_num_threads();
    printf("OpenBLAS threads: %d, then %d inside the library\n", before, after);
    return after == 1 ? 0 : 1;
}
