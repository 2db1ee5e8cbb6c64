#include "vrm/planner/liu_model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "vrm/planner/migration_model.h"

namespace vrm::planner {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;
constexpr double kThdMiB = 50 * 4096 / kMiB;  // V_thd = 50 pages of 4 KiB = 0.1953125 MiB

std::unique_ptr<MigrationModel> model(const std::string& name, const ModelParameters& p = {}) {
  auto m = createMigrationModel(name, p);
  EXPECT_TRUE(m.isOk()) << m.status().toString();
  return std::move(*m);
}

VmProfile vmMiB(double memoryMiB, double dirtyMiBPerSec) {
  VmProfile vm;
  vm.memoryBytes = memoryMiB * kMiB;
  vm.dirtyRateBytesPerSec = dirtyMiBPerSec * kMiB;
  return vm;
}

LinkProfile linkMiB(double mibPerSec) { return LinkProfile{mibPerSec * kMiB, 0, 0}; }

// Ensures both Liu models are registered with the documented defaults.
TEST(LiuModelTest, RegisteredWithPaperDefaults) {
  auto names = migrationModelNames();
  EXPECT_NE(std::find(names.begin(), names.end(), "liu-base"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "liu-refined"), names.end());
  auto p = model("liu-refined")->parameters();
  EXPECT_EQ(p.at("threshold_pages"), 50);
  EXPECT_EQ(p.at("max_rounds"), 29);
  EXPECT_EQ(p.at("resume_time_s"), 0.02);
  EXPECT_EQ(p.at("gamma_a"), -0.0463);
  EXPECT_EQ(p.at("gamma_b"), -0.0001);
  EXPECT_EQ(p.at("gamma_c"), 0.3586);
  EXPECT_EQ(p.at("energy_alpha_j_per_mib"), 0.512);
  EXPECT_EQ(p.at("energy_beta_j"), 20.165);
  EXPECT_EQ(p.at("mu"), 0.7);
  EXPECT_EQ(p.at("phi"), 0.5);
  EXPECT_EQ(model("liu-base")->parameters().count("mu"), 0u);
}

// Ensures eqs. 3-8 on a hand-computed case: V_mem 1024 MiB, D 50, R 100 MiB/s (lambda 0.5):
// n = ceil(log2(1024 / 0.1953125)) = ceil(12.36) = 13, V_mig = 2048 - 0.125 MiB, T_mig = V_mig/R,
// T_down = 1024 * 0.5^13 / 100 + 0.02 = 0.02125 s, E = 0.512 * 2047.875 + 20.165 = 1068.677 J.
TEST(LiuBaseModelTest, ClosedFormsOnHandComputedCase) {
  auto e = model("liu-base")->estimate(vmMiB(1024, 50), linkMiB(100));
  ASSERT_TRUE(e.isOk()) << e.status().toString();
  EXPECT_EQ(e->extras.at("n"), 13);
  EXPECT_EQ(e->rounds, 14);
  EXPECT_TRUE(e->converges);
  EXPECT_DOUBLE_EQ(e->extras.at("lambda"), 0.5);
  EXPECT_NEAR(e->transferredBytes / kMiB, 2047.875, 1e-9);
  EXPECT_NEAR(e->extras.at("t_mig_s"), 20.47875, 1e-12);
  EXPECT_NEAR(e->downtimeS, 0.02125, 1e-12);
  EXPECT_NEAR(e->totalTimeS, 20.47875 + 0.02, 1e-12);
  ASSERT_TRUE(e->energyJ.has_value());
  EXPECT_NEAR(*e->energyJ, 1068.677, 1e-9);
  // Per-round phases follow eq. 2, T_i = V_mem * D^i / R^(i+1), computed here by a plain loop.
  ASSERT_EQ(e->phases.size(), 15u);  // rounds 0..12, stop-and-copy, resume
  double t = 1024.0 / 100;
  for (int i = 0; i < 13; ++i, t *= 0.5) {
    EXPECT_EQ(e->phases[i].name, "round " + std::to_string(i));
    EXPECT_NEAR(e->phases[i].seconds, t, 1e-12);
  }
  EXPECT_EQ(e->phases[13].name, "stop-and-copy");
  EXPECT_NEAR(e->phases[13].seconds, 0.00125, 1e-15);
  EXPECT_EQ(e->phases[14].name, "resume");
}

// Ensures eq. 8 lands on k, not k + 1, when V_thd / V_mem is exactly lambda^k.
TEST(LiuBaseModelTest, ExactPowerOfLambdaRoundsDown) {
  // V_mem = 8 * V_thd, lambda = 0.5: V_3 = V_thd exactly, so n = 3.
  auto e = model("liu-base")->estimate(vmMiB(8 * kThdMiB, 50), linkMiB(100));
  ASSERT_TRUE(e.isOk());
  EXPECT_EQ(e->extras.at("n"), 3);
}

// Ensures lambda >= 1 forces n = max_rounds with the geometric sums taken literally.
TEST(LiuBaseModelTest, LambdaAtLeastOneRunsMaxRounds) {
  auto e = model("liu-base", {{"max_rounds", 5}})->estimate(vmMiB(100, 100), linkMiB(100));
  ASSERT_TRUE(e.isOk());
  EXPECT_EQ(e->extras.at("n"), 5);
  EXPECT_FALSE(e->converges);
  EXPECT_NEAR(e->transferredBytes / kMiB, 600, 1e-9);  // lambda = 1: V_mem * (n + 1)
  EXPECT_NEAR(e->downtimeS, 1.0 + 0.02, 1e-12);

  // lambda = 2, max_rounds = 3: 100 * (1 + 2 + 4 + 8) MiB, the last round 800 MiB.
  auto g = model("liu-base", {{"max_rounds", 3}})->estimate(vmMiB(100, 200), linkMiB(100));
  ASSERT_TRUE(g.isOk());
  EXPECT_EQ(g->extras.at("n"), 3);
  EXPECT_EQ(g->rounds, 4);
  EXPECT_NEAR(g->transferredBytes / kMiB, 1500, 1e-9);
  EXPECT_NEAR(g->extras.at("t_mig_s"), 15, 1e-12);
  EXPECT_NEAR(g->downtimeS, 8.02, 1e-12);
}

// Ensures an idle VM (lambda = 0) is one full copy plus an empty stop-and-copy round.
TEST(LiuBaseModelTest, IdleVmIsOneCopy) {
  auto e = model("liu-base")->estimate(vmMiB(1024, 0), linkMiB(128));
  ASSERT_TRUE(e.isOk());
  EXPECT_EQ(e->extras.at("n"), 1);
  EXPECT_NEAR(e->transferredBytes / kMiB, 1024, 1e-9);
  EXPECT_NEAR(e->extras.at("t_mig_s"), 8, 1e-12);
  EXPECT_NEAR(e->downtimeS, 0.02, 1e-12);
}

// Ensures Algorithm 1 step by step with a constant gamma = 0.5 (a = b = 0, c = 0.5) and
// lambda = 0.5: V = 1024, 256, 64, 16, 4, 1, 0.25; V_7 = 0.0625 <= V_thd, so the last round
// resends T_6 * D = 0.125 MiB (hot pages included). V_mig = 1365.375 MiB, T_down = 0.02125 s.
TEST(LiuRefinedModelTest, AlgorithmOneByHand) {
  auto m = model("liu-refined", {{"gamma_a", 0}, {"gamma_b", 0}, {"gamma_c", 0.5}});
  auto e = m->estimate(vmMiB(1024, 50), linkMiB(100));
  ASSERT_TRUE(e.isOk()) << e.status().toString();
  EXPECT_EQ(e->rounds, 8);
  EXPECT_TRUE(e->converges);
  EXPECT_NEAR(e->transferredBytes / kMiB, 1365.375, 1e-9);
  EXPECT_NEAR(e->extras.at("t_mig_s"), 13.65375, 1e-12);
  EXPECT_NEAR(e->downtimeS, 0.00125 + 0.02, 1e-12);
  EXPECT_NEAR(*e->energyJ, 0.512 * 1365.375 + 20.165, 1e-9);
  EXPECT_EQ(e->phases[6].name, "round 6");
  EXPECT_NEAR(e->phases[6].seconds, 0.0025, 1e-15);
  EXPECT_EQ(e->phases[7].name, "stop-and-copy");
  // Deferred hot pages W_1..W_6 = 256 + 64 + ... + 0.25 (each equals V_i when gamma = 0.5).
  EXPECT_NEAR(e->extras.at("wws_deferred_bytes") / kMiB, 341.25, 1e-9);
}

// Ensures Algorithm 1 with the paper's gamma coefficients matches an independent re-statement
// of lines 2-16 (T in s, D in MiB/s, gamma clamped), run on a busy VM.
TEST(LiuRefinedModelTest, PaperGammaMatchesIndependentLoop) {
  const double vmem = 1024, d = 60, r = 80, thd = kThdMiB;  // MiB, MiB/s
  std::vector<double> v = {vmem};
  double vmig = vmem, tmig = vmem / r, tdown = -1;
  for (int i = 0; i <= 29 && tdown < 0; ++i) {
    const double ti = v[i] / r;
    double g = -0.0463 * ti - 0.0001 * d + 0.3586;
    g = g < 0 ? 0 : (g > 1 ? 1 : g);
    double next = ti * d - g * ti * d;
    if (next <= thd || next > v[i]) {
      next = ti * d;
      tdown = next / r + 0.02;
    }
    v.push_back(next);
    vmig += next;
    tmig += next / r;
  }
  ASSERT_GT(tdown, 0);
  auto e = model("liu-refined")->estimate(vmMiB(vmem, d), linkMiB(r));
  ASSERT_TRUE(e.isOk());
  EXPECT_EQ(e->rounds, static_cast<int>(v.size()));
  EXPECT_NEAR(e->transferredBytes / kMiB, vmig, 1e-6);
  EXPECT_NEAR(e->extras.at("t_mig_s"), tmig, 1e-9);
  EXPECT_NEAR(e->downtimeS, tdown, 1e-9);
  // Less traffic than the base model, which resends hot pages every round.
  auto base = model("liu-base")->estimate(vmMiB(vmem, d), linkMiB(r));
  EXPECT_LT(e->transferredBytes, base->transferredBytes);
}

// Ensures gamma is clamped at 0: unclamped, gamma = -0.125 would inflate V_1 past V_0
// (972.8 * 1.125 = 1094 MiB) and stop at once; clamped, V_1 = 972.8 MiB and pre-copy goes on.
TEST(LiuRefinedModelTest, GammaClampedAtZero) {
  // T_0 = 10.24 s, D = 95 MiB/s: gamma = -0.474112 - 0.0095 + 0.3586 = -0.125012.
  auto e = model("liu-refined")->estimate(vmMiB(1024, 95), linkMiB(100));
  ASSERT_TRUE(e.isOk());
  EXPECT_GT(e->rounds, 2);
  EXPECT_NEAR(e->phases[1].seconds, 9.728, 1e-12);  // round 1 = V_1 / R = 972.8 / 100
}

// Ensures gamma is clamped at 1: no round ever has negative volume; the stop test then resends
// T_0 * D in full.
TEST(LiuRefinedModelTest, GammaClampedAtOne) {
  auto e = model("liu-refined", {{"gamma_c", 2.5}})->estimate(vmMiB(1024, 50), linkMiB(100));
  ASSERT_TRUE(e.isOk());
  EXPECT_EQ(e->rounds, 2);
  EXPECT_NEAR(e->transferredBytes / kMiB, 1024 + 512, 1e-9);
  EXPECT_NEAR(e->downtimeS, 5.12 + 0.02, 1e-12);
  EXPECT_NEAR(e->extras.at("wws_deferred_bytes"), 0, 1e-9);
}

// Ensures the second stop test of line 8 (V_{i+1} > V_i) ends pre-copy with T_i * D.
TEST(LiuRefinedModelTest, GrowingRoundStops) {
  auto m = model("liu-refined", {{"gamma_a", 0}, {"gamma_b", 0}, {"gamma_c", 0}});
  auto e = m->estimate(vmMiB(1024, 150), linkMiB(100));
  ASSERT_TRUE(e.isOk());
  EXPECT_EQ(e->rounds, 2);
  EXPECT_NEAR(e->transferredBytes / kMiB, 1024 + 1536, 1e-9);
  EXPECT_NEAR(e->downtimeS, 15.36 + 0.02, 1e-12);
}

// Ensures that when the loop i = 0..max_round ends without the stop test, one final
// stop-and-copy round T_max * D is sent and counted: max_round = 2, gamma 0.5, D/R = 1.5, V_thd 0:
// V = 1024, 768, 576, then T_2 * D = 5.76 * 150 = 864 MiB.
TEST(LiuRefinedModelTest, FinalStopAndCopyRoundCounted) {
  auto m = model("liu-refined", {{"gamma_a", 0},
                                 {"gamma_b", 0},
                                 {"gamma_c", 0.5},
                                 {"threshold_pages", 0},
                                 {"max_rounds", 2}});
  auto e = m->estimate(vmMiB(1024, 150), linkMiB(100));
  ASSERT_TRUE(e.isOk());
  EXPECT_FALSE(e->converges);
  EXPECT_EQ(e->rounds, 4);
  EXPECT_NEAR(e->transferredBytes / kMiB, 1024 + 768 + 576 + 864, 1e-9);
  EXPECT_NEAR(e->extras.at("t_mig_s"), 32.32, 1e-12);
  EXPECT_NEAR(e->downtimeS, 8.64 + 0.02, 1e-12);
  EXPECT_NEAR(e->totalTimeS, 32.34, 1e-12);
  EXPECT_NEAR(e->extras.at("wws_deferred_bytes") / kMiB, 768 + 576, 1e-9);
}

// Ensures eq. 11: the duration-weighted mean of per-round dirty rates.
TEST(LiuHistoryTest, WeightedMeanOfRounds) {
  auto mean = weightedMeanDirtyRate({{10, 2}, {30, 1}, {50, 1}});
  ASSERT_TRUE(mean.isOk());
  EXPECT_DOUBLE_EQ(*mean, (20.0 + 30 + 50) / 4);
  EXPECT_FALSE(weightedMeanDirtyRate({}).isOk());
  EXPECT_FALSE(weightedMeanDirtyRate({{10, 0}}).isOk());
  EXPECT_FALSE(weightedMeanDirtyRate({{-1, 1}}).isOk());
}

// Ensures eqs. 12-13 on hand numbers: history 10, 20, 40 with mu 0.7 gives 10 -> 17 -> 33.1;
// blended with a sample of 50 at phi 0.5 gives 41.55.
TEST(LiuHistoryTest, EwmaAndBlend) {
  auto ewma = ewmaDirtyRate({10, 20, 40}, 0.7);
  ASSERT_TRUE(ewma.isOk());
  EXPECT_NEAR(*ewma, 33.1, 1e-12);
  EXPECT_DOUBLE_EQ(*ewmaDirtyRate({42}, 0.7), 42);
  auto blended = blendDirtyRate(50, *ewma, 0.5);
  ASSERT_TRUE(blended.isOk());
  EXPECT_NEAR(*blended, 41.55, 1e-12);
  EXPECT_NEAR(*blendDirtyRate(50, 33.1, 0.2), 0.2 * 50 + 0.8 * 33.1, 1e-12);
  EXPECT_FALSE(ewmaDirtyRate({}, 0.7).isOk());
  EXPECT_FALSE(ewmaDirtyRate({1}, 1.5).isOk());
  EXPECT_FALSE(blendDirtyRate(1, 1, -0.1).isOk());
}

// Ensures liu-refined uses the blended history when present and the bare sample otherwise.
TEST(LiuRefinedModelTest, UsesDirtyRateHistory) {
  VmProfile withHistory = vmMiB(1024, 50);
  for (double r : {10.0, 20.0, 40.0}) withHistory.dirtyRateHistoryBytesPerSec.push_back(r * kMiB);
  auto m = model("liu-refined");
  auto e = m->estimate(withHistory, linkMiB(100));
  ASSERT_TRUE(e.isOk());
  EXPECT_NEAR(e->extras.at("dirty_rate_bytes_per_s") / kMiB, 41.55, 1e-9);
  auto same = m->estimate(vmMiB(1024, 41.55), linkMiB(100));
  EXPECT_NEAR(e->transferredBytes, same->transferredBytes, 1e-3);
  EXPECT_NEAR(e->downtimeS, same->downtimeS, 1e-12);
  auto noHistory = m->estimate(vmMiB(1024, 50), linkMiB(100));
  EXPECT_NEAR(noHistory->extras.at("dirty_rate_bytes_per_s") / kMiB, 50, 1e-9);
}

// Ensures eq. 17's numbers: 1000 MiB cost 0.512 * 1000 + 20.165 J; an empty move costs beta.
TEST(LiuEnergyTest, LinearInTraffic) {
  EXPECT_NEAR(liuMigrationEnergyJ(1000 * kMiB), 532.165, 1e-9);
  EXPECT_NEAR(liuMigrationEnergyJ(0), 20.165, 1e-12);
  EXPECT_NEAR(liuMigrationEnergyJ(10 * kMiB, 1.0, 2.0), 12.0, 1e-12);
}

// Ensures eq. 18 with max-normalisation on hand numbers: A = (1 s, 10 s, 100 B, 50 J),
// B = (2, 5, 200, 25), weights 0.4/0.2/0.2/0.2: C(A) = 0.2 + 0.2 + 0.1 + 0.2 = 0.7,
// C(B) = 0.4 + 0.1 + 0.2 + 0.1 = 0.8.
TEST(LiuCostTest, WeightedNormalisedCost) {
  MigrationEstimate a, b;
  a.downtimeS = 1, a.totalTimeS = 10, a.transferredBytes = 100, a.energyJ = 50;
  b.downtimeS = 2, b.totalTimeS = 5, b.transferredBytes = 200, b.energyJ = 25;
  auto r = rankMigrationCandidates({a, b}, {0.4, 0.2, 0.2, 0.2});
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  ASSERT_EQ(r->costs.size(), 2u);
  EXPECT_NEAR(r->costs[0], 0.7, 1e-12);
  EXPECT_NEAR(r->costs[1], 0.8, 1e-12);
  EXPECT_EQ(r->cheapestIndex, 0u);
  auto flipped = rankMigrationCandidates({a, b}, {0.1, 0.5, 0.2, 0.2});
  EXPECT_EQ(flipped->cheapestIndex, 1u);  // A: .05+.5+.1+.2 = .85; B: .1+.25+.2+.1 = .65
  EXPECT_FALSE(rankMigrationCandidates({a, b}, {0.5, 0.5, 0.5, 0}).isOk());
  EXPECT_FALSE(rankMigrationCandidates({a, b}, {1.5, -0.5, 0, 0}).isOk());
  EXPECT_FALSE(rankMigrationCandidates({}, {}).isOk());
  MigrationEstimate noEnergy;
  EXPECT_FALSE(rankMigrationCandidates({a, noEnergy}).isOk());
  EXPECT_TRUE(rankMigrationCandidates({a, noEnergy}, {0.5, 0.5, 0, 0}).isOk());
}

// Ensures Section 5.4: among equal-sized VMs (800 MiB, 75 MiB/s link) the model-guided choice is
// the VM with the lowest dirty rate (TPC-C), with equal weights and with time, traffic or energy.
TEST(LiuCostTest, LowestDirtyRateIsChosen) {
  const std::vector<double> dirtyMiB = {20 /*dbench*/, 90 /*linpack*/, 4 /*tpc-c*/, 60 /*specweb*/};
  for (const char* name : {"liu-base", "liu-refined"}) {
    auto m = model(name);
    std::vector<MigrationEstimate> estimates;
    for (double d : dirtyMiB) estimates.push_back(*m->estimate(vmMiB(800, d), linkMiB(75)));
    // Not downtime alone: the last round's size is V_thd-bound, so its order is not monotone in D.
    for (MigrationCostWeights w :
         {MigrationCostWeights{}, MigrationCostWeights{0, 1, 0, 0},
          MigrationCostWeights{0, 0, 1, 0}, MigrationCostWeights{0, 0, 0, 1}}) {
      auto r = rankMigrationCandidates(estimates, w);
      ASSERT_TRUE(r.isOk());
      EXPECT_EQ(r->cheapestIndex, 2u) << name;
    }
  }
}

// Ensures bad profiles and parameters are invalid-argument.
TEST(LiuModelTest, BadInput) {
  for (const char* name : {"liu-base", "liu-refined"}) {
    auto m = model(name);
    EXPECT_EQ(m->estimate(vmMiB(1024, 10), LinkProfile{0, 0, 0}).status().code(),
              StatusCode::kInvalidArgument);
    EXPECT_EQ(m->estimate(vmMiB(-1, 10), linkMiB(100)).status().code(),
              StatusCode::kInvalidArgument);
    EXPECT_EQ(m->estimate(vmMiB(1024, -10), linkMiB(100)).status().code(),
              StatusCode::kInvalidArgument);
    EXPECT_EQ(createMigrationModel(name, {{"treshold_pages", 1}}).status().code(),
              StatusCode::kInvalidArgument);
    EXPECT_EQ(createMigrationModel(name, {{"max_rounds", 2.5}}).status().code(),
              StatusCode::kInvalidArgument);
    EXPECT_EQ(createMigrationModel(name, {{"resume_time_s", -1}}).status().code(),
              StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(createMigrationModel("liu-refined", {{"mu", 1.5}}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(createMigrationModel("liu-base", {{"mu", 0.5}}).status().code(),
            StatusCode::kInvalidArgument);
  VmProfile badHistory = vmMiB(1024, 10);
  badHistory.dirtyRateHistoryBytesPerSec = {-5};
  EXPECT_EQ(model("liu-refined")->estimate(badHistory, linkMiB(100)).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace vrm::planner
