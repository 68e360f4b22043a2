#include "engine/engine.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <sstream>
#include <stdexcept>

#include "common/philox.h"
#include "common/tensor_view.h"
#include "engine/student_t.h"

namespace genfast {

namespace {
constexpr double kGoldenFraction = 0.61803398874989484820;  // 1/phi = phi - 1
}

struct Engine::Image {
  int64_t id = 0;
  uint64_t key = 0;
  std::vector<int64_t> timesteps;          // per sample generated so far
  std::vector<double> weights;             // per sample
  std::vector<std::vector<float>> errors;  // [K][n_k]: class k received samples 0..n_k-1
  std::vector<int64_t> alive;              // ascending class indices still in the race
  int64_t round = 0;                       // index of the current round
  int64_t round_begin = 0, round_end = 0;  // its samples [begin, end)
  std::vector<int64_t> round_classes;      // classes evaluated in this round
  int64_t issued = 0, reported = 0;        // class rows of this round handed out / reported
  int64_t evaluations = 0;
  // Statistics of the completed rounds, accumulated in sample order so that they equal a computation from
  // scratch bit for bit: weighted_sum[k] = sum_j v_j e[k, j]; weight_prefix[n] = sum_{j<n} v_j.
  std::vector<double> weighted_sum;
  std::vector<double> weight_prefix{0.0};
  // Moments of the paired differences v_j (e[k, j] - e[reference, j]) over j < diff[k].n; reset when the
  // best class (the reference) changes.
  int64_t reference = -1;
  std::vector<RunningMoments> diff;
  // The image's own adapted proposal (adapt_proposal), normalised density and CDF; empty before it adapts.
  std::vector<double> density, cdf;

  int64_t round_rows() const { return (round_end - round_begin) * static_cast<int64_t>(round_classes.size()); }
};

Engine::Engine(EngineConfig config) : config_(std::move(config)) {
  config_.validate();
  source_ = config_.source();
  rule_ = config_.pruning();
  stopping_ = config_.stopping_test();
  if (source_ != TimestepSource::Sequence) {
    const int64_t T = config_.num_train_timesteps;
    cdf_.resize(T);
    double total = 0.0;
    for (int64_t t = 0; t < T; ++t) total += config_.density[t];
    double acc = 0.0;
    base_.resize(T);
    weight_.resize(T);
    for (int64_t t = 0; t < T; ++t) {
      acc += config_.density[t];
      cdf_[t] = acc / total;
      base_[t] = config_.density[t] / total;
      weight_[t] = config_.score_weight[t] * base_[t];
    }
    // From the last positive density on the CDF is exactly 1, so no u < 1 lands on a zero-density tail.
    int64_t last = T - 1;
    while (config_.density[last] == 0.0) --last;
    std::fill(cdf_.begin() + last, cdf_.end(), 1.0);
  }
}

Engine::~Engine() = default;

std::vector<int64_t> Engine::add_images(const uint64_t* keys, int64_t n) {
  check(n >= 0, "add_images: negative count");
  std::vector<int64_t> ids(n);
  const int64_t K = config_.n_classes;
  const int64_t first_round_end =
      rule_ == PruningRule::Stages ? config_.stage_ends[0] : std::min(config_.round_size, config_.max_samples);
  for (int64_t i = 0; i < n; ++i) {
    auto img = std::make_unique<Image>();
    img->id = static_cast<int64_t>(images_.size());
    img->key = keys[i];
    img->errors.resize(K);
    img->weighted_sum.assign(K, 0.0);
    img->diff.resize(K);
    img->alive.resize(K);
    std::iota(img->alive.begin(), img->alive.end(), int64_t{0});
    start_round(*img, 0, first_round_end);
    ids[i] = img->id;
    in_flight_.push_back(img->id);
    images_.push_back(std::move(img));
  }
  return ids;
}

int64_t Engine::sample_timestep(const Image& img, int64_t j, int64_t begin, int64_t end) const {
  if (source_ == TimestepSource::Sequence) return config_.sequence[j];
  const uint64_t seed = config_.seed;
  // With antithetic pairs the timestep belongs to the pair m = j / 2 (round boundaries are even).
  const int64_t div = config_.antithetic ? 2 : 1;
  const int64_t m = j / div;
  double u;
  if (source_ == TimestepSource::Iid) {
    u = philox_uniform(philox_draw(seed, img.key, static_cast<uint32_t>(m), kWordTimestep).v[0]);
  } else if (source_ == TimestepSource::Lattice) {
    const double shift = philox_uniform(philox_draw(seed, img.key, 0, kWordShift).v[0]);
    const double step = std::fmod(static_cast<double>(m) * kGoldenFraction, 1.0);
    u = std::fmod(shift + step, 1.0);
  } else {
    // Stratified: the round's R pairs take the R strata of (0, 1) once each, rotated by a per-round shift so
    // that every sample is marginally uniform.
    const int64_t m0 = begin / div, R = (end - begin) / div;
    const double rot_u = philox_uniform(philox_draw(seed, img.key, static_cast<uint32_t>(img.round), kWordShift).v[0]);
    const int64_t rot = std::min(static_cast<int64_t>(rot_u * static_cast<double>(R)), R - 1);
    const int64_t stratum = (m - m0 + rot) % R;
    const double within = philox_uniform(philox_draw(seed, img.key, static_cast<uint32_t>(m), kWordTimestep).v[0]);
    u = (static_cast<double>(stratum) + within) / static_cast<double>(R);
  }
  const std::vector<double>& cdf = img.cdf.empty() ? cdf_ : img.cdf;
  const auto it = std::upper_bound(cdf.begin(), cdf.end(), u);
  const int64_t t = static_cast<int64_t>(it - cdf.begin());
  return std::min(t, config_.num_train_timesteps - 1);
}

void Engine::start_round(Image& img, int64_t begin, int64_t end) {
  img.round_begin = begin;
  img.round_end = end;
  img.timesteps.resize(end);
  img.weights.resize(end);
  for (int64_t j = begin; j < end; ++j) {
    const int64_t t = sample_timestep(img, j, begin, end);
    img.timesteps[j] = t;
    img.weights[j] = img.density.empty() ? config_.score_weight[t] : weight_[t] / img.density[t];
  }
  for (int64_t k : img.alive) img.errors[k].resize(end, std::numeric_limits<float>::quiet_NaN());
  img.round_classes = img.alive;
  img.issued = 0;
  img.reported = 0;
}

bool Engine::can_plan() const {
  if (pending_.size() >= kMaxOutstanding) return false;
  for (int64_t id : in_flight_) {
    const Image& img = *images_[id];
    if (img.issued < img.round_rows()) return true;
  }
  return false;
}

Plan Engine::plan(int64_t batch_size) {
  check(batch_size >= 1, "plan: batch_size must be at least 1, got " + std::to_string(batch_size));
  if (pending_.size() >= kMaxOutstanding) {
    throw std::runtime_error("plan: " + std::to_string(kMaxOutstanding) +
                             " plans await their reports; call report(errors) for the oldest first");
  }
  if (in_flight_.empty()) throw std::runtime_error("plan: no image is in flight (check done() before planning)");
  Plan p;
  p.sample_offsets.push_back(0);
  Pending pending;
  int64_t B = 0;
  for (int64_t id : in_flight_) {
    if (B >= batch_size) break;
    Image& img = *images_[id];
    const int64_t total = img.round_rows();
    if (img.issued >= total) continue;
    const int64_t C = static_cast<int64_t>(img.round_classes.size());
    const int64_t take = std::min(total - img.issued, batch_size - B);
    int64_t last_sample = -1;
    for (int64_t f = img.issued; f < img.issued + take; ++f) {
      const int64_t j = img.round_begin + f / C;
      const int64_t k = img.round_classes[f % C];
      if (j != last_sample) {
        if (last_sample >= 0) p.sample_offsets.push_back(static_cast<int64_t>(p.class_index.size()));
        p.image.push_back(img.id);
        p.key.push_back(img.key);
        p.sample.push_back(j);
        p.timestep.push_back(img.timesteps[j]);
        p.score_weight.push_back(img.weights[j]);
        last_sample = j;
      }
      p.class_index.push_back(k);
      pending.rows.push_back(RowRef{&img, j, k});
    }
    p.sample_offsets.push_back(static_cast<int64_t>(p.class_index.size()));
    img.issued += take;
    B += take;
    pending.images.push_back(&img);
  }
  if (B == 0) throw std::runtime_error("plan: every row of the images in flight awaits a report (check can_plan())");
  pending_.push_back(std::move(pending));
  return p;
}

void Engine::report(const float* errors, int64_t n) {
  if (pending_.empty()) throw std::runtime_error("report: there is no outstanding plan; call plan(batch_size) first");
  const std::vector<RowRef>& rows = pending_.front().rows;
  const int64_t B = static_cast<int64_t>(rows.size());
  check(n == B, "report: expected " + std::to_string(B) + " errors (one per class row of the oldest outstanding "
                "plan), got " + std::to_string(n));
  for (int64_t b = 0; b < B; ++b) {
    if (!std::isfinite(errors[b])) {
      const RowRef& r = rows[b];
      std::ostringstream msg;
      msg << "report: error " << b << " is " << errors[b] << " (not finite) for image id " << r.image->id << " (key "
          << r.image->key << "), sample " << r.sample << ", class " << r.cls;
      throw InputError(msg.str());
    }
  }
  for (int64_t b = 0; b < B; ++b) {
    const RowRef& r = rows[b];
    r.image->errors[r.cls][r.sample] = errors[b];
    r.image->reported += 1;
    r.image->evaluations += 1;
  }
  const Pending oldest = std::move(pending_.front());
  pending_.pop_front();
  bool any_finished = false;
  for (Image* img : oldest.images) {
    if (img->reported == img->round_rows() && end_round(*img)) {
      finish(*img);
      any_finished = true;
    }
  }
  if (any_finished) {
    in_flight_.erase(std::remove_if(in_flight_.begin(), in_flight_.end(), [this](int64_t id) { return !images_[id]; }),
                     in_flight_.end());
  }
}

double Engine::score(const Image& img, int64_t k) const {
  return img.weighted_sum[k] / img.weight_prefix[img.errors[k].size()];
}

void Engine::eliminate(Image& img) const {
  const int64_t n = img.round_end;
  int64_t best = img.alive[0];
  for (int64_t k : img.alive) {
    if (score(img, k) < score(img, best)) best = k;  // the first minimum: ties go to the lower index
  }
  if (best != img.reference) {
    img.reference = best;
    std::fill(img.diff.begin(), img.diff.end(), RunningMoments{});
  }
  const std::vector<float>& eb = img.errors[best];
  std::vector<int64_t> kept;
  for (int64_t k : img.alive) {
    if (k != best) {
      const std::vector<float>& ek = img.errors[k];
      RunningMoments& m = img.diff[k];
      for (int64_t j = m.n; j < n; ++j) {
        m.add(img.weights[j] * (static_cast<double>(ek[j]) - static_cast<double>(eb[j])));
      }
      const bool rejects = stopping_ == StoppingTest::TTest
                               ? paired_t_rejects(m, config_.p_value)
                               : mixture_boundary_rejects(m, config_.p_value, config_.boundary_samples);
      if (rejects) continue;
    }
    kept.push_back(k);
  }
  img.alive.swap(kept);
}

void Engine::adapt_proposal(Image& img) const {
  // The two best alive classes by score, and the mean square of their unweighted paired difference per bin.
  int64_t best = -1, second = -1;
  for (int64_t k : img.alive) {
    if (best < 0 || score(img, k) < score(img, best)) {
      second = best;
      best = k;
    } else if (second < 0 || score(img, k) < score(img, second)) {
      second = k;
    }
  }
  const int64_t T = config_.num_train_timesteps, B = config_.proposal_bins, n = img.round_end;
  std::vector<double> square(B, 0.0);
  std::vector<int64_t> count(B, 0);
  for (int64_t j = 0; j < n; ++j) {
    const int64_t b = img.timesteps[j] * B / T;
    const double d = static_cast<double>(img.errors[second][j]) - static_cast<double>(img.errors[best][j]);
    square[b] += d * d;
    count[b] += 1;
  }
  // A bin with fewer than two samples gets the largest rms seen, so that it keeps being explored.
  std::vector<double> rms(B, 0.0);
  double largest = 0.0;
  for (int64_t b = 0; b < B; ++b) {
    if (count[b] >= 2) largest = std::max(largest, rms[b] = std::sqrt(square[b] / static_cast<double>(count[b])));
  }
  if (!(largest > 0.0)) return;  // no information yet: keep the current proposal
  std::vector<double> q(T);
  double total = 0.0;
  for (int64_t t = 0; t < T; ++t) {
    const int64_t b = t * B / T;
    q[t] = weight_[t] * (count[b] >= 2 ? rms[b] : largest);
    total += q[t];
  }
  if (!(total > 0.0)) return;
  img.density.resize(T);
  img.cdf.resize(T);
  double acc = 0.0;
  for (int64_t t = 0; t < T; ++t) {
    img.density[t] = config_.proposal_floor * base_[t] + (1.0 - config_.proposal_floor) * q[t] / total;
    acc += img.density[t];
    img.cdf[t] = acc;
  }
  for (int64_t t = 0; t < T; ++t) img.cdf[t] /= acc;
  int64_t last = T - 1;
  while (img.density[last] == 0.0) --last;
  std::fill(img.cdf.begin() + last, img.cdf.end(), 1.0);
}

bool Engine::end_round(Image& img) {
  const int64_t n = img.round_end;
  for (int64_t j = img.round_begin; j < n; ++j) img.weight_prefix.push_back(img.weight_prefix.back() + img.weights[j]);
  for (int64_t k : img.round_classes) {
    for (int64_t j = img.round_begin; j < n; ++j) {
      img.weighted_sum[k] += img.weights[j] * static_cast<double>(img.errors[k][j]);
    }
  }
  if (rule_ == PruningRule::Stages) {
    const size_t keep = static_cast<size_t>(std::min<int64_t>(config_.stage_keep[img.round], img.alive.size()));
    std::vector<std::pair<double, int64_t>> ranked;
    for (int64_t k : img.alive) ranked.emplace_back(score(img, k), k);
    std::sort(ranked.begin(), ranked.end());  // by score, ties to the lower class index
    img.alive.clear();
    for (size_t i = 0; i < keep; ++i) img.alive.push_back(ranked[i].second);
    std::sort(img.alive.begin(), img.alive.end());
    const bool last = img.round + 1 == static_cast<int64_t>(config_.stage_ends.size());
    if (last || img.alive.size() == 1) return true;
    img.round += 1;
    start_round(img, n, config_.stage_ends[img.round]);
    return false;
  }
  if (n >= config_.min_samples && img.alive.size() > 1) eliminate(img);
  if (img.alive.size() == 1 || n >= config_.max_samples) return true;
  if (config_.adapt_proposal && n >= config_.min_samples) adapt_proposal(img);
  img.round += 1;
  start_round(img, n, std::min(n + config_.round_size, config_.max_samples));
  return false;
}

void Engine::finish(Image& img) {
  const int64_t K = config_.n_classes;
  const int64_t n = img.round_end;
  ImageResult r;
  r.id = img.id;
  r.key = img.key;
  r.scores.resize(K);
  r.n_samples.resize(K);
  r.errors.assign(static_cast<size_t>(K * n), std::numeric_limits<float>::quiet_NaN());
  for (int64_t k = 0; k < K; ++k) {
    r.scores[k] = score(img, k);
    r.n_samples[k] = static_cast<int64_t>(img.errors[k].size());
    std::copy(img.errors[k].begin(), img.errors[k].end(), r.errors.begin() + k * n);
  }
  r.prediction = img.alive[0];
  for (int64_t k : img.alive) {
    if (r.scores[k] < r.scores[r.prediction]) r.prediction = k;
  }
  r.evaluations = img.evaluations;
  r.timesteps = std::move(img.timesteps);
  r.weights = std::move(img.weights);
  finished_.push_back(std::move(r));
  images_[img.id].reset();
}

std::vector<ImageResult> Engine::take_finished() {
  std::vector<ImageResult> out;
  out.swap(finished_);
  return out;
}

}  // namespace genfast
