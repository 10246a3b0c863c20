// Installed datasets as the zygote resolves them (passes/dataset.h), the
// source recipes (passes/source_recipe.h), and the module cached beside a
// source (passes/module_cache.h) — in process, on directories the tests
// make under /tmp/fgtest-passes-*.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "passes/benchmark_uri.h"
#include "passes/dataset.h"
#include "passes/module_cache.h"
#include "passes/source_recipe.h"

namespace forkgym::passes {
namespace {

namespace fs = std::filesystem;

class Scratch {
 public:
  Scratch() {
    char pattern[] = "/tmp/fgtest-passes-dataset-XXXXXX";
    path_ = mkdtemp(pattern);
  }
  ~Scratch() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }
  std::string write(const std::string& relative, const std::string& bytes) const {
    const fs::path file = fs::path(path_) / relative;
    fs::create_directories(file.parent_path());
    std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
    return file.string();
  }

 private:
  std::string path_;
};

const std::string kGoodIni =
    "# a comment\n"
    "uri = benchmark://fgtest-v0\n"
    "kind = source\n"
    "\n"
    "root = contents/src\n"
    "suffix = .c\n"
    "language = c\n"
    "flags = -ferror-limit=1   -w -isystem {dataset}/include\n"
    "runnable = true\n"
    "runnable_prefix = execute/\n";

Result<DatasetSpec> parse(const std::string& text) {
  return parseDatasetIni(text, "/site/datasets/fgtest-v0/dataset.ini", "fgtest-v0", "/site/datasets/fgtest-v0");
}

TEST(DatasetIni, AWellFormedFileGivesTheRecipeWithTheDatasetDirectoryExpanded) {
  auto spec = parse(kGoodIni);
  ASSERT_TRUE(spec) << spec.error().message;
  EXPECT_EQ(spec->kind, DatasetKind::Source);
  EXPECT_EQ(spec->root, "/site/datasets/fgtest-v0/contents/src");
  EXPECT_EQ(spec->suffix, ".c");
  EXPECT_EQ(spec->language, "c");
  EXPECT_EQ(spec->flags, (std::vector<std::string>{"-ferror-limit=1", "-w", "-isystem",
                                                   "/site/datasets/fgtest-v0/include"}));
  EXPECT_TRUE(spec->runnable);
  EXPECT_EQ(spec->runnablePrefix, "execute/");
  auto absolute = parse("kind = prebuilt\nroot = /elsewhere/bitcode/\nsuffix = .bc\r\n");
  ASSERT_TRUE(absolute) << absolute.error().message;
  EXPECT_EQ(absolute->root, "/elsewhere/bitcode");
  EXPECT_EQ(absolute->language, "bitcode");
}

TEST(DatasetIni, EachMalformedLineIsNamedWithWhatIsWrongAndTheFix) {
  const struct {
    std::string text;
    std::string says;
  } cases[] = {
      {"kind = source\nroot = x\nthis is not a setting\n", "dataset.ini:3: expected `key = value`"},
      {"kind = source\nsufix = .c\n", "dataset.ini:2: unknown key 'sufix'"},
      {"kind = source\nkind = prebuilt\n", "dataset.ini:2: 'kind' is given twice (first on line 1)"},
      {"kind = compiled\nroot = x\nsuffix = .c\n", "dataset.ini:1: kind is 'compiled'"},
      {"uri = benchmark://other-v0\nkind = prebuilt\nroot = x\nsuffix = .bc\n", "dataset.ini:1: uri is"},
      {"kind = source\nroot = x\nsuffix = .c\nlanguage = fortran\n", "dataset.ini:4: unknown language 'fortran'"},
      {"kind = source\nroot = x\nsuffix = .c\nlanguage = c\ntransform = poj105\n",
       "dataset.ini:5: unknown transform 'poj105'"},
      {"kind = prebuilt\nroot = x\nsuffix = .c\n", "dataset.ini:3: a prebuilt dataset's files are bitcode"},
      {"kind = prebuilt\nroot = x\nsuffix = .bc\nflags = -w\n", "dataset.ini:4: flags applies to source datasets"},
      {"kind = source\nroot = x\nsuffix = .c\nlanguage = c\nrunnable = yes\n", "dataset.ini:5: runnable is 'yes'"},
      {"kind = source\nroot = x\nsuffix = .c\nlanguage = c\nrunnable_prefix = execute/\n",
       "dataset.ini:5: runnable_prefix says which benchmarks run; it needs runnable = true"},
      {"kind = source\nsuffix = .c\nlanguage = c\n", "has no 'root' line"},
      {"root = x\nsuffix = .c\n", "has no 'kind' line"},
      {"kind = source\nroot = x\nsuffix = .c\n", "has no 'language' line"},
  };
  for (const auto& bad : cases) {
    SCOPED_TRACE(bad.text);
    auto spec = parse(bad.text);
    ASSERT_FALSE(spec);
    EXPECT_EQ(spec.error().outcome, Outcome::BenchmarkError);
    EXPECT_NE(spec.error().message.find(bad.says), std::string::npos) << spec.error().message;
    EXPECT_NE(spec.error().message.find("python -m forkgym datasets install fgtest-v0"), std::string::npos)
        << spec.error().message;
  }
}

TEST(SourceRecipe, Poj104IsCompilerGymsRewrite) {
  const SourceTransform* poj104 = findSourceTransform("poj104");
  ASSERT_NE(poj104, nullptr);
  const std::string header =
      "#include <bits/stdc++.h>\nusing namespace std;\n#define LEN 128\n#define MAX_LENGTH 1024\n#define MAX 1024\n";
  EXPECT_EQ(poj104->apply("main()\n{}\nvoid main(){}\nint f();\nmain(){}"),
            header + "int main()\n{}\nint main(){}\nint f();int main(){}");
  EXPECT_EQ(poj104->apply("int main() {}"), header + "int main() {}");
  EXPECT_EQ(findSourceLanguage("opencl")->clangName, "cl");
  EXPECT_EQ(findSourceLanguage("fortran"), nullptr);
}

class Installed : public ::testing::Test {
 protected:
  std::string install(const std::string& name, const std::string& ini, bool marker = true) {
    scratch_.write("datasets/" + name + "/dataset.ini", ini);
    if (marker) scratch_.write("datasets/" + name + "/.installed", "");
    return scratch_.path() + "/datasets/" + name;
  }
  Scratch scratch_;
  InstalledDatasets datasets_{scratch_.path()};
};

TEST_F(Installed, AFileOfAnInstalledDatasetResolvesWithItsRecipe) {
  const std::string directory = install("fgtest-v0", kGoodIni);
  scratch_.write("datasets/fgtest-v0/contents/src/execute/a-1.c", "int main(void) { return 0; }\n");
  for (std::string uri : {"benchmark://fgtest-v0/execute/a-1", "benchmark://fgtest-v0/execute/a-1?dataset=2#x"}) {
    auto file = datasets_.find(uri);
    ASSERT_TRUE(file) << file.error().message;
    EXPECT_EQ(file->uri, uri);
    EXPECT_EQ(file->path, directory + "/contents/src/execute/a-1.c");
    EXPECT_EQ(file->recipe.dataset, "fgtest-v0");
    EXPECT_EQ(file->recipe.language, "c");
    EXPECT_EQ(file->recipe.name, "execute/a-1.c");
    EXPECT_EQ(file->recipe.flags.back(), directory + "/include");
    EXPECT_TRUE(file->runnable);
  }
  scratch_.write("datasets/fgtest-v0/contents/src/compile/b-1.c", "int f;\n");
  auto compileOnly = datasets_.find("benchmark://fgtest-v0/compile/b-1");
  ASSERT_TRUE(compileOnly) << compileOnly.error().message;
  EXPECT_FALSE(compileOnly->runnable) << "outside runnable_prefix";
}

TEST_F(Installed, WhatCannotBeResolvedSaysWhichDatasetAndWhatToDo) {
  install("fgtest-v0", kGoodIni);
  install("fgtest-half-v0", kGoodIni, /*marker=*/false);
  install("fgtest-broken-v0", "kind = prebuilt\nroot = contents\nsuffix = .bc\nlanguage = c\n");
  const struct {
    std::string uri;
    Outcome outcome;
    std::vector<std::string> says;
  } cases[] = {
      {"benchmark://fgtest-nope-v0/x", Outcome::BenchmarkError,
       {"unknown dataset 'fgtest-nope-v0'", "installed: fgtest-broken-v0, fgtest-v0",
        "python -m forkgym datasets install fgtest-nope-v0"}},
      {"benchmark://fgtest-half-v0/x", Outcome::BenchmarkError,
       {"fgtest-half-v0 is not installed", ".installed", "python -m forkgym datasets install fgtest-half-v0"}},
      {"benchmark://fgtest-broken-v0/x", Outcome::BenchmarkError,
       {"fgtest-broken-v0/dataset.ini:4:", "language is bitcode", "uninstall fgtest-broken-v0"}},
      {"benchmark://fgtest-v0/execute/missing", Outcome::BenchmarkError,
       {"no benchmark 'execute/missing' in the dataset fgtest-v0", "contents/src/execute/missing.c"}},
      {"benchmark://fgtest-v0/../fgtest-half-v0/x", Outcome::InvalidRequest, {"'..'"}},
      {"benchmark://fgtest-v0//etc/passwd", Outcome::InvalidRequest, {"absolute"}},
      {"benchmark://fgtest-v0/a/./b", Outcome::InvalidRequest, {"'.'"}},
      {"benchmark://fgtest-v0", Outcome::InvalidRequest, {"names a dataset, not one of its benchmarks"}},
      {"benchmark://fgtest-v0/", Outcome::InvalidRequest, {"names a dataset"}},
      {"benchmark://../x", Outcome::InvalidRequest, {"is not a dataset name"}},
  };
  for (const auto& bad : cases) {
    SCOPED_TRACE(bad.uri);
    auto file = datasets_.find(bad.uri);
    ASSERT_FALSE(file);
    EXPECT_EQ(file.error().outcome, bad.outcome) << file.error().message;
    for (const std::string& part : bad.says) {
      EXPECT_NE(file.error().message.find(part), std::string::npos) << part << " in: " << file.error().message;
    }
  }
}

TEST_F(Installed, ADatasetIniThatIsNotASmallRegularFileIsRefusedWithoutWaiting) {
  const std::string directory = install("fgtest-v0", kGoodIni);
  const std::string ini = directory + "/dataset.ini";
  fs::remove(ini);
  ASSERT_EQ(mkfifo(ini.c_str(), 0644), 0);  // opened, this would block: it is never opened
  auto fifo = datasets_.find("benchmark://fgtest-v0/x");
  ASSERT_FALSE(fifo);
  EXPECT_NE(fifo.error().message.find("is not a regular file"), std::string::npos) << fifo.error().message;
  fs::remove(ini);
  scratch_.write("datasets/fgtest-v0/dataset.ini", kGoodIni + std::string(kMaxDatasetIniBytes, '#'));
  auto huge = datasets_.find("benchmark://fgtest-v0/x");
  ASSERT_FALSE(huge);
  EXPECT_NE(huge.error().message.find("not a dataset.ini"), std::string::npos) << huge.error().message;
}

TEST_F(Installed, AChangedDatasetIniIsReadAgain) {
  install("fgtest-v0", kGoodIni);
  scratch_.write("datasets/fgtest-v0/contents/src/a.c", "int x;\n");
  auto first = datasets_.find("benchmark://fgtest-v0/a");
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(first->recipe.flags.front(), "-ferror-limit=1");
  // Rewritten as an installer does (a new file renamed over it).
  const std::string replacement = scratch_.write("datasets/fgtest-v0/dataset.ini.new",
                                                 "kind = source\nroot = contents/src\nsuffix = .c\nlanguage = c\n"
                                                 "flags = -DCHANGED\n");
  fs::rename(replacement, scratch_.path() + "/datasets/fgtest-v0/dataset.ini");
  auto second = datasets_.find("benchmark://fgtest-v0/a");
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(second->recipe.flags, std::vector<std::string>{"-DCHANGED"});
}

TEST(SiteData, TheDefaultFollowsThePythonPackagesRule) {
  const auto with = [](const char* site, const char* xdg) {
    const char* names[] = {"FORKGYM_SITE_DATA", "XDG_DATA_HOME"};
    const char* values[] = {site, xdg};
    std::string saved[2];
    bool had[2];
    for (int i = 0; i < 2; ++i) {
      const char* old = getenv(names[i]);
      had[i] = old != nullptr;
      if (old) saved[i] = old;
      if (values[i]) setenv(names[i], values[i], 1); else unsetenv(names[i]);
    }
    std::string result = defaultSiteDataDir();
    for (int i = 0; i < 2; ++i) {
      if (had[i]) setenv(names[i], saved[i].c_str(), 1); else unsetenv(names[i]);
    }
    return result;
  };
  EXPECT_EQ(with("/srv/site", "/xdg"), "/srv/site");
  EXPECT_EQ(with(nullptr, "/xdg"), "/xdg/forkgym");
  EXPECT_EQ(with(nullptr, nullptr), geteuid() == 0 ? std::string("/var/lib/forkgym")
                                                   : std::string(getenv("HOME")) + "/.local/share/forkgym");
}

// ---- The module cached beside a source -------------------------------------

class CachedModules : public ::testing::Test {
 protected:
  void SetUp() override {
    source_ = scratch_.write("prog.c", "int main(void) { return 0; }\n");
    // The source is older than anything stored after it, whatever the
    // file system's clock granularity.
    const timespec old[2] = {{1'000'000'000, 0}, {1'000'000'000, 0}};
    ASSERT_EQ(utimensat(AT_FDCWD, source_.c_str(), old, 0), 0);
  }
  static std::string contents(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), {});
  }
  // The module `bytes` as the loader would send it: compiled from the source
  // as it is now and from `headers` (absolute names) as they are now.
  CachedModule module(const std::string& bytes, const std::vector<std::string>& headers = {}) {
    std::vector<HeaderFile> read;
    for (const std::string& header : headers) read.push_back({header, contents(header)});
    return CachedModule{sourceDigest(contents(source_), read), bytes, headers};
  }
  // The bytes of the cached module readCachedModule() finds fresh.
  std::optional<std::string> fresh(const std::string& key) {
    auto found = readCachedModule(source_, key);
    return found ? std::optional<std::string>(found->bytes) : std::nullopt;
  }
  Scratch scratch_;
  std::string source_;
};

TEST_F(CachedModules, AStoredModuleIsReadBackOnlyForTheSameOptionsAndSource) {
  ASSERT_TRUE(storeCachedModule(source_, "key-a", module("BC\xc0\xde-bytes")));
  EXPECT_EQ(fresh("key-a"), std::optional<std::string>("BC\xc0\xde-bytes"));
  EXPECT_EQ(fresh("key-b"), std::nullopt) << "other compile options";
  // Nothing left beside it but the module.
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(scratch_.path())) names.push_back(entry.path().filename());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"prog.c", "prog.c.bc"}));

  // Replaced atomically by the next store.
  ASSERT_TRUE(storeCachedModule(source_, "key-b", module("other")));
  EXPECT_EQ(fresh("key-b"), std::optional<std::string>("other"));
  EXPECT_EQ(fresh("key-a"), std::nullopt);
}

TEST_F(CachedModules, AFileOfSomeoneElsesByThatNameIsNeverReplaced) {
  const std::string theirs = scratch_.write("prog.c.bc", "a file of yours");
  auto stored = storeCachedModule(source_, "key", module("module bytes"), "/shown/dir");
  ASSERT_FALSE(stored);
  EXPECT_NE(stored.error().message.find("/shown/dir"), std::string::npos) << stored.error().message;
  EXPECT_NE(stored.error().message.find("not a module the server cached"), std::string::npos) << stored.error().message;
  std::ifstream in(theirs, std::ios::binary);
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(in)), {}), "a file of yours");
  EXPECT_EQ(fresh("key"), std::nullopt);
}

TEST_F(CachedModules, AChangedSourceOrATornModuleIsNotUsed) {
  ASSERT_TRUE(storeCachedModule(source_, "key", module("module bytes")));
  ASSERT_TRUE(readCachedModule(source_, "key"));
  // Torn: the bytes are not those the key was written for.
  {
    const int fd = open((source_ + ".bc").c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(pwrite(fd, "X", 1, 0), 1);
    close(fd);
  }
  EXPECT_EQ(fresh("key"), std::nullopt);
  ASSERT_TRUE(storeCachedModule(source_, "key", module("module bytes")));
  // The same length, an older time, other bytes: still not that source.
  scratch_.write("prog.c", "int main(void) { return 1; }\n");
  const timespec old[2] = {{1'000'000'000, 0}, {1'000'000'000, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, source_.c_str(), old, 0), 0);
  EXPECT_EQ(fresh("key"), std::nullopt);
  // The module older than its source: not used either.
  ASSERT_TRUE(storeCachedModule(source_, "key", module("module bytes")));
  ASSERT_TRUE(readCachedModule(source_, "key"));
  const timespec older[2] = {{900'000'000, 0}, {900'000'000, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, (source_ + ".bc").c_str(), older, 0), 0);
  EXPECT_EQ(fresh("key"), std::nullopt);
}

TEST_F(CachedModules, AModuleStandsForItsHeadersToo) {
  const std::string header = scratch_.write("k.h", "#define K 5\n");
  ASSERT_TRUE(storeCachedModule(source_, "key", module("module bytes", {header})));
  auto found = readCachedModule(source_, "key");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->bytes, "module bytes");
  EXPECT_EQ(found->headers, std::vector<std::string>{header}) << "the loader records them";
  // An edited header (same length, same source): another program.
  scratch_.write("k.h", "#define K 6\n");
  EXPECT_EQ(fresh("key"), std::nullopt);
  // A header gone: compiled again (clang says what is missing).
  ASSERT_TRUE(storeCachedModule(source_, "key", module("module bytes", {header})));
  ASSERT_EQ(fresh("key"), std::optional<std::string>("module bytes"));
  ASSERT_EQ(unlink(header.c_str()), 0);
  EXPECT_EQ(fresh("key"), std::nullopt);
}

TEST_F(CachedModules, TheFrameBetweenLoaderAndWriterCarriesTheModuleOrNothing) {
  int ends[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, ends), 0);
  const std::string bytes(200'000, 'm');  // more than a socket buffer: sent while received
  std::thread sender([&] { sendCachedModule(ends[0], {std::string(64, 'a'), bytes, {"k.h", "/abs/sub/j.h"}}); });
  auto received = receiveCachedModule(ends[1]);
  sender.join();
  ASSERT_TRUE(received);
  EXPECT_EQ(received->sourceDigest, std::string(64, 'a'));
  EXPECT_EQ(received->bytes, bytes);
  EXPECT_EQ(received->headers, (std::vector<std::string>{"k.h", "/abs/sub/j.h"}));
  close(ends[0]);
  close(ends[1]);
  // A sender that shuts its side without a whole frame: nothing.
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, ends), 0);
  ASSERT_EQ(write(ends[0], "FGMC\x40", 5), 5);
  shutdown(ends[0], SHUT_WR);
  EXPECT_EQ(receiveCachedModule(ends[1]), std::nullopt);
  close(ends[0]);
  close(ends[1]);
  // A digest that is not hex could smuggle a key: refused.
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, ends), 0);
  sendCachedModule(ends[0], {"key x", "module", {}});
  EXPECT_EQ(receiveCachedModule(ends[1]), std::nullopt);
  close(ends[0]);
  close(ends[1]);
  // Nor may a header's name: each is a line of the key.
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, ends), 0);
  sendCachedModule(ends[0], {std::string(64, 'a'), "module", {"k.h\nfake"}});
  EXPECT_EQ(receiveCachedModule(ends[1]), std::nullopt);
  close(ends[0]);
  close(ends[1]);
}

}  // namespace
}  // namespace forkgym::passes
