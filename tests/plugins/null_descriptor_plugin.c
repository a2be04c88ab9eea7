/* A plugin whose entry returns no descriptor. */
#include "moe/moe_plugin.h"

MOE_PLUGIN_EXPORT const moe_plugin_descriptor* moe_plugin_entry(const moe_host_api* host) {
  (void)host;
  return 0;
}
