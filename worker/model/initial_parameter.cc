// InitialParameter (declared in chunk.h): every parameter's starting value is
// a pure function of (seed, layer, name), drawn on a CPU generator so that
// the values do not depend on the device, the partition or creation order.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cstdint>
#include <string>

#include "worker/model/chunk.h"

namespace chronos::worker {
namespace {

// FNV-1a over the bytes, then a splitmix64 finalizer: neighbouring layers
// and similar names must not give correlated generator seeds.
uint64_t HashParameter(uint64_t seed, int layer, const std::string& name) {
  uint64_t h = 1469598103934665603ULL;
  auto mix = [&h](uint64_t byte) {
    h ^= byte;
    h *= 1099511628211ULL;
  };
  for (int i = 0; i < 8; ++i) mix((seed >> (8 * i)) & 0xff);
  const uint32_t l = static_cast<uint32_t>(layer);
  for (int i = 0; i < 4; ++i) mix((l >> (8 * i)) & 0xff);
  for (unsigned char c : name) mix(c);
  h += 0x9e3779b97f4a7c15ULL;
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
  return h ^ (h >> 31);
}

bool IsNormGain(const std::string& name) {
  const std::string leaf = name.substr(name.rfind('.') + 1);
  return leaf == "g1" || leaf == "g2" || leaf == "gf";
}

}  // namespace

at::Tensor InitialParameter(uint64_t seed, int layer, const std::string& name,
                            at::IntArrayRef shape, double std) {
  if (IsNormGain(name)) return at::ones(shape, at::kFloat);
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(HashParameter(seed, layer, name));
  return at::normal(0.0, std, shape, gen, at::TensorOptions().dtype(at::kFloat));
}

}  // namespace chronos::worker
