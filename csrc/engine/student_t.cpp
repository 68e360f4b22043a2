#include "engine/student_t.h"

#include <cmath>
#include <limits>
#include <string>

#include "common/tensor_view.h"

namespace genfast {
namespace {

// Continued fraction of I_x(a, b) (modified Lentz), converging for x < (a + 1) / (a + b + 2); `y` is 1 - x
// computed by the caller without cancellation.
double beta_continued_fraction(double a, double b, double x) {
  constexpr int kMaxIterations = 100000;
  constexpr double kEps = 1e-16;
  constexpr double kTiny = 1e-300;
  const double qab = a + b, qap = a + 1.0, qam = a - 1.0;
  double c = 1.0;
  double d = 1.0 - qab * x / qap;
  if (std::fabs(d) < kTiny) d = kTiny;
  d = 1.0 / d;
  double h = d;
  for (int m = 1; m <= kMaxIterations; ++m) {
    const double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1.0 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1.0 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    h *= d * c;
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1.0 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1.0 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    const double delta = d * c;
    h *= delta;
    if (std::fabs(delta - 1.0) < kEps) return h;
  }
  return h;  // not reached for the a, b the t distribution uses; the last convergent is still accurate
}

// I_x(a, b) with both x and y = 1 - x given, so that neither loses precision near 0 or 1.
double incomplete_beta_xy(double a, double b, double x, double y) {
  if (x <= 0.0) return 0.0;
  if (y <= 0.0) return 1.0;
  const double log_front = std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log(y);
  if (x < (a + 1.0) / (a + b + 2.0)) return std::exp(log_front) * beta_continued_fraction(a, b, x) / a;
  return 1.0 - std::exp(log_front) * beta_continued_fraction(b, a, y) / b;
}

}  // namespace

double regularized_incomplete_beta(double a, double b, double x) {
  check(a > 0.0 && b > 0.0, "regularized_incomplete_beta: a and b must be positive, got a=" + std::to_string(a) +
                                ", b=" + std::to_string(b));
  check(x >= 0.0 && x <= 1.0, "regularized_incomplete_beta: x must be in [0, 1], got " + std::to_string(x));
  return incomplete_beta_xy(a, b, x, 1.0 - x);
}

double student_t_sf(double t, double df) {
  check(df > 0.0, "student_t_sf: df must be positive, got " + std::to_string(df));
  if (std::isnan(t)) return std::numeric_limits<double>::quiet_NaN();
  if (std::isinf(t)) return t > 0 ? 0.0 : 1.0;
  const double t2 = t * t;
  double tail;  // P(T >= |t|) = I_{df/(df+t^2)}(df/2, 1/2) / 2
  if (std::isinf(t2)) {
    tail = 0.0;
  } else {
    const double x = df / (df + t2), y = t2 / (df + t2);
    tail = 0.5 * incomplete_beta_xy(0.5 * df, 0.5, x, y);
  }
  return t > 0 ? tail : 1.0 - tail;
}

double paired_t_pvalue(const RunningMoments& d) {
  check(d.n >= 2, "paired_t_pvalue: needs at least 2 differences, got " + std::to_string(d.n));
  const double var = d.m2 / static_cast<double>(d.n - 1);
  if (var == 0.0) return d.mean > 0.0 ? 0.0 : 1.0;
  const double t = d.mean / std::sqrt(var / static_cast<double>(d.n));
  return student_t_sf(t, static_cast<double>(d.n - 1));
}

double paired_t_pvalue(const double* d, std::size_t n) {
  RunningMoments m;
  for (std::size_t i = 0; i < n; ++i) m.add(d[i]);
  return paired_t_pvalue(m);
}

bool paired_t_rejects(const RunningMoments& d, double alpha) {
  check(d.n >= 2, "paired_t_rejects: needs at least 2 differences, got " + std::to_string(d.n));
  const double var = d.m2 / static_cast<double>(d.n - 1);
  if (var > 0.0) {
    const double t = d.mean / std::sqrt(var / static_cast<double>(d.n));
    if (0.5 * std::erfc(t / std::sqrt(2.0)) >= alpha) return false;
  }
  return paired_t_pvalue(d) < alpha;
}

double mixture_boundary(int64_t n, double sd, double alpha, int64_t boundary_samples) {
  check(n >= 1 && boundary_samples >= 1 && alpha > 0.0 && alpha < 1.0,
        "mixture_boundary: needs n >= 1, boundary_samples >= 1 and alpha in (0, 1)");
  // Mixing exp(l S_n - l^2 n sd^2 / 2) over l ~ N(0, rho^2 / sd^2) gives a martingale that reaches 1/alpha
  // exactly when |S_n| >= sd sqrt((1 + n rho^2) (2 log(1/alpha) + log(1 + n rho^2)) / rho^2); rho^2 as in
  // Howard et al. (2021) makes the boundary tightest at n = boundary_samples.
  const double log_term = -2.0 * std::log(alpha);
  const double rho2 = (log_term + std::log(log_term + 1.0)) / static_cast<double>(boundary_samples);
  const double v = 1.0 + static_cast<double>(n) * rho2;
  return sd * std::sqrt(v * (log_term + std::log(v)) / rho2) / static_cast<double>(n);
}

bool mixture_boundary_rejects(const RunningMoments& d, double alpha, int64_t boundary_samples) {
  check(d.n >= 2, "mixture_boundary_rejects: needs at least 2 differences, got " + std::to_string(d.n));
  const double sd = std::sqrt(d.m2 / static_cast<double>(d.n - 1));
  if (sd == 0.0) return d.mean > 0.0;
  return d.mean > mixture_boundary(d.n, sd, alpha, boundary_samples);
}

}  // namespace genfast
