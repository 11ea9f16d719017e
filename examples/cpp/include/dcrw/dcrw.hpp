// A header-only C++17 wrapper of <dcrw/dcrw.h>: RAII handles, exceptions
// carrying dcrw_last_error(), std::vector in and out.
//
//   #include <dcrw/dcrw.hpp>
//   auto m = dcrw::Model::create("dcrw", 1, [](dcrw_config &c) { c.glimpses = 4; });
//   dcrw::Trainer t(m);
//   dcrw::Loss l = t.step(batch);          // batch: B*P floats
//   std::vector<float> img = m.sample(8, 42);
//
// The attention classifier (preset "draw-classify") trains on labels:
//   dcrw::Loss l = t.step_labels(batch, labels);   // labels: B int32 in [0, K)
//   std::vector<float> p = m.classify(batch);      // B*K probabilities
//
// Every class is move-only and frees its handle in its destructor. A Trainer
// shares the ownership of its Model's handle: the C model lives until both
// the Model and every Trainer of it are gone, so a Trainer may outlive the
// Model object it was made from, and the C trainer is always destroyed
// before its model, as the C API requires. Sharing changes nothing about
// threads: a Trainer and its Model belong to one thread at a time. Errors of
// the library throw dcrw::Error; sizes the wrapper can check before the call
// (a batch that is not a whole number of images, a noise buffer of the wrong
// length) throw std::invalid_argument.
#ifndef DCRW_HPP
#define DCRW_HPP

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <dcrw/dcrw.h>

namespace dcrw {

/// A failed libdcrw call: code() is the DCRW_E* value, what() names the
/// function and holds dcrw_last_error() and dcrw_strerror(code()).
class Error : public std::runtime_error {
  public:
    Error(int code, const std::string &what) : std::runtime_error(what), code_(code) {}
    int code() const noexcept { return code_; }
    const char *name() const noexcept { return dcrw_strerror(code_); }

  private:
    int code_;
};

/// Throw dcrw::Error if @p rc is a DCRW_E* code.
inline int check(int rc, const char *function) {
    if (rc < 0)
        throw Error(rc, std::string(function) + ": " + dcrw_last_error() + " [" +
                            dcrw_strerror(rc) + "]");
    return rc;
}

/// A non-owning view of contiguous floats (std::span for C++17).
template <class T> class Span {
  public:
    Span() noexcept = default;
    Span(T *data, std::size_t size) noexcept : data_(data), size_(size) {}
    template <class V, class = std::enable_if_t<
                           std::is_convertible_v<decltype(std::declval<V &>().data()), T *>>>
    Span(V &v) noexcept : data_(v.data()), size_(v.size()) {}
    T *data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    T *begin() const noexcept { return data_; }
    T *end() const noexcept { return data_ + size_; }
    T &operator[](std::size_t i) const noexcept { return data_[i]; }

  private:
    T *data_ = nullptr;
    std::size_t size_ = 0;
};

using Floats = Span<const float>;
/// The class of each image of a batch, for the classifier.
using Labels = Span<const std::int32_t>;

/// Batch means in nats per image.
struct Loss {
    double loss, lx, lz;
};

/// z, mu and log sigma of every glimpse, each T*B*Z floats (time-major).
struct Encoded {
    std::vector<float> z, mu, logsigma;
};

/// Where one glimpse looked: an N x N grid of Gaussians centred on (gx, gy)
/// in 1-based pixel coordinates, delta pixels apart (the grid spans
/// gx +- delta*(N-1)/2), of variance sigma2, weighted by gamma.
struct Window {
    float gx, gy, delta, sigma2, gamma;
};

/// The generative pass glimpse by glimpse: images B*P, canvases T*B*P
/// (sigma(c_t) after every glimpse, time-major) and the write window of
/// every glimpse and image, T*B (empty without write attention).
struct Decoded {
    std::vector<float> images, canvases;
    std::vector<Window> write_windows;
};

/// A reconstruction glimpse by glimpse: as Decoded, plus the read window of
/// every glimpse and image, T*B (empty without read attention).
struct Reconstruction {
    std::vector<float> images, canvases;
    std::vector<Window> read_windows, write_windows;
};

/// What the classifier made of a batch: probs B*K (row b: image b's class
/// probabilities, summing to 1) and the read window of every glimpse and
/// image, T*B (time-major).
struct Classification {
    std::vector<float> probs;
    std::vector<Window> windows;
};

inline std::string version() {
    return dcrw_version_string();
}

/// The defaults of a preset by name ("draw", "draw-noattn", "dcrw", "dcrw-noread": MNIST's;
/// "draw-classify": the classifier's 100x100, 10 classes).
inline dcrw_config preset(const char *name) {
    dcrw_preset p;
    check(dcrw_preset_from_name(name, &p), "dcrw_preset_from_name");
    dcrw_config cfg;
    check(dcrw_config_preset(&cfg, p), "dcrw_config_preset");
    return cfg;
}

class Trainer;

/// A model; move-only. Its C handle is shared with the Trainers made from it.
class Model {
  public:
    /// A new model of @p cfg; dcrw::Error(DCRW_ECONFIG) names a bad field.
    static Model create(const dcrw_config &cfg, std::uint64_t seed = 0) {
        dcrw_model *m = nullptr;
        check(dcrw_model_create(&m, &cfg, seed), "dcrw_model_create");
        return Model(m);
    }
    /// A new model of a preset, changed by @p tweak(dcrw_config &) first.
    template <class F> static Model create(const char *name, std::uint64_t seed, F &&tweak) {
        dcrw_config cfg = preset(name);
        tweak(cfg);
        return create(cfg, seed);
    }
    static Model create(const char *name, std::uint64_t seed = 0) {
        return create(preset(name), seed);
    }
    static Model load(const std::string &path) {
        dcrw_model *m = nullptr;
        check(dcrw_model_load(&m, path.c_str()), "dcrw_model_load");
        return Model(m);
    }

    Model(Model &&) noexcept = default;
    Model &operator=(Model &&) noexcept = default;
    Model(const Model &) = delete;
    Model &operator=(const Model &) = delete;
    ~Model() = default;

    /// The C handle; nullptr once moved from.
    dcrw_model *get() const noexcept { return m_.get(); }

    void save(const std::string &path) const {
        check(dcrw_model_save(get(), path.c_str()), "dcrw_model_save");
    }

    dcrw_config config() const {
        dcrw_config c;
        c.size = sizeof c;
        check(dcrw_model_config(get(), &c), "dcrw_model_config");
        return c;
    }
    dcrw_sizes sizes() const {
        dcrw_sizes s;
        s.size = sizeof s;
        check(dcrw_model_sizes(get(), &s), "dcrw_model_sizes");
        return s;
    }
    std::size_t input_size() const noexcept { return dcrw_model_input_size(get()); }
    /// Whether this is the attention classifier (MODEL.md §9): classify() and
    /// Trainer::step_labels() take it, the generative operations refuse it.
    bool is_classifier() const { return config().classify != 0; }
    /// Whether this is a class-conditional generative model (MODEL.md §10):
    /// sample_labels() and Trainer::step_labels() take it.
    bool is_conditional() const {
        const dcrw_config c = config();
        return c.classes != 0 && !c.classify;
    }
    /// K: the classifier's classes, or a conditional model's; 0 otherwise.
    int num_classes() const { return config().classes; }
    /// DCRW_PRECISION_FLOAT32 or DCRW_PRECISION_BF16 (the large products in
    /// bfloat16, on CPUs with AVX-512 BF16: dcrw_precision_supported()).
    int precision() const noexcept { return dcrw_model_precision(get()); }
    void set_precision(int p) {
        check(dcrw_model_set_precision(get(), p), "dcrw_model_set_precision");
    }

    std::vector<std::string> param_names() const {
        std::vector<std::string> names;
        for (std::size_t i = 0; i < dcrw_model_param_count(get()); i++) {
            const char *name;
            check(dcrw_model_param(get(), i, &name, nullptr, nullptr, nullptr), "dcrw_model_param");
            names.emplace_back(name);
        }
        return names;
    }
    /// The shape of tensor @p i (MODEL.md §7 order).
    std::vector<std::int64_t> param_shape(std::size_t i) const {
        int ndim;
        const std::int64_t *shape;
        check(dcrw_model_param(get(), i, nullptr, &ndim, &shape, nullptr), "dcrw_model_param");
        return std::vector<std::int64_t>(shape, shape + ndim);
    }
    /// A writable view of tensor @p name, valid while this Model or a Trainer of it exists.
    Span<float> param(const std::string &name) {
        float *d;
        std::size_t n;
        check(dcrw_model_find_param(get(), name.c_str(), &d, &n), "dcrw_model_find_param");
        return {d, n};
    }
    /// All parameters, one flat writable view.
    Span<float> params() {
        std::size_t n = 0;
        float *d = dcrw_model_params(get(), &n);
        return {d, n};
    }
    Span<const float> params() const {
        std::size_t n = 0;
        const float *d = dcrw_model_params(get(), &n);
        return {d, n};
    }

    /// @p n images (Bernoulli means, n*P floats) drawn from @p seed.
    std::vector<float> sample(int n, std::uint64_t seed) const {
        if (n < 1) throw std::invalid_argument("dcrw::Model::sample: n must be >= 1");
        std::vector<float> out(static_cast<std::size_t>(n) * input_size());
        check(dcrw_decode(get(), n, nullptr, seed, out.data(), nullptr), "dcrw_decode");
        return out;
    }
    /// A conditional model's images of the classes @p labels (one per image,
    /// in [0, K)), drawn from @p seed; image b keyed by @p first + b.
    std::vector<float> sample_labels(Labels labels, std::uint64_t seed,
                                     std::int64_t first = 0) const {
        if (labels.empty()) throw std::invalid_argument("dcrw::Model::sample_labels: no labels");
        const int B = static_cast<int>(labels.size());
        std::vector<float> out(static_cast<std::size_t>(B) * input_size());
        check(dcrw_decode_labels(get(), B, labels.data(), nullptr, seed, first, out.data(), nullptr,
                                 nullptr),
              "dcrw_decode_labels");
        return out;
    }
    /// The images of latents @p z (T*B*Z floats).
    std::vector<float> decode(Floats z) const {
        const dcrw_sizes s = sizes();
        const int B = batch_of(z.size(), s.glimpses * s.z, "z");
        std::vector<float> out(static_cast<std::size_t>(B) * s.input);
        check(dcrw_decode(get(), B, z.data(), 0, out.data(), nullptr), "dcrw_decode");
        return out;
    }
    /// The inference pass on images @p x (B*P floats); @p eps T*B*Z or empty.
    Encoded encode(Floats x, Floats eps = {}) const {
        const dcrw_sizes s = sizes();
        const int B = batch_of(x.size(), s.input, "x");
        const float *e = noise(eps, s, B);
        const std::size_t n = s.glimpses * static_cast<std::size_t>(B) * s.z;
        Encoded out{std::vector<float>(n), std::vector<float>(n), std::vector<float>(n)};
        check(dcrw_encode(get(), B, x.data(), e, out.z.data(), out.mu.data(), out.logsigma.data()),
              "dcrw_encode");
        return out;
    }
    std::vector<float> reconstruct(Floats x, Floats eps = {}) const {
        const dcrw_sizes s = sizes();
        const int B = batch_of(x.size(), s.input, "x");
        std::vector<float> out(x.size());
        check(dcrw_reconstruct(get(), B, x.data(), noise(eps, s, B), out.data(), nullptr),
              "dcrw_reconstruct");
        return out;
    }
    /// @p n images from @p seed, or the images of latents @p z (T*B*Z
    /// floats), glimpse by glimpse.
    Decoded sample_glimpses(int n, std::uint64_t seed) const {
        if (n < 1) throw std::invalid_argument("dcrw::Model::sample_glimpses: n must be >= 1");
        return decode_glimpses(n, nullptr, seed);
    }
    Decoded decode_glimpses(Floats z) const {
        const dcrw_sizes s = sizes();
        return decode_glimpses(batch_of(z.size(), s.glimpses * s.z, "z"), z.data(), 0);
    }
    /// The reconstruction of @p x (B*P floats) glimpse by glimpse; @p eps T*B*Z or empty.
    Reconstruction reconstruct_glimpses(Floats x, Floats eps = {}) const {
        const dcrw_sizes s = sizes();
        const dcrw_config c = config();
        const int B = batch_of(x.size(), s.input, "x");
        const std::size_t TB = s.glimpses * static_cast<std::size_t>(B);
        Reconstruction out{std::vector<float>(x.size()), std::vector<float>(TB * s.input), {}, {}};
        std::vector<float> rw(c.read_attention ? TB * 5 : 0), ww(c.write_attention ? TB * 5 : 0);
        check(dcrw_reconstruct_windows(get(), B, x.data(), noise(eps, s, B), out.images.data(),
                                       out.canvases.data(), rw.empty() ? nullptr : rw.data(),
                                       ww.empty() ? nullptr : ww.data()),
              "dcrw_reconstruct_windows");
        out.read_windows = windows(rw);
        out.write_windows = windows(ww);
        return out;
    }
    Loss evaluate(Floats x, Floats eps = {}) const {
        const dcrw_sizes s = sizes();
        const int B = batch_of(x.size(), s.input, "x");
        dcrw_loss l;
        check(dcrw_evaluate(get(), B, x.data(), noise(eps, s, B), &l), "dcrw_evaluate");
        return {l.loss, l.lx, l.lz};
    }
    /// The loss of every image of @p x (B*P floats), B entries; @p eps T*B*Z or empty.
    std::vector<Loss> evaluate_images(Floats x, Floats eps = {}) const {
        const dcrw_sizes s = sizes();
        const int B = batch_of(x.size(), s.input, "x");
        std::vector<double> lx(static_cast<std::size_t>(B)), lz(static_cast<std::size_t>(B));
        check(dcrw_evaluate_images(get(), B, x.data(), noise(eps, s, B), lx.data(), lz.data()),
              "dcrw_evaluate_images");
        std::vector<Loss> out(static_cast<std::size_t>(B));
        for (std::size_t b = 0; b < out.size(); b++) out[b] = {lx[b] + lz[b], lx[b], lz[b]};
        return out;
    }
    /// The class probabilities of images @p x (B*P floats), B*K floats;
    /// dcrw::Error(DCRW_EINVAL) for a generative model.
    std::vector<float> classify(Floats x) const {
        const int B = batch_of(x.size(), input_size(), "x");
        std::vector<float> probs(static_cast<std::size_t>(B) *
                                 static_cast<std::size_t>(num_classes()));
        float none;
        check(dcrw_classify(get(), B, x.data(), out_or(probs, &none)), "dcrw_classify");
        return probs;
    }
    /// classify() and the read window of every glimpse.
    Classification classify_windows(Floats x) const {
        const dcrw_sizes s = sizes();
        const int B = batch_of(x.size(), s.input, "x");
        std::vector<float> probs(static_cast<std::size_t>(B) *
                                 static_cast<std::size_t>(num_classes()));
        std::vector<float> w(s.glimpses * static_cast<std::size_t>(B) * 5);
        float none;
        check(dcrw_classify_windows(get(), B, x.data(), out_or(probs, &none), w.data()),
              "dcrw_classify_windows");
        return {std::move(probs), windows(w)};
    }
    /// The read of images @p x and @p xhat (B*P each) placed by @p h_dec (B*D; empty without read
    /// attention).
    std::vector<float> read(Floats x, Floats xhat, Floats h_dec = {}) const {
        const dcrw_sizes s = sizes();
        const int B = batch_of(x.size(), s.input, "x");
        if (xhat.size() != x.size())
            throw std::invalid_argument("dcrw::Model::read: xhat differs in size from x");
        if (!h_dec.empty() && h_dec.size() != static_cast<std::size_t>(B) * s.dec)
            throw std::invalid_argument("dcrw::Model::read: h_dec must hold B*D floats");
        std::vector<float> r(static_cast<std::size_t>(B) * s.read);
        check(dcrw_read(get(), B, x.data(), xhat.data(), h_dec.empty() ? nullptr : h_dec.data(),
                        r.data()),
              "dcrw_read");
        return r;
    }
    std::vector<float> write(Floats h_dec) const {
        const dcrw_sizes s = sizes();
        const int B = batch_of(h_dec.size(), s.dec, "h_dec");
        std::vector<float> delta(static_cast<std::size_t>(B) * s.input);
        check(dcrw_write(get(), B, h_dec.data(), delta.data()), "dcrw_write");
        return delta;
    }

  private:
    friend class Trainer;
    // the shared_ptr frees @p m itself if its control block cannot be allocated
    explicit Model(dcrw_model *m) : m_(m, dcrw_model_destroy) {}

    Decoded decode_glimpses(int B, const float *z, std::uint64_t seed) const {
        const dcrw_sizes s = sizes();
        const std::size_t TB = s.glimpses * static_cast<std::size_t>(B);
        Decoded out{std::vector<float>(static_cast<std::size_t>(B) * s.input),
                    std::vector<float>(TB * s.input),
                    {}};
        std::vector<float> ww(config().write_attention ? TB * 5 : 0);
        check(dcrw_decode_windows(get(), B, z, seed, out.images.data(), out.canvases.data(),
                                  ww.empty() ? nullptr : ww.data()),
              "dcrw_decode_windows");
        out.write_windows = windows(ww);
        return out;
    }
    static std::vector<Window> windows(const std::vector<float> &w) {
        std::vector<Window> out(w.size() / 5);
        for (std::size_t i = 0; i < out.size(); i++)
            out[i] = {w[5 * i], w[5 * i + 1], w[5 * i + 2], w[5 * i + 3], w[5 * i + 4]};
        return out;
    }

    // A generative model has K = 0 and so an empty probs: a buffer that is
    // not NULL lets the library refuse the model with its own message ("not
    // a classifier") rather than for a NULL probs. It writes nothing then.
    static float *out_or(std::vector<float> &v, float *none) { return v.empty() ? none : v.data(); }

    static int batch_of(std::size_t n, std::size_t per, const char *what) {
        if (per == 0 || n == 0 || n % per != 0 || n / per > 0x7fffffff)
            throw std::invalid_argument(
                std::string("dcrw: ") + what + " must hold a whole number (>= 1) of " +
                std::to_string(per) + "-float rows, has " + std::to_string(n));
        return static_cast<int>(n / per);
    }
    static const float *noise(Floats eps, const dcrw_sizes &s, int B) {
        if (eps.empty()) return nullptr;
        if (eps.size() != s.glimpses * static_cast<std::size_t>(B) * s.z)
            throw std::invalid_argument(
                "dcrw: eps must hold T*B*Z = " +
                std::to_string(s.glimpses * static_cast<std::size_t>(B) * s.z) + " floats, has " +
                std::to_string(eps.size()));
        return eps.data();
    }

    std::shared_ptr<dcrw_model> m_;
};

/// Adam training of one Model. The Trainer keeps the C model alive, so it
/// may outlive the Model object; it changes the parameters that Model (and
/// any view of them) sees.
class Trainer {
  public:
    static dcrw_train_config defaults() {
        dcrw_train_config tc;
        check(dcrw_train_config_default(&tc), "dcrw_train_config_default");
        return tc;
    }
    explicit Trainer(Model &m) : Trainer(m, defaults()) {}
    /// dcrw::Error(DCRW_EINVAL) for a moved-from Model or a bad field of @p tc.
    Trainer(Model &m, const dcrw_train_config &tc) : m_(m.m_) {
        check(dcrw_trainer_create(&t_, m_.get(), &tc), "dcrw_trainer_create");
    }
    Trainer(Trainer &&o) noexcept : m_(std::move(o.m_)), t_(std::exchange(o.t_, nullptr)) {}
    // the old C trainer goes before the reference to its model
    Trainer &operator=(Trainer &&o) noexcept {
        if (this != &o) {
            dcrw_trainer_destroy(t_);
            t_ = std::exchange(o.t_, nullptr);
            m_ = std::move(o.m_);
        }
        return *this;
    }
    Trainer(const Trainer &) = delete;
    Trainer &operator=(const Trainer &) = delete;
    // the C trainer first; m_, released after this body, may free the model
    ~Trainer() { dcrw_trainer_destroy(t_); }

    dcrw_trainer *get() const noexcept { return t_; }

    /// Forward and backward on @p x (B*P floats); eps T*B*Z or empty.
    Loss backward(Floats x, Floats eps = {}) {
        return pass(dcrw_trainer_backward, "dcrw_trainer_backward", x, eps);
    }
    void apply() { check(dcrw_trainer_apply(t_), "dcrw_trainer_apply"); }
    Loss step(Floats x, Floats eps = {}) {
        return pass(dcrw_trainer_step, "dcrw_trainer_step", x, eps);
    }
    /// backward() of the classifier: the gradients of the batch mean of
    /// -log p(label | x) for images @p x (B*P floats) and their classes
    /// @p labels (B, each in [0, K)). The Loss has lx = loss and lz = 0.
    Loss backward_labels(Floats x, Labels labels, Floats eps = {}) {
        return labelled(dcrw_trainer_backward_labels, "dcrw_trainer_backward_labels", x, labels,
                        eps);
    }
    Loss step_labels(Floats x, Labels labels, Floats eps = {}) {
        return labelled(dcrw_trainer_step_labels, "dcrw_trainer_step_labels", x, labels, eps);
    }
    std::uint64_t step_count() const noexcept { return dcrw_trainer_step_count(t_); }
    /// The Adam step size; set it between steps for a schedule.
    float learning_rate() const noexcept { return dcrw_trainer_learning_rate(t_); }
    /// The weight of the KL term in the gradient (KL warm-up); the losses
    /// reported stay the bound.
    float kl_weight() const noexcept { return dcrw_trainer_kl_weight(t_); }
    void set_kl_weight(float w) {
        check(dcrw_trainer_set_kl_weight(t_, w), "dcrw_trainer_set_kl_weight");
    }
    void set_learning_rate(float lr) {
        check(dcrw_trainer_set_learning_rate(t_, lr), "dcrw_trainer_set_learning_rate");
    }
    /// All gradients, laid out like Model::params().
    Span<float> grads() {
        std::size_t n = 0;
        float *d = dcrw_trainer_grads(t_, &n);
        return {d, n};
    }
    Span<float> grad(const std::string &name) {
        float *d;
        std::size_t n;
        check(dcrw_trainer_find_grad(t_, name.c_str(), &d, &n), "dcrw_trainer_find_grad");
        return {d, n};
    }
    void save(const std::string &path) const {
        check(dcrw_trainer_save(t_, path.c_str()), "dcrw_trainer_save");
    }
    void resume(const std::string &path) {
        check(dcrw_trainer_resume(t_, path.c_str()), "dcrw_trainer_resume");
    }

  private:
    int batch(Floats x, Floats eps) const {
        dcrw_sizes s;
        s.size = sizeof s;
        check(dcrw_model_sizes(m_.get(), &s), "dcrw_model_sizes");
        const int B = Model::batch_of(x.size(), s.input, "x");
        Model::noise(eps, s, B);
        return B;
    }

    // backward or step (the same arguments) on a batch of x
    Loss pass(int (*run)(dcrw_trainer *, int, const float *, const float *, dcrw_loss *),
              const char *what, Floats x, Floats eps) {
        dcrw_loss l;
        const int B = batch(x, eps);
        check(run(t_, B, x.data(), eps.empty() ? nullptr : eps.data(), &l), what);
        return {l.loss, l.lx, l.lz};
    }

    // backward_labels or step_labels on a batch of x (eps: a conditional
    // model's noise, or empty); a label outside [0, K) is the library's to
    // refuse (its message names the image)
    Loss labelled(int (*run)(dcrw_trainer *, int, const float *, const std::int32_t *,
                             const float *, dcrw_loss *),
                  const char *what, Floats x, Labels labels, Floats eps) {
        const int B = batch(x, eps);
        if (labels.size() != static_cast<std::size_t>(B))
            throw std::invalid_argument(
                std::string("dcrw: labels must hold one class per image (") + std::to_string(B) +
                "), has " + std::to_string(labels.size()));
        dcrw_loss l;
        check(run(t_, B, x.data(), labels.data(), eps.empty() ? nullptr : eps.data(), &l), what);
        return {l.loss, l.lx, l.lz};
    }

    std::shared_ptr<dcrw_model> m_;
    dcrw_trainer *t_ = nullptr;
};

/// Images read from IDX files, read-only and shareable between threads.
class Dataset {
  public:
    /// @p labels_path may be empty for a data set without labels.
    static Dataset load_idx(const std::string &images_path, const std::string &labels_path = "") {
        dcrw_dataset *d = nullptr;
        check(dcrw_dataset_load_idx(&d, images_path.c_str(),
                                    labels_path.empty() ? nullptr : labels_path.c_str()),
              "dcrw_dataset_load_idx");
        return Dataset(d);
    }
    /// The data set at @p path in any format dcrw_dataset_open() reads; @p split is
    /// DCRW_SPLIT_TRAIN or DCRW_SPLIT_TEST.
    static Dataset open(const std::string &path, int split = DCRW_SPLIT_TRAIN) {
        dcrw_dataset *d = nullptr;
        check(dcrw_dataset_open(&d, path.c_str(), split), "dcrw_dataset_open");
        return Dataset(d);
    }
    /// A copy of @p count images C×H×W of floats in [0, 1], channel-major, with
    /// @p labels (empty, or one per image).
    static Dataset from_memory(Span<const float> images, std::size_t count, int channels,
                               int height, int width,
                               const std::vector<std::int32_t> &labels = {}) {
        // beyond the library's limits it refuses the shape before it reads anything
        if (channels >= 1 && channels <= 64 && height >= 1 && height <= 4096 && width >= 1 &&
            width <= 4096) {
            const std::size_t per = static_cast<std::size_t>(channels) *
                                    static_cast<std::size_t>(height) *
                                    static_cast<std::size_t>(width);
            if (count == 0 || images.size() % per != 0 || images.size() / per != count)
                throw std::invalid_argument(
                    "dcrw::Dataset::from_memory: images must hold count*C*H*W floats");
        }
        if (!labels.empty() && labels.size() != count)
            throw std::invalid_argument("dcrw::Dataset::from_memory: one label per image, or none");
        dcrw_dataset *d = nullptr;
        check(dcrw_dataset_from_memory(&d, images.data(), DCRW_DTYPE_F32, count, channels, height,
                                       width, labels.empty() ? nullptr : labels.data()),
              "dcrw_dataset_from_memory");
        return Dataset(d);
    }
    Dataset(Dataset &&o) noexcept : d_(std::exchange(o.d_, nullptr)) {}
    Dataset &operator=(Dataset &&o) noexcept {
        if (this != &o) {
            dcrw_dataset_destroy(d_);
            d_ = std::exchange(o.d_, nullptr);
        }
        return *this;
    }
    Dataset(const Dataset &) = delete;
    Dataset &operator=(const Dataset &) = delete;
    ~Dataset() { dcrw_dataset_destroy(d_); }

    dcrw_dataset *get() const noexcept { return d_; }
    std::size_t size() const noexcept { return dcrw_dataset_count(d_); }
    /// channels, height, width
    std::vector<int> shape() const {
        int c, h, w;
        check(dcrw_dataset_shape(d_, &c, &h, &w), "dcrw_dataset_shape");
        return {c, h, w};
    }
    int label(std::size_t i) const noexcept { return dcrw_dataset_label(d_, i); }
    /// Images @p indices as indices.size()*P floats; binarize is DCRW_BINARIZE_*.
    std::vector<float> batch(const std::vector<std::size_t> &indices,
                             int binarize = DCRW_BINARIZE_NONE, std::uint64_t seed = 0) const {
        if (indices.empty() || indices.size() > 0x7fffffff)
            throw std::invalid_argument("dcrw::Dataset::batch: need 1 to 2^31-1 indices");
        const std::vector<int> s = shape();
        std::vector<float> x(indices.size() * static_cast<std::size_t>(s[0]) *
                             static_cast<std::size_t>(s[1]) * static_cast<std::size_t>(s[2]));
        check(dcrw_dataset_batch(d_, indices.data(), static_cast<int>(indices.size()), binarize,
                                 seed, x.data()),
              "dcrw_dataset_batch");
        return x;
    }

  private:
    explicit Dataset(dcrw_dataset *d) noexcept : d_(d) {}
    dcrw_dataset *d_ = nullptr;
};

} // namespace dcrw

#endif // DCRW_HPP
