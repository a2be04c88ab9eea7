# What `cmake --install` lays out for products that embed the SDK: the CMake package
# (find_package(MoeSdk) -> MoeSdk::moe) and a pkg-config file (pkg-config --cflags --libs moe).
# The library, headers and plugins install themselves (api/, cmake/MoePlugin.cmake).
include(CMakePackageConfigHelpers)

set(MOE_CMAKE_INSTALL_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/MoeSdk)

install(EXPORT MoeSdkTargets NAMESPACE MoeSdk:: DESTINATION ${MOE_CMAKE_INSTALL_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/MoeSdkConfig.cmake.in
  ${PROJECT_BINARY_DIR}/cmake/MoeSdkConfig.cmake
  INSTALL_DESTINATION ${MOE_CMAKE_INSTALL_DIR}
  PATH_VARS CMAKE_INSTALL_INCLUDEDIR MOE_PLUGIN_INSTALL_DIR)
# Same major = compatible: the C ABI only breaks on a major version (docs/ABI.md).
write_basic_package_version_file(${PROJECT_BINARY_DIR}/cmake/MoeSdkConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/cmake/MoeSdkConfig.cmake ${PROJECT_BINARY_DIR}/cmake/MoeSdkConfigVersion.cmake
  DESTINATION ${MOE_CMAKE_INSTALL_DIR})

# The .pc file finds the prefix from its own location (${pcfiledir}), so that `cmake --install
# --prefix DIR` gives a working file whatever prefix was configured.
file(RELATIVE_PATH MOE_PC_TO_PREFIX "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
configure_file(${PROJECT_SOURCE_DIR}/cmake/moe.pc.in ${PROJECT_BINARY_DIR}/cmake/moe.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/cmake/moe.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
