#include "engine/engine_config.h"

#include <cmath>

#include "common/tensor_view.h"

namespace genfast {
namespace {

std::string field(const char* name) { return std::string("engine config: ") + name; }

}  // namespace

TimestepSource EngineConfig::source() const {
  if (timesteps == "sequence") return TimestepSource::Sequence;
  if (timesteps == "iid") return TimestepSource::Iid;
  if (timesteps == "lattice") return TimestepSource::Lattice;
  if (timesteps == "stratified") return TimestepSource::Stratified;
  throw InputError(field("timesteps") + " must be one of sequence, iid, lattice, stratified; got '" + timesteps + "'");
}

PruningRule EngineConfig::pruning() const {
  if (rule == "stages") return PruningRule::Stages;
  if (rule == "elimination") return PruningRule::Elimination;
  throw InputError(field("rule") + " must be 'stages' or 'elimination'; got '" + rule + "'");
}

StoppingTest EngineConfig::stopping_test() const {
  if (stopping == "t-test") return StoppingTest::TTest;
  if (stopping == "confidence-sequence") return StoppingTest::ConfidenceSequence;
  throw InputError(field("stopping") + " must be 't-test' or 'confidence-sequence'; got '" + stopping + "'");
}

int64_t EngineConfig::sample_budget() const {
  return pruning() == PruningRule::Stages ? stage_ends.back() : max_samples;
}

void EngineConfig::validate() const {
  check(n_classes >= 2, field("n_classes") + " must be at least 2, got " + std::to_string(n_classes));
  check(num_train_timesteps >= 1,
        field("num_train_timesteps") + " must be positive, got " + std::to_string(num_train_timesteps));
  const int64_t T = num_train_timesteps;
  const TimestepSource src = source();
  const PruningRule rl = pruning();

  if (rl == PruningRule::Stages) {
    check(!stage_ends.empty(), field("stage_ends") + " must not be empty");
    check(stage_ends.size() == stage_keep.size(), field("stage_ends") + " and stage_keep differ in length (" +
                                                      std::to_string(stage_ends.size()) + " vs " +
                                                      std::to_string(stage_keep.size()) + ")");
    int64_t prev = 0;
    for (size_t s = 0; s < stage_ends.size(); ++s) {
      check(stage_ends[s] > prev, field("stage_ends") + " must be positive and strictly increasing, got " +
                                      std::to_string(stage_ends[s]) + " at stage " + std::to_string(s));
      check(stage_keep[s] >= 1, field("stage_keep") + " must be at least 1, got " + std::to_string(stage_keep[s]) +
                                    " at stage " + std::to_string(s));
      check(!antithetic || stage_ends[s] % 2 == 0,
            field("stage_ends") + " must be even with antithetic pairs, got " + std::to_string(stage_ends[s]));
      prev = stage_ends[s];
    }
    check(!adapt_proposal, field("adapt_proposal") + " needs the elimination rule");
  } else {
    check(round_size >= 1, field("round_size") + " must be at least 1, got " + std::to_string(round_size));
    check(min_samples >= 2, field("min_samples") + " must be at least 2 (a t-test needs two samples), got " +
                                std::to_string(min_samples));
    check(max_samples >= min_samples, field("max_samples") + " (" + std::to_string(max_samples) +
                                          ") must be at least min_samples (" + std::to_string(min_samples) + ")");
    check(p_value > 0.0 && p_value < 1.0, field("p_value") + " must be in (0, 1), got " + std::to_string(p_value));
    stopping_test();
    check(!adapt_proposal || src != TimestepSource::Sequence,
          field("adapt_proposal") + " needs sampled timesteps (iid, lattice or stratified), not a sequence");
    check(proposal_bins >= 1 && proposal_bins <= T,
          field("proposal_bins") + " must be in [1, num_train_timesteps], got " + std::to_string(proposal_bins));
    check(proposal_floor > 0.0 && proposal_floor <= 1.0,
          field("proposal_floor") + " must be in (0, 1], got " + std::to_string(proposal_floor));
    check(boundary_samples >= 1,
          field("boundary_samples") + " must be at least 1, got " + std::to_string(boundary_samples));
    check(!antithetic || (round_size % 2 == 0 && max_samples % 2 == 0),
          field("round_size") + " and max_samples must be even with antithetic pairs, got " +
              std::to_string(round_size) + " and " + std::to_string(max_samples));
  }

  check(static_cast<int64_t>(score_weight.size()) == T, field("score_weight") + " must have num_train_timesteps (" +
                                                            std::to_string(T) + ") entries, got " +
                                                            std::to_string(score_weight.size()));
  for (int64_t t = 0; t < T; ++t) {
    check(std::isfinite(score_weight[t]) && score_weight[t] >= 0.0,
          field("score_weight") + " must be finite and non-negative, got " + std::to_string(score_weight[t]) +
              " at t=" + std::to_string(t));
  }
  const int64_t budget = sample_budget();
  if (src == TimestepSource::Sequence) {
    check(static_cast<int64_t>(sequence.size()) >= budget,
          field("sequence") + " has " + std::to_string(sequence.size()) + " timesteps but the rule can use " +
              std::to_string(budget));
    for (int64_t j = 0; j < budget; ++j) {
      const int64_t t = sequence[j];
      check(t >= 0 && t < T, field("sequence") + " timestep " + std::to_string(t) + " at sample " +
                                 std::to_string(j) + " is outside [0, " + std::to_string(T) + ")");
      check(score_weight[t] > 0.0, field("score_weight") + " is zero at t=" + std::to_string(t) +
                                       ", which the sequence uses (sample " + std::to_string(j) + ")");
      check(!antithetic || j % 2 == 0 || sequence[j - 1] == t,
            field("sequence") + " must repeat each timestep for an antithetic pair; samples " +
                std::to_string(j - 1) + " and " + std::to_string(j) + " differ");
    }
  } else {
    check(static_cast<int64_t>(density.size()) == T, field("density") + " must have num_train_timesteps (" +
                                                         std::to_string(T) + ") entries, got " +
                                                         std::to_string(density.size()));
    double total = 0.0;
    for (int64_t t = 0; t < T; ++t) {
      check(std::isfinite(density[t]) && density[t] >= 0.0,
            field("density") + " must be finite and non-negative, got " + std::to_string(density[t]) + " at t=" +
                std::to_string(t));
      check(density[t] == 0.0 || score_weight[t] > 0.0,
            field("score_weight") + " is zero at t=" + std::to_string(t) + " where the density is positive");
      total += density[t];
    }
    check(total > 0.0, field("density") + " sums to zero");
  }
}

}  // namespace genfast
