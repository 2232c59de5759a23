/* A stand-in vendor BLAS for tests/test_registry.py: marker symbols and a run-time thread API,
   like every real family has. Built with gcc by the test; never installed. */
static int threads = 3;

const char *fakeblas_get_config(void) { return "FakeBLAS 9.9.9"; }
int fakeblas_get_num_threads(void) { return threads; }
void fakeblas_set_num_threads(int n) { if (n > 0) threads = n; }
void dgemm_(void) {}
