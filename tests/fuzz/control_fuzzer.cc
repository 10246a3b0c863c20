// libFuzzer target: the zygote's handling of bytes from a hostile client.
//
// The input is the byte stream a client writes on its control connection.
// It goes through the real socket read path (FrameAssembler, over a
// socketpair) and every complete frame through the real dispatch
// (dispatchControlFrame) with the connection's hello state carried across
// frames. The handler stubs out what would fork or load a benchmark, but
// builds full replies, which are then serialised as the zygote would.
// Invariant 4: nothing here may crash, leak (ASan) or hang.
#include <sys/socket.h>
#include <unistd.h>

#include <capnp/serialize.h>

#include <cstddef>
#include <cstdint>

#include "forkserver/control_dispatch.h"
#include "ipc/control_socket.h"

namespace {

using namespace forkgym;
using namespace forkgym::forkserver;

class StubZygote : public ControlHandler {
 public:
  std::optional<uint64_t> actionTableHash(std::string_view backend) override {
    if (backend != "llvm") return std::nullopt;
    return 0x0123456789abcdefull;
  }
  void hello(proto::Hello::Builder out) override {
    out.setProtocolVersion(proto::PROTOCOL_VERSION);
    auto backends = out.initBackends(1);
    backends[0].setName("llvm");
    backends[0].setVersion("19.1.7");
    backends[0].setActionTableHash(0x0123456789abcdefull);
  }
  Status describe(std::string_view backend, proto::Description::Builder out) override {
    if (backend != "llvm") return makeError(Outcome::InvalidRequest, "unknown backend; this server has llvm");
    out.setBackend("llvm");
    auto observations = out.initObservations(1);
    observations[0].setName("InstCount");
    observations[0].setType(proto::ValueType::INT64_LIST);
    observations[0].initShape(1).set(0, 2);
    auto names = observations[0].initFeatureNames(2);
    names.set(0, "a");
    names.set(1, "b");
    auto actions = out.initActions(2);
    actions[0].setFlag("-mem2reg");
    actions[1].setFlag("-forkgym-test-segfault");
    actions[1].setTestOnly(true);
    out.initCachedBenchmarks(1).set(0, "file:///x.c");
    return okStatus();
  }
  void status(proto::ServerStatus::Builder out) override {
    out.initSpareBenchmarks(1).set(0, "file:///x.c");
    out.setSparesWanted(2);
  }
  void workerExit(int32_t pid, proto::WorkerExit::Builder out) override {
    out.setKnown(pid > 0 && pid % 3 == 0);
    out.setExitCode(pid);
  }
  Result<SessionStart> newSession(const std::string& backend, const std::string& benchmark,
                                  proto::Limits::Reader limits, proto::SessionStarted::Builder out,
                                  std::vector<UniqueFd>& fds, const std::optional<RunConfig>&) override {
    if (backend != "llvm") return makeError(Outcome::InvalidRequest, "unknown backend; this server has llvm");
    // What the real zygote reads before it forks.
    const uint64_t memoryMb = limits.getAddressSpaceMb();
    const uint32_t cpu = limits.getCpuSecondsPerStep();
    if (benchmark.empty() || benchmark.size() > 4096) return makeError(Outcome::InvalidRequest, "bad benchmark");
    out.setPid(static_cast<int32_t>(memoryMb ^ cpu));
    out.setRegionBytes(memoryMb);
    out.setBenchmark(benchmark);
    // The real zygote defers sessions whose benchmark must be loaded first.
    return benchmark.size() % 2 ? SessionStart::Deferred : SessionStart::Started;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return 0;
  int bufferBytes = 1 << 20;
  setsockopt(pair[0], SOL_SOCKET, SO_SNDBUF, &bufferBytes, sizeof(bufferBytes));
  setsockopt(pair[1], SOL_SOCKET, SO_RCVBUF, &bufferBytes, sizeof(bufferBytes));
  UniqueFd client(pair[0]), server(pair[1]);
  size_t written = 0;
  while (written < size) {
    const ssize_t n = write(client.get(), data + written, size - written);
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
  client.reset();  // EOF after the input: a truncated last frame must be handled

  StubZygote zygote;
  FrameAssembler assembler;
  bool greeted = false;
  for (int frames = 0; frames < 256; ++frames) {
    const auto state = assembler.readFrom(server.get());
    if (state != FrameAssembler::State::HaveFrame) break;
    auto frame = assembler.takeFrame();
    auto reply = dispatchControlFrame(frame, greeted, zygote);
    if (!reply.message) {
      // Deferred: answered later, so nothing (no descriptor either) goes out now.
      if (!reply.fds.empty()) __builtin_trap();
      continue;
    }
    auto flat = capnp::messageToFlatArray(*reply.message);
    if (flat.size() == 0) __builtin_trap();
  }
  return 0;
}
