/* A shared library named like a plugin that exports no moe_plugin_entry. */
int moe_not_the_entry(void) { return 42; }
