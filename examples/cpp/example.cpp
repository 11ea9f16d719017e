// The C++ wrapper in use: a small dcrw model trained a few steps on random
// binary images, sampled, saved and loaded back. Exits non-zero if any
// step does not behave as documented.
//
//   c++ -std=c++17 example.cpp $(pkg-config --cflags --libs dcrw) -o example
//   ./example [DIR]          (files go to DIR, else a fresh temporary folder)
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <dcrw/dcrw.hpp>

namespace fs = std::filesystem;

static int failures = 0;

static void expect(bool ok, const std::string &what) {
    if (!ok) {
        std::fprintf(stderr, "FAIL: %s\n", what.c_str());
        failures++;
    }
}

int main(int argc, char **argv) {
    if (DCRW_VERSION >> 16 != dcrw_version() >> 16) {
        std::fprintf(stderr, "header %d.x, library %s\n", DCRW_VERSION_MAJOR,
                     dcrw::version().c_str());
        return 1;
    }
    const bool own_dir = argc < 2;
    fs::path dir = own_dir ? fs::temp_directory_path() /
                                 ("dcrw-cpp-example-" + std::to_string(std::random_device{}()))
                           : fs::path(argv[1]);
    fs::create_directories(dir);
    try {
        // the dcrw preset, shrunk so that the example runs in a moment
        auto model = dcrw::Model::create("dcrw", 7, [](dcrw_config &c) {
            c.height = c.width = 12;
            c.glimpses = 3;
            c.dec_size = 16;
            c.z_size = 4;
            c.read_n = 5;
            c.write_n = 3;
            c.conv1 = 3;
            c.conv2 = 4;
        });
        const std::size_t P = model.input_size();
        expect(P == 144, "input size 144");
        std::printf("libdcrw %s, model of %zu parameters in %zu tensors\n", dcrw::version().c_str(),
                    model.params().size(), model.param_names().size());

        const int B = 16;
        std::mt19937 gen(1);
        std::bernoulli_distribution bit(0.3);
        std::vector<float> x(B * P);
        for (float &v : x) v = bit(gen) ? 1.0f : 0.0f;

        dcrw_train_config tc = dcrw::Trainer::defaults();
        tc.learning_rate = 1e-2f;
        std::vector<float> trained;
        {
            dcrw::Trainer trainer(model, tc);
            dcrw::Loss first{}, last{};
            for (int step = 0; step < 20; step++) {
                last = trainer.step(x);
                if (step == 0) first = last;
            }
            std::printf("loss %.2f -> %.2f nats after %llu steps\n", first.loss, last.loss,
                        static_cast<unsigned long long>(trainer.step_count()));
            expect(trainer.step_count() == 20, "20 steps counted");
            trainer.set_learning_rate(5e-3f);
            expect(trainer.learning_rate() == 5e-3f, "the learning rate is changed");
            bool refused = false;
            try {
                trainer.set_learning_rate(-1.0f);
            } catch (const dcrw::Error &) {
                refused = true;
            }
            expect(refused && trainer.learning_rate() == 5e-3f, "a negative rate is refused");
            expect(std::isfinite(last.loss) && last.loss < first.loss, "training lowers the loss");
            expect(trainer.grads().size() == model.params().size(), "one gradient per parameter");
            trainer.save((dir / "trainer.safetensors").string());
            // moving a trainer keeps one owner of the C handle
            dcrw::Trainer moved = std::move(trainer);
            expect(moved.step_count() == 20 && trainer.get() == nullptr,
                   "move transfers the trainer");
        }

        std::vector<float> images = model.sample(4, 42);
        expect(images.size() == 4 * P, "4 samples");
        bool in_range = true;
        for (float v : images) in_range = in_range && v > 0.0f && v < 1.0f;
        expect(in_range, "samples are Bernoulli means in (0, 1)");

        const std::string path = (dir / "model.safetensors").string();
        model.save(path);
        dcrw::Model back = dcrw::Model::load(path);
        const dcrw::Span<float> a = model.params();
        const dcrw::Span<const float> b = static_cast<const dcrw::Model &>(back).params();
        bool same = a.size() == b.size();
        for (std::size_t i = 0; same && i < a.size(); i++) same = a[i] == b[i];
        expect(same, "parameters survive save and load bit for bit");
        expect(back.sample(4, 42) == images, "the reloaded model samples the same images");
        const dcrw::Loss l1 = model.evaluate(x), l2 = back.evaluate(x);
        expect(l1.loss == l2.loss, "the reloaded model has the same loss");
        dcrw::Encoded e = back.encode(x);
        expect(e.z.size() == 3u * B * 4, "z is T*B*Z");
        expect(back.decode(e.z) == back.reconstruct(x), "decode(encode(x)) is the reconstruction");

        // errors carry the library's code and message
        try {
            dcrw::Model::load((dir / "missing.safetensors").string());
            expect(false, "loading a missing file throws");
        } catch (const dcrw::Error &err) {
            expect(err.code() == DCRW_EIO, "a missing file is DCRW_EIO");
            expect(std::string(err.what()).find("missing.safetensors") != std::string::npos,
                   "the message names the file");
        }
        try {
            model.evaluate(dcrw::Floats(x.data(), P + 1));
            expect(false, "a partial image throws");
        } catch (const std::invalid_argument &) {
        }
    } catch (const std::exception &err) {
        std::fprintf(stderr, "error: %s\n", err.what());
        failures++;
    }
    if (own_dir) fs::remove_all(dir);
    if (failures)
        std::fprintf(stderr, "%d check(s) failed\n", failures);
    else
        std::printf("ok\n");
    return failures ? 1 : 0;
}
