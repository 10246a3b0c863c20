// forkgym._forkgym: the private extension module behind the Python package.
//
// A thin wrapper of the C++ client (client/connection.h, client/env.h); the
// gymnasium API, spaces, wrappers and errors live in pure Python on top.
//
// Lifecycle (Python process, any thread, as in C++):
//   1. Connection.spawn(server_path=...) or Connection.connect(socket).
//   2. Env(connection).reset(uri); step()/observe()/fork()/close().
//   3. step_many(envs, ...) posts every env's step before collecting any, so
//      N workers compute in parallel with one Python call.
//   4. post_steps(envs, ...) / collect_steps(envs, at_least): the same in two
//      halves, for the asynchronous vector env: collect_steps returns as
//      soon as `at_least` of the posted steps can finish (the rest keep
//      running), waiting with the GIL released.
// Every call that may wait — or take a lock another thread may hold while
// it waits — releases the GIL first, so no thread ever holds the GIL while
// waiting for a client lock. Failures that Python should see as exceptions
// go through forkgym.errors (registered with set_error_factory) so each
// outcome maps to one typed exception; step failures that end an episode
// come back as a StepResult instead (the gym contract: truncate).
// A step waits in slices and asks Python between them whether a signal
// handler raised (Ctrl-C's KeyboardInterrupt): if so the worker is killed,
// the episode ends, and the exception propagates with the episode's
// reproducer attached as its `reproducer` attribute.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/unique_ptr.h>
#include <nanobind/stl/vector.h>
#include <nanobind/stl/string_view.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/tuple.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "client/connection.h"
#include "client/env.h"
#include "client/program_graph.h"
#include "base/outcome.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace forkgym::python {
namespace {

// Thrown inside the bindings, translated to forkgym.errors.* by the factory.
struct ClientError : std::exception {
  Error error;
  explicit ClientError(Error e) : error(std::move(e)) {}
  const char* what() const noexcept override { return error.message.c_str(); }
};

nb::handle g_module;  // borrowed: the module outlives every call into it

template <typename T>
T unwrap(Result<T>&& result) {
  if (!result) throw ClientError(result.takeError());
  return std::move(*result);
}

std::chrono::milliseconds toMillis(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000.0));
}

// Moves a vector into a numpy array that owns it: no per-element work.
template <typename T, typename Elem = T>
nb::object toArray(std::vector<T>&& values) {
  auto* owned = new std::vector<T>(std::move(values));
  nb::capsule owner(owned, [](void* p) noexcept { delete static_cast<std::vector<T>*>(p); });
  const size_t shape[1] = {owned->size()};
  return nb::cast(nb::ndarray<nb::numpy, Elem, nb::ndim<1>>(reinterpret_cast<Elem*>(owned->data()), 1, shape, owner));
}

nb::object toPython(Observation&& value) {
  return std::visit(
      [](auto&& v) -> nb::object {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, int64_t>) {
          return nb::int_(v);
        } else if constexpr (std::is_same_v<V, std::vector<int64_t>>) {
          return toArray<int64_t>(std::move(v));
        } else if constexpr (std::is_same_v<V, std::string>) {
          // IR escapes non-printable bytes, but never fail a step on text.
          PyObject* text = PyUnicode_DecodeUTF8(v.data(), static_cast<Py_ssize_t>(v.size()), "surrogateescape");
          if (!text) throw nb::python_error();
          return nb::steal(text);
        } else if constexpr (std::is_same_v<V, std::vector<uint8_t>>) {
          return toArray<uint8_t, int8_t>(std::move(v));
        } else if constexpr (std::is_same_v<V, bool>) {
          return nb::bool_(v);
        } else if constexpr (std::is_same_v<V, double>) {
          return nb::float_(v);
        } else if constexpr (std::is_same_v<V, std::vector<double>>) {
          return toArray<double>(std::move(v));
        } else {
          // Int64Map: a dict, in the backend's order.
          nb::dict counts;
          for (const NamedCount& entry : v) counts[nb::str(entry.name.data(), entry.name.size())] = nb::int_(entry.count);
          return counts;
        }
      },
      std::move(value));
}

nb::str pythonText(const std::string& text) {
  PyObject* str = PyUnicode_DecodeUTF8(text.data(), static_cast<Py_ssize_t>(text.size()), "surrogateescape");
  if (!str) throw nb::python_error();
  return nb::steal<nb::str>(str);
}

// Raw CPython calls for the graph's hundreds of thousands of small objects
// (about twice as fast as nanobind's accessors); every reference is owned by
// an nb::object, so an error midway leaks nothing.
nb::object owned(PyObject* object) {
  if (object == nullptr) throw nb::python_error();
  return nb::steal(object);
}

void setItem(const nb::object& dict, const nb::object& key, const nb::object& value) {
  if (PyDict_SetItem(dict.ptr(), key.ptr(), value.ptr()) != 0) throw nb::python_error();
}

nb::object integer(uint32_t value) { return owned(PyLong_FromUnsignedLong(value)); }

// A program graph's bytes (form programGraph) as what networkx builds a
// MultiDiGraph from, with ProGraML's attribute names: ([node i's attrs],
// [(source, target, edge attrs)], graph attrs). Each distinct text becomes
// one Python str, shared by every node that has it.
nb::tuple programGraphParts(nb::bytes data) {
  auto graph = unwrap(readProgramGraph(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.c_str()), data.size())));
  std::vector<nb::str> strings;
  strings.reserve(graph.strings.size());
  for (const std::string& text : graph.strings) strings.push_back(pythonText(text));
  const nb::str type("type"), text("text"), function("function"), block("block"), features("features"),
      fullText("full_text"), flow("flow"), position("position");
  const nb::object nodes = owned(PyList_New(static_cast<Py_ssize_t>(graph.nodeCount())));
  for (size_t i = 0; i < graph.nodeCount(); ++i) {
    const nb::object node = owned(PyDict_New());
    setItem(node, type, integer(graph.nodeType[i]));
    setItem(node, text, strings[graph.nodeText[i]]);
    setItem(node, function, integer(graph.nodeFunction[i]));
    setItem(node, block, integer(graph.nodeBlock[i]));
    if (graph.nodeFullText[i] != ProgramGraphColumns::kNoFullText) {
      const nb::object full = owned(PyList_New(1));
      PyList_SET_ITEM(full.ptr(), 0, nb::object(strings[graph.nodeFullText[i]]).release().ptr());
      const nb::object nodeFeatures = owned(PyDict_New());
      setItem(nodeFeatures, fullText, full);
      setItem(node, features, nodeFeatures);
    }
    PyList_SET_ITEM(nodes.ptr(), static_cast<Py_ssize_t>(i), nb::object(node).release().ptr());
  }
  const nb::object edges = owned(PyList_New(static_cast<Py_ssize_t>(graph.edgeCount())));
  for (size_t j = 0; j < graph.edgeCount(); ++j) {
    const nb::object edge = owned(PyDict_New());
    setItem(edge, flow, integer(graph.edgeFlow[j]));
    setItem(edge, position, integer(graph.edgePosition[j]));
    const nb::object triple = owned(PyTuple_New(3));
    PyTuple_SET_ITEM(triple.ptr(), 0, integer(graph.edgeSource[j]).release().ptr());
    PyTuple_SET_ITEM(triple.ptr(), 1, integer(graph.edgeTarget[j]).release().ptr());
    PyTuple_SET_ITEM(triple.ptr(), 2, nb::object(edge).release().ptr());
    PyList_SET_ITEM(edges.ptr(), static_cast<Py_ssize_t>(j), nb::object(triple).release().ptr());
  }
  nb::list functions;
  for (const std::string& name : graph.functionNames) {
    nb::dict entry;
    entry["name"] = pythonText(name);
    entry["module"] = 0;
    functions.append(entry);
  }
  nb::dict moduleFeatures;
  for (const auto& [key, value] : graph.moduleFeatures) {
    nb::list values;
    values.append(pythonText(value));
    moduleFeatures[pythonText(key)] = values;
  }
  nb::dict module;
  module["name"] = pythonText(graph.moduleName);
  module["features"] = moduleFeatures;
  nb::list modules;
  modules.append(module);
  nb::dict attributes;
  attributes["function"] = functions;
  attributes["module"] = modules;
  return nb::make_tuple(nodes, edges, attributes);
}

// Lets a wait in C++ notice Python signal handlers: the check briefly takes
// the GIL and runs any pending handler (PyErr_CheckSignals, which does
// nothing outside the main thread). The exception a handler raised is kept
// until the GIL is held again, then raised from the call.
//
// `stop`, when given, also asks to stop: another thread sets it (see
// PyEnv::interrupt) to end a step waited for on a thread Python delivers no
// signal to; the step then ends Interrupted with no Python exception.
class SignalCheck {
 public:
  explicit SignalCheck(const std::atomic<bool>* stop = nullptr) {
    interruption_.requested = [this, stop] {
      if (stop && stop->load(std::memory_order_acquire)) return true;
      nb::gil_scoped_acquire acquire;
      if (PyErr_CheckSignals() == 0) return false;
      PyErr_Fetch(&type_, &value_, &traceback_);
      PyErr_NormalizeException(&type_, &value_, &traceback_);
      return true;
    };
  }
  SignalCheck(const SignalCheck&) = delete;
  SignalCheck& operator=(const SignalCheck&) = delete;
  ~SignalCheck() {  // with the GIL held
    Py_XDECREF(type_);
    Py_XDECREF(value_);
    Py_XDECREF(traceback_);
  }

  const Interruption* interruption() const { return &interruption_; }
  bool raised() const { return type_ != nullptr; }
  // With the GIL held: the exception a handler raised (None if none), with
  // the episode's reproducer attached.
  nb::object take(const Reproducer* reproducer) {
    if (!type_) return nb::none();
    nb::object exception = nb::borrow(value_);
    if (reproducer) PyObject_SetAttrString(value_, "reproducer", nb::cast(*reproducer).ptr());
    if (traceback_) PyException_SetTraceback(value_, traceback_);
    Py_CLEAR(type_);
    Py_CLEAR(value_);
    Py_CLEAR(traceback_);
    return exception;
  }
  // With the GIL held: raises what a handler raised, if anything.
  void raiseIfRaised(const Reproducer* reproducer) {
    if (!type_) return;
    nb::object exception = take(reproducer);
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exception.ptr())), exception.ptr());
    throw nb::python_error();
  }

 private:
  Interruption interruption_;
  PyObject* type_ = nullptr;
  PyObject* value_ = nullptr;
  PyObject* traceback_ = nullptr;
};

// A StepResult with observations already converted, so Python reads plain
// attributes.
struct PyStepResult {
  uint16_t outcome = 0;
  std::string message;
  int signal = 0;
  nb::list stack;  // (module, offset, exact) per frame, innermost first
  nb::list observations;
  std::vector<double> rewards;
  bool actionHadNoEffect = false;
  Reproducer reproducer;
};

PyStepResult convert(StepResult&& result) {
  PyStepResult out;
  out.outcome = static_cast<uint16_t>(result.outcome);
  out.message = std::move(result.message);
  out.signal = result.signal;
  for (const auto& frame : result.stack) out.stack.append(nb::make_tuple(frame.module, frame.offset, frame.exact));
  for (auto& value : result.observations) out.observations.append(toPython(std::move(value)));
  out.rewards = std::move(result.rewards);
  out.actionHadNoEffect = result.actionHadNoEffect;
  out.reproducer = std::move(result.reproducer);
  return out;
}

const char* valueTypeName(ValueType type) {
  switch (type) {
    case ValueType::Int64:
      return "int64";
    case ValueType::Int64List:
      return "int64_list";
    case ValueType::Text:
      return "text";
    case ValueType::Bytes:
      return "bytes";
    case ValueType::Bool:
      return "bool";
    case ValueType::Float64:
      return "float64";
    case ValueType::Float64List:
      return "float64_list";
    case ValueType::Int64Map:
      return "int64_map";
  }
  return "unknown";
}

// ipc/protocol.capnp's names of the value types.
const char* protocolTypeName(ValueType type) {
  static constexpr const char* kNames[] = {"int64", "int64List", "text", "bytes",
                                           "boolean", "float64", "float64List", "int64Map"};
  const auto index = static_cast<size_t>(type);
  return index < std::size(kNames) ? kNames[index] : "unknown";
}

// The LLVM backend's facts under the names protocol 1 gave them, for the
// package's existing callers (env.connection.server.opt_path, ...); the
// neutral form is server.backends.
std::string llvmProperty(const ServerInfo& server, std::string_view key) {
  const BackendInfo* llvm = server.backend("llvm");
  return llvm ? llvm->property(key) : std::string();
}

std::shared_ptr<Connection> spawnConnection(std::string serverPath, std::vector<std::string> preload, size_t cacheMb,
                                            std::string logLevel, std::vector<std::string> extraArgs) {
  ServerOptions options;
  options.serverPath = std::move(serverPath);
  options.preload = std::move(preload);
  options.cacheMb = cacheMb;
  options.logLevel = std::move(logLevel);
  options.extraArgs = std::move(extraArgs);
  Result<std::shared_ptr<Connection>> connection = makeError(Outcome::ServerError, "not started");
  {
    nb::gil_scoped_release release;
    connection = Connection::spawn(options);
  }
  return unwrap(std::move(connection));
}

std::shared_ptr<Connection> connectTo(const std::string& socketPath) {
  Result<std::shared_ptr<Connection>> connection = makeError(Outcome::ServerError, "not connected");
  {
    nb::gil_scoped_release release;
    connection = Connection::connect(socketPath);
  }
  return unwrap(std::move(connection));
}

std::shared_ptr<const Description> describe(Connection& connection, const std::string& backend) {
  Result<std::shared_ptr<const Description>> description = makeError(Outcome::ServerError, "no description");
  {
    nb::gil_scoped_release release;
    description = connection.describe(backend);
  }
  return unwrap(std::move(description));
}

// Python's handle on an episode. Holds the C++ Env by value; a fork makes a
// new PyEnv around the returned Env.
struct PyEnv {
  Env env;
  // Set by interrupt(), from any thread: the step this env waits for (or
  // the next one) ends Interrupted, its worker killed, until cleared.
  std::atomic<bool> interruptRequested{false};

  PyEnv(std::shared_ptr<Connection> connection, double stepTimeout, double resetTimeout, uint64_t addressSpaceMb,
        uint32_t cpuSecondsPerStep, std::string backend)
      : env(std::move(connection), [&] {
          EnvOptions options;
          options.backend = std::move(backend);
          options.stepTimeout = toMillis(stepTimeout);
          options.resetTimeout = toMillis(resetTimeout);
          options.limits.addressSpaceMb = addressSpaceMb;
          options.limits.cpuSecondsPerStep = cpuSecondsPerStep;
          return options;
        }()) {}
  explicit PyEnv(Env&& forked) : env(std::move(forked)) {}

  void reset(const std::string& benchmark, const std::optional<RunConfig>& runConfig) {
    Status status = okStatus();
    {
      nb::gil_scoped_release release;
      status = env.reset(benchmark, runConfig ? &*runConfig : nullptr);
    }
    unwrap(std::move(status));
  }

  RunResult run(const std::string& program, const std::vector<uint32_t>& inputSets, uint32_t repetitions,
                uint32_t warmups, uint32_t runTimeoutSeconds) {
    RunRequest request;
    if (program == "current") {
      request.program = RunProgram::Current;
    } else if (program == "original") {
      request.program = RunProgram::Original;
    } else if (program == "asan") {
      request.program = RunProgram::Asan;
    } else {
      throw ClientError(makeError(Outcome::InvalidRequest, "unknown program '" + program +
                                                               "'; run() builds 'current', 'original' or 'asan'"));
    }
    request.inputSets = inputSets;
    request.repetitions = repetitions;
    request.warmups = warmups;
    request.runTimeoutSeconds = runTimeoutSeconds;
    Result<RunResult> result = makeError(Outcome::SessionClosed, "no answer");
    {
      nb::gil_scoped_release release;
      result = env.run(request);
    }
    return unwrap(std::move(result));
  }

  PyStepResult step(const std::vector<uint32_t>& actions, const std::vector<std::string>& observations,
                    const std::vector<std::string>& rewards) {
    StepResult result;
    SignalCheck signals(&interruptRequested);
    {
      nb::gil_scoped_release release;
      result = env.step(actions, observations, rewards, signals.interruption());
    }
    signals.raiseIfRaised(&result.reproducer);
    return convert(std::move(result));
  }

  void beginStep(const std::vector<uint32_t>& actions, const std::vector<std::string>& observations,
                 const std::vector<std::string>& rewards) {
    Status status = okStatus();
    {
      nb::gil_scoped_release release;
      status = env.beginStep(actions, observations, rewards);
    }
    unwrap(std::move(status));
  }

  PyStepResult finishStep() {
    StepResult result;
    SignalCheck signals(&interruptRequested);
    {
      nb::gil_scoped_release release;
      result = env.finishStep(signals.interruption());
    }
    signals.raiseIfRaised(&result.reproducer);
    return convert(std::move(result));
  }

  // [(reward, action_had_no_effect) or None per action]: see Env::peek.
  nb::list peek(const std::vector<uint32_t>& actions, const std::string& reward) {
    Result<std::vector<Env::Peeked>> answers = makeError(Outcome::SessionClosed, "no answer");
    {
      nb::gil_scoped_release release;
      answers = env.peek(actions, reward);
    }
    nb::list out;
    for (const Env::Peeked& answer : unwrap(std::move(answers))) {
      out.append(answer.known ? nb::object(nb::make_tuple(answer.reward, answer.actionHadNoEffect)) : nb::none());
    }
    return out;
  }

  std::string setParameter(const std::string& key, const std::string& value) {
    Result<std::string> answer = makeError(Outcome::SessionClosed, "no answer");
    {
      nb::gil_scoped_release release;
      answer = env.setParameter(key, value);
    }
    return unwrap(std::move(answer));
  }

  // A search's inner step (forkgym.cli.strategies): `action` stepped once in
  // a fork of this episode, with reward space `reward`. The fork is kept and
  // returned only when the return it reaches, `before` + its reward, beats
  // `keepAbove` (or equals it, with `keepTies`); else it is closed here.
  // Returns the step's result and the kept fork or None (also when the step
  // ended the fork's episode: a crash or timeout, which the result says).
  // The GIL is released from the fork to the close, so a search's threads
  // take it only between candidates, and no Python env is built for a fork
  // that is not kept. (Python floats are these doubles: the sum and the
  // comparison are the ones Python would make.)
  std::pair<PyStepResult, nb::object> tryAction(uint32_t action, const std::string& reward, double before,
                                                double keepAbove, bool keepTies) {
    Result<Env> copy = makeError(Outcome::SessionClosed, "not forked");
    StepResult result;
    bool keep = false;
    SignalCheck signals(&interruptRequested);
    {
      nb::gil_scoped_release release;
      copy = env.fork();
      if (copy) {
        const uint32_t actions[] = {action};
        const std::string rewards[] = {reward};
        result = copy->step(actions, {}, rewards, signals.interruption());
        if (result.ok() && !result.rewards.empty()) {
          const double reached = before + result.rewards[0];
          keep = reached > keepAbove || (keepTies && reached == keepAbove);
        }
        if (!keep) copy->close();
      }
    }
    Env forked = unwrap(std::move(copy));
    signals.raiseIfRaised(&result.reproducer);
    PyStepResult converted = convert(std::move(result));
    return {std::move(converted), keep ? nb::cast(std::make_unique<PyEnv>(std::move(forked))) : nb::none()};
  }

  std::unique_ptr<PyEnv> fork() {
    Result<Env> copy = makeError(Outcome::SessionClosed, "not forked");
    {
      nb::gil_scoped_release release;
      copy = env.fork();
    }
    return std::make_unique<PyEnv>(unwrap(std::move(copy)));
  }

  void close() {
    nb::gil_scoped_release release;
    env.close();
  }
};

// One native call for a vector env: post every step, then collect every
// reply, so the workers run concurrently while Python waits once.
// Returns (results, interrupt): when a signal handler raised while waiting
// (Ctrl-C), every episode of the call still running is ended (killed, with
// its reproducer) so the results stay consistent, and `interrupt` is the
// exception for the caller to raise once it has recorded them.
std::pair<std::vector<PyStepResult>, nb::object> stepMany(std::vector<PyEnv*> envs,
                                                          const std::vector<std::vector<uint32_t>>& actions,
                                                          const std::vector<std::string>& observations,
                                                          const std::vector<std::string>& rewards) {
  if (actions.size() != envs.size()) {
    throw ClientError(makeError(Outcome::InvalidRequest, "step_many: got " + std::to_string(actions.size()) +
                                                             " action lists for " + std::to_string(envs.size()) +
                                                             " environments; pass one list per environment"));
  }
  std::vector<StepResult> results(envs.size());
  SignalCheck signals;
  {
    nb::gil_scoped_release release;
    std::vector<bool> posted(envs.size(), false);
    for (size_t i = 0; i < envs.size(); ++i) {
      posted[i] = envs[i]->env.beginStep(actions[i], observations, rewards).ok();
    }
    // After an interruption, the rest are collected only if already answered.
    Interruption stopAtOnce{[] { return true; }, std::chrono::milliseconds(0)};
    for (size_t i = 0; i < envs.size(); ++i) {
      const Interruption* interruption = signals.raised() ? &stopAtOnce : signals.interruption();
      // A failed post goes through step(), which turns it into the right
      // outcome (e.g. a dead worker's crash report) on its own.
      results[i] = posted[i] ? envs[i]->env.finishStep(interruption)
                             : envs[i]->env.step(actions[i], observations, rewards, interruption);
    }
  }
  std::vector<PyStepResult> out;
  out.reserve(results.size());
  for (auto& result : results) out.push_back(convert(std::move(result)));
  return {std::move(out), signals.take(nullptr)};
}

// Posts one step to each env (its own actions, observations and rewards).
// An env whose post failed (its worker died, no episode, a step already
// posted) gets its result at once, as step() gives it; the others None.
std::vector<std::optional<PyStepResult>> postSteps(std::vector<PyEnv*> envs,
                                                   const std::vector<std::vector<uint32_t>>& actions,
                                                   const std::vector<std::vector<std::string>>& observations,
                                                   const std::vector<std::vector<std::string>>& rewards) {
  if (actions.size() != envs.size() || observations.size() != envs.size() || rewards.size() != envs.size()) {
    throw ClientError(makeError(Outcome::InvalidRequest,
                                "post_steps: pass one list of actions, of observations and of rewards per "
                                "environment (" + std::to_string(envs.size()) + " environments)"));
  }
  std::vector<std::optional<StepResult>> failed(envs.size());
  {
    nb::gil_scoped_release release;
    for (size_t i = 0; i < envs.size(); ++i) {
      if (envs[i]->env.beginStep(actions[i], observations[i], rewards[i]).ok()) continue;
      // step() turns the failure into the right outcome (a dead worker's
      // crash report, "no episode", "a step is still posted").
      failed[i] = envs[i]->env.step(actions[i], observations[i], rewards[i]);
    }
  }
  std::vector<std::optional<PyStepResult>> out(envs.size());
  for (size_t i = 0; i < envs.size(); ++i) {
    if (failed[i]) out[i] = convert(std::move(*failed[i]));
  }
  return out;
}

// Waits (the GIL released) until at least `atLeast` of `envs`, each with a
// step posted, can finish, and finishes every one ready by then: (indices,
// results, interrupt). When a signal handler raised meanwhile (Ctrl-C),
// every env's step is finished — those not answered yet are killed, with
// their reproducers — and `interrupt` is the exception for the caller to
// raise once it has recorded them.
std::tuple<std::vector<size_t>, std::vector<PyStepResult>, nb::object> collectSteps(std::vector<PyEnv*> envs,
                                                                                    size_t atLeast) {
  std::vector<size_t> ready;
  std::vector<StepResult> results;
  SignalCheck signals;
  Status waitError = okStatus();
  {
    nb::gil_scoped_release release;
    std::vector<Env*> raw;
    raw.reserve(envs.size());
    for (PyEnv* env : envs) raw.push_back(&env->env);
    auto waited = waitForSteps(raw, atLeast, signals.interruption());
    Interruption stopAtOnce{[] { return true; }, std::chrono::milliseconds(0)};
    const bool interrupted = !waited && waited.error().outcome == Outcome::Interrupted && signals.raised();
    if (waited) {
      ready = std::move(*waited);
    } else if (interrupted) {
      for (size_t i = 0; i < envs.size(); ++i) ready.push_back(i);
    } else {
      waitError = waited.takeError();
    }
    results.reserve(ready.size());
    for (size_t i : ready) results.push_back(envs[i]->env.finishStep(interrupted ? &stopAtOnce : nullptr));
  }
  unwrap(std::move(waitError));
  std::vector<PyStepResult> out;
  out.reserve(results.size());
  for (auto& result : results) out.push_back(convert(std::move(result)));
  return {std::move(ready), std::move(out), signals.take(nullptr)};
}

}  // namespace
}  // namespace forkgym::python

NB_MODULE(_forkgym, m) {
  using namespace forkgym;
  using namespace forkgym::python;
  g_module = m;
  m.doc() = "Private extension module of forkgym: a thin wrapper of the C++ client.";
  m.attr("_error_factory") = nb::none();

  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const ClientError& e) {
      nb::object factory = nb::getattr(g_module, "_error_factory", nb::none());
      if (factory.is_none()) {
        PyErr_SetString(PyExc_RuntimeError, e.error.message.c_str());
        return;
      }
      nb::object exception = factory(static_cast<int>(e.error.outcome), e.error.message, e.error.signal);
      PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exception.ptr())), exception.ptr());
    }
  });

  m.def(
      "set_error_factory", [](nb::object factory) { g_module.attr("_error_factory") = factory; }, "factory"_a,
      "Registers callable(outcome: int, message: str, signal: int) -> Exception used for every native error.");

  // The outcome taxonomy, straight from the X-macro in base/outcome.h, so the
  // Python IntEnum is generated from the same single source.
  m.def(
      "outcomes",
      [] {
        nb::list rows;
#define X(name, value, text, doc) rows.append(nb::make_tuple(#name, value, text, doc, endsEpisode(Outcome::name)));
        FORKGYM_OUTCOMES(X)
#undef X
        return rows;
      },
      "[(Name, value, snake_name, doc, ends_episode), ...] from base/outcome.h.");

  m.def("program_graph_parts", &programGraphParts, "data"_a,
        "A Programl observation's bytes as ([node i's attrs], [(source, target, edge attrs)], graph attrs); "
        "ProtocolMismatch when the bytes are not a well-formed graph.");

  m.def("default_socket_path", &defaultSocketPath,
        "Where forkgym-server listens without --socket: a socket in a directory only this user may use.");
  m.def("default_socket_dir", &defaultSocketDir, "The private directory holding the default socket.");
  m.def("default_server_path", &defaultServerPath,
        "Where the C++ client looks for forkgym-server when no path is given ($FORKGYM_SERVER, then the build's).");

  nb::class_<BackendInfo>(m, "BackendInfo")
      .def_ro("name", &BackendInfo::name)
      .def_ro("version", &BackendInfo::version)
      .def_ro("action_table_hash", &BackendInfo::actionTableHash)
      .def_prop_ro("properties",
                   [](const BackendInfo& b) {
                     nb::dict out;
                     for (const auto& [key, value] : b.properties) out[nb::str(key.c_str())] = nb::str(value.c_str());
                     return out;
                   })
      .def("__repr__", [](const BackendInfo& b) { return "BackendInfo(name='" + b.name + "', version='" + b.version + "')"; });

  nb::class_<ServerInfo>(m, "ServerInfo")
      .def_ro("protocol_version", &ServerInfo::protocolVersion)
      .def_ro("backends", &ServerInfo::backends)
      .def(
          "backend", [](const ServerInfo& s, const std::string& name) -> nb::object {
            const BackendInfo* backend = s.backend(name);
            return backend ? nb::cast(*backend) : nb::none();
          },
          "name"_a, "The backend named `name`, or None.")
      // Protocol 1's names for the LLVM backend's facts.
      .def_prop_ro("llvm_version", [](const ServerInfo& s) { const auto* b = s.backend("llvm"); return b ? b->version : std::string(); })
      .def_prop_ro("action_table_hash", [](const ServerInfo& s) { const auto* b = s.backend("llvm"); return b ? b->actionTableHash : uint64_t{0}; })
      .def_prop_ro("host_triple", [](const ServerInfo& s) { return llvmProperty(s, "hostTriple"); })
      .def_prop_ro("host_cpu", [](const ServerInfo& s) { return llvmProperty(s, "hostCpu"); })
      .def_prop_ro("host_features", [](const ServerInfo& s) { return llvmProperty(s, "hostFeatures"); })
      .def_prop_ro("opt_path", [](const ServerInfo& s) { return llvmProperty(s, "optPath"); })
      .def_ro("sandbox_level", &ServerInfo::sandboxLevel)
      .def_ro("sandbox_features", &ServerInfo::sandboxFeatures)
      .def_ro("sandbox_fallbacks", &ServerInfo::sandboxFallbacks);

  nb::class_<ActionDescription>(m, "ActionDescription")
      .def_ro("flag", &ActionDescription::flag)
      .def_ro("replay", &ActionDescription::replay)
      .def_ro("pipeline", &ActionDescription::replay, "Protocol 1's name of `replay` (LLVM: the pipeline text).")
      .def_ro("description", &ActionDescription::description)
      .def_ro("unavailable_reason", &ActionDescription::unavailableReason)
      .def_ro("test_only", &ActionDescription::testOnly);

  nb::class_<SpaceDescription>(m, "SpaceDescription")
      .def_ro("name", &SpaceDescription::name)
      .def_prop_ro("type", [](const SpaceDescription& s) { return protocolTypeName(s.valueType); },
                   "The protocol's ValueType name: int64, int64List, text, bytes, boolean, float64, float64List, "
                   "int64Map.")
      .def_prop_ro("value_type", [](const SpaceDescription& s) { return valueTypeName(s.valueType); })
      .def_prop_ro("length", &SpaceDescription::length)
      .def_prop_ro("shape", [](const SpaceDescription& s) {
        nb::list shape;
        for (int64_t n : s.shape) shape.append(n);
        return nb::tuple(shape);
      })
      .def_ro("low", &SpaceDescription::low)
      .def_ro("high", &SpaceDescription::high)
      .def_ro("feature_names", &SpaceDescription::featureNames)
      .def_ro("deterministic", &SpaceDescription::deterministic)
      .def_ro("platform_dependent", &SpaceDescription::platformDependent)
      .def_ro("needs_run_config", &SpaceDescription::needsRunConfig)
      .def_ro("form", &SpaceDescription::form, "The protocol's ValueForm name: plain, featureDict, json, file, records, programGraph, "
           "programGraphNodeLink.")
      .def_ro("float32", &SpaceDescription::float32)
      .def_ro("file_suffix", &SpaceDescription::fileSuffix)
      .def_ro("description", &SpaceDescription::description);

  nb::class_<ReplayCommand>(m, "ReplayCommand")
      .def_ro("program", &ReplayCommand::program)
      .def_ro("actions_prefix", &ReplayCommand::actionsPrefix)
      .def_ro("separator", &ReplayCommand::separator)
      .def_ro("actions_suffix", &ReplayCommand::actionsSuffix)
      .def_ro("tail", &ReplayCommand::tail);

  nb::class_<Description>(m, "Description")
      .def_ro("backend", &Description::backend)
      .def_ro("version", &Description::version)
      .def_ro("description", &Description::description)
      .def_ro("action_space", &Description::actionSpace)
      .def_ro("actions", &Description::actions)
      .def_ro("observations", &Description::observations)
      .def_ro("rewards", &Description::rewards)
      .def_ro("cached_benchmarks", &Description::cachedBenchmarks)
      .def_ro("replay", &Description::replay,
              "How the replay command line is written from the actions' replay texts (and read back).")
      .def("command_line", [](const Description& d, const std::vector<uint32_t>& actions) { return d.commandLine(actions); },
           "actions"_a, "The backend's replay command line of these actions.");

  nb::class_<Reproducer>(m, "Reproducer")
      .def_ro("benchmark", &Reproducer::benchmark)
      .def_ro("benchmark_hash", &Reproducer::benchmarkHash)
      .def_ro("actions", &Reproducer::actions)
      .def_ro("commandline", &Reproducer::commandline)
      .def("__repr__", [](const Reproducer& r) {
        return "Reproducer(benchmark='" + r.benchmark + "', benchmark_hash='" + r.benchmarkHash +
               "', commandline=\"" + r.commandline + "\")";
      });

  nb::class_<PyStepResult>(m, "StepResult")
      .def_ro("outcome", &PyStepResult::outcome)
      .def_ro("message", &PyStepResult::message)
      .def_ro("signal", &PyStepResult::signal)
      .def_ro("stack", &PyStepResult::stack)
      .def_ro("observations", &PyStepResult::observations)
      .def_ro("rewards", &PyStepResult::rewards)
      .def_ro("action_had_no_effect", &PyStepResult::actionHadNoEffect)
      .def_ro("reproducer", &PyStepResult::reproducer)
      .def_prop_ro("ok", [](const PyStepResult& r) { return r.outcome == static_cast<uint16_t>(Outcome::Ok); });

  // Run configurations (ipc/run_config.h): CompilerGym's
  // BenchmarkDynamicConfig. Contents are bytes; names and arguments str.
  {
    const auto get = [](const RunFile& self) { return nb::bytes(self.content.data(), self.content.size()); };
    const auto set = [](RunFile& self, nb::bytes value) { self.content.assign(value.c_str(), value.size()); };
    nb::class_<RunFile>(m, "RunFile")
        .def(nb::init<>())
        .def("__init__",
             [](RunFile* self, std::string name, nb::bytes content) {
               new (self) RunFile{std::move(name), std::string(content.c_str(), content.size())};
             },
             "name"_a, "content"_a)
        .def_rw("name", &RunFile::name)
        .def_prop_rw("content", get, set)
        .def("__eq__", [](const RunFile& a, const RunFile& b) { return a == b; })
        .def("__repr__", [](const RunFile& f) {
          return "RunFile(name='" + f.name + "', " + std::to_string(f.content.size()) + " bytes)";
        });
  }
  {
    const auto get = [](const RunInputSet& self) { return nb::bytes(self.stdinData.data(), self.stdinData.size()); };
    const auto set = [](RunInputSet& self, nb::bytes value) { self.stdinData.assign(value.c_str(), value.size()); };
    nb::class_<RunInputSet>(m, "RunInputSet")
        .def(nb::init<>())
        .def_rw("name", &RunInputSet::name)
        .def_rw("arguments", &RunInputSet::arguments)
        .def_prop_rw("stdin", get, set)
        .def_rw("files", &RunInputSet::files)
        .def("__eq__", [](const RunInputSet& a, const RunInputSet& b) { return a == b; });
  }
  nb::class_<RunCommand>(m, "RunCommand")
      .def(nb::init<>())
      .def("__init__",
           [](RunCommand* self, std::vector<std::string> argv, uint32_t timeout) {
             new (self) RunCommand{std::move(argv), timeout};
           },
           "argv"_a, "timeout_seconds"_a = 0)
      .def_rw("argv", &RunCommand::argv)
      .def_rw("timeout_seconds", &RunCommand::timeoutSeconds)
      .def("__eq__", [](const RunCommand& a, const RunCommand& b) { return a == b; });
  nb::class_<RunConfig>(m, "RunConfig")
      .def(nb::init<>())
      .def_rw("build_command", &RunConfig::buildCommand)
      .def_rw("build_outfile", &RunConfig::buildOutfile)
      .def_rw("build_timeout_seconds", &RunConfig::buildTimeoutSeconds)
      .def_rw("run_command", &RunConfig::runCommand)
      .def_rw("run_timeout_seconds", &RunConfig::runTimeoutSeconds)
      .def_rw("input_sets", &RunConfig::inputSets)
      .def_rw("output_files", &RunConfig::outputFiles)
      .def_rw("pre_run_commands", &RunConfig::preRunCommands)
      .def_rw("post_run_commands", &RunConfig::postRunCommands)
      .def_rw("origin", &RunConfig::origin)
      .def("__eq__", [](const RunConfig& a, const RunConfig& b) { return a == b; });
  nb::class_<ProgramRun>(m, "ProgramRun")
      .def_ro("input_set", &ProgramRun::inputSet)
      .def_ro("outcome", &ProgramRun::outcome)
      .def_ro("exit_code", &ProgramRun::exitCode)
      .def_ro("signal", &ProgramRun::signal)
      .def_ro("wall_seconds", &ProgramRun::wallSeconds)
      .def_prop_ro("instructions",
                   [](const ProgramRun& r) { return r.hasInstructions ? std::optional<uint64_t>(r.instructions) : std::nullopt; })
      .def_prop_ro("stdout", [](const ProgramRun& r) { return nb::bytes(r.stdoutData.data(), r.stdoutData.size()); })
      .def_ro("stdout_truncated", &ProgramRun::stdoutTruncated)
      .def_prop_ro("stderr", [](const ProgramRun& r) { return nb::bytes(r.stderrData.data(), r.stderrData.size()); })
      .def_ro("stderr_truncated", &ProgramRun::stderrTruncated)
      .def_ro("output_files", &ProgramRun::outputFiles)
      .def_ro("message", &ProgramRun::message)
      .def_ro("timeout_seconds", &ProgramRun::timeoutSeconds);
  nb::class_<RunResult>(m, "RunResult")
      .def_ro("built", &RunResult::built)
      .def_ro("build_outcome", &RunResult::buildOutcome)
      .def_ro("build_seconds", &RunResult::buildSeconds)
      .def_ro("build_diagnostics", &RunResult::buildDiagnostics)
      .def_prop_ro("text_size_bytes",
                   [](const RunResult& r) { return r.textSizeBytes < 0 ? std::nullopt : std::optional<int64_t>(r.textSizeBytes); })
      .def_ro("runs", &RunResult::runs)
      .def_ro("instructions_unavailable", &RunResult::instructionsUnavailable);

  nb::class_<Connection>(m, "Connection")
      .def_static("spawn", &spawnConnection, "server_path"_a = "", "preload"_a = std::vector<std::string>{},
                  "cache_mb"_a = 0, "log_level"_a = "warn", "extra_args"_a = std::vector<std::string>{},
                  "Starts a private forkgym-server that lives exactly as long as this connection.")
      .def_static("connect", &connectTo, "socket_path"_a, "Connects to a running forkgym-server.")
      .def("describe", &describe, "backend"_a = "llvm",
           "A backend's action table and spaces (fetched once per backend, then cached).")
      .def_prop_ro("server", &Connection::server, nb::call_guard<nb::gil_scoped_release>())
      .def_prop_ro("server_pid", &Connection::serverPid)
      .def_prop_ro("zygote_pid", &Connection::zygotePid)
      .def_prop_ro("alive", &Connection::alive)
      .def(
          "state_cache_stats",
          [](Connection& self) -> nb::object {
            Result<ServerStatus> status = makeError(Outcome::ServerError, "no status");
            {
              nb::gil_scoped_release release;
              status = self.status();
            }
            const ServerStatus s = unwrap(std::move(status));
            if (!s.stateCache) return nb::none();
            const StateCacheStatus& c = *s.stateCache;
            nb::dict out;
            out["name"] = c.name;
            out["capacity_bytes"] = c.capacityBytes;
            out["used_bytes"] = c.usedBytes;
            out["entries"] = c.entries;
            out["inserts"] = c.inserts;
            out["evictions"] = c.evictions;
            out["dropped"] = c.dropped;
            out["hits"] = c.hits;
            out["misses"] = c.misses;
            out["rejected"] = c.rejected;
            return out;
          },
          "The node-wide state cache's counts (a dict; hits and misses are the segment's, shared by every "
          "server of this user), or None when the server runs without one.");

  nb::class_<PyEnv>(m, "Env")
      .def(nb::init<std::shared_ptr<Connection>, double, double, uint64_t, uint32_t, std::string>(), "connection"_a,
           "step_timeout"_a = 300.0, "reset_timeout"_a = 300.0, "address_space_mb"_a = 0,
           "cpu_seconds_per_step"_a = 0, "backend"_a = "llvm")
      .def("reset", &PyEnv::reset, "benchmark"_a, "run_config"_a = nb::none(),
           "Starts an episode; run_config (a RunConfig) says how to build and run its program, else the "
           "server attaches its dataset's, if any.")
      .def("run", &PyEnv::run, "program"_a = "current", "input_sets"_a = std::vector<uint32_t>{},
           "repetitions"_a = 1, "warmups"_a = 0, "run_timeout"_a = 0,
           "Builds the program ('current' state, 'original' benchmark, or 'asan': the state under "
           "AddressSanitizer) and runs it on the input sets (all when empty): a RunResult with one "
           "ProgramRun per measured run. run_timeout: the programs' limit in seconds (0: the run "
           "configuration's; never more than it).")
      .def("step", &PyEnv::step, "actions"_a, "observations"_a = std::vector<std::string>{},
           "rewards"_a = std::vector<std::string>{})
      .def(
          "observe",
          [](PyEnv& self, const std::vector<std::string>& observations, const std::vector<std::string>& rewards) {
            return self.step({}, observations, rewards);
          },
          "observations"_a, "rewards"_a = std::vector<std::string>{})
      .def("begin_step", &PyEnv::beginStep, "actions"_a, "observations"_a = std::vector<std::string>{},
           "rewards"_a = std::vector<std::string>{})
      .def("finish_step", &PyEnv::finishStep)
      .def("fork", &PyEnv::fork)
      .def("try_action", &PyEnv::tryAction, "action"_a, "reward"_a, "before"_a, "keep_above"_a, "keep_ties"_a,
           "Steps `action` once in a fork of this episode (reward space `reward`), the GIL released "
           "throughout: (step result, the fork if before + its reward beats keep_above, else None).")
      .def("peek", &PyEnv::peek, "actions"_a, "reward"_a,
           "What stepping each action alone would return for a reward space, where the state cache knows: "
           "(reward, action_had_no_effect) or None per action. Changes nothing.")
      .def("set_parameter", &PyEnv::setParameter, "key"_a, "value"_a,
           "A backend setting (CompilerGym's send_param): the session's answer.")
      .def("close", &PyEnv::close)
      .def(
          "interrupt",
          [](PyEnv& self, bool on) { self.interruptRequested.store(on, std::memory_order_release); }, "on"_a = true,
          "From any thread: the step this env waits for (or the next) ends Interrupted, its worker killed, "
          "until interrupt(False). For steps waited for on threads, where Python delivers no Ctrl-C.")
      .def_prop_ro("alive", [](const PyEnv& self) { return self.env.alive(); })
      .def_prop_ro("worker_pid", [](const PyEnv& self) { return self.env.workerPid(); })
      .def_prop_ro("requests_started", [](const PyEnv& self) { return self.env.requestsStarted(); },
                   "How many requests the worker has started: read it, post a step, wait for it to grow (a "
                   "readiness signal for tests; callable while another thread waits in that step).")
      .def_prop_ro("inherited_from", [](const PyEnv& self) { return self.env.inheritedFrom(); },
                   "In a fork() child: the pid of the process whose episode this env held (0 otherwise).")
      // These take the Env's lock, which a thread waiting in a step holds
      // while it asks for the GIL: release the GIL before taking it.
      .def_prop_ro("benchmark", [](const PyEnv& self) { return self.env.benchmark(); },
                   nb::call_guard<nb::gil_scoped_release>())
      .def_prop_ro("benchmark_hash", [](const PyEnv& self) { return self.env.benchmarkHash(); },
                   nb::call_guard<nb::gil_scoped_release>(),
                   "Hex content hash of the episode's benchmark as the server loaded it at reset().")
      .def_prop_ro("actions", [](const PyEnv& self) { return self.env.actions(); },
                   nb::call_guard<nb::gil_scoped_release>())
      .def_prop_ro("connection", [](PyEnv& self) { return self.env.sharedConnection(); })
      .def("reproducer", [](const PyEnv& self) { return self.env.reproducer(); },
           nb::call_guard<nb::gil_scoped_release>())
      .def(
          "set_step_timeout", [](PyEnv& self, double seconds) { self.env.setStepTimeout(toMillis(seconds)); },
          "seconds"_a, nb::call_guard<nb::gil_scoped_release>());

  m.def("step_many", &stepMany, "envs"_a, "actions"_a, "observations"_a = std::vector<std::string>{},
        "rewards"_a = std::vector<std::string>{},
        "Posts a step to every env, then collects every reply: one native call for a vector env.\n"
        "Returns (results, interrupt): interrupt is the exception a signal handler raised meanwhile (or None).");
  m.def("post_steps", &postSteps, "envs"_a, "actions"_a, "observations"_a, "rewards"_a,
        "Posts one step to each env (per-env actions, observations and rewards). Returns, per env, None when "
        "posted, or the StepResult of an env whose post failed (as step() would give it).");
  m.def("collect_steps", &collectSteps, "envs"_a, "at_least"_a,
        "Waits, the GIL released, until at least `at_least` of the envs (each with a posted step) can finish, "
        "and finishes every one ready by then. Returns (indices, results, interrupt): interrupt is the "
        "exception a signal handler raised meanwhile (every step then finished, the unanswered ones killed), "
        "or None.");
}
