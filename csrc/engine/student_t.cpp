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

}  // namespace genfast
