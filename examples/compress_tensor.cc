// compress_tensor.cc: the job of compress_tensor.c from C++ (owning handles, exceptions):
// compress the fixed 64 x 256 tensor w[i][j] = sin(0.37 i) cos(0.11 j) and write its serialised
// form, byte-identical to the C, Python and Rust examples.
//
//   c++ compress_tensor.cc $(pkg-config --cflags --libs hypercomp) -o compress_tensor_cc
//   ./compress_tensor_cc out.hct [spec]
#include <hypercomp/hypercomp.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct compressor_free {
    void operator()(hc_compressor *c) const { hc_compressor_free(c); }
};
struct ctensor_free {
    void operator()(hc_ctensor *ct) const { hc_ctensor_free(ct); }
};

void check(int rc, const char *what)
{
    if (rc != HC_OK)
        throw std::runtime_error(std::string(what) + ": " + hc_last_error() + " (" + hc_status_name(rc) + ")");
}

}  // namespace

int main(int argc, char **argv)
{
    if (argc < 2) {
        std::fprintf(stderr, "usage: compress_tensor_cc OUT [SPEC]\n");
        return 2;
    }
    const char *spec = argc > 2 ? argv[2] : "nf4";
    const int rows = 64, cols = 256;
    try {
        std::vector<float> w(static_cast<size_t>(rows) * cols);
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
                w[static_cast<size_t>(i) * cols + j] = static_cast<float>(std::sin(i * 0.37) * std::cos(j * 0.11));

        hc_compressor *raw_c = nullptr;
        check(hc_compressor_from_spec(&raw_c, spec), "spec");
        std::unique_ptr<hc_compressor, compressor_free> c(raw_c);
        hc_tensor_view view = HC_TENSOR_VIEW_INIT;
        view.name = "w";
        view.ndim = 2;
        view.shape[0] = rows;
        view.shape[1] = cols;
        view.data = w.data();
        hc_ctensor *raw_ct = nullptr;
        check(hc_compress(&raw_ct, c.get(), &view), "compress");
        std::unique_ptr<hc_ctensor, ctensor_free> ct(raw_ct);

        std::vector<char> blob(hc_ctensor_serialized_size(ct.get()));
        check(hc_ctensor_serialize(ct.get(), blob.data(), blob.size()), "serialize");
        std::ofstream out(argv[1], std::ios::binary);
        out.write(blob.data(), static_cast<std::streamsize>(blob.size()));
        out.close();
        if (!out)
            throw std::runtime_error(std::string("cannot write '") + argv[1] + "'");
        std::printf("%s: %zu bytes\n", spec, blob.size());
    } catch (const std::exception &e) {
        std::fprintf(stderr, "compress_tensor_cc: %s\n", e.what());
        return 1;
    }
    return 0;
}
