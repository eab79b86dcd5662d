# The GPU configuration (CHRONOS_WITH_CUDA=ON): worker/cuda/ compiles
# against the CUDA LibTorch found by find_package(Torch) and NCCL's header.
# Both come with PyPI's torch wheel (nvidia-nccl is one of its wheels); a
# system NCCL (/usr/include/nccl.h) serves too. Nothing here needs a GPU:
# the binaries link and run on machines without one.
if(NOT TARGET torch_cuda)
  message(FATAL_ERROR "CHRONOS_WITH_CUDA=ON needs a CUDA LibTorch; the one "
    "found at ${TORCH_INSTALL_PREFIX} has no torch_cuda (scripts/install-deps.sh "
    "installs PyPI's torch wheel, a CUDA build)")
endif()
find_path(CHRONOS_NCCL_INCLUDE_DIR nccl.h
  HINTS ${TORCH_INSTALL_PREFIX}/../nvidia/nccl/include $ENV{NCCL_ROOT}/include
  PATHS /usr/include /usr/local/cuda/include)
if(NOT CHRONOS_NCCL_INCLUDE_DIR)
  message(FATAL_ERROR "CHRONOS_WITH_CUDA=ON: nccl.h not found (set NCCL_ROOT)")
endif()
message(STATUS "Chronos GPU runtime: CUDA LibTorch ${Torch_VERSION}, "
  "NCCL header in ${CHRONOS_NCCL_INCLUDE_DIR}")

# What every GPU translation unit needs beyond Torch: NCCL's header and
# c10d's switch for ProcessGroupNCCL.hpp.
add_library(chronos_cuda_deps INTERFACE)
target_include_directories(chronos_cuda_deps INTERFACE ${CHRONOS_NCCL_INCLUDE_DIR})
target_compile_definitions(chronos_cuda_deps INTERFACE USE_C10D_NCCL)
target_link_libraries(chronos_cuda_deps INTERFACE torch_cuda)
