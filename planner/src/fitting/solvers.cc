// The solvers of solvers.h.
#include "fitting/solvers.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace vrm::planner::fitting {

// Each pass solves the normal equations of the coefficients still free (scaled columns, Gaussian
// elimination with partial pivoting) and pins one more coefficient or returns.
LinearFit fitNonNegative(const std::vector<std::vector<double>>& rows, const std::vector<double>& y,
                         const std::vector<double>& prior) {
  const std::size_t p = prior.size();
  const std::size_t n = rows.size();
  LinearFit fit{prior, std::vector<Coef>(p, Coef::kFitted)};
  auto pinnedValue = [&](std::size_t j) { return fit.state[j] == Coef::kAtZero ? 0.0 : prior[j]; };
  for (std::size_t pass = 0; pass <= p; ++pass) {
    std::vector<std::size_t> cols;
    for (std::size_t j = 0; j < p; ++j) {
      if (fit.state[j] == Coef::kFitted) cols.push_back(j);
    }
    std::vector<double> r = y;
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t j = 0; j < p; ++j) {
        if (fit.state[j] != Coef::kFitted) r[i] -= rows[i][j] * pinnedValue(j);
      }
    }
    const std::size_t m = cols.size();
    std::vector<double> scale(m, 0);
    bool restart = false;
    for (std::size_t k = 0; k < m && !restart; ++k) {
      for (std::size_t i = 0; i < n; ++i) scale[k] += rows[i][cols[k]] * rows[i][cols[k]];
      scale[k] = std::sqrt(scale[k] / static_cast<double>(n));
      if (!(scale[k] > 0)) {
        fit.state[cols[k]] = Coef::kUnidentified;
        restart = true;
      }
    }
    if (restart) continue;
    // Normal equations [A | b] on scaled columns; Gaussian elimination with partial pivoting.
    std::vector<std::vector<double>> a(m, std::vector<double>(m + 1, 0));
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t k = 0; k < m; ++k) {
        const double xk = rows[i][cols[k]] / scale[k];
        for (std::size_t l = 0; l < m; ++l) a[k][l] += xk * rows[i][cols[l]] / scale[l];
        a[k][m] += xk * r[i];
      }
    }
    const double tolerance = 1e-9 * static_cast<double>(n);
    for (std::size_t k = 0; k < m && !restart; ++k) {
      std::size_t best = k;
      for (std::size_t row = k + 1; row < m; ++row) {
        if (std::abs(a[row][k]) > std::abs(a[best][k])) best = row;
      }
      if (std::abs(a[best][k]) < tolerance) {
        fit.state[cols[k]] = Coef::kUnidentified;
        restart = true;
        break;
      }
      std::swap(a[k], a[best]);
      for (std::size_t row = k + 1; row < m; ++row) {
        const double f = a[row][k] / a[k][k];
        for (std::size_t l = k; l <= m; ++l) a[row][l] -= f * a[k][l];
      }
    }
    if (restart) continue;
    std::vector<double> b(m, 0);
    for (std::size_t k = m; k-- > 0;) {
      double s = a[k][m];
      for (std::size_t l = k + 1; l < m; ++l) s -= a[k][l] * b[l];
      b[k] = s / a[k][k];
    }
    std::size_t worst = m;
    for (std::size_t k = 0; k < m; ++k) {
      if (b[k] < 0 && (worst == m || b[k] < b[worst])) worst = k;
    }
    if (worst != m) {
      fit.state[cols[worst]] = Coef::kAtZero;
      continue;
    }
    for (std::size_t j = 0; j < p; ++j) fit.coef[j] = pinnedValue(j);
    for (std::size_t k = 0; k < m; ++k) fit.coef[cols[k]] = b[k] / scale[k];
    return fit;
  }
  for (std::size_t j = 0; j < p; ++j) fit.coef[j] = pinnedValue(j);
  return fit;
}

SearchResult nelderMead(const std::function<double(const std::vector<double>&)>& f,
                        const std::vector<double>& start, const std::vector<double>& steps,
                        int maxEvaluations) {
  const std::size_t n = start.size();
  std::vector<std::vector<double>> x(n + 1, start);
  for (std::size_t j = 0; j < n; ++j) x[j + 1][j] += steps[j];
  std::vector<double> fx(n + 1);
  int evals = 0;
  auto eval = [&](const std::vector<double>& p) {
    ++evals;
    return f(p);
  };
  for (std::size_t i = 0; i <= n; ++i) fx[i] = eval(x[i]);
  auto along = [&](const std::vector<double>& c, const std::vector<double>& worst, double t) {
    std::vector<double> p(n);
    for (std::size_t j = 0; j < n; ++j) p[j] = c[j] + t * (worst[j] - c[j]);
    return p;
  };
  while (evals < maxEvaluations) {
    std::vector<std::size_t> order(n + 1);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return fx[a] < fx[b]; });
    std::vector<std::vector<double>> xs;
    std::vector<double> fs;
    for (std::size_t i : order) {
      xs.push_back(x[i]);
      fs.push_back(fx[i]);
    }
    x = std::move(xs);
    fx = std::move(fs);
    if (fx[n] - fx[0] <= 1e-12 * (std::abs(fx[0]) + 1e-300)) break;
    std::vector<double> centroid(n, 0);
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t j = 0; j < n; ++j) centroid[j] += x[i][j] / static_cast<double>(n);
    }
    const auto reflected = along(centroid, x[n], -1);
    const double fr = eval(reflected);
    if (fr < fx[0]) {
      const auto expanded = along(centroid, x[n], -2);
      const double fe = eval(expanded);
      x[n] = fe < fr ? expanded : reflected;
      fx[n] = std::min(fe, fr);
    } else if (fr < fx[n - 1]) {
      x[n] = reflected;
      fx[n] = fr;
    } else {
      const bool outside = fr < fx[n];
      const auto contracted = along(centroid, x[n], outside ? -0.5 : 0.5);
      const double fc = eval(contracted);
      if (fc < std::min(fr, fx[n])) {
        x[n] = contracted;
        fx[n] = fc;
      } else {
        for (std::size_t i = 1; i <= n; ++i) {  // shrink towards the best point
          for (std::size_t j = 0; j < n; ++j) x[i][j] = x[0][j] + 0.5 * (x[i][j] - x[0][j]);
          fx[i] = eval(x[i]);
        }
      }
    }
  }
  const auto best = std::min_element(fx.begin(), fx.end()) - fx.begin();
  return {x[best], fx[best], evals};
}

}  // namespace vrm::planner::fitting
