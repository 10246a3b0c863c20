// Installed datasets, as the server sees them: benchmark://<name>/<path>
// leads to one file of the dataset installed in
// <site-data>/datasets/<name>/ (the layout the Python package installs,
// forkgym/datasets/):
//   dataset.ini   how to resolve its URIs: `key = value` lines, `#` comments
//                   uri = benchmark://<name>      kind = prebuilt | source
//                   root = contents/<dir>         (or an absolute path)
//                   suffix = .bc                  language = bitcode | c | c++ | opencl
//                   flags = -w ...                ({dataset}: this directory)
//                   transform = poj104            runnable = true
//                   runnable_prefix = execute/    (only the paths under it run)
//   .installed    the marker, written last: without it the dataset is not
//                 installed, whatever else is there
// and the file is <root>/<path><suffix>. A prebuilt dataset's files are
// bitcode or IR, loaded as they are; a source dataset's are compiled on
// demand (source_recipe.h), the module cached beside the source
// (module_cache.h).
//
// Lifecycle (zygote, single-threaded):
//   1. The server picks its site-data directory once (--site-data, else
//      defaultSiteDataDir()) and makes one InstalledDatasets for it.
//   2. On each newSession naming a dataset, a backend's resolve() calls
//      find(): a stat() of the marker and of dataset.ini; the parsed
//      dataset.ini is kept while its (device, inode, mtime, size) stay the
//      same. dataset.ini is read only if it is a small regular file, opened
//      without blocking: a FIFO, a device or a huge file put in its place
//      is refused, never waited on.
// Nothing is compiled or loaded here; the loader does that.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "passes/source_recipe.h"

namespace forkgym::passes {

inline constexpr std::string_view kDatasetIni = "dataset.ini";
inline constexpr std::string_view kInstalledMarker = ".installed";
// dataset.ini is a dozen short lines; anything this large is not one.
inline constexpr uint64_t kMaxDatasetIniBytes = 64 << 10;

enum class DatasetKind : uint8_t { Prebuilt, Source };

struct DatasetSpec {
  std::string name;       // "cbench-v1"
  std::string directory;  // <site>/datasets/<name>
  std::string uri;        // "benchmark://cbench-v1"
  DatasetKind kind = DatasetKind::Prebuilt;
  std::string root;       // absolute
  std::string suffix;     // ".bc"
  std::string language;   // "bitcode" for prebuilt datasets
  std::vector<std::string> flags;  // split on white space, {dataset} expanded
  std::string transform;
  // Its programs run (self-checking, e.g. c-torture's execute/ ones): all
  // of them, or those whose path starts with runnablePrefix.
  bool runnable = false;
  std::string runnablePrefix;
};

// Parses dataset.ini's text (`path` names it in messages; `directory` is the
// dataset's). A BenchmarkError names the file, the line and what is wrong
// with it.
Result<DatasetSpec> parseDatasetIni(std::string_view text, const std::string& path, const std::string& name,
                                    const std::string& directory);

// One file of an installed dataset.
struct DatasetFile {
  std::string uri;   // benchmark://<name>/<path>, as the client gave it (query kept)
  std::string path;  // <root>/<path><suffix>, absolute; it exists
  DatasetSpec spec;
  // For a source dataset: how to compile it (language, flags, transform).
  SourceRecipe recipe;
  bool runnable = false;  // the dataset's runnable and runnable_prefix say this one runs
};

class InstalledDatasets {
 public:
  explicit InstalledDatasets(std::string siteDataDir) : siteDataDir_(std::move(siteDataDir)) {}

  const std::string& siteDataDir() const { return siteDataDir_; }
  std::string datasetsDir() const { return siteDataDir_ + "/datasets"; }

  // benchmark://<name>/<path> (query and fragment ignored): the dataset's
  // file, or an error naming the dataset and what to do — BenchmarkError
  // when the dataset is not installed, has no such file, or its dataset.ini
  // is malformed; InvalidRequest for a path that is absolute or has an
  // empty, '.' or '..' component.
  Result<DatasetFile> find(std::string_view uri);

  // The names of the installed datasets (for messages), sorted.
  std::vector<std::string> installedNames() const;

 private:
  struct Parsed {
    dev_t device = 0;
    ino_t inode = 0;
    int64_t mtimeNs = 0;
    int64_t ctimeNs = 0;
    off_t size = 0;
    Result<DatasetSpec> spec = DatasetSpec{};
  };
  Result<DatasetSpec> spec(const std::string& name);

  std::string siteDataDir_;
  std::map<std::string, Parsed> parsed_;
};

// The site-data directory by the rule the Python package uses
// (forkgym.datasets.paths.site_data_dir()): $FORKGYM_SITE_DATA; else
// $XDG_DATA_HOME/forkgym; else, for root, /var/lib/forkgym; else
// $HOME/.local/share/forkgym. Empty when none applies. Reads the
// environment and the effective uid only.
std::string defaultSiteDataDir();

// The command that installs `name`, for messages.
std::string installAdvice(std::string_view name);

}  // namespace forkgym::passes
