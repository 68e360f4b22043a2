// The plain configuration a method (genfast/engine/methods.py) hands to the engine: where timesteps come
// from, the score weight of each timestep, and the pruning rule. Validated once, in full, by validate().
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace genfast {

enum class TimestepSource { Sequence, Iid, Lattice, Stratified };
enum class PruningRule { Stages, Elimination };

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

  // "stages": round s ends when the image has stage_ends[s] samples, then the stage_keep[s] classes with the
  // lowest score survive (capped at the number alive). "elimination": rounds of round_size samples; from
  // min_samples on, classes whose paired difference to the best is significant (p < p_value) are dropped;
  // at most max_samples samples.
  std::string rule = "stages";
  std::vector<int64_t> stage_ends;
  std::vector<int64_t> stage_keep;
  int64_t round_size = 1;
  int64_t min_samples = 2;
  int64_t max_samples = 2;
  double p_value = 0.0;

  // Throws InputError (ValueError in Python) naming the field and the problem.
  void validate() const;
  TimestepSource source() const;
  PruningRule pruning() const;
  // The most samples any image can receive.
  int64_t sample_budget() const;
};

}  // namespace genfast
