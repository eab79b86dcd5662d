// Maps core/activation_layout.h tensor names onto members of the structs the
// model math uses, so the Chunk can move any unit's tensors in and out of the
// stash by iterating the layout: the layout stays the one list of names.
#ifndef CHRONOS_WORKER_MODEL_NAMED_FIELDS_H_
#define CHRONOS_WORKER_MODEL_NAMED_FIELDS_H_

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <initializer_list>
#include <string>
#include <utility>

namespace chronos::worker {

template <typename T>
using NamedField = std::pair<const char*, at::Tensor T::*>;

// The member of *self named `name`; throws (TORCH_CHECK) for an unknown name,
// which means the layout and the model code disagree.
template <typename T>
at::Tensor* FindField(T* self, std::initializer_list<NamedField<T>> fields,
                      const std::string& name) {
  for (const auto& [n, member] : fields) {
    if (name == n) return &(self->*member);
  }
  TORCH_CHECK(false, "unknown stash tensor name '", name, "'");
  return nullptr;
}

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_MODEL_NAMED_FIELDS_H_
