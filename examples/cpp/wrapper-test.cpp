// The C++ wrapper's guarantees beyond the example: a Trainer keeps its
// model alive when the Model object is gone (run under AddressSanitizer in
// the sanitizer build, where the wrapper of 0.2, which only borrowed the
// handle, reads freed memory), the glimpse-by-glimpse and per-image
// results agree with the plain ones, and the classifier's calls agree with
// each other, learn, and throw the library's refusals. Exits non-zero if a
// property is broken.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <type_traits>
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

// a model that trains in a moment; "dcrw" has read and write windows,
// "draw-noattn" neither
static dcrw::Model small_model(const char *preset, std::uint64_t seed) {
    return dcrw::Model::create(preset, seed, [](dcrw_config &c) {
        c.height = c.width = 10;
        c.glimpses = 3;
        c.enc_size = c.dec_size = 12;
        c.z_size = 4;
        c.read_n = 5;
        c.write_n = 3;
        c.conv1 = 3;
        c.conv2 = 4;
    });
}

// a classifier of 12x12 images into 3 classes, 2 glimpses of 3x3
static dcrw::Model small_classifier(std::uint64_t seed) {
    return dcrw::Model::create("draw-classify", seed, [](dcrw_config &c) {
        c.height = c.width = 12;
        c.glimpses = 2;
        c.enc_size = 8;
        c.read_n = 3;
        c.classes = 3;
    });
}

static std::vector<float> binary_images(int B, std::size_t P, unsigned seed) {
    std::mt19937 gen(seed);
    std::bernoulli_distribution bit(0.3);
    std::vector<float> x(static_cast<std::size_t>(B) * P);
    for (float &v : x) v = bit(gen) ? 1.0f : 0.0f;
    return x;
}

// Copies would share one mutable C model behind two owners' backs.
static_assert(!std::is_copy_constructible_v<dcrw::Model>, "Model is move-only");
static_assert(!std::is_copy_constructible_v<dcrw::Trainer>, "Trainer is move-only");

static void trainer_outlives_model(const fs::path &dir) {
    std::optional<dcrw::Model> model(small_model("dcrw", 3));
    const std::vector<float> x = binary_images(8, model->input_size(), 1);
    const std::vector<float> before = model->sample(2, 5);
    dcrw::Span<float> w = model->param("write.weight");
    const float w0 = w[0];
    dcrw::Trainer trainer(*model);
    model.reset(); // the Model object is gone; the trainer still holds its C model

    dcrw::Loss first = trainer.step(x), last{};
    for (int i = 0; i < 15; i++) last = trainer.step(x);
    expect(std::isfinite(last.loss) && last.loss < first.loss,
           "a trainer whose Model object is gone still trains");
    expect(w[0] != w0, "a parameter view stays valid and sees the trainer's updates");
    const std::string path = (dir / "orphan.safetensors").string();
    trainer.save(path);
    dcrw::Model back = dcrw::Model::load(path);
    expect(back.sample(2, 5) != before, "the saved model is the trained one");
    expect(back.param("write.weight")[0] == w[0], "the saved parameters are the view's");
}

static void model_reassigned_under_trainer() {
    dcrw::Model model = small_model("dcrw", 3);
    const std::vector<float> x = binary_images(8, model.input_size(), 2);
    dcrw::Trainer trainer(model);
    model = small_model("dcrw", 4); // frees nothing the trainer uses
    const std::vector<float> fresh(model.params().begin(), model.params().end());
    dcrw::Loss first = trainer.step(x), last{};
    for (int i = 0; i < 10; i++) last = trainer.step(x);
    expect(last.loss < first.loss, "the trainer trains the model it was made from");
    expect(std::vector<float>(model.params().begin(), model.params().end()) == fresh,
           "the new model of the reassigned Model object is untouched");

    // move-assigning a trainer releases the old one before its model
    dcrw::Model other = small_model("dcrw", 5);
    trainer = dcrw::Trainer(other);
    expect(trainer.step_count() == 0, "the assigned trainer is the new one");
    trainer.step(x);
    expect(trainer.step_count() == 1, "the assigned trainer trains");
}

static void moved_from_model_is_refused() {
    dcrw::Model model = small_model("dcrw", 3);
    dcrw::Model taken = std::move(model);
    expect(model.get() == nullptr && taken.get() != nullptr, "a move transfers the model");
    try {
        dcrw::Trainer t(model);
        expect(false, "a trainer of a moved-from Model throws");
    } catch (const dcrw::Error &e) {
        expect(e.code() == DCRW_EINVAL, "a trainer of a moved-from Model is DCRW_EINVAL");
    }
}

static void glimpses_agree(const char *preset, bool attention) {
    dcrw::Model model = small_model(preset, 6);
    const dcrw_sizes s = model.sizes();
    const int B = 5;
    const std::size_t T = s.glimpses, P = s.input, TB = T * B;
    const std::vector<float> x = binary_images(B, P, 3);
    std::vector<float> eps(TB * s.z);
    std::mt19937 gen(4);
    std::normal_distribution<float> normal;
    for (float &v : eps) v = normal(gen);
    const std::string name(preset);

    const dcrw::Reconstruction r = model.reconstruct_glimpses(x, eps);
    expect(r.images == model.reconstruct(x, eps), name + ": the images are reconstruct()'s");
    expect(r.canvases.size() == TB * P, name + ": canvases are T*B*P");
    expect(std::vector<float>(r.canvases.end() - B * P, r.canvases.end()) == r.images,
           name + ": the last canvas is the image");
    expect(r.read_windows.size() == (attention ? TB : 0), name + ": read windows T*B or none");
    expect(r.write_windows.size() == (attention ? TB : 0), name + ": write windows T*B or none");
    bool sane = true;
    for (const dcrw::Window &w : r.read_windows)
        sane = sane && std::isfinite(w.gx) && std::isfinite(w.gy) && w.delta > 0 && w.sigma2 > 0 &&
               w.gamma > 0;
    expect(sane, name + ": windows have positive stride, variance and intensity");

    // decode(encode(x, eps)) draws the same canvases through the same windows
    const dcrw::Encoded e = model.encode(x, eps);
    const dcrw::Decoded d = model.decode_glimpses(e.z);
    expect(d.canvases == r.canvases, name + ": decode of the posterior z gives the same canvases");
    bool same_windows = d.write_windows.size() == r.write_windows.size();
    for (std::size_t i = 0; same_windows && i < d.write_windows.size(); i++)
        same_windows = d.write_windows[i].gx == r.write_windows[i].gx &&
                       d.write_windows[i].delta == r.write_windows[i].delta &&
                       d.write_windows[i].gamma == r.write_windows[i].gamma;
    expect(same_windows, name + ": and the same write windows");
    expect(model.sample_glimpses(3, 9).images == model.sample(3, 9),
           name + ": sample_glimpses draws sample()'s images");
}

static void per_image_losses(const char *preset) {
    dcrw::Model model = small_model(preset, 7);
    const dcrw_sizes s = model.sizes();
    const int B = 6;
    const std::size_t P = s.input;
    const std::vector<float> x = binary_images(B, P, 5);
    const std::vector<float> zeros(s.glimpses * B * s.z, 0.0f);
    const std::string name(preset);

    const std::vector<dcrw::Loss> each = model.evaluate_images(x, zeros);
    const dcrw::Loss mean = model.evaluate(x, zeros);
    expect(each.size() == static_cast<std::size_t>(B), name + ": one loss per image");
    double lx = 0, lz = 0;
    for (const dcrw::Loss &l : each) {
        lx += l.lx / B;
        lz += l.lz / B;
        expect(l.loss == l.lx + l.lz, name + ": each loss is its Lx + Lz");
    }
    expect(std::fabs(lx - mean.lx) <= 1e-6 * std::fabs(mean.lx) &&
               std::fabs(lz - mean.lz) <= 1e-6 * std::fabs(mean.lz) + 1e-9,
           name + ": the per-image losses average to evaluate()'s");
    expect(each[0].lx != each[1].lx, name + ": different images, different losses");
    // image 2 alone, with its own (zero) noise, scores what it scored in the batch
    const std::vector<float> x2(x.begin() + 2 * P, x.begin() + 3 * P);
    const std::vector<float> zeros1(s.glimpses * s.z, 0.0f);
    const dcrw::Loss alone = model.evaluate_images(x2, zeros1).at(0);
    expect(std::fabs(alone.loss - each[2].loss) <= 1e-9 * std::fabs(each[2].loss),
           name + ": an image's loss does not depend on its batch");
    try {
        model.evaluate_images(dcrw::Floats(x.data(), P - 1));
        expect(false, name + ": a partial image throws");
    } catch (const std::invalid_argument &) {
    }
}

// The message of the dcrw::Error of code @p code that @p f throws; "" if it
// throws none or one of another code (said on stderr). Anything else it
// throws goes on to main's catch.
template <class F> static std::string error_of(F &&f, int code) {
    try {
        f();
    } catch (const dcrw::Error &e) {
        if (e.code() == code) return e.what();
        std::fprintf(stderr, "expected code %d, got: %s\n", code, e.what());
    }
    return "";
}

static bool has(const std::string &s, const char *part) {
    return s.find(part) != std::string::npos;
}

// A class-conditional model: its samples follow the label, steps on labels
// learn, and the calls without labels are refused.
static void conditional() {
    dcrw::Model model = dcrw::Model::create("dcrw", 3, [](dcrw_config &c) {
        c.height = c.width = 8;
        c.glimpses = 2;
        c.dec_size = 8;
        c.z_size = 3;
        c.read_n = 5;
        c.write_n = 3;
        c.conv1 = 3;
        c.conv2 = 4;
        c.classes = 3;
    });
    expect(model.is_conditional() && !model.is_classifier() && model.num_classes() == 3,
           "conditional: K = 3");
    const std::vector<std::int32_t> labels = {0, 1, 2, 1};
    const std::vector<float> a = model.sample_labels(labels, 5);
    expect(a == model.sample_labels(labels, 5), "conditional: the same seed, the same images");
    const std::vector<std::int32_t> tail = {1};
    const std::vector<float> one = model.sample_labels(tail, 5, 3);
    const std::size_t P = model.input_size();
    bool same = true;
    for (std::size_t i = 0; i < P; i++) same = same && std::fabs(one[i] - a[3 * P + i]) < 1e-5;
    expect(same, "conditional: an image is keyed by its index, not its batch");
    std::string e = error_of([&] { model.sample(2, 1); }, DCRW_EINVAL);
    expect(has(e, "conditional"), "conditional: sampling without labels throws: " + e);
    dcrw::Trainer trainer(model);
    const std::vector<float> x = binary_images(4, P, 3);
    const dcrw::Loss first = trainer.step_labels(x, labels);
    dcrw::Loss last = first;
    for (int i = 0; i < 30; i++) last = trainer.step_labels(x, labels);
    expect(last.loss < first.loss, "conditional: steps on labels learn a batch");
}

static void classifier() {
    dcrw::Model model = small_classifier(2);
    expect(model.is_classifier() && model.num_classes() == 3, "classifier: K = 3");
    const int B = 6, K = 3;
    const std::size_t T = model.sizes().glimpses;
    const std::vector<float> x = binary_images(B, model.input_size(), 8);
    const std::vector<std::int32_t> labels = {0, 1, 2, 2, 1, 0};

    const std::vector<float> probs = model.classify(x);
    expect(probs.size() == static_cast<std::size_t>(B * K), "classifier: probs are B*K");
    bool sums = true;
    for (int b = 0; b < B; b++) {
        double sum = 0;
        for (int k = 0; k < K; k++) sum += probs[b * K + k];
        sums = sums && std::fabs(sum - 1) < 1e-5;
    }
    expect(sums, "classifier: each image's probabilities sum to 1");
    const dcrw::Classification c = model.classify_windows(x);
    expect(c.probs == probs, "classifier: classify_windows gives classify's probabilities");
    expect(c.windows.size() == T * B, "classifier: one read window per glimpse and image");
    bool sane = true;
    for (const dcrw::Window &w : c.windows)
        sane = sane && std::isfinite(w.gx) && w.delta > 0 && w.sigma2 > 0 && w.gamma > 0;
    expect(sane, "classifier: windows have positive stride, variance and intensity");

    dcrw::Trainer trainer(model, [] {
        dcrw_train_config tc = dcrw::Trainer::defaults();
        tc.learning_rate = 1e-2f;
        return tc;
    }());
    const dcrw::Loss first = trainer.backward_labels(x, labels);
    double nll = 0;
    for (int b = 0; b < B; b++) nll -= std::log(probs[b * K + labels[b]]) / B;
    expect(std::fabs(first.loss - nll) <= 1e-5 * nll,
           "classifier: the loss is the mean -log p(label) of classify()");
    expect(first.lx == first.loss && first.lz == 0, "classifier: all of the loss is lx");
    dcrw::Loss last = trainer.step_labels(x, labels);
    expect(last.loss == first.loss, "classifier: a step reports the loss before its update");
    for (int i = 0; i < 60; i++) last = trainer.step_labels(x, labels);
    expect(trainer.step_count() == 61 && last.loss < 0.5 * first.loss,
           "classifier: steps on labels learn a batch");

    // the refusals are the library's, with its messages
    std::string e = error_of([&] { trainer.step(x); }, DCRW_EINVAL);
    expect(has(e, "dcrw_trainer_step") && has(e, "labels"),
           "classifier: a step without labels throws: " + e);
    const std::vector<std::int32_t> bad = {0, 3, 1, 2, 0, 1};
    e = error_of([&] { trainer.step_labels(x, bad); }, DCRW_EINVAL);
    expect(has(e, "image 1"), "classifier: a label outside [0, K) names its image: " + e);
    e = error_of([&] { model.evaluate(x); }, DCRW_EINVAL);
    expect(has(e, "classifier"), "classifier: the generative calls refuse it: " + e);
    expect(trainer.step_count() == 61, "classifier: refused steps do not count");
    bool refused = false;
    try {
        trainer.step_labels(x, dcrw::Labels(labels.data(), 5));
    } catch (const std::invalid_argument &) {
        refused = true;
    }
    expect(refused, "classifier: one label per image, checked before the call");

    dcrw::Model gen = small_model("draw", 2);
    expect(!gen.is_classifier() && gen.num_classes() == 0, "generative: no classes");
    const std::vector<float> g = binary_images(2, gen.input_size(), 9);
    e = error_of([&] { gen.classify(g); }, DCRW_EINVAL);
    expect(has(e, "dcrw_classify") && has(e, "not a classifier"),
           "generative: classify throws the library's refusal: " + e);
    e = error_of([&] { gen.classify_windows(g); }, DCRW_EINVAL);
    expect(has(e, "not a classifier"), "generative: classify_windows too: " + e);
    dcrw::Trainer gt(gen);
    const std::vector<std::int32_t> two = {0, 1};
    e = error_of([&] { gt.step_labels(g, two); }, DCRW_EINVAL);
    expect(has(e, "takes no labels"), "generative: a step on labels throws: " + e);
}

// A data set from memory holds the images and labels given, and one from a
// path reads what was written there; a buffer of the wrong size is refused
// before the library reads it.
static void datasets(const fs::path &dir) {
    const std::vector<float> x = {0.0f, 0.25f, 0.5f, 1.0f, 0.125f, 0.75f};
    dcrw::Dataset d = dcrw::Dataset::from_memory(x, 3, 1, 1, 2, {7, 0, 3});
    expect(d.size() == 3 && d.shape() == std::vector<int>({1, 1, 2}), "from_memory: shape");
    expect(d.label(0) == 7 && d.label(2) == 3, "from_memory: labels");
    expect(d.batch({2, 0}) == std::vector<float>({0.125f, 0.75f, 0.0f, 0.25f}),
           "from_memory: images");
    bool refused = false;
    try {
        dcrw::Dataset::from_memory(x, 4, 1, 1, 2);
    } catch (const std::invalid_argument &) {
        refused = true;
    }
    expect(refused, "from_memory: 6 floats are not 4 images of 2");
    // a .npy file of two 1x3 uint8 images
    const std::string dict = "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 1, 3), }";
    std::string npy = std::string("\x93NUMPY\x01\x00", 8);
    const std::size_t hlen = (10 + dict.size() + 1 + 63) / 64 * 64 - 10;
    npy += static_cast<char>(hlen), npy += '\0';
    npy += dict + std::string(hlen - dict.size() - 1, ' ') + "\n";
    npy += std::string("\x00\xff\x33\x66\x99\xcc", 6);
    const fs::path path = dir / "x.npy";
    std::FILE *f = std::fopen(path.c_str(), "wb");
    expect(f && std::fwrite(npy.data(), 1, npy.size(), f) == npy.size() && !std::fclose(f),
           "write x.npy");
    dcrw::Dataset e = dcrw::Dataset::open(path.string());
    expect(e.size() == 2 && e.shape() == std::vector<int>({1, 1, 3}), "open: shape");
    expect(e.batch({1}) == std::vector<float>({0x66 / 255.0f, 0x99 / 255.0f, 0xcc / 255.0f}),
           "open: images");
    int code = 0;
    try {
        dcrw::Dataset::open((dir / "missing").string());
    } catch (const dcrw::Error &err) {
        code = err.code();
    }
    expect(code == DCRW_EIO, "open: a missing path is DCRW_EIO");
}

int main() {
    const fs::path dir = fs::temp_directory_path() /
                         ("dcrw-cpp-wrapper-test-" + std::to_string(std::random_device{}()));
    fs::create_directories(dir);
    try {
        trainer_outlives_model(dir);
        model_reassigned_under_trainer();
        moved_from_model_is_refused();
        glimpses_agree("dcrw", true);
        glimpses_agree("draw-noattn", false);
        per_image_losses("dcrw");
        per_image_losses("draw");
        classifier();
        conditional();
        datasets(dir);
    } catch (const std::exception &err) {
        std::fprintf(stderr, "error: %s\n", err.what());
        failures++;
    }
    fs::remove_all(dir);
    if (failures)
        std::fprintf(stderr, "%d check(s) failed\n", failures);
    else
        std::printf("ok\n");
    return failures ? 1 : 0;
}
