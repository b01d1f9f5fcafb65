// hello.cc: libhypercomp from C++. Compress a random matrix, report its size and error, and
// check a matrix-vector product taken straight from the compressed form against a plain loop.
//
//   c++ hello.cc $(pkg-config --cflags --libs hypercomp) -o hello-cc && ./hello-cc nf4
#include <hypercomp/hypercomp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// Owning handles: the library's free functions as deleters.
struct compressor_free {
    void operator()(hc_compressor *c) const { hc_compressor_free(c); }
};
struct ctensor_free {
    void operator()(hc_ctensor *ct) const { hc_ctensor_free(ct); }
};
using compressor_ptr = std::unique_ptr<hc_compressor, compressor_free>;
using ctensor_ptr = std::unique_ptr<hc_ctensor, ctensor_free>;

void check(int rc, const char *what)
{
    if (rc != HC_OK)
        throw std::runtime_error(std::string(what) + ": " + hc_last_error() + " (" + hc_status_name(rc) + ")");
}

} // namespace

int main(int argc, char **argv)
try {
    const char *spec = argc > 1 ? argv[1] : "fp16";
    const int64_t rows = 256, cols = 512;
    std::mt19937 gen(42);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> w(rows * cols), x(cols), y(rows), decoded(rows * cols);
    for (float &v : w)
        v = normal(gen);
    for (float &v : x)
        v = normal(gen);

    std::printf("libhypercomp %s (headers %s)\n", hc_version_string(), HC_VERSION_STRING);

    hc_compressor *raw_c = nullptr;
    check(hc_compressor_from_spec(&raw_c, spec), "spec");
    compressor_ptr c(raw_c);

    hc_tensor_view view = HC_TENSOR_VIEW_INIT;
    view.name = "w";
    view.ndim = 2;
    view.shape[0] = rows;
    view.shape[1] = cols;
    view.data = w.data();

    hc_ctensor *raw_ct = nullptr;
    check(hc_compress(&raw_ct, c.get(), &view), "compress");
    ctensor_ptr ct(raw_ct);

    hc_stats stats = HC_STATS_INIT;
    check(hc_ctensor_stats(&stats, ct.get()), "stats");
    std::printf("%s: %.4f bits per weight, rel_rmse %.6f\n", hc_compressor_spec(c.get()), stats.bpw,
                stats.rel_rmse);

    // y = W' x from the packed form, compared with a loop over the decoded matrix W'.
    check(hc_ctensor_matvec(ct.get(), x.data(), y.data()), "matvec");
    check(hc_ctensor_decode(ct.get(), HC_DTYPE_F32, decoded.data(), decoded.size() * sizeof(float)), "decode");
    float worst = 0.0f, scale = 0.0f;
    for (int64_t i = 0; i < rows; i++) {
        float ref = 0.0f;
        for (int64_t j = 0; j < cols; j++)
            ref += decoded[i * cols + j] * x[j];
        worst = std::max(worst, std::fabs(y[i] - ref));
        scale = std::max(scale, std::fabs(ref));
    }
    std::printf("matvec: largest difference from a plain loop %.3g (outputs up to %.3g)\n", worst, scale);
    if (worst > 1e-4f * scale) {
        std::fprintf(stderr, "hello-cc: the compressed matvec disagrees with the plain loop\n");
        return 1;
    }
    return 0;
} catch (const std::exception &e) {
    std::fprintf(stderr, "hello-cc: %s\n", e.what());
    return 1;
}
