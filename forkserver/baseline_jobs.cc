#include "forkserver/baseline_jobs.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

namespace forkgym::forkserver {

void BaselineJobs::start(CachedEntry& entry, const std::string& uri) {
  const passes::Backend& backend = *entry.backend;
  if (backend.baselines == nullptr) return;
  const std::string key = backend.baselines->key(*entry.benchmark);
  if (key.empty()) return;  // it has them all
  if (disk_) {
    if (auto stored = disk_->read(key)) {
      if (auto adopted = backend.baselines->adopt(*entry.benchmark, *stored)) {
        ++counts_.diskHits;
        return;
      } else {
        spdlog::warn("baseline cache {}: ignored the entry for {}: {}", disk_->directory(), uri,
                     adopted.error().message);
      }
    }
  }
  ContentKey content{&backend, entry.contentHash};
  if (jobs_.contains(content)) return;
  auto child = LoaderChild::startBaselines(backend, *entry.benchmark, uri, limits_);
  if (!child) {
    // Sessions compute what they need; nothing is lost but time.
    spdlog::warn("cannot compute the baselines of {} in the background: {}", uri, child.error().message);
    return;
  }
  jobs_.emplace(std::move(content), Job{std::move(*child), key});
}

void BaselineJobs::addPollFds(std::vector<pollfd>& fds) const {
  for (const auto& [content, job] : jobs_) {
    if (!job.child.resultComplete()) fds.push_back({job.child.resultFd(), POLLIN, 0});
  }
}

int BaselineJobs::msUntilNextDeadline() const {
  if (jobs_.empty()) return -1;
  auto earliest = std::chrono::steady_clock::time_point::max();
  for (const auto& [content, job] : jobs_) earliest = std::min(earliest, job.child.deadline());
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(earliest - std::chrono::steady_clock::now());
  return static_cast<int>(std::clamp<int64_t>(left.count(), 0, 24 * 3600 * 1000));
}

void BaselineJobs::onReadable(int fd) {
  for (auto it = jobs_.begin(); it != jobs_.end(); ++it) {
    if (it->second.child.resultComplete() || it->second.child.resultFd() != fd) continue;
    it->second.child.readAvailable();
    if (it->second.child.done()) finish(it, it->second.child.finishBaselines());
    return;
  }
}

void BaselineJobs::onExit(pid_t pid, const ExitStatus& status) {
  for (auto it = jobs_.begin(); it != jobs_.end(); ++it) {
    if (it->second.child.pid() != pid) continue;
    it->second.child.exited(status);
    it->second.child.readAvailable();
    if (it->second.child.done()) finish(it, it->second.child.finishBaselines());
    return;
  }
}

void BaselineJobs::expire() {
  const auto now = std::chrono::steady_clock::now();
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    auto next = std::next(it);
    if (it->second.child.deadline() <= now) {
      it->second.child.kill();
      finish(it, makeError(Outcome::TimedOut, "took longer than " + std::to_string(limits_.timeout.count()) +
                                                  " s (forkgym-server --load-timeout)"));
    }
    it = next;
  }
}

void BaselineJobs::finish(std::map<ContentKey, Job>::iterator job, Result<std::string> encoded) {
  finished_.push_back(Finished{job->first, std::move(job->second.key), std::move(encoded)});
  jobs_.erase(job);
}

void BaselineJobs::adoptFinished(BenchmarkCache& cache) {
  for (auto& finished : std::exchange(finished_, {})) {
    const auto& [backend, contentHash] = finished.content;
    if (!finished.encoded) {
      ++counts_.failed;
      spdlog::warn("baselines of {}: {}; sessions compute the ones they need", contentHash,
                   finished.encoded.error().message);
      continue;
    }
    CachedEntry* entry = cache.find(backend, contentHash);
    // Evicted meanwhile; or the child's answer is not one for this content,
    // which adopt() refuses (and then nothing is stored either).
    if (entry == nullptr) continue;
    if (auto adopted = backend->baselines->adopt(*entry->benchmark, *finished.encoded); !adopted) {
      ++counts_.failed;
      spdlog::error("baselines of {}: refused the baseline child's answer: {}", contentHash, adopted.error().message);
      continue;
    }
    ++counts_.computed;
    if (disk_) {
      if (auto written = disk_->write(finished.key, *finished.encoded); !written) {
        spdlog::warn("baseline cache {}: {}", disk_->directory(), written.error().message);
      }
    }
  }
}

}  // namespace forkgym::forkserver
