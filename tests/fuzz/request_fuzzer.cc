// libFuzzer target: a worker's handling of a request written by a hostile
// client into the shared region.
//
// Input: 8 bytes of the region header's requestBytes (the length the peer
// claims, any value), then the request area's contents. As in the worker,
// readMessage() checks the length and segment table against the area, and
// dispatchRequest() validates names and dispatches. The handler stubs out
// the LLVM session and fork(), and never runs the test-only requests.
#include <capnp/serialize.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "forkserver/control_dispatch.h"
#include "forkserver/request_dispatch.h"
#include "ipc/message_area.h"

namespace {

using namespace forkgym;
using namespace forkgym::forkserver;

constexpr std::string_view kObservations[] = {"Ir", "IrInstructionCount", "Autophase", "InstCount", "IsRunnable",
                                              "Bitcode"};
constexpr std::string_view kRewards[] = {"IrInstructionCount", "IrInstructionCountOz", "ObjectTextSizeBytes"};
constexpr uint32_t kActions = 134;

class StubWorker : public RequestHandler {
 public:
  std::optional<size_t> findObservation(std::string_view name) override {
    for (size_t i = 0; i < std::size(kObservations); ++i) {
      if (kObservations[i] == name) return i;
    }
    return std::nullopt;
  }
  std::optional<size_t> findReward(std::string_view name) override {
    for (size_t i = 0; i < std::size(kRewards); ++i) {
      if (kRewards[i] == name) return i;
    }
    return std::nullopt;
  }
  bool step(const std::vector<uint32_t>& actions, const std::vector<size_t>& observations,
            const std::vector<size_t>& rewards, proto::Reply::Builder reply) override {
    for (uint32_t action : actions) {
      if (action >= kActions) {
        setFailure(reply.initFailure(), makeError(Outcome::InvalidRequest, "unknown action " + std::to_string(action)));
        return false;
      }
    }
    auto result = reply.initStep();
    auto values = result.initObservations(static_cast<unsigned>(observations.size()));
    for (unsigned i = 0; i < observations.size(); ++i) {
      const std::string_view name = kObservations[observations[i]];
      switch (name.size() % 4) {
        case 0: values[i].setInt64(static_cast<int64_t>(i)); break;
        case 1: values[i].initInt64List(3).set(1, 7); break;
        case 2: values[i].setText(std::string(name)); break;
        default: values[i].setBoolean(true);
      }
    }
    auto out = result.initRewards(static_cast<unsigned>(rewards.size()));
    for (unsigned i = 0; i < rewards.size(); ++i) out.set(i, 0.5 * i);
    return !actions.empty() && actions.back() == kActions - 1;  // "the episode ended"
  }
  void run(const RunRequest& request, proto::Reply::Builder reply) override {
    if (request.repetitions > 1000) {
      setFailure(reply.initFailure(), makeError(Outcome::InvalidRequest, "too many repetitions"));
      return;
    }
    RunResult result;
    result.runs.resize(request.repetitions);
    writeRunResult(result, reply.initRun());
  }
  void peek(const std::vector<uint32_t>& actions, size_t, proto::Reply::Builder reply) override {
    auto result = reply.initPeek();
    result.initKnown(static_cast<unsigned>(actions.size()));
    result.initRewards(static_cast<unsigned>(actions.size()));
    result.initActionHadNoEffect(static_cast<unsigned>(actions.size()));
  }
  void setParameter(std::string_view key, std::string_view value, proto::Reply::Builder reply) override {
    if (key != "choices") {
      setFailure(reply.initFailure(), makeError(Outcome::InvalidRequest, "unknown parameter; it accepts choices"));
      return;
    }
    reply.setParameter(std::string(value));
  }
  void fork(proto::Reply::Builder reply, std::vector<UniqueFd>& fds) override {
    auto result = reply.initFork();
    result.setPid(42);
    result.setRegionBytes(1 << 20);
  }
  void testSyscall(int64_t number, proto::Reply::Builder reply) override {
    // Never make the call: just answer as a worker whose call returned.
    setFailure(reply.initFailure(), makeError(Outcome::InvalidRequest, "syscall " + std::to_string(number)));
  }
  void testCloseChannel() override {}
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < sizeof(uint64_t)) return 0;
  uint64_t claimed;
  std::memcpy(&claimed, data, sizeof(claimed));
  // The request area: word-aligned, as in the region.
  std::vector<capnp::word> area((size - sizeof(uint64_t) + sizeof(capnp::word) - 1) / sizeof(capnp::word) + 1);
  std::memcpy(area.data(), data + sizeof(uint64_t), size - sizeof(uint64_t));
  std::span<std::byte> bytes(reinterpret_cast<std::byte*>(area.data()), area.size() * sizeof(capnp::word));

  StubWorker worker;
  auto reader = readMessage(bytes, claimed);
  if (!reader) {
    auto reply = failureReply(reader.error());
    capnp::messageToFlatArray(*reply);
    return 0;
  }
  auto reply = dispatchRequest(**reader, worker);
  auto flat = capnp::messageToFlatArray(*reply.message);
  if (flat.size() == 0) __builtin_trap();
  return 0;
}
