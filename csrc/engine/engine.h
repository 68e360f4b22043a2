// The scoring engine: the state of every image in flight, its method's timesteps and pruning rule, and a
// planner that fills fixed-size denoiser batches with (sample, class) rows from several images at once.
//
// Every decision about an image depends only on that image's own errors: rows are issued in a fixed order
// per image (sample j ascending, then class ascending), a round's results are applied only once all of its
// rows are back, and statistics are accumulated over the stored errors in sample order. Batch size, image order
// and grouping change which rows share a batch, never what is decided. Up to kMaxOutstanding plans may await
// their reports (reported oldest first), so that a caller can plan and launch batch n+1 before it reads batch
// n's errors: a later plan holds only rows already determined (the rest of rounds in progress).
#pragma once
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "engine/engine_config.h"

namespace genfast {

// One batch: S sample rows (an image's sample j at timestep t) and B <= batch_size class rows.
struct Plan {
  std::vector<int64_t> image;           // [S] engine image id
  std::vector<uint64_t> key;            // [S] image key (noise stream)
  std::vector<int64_t> sample;          // [S] sample index j
  std::vector<int64_t> timestep;        // [S] in [0, T)
  std::vector<double> score_weight;     // [S] v(t_j)
  std::vector<int64_t> sample_offsets;  // [S + 1]
  std::vector<int64_t> class_index;     // [B], ascending within a sample row
};

// A decided image.
struct ImageResult {
  int64_t id = 0;
  uint64_t key = 0;
  int64_t prediction = 0;           // the surviving class with the lowest score
  std::vector<double> scores;       // [K] weighted mean error over the samples each class received
  std::vector<int64_t> n_samples;   // [K]
  int64_t evaluations = 0;          // class rows evaluated for this image
  std::vector<int64_t> timesteps;   // [n]
  std::vector<double> weights;      // [n] score weight of each sample
  std::vector<float> errors;        // [K, n] row-major, NaN where class k did not receive sample j
};

class Engine {
 public:
  explicit Engine(EngineConfig config);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Adds images with these keys; returns their ids (consecutive, in order).
  std::vector<int64_t> add_images(const uint64_t* keys, int64_t n);
  static constexpr size_t kMaxOutstanding = 2;
  // The next batch of at most batch_size class rows. Throws std::runtime_error if kMaxOutstanding plans await
  // their reports, no image is in flight, or no row can be issued before a report (see can_plan).
  Plan plan(int64_t batch_size);
  // Whether plan() can be called now: fewer than kMaxOutstanding plans outstanding and a row not yet issued.
  bool can_plan() const;
  // The raw errors of the oldest outstanding plan's class rows, in order; throws InputError for a wrong count or
  // a non-finite value (naming the image id, key, sample and class) and then leaves the plan outstanding.
  void report(const float* errors, int64_t n);
  // Results of the images decided since the last call, in the order they were decided.
  std::vector<ImageResult> take_finished();
  bool done() const { return in_flight_.empty(); }
  int64_t n_in_flight() const { return static_cast<int64_t>(in_flight_.size()); }

 private:
  struct Image;
  struct RowRef {
    Image* image;
    int64_t sample;
    int64_t cls;
  };

  void start_round(Image& img, int64_t begin, int64_t end);
  // Applies the rule after a fully reported round; returns true when the image is decided.
  bool end_round(Image& img);
  void eliminate(Image& img) const;
  void adapt_proposal(Image& img) const;
  double score(const Image& img, int64_t k) const;
  int64_t sample_timestep(const Image& img, int64_t j, int64_t begin, int64_t end) const;
  void finish(Image& img);

  EngineConfig config_;
  TimestepSource source_;
  PruningRule rule_;
  StoppingTest stopping_;
  std::vector<double> cdf_;  // normalised cumulative density, sampled sources only
  std::vector<double> base_;    // the normalised density p(t), sampled sources only
  std::vector<double> weight_;  // w(t) = v(t) p(t), the objective's normalised weight, sampled sources only
  std::vector<std::unique_ptr<Image>> images_;  // by id; released once decided
  std::vector<int64_t> in_flight_;              // ids in the order added
  std::vector<ImageResult> finished_;
  struct Pending {
    std::vector<RowRef> rows;
    std::vector<Image*> images;  // distinct images of the plan, in plan order
  };
  std::deque<Pending> pending_;  // plans handed out and not yet reported, oldest first
};

}  // namespace genfast
