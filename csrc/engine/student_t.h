// Student-t tail probabilities and the one-sided paired t-test used by successive elimination. Written here
// (regularised incomplete beta by continued fraction) so that the torch-free core needs no statistics library.
#pragma once
#include <cstddef>
#include <cstdint>

namespace genfast {

// I_x(a, b), the regularised incomplete beta function, for a, b > 0 and x in [0, 1].
double regularized_incomplete_beta(double a, double b, double x);

// P(T_df >= t) for Student's t with df > 0 degrees of freedom (df need not be an integer).
double student_t_sf(double t, double df);

// Count, mean and sum of squared deviations of a sequence, updated one value at a time (Welford): adding
// values one by one, or all at once later, gives bit-identical moments.
struct RunningMoments {
  int64_t n = 0;
  double mean = 0.0;
  double m2 = 0.0;
  void add(double x) {
    n += 1;
    const double delta = x - mean;
    mean += delta / static_cast<double>(n);
    m2 += delta * (x - mean);
  }
};

// One-sided paired t-test of H1: mean(d) > 0 on n >= 2 differences: P(T_{n-1} >= mean/(sd/sqrt(n))).
// When sd is exactly zero the test is decided by the sign of the mean: p = 0 if mean > 0, else p = 1.
double paired_t_pvalue(const RunningMoments& d);
double paired_t_pvalue(const double* d, std::size_t n);

// paired_t_pvalue(d) < alpha, skipping the t tail when the normal tail already reaches alpha: Student-t tails
// are heavier than the normal's for every df (t is a scale mixture of normals), so the answer is the same.
bool paired_t_rejects(const RunningMoments& d, double alpha);

// The anytime-valid alternative to the t-test: true when the mean of d lies above the normal-mixture
// confidence-sequence boundary (Robbins' mixture martingale, Ville's inequality), tightest near
// `boundary_samples` differences. For i.i.d. Gaussian differences with mean <= 0 and the variance known, the
// probability that this ever returns true, over any number of looks, is at most alpha; with the running
// variance in place of the true one the guarantee holds asymptotically (time-uniform CLT).
bool mixture_boundary_rejects(const RunningMoments& d, double alpha, int64_t boundary_samples);
double mixture_boundary(int64_t n, double sd, double alpha, int64_t boundary_samples);

}  // namespace genfast
