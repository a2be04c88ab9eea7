# moe_add_plugin(<target> KIND backend|modality NAME <name> SOURCES ...)
# A plugin is a MODULE library named libmoe_<kind>_<name>.so, built into lib/moe/plugins, exporting
# only moe_plugin_entry (linker version script), built against the plugin ABI headers alone.
function(moe_add_plugin target)
  cmake_parse_arguments(P "" "KIND;NAME" "SOURCES" ${ARGN})
  add_library(${target} MODULE ${P_SOURCES})
  set_target_properties(${target} PROPERTIES
    PREFIX "lib"
    OUTPUT_NAME "moe_${P_KIND}_${P_NAME}"
    LIBRARY_OUTPUT_DIRECTORY ${MOE_PLUGIN_OUTPUT_DIR})
  target_include_directories(${target} PRIVATE ${PROJECT_SOURCE_DIR}/api/include)
  target_link_options(${target} PRIVATE
    "-Wl,--version-script=${PROJECT_SOURCE_DIR}/cmake/plugin.map" -Wl,--no-undefined)
  moe_warnings(${target})
  install(TARGETS ${target} LIBRARY DESTINATION ${MOE_PLUGIN_INSTALL_DIR})
endfunction()
