// Status helpers that Abseil 20220623 (Debian 12) lacks. Same semantics as
// the ABSL_* macros of later Abseil releases, so they can be swapped later.
#ifndef CHRONOS_CORE_STATUS_MACROS_H_
#define CHRONOS_CORE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define CHRONOS_RETURN_IF_ERROR(expr)                  \
  do {                                                 \
    ::absl::Status chronos_status_ = (expr);           \
    if (!chronos_status_.ok()) return chronos_status_; \
  } while (0)

#define CHRONOS_STATUS_CONCAT_INNER_(a, b) a##b
#define CHRONOS_STATUS_CONCAT_(a, b) CHRONOS_STATUS_CONCAT_INNER_(a, b)

#define CHRONOS_ASSIGN_OR_RETURN(lhs, expr) \
  CHRONOS_ASSIGN_OR_RETURN_IMPL_(CHRONOS_STATUS_CONCAT_(chronos_statusor_, __LINE__), lhs, expr)

#define CHRONOS_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                   \
  if (!statusor.ok()) return statusor.status();             \
  lhs = std::move(statusor).value()

#endif  // CHRONOS_CORE_STATUS_MACROS_H_
