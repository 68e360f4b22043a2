// CPU kernel for the fused per-class error reduction (docs/ARCHITECTURE.md, "Error reduction").
//
// Loop order: for each sample row, for each tile of kTile elements, the tile of target and z_t is converted to
// float once and then reused by every class row of that sample. The inner loops run over eight independent
// float lanes so that the compiler vectorises them without reassociating (no -ffast-math needed); tile sums
// are added into a double per class row.
#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "cpu/half_convert.h"
#include "cpu/kernels.h"

namespace genfast::cpu {

namespace {

constexpr int64_t kTile = 2048;
constexpr int kLanes = 8;

template <Loss L>
inline float loss_of(float r, float delta) {
  if constexpr (L == Loss::L2) {
    return r * r;
  } else if constexpr (L == Loss::L1) {
    return std::fabs(r);
  } else {  // Huber: 0.5 r^2 for |r| < delta, else delta (|r| - delta / 2); q = min(|r|, delta) covers both
    const float a = std::fabs(r);
    const float q = a < delta ? a : delta;
    return q * (a - 0.5f * q);
  }
}

template <Loss L>
float tile_sum(const float* pred, const float* z_t, const float* target, int64_t n, float c0, float c1, float c2,
               float delta) {
  float lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int k = 0; k < kLanes; ++k) {
      lanes[k] += loss_of<L>(c0 * pred[i + k] + c1 * z_t[i + k] - c2 * target[i + k], delta);
    }
  }
  for (int k = 0; i < n; ++i, ++k) lanes[k] += loss_of<L>(c0 * pred[i] + c1 * z_t[i] - c2 * target[i], delta);
  float total = 0.0f;
  for (int k = 0; k < kLanes; ++k) total += lanes[k];
  return total;
}

template <typename Store>
void to_float(const typename Store::T* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = Store::load(src + i);
}

template <typename PredStore, typename SampleStore, Loss L>
void error_reduce_typed(const ErrorReduceArgs& a) {
  using P = typename PredStore::T;
  using T = typename SampleStore::T;
  const P* pred = a.pred.ptr<const P>();
  const T* target = a.target.ptr<const T>();
  const T* z_t = a.z_t.ptr<const T>();
  const int64_t* offsets = a.offsets.ptr<const int64_t>();
  const float* coef = a.coef.ptr<const float>();
  float* out = a.out.ptr<float>();
  const int64_t n_lat = a.latent;
  std::vector<double> sums(static_cast<size_t>(a.rows), 0.0);
  std::vector<float> zt_tile(kTile), target_tile(kTile), pred_tile(kTile);
  for (int64_t s = 0; s < a.samples; ++s) {
    for (int64_t start = 0; start < n_lat; start += kTile) {
      const int64_t n = std::min(kTile, n_lat - start);
      to_float<SampleStore>(z_t + s * n_lat + start, zt_tile.data(), n);
      to_float<SampleStore>(target + s * n_lat + start, target_tile.data(), n);
      for (int64_t b = offsets[s]; b < offsets[s + 1]; ++b) {
        const float* p;
        if constexpr (std::is_same_v<PredStore, StoreF32>) {
          p = pred + b * n_lat + start;
        } else {
          to_float<PredStore>(pred + b * n_lat + start, pred_tile.data(), n);
          p = pred_tile.data();
        }
        sums[b] += tile_sum<L>(p, zt_tile.data(), target_tile.data(), n, coef[3 * b], coef[3 * b + 1],
                               coef[3 * b + 2], a.delta);
      }
    }
  }
  for (int64_t b = 0; b < a.rows; ++b) {
    const double w = a.weight ? a.weight[b] : 1.0;
    out[b] = static_cast<float>(w * sums[b] / static_cast<double>(n_lat));
  }
}

}  // namespace

void error_reduce(const ErrorReduceArgs& a) {
  const int64_t* offsets = a.offsets.ptr<const int64_t>();
  check(offsets[0] == 0, "error_reduce: sample_offsets[0] must be 0, got " + std::to_string(offsets[0]));
  for (int64_t s = 0; s < a.samples; ++s) {
    check(offsets[s + 1] >= offsets[s], "error_reduce: sample_offsets must be non-decreasing, but sample_offsets[" +
                                            std::to_string(s + 1) + "] = " + std::to_string(offsets[s + 1]) +
                                            " < sample_offsets[" + std::to_string(s) + "] = " +
                                            std::to_string(offsets[s]));
  }
  check(offsets[a.samples] == a.rows, "error_reduce: sample_offsets must end at the number of pred rows " +
                                          std::to_string(a.rows) + ", got " + std::to_string(offsets[a.samples]));
  dispatch_float(a.pred.dtype, [&](auto pred_store) {
    dispatch_float(a.target.dtype, [&](auto sample_store) {
      using PS = decltype(pred_store);
      using SS = decltype(sample_store);
      switch (a.loss) {
        case Loss::L2: error_reduce_typed<PS, SS, Loss::L2>(a); break;
        case Loss::L1: error_reduce_typed<PS, SS, Loss::L1>(a); break;
        case Loss::Huber: error_reduce_typed<PS, SS, Loss::Huber>(a); break;
      }
    });
  });
}

}  // namespace genfast::cpu
