// The numerical solvers behind Calibrator's fits (planner/src only): linear least squares with
// non-negative coefficients, and a Nelder-Mead simplex search for the parameters that are not
// linear. Both are deterministic, pure and thread-safe.
#pragma once

#include <functional>
#include <vector>

namespace vrm::planner::fitting {

// What became of a coefficient of a linear fit.
enum class Coef {
  kFitted,
  kAtZero,        // the unconstrained fit was negative: pinned at 0
  kUnidentified,  // the rows cannot identify it: kept at its prior
};

struct LinearFit {
  std::vector<double> coef;
  std::vector<Coef> state;
};

// Minimises sum_i (y_i - rows_i . b)^2 subject to b >= 0. Columns the rows cannot identify
// (all zero, or collinear with the others) keep `prior`; a coefficient that comes out negative is
// pinned at 0 and the rest refitted (a simple active set; each pass pins one more, so it ends).
// Columns are scaled to unit RMS before the normal equations are solved, which keeps seconds,
// GiB and GiB^2 columns comparable.
LinearFit fitNonNegative(const std::vector<std::vector<double>>& rows, const std::vector<double>& y,
                         const std::vector<double>& prior);

struct SearchResult {
  std::vector<double> best;  // the best point found
  double value = 0;          // f there
  int evaluations = 0;       // calls of f made
};

// Minimises f from `start`, the first simplex stepping `steps` along each axis, with at most
// about `maxEvaluations` calls of f (a shrink step may finish past it). Stops early when the
// simplex's values agree to 1e-12 (relative).
SearchResult nelderMead(const std::function<double(const std::vector<double>&)>& f,
                        const std::vector<double>& start, const std::vector<double>& steps,
                        int maxEvaluations);

}  // namespace vrm::planner::fitting
