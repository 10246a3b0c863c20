// LLVM's observation table: one row per observation space, with the
// function that computes it. The worker's dispatch, the description and the
// clients' spaces all come from these rows; adding an observation is a row
// here and its function.
//
// Deterministic: the same benchmark and actions give the same value.
// Platform-dependent: the value depends on the host's code generator.
// Everything about the IR is portable; object code is not.
#include <llvm/IR/Module.h>
#include <llvm/Support/raw_ostream.h>

#include "passes/llvm/autophase.h"
#include "passes/llvm/bitcode.h"
#include "passes/llvm/cpu_info.h"
#include "passes/llvm/inst2vec.h"
#include "passes/llvm/inst_count.h"
#include "passes/llvm/lexed_ir.h"
#include "passes/llvm/object_size.h"
#include "passes/llvm/programl.h"
#include "passes/llvm/session.h"
#include "passes/run_config.h"
#include "passes/runner.h"

namespace forkgym::passes {
namespace {

using Value = Result<ObservationValue>;

Value ir(LlvmSession& session) {
  std::string text;
  llvm::raw_string_ostream stream(text);
  session.module().print(stream, nullptr);
  stream.flush();
  return ObservationValue(std::move(text));
}

Value irSha1(LlvmSession& session) {
  return ObservationValue(sha1Hex(writeBitcode(session.module(), UseListOrder::Drop)));
}

// The state hash: everything a later pass can read, use-list order included
// (see bitcode.h for what that does and does not cover).
Value bitcodeSha1(LlvmSession& session) { return ObservationValue(sha1Hex(session.bitcode())); }

Value bitcode(LlvmSession& session) {
  const std::string& bytes = session.bitcode();
  return ObservationValue(std::vector<uint8_t>(bytes.begin(), bytes.end()));
}

Value cpuInfo(LlvmSession&) {
  const HostCpuInfo& info = hostCpuInfo();
  if (!info.ok) return makeError(Outcome::InvalidRequest, "CpuInfo is unavailable on this machine: " + info.error);
  return ObservationValue(info.json);
}

Value irInstructionCount(LlvmSession& session) {
  return ObservationValue(static_cast<int64_t>(session.module().getInstructionCount()));
}

Value instCount(LlvmSession& session) { return ObservationValue(instCountFeatures(session.module())); }

Value instCountNorm(LlvmSession& session) {
  return ObservationValue(instCountDensities(instCountFeatures(session.module())));
}

Value autophase(LlvmSession& session) { return ObservationValue(autophaseFeatures(session.module())); }

Value lexedIr(LlvmSession& session) {
  auto tokens = lexModule(session.module());
  if (!tokens.ok()) return tokens.takeError();
  return ObservationValue(lexedIrColumnsJson(*tokens));
}

Value lexedIrTuple(LlvmSession& session) {
  auto tokens = lexModule(session.module());
  if (!tokens.ok()) return tokens.takeError();
  return ObservationValue(lexedIrRecordsJson(*tokens));
}

Value inst2vecPreprocessedText(LlvmSession& session) {
  auto statements = inst2vecStatements(session.module());
  if (!statements.ok()) return statements.takeError();
  return ObservationValue(inst2vecStatementsJson(*statements));
}

Value programl(LlvmSession& session) {
  auto graph = buildProgramlGraph(session.module());
  if (!graph.ok()) return graph.takeError();
  return ObservationValue(encodeProgramGraph(*graph));
}

Value objectTextSizeBytes(LlvmSession& session) {
  auto size = session.objectTextSize();
  if (!size.ok()) return size.takeError();
  return ObservationValue(*size);
}

// The benchmark's baselines (computed once per benchmark, when first needed).
template <CostPoint point>
Value instructionCountAt(LlvmSession& session) {
  auto count = session.baseline(RewardCost::InstructionCount, point);
  if (!count.ok()) return count.takeError();
  return ObservationValue(*count);
}

template <CostPoint point>
Value objectTextSizeAt(LlvmSession& session) {
  auto size = session.baseline(RewardCost::ObjectTextSize, point);
  if (!size.ok()) return size.takeError();
  if (*size == kNoObjectFile) return noObjectFile(session.module().getTargetTriple());
  return ObservationValue(*size);
}

// ---- Runnable benchmarks (passes/runner.h): the program, built and run.

Value runtime(LlvmSession& session) {
  auto ran = session.measuredRuns(RunProgram::Current, "Runtime");
  if (!ran.ok()) return ran.takeError();
  std::vector<double> seconds;
  for (const ProgramRun& run : ran->runs) seconds.push_back(run.wallSeconds);
  return ObservationValue(std::move(seconds));
}

Value instructionsRetired(LlvmSession& session) {
  auto ran = session.measuredRuns(RunProgram::Current, "InstructionsRetired");
  if (!ran.ok()) return ran.takeError();
  std::vector<int64_t> counts;
  for (const ProgramRun& run : ran->runs) {
    if (!run.hasInstructions) {
      return makeError(Outcome::InvalidRequest, "InstructionsRetired is unavailable on this machine: " +
                                                    ran->instructionsUnavailable + "; Runtime (wall time) is not");
    }
    counts.push_back(static_cast<int64_t>(run.instructions));
  }
  return ObservationValue(std::move(counts));
}

Value buildtime(LlvmSession& session) {
  if (!session.runConfig()) return noRunConfig("Buildtime");
  auto object = session.programObject(RunProgram::Current);
  if (!object.ok()) return object.takeError();
  auto built = buildAndRun(*session.runConfig(), *object, {}, false, /*buildOnly=*/true);
  if (!built.ok()) return built.takeError();
  if (!built->built) return buildFailure(*built);
  return ObservationValue(std::vector<double>{built->buildSeconds});
}

// CompilerGym's: whether the benchmark has a build (run) configuration at
// all — the question a client asks before the others, so false, not an
// error, without one.
Value isBuildable(LlvmSession& session) { return ObservationValue(session.runConfig().has_value()); }
Value isRunnable(LlvmSession& session) { return ObservationValue(session.runConfig().has_value()); }

Value textSizeBytes(LlvmSession& session) {
  auto size = session.textSize();
  if (!size.ok()) return size.takeError();
  return ObservationValue(*size);
}

Space count(std::string name, std::string description, bool platformDependent = false) {
  return {.name = std::move(name),
          .type = ValueType::Int64,
          .low = 0,
          .platformDependent = platformDependent,
          .description = std::move(description)};
}

Space counts(std::string name, std::span<const std::string_view> features, std::string description) {
  return {.name = std::move(name),
          .type = ValueType::Int64List,
          .shape = {static_cast<int64_t>(features.size())},
          .low = 0,
          .featureNames = toStrings(features),
          .description = std::move(description)};
}

// CompilerGym's dict views: the list, presented as a dict keyed by `keys`.
Space asDict(Space space, std::string name, std::vector<std::string> keys, std::string description) {
  space.name = std::move(name);
  space.featureNames = std::move(keys);
  space.shape = {static_cast<int64_t>(space.featureNames.size())};
  space.form = ValueForm::FeatureDict;
  space.description = std::move(description);
  return space;
}

Space densities(std::string name, std::vector<std::string> featureNames, std::string description) {
  return {.name = std::move(name),
          .type = ValueType::Float64List,
          .shape = {static_cast<int64_t>(featureNames.size())},
          .low = 0,
          .high = 1,
          .featureNames = std::move(featureNames),
          .float32 = true,
          .description = std::move(description)};
}

const std::vector<ObservationRow<LlvmSession>>& rows() {
  static const std::vector<ObservationRow<LlvmSession>> table = {
      {{.name = "Ir", .type = ValueType::Text, .description = "the module's textual LLVM IR"}, &ir},
      {{.name = "IrSha1",
        .type = ValueType::Text,
        .description = "SHA-1 of the module's bitcode without use-list order (40 hex digits); equals the sha1sum "
                       "of the reproducer's output"},
       &irSha1},
      {{.name = "BitcodeSha1",
        .type = ValueType::Text,
        .description = "SHA-1 of the Bitcode observation (40 hex digits): the module with its use-list order, "
                       "which later passes read; the state hash validate(fresh_process=True) compares across "
                       "processes"},
       &bitcodeSha1},
      {{.name = "Bitcode",
        .type = ValueType::Bytes,
        .description = "the module's bitcode, with use-list order, as opt writes it"},
       &bitcode},
      {{.name = "BitcodeFile",
        .type = ValueType::Bytes,
        // Each call makes a new file: the path differs (CompilerGym's flag).
        .deterministic = false,
        .form = ValueForm::File,
        .fileSuffix = ".bc",
        .description = "the path of a new file holding the Bitcode observation, which the caller owns: the "
                       "worker sends the bytes and the client writes them (the worker's sandbox writes no "
                       "files), in env.observation.file_directory (default: the system temporary directory)"},
       &bitcode},
      {{.name = "CpuInfo",
        .type = ValueType::Text,
        .platformDependent = true,
        .form = ValueForm::Json,
        .description = "the host's processor, read by the zygote with libcpuinfo: name, cores_count, and "
                       "l1i/l1d/l2/l3/l4 _cache_size (bytes, -1: none) and _cache_count"},
       &cpuInfo},
      {count("IrInstructionCount", "instructions in the module (Module::getInstructionCount())"), &irInstructionCount},
      {count("IrInstructionCountO0", "instructions after the default<O0> pipeline"), &instructionCountAt<kO0>},
      {count("IrInstructionCountO3", "instructions after the default<O3> pipeline"), &instructionCountAt<kO3>},
      {count("IrInstructionCountOz", "instructions after the default<Oz> pipeline"), &instructionCountAt<kOz>},
      {counts("InstCount", instCountFeatureNames(), "3 totals and one count per opcode"), &instCount},
      {asDict(counts("InstCount", instCountFeatureNames(), ""), "InstCountDict", instCountDictKeys(),
              "InstCount as a dict: '<feature>Count' -> count"),
       &instCount},
      {densities("InstCountNorm", toStrings(instCountFeatureNames().subspan(1)),
                 "InstCount[1:] / max(InstCount[0], 1): each count per instruction (float32)"),
       &instCountNorm},
      {asDict(densities("InstCountNormDict", {}, ""), "InstCountNormDict", instCountDensityKeys(),
              "InstCountNorm as a dict: '<feature>Density' -> count per instruction"),
       &instCountNorm},
      {counts("Autophase", autophaseFeatureNames(), "the 56 Autophase features"), &autophase},
      {asDict(counts("Autophase", autophaseFeatureNames(), ""), "AutophaseDict", toStrings(autophaseFeatureNames()),
              "Autophase as a dict: feature name -> count"),
       &autophase},
      {{.name = "LexedIr",
        .type = ValueType::Text,
        .form = ValueForm::Json,
        .description = "the IR's tokens as LLVM's IR lexer (LLLexer) reads them: {token_id, token_kind, "
                       "token_category, token_value}, one list each (LLVM 19's token kinds)"},
       &lexedIr},
      {{.name = "LexedIrTuple",
        .type = ValueType::Text,
        .featureNames = toStrings(kLexedTokenFields),
        .form = ValueForm::Records,
        .description = "LexedIr as a list of LexedToken(ID, kind, category, value), one per token"},
       &lexedIrTuple},
      // Inst2vecEmbeddingIndices and Inst2vec are this row looked up in the
      // vocabulary, which the client holds (forkgym/datasets/inst2vec.py).
      {{.name = "Inst2vecPreprocessedText",
        .type = ValueType::Text,
        .form = ValueForm::Json,
        .description = "the module as inst2vec statements (Ben-Nun et al., NeurIPS 2018): one per global, "
                       "function header, block label and instruction, structs inlined, pointers typed where the "
                       "IR reveals the pointee, identifiers, immediates and strings normalised"},
       &inst2vecPreprocessedText},
      // One wire form, two presentations: the client decodes the same bytes.
      {{.name = "Programl",
        .type = ValueType::Bytes,
        .form = ValueForm::ProgramGraph,
        .description = "the ProGraML program graph (Cummins et al., ICML 2021) as ProGraML builds it: a networkx "
                       "MultiDiGraph of instruction, variable and constant nodes (type 0/1/2; text, "
                       "features.full_text, function, block) joined by control, data and call edges (flow "
                       "0/1/2, position), node 0 the external root"},
       &programl},
      {{.name = "ProgramlJson",
        .type = ValueType::Bytes,
        .form = ValueForm::ProgramGraphNodeLink,
        .description = "the Programl graph as its node-link JSON document (networkx's node_link_data: "
                       "directed, multigraph, graph, nodes, links)"},
       &programl},
      {count("ObjectTextSizeBytes",
             "Berkeley text bytes (llvm-size) of the object `clang -c -x ir` makes of the module for the host "
             "(-O0 code generation, CompilerGym's definition)",
             true),
       &objectTextSizeBytes},
      {count("ObjectTextSizeO0", ".text bytes after the default<O0> pipeline", true), &objectTextSizeAt<kO0>},
      {count("ObjectTextSizeO3", ".text bytes after the default<O3> pipeline", true), &objectTextSizeAt<kO3>},
      {count("ObjectTextSizeOz", ".text bytes after the default<Oz> pipeline", true), &objectTextSizeAt<kOz>},
      // Runnable benchmarks: invalid_request without a run configuration.
      {{.name = "Runtime",
        .type = ValueType::Float64List,
        .low = 0,
        .deterministic = false,
        .platformDependent = true,
        .needsRunConfig = true,
        .description = "wall-clock seconds of each run of the state's program on its first input set: "
                       "runtime_observation_count runs after runtime_warmup_runs_count unmeasured ones"},
       &runtime},
      {{.name = "InstructionsRetired",
        .type = ValueType::Int64List,
        .low = 0,
        .deterministic = false,
        .platformDependent = true,
        .needsRunConfig = true,
        .description = "user-space instructions each run of Runtime retired (perf_event_open); "
                       "invalid_request where the kernel exposes no counter"},
       &instructionsRetired},
      {{.name = "Buildtime",
        .type = ValueType::Float64List,
        .shape = {1},
        .low = 0,
        .deterministic = false,
        .platformDependent = true,
        .needsRunConfig = true,
        .description = "seconds the build command (linking the state's object file) took"},
       &buildtime},
      {{.name = "IsBuildable", .type = ValueType::Bool, .description = "the benchmark has a build command"},
       &isBuildable},
      {{.name = "IsRunnable", .type = ValueType::Bool, .description = "the benchmark has a run configuration"},
       &isRunnable},
      {[] {
         Space space = count("TextSizeBytes", ".text bytes (Berkeley, as llvm-size) of the linked program", true);
         space.needsRunConfig = true;
         return space;
       }(),
       &textSizeBytes},
  };
  return table;
}

}  // namespace

std::span<const ObservationRow<LlvmSession>> LlvmSession::observationRows() { return rows(); }

}  // namespace forkgym::passes
