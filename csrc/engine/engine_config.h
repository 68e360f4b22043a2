// The plain configuration a method (genfast/engine/methods.py) hands to the engine: where timesteps come
// from, the score weight of each timestep, and the pruning rule. Validated once, in full, by validate().
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace genfast {

enum class TimestepSource { Sequence, Iid, Lattice, Stratified };
enum class PruningRule { Stages, Elimination };
enum class StoppingTest { TTest, ConfidenceSequence };

struct EngineConfig {
  int64_t n_classes = 0;
  int64_t num_train_timesteps = 0;
  uint64_t seed = 0;
  // Samples 2m and 2m+1 are an antithetic noise pair and share one timestep.
  bool antithetic = false;

  // "sequence": t_j = sequence[j]; "iid" / "lattice" / "stratified": t_j = inverse CDF of `density` at a
  // uniform u that is independent per sample / a shifted golden-ratio lattice / stratified within each round.
  std::string timesteps = "sequence";
  std::vector<int64_t> sequence;
  std::vector<double> density;       // [T], unnormalised, for the sampled sources
  std::vector<double> score_weight;  // [T]: v(t) = w(t) / p(t), the weight of a sample in the score
  // With adapt_proposal (sampled sources, elimination only), each image's later rounds draw t from
  // floor * p(t) + (1 - floor) * q(t), q(t) proportional to w(t) times the rms paired difference between its two
  // best classes in t's bin (proposal_bins equal bins), from its own errors so far; a sample's weight is then
  // w(t) / (the density it was drawn from).
  bool adapt_proposal = false;
  int64_t proposal_bins = 10;
  double proposal_floor = 0.25;

  // "stages": round s ends when the image has stage_ends[s] samples, then the stage_keep[s] classes with the
  // lowest score survive (capped at the number alive). "elimination": rounds of round_size samples; from
  // min_samples on, classes whose paired difference to the best is significant (p < p_value) are dropped;
  // at most max_samples samples. `stopping` is the test: "t-test" (a paired one-sided t-test per look) or
  // "confidence-sequence" (the normal-mixture boundary at level p_value per pair, valid over all looks,
  // tightest at boundary_samples).
  std::string rule = "stages";
  std::vector<int64_t> stage_ends;
  std::vector<int64_t> stage_keep;
  int64_t round_size = 1;
  int64_t min_samples = 2;
  int64_t max_samples = 2;
  double p_value = 0.0;
  std::string stopping = "t-test";
  int64_t boundary_samples = 64;

  // Throws InputError (ValueError in Python) naming the field and the problem.
  void validate() const;
  TimestepSource source() const;
  PruningRule pruning() const;
  StoppingTest stopping_test() const;
  // The most samples any image can receive.
  int64_t sample_budget() const;
};

}  // namespace genfast
