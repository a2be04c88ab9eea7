/* A backend plugin built with a chosen ABI major (FAKE_ABI_MAJOR) and score (FAKE_SCORE). Its op
 * table is all NULL: the host must refuse or skip it before calling any op. */
#include "moe/moe_plugin.h"

static int32_t fake_score(void) { return FAKE_SCORE; }

static moe_backend_ops fake_ops = {sizeof(moe_backend_ops)};

static moe_plugin_descriptor fake_descriptor = {
    sizeof(moe_plugin_descriptor),
    (uint32_t)((FAKE_ABI_MAJOR << 16) | 0),
    MOE_PLUGIN_KIND_BACKEND,
    "fake",
    "0.0.1",
    fake_score,
    &fake_ops,
};

MOE_PLUGIN_EXPORT const moe_plugin_descriptor* moe_plugin_entry(const moe_host_api* host) {
  (void)host;
  return &fake_descriptor;
}
