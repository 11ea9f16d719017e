// The outside project's C++ program: the vendored library's wrapper trains
// a tiny model a few steps and samples it.
#include <cmath>
#include <cstdio>
#include <vector>

#include <dcrw/dcrw.hpp>

int main() {
    try {
        auto model = dcrw::Model::create("draw-noattn", 1, [](dcrw_config &c) {
            c.height = c.width = 8;
            c.glimpses = 2;
            c.enc_size = c.dec_size = 8;
            c.z_size = 2;
        });
        std::vector<float> x(4 * model.input_size());
        for (std::size_t i = 0; i < x.size(); i++) x[i] = static_cast<float>(i % 3 == 0);
        dcrw_train_config tc = dcrw::Trainer::defaults();
        tc.learning_rate = 1e-2f;
        dcrw::Trainer trainer(model, tc);
        const dcrw::Loss first = trainer.step(x);
        dcrw::Loss last = first;
        for (int step = 0; step < 20; step++) last = trainer.step(x);
        const std::vector<float> images = model.sample(2, 3);
        std::printf("vendored libdcrw %s from C++: loss %.2f -> %.2f\n", dcrw::version().c_str(),
                    first.loss, last.loss);
        return std::isfinite(last.loss) && last.loss < first.loss &&
                       images.size() == 2 * model.input_size()
                   ? 0
                   : 1;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
}
