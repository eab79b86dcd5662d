#include "client/job_watcher.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "client/job_view.h"
#include "core/proto_json.h"

namespace chronos::client {
namespace {

constexpr char kClearLine[] = "\r\033[K";

// Registers a context for the duration of one call.
class ScopedRegistration {
 public:
  ScopedRegistration(CallCanceller* canceller, grpc::ClientContext* ctx)
      : canceller_(canceller), ctx_(ctx) {
    ok_ = canceller_ == nullptr || canceller_->Register(ctx_);
  }
  ~ScopedRegistration() {
    if (canceller_ != nullptr && ok_) canceller_->Unregister(ctx_);
  }
  bool ok() const { return ok_; }

 private:
  CallCanceller* canceller_;
  grpc::ClientContext* ctx_;
  bool ok_ = false;
};

class Printer {
 public:
  Printer(const WatchOptions& options, int64_t total) : o_(options), total_(total) {}

  void Update(const v1::JobUpdate& u) {
    if (o_.progress == nullptr) return;
    std::ostream& out = *o_.progress;
    if (o_.json_lines) {
      out << ProtoToJson(u, /*include_defaults=*/false).dump() << "\n" << std::flush;
      return;
    }
    if (u.has_event()) {
      if (o_.interactive && !line_.empty()) out << kClearLine;
      out << EventLine(u.event()) << "\n";
      if (o_.interactive && !line_.empty()) out << line_;
    }
    if (u.has_iteration()) {
      line_ = ProgressLine(u.iteration(), total_);
      if (o_.interactive) {
        out << kClearLine << line_;
      } else {
        out << line_ << "\n";
      }
    }
    out << std::flush;
  }

  void Finish() {
    if (o_.progress != nullptr && o_.interactive && !line_.empty() && !o_.json_lines) {
      *o_.progress << "\n" << std::flush;
    }
  }

 private:
  const WatchOptions& o_;
  const int64_t total_;
  std::string line_;
};

absl::StatusOr<v1::Job> GetJob(ControlClient& client, const std::string& name,
                               CallCanceller* canceller) {
  grpc::ClientContext ctx;
  client.Prepare(&ctx);
  ScopedRegistration reg(canceller, &ctx);
  if (!reg.ok()) return absl::CancelledError("interrupted");
  v1::GetJobRequest req;
  req.set_name(name);
  v1::Job job;
  grpc::Status s = client.stub().GetJob(&ctx, req, &job);
  if (!s.ok()) return client.Convert(s);
  return job;
}

}  // namespace

bool CallCanceller::Register(grpc::ClientContext* ctx) {
  absl::MutexLock lock(&mu_);
  if (cancelled_) return false;
  current_ = ctx;
  return true;
}

void CallCanceller::Unregister(grpc::ClientContext* ctx) {
  absl::MutexLock lock(&mu_);
  if (current_ == ctx) current_ = nullptr;
}

void CallCanceller::Cancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
  if (current_ != nullptr) current_->TryCancel();
}

bool CallCanceller::cancelled() const {
  absl::MutexLock lock(&mu_);
  return cancelled_;
}

absl::StatusOr<v1::Job> WatchUntilTerminal(ControlClient& client, const std::string& name,
                                           const WatchOptions& options) {
  absl::StatusOr<v1::Job> job = GetJob(client, name, options.canceller);
  if (!job.ok()) return job.status();
  Printer printer(options, job->spec().training().iterations());
  int64_t since = options.since_sequence;
  int failures = 0;
  while (true) {
    grpc::ClientContext ctx;
    // No deadline: the stream lasts as long as the job. An unreachable
    // server still fails fast because calls do not wait for readiness.
    client.Prepare(&ctx, /*with_deadline=*/false);
    absl::Status stream_status;
    bool terminal = false;
    {
      ScopedRegistration reg(options.canceller, &ctx);
      if (!reg.ok()) return absl::CancelledError("interrupted");
      v1::WatchJobRequest req;
      req.set_name(name);
      req.set_since_sequence(since);
      std::unique_ptr<grpc::ClientReaderInterface<v1::JobUpdate>> reader =
          client.stub().WatchJob(&ctx, req);
      v1::JobUpdate update;
      while (reader->Read(&update)) {
        failures = 0;
        since = std::max(since, update.sequence());
        if (update.has_job()) {
          // Snapshots carry no history; keep the spec from GetJob.
          if (update.job().has_metadata()) {
            *job->mutable_metadata() = update.job().metadata();
          }
          *job->mutable_status() = update.job().status();
        }
        printer.Update(update);
        if (options.on_update) options.on_update(update);
        // Only the stream decides: the job fetched before it may already be
        // terminal while the stream is still replaying its history.
        if ((update.has_job() && IsTerminal(update.job().status().state())) ||
            (update.has_event() && IsTerminal(update.event().state()))) {
          terminal = true;
          break;
        }
      }
      if (terminal) ctx.TryCancel();  // we are done; don't wait for the server to close
      grpc::Status s = reader->Finish();
      if (!terminal) stream_status = client.Convert(s);
    }
    if (options.canceller != nullptr && options.canceller->cancelled()) {
      printer.Finish();
      return absl::CancelledError("interrupted");
    }
    if (!terminal) {
      // The stream ended without the job ending: a restarted coordinator,
      // or a server that closes idle streams. Ask for the state, then go on.
      if (!stream_status.ok() && stream_status.code() != absl::StatusCode::kUnavailable) {
        printer.Finish();
        return stream_status;
      }
      absl::StatusOr<v1::Job> now = GetJob(client, name, options.canceller);
      if (now.ok()) {
        *job->mutable_metadata() = now->metadata();
        *job->mutable_status() = now->status();
        terminal = IsTerminal(job->status().state());
      } else if (now.status().code() != absl::StatusCode::kUnavailable) {
        printer.Finish();
        return now.status();
      }
    }
    if (terminal) {
      printer.Finish();
      // The terminal snapshot may predate the final message; one more read
      // gets the finished status (completion time, message).
      absl::StatusOr<v1::Job> final_job = GetJob(client, name, options.canceller);
      if (final_job.ok() && IsTerminal(final_job->status().state())) {
        *job->mutable_status() = final_job->status();
      }
      return job;
    }
    if (++failures > options.max_reconnects) {
      printer.Finish();
      return stream_status.ok()
                 ? absl::UnavailableError(absl::StrCat("lost the watch on job ", name))
                 : stream_status;
    }
    absl::SleepFor(options.reconnect_delay);
  }
}

}  // namespace chronos::client
