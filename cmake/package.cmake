# The Debian package, made by CPack from the install rules: `cpack -G DEB` in the build tree, or
# scripts/package.sh. It holds what `cmake --install` installs (eplb-gen, the headers, the static
# library eplb::core and the CMake package files) under /usr; dpkg-shlibdeps (dpkg-dev) computes
# the runtime dependencies of eplb-gen.
install(FILES ${PROJECT_SOURCE_DIR}/LICENSE
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/eplb-gen RENAME copyright)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME eplb-gen)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "The eplb-gen authors")
set(CPACK_PACKAGE_CONTACT "The eplb-gen authors")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
string(CONCAT CPACK_PACKAGE_DESCRIPTION
    "eplb-gen reads the per-step expert loads that MoE servers recorded, plans replica placement "
    "and writes physical-to-logical expert mappings for vLLM, SGLang, TensorRT-LLM and "
    "vllm-ascend. The package also holds the C++ headers (the header-only loader and recorder), "
    "the static library and the CMake package (find_package(eplb)).")
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_STRIP_FILES ON)  # eplb-gen only: CMake never strips a static library
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # eplb-gen_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION devel)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# find_package(eplb) looks for these (eplbConfig.cmake) and eplb::core links them; eplb-gen
# itself needs only the Depends that dpkg-shlibdeps finds.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS
    "cmake, g++, libeigen3-dev, libsimdjson-dev, libfmt-dev, zlib1g-dev, libzstd-dev")
include(CPack)
