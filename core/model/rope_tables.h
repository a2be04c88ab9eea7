// Rotary position embedding tables: inverse frequencies as transformers' ROPE_INIT_FUNCTIONS compute
// them (default, linear, yarn), turned into cos/sin tables [positions, rot_dim/2] that the backend's
// rope op reads.
#pragma once

#include <string>
#include <vector>

namespace moe {

struct RopeParameters {
  std::string type = "default";  // "default", "linear", "yarn"
  double theta = 10000.0;
  int rot_dim = 0;                // dimensions rotated per head
  double factor = 1.0;            // linear and yarn
  // yarn
  double original_max_position_embeddings = 0;
  double beta_fast = 32, beta_slow = 1;
  double mscale = 0, mscale_all_dim = 0;  // 0 = absent
  double attention_factor = 0;            // 0 = derive as transformers does
  bool truncate = true;
};

struct RopeTables {
  std::vector<float> cos, sin;  // [positions, rot_dim/2]
  int positions = 0;
  int half = 0;
};

// Inverse frequencies (rot_dim/2 values) and the factor cos/sin are multiplied by.
std::vector<double> rope_inverse_frequencies(const RopeParameters& p, double* attention_factor);

RopeTables make_rope_tables(const RopeParameters& p, int positions);

// yarn's mscale: 0.1 * mscale * ln(scale) + 1 for scale > 1, else 1.
double yarn_mscale(double scale, double mscale);

}  // namespace moe
