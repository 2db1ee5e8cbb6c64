// The numerical solvers of the calibrator (planner/src/fitting/solvers.h): least squares that
// keeps coefficients >= 0 and says which it pinned or could not identify, and Nelder-Mead.
#include "fitting/solvers.h"

#include <gtest/gtest.h>

#include <vector>

namespace vrm::planner::fitting {
namespace {

// An exact line is recovered, whatever the priors.
TEST(FitNonNegativeTest, RecoversAnExactFit) {
  const std::vector<std::vector<double>> rows = {{1, 0}, {1, 1}, {1, 2}, {1, 5}};
  const std::vector<double> y = {2, 5, 8, 17};  // 2 + 3x
  const LinearFit fit = fitNonNegative(rows, y, {7, 7});
  EXPECT_NEAR(fit.coef[0], 2, 1e-9);
  EXPECT_NEAR(fit.coef[1], 3, 1e-9);
  EXPECT_EQ(fit.state[0], Coef::kFitted);
  EXPECT_EQ(fit.state[1], Coef::kFitted);
}

// A falling line would need a negative slope: it is pinned at 0 and the intercept refitted.
TEST(FitNonNegativeTest, PinsNegativeCoefficientsAtZero) {
  const std::vector<std::vector<double>> rows = {{1, 0}, {1, 1}, {1, 2}, {1, 3}};
  const std::vector<double> y = {5, 4, 3, 2};
  const LinearFit fit = fitNonNegative(rows, y, {1, 1});
  EXPECT_EQ(fit.state[1], Coef::kAtZero);
  EXPECT_EQ(fit.coef[1], 0);
  EXPECT_NEAR(fit.coef[0], 3.5, 1e-9);  // the mean
}

// A column of zeros says nothing about its coefficient: it keeps its prior.
TEST(FitNonNegativeTest, KeepsThePriorOfAnUnidentifiedColumn) {
  const std::vector<std::vector<double>> rows = {{1, 0}, {2, 0}, {3, 0}};
  const std::vector<double> y = {2, 4, 6};
  const LinearFit fit = fitNonNegative(rows, y, {0, 0.25});
  EXPECT_NEAR(fit.coef[0], 2, 1e-9);
  EXPECT_EQ(fit.state[1], Coef::kUnidentified);
  EXPECT_EQ(fit.coef[1], 0.25);
}

// The simplex finds the minimum of a smooth bowl within its budget.
TEST(NelderMeadTest, FindsTheMinimumOfABowl) {
  int calls = 0;
  auto f = [&](const std::vector<double>& x) {
    ++calls;
    return (x[0] - 1) * (x[0] - 1) + 10 * (x[1] + 2) * (x[1] + 2);
  };
  const SearchResult r = nelderMead(f, {0, 0}, {0.5, 0.5}, 500);
  EXPECT_NEAR(r.best[0], 1, 1e-4);
  EXPECT_NEAR(r.best[1], -2, 1e-4);
  EXPECT_NEAR(r.value, 0, 1e-7);
  EXPECT_EQ(r.evaluations, calls);
  EXPECT_LE(r.evaluations, 500 + 3);  // a shrink step may finish past the budget
}

}  // namespace
}  // namespace vrm::planner::fitting
